//! Published rule sets: every version kept, one current.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use tier_domain::rules::{RuleSet, RuleSetDoc};

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

#[derive(Debug, Clone)]
pub struct PublishedRuleSet {
    pub version: u64,
    pub rules: RuleSet,
    pub published_at: DateTime<Utc>,
    /// Published with a backfill of the ledger (see
    /// [`crate::backfill`]): until a distributor's ledger is counted, its
    /// new windows may read short, so nothing moves it down.
    pub backfill: bool,
}

pub(crate) fn parse_rule_set(item: &Item) -> Result<PublishedRuleSet, StoreError> {
    let key = item::key_of(item);
    let doc: RuleSetDoc = item::get_json(item, "doc")?;
    let rules = RuleSet::new(doc).map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
    Ok(PublishedRuleSet {
        version: item::get_u64_or_zero(item, "version")?,
        rules,
        published_at: item::get_s(item, "published_at")?
            .parse()
            .map_err(|_| StoreError::corrupt(&key, "published_at"))?,
        backfill: item
            .get("backfill")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

impl Table {
    /// The current rule set, if one was ever published.
    pub async fn current_rule_set(&self) -> Result<Option<PublishedRuleSet>, StoreError> {
        let key = keys::rule_set_current();
        self.get(&key, true)
            .await?
            .as_ref()
            .map(parse_rule_set)
            .transpose()
    }

    /// Every tier id any published version has had: distributors may still
    /// sit in a tier a newer version dropped.
    pub async fn all_tier_ids(&self) -> Result<Vec<tier_domain::ids::TierId>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        for i in self
            .query_prefix(&keys::rule_set_current().0, "V#", false)
            .await?
        {
            let doc: RuleSetDoc = item::get_json(&i, "doc")?;
            ids.extend(doc.tiers.into_iter().map(|t| t.id));
        }
        Ok(ids.into_iter().collect())
    }

    /// Publishes `rules` as the next version. The new version and the
    /// current pointer are written together, conditional on the version
    /// read, so two publishers cannot both become version N.
    /// Publishes `rules` as the next version; `backfill`: the ledger is to
    /// be counted into what they read that the previous version did not.
    pub async fn publish_rule_set(
        &self,
        rules: &RuleSet,
        at: DateTime<Utc>,
        backfill: bool,
    ) -> Result<u64, StoreError> {
        for _ in 0..5 {
            let current = self
                .current_rule_set()
                .await?
                .map(|c| c.version)
                .unwrap_or(0);
            let next = current + 1;
            let attrs = |k: &keys::Key| {
                new_item(
                    k,
                    "rule_set",
                    [
                        ("version", n(next)),
                        ("doc", item::json(rules.doc())),
                        ("published_at", s(at.to_rfc3339())),
                        ("backfill", AttributeValue::Bool(backfill)),
                    ],
                )
            };
            let versioned = Put::builder()
                .table_name(&self.name)
                .set_item(Some(attrs(&keys::rule_set_version(next))))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .expect("put has item");
            let pointer = Put::builder()
                .table_name(&self.name)
                .set_item(Some(attrs(&keys::rule_set_current())));
            let pointer = if current == 0 {
                pointer.condition_expression("attribute_not_exists(PK)")
            } else {
                pointer
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(current))
            };
            let tx = vec![
                TransactWriteItem::builder().put(versioned).build(),
                TransactWriteItem::builder()
                    .put(pointer.build().expect("put has item"))
                    .build(),
            ];
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(next),
                Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention {
            what: "rule set version".into(),
            attempts: 5,
        })
    }
}
