//! Distributors, their stores, their metrics and their tier history.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::{DistributorId, Platform, StoreId, TierId};
use tier_domain::metrics::{MetricShards, Metrics};
use tier_domain::tier::TierChange;

use crate::error::StoreError;
use crate::item::{self, Item, get_s, n, new_item, opt_s, s};
use crate::keys;
use crate::metrics::{metrics_update, parse_metrics};
use crate::table::{Table, TxOutcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distributor {
    pub id: DistributorId,
    pub name: String,
    pub upline: Option<DistributorId>,
    pub region: Option<String>,
    pub tier: Option<TierId>,
    /// Bumped by every tier change; tier writes are conditional on it.
    pub tier_version: u64,
    pub created_at: DateTime<Utc>,
    /// When the distributor last moved up: the protection period runs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgraded_at: Option<DateTime<Utc>>,
    /// Set by a manual override with a lock: no automatic change until unlocked.
    #[serde(default)]
    pub tier_locked: bool,
    /// The review period that last changed this distributor's tier: a
    /// redelivered review page must not step it down a second time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_review: Option<tier_domain::calendar::Period>,
    /// The upline, its upline, and so on to the top: whose network metrics
    /// this distributor counts in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<DistributorId>,
    /// The latest rule set version whose backfill has counted this
    /// distributor's ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled: Option<u64>,
    /// A hot seller's counters spread over shards (docs/cost.md, "Hot
    /// sellers"); none for most.
    #[serde(default, skip_serializing_if = "MetricShards::is_default")]
    pub metric_shards: MetricShards,
}

/// How deep a network may be: each profile lists its ancestors, and a
/// batch's transaction may write a daily bucket of each (for rules with
/// rolling windows over the network), within TransactWriteItems' 100
/// actions.
pub const MAX_DEPTH: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("distributor {0} already exists")]
    AlreadyExists(DistributorId),
    #[error("upline {0} does not exist")]
    UnknownUpline(DistributorId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreRegisterError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error("store {platform}/{store} already belongs to distributor {owner}")]
    OwnedByAnother {
        platform: Platform,
        store: StoreId,
        owner: DistributorId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn parse_profile(item: &Item) -> Result<Distributor, StoreError> {
    let corrupt = |what: &str| StoreError::corrupt(&item::key_of(item), what.to_owned());
    Ok(Distributor {
        id: DistributorId::parse(get_s(item, "id")?).map_err(|e| corrupt(&e.to_string()))?,
        name: get_s(item, "name")?.to_owned(),
        upline: opt_s(item, "upline")
            .map(DistributorId::parse)
            .transpose()
            .map_err(|e| corrupt(&e.to_string()))?,
        region: opt_s(item, "region").map(str::to_owned),
        tier: opt_s(item, "tier")
            .map(TierId::parse)
            .transpose()
            .map_err(|e| corrupt(&e.to_string()))?,
        tier_version: item::get_u64_or_zero(item, "tier_version")?,
        created_at: get_s(item, "created_at")?
            .parse()
            .map_err(|_| corrupt("created_at is not a timestamp"))?,
        upgraded_at: opt_s(item, "upgraded_at")
            .map(|t| t.parse())
            .transpose()
            .map_err(|_| corrupt("upgraded_at is not a timestamp"))?,
        tier_locked: item
            .get("tier_locked")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        ancestors: if item.contains_key("ancestors") {
            item::get_json(item, "ancestors")?
        } else {
            Vec::new()
        },
        last_review: opt_s(item, "last_review")
            .map(tier_domain::calendar::Period::parse)
            .transpose()
            .map_err(|e| corrupt(&e.to_string()))?,
        backfilled: item
            .contains_key("backfilled")
            .then(|| item::get_u64_or_zero(item, "backfilled"))
            .transpose()?,
        metric_shards: {
            let count = |name: &str| -> Result<u8, StoreError> {
                let k = item::get_u64_or_zero(item, name)?;
                u8::try_from(k)
                    .ok()
                    .filter(|k| *k <= tier_domain::metrics::MAX_SHARDS)
                    .ok_or_else(|| corrupt(&format!("{name} {k} is out of range")))
            };
            MetricShards {
                shards: count("metric_shards")?,
                cells: count("metric_cells")?,
            }
        },
    })
}

impl Table {
    /// Registers a distributor, in `entry_tier` if a rule set is published.
    /// The upline must already exist (so the network stays a tree).
    pub async fn register_distributor(
        &self,
        d: &Distributor,
        entry: Option<&TierChange>,
        calendar: &BrandCalendar,
    ) -> Result<(), RegisterError> {
        let key = keys::distributor(&d.id);
        let mut attrs = vec![
            ("id", s(d.id.as_str())),
            ("name", s(&d.name)),
            ("tier_version", n(d.tier_version)),
            ("created_at", s(d.created_at.to_rfc3339())),
            (keys::GSI1PK, s(keys::tier_members(d.tier.as_ref()))),
            (keys::GSI1SK, s(key.0.clone())),
        ];
        if let Some(u) = &d.upline {
            attrs.push(("upline", s(u.as_str())));
        }
        if let Some(r) = &d.region {
            attrs.push(("region", s(r)));
        }
        if let Some(t) = &d.tier {
            attrs.push(("tier", s(t.as_str())));
        }
        if !d.ancestors.is_empty() {
            attrs.push(("ancestors", item::json(&d.ancestors)));
        }
        // Joining the entry tier is the first tier change.
        if let Some(change) = entry {
            attrs.push(("tier_changed_at", s(change.at.to_rfc3339())));
            attrs.extend(crate::ranking::changed_rank_attributes(&d.id, change.at));
        }
        let mut tx = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.name)
                        .set_item(Some(new_item(&key, "distributor", attrs)))
                        .condition_expression("attribute_not_exists(PK)")
                        .build()
                        .expect("put has item"),
                )
                .build(),
        ];
        if let Some(change) = entry {
            tx.push(self.history_put(&d.id, d.tier_version, change));
            tx.extend(self.tier_move_updates(&d.id, change, calendar));
        }
        if let Some(u) = &d.upline {
            let (pk, sk) = keys::distributor(u);
            tx.push(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.name)
                            .key(keys::PK, s(pk))
                            .key(keys::SK, s(sk))
                            .condition_expression("attribute_exists(PK)")
                            .build()
                            .expect("check has key"),
                    )
                    .build(),
            );
        }
        // Every ancestor counts the newcomer: its upline at level 1, all of
        // them at all levels.
        for (ancestor, delta) in tier_domain::plan::newcomer_deltas(&d.ancestors) {
            tx.push(
                TransactWriteItem::builder()
                    .update(metrics_update(self, &ancestor, &delta, None))
                    .build(),
            );
        }
        match self.transact(tx).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::ConditionFailed { reasons } => {
                if reasons
                    .first()
                    .is_some_and(|r| r == "ConditionalCheckFailed")
                {
                    Err(RegisterError::AlreadyExists(d.id.clone()))
                } else {
                    Err(RegisterError::UnknownUpline(
                        d.upline.clone().expect("only the upline check remains"),
                    ))
                }
            }
        }
    }

    /// Maps a platform store to the distributor that owns it. Re-registering
    /// the same mapping is a no-op; moving a store is refused.
    pub async fn register_store(
        &self,
        platform: &Platform,
        store: &StoreId,
        owner: &DistributorId,
        app: Option<&tier_domain::ids::AppId>,
    ) -> Result<(), StoreRegisterError> {
        let mut attrs = vec![
            ("platform", s(platform.as_str())),
            ("store", s(store.as_str())),
            ("distributor", s(owner.as_str())),
        ];
        // A connected store's app signs its deliveries.
        if let Some(app) = app {
            attrs.push(("app", s(app.as_str())));
        }
        let key = keys::store(platform, store);
        let (dpk, dsk) = keys::distributor(owner);
        let tx = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.name)
                        .set_item(Some(new_item(&key, "store", attrs)))
                        .condition_expression("attribute_not_exists(PK) OR distributor = :d")
                        .expression_attribute_values(":d", s(owner.as_str()))
                        .build()
                        .expect("put has item"),
                )
                .build(),
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.name)
                        .key(keys::PK, s(dpk))
                        .key(keys::SK, s(dsk))
                        .condition_expression("attribute_exists(PK)")
                        .build()
                        .expect("check has key"),
                )
                .build(),
        ];
        match self.transact(tx).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::ConditionFailed { reasons } => {
                if reasons
                    .get(1)
                    .is_some_and(|r| r == "ConditionalCheckFailed")
                {
                    return Err(StoreRegisterError::UnknownDistributor(owner.clone()));
                }
                let current = self.get(&key, true).await?;
                let owner_now = current
                    .as_ref()
                    .and_then(|i| opt_s(i, "distributor"))
                    .unwrap_or("?");
                Err(StoreRegisterError::OwnedByAnother {
                    platform: platform.clone(),
                    store: store.clone(),
                    owner: DistributorId::parse(owner_now).unwrap_or_else(|_| owner.clone()),
                })
            }
        }
    }

    pub async fn distributor(&self, id: &DistributorId) -> Result<Option<Distributor>, StoreError> {
        self.profile(id, false).await
    }

    /// The profile as written last (a strongly consistent read), for a
    /// write that is conditional on what it holds.
    pub(crate) async fn distributor_consistent(
        &self,
        id: &DistributorId,
    ) -> Result<Option<Distributor>, StoreError> {
        self.profile(id, true).await
    }

    async fn profile(
        &self,
        id: &DistributorId,
        consistent: bool,
    ) -> Result<Option<Distributor>, StoreError> {
        self.get(&keys::distributor(id), consistent)
            .await?
            .as_ref()
            .map(parse_profile)
            .transpose()
    }

    /// The profile and metrics in one consistent BatchGetItem.
    pub async fn distributor_with_metrics(
        &self,
        id: &DistributorId,
    ) -> Result<Option<(Distributor, Metrics)>, StoreError> {
        let pkey = keys::distributor(id);
        let mkey = keys::metrics(id);
        let items = self.batch_get(&[pkey.clone(), mkey.clone()], true).await?;
        let Some(profile) = items.get(&pkey) else {
            return Ok(None);
        };
        let mut metrics = items
            .get(&mkey)
            .map(parse_metrics)
            .transpose()?
            .unwrap_or_default();
        let profile = parse_profile(profile)?;
        self.add_shards(&mut [(&profile, &mut metrics)], true)
            .await?;
        Ok(Some((profile, metrics)))
    }

    /// Moves a distributor to `change.to` if its tier is still at
    /// `expected_version`, and appends the history entry, atomically.
    /// `false` means another evaluation got there first.
    pub async fn change_tier(
        &self,
        id: &DistributorId,
        expected_version: u64,
        change: &TierChange,
        calendar: &BrandCalendar,
    ) -> Result<bool, StoreError> {
        self.write_tier(id, expected_version, Some(change), None, calendar)
            .await
    }

    /// A manual override: the tier (if it changes, with its history entry)
    /// and the lock, conditional on the tier version read.
    pub async fn set_tier_manually(
        &self,
        id: &DistributorId,
        expected_version: u64,
        change: Option<&TierChange>,
        lock: bool,
        calendar: &BrandCalendar,
    ) -> Result<bool, StoreError> {
        self.write_tier(id, expected_version, change, Some(lock), calendar)
            .await
    }

    async fn write_tier(
        &self,
        id: &DistributorId,
        expected_version: u64,
        change: Option<&TierChange>,
        lock: Option<bool>,
        calendar: &BrandCalendar,
    ) -> Result<bool, StoreError> {
        let tx = self.tier_items(id, expected_version, change, lock, calendar);
        Ok(matches!(self.transact(tx).await?, TxOutcome::Committed))
    }

    /// The profile update (conditional on the tier version) and, for a
    /// change, its history entry and the tier analytics it moves.
    pub(crate) fn tier_items(
        &self,
        id: &DistributorId,
        expected_version: u64,
        change: Option<&TierChange>,
        lock: Option<bool>,
        calendar: &BrandCalendar,
    ) -> Vec<TransactWriteItem> {
        let (pk, sk) = keys::distributor(id);
        let next = expected_version + u64::from(change.is_some());
        let mut sets = vec!["tier_version = :next"];
        let mut update = Update::builder()
            .table_name(&self.name)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk));
        if let Some(change) = change {
            sets.extend([
                "tier = :to",
                "GSI1PK = :g",
                "tier_changed_at = :at",
                "rc_key = :rck",
                "rc_rank = :rcr",
            ]);
            let [(_, rck), (_, rcr)] = crate::ranking::changed_rank_attributes(id, change.at);
            update = update
                .expression_attribute_values(":rck", rck)
                .expression_attribute_values(":rcr", rcr)
                .expression_attribute_values(":to", s(change.to.as_str()))
                .expression_attribute_values(":g", s(keys::tier_members(Some(&change.to))))
                .expression_attribute_values(":at", s(change.at.to_rfc3339()));
            if change.direction == tier_domain::tier::Direction::Up {
                sets.push("upgraded_at = :at");
            }
            if let tier_domain::tier::Cause::Review { period } = &change.cause {
                sets.push("last_review = :review");
                update = update.expression_attribute_values(":review", s(period.to_string()));
            }
        }
        if let Some(lock) = lock {
            sets.push("tier_locked = :lock");
            update = update.expression_attribute_values(
                ":lock",
                aws_sdk_dynamodb::types::AttributeValue::Bool(lock),
            );
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("tier_version = :v")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":v", n(expected_version))
            .build()
            .expect("update has key and expression");
        let mut tx = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(change) = change {
            tx.push(self.history_put(id, next, change));
            tx.extend(self.tier_move_updates(id, change, calendar));
        }
        tx
    }

    fn history_put(
        &self,
        id: &DistributorId,
        version: u64,
        change: &TierChange,
    ) -> TransactWriteItem {
        let key = keys::history(id, version);
        let mut attrs = vec![
            ("to", s(change.to.as_str())),
            ("at", s(change.at.to_rfc3339())),
            ("change", item::json(change)),
        ];
        if let Some(from) = &change.from {
            attrs.push(("from", s(from.as_str())));
        }
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.name)
                    .set_item(Some(new_item(&key, "tier_change", attrs)))
                    .condition_expression("attribute_not_exists(PK)")
                    .build()
                    .expect("put has item"),
            )
            .build()
    }

    /// A distributor's tier changes, newest first.
    pub async fn tier_history(
        &self,
        id: &DistributorId,
        limit: i32,
    ) -> Result<Vec<TierChange>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("PK = :pk AND begins_with(SK, :h)")
            .expression_attribute_values(":pk", s(keys::distributor(id).0))
            .expression_attribute_values(":h", s(keys::HISTORY_PREFIX))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|i| item::get_json(i, "change"))
            .collect()
    }
}

/// What `GET /v1/distributors/{id}/tier` reads, in one BatchGetItem.
#[derive(Debug, Clone, Default)]
pub struct TierView {
    pub distributor: Option<(Distributor, Metrics)>,
    pub rules: Option<crate::rules::PublishedRuleSet>,
    pub api_key: Option<Item>,
}

impl Table {
    /// As of `today`: where the rules read rolling windows, their daily
    /// buckets are read in a second round trip.
    pub async fn tier_view(
        &self,
        id: &DistributorId,
        api_key_id: &str,
        today: tier_domain::calendar::Day,
    ) -> Result<TierView, StoreError> {
        let (pkey, mkey, rkey, kkey) = (
            keys::distributor(id),
            keys::metrics(id),
            keys::rule_set_current(),
            keys::api_key(api_key_id),
        );
        let mut items = self
            .batch_get(
                &[pkey.clone(), mkey.clone(), rkey.clone(), kkey.clone()],
                true,
            )
            .await?;
        let mut metrics = items
            .get(&mkey)
            .map(parse_metrics)
            .transpose()?
            .unwrap_or_default();
        let rules = items
            .get(&rkey)
            .map(crate::rules::parse_rule_set)
            .transpose()?;
        let distributor = items.get(&pkey).map(parse_profile).transpose()?;
        if let Some(d) = &distributor {
            self.add_shards(&mut [(d, &mut metrics)], true).await?;
        }
        if let (Some(r), Some(d)) = (&rules, &distributor) {
            self.load_daily(
                &mut [(id, d.metric_shards, &mut metrics)],
                today,
                &r.rules.daily_spans(),
                true,
            )
            .await?;
        }
        Ok(TierView {
            distributor: distributor.map(|d| (d, metrics)),
            rules,
            api_key: items.remove(&kkey),
        })
    }

    /// Records that rule set `version`'s backfill has counted the
    /// distributor's ledger (a later version's is never undone); `true` the
    /// first time.
    pub async fn mark_backfilled(
        &self,
        id: &DistributorId,
        version: u64,
    ) -> Result<bool, StoreError> {
        let condition =
            "attribute_exists(PK) AND (attribute_not_exists(backfilled) OR backfilled < :v)";
        self.update_if(
            &keys::distributor(id),
            "SET backfilled = :v",
            condition,
            [(":v", n(version))],
        )
        .await
    }

    /// Claims the one request to count `id`'s ledger for rule set
    /// `version` outside its backfill's pages; `false` if already made.
    pub async fn claim_ledger_count(
        &self,
        id: &DistributorId,
        version: u64,
    ) -> Result<bool, StoreError> {
        let condition = "attribute_exists(PK) AND (attribute_not_exists(ledger_count_requested) OR ledger_count_requested < :v)";
        self.update_if(
            &keys::distributor(id),
            "SET ledger_count_requested = :v",
            condition,
            [(":v", n(version))],
        )
        .await
    }

    /// Gives back a claim [`Table::claim_ledger_count`] made, when the
    /// request could not be sent.
    pub async fn release_ledger_count(
        &self,
        id: &DistributorId,
        version: u64,
    ) -> Result<(), StoreError> {
        self.update_if(
            &keys::distributor(id),
            "REMOVE ledger_count_requested",
            "ledger_count_requested = :v",
            [(":v", n(version))],
        )
        .await
        .map(|_| ())
    }

    /// Clears a manual lock. `false` if the distributor does not exist.
    /// Locks a distributor in whatever tier it has: no read, so no change
    /// that lands meanwhile is undone. `false`: no such distributor.
    pub async fn lock_tier(&self, id: &DistributorId) -> Result<bool, StoreError> {
        self.update_if(
            &keys::distributor(id),
            "SET tier_locked = :t",
            "attribute_exists(PK)",
            [(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))],
        )
        .await
    }

    pub async fn unlock_tier(&self, id: &DistributorId) -> Result<bool, StoreError> {
        self.update_if(
            &keys::distributor(id),
            "SET tier_locked = :f",
            "attribute_exists(PK)",
            [(":f", aws_sdk_dynamodb::types::AttributeValue::Bool(false))],
        )
        .await
    }

    /// Profiles and metrics of many distributors (for the what-if), with
    /// the daily buckets the rolling windows in `spans` read as of `today`.
    pub async fn distributors_with_metrics(
        &self,
        ids: &[DistributorId],
        today: tier_domain::calendar::Day,
        spans: &std::collections::BTreeMap<tier_domain::metrics::Metric, u32>,
    ) -> Result<Vec<(Distributor, Metrics)>, StoreError> {
        let mut wanted = Vec::with_capacity(ids.len() * 2);
        for id in ids {
            wanted.push(keys::distributor(id));
            wanted.push(keys::metrics(id));
        }
        let items = self.batch_get(&wanted, false).await?;
        let mut rows: Vec<(Distributor, Metrics)> = ids
            .iter()
            .filter_map(|id| items.get(&keys::distributor(id)).map(|p| (id, p)))
            .map(|(id, p)| {
                Ok((
                    parse_profile(p)?,
                    items
                        .get(&keys::metrics(id))
                        .map(parse_metrics)
                        .transpose()?
                        .unwrap_or_default(),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        {
            let mut parts: Vec<(&Distributor, &mut Metrics)> =
                rows.iter_mut().map(|(d, m)| (&*d, m)).collect();
            self.add_shards(&mut parts, false).await?;
        }
        let mut daily: Vec<(&DistributorId, MetricShards, &mut Metrics)> = rows
            .iter_mut()
            .map(|(d, m)| (&d.id, d.metric_shards, m))
            .collect();
        self.load_daily(&mut daily, today, spans, false).await?;
        Ok(rows)
    }
}
