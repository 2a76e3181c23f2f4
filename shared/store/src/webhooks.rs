//! What order intake needs from the table: the store's owner, whether the
//! event was seen before, which SKUs exist and what the distributor is
//! entitled to pay for them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tier_domain::ids::{DistributorId, EventId, Platform, Sku, StoreId};
use tier_domain::pricing::SkuBook;

use crate::distributors::{Distributor, parse_profile};
use crate::price_book::BookVersion;
use crate::rules::{PublishedRuleSet, parse_rule_set};

use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::table::Table;

/// Platforms retry for up to a few days; receipts are kept for 30.
const RECEIPT_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// SHA-256 of the raw body, so a reused event id with a different body
    /// is told apart from a retry.
    pub body_sha256: String,
    pub received_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct IntakeView {
    pub owner: Option<DistributorId>,
    pub receipt: Option<Receipt>,
    /// The owner's profile, the rule set and the SKUs' current book entries:
    /// what the distributor is entitled to pay. Read only for a new event of
    /// a known store.
    pub distributor: Option<Distributor>,
    pub rules: Option<PublishedRuleSet>,
    pub book: Option<BookVersion>,
    pub entries: HashMap<Sku, SkuBook>,
}

impl Table {
    /// Two round trips: the store, the receipt, the rule set and the book
    /// version; then the distributor and the SKUs' entries.
    pub async fn intake_view(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        skus: &[Sku],
    ) -> Result<IntakeView, StoreError> {
        let store_key = keys::store(platform, store);
        let receipt_key = keys::webhook(platform, store, event);
        // Consistent: a retry that arrives right after the first delivery
        // must see its receipt.
        let mut items = self
            .batch_get(
                &[
                    store_key.clone(),
                    receipt_key.clone(),
                    keys::rule_set_current(),
                    keys::book_pointer(),
                ],
                true,
            )
            .await?;
        let owner = items
            .get(&store_key)
            .map(|i| {
                item::get_s(i, "distributor").and_then(|d| {
                    DistributorId::parse(d)
                        .map_err(|e| StoreError::corrupt(&store_key, e.to_string()))
                })
            })
            .transpose()?;
        let receipt = items
            .get(&receipt_key)
            .map(|i| {
                Ok::<_, StoreError>(Receipt {
                    body_sha256: item::get_s(i, "body_sha256")?.to_owned(),
                    received_at: item::get_s(i, "received_at")?.to_owned(),
                })
            })
            .transpose()?;
        let mut view = IntakeView {
            rules: items
                .remove(&keys::rule_set_current())
                .as_ref()
                .map(parse_rule_set)
                .transpose()?,
            book: items
                .remove(&keys::book_pointer())
                .as_ref()
                .map(|i| self.parse_book_version(i))
                .transpose()?,
            owner,
            receipt,
            ..Default::default()
        };
        let Some(owner) = view.owner.clone().filter(|_| view.receipt.is_none()) else {
            return Ok(view);
        };
        let mut wanted = vec![keys::distributor(&owner)];
        if let Some(b) = view.book {
            wanted.extend(skus.iter().map(|s| keys::book_entry(b.version, s)));
        }
        let items = self.batch_get(&wanted, true).await?;
        view.distributor = items
            .get(&keys::distributor(&owner))
            .map(parse_profile)
            .transpose()?;
        if let Some(b) = view.book {
            for sku in skus {
                if let Some(i) = items.get(&keys::book_entry(b.version, sku)) {
                    view.entries.insert(sku.clone(), item::get_json(i, "book")?);
                }
            }
        }
        Ok(view)
    }

    pub(crate) fn receipt_item(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        body_sha256: &str,
        at: DateTime<Utc>,
    ) -> crate::item::Item {
        let expires = at.timestamp() + RECEIPT_TTL_DAYS * 86_400;
        new_item(
            &keys::webhook(platform, store, event),
            "webhook_receipt",
            [
                ("body_sha256", s(body_sha256)),
                ("received_at", s(at.to_rfc3339())),
                (keys::TTL, n(expires)),
            ],
        )
    }

    /// Written after the event is enqueued: a crash in between means the
    /// platform's retry enqueues it again, which the consumers de-duplicate.
    pub async fn put_receipt(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        body_sha256: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let item = self.receipt_item(platform, store, event, body_sha256, at);
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }
}

/// What the distributor was entitled to pay per unit, by its tier and the
/// price book at the moment of the order, on each line: recorded so that
/// resale prices are later compared like with like.
pub fn record_entitled_prices(
    lines: &mut [tier_domain::order::OrderLine],
    rules: Option<&PublishedRuleSet>,
    book: Option<BookVersion>,
    distributor: Option<&Distributor>,
    entries: &HashMap<Sku, SkuBook>,
    owner: &DistributorId,
    at: DateTime<Utc>,
) {
    use tier_domain::pricing;
    use tier_domain::rules::Permission;
    let (Some(rules), Some(book)) = (rules, book) else {
        return;
    };
    let tier = distributor
        .and_then(|d| d.tier.as_ref())
        .and_then(|t| rules.rules.tier_by_id(t.as_str()))
        .unwrap_or_else(|| rules.rules.entry_tier());
    for line in lines {
        if let Some(entry) = entries.get(&line.sku) {
            let q = pricing::quote(&pricing::QuoteRequest {
                book: entry,
                tier,
                distributor: owner,
                quantity: line.quantity,
                at,
                promotions_allowed: tier.may(Permission::SeePromotions),
                book_published_at: book.published_at,
            });
            line.entitled_unit_price = Some(q.unit_price);
        }
    }
}
