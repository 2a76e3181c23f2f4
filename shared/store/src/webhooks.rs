//! What order intake needs from the table: the store's owner, whether the
//! event was seen before, which SKUs exist and what the distributor is
//! entitled to pay for them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tier_domain::ids::{AppId, DistributorId, EventId, Platform, Sku, StoreId};
use tier_domain::order::OrderEventKind;
use tier_domain::pricing::SkuBook;

use crate::distributors::{Distributor, parse_profile};
use crate::item::Item;
use crate::keys::Key;
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
    /// The platform app the store is connected through, if any.
    pub app: Option<AppId>,
    pub receipt: Option<Receipt>,
    /// The owner's profile, the rule set and the SKUs' current book entries:
    /// what the distributor is entitled to pay. Read only for a new event of
    /// a known store.
    pub distributor: Option<Distributor>,
    pub rules: Option<Arc<PublishedRuleSet>>,
    pub book: Option<BookVersion>,
    pub entries: HashMap<Sku, SkuBook>,
}

/// What intake found the last time, so that one read can ask for all a
/// view needs at once. A wrong guess costs a second read, never a wrong
/// answer: the store, the receipt, the book pointer and the SKU mappings
/// are read every time, and only what they name is used. The rule set is
/// the exception: one given here is used as it is, so the caller decides
/// how old it may be (it prices only the entitled unit price on lines).
#[derive(Debug, Clone, Default)]
pub struct ViewHints {
    /// The store's owner, whose profile is read along.
    pub owner: Option<DistributorId>,
    /// The current price book's version, whose entries are read along.
    pub book_version: Option<u64>,
    /// Platform SKU code or variant id → our SKU, as last mapped.
    pub mapping: HashMap<String, Sku>,
    pub rules: Option<Arc<PublishedRuleSet>>,
}

/// The items read for one view, and every key asked for, found or not.
#[derive(Default)]
pub(crate) struct Reads {
    asked: HashSet<Key>,
    pub(crate) items: HashMap<Key, Item>,
}

impl Table {
    /// Reads `keys` not asked for yet, in one batch (none when all were).
    /// Consistent: a retry right after the first delivery sees its receipt.
    pub(crate) async fn read_more(
        &self,
        reads: &mut Reads,
        keys: impl IntoIterator<Item = Key>,
    ) -> Result<(), StoreError> {
        let missing: Vec<Key> = keys
            .into_iter()
            .filter(|k| reads.asked.insert(k.clone()))
            .collect();
        if !missing.is_empty() {
            reads.items.extend(self.batch_get(&missing, true).await?);
        }
        Ok(())
    }

    /// The first read's keys beyond `always`: the rule set unless hinted,
    /// and the hinted owner's profile and book entries for `skus`.
    pub(crate) fn hinted_first_read<'a>(
        hints: &ViewHints,
        always: Vec<Key>,
        skus: impl Iterator<Item = &'a Sku>,
    ) -> Vec<Key> {
        let mut keys = always;
        keys.push(keys::book_pointer());
        if hints.rules.is_none() {
            keys.push(keys::rule_set_current());
        }
        if let Some(owner) = &hints.owner {
            keys.push(keys::distributor(owner));
        }
        if let Some(v) = hints.book_version {
            keys.extend(skus.map(|s| keys::book_entry(v, s)));
        }
        keys
    }

    /// The rule set and book version from the first read (or the hint).
    pub(crate) fn read_rules_and_book(
        &self,
        reads: &mut Reads,
        hints: &ViewHints,
    ) -> Result<(Option<Arc<PublishedRuleSet>>, Option<BookVersion>), StoreError> {
        let rules = match &hints.rules {
            Some(r) => Some(r.clone()),
            None => reads
                .items
                .remove(&keys::rule_set_current())
                .as_ref()
                .map(parse_rule_set)
                .transpose()?
                .map(Arc::new),
        };
        let book = reads
            .items
            .remove(&keys::book_pointer())
            .as_ref()
            .map(|i| self.parse_book_version(i))
            .transpose()?;
        Ok((rules, book))
    }

    /// The owner's profile and the book's entries for `skus`, read now
    /// where the first read did not guess them.
    pub(crate) async fn read_pricing(
        &self,
        reads: &mut Reads,
        owner: &DistributorId,
        book: Option<BookVersion>,
        skus: &[Sku],
    ) -> Result<(Option<Distributor>, HashMap<Sku, SkuBook>), StoreError> {
        let mut wanted = vec![keys::distributor(owner)];
        if let Some(b) = book {
            wanted.extend(skus.iter().map(|s| keys::book_entry(b.version, s)));
        }
        self.read_more(reads, wanted).await?;
        let distributor = reads
            .items
            .get(&keys::distributor(owner))
            .map(parse_profile)
            .transpose()?;
        let mut entries = HashMap::new();
        if let Some(b) = book {
            for sku in skus {
                if let Some(i) = reads.items.get(&keys::book_entry(b.version, sku)) {
                    entries.insert(sku.clone(), item::get_json(i, "book")?);
                }
            }
        }
        Ok((distributor, entries))
    }

    /// The store's owner, the event's receipt, and for a new event of a
    /// known store what the owner is entitled to pay for `skus`: one read
    /// where `hints` are right, two where they are not.
    pub async fn intake_view(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        skus: &[Sku],
        hints: &ViewHints,
    ) -> Result<IntakeView, StoreError> {
        let store_key = keys::store(platform, store);
        let receipt_key = keys::webhook(platform, store, event);
        let mut reads = Reads::default();
        let first = Self::hinted_first_read(
            hints,
            vec![store_key.clone(), receipt_key.clone()],
            skus.iter(),
        );
        self.read_more(&mut reads, first).await?;
        let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(&store_key, e.to_string());
        let (owner, app) = match reads.items.get(&store_key) {
            None => (None, None),
            Some(i) => (
                Some(
                    DistributorId::parse(item::get_s(i, "distributor")?)
                        .map_err(|e| corrupt(&e))?,
                ),
                item::opt_s(i, "app")
                    .map(AppId::parse)
                    .transpose()
                    .map_err(|e| corrupt(&e))?,
            ),
        };
        let receipt = reads
            .items
            .get(&receipt_key)
            .map(|i| {
                Ok::<_, StoreError>(Receipt {
                    body_sha256: item::get_s(i, "body_sha256")?.to_owned(),
                    received_at: item::get_s(i, "received_at")?.to_owned(),
                })
            })
            .transpose()?;
        let (rules, book) = self.read_rules_and_book(&mut reads, hints)?;
        let mut view = IntakeView {
            rules,
            book,
            owner,
            app,
            receipt,
            ..Default::default()
        };
        let Some(owner) = view.owner.clone().filter(|_| view.receipt.is_none()) else {
            return Ok(view);
        };
        (view.distributor, view.entries) = self
            .read_pricing(&mut reads, &owner, view.book, skus)
            .await?;
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

/// Stamps a paid order with what intake knows when it is paid: the tier
/// it is paid in (the distributor's, or the rule set's entry tier for one
/// not yet placed: the tier its prices were quoted in), whether it is
/// urgent (the platform's flag or the brand's rule) and its fulfilment
/// priority. Nothing before a rule set is published.
pub fn stamp_paid(
    kind: &mut OrderEventKind,
    rules: Option<&PublishedRuleSet>,
    distributor: Option<&Distributor>,
) {
    let (
        OrderEventKind::Paid {
            total,
            lines,
            urgent,
            tier,
            priority,
            ..
        },
        Some(rules),
    ) = (kind, rules)
    else {
        return;
    };
    let paying = tier_in(rules, distributor);
    let policy = rules.rules.fulfilment();
    *urgent = policy.is_urgent(*urgent, *total, lines);
    *priority = policy.priority(paying.benefits.priority, *urgent);
    *tier = Some(paying.id.clone());
}

fn tier_in<'a>(
    rules: &'a PublishedRuleSet,
    distributor: Option<&Distributor>,
) -> &'a tier_domain::rules::Tier {
    distributor
        .and_then(|d| d.tier.as_ref())
        .and_then(|t| rules.rules.tier_by_id(t.as_str()))
        .unwrap_or_else(|| rules.rules.entry_tier())
}

/// What the distributor was entitled to pay per unit, by its tier and the
/// price book at the moment of the order, and the SKU's floor price then,
/// on each line: recorded so that resale prices are later compared like
/// with like, and a resale below the floor is found as price disorder.
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
    let Some(book) = book else {
        return;
    };
    // The floor is the book's alone, whatever the tiers.
    for line in lines.iter_mut() {
        line.floor_unit_price = entries.get(&line.sku).and_then(|e| e.floor_price);
    }
    let Some(rules) = rules else {
        return;
    };
    let tier = tier_in(rules, distributor);
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
