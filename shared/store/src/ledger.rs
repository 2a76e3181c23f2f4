//! Applying order events to the ledger, the metrics and the tier, exactly
//! once, one distributor at a time.
//!
//! The events of one SQS batch are grouped by distributor, and each group
//! costs one read round trip (two with buyers, receivers or daily items to
//! read) and one transaction:
//! every changed ledger entry, every changed buyer, one metrics update
//! (whatever the number of orders) and, when the new metrics move the tier,
//! the tier change with its history entry. Every write is conditional on
//! the version read, so a concurrent delivery or evaluation makes the
//! transaction fail and the group is read and applied again.
//!
//! What an order earns each receiver is kept in the order's ledger entry,
//! whose version guards the receivers' counters in the same transaction.
//! The receivers' commission entries (what their commission page lists) are
//! projections of it, written just after the commit as plain writes (half
//! a transactional write's cost, retried); a redelivery writes one that a
//! failed delivery left out, and a projection never replaces a later one.
//! The terms are kept even when they earn a receiver nothing, so a rate set
//! later never pays on the order's refunds.
//!
//! What depends on the rule set (daily buckets for rolling windows, the
//! purchased quantities of SKUs) is fixed per order when it is first
//! counted: the entry keeps those terms (`daily`, `skus`), and its later
//! refunds and cancellations move exactly them, whatever the rules read by
//! then. A new rule set's backfill ([`crate::backfill`]) adds terms to the
//! orders counted before it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use tier_domain::analytics::{self, DisorderRecord};
use tier_domain::calendar::{BrandCalendar, Day};
use tier_domain::commission::CommissionEntry;
use tier_domain::ids::{BuyerId, DistributorId, OrderRef};
use tier_domain::ledger::{self, Applied, BuyerRecord, Contribution, OrderRecord};
use tier_domain::metrics::{Metrics, MetricsDelta};
use tier_domain::money::Money;
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_domain::tier::TierChange;

use crate::distributors::{Distributor, parse_profile};
use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::metrics::{
    check_writable, daily_keys, daily_kinds, daily_updates, merge_daily, metrics_update,
    metrics_update_pruning, only_kinds, parse_metrics, stale_buckets,
};
use crate::rules::{PublishedRuleSet, parse_rule_set};
use crate::table::{Table, TxOutcome};

/// Conditional writes that lose a race are retried from a fresh read this
/// many times before the messages are handed back to the queue.
const MAX_ATTEMPTS: u32 = 8;
/// Events per transaction: each may touch its ledger entry and its buyer,
/// beside one metrics update per ancestor (at most
/// [`crate::distributors::MAX_DEPTH`]), and TransactWriteItems takes 100
/// actions.
pub const MAX_GROUP: usize = 12;
/// TransactWriteItems takes at most this many actions; a group that needs
/// more (daily buckets for many months and ancestors) is applied in halves.
const MAX_TX_ITEMS: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOutcome {
    pub recorded: usize,
    pub duplicates: usize,
    pub delta: MetricsDelta,
    pub change: Option<TierChange>,
    /// Uplines whose metrics moved (downline sales, commission): their
    /// tiers may move with them.
    pub commission_receivers: Vec<DistributorId>,
    /// Every upline of the seller: after a redelivery, the re-evaluation a
    /// failed first delivery may have missed.
    pub ancestors: Vec<DistributorId>,
    /// Commission the receivers gained (a refund makes it negative), for
    /// the operators' metrics.
    pub commission_earned: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Commission terms as a ledger entry keeps them: short names and the
/// settlement time in seconds, so that two receivers add about 100 bytes
/// to the entry, not 200 (past 1 KB its every write would cost double).
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptTerms {
    #[serde(rename = "l")]
    level: u8,
    #[serde(rename = "r")]
    rate: tier_domain::money::Percent,
    #[serde(rename = "a")]
    amount: Money,
    #[serde(rename = "s")]
    settles_at: i64,
    #[serde(rename = "f", default, skip_serializing_if = "BTreeMap::is_empty")]
    fixed: BTreeMap<tier_domain::ids::Sku, Money>,
}

impl KeptTerms {
    fn map(
        terms: &BTreeMap<DistributorId, CommissionEntry>,
    ) -> BTreeMap<&DistributorId, KeptTerms> {
        terms
            .iter()
            .map(|(r, e)| {
                (
                    r,
                    KeptTerms {
                        level: e.level,
                        rate: e.rate,
                        amount: e.amount,
                        settles_at: e.settles_at.timestamp(),
                        fixed: e.fixed.clone(),
                    },
                )
            })
            .collect()
    }
}

/// The commission terms a ledger entry keeps (`terms` 2); `None` for an
/// entry from before it kept them, whose receivers' entries hold them.
fn kept_commission(
    entry: &item::Item,
) -> Result<Option<BTreeMap<DistributorId, CommissionEntry>>, StoreError> {
    if item::get_u64_or_zero(entry, "terms")? < 2 {
        return Ok(None);
    }
    if !entry.contains_key("commission") {
        return Ok(Some(BTreeMap::new()));
    }
    let kept: BTreeMap<DistributorId, KeptTerms> = item::get_json(entry, "commission")?;
    kept.into_iter()
        .map(|(r, k)| {
            let settles_at =
                chrono::DateTime::from_timestamp(k.settles_at, 0).ok_or_else(|| {
                    StoreError::corrupt(
                        &item::key_of(entry),
                        format!("commission of {r}: settles_at {}", k.settles_at),
                    )
                })?;
            Ok((
                r,
                CommissionEntry {
                    level: k.level,
                    rate: k.rate,
                    amount: k.amount,
                    settles_at,
                    fixed: k.fixed,
                },
            ))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A receiver's commission entry to write after the transaction.
struct Projection {
    receiver: DistributorId,
    order: OrderRef,
    entry: CommissionEntry,
    /// The version of the order's ledger entry it reflects.
    lversion: u64,
}

/// One pass's result: done, lost a race (read again), or too many writes
/// for one transaction (apply in halves).
enum Pass {
    Done(Box<GroupOutcome>),
    Raced,
    TooLarge,
}

impl GroupOutcome {
    /// Folds the outcome of a later part of the same group into this one.
    fn then(mut self, later: GroupOutcome) -> GroupOutcome {
        self.recorded += later.recorded;
        self.duplicates += later.duplicates;
        self.delta.merge(&later.delta);
        self.change = later.change.or(self.change);
        self.commission_earned = self.commission_earned + later.commission_earned;
        for r in later.commission_receivers {
            if !self.commission_receivers.contains(&r) {
                self.commission_receivers.push(r);
            }
        }
        self.ancestors = later.ancestors;
        self
    }
}

/// What the tier decision sees: the profile, the metrics as they will be
/// after the group, and the current rule set.
pub type Decide<'a> = dyn Fn(&Distributor, &Metrics, Option<&PublishedRuleSet>) -> Option<TierChange>
    + Send
    + Sync
    + 'a;

impl Table {
    /// What the ledger holds of `order`, in its seller's entry.
    pub async fn order_record(
        &self,
        distributor: &DistributorId,
        order: &OrderRef,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.get(&keys::order_ledger(distributor, order), true)
            .await?
            .map(|i| item::get_json::<OrderRecord>(&i, "record"))
            .transpose()
    }

    /// Applies `events` (all of `distributor`, at most [`MAX_GROUP`]) and the
    /// tier change `decide` draws from the resulting metrics, as of `today`
    /// (the brand's calendar day, which rolling windows end on). Monthly
    /// buckets no window reads any more are removed from the distributor's
    /// metrics item on the way. `known_rules`, when the caller already holds
    /// the current rule set (a review page), spares reading it again for
    /// every distributor.
    pub async fn apply_group(
        &self,
        distributor: &DistributorId,
        events: &[OrderEvent],
        calendar: &BrandCalendar,
        today: Day,
        known_rules: Option<&PublishedRuleSet>,
        decide: &Decide<'_>,
    ) -> Result<GroupOutcome, GroupError> {
        debug_assert!(
            events.len() <= MAX_GROUP && events.iter().all(|e| &e.distributor == distributor)
        );
        for attempt in 0..MAX_ATTEMPTS {
            match self
                .try_group(distributor, events, calendar, today, known_rules, decide)
                .await?
            {
                Pass::Done(outcome) => return Ok(*outcome),
                Pass::Raced => crate::table::backoff(attempt + 1).await,
                Pass::TooLarge => {
                    let (first, second) = events.split_at(events.len() / 2);
                    let first = Box::pin(self.apply_group(
                        distributor,
                        first,
                        calendar,
                        today,
                        known_rules,
                        decide,
                    ))
                    .await?;
                    let second = Box::pin(self.apply_group(
                        distributor,
                        second,
                        calendar,
                        today,
                        known_rules,
                        decide,
                    ))
                    .await?;
                    return Ok(first.then(second));
                }
            }
        }
        Err(StoreError::Contention {
            what: format!("ledger of {distributor}"),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// One read-decide-write pass.
    async fn try_group(
        &self,
        distributor: &DistributorId,
        events: &[OrderEvent],
        calendar: &BrandCalendar,
        today: Day,
        known_rules: Option<&PublishedRuleSet>,
        decide: &Decide<'_>,
    ) -> Result<Pass, GroupError> {
        let pkey = keys::distributor(distributor);
        let mkey = keys::metrics(distributor);
        let rkey = keys::rule_set_current();
        let mut orders: Vec<&OrderRef> = events.iter().map(|e| &e.order).collect();
        orders.sort();
        orders.dedup();
        let mut wanted = vec![pkey.clone(), mkey.clone()];
        if known_rules.is_none() {
            wanted.push(rkey.clone());
        }
        wanted.extend(orders.iter().map(|o| keys::order_ledger(distributor, o)));
        let items = self.batch_get(&wanted, true).await?;
        let profile = items
            .get(&pkey)
            .map(parse_profile)
            .transpose()?
            .ok_or_else(|| GroupError::UnknownDistributor(distributor.clone()))?;
        let rules = match known_rules {
            Some(r) => Some(r.clone()),
            None => items.get(&rkey).map(parse_rule_set).transpose()?,
        };
        let metrics_item = items.get(&mkey);
        let mut metrics = metrics_item
            .map(parse_metrics)
            .transpose()?
            .unwrap_or_default();
        let mversion = metrics_item
            .map(|i| item::get_u64_or_zero(i, "mversion"))
            .transpose()?
            .unwrap_or(0);

        let tracked = rules
            .as_ref()
            .map(|r| r.rules.referenced_skus())
            .unwrap_or_default();
        // Every event applied to its order's entry, in arrival order.
        struct Entry {
            record: OrderRecord,
            version: u64,
            before: Contribution,
            before_purchased: BTreeMap<tier_domain::ids::Sku, i64>,
            changed: bool,
            /// The daily bucket kinds its contribution went into when first
            /// counted: its later changes move those and only those, whatever
            /// the rule set reads by then.
            daily: BTreeSet<String>,
            /// Likewise the SKUs whose purchased quantities it counted in.
            skus: BTreeSet<tier_domain::ids::Sku>,
            /// What each receiver earns on the order, kept with the entry
            /// (the receivers' entries are projections of it); `None` on
            /// entries from before it was kept there.
            commission: Option<BTreeMap<DistributorId, CommissionEntry>>,
        }
        let mut entries: BTreeMap<&OrderRef, Entry> = BTreeMap::new();
        for o in &orders {
            let key = keys::order_ledger(distributor, o);
            let (record, version, daily, skus, commission) = match items.get(&key) {
                Some(i) => (
                    item::get_json::<OrderRecord>(i, "record")?,
                    item::get_u64_or_zero(i, "version")?,
                    item::get_string_set(i, "daily"),
                    item::get_string_set(i, "skus")
                        .iter()
                        .map(|raw| {
                            tier_domain::ids::Sku::parse(raw)
                                .map_err(|e| StoreError::corrupt(&key, e.to_string()))
                        })
                        .collect::<Result<_, _>>()?,
                    kept_commission(i)?,
                ),
                None => (
                    OrderRecord::default(),
                    0,
                    BTreeSet::new(),
                    BTreeSet::new(),
                    Some(BTreeMap::new()),
                ),
            };
            let before = record.contribution();
            let before_purchased = record.purchased();
            // An entry counted before entries kept their terms counted its
            // purchases in whatever SKUs rules referred to, as they still do.
            let legacy =
                items.get(&key).is_some_and(|i| !i.contains_key("terms")) && before.day.is_some();
            let skus = if legacy {
                before_purchased
                    .keys()
                    .filter(|s| tracked.contains(*s))
                    .cloned()
                    .collect()
            } else {
                skus
            };
            entries.insert(
                o,
                Entry {
                    record,
                    version,
                    before,
                    before_purchased,
                    changed: false,
                    daily,
                    skus,
                    commission,
                },
            );
        }
        let mut outcome = GroupOutcome {
            ancestors: profile.ancestors.clone(),
            ..Default::default()
        };
        // Orders an event of which was delivered again: a first delivery may
        // have committed and failed before writing the receivers' entries.
        let mut redelivered: BTreeSet<&OrderRef> = BTreeSet::new();
        // Price disorder found in payments counted now, by day.
        let mut disorder: Vec<(Day, DisorderRecord)> = Vec::new();
        for e in events {
            let entry = entries.get_mut(&e.order).expect("every order was read");
            match entry.record.apply(e, calendar) {
                Applied::Duplicate => {
                    outcome.duplicates += 1;
                    redelivered.insert(&e.order);
                }
                Applied::Changed { .. } => {
                    entry.changed = true;
                    outcome.recorded += 1;
                    if let OrderEventKind::Paid { lines, .. } = &e.kind {
                        // The tier its sales count for in the tier analytics,
                        // refunds included: the seller's as the payment is counted.
                        if let Some(paid) = entry.record.paid.as_mut() {
                            paid.tier = profile.tier.clone();
                        }
                        let found = analytics::violations(lines);
                        if !found.is_empty() {
                            disorder.push((
                                calendar.day_of(e.occurred_at),
                                DisorderRecord {
                                    distributor: distributor.clone(),
                                    order: e.order.clone(),
                                    at: e.occurred_at,
                                    lines: found,
                                },
                            ));
                        }
                    }
                }
            }
        }
        // The sales cells: each changed order's contribution moves the cell
        // and month its payment named.
        let mut sales_moves = analytics::SalesMoves::new();
        for entry in entries.values().filter(|e| e.changed) {
            if let Some(paid) = &entry.record.paid {
                analytics::merge_moves(
                    &mut sales_moves,
                    analytics::sales_move(entry.before, entry.record.contribution(), paid),
                );
            }
        }

        // Quantities bought, for the SKUs the rules refer to when the order is
        // first counted; its returns later take back from those alone.
        for entry in entries.values_mut().filter(|e| e.changed) {
            let after = entry.record.purchased();
            if entry.before.day.is_none() && entry.record.contribution().day.is_some() {
                entry.skus = after
                    .keys()
                    .filter(|s| tracked.contains(*s))
                    .cloned()
                    .collect();
            }
            if !entry.skus.is_empty() {
                let purchased =
                    ledger::purchased_delta(&entry.before_purchased, &after, &entry.skus);
                outcome.delta.merge(&MetricsDelta {
                    purchased,
                    ..Default::default()
                });
            }
        }
        // The metrics delta, and which buyers' counts move.
        let mut buyer_changes: BTreeMap<BuyerId, (i64, bool)> = BTreeMap::new();
        // The seller's own sales and orders: its upline's downline metrics.
        let mut own_sales = MetricsDelta::default();
        for entry in entries.values().filter(|e| e.changed) {
            let after = entry.record.contribution();
            outcome.delta.merge(&ledger::delta(entry.before, after));
            own_sales.merge(&ledger::delta(entry.before, after));
            let newly_paid = entry.before.day.is_none() && entry.record.paid.is_some();
            if let Some(buyer) = entry
                .record
                .buyer()
                .filter(|_| newly_paid || entry.before.live != after.live)
            {
                let slot = buyer_changes.entry(buyer.clone()).or_default();
                slot.0 += after.live - entry.before.live;
                slot.1 |= newly_paid;
            }
        }
        // Commission: the seller's upline (level 1) and its upline (level 2)
        // earn on every order whose amount moved.
        let receivers: Vec<(u8, &DistributorId)> = profile
            .ancestors
            .iter()
            .take(2)
            .enumerate()
            .map(|(i, a)| (i as u8 + 1, a))
            .collect();
        // Orders whose amount or units moved (units earn fixed amounts).
        let commission_orders: Vec<&OrderRef> = if rules.is_some() {
            entries
                .iter()
                .filter(|(_, e)| {
                    let after = e.record.contribution();
                    // A payment counted now is a commission order even when
                    // a refund that arrived first nets it to nothing: the
                    // receivers' pages then show the order at 0.00 whichever
                    // came first, as they do after a refund that follows.
                    let paid_now = e.before.day.is_none() && after.day.is_some();
                    e.changed
                        && (after.sales != e.before.sales
                            || e.record.purchased() != e.before_purchased
                            || paid_now)
                })
                .map(|(o, _)| *o)
                .collect()
        } else {
            Vec::new()
        };
        // Daily buckets, where the rules read rolling windows: an order first
        // counted now goes into the kinds they read, and keeps to them.
        let spans = rules
            .as_ref()
            .map(|r| r.rules.daily_spans())
            .unwrap_or_default();
        let kinds_now = daily_kinds(&spans);
        let mut daily_moves: BTreeMap<&DistributorId, MetricsDelta> = BTreeMap::new();
        for entry in entries.values_mut().filter(|e| e.changed) {
            let after = entry.record.contribution();
            if entry.before.day.is_none() && after.day.is_some() {
                entry.daily = kinds_now.clone();
            }
            if entry.daily.is_empty() {
                continue;
            }
            let own = ledger::delta(entry.before, after);
            daily_moves
                .entry(distributor)
                .or_default()
                .merge(&only_kinds(&own, &entry.daily));
            for (level, ancestor) in profile.ancestors.iter().enumerate() {
                daily_moves
                    .entry(ancestor)
                    .or_default()
                    .merge(&only_kinds(&own.as_downline(level == 0), &entry.daily));
            }
        }
        let seller_daily = daily_keys(distributor, today, &spans);
        let mut round2: Vec<keys::Key> = buyer_changes
            .keys()
            .map(|b| keys::buyer(distributor, b))
            .collect();
        round2.extend(seller_daily.iter().cloned());
        if !commission_orders.is_empty() {
            for (_, r) in &receivers {
                round2.push(keys::distributor(r));
                // Entries from before the ledger kept the terms: the
                // receivers' entries hold them.
                round2.extend(
                    commission_orders
                        .iter()
                        .filter(|o| entries[*o].commission.is_none())
                        .map(|o| keys::commission(r, o)),
                );
            }
        }
        let to_check: Vec<(&OrderRef, DistributorId)> = redelivered
            .iter()
            .flat_map(|o| {
                entries[*o]
                    .commission
                    .iter()
                    .flat_map(|c| c.keys().cloned())
                    .map(move |r| (*o, r))
            })
            .collect();
        round2.extend(to_check.iter().map(|(o, r)| keys::commission(r, o)));
        let round2_items = if round2.is_empty() {
            HashMap::new()
        } else {
            self.batch_get(&round2, true).await?
        };
        let buyer_items = &round2_items;
        for key in &seller_daily {
            if let Some(item) = round2_items.get(key) {
                merge_daily(&mut metrics, item)?;
            }
        }

        let mut tx = Vec::new();
        for (buyer, (change, _)) in &buyer_changes {
            let bkey = keys::buyer(distributor, buyer);
            let existing = buyer_items.get(&bkey);
            let mut rec = BuyerRecord {
                live_orders: existing
                    .map(|i| item::get_i64(i, "live_orders"))
                    .transpose()?
                    .unwrap_or(0),
            };
            let old = rec.live_orders;
            // Counted as a downline user from the first paid order on.
            outcome.delta.merge(&rec.apply(*change, existing.is_some()));
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &bkey,
                    "downline_user",
                    [
                        ("live_orders", n(rec.live_orders)),
                        ("buyer", s(buyer.as_str())),
                    ],
                )));
            let put = match existing {
                None => put.condition_expression("attribute_not_exists(PK)"),
                Some(_) => put
                    .condition_expression("live_orders = :old")
                    .expression_attribute_values(":old", n(old)),
            };
            tx.push(
                TransactWriteItem::builder()
                    .put(put.build().expect("put has item"))
                    .build(),
            );
        }

        // What each upline gains: the level-1 upline the seller's sales as
        // downline sales, each receiver its commission. One update each.
        let mut receiver_deltas: BTreeMap<&DistributorId, MetricsDelta> = BTreeMap::new();
        // The seller's sales and its buyers count in every ancestor's
        // network metrics (all levels), and at level 1 in its upline's.
        let mut network = own_sales.clone();
        network.downline_users = outcome.delta.downline_users;
        network.valid_downline_users = outcome.delta.valid_downline_users;
        for (level, ancestor) in profile.ancestors.iter().enumerate() {
            let downline = network.as_downline(level == 0);
            if !downline.is_empty() {
                receiver_deltas
                    .entry(ancestor)
                    .or_default()
                    .merge(&downline);
            }
        }
        // Its own customers count among its users at all levels too.
        outcome.delta.downline_users_all += outcome.delta.downline_users;
        outcome.delta.valid_downline_users_all += outcome.delta.valid_downline_users;
        // The receivers' entries to write once the transaction commits, and
        // the new terms the ledger entries keep.
        let mut projections: Vec<Projection> = Vec::new();
        let mut terms: Vec<(&OrderRef, DistributorId, CommissionEntry)> = Vec::new();
        if let Some(rules) = rules.as_ref().filter(|_| !commission_orders.is_empty()) {
            let mut earned: BTreeMap<&DistributorId, Money> = BTreeMap::new();
            let mut frozen: BTreeMap<&DistributorId, Vec<(Day, Money)>> = BTreeMap::new();
            for (level, receiver) in &receivers {
                let Some(rprofile) = round2_items
                    .get(&keys::distributor(receiver))
                    .map(parse_profile)
                    .transpose()?
                else {
                    continue;
                };
                // The receiver's rate now, for an order it has no entry for yet.
                let tier = rprofile
                    .tier
                    .as_ref()
                    .and_then(|t| rules.rules.tier_by_id(t.as_str()))
                    .unwrap_or_else(|| rules.rules.entry_tier());
                let (rate_now, fixed_now) = if *level == 1 {
                    (
                        tier.benefits.commission_pct,
                        &tier.benefits.commission_fixed,
                    )
                } else {
                    (
                        tier.benefits.commission_l2_pct,
                        &tier.benefits.commission_l2_fixed,
                    )
                };
                for order in &commission_orders {
                    let entry = &entries[order];
                    let Some(paid) = &entry.record.paid else {
                        continue;
                    };
                    let old = match &entry.commission {
                        Some(terms) => terms.get(*receiver).cloned(),
                        None => round2_items
                            .get(&keys::commission(receiver, order))
                            .map(|i| item::get_json::<CommissionEntry>(i, "entry"))
                            .transpose()?,
                    };
                    if let (None, Some(old)) = (&entry.commission, &old) {
                        // The ledger entry takes over every receiver's terms at once.
                        terms.push((*order, (*receiver).clone(), old.clone()));
                    }
                    // The terms the order was first counted on.
                    let (rate, fixed) = match &old {
                        Some(e) => (e.rate, e.fixed.clone()),
                        None => (
                            rate_now,
                            CommissionEntry::fixed_terms(fixed_now, &entry.record),
                        ),
                    };
                    let amount = CommissionEntry::amount_for_order(rate, &fixed, &entry.record);
                    let before = old.as_ref().map_or(Money::ZERO, |e| e.amount);
                    let settles_at = old.as_ref().map_or_else(
                        || {
                            tier_domain::commission::settles_at(
                                calendar,
                                paid.at,
                                rules.rules.commission().settlement_days,
                            )
                        },
                        |e| e.settles_at,
                    );
                    let nothing_earned = rate.is_zero() && fixed.is_empty();
                    let new_entry = CommissionEntry {
                        level: *level,
                        rate,
                        amount,
                        settles_at,
                        fixed,
                    };
                    if old.is_none() {
                        // Kept even when it earns nothing: a later refund is then
                        // computed on these terms, not on a rate set since.
                        terms.push((*order, (*receiver).clone(), new_entry.clone()));
                    }
                    if amount == before && (old.is_some() || nothing_earned) {
                        continue;
                    }
                    projections.push(Projection {
                        receiver: (*receiver).clone(),
                        order: (*order).clone(),
                        entry: new_entry.clone(),
                        lversion: entry.version + 1,
                    });
                    terms.push((*order, (*receiver).clone(), new_entry));
                    let slot = earned.entry(receiver).or_default();
                    *slot = *slot + (amount - before);
                    // Frozen until its day; once settled, only the total moves.
                    let settles_on = calendar.day_of(settles_at);
                    if settles_on > today {
                        frozen
                            .entry(receiver)
                            .or_default()
                            .push((settles_on, amount - before));
                    }
                }
            }
            // Orders of one batch can cancel out in total and still move
            // what is frozen on different days.
            for (receiver, amount) in earned {
                let frozen_commission = frozen.remove(receiver).unwrap_or_default();
                receiver_deltas
                    .entry(receiver)
                    .or_default()
                    .merge(&MetricsDelta {
                        cumulative_commission: amount,
                        frozen_commission,
                        ..Default::default()
                    });
            }
        }
        for (order, receiver, term) in terms {
            entries
                .get_mut(order)
                .expect("every order was read")
                .commission
                .get_or_insert_with(BTreeMap::new)
                .insert(receiver, term);
        }
        // Receivers' entries a first delivery may not have written.
        for (order, receiver) in &to_check {
            let entry = &entries[*order];
            let Some(term) = entry.commission.as_ref().and_then(|c| c.get(receiver)) else {
                continue;
            };
            if projections
                .iter()
                .any(|p| &p.receiver == receiver && &p.order == *order)
            {
                continue;
            }
            let written = round2_items
                .get(&keys::commission(receiver, order))
                .map(|i| item::get_json::<CommissionEntry>(i, "entry"))
                .transpose()?;
            // Terms that never earned anything have no entry to show.
            let never_earned = written.is_none() && term.amount.is_zero();
            if written.as_ref() != Some(term) && !never_earned {
                // The version the entry has once this pass commits.
                projections.push(Projection {
                    receiver: receiver.clone(),
                    order: (*order).clone(),
                    entry: term.clone(),
                    lversion: entry.version + u64::from(entry.changed),
                });
            }
        }
        for (order, entry) in entries.iter().filter(|(_, e)| e.changed) {
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &keys::order_ledger(distributor, order),
                    "order_ledger",
                    // `terms`: this entry keeps the SKUs and daily kinds it was first counted in.
                    [
                        ("record", item::json(&entry.record)),
                        ("version", n(entry.version + 1)),
                        ("order", s(order.to_string())),
                        // 2: it keeps its commission terms too (1: its SKUs and daily kinds).
                        ("terms", n(if entry.commission.is_some() { 2 } else { 1 })),
                    ]
                    .into_iter()
                    // Absent on an entry from before it was kept here, until
                    // its commission next moves: the receivers' entries hold it.
                    .chain(
                        entry
                            .commission
                            .as_ref()
                            .filter(|c| !c.is_empty())
                            .map(|c| ("commission", item::json(&KeptTerms::map(c)))),
                    )
                    .chain((!entry.daily.is_empty()).then(|| {
                        (
                            "daily",
                            AttributeValue::Ss(entry.daily.iter().cloned().collect()),
                        )
                    }))
                    .chain((!entry.skus.is_empty()).then(|| {
                        (
                            "skus",
                            AttributeValue::Ss(entry.skus.iter().map(|s| s.to_string()).collect()),
                        )
                    })),
                )));
            let put = if entry.version == 0 {
                put.condition_expression("attribute_not_exists(PK)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", n(entry.version))
            };
            tx.push(
                TransactWriteItem::builder()
                    .put(put.build().expect("put has item"))
                    .build(),
            );
        }
        // Nothing is written that a read could not place back.
        check_writable(distributor, &outcome.delta)?;
        for (id, delta) in receiver_deltas.iter().chain(&daily_moves) {
            check_writable(id, delta)?;
        }
        for (receiver, delta) in receiver_deltas.into_iter().filter(|(_, d)| !d.is_empty()) {
            outcome.commission_earned = outcome.commission_earned + delta.cumulative_commission;
            tx.push(
                TransactWriteItem::builder()
                    .update(metrics_update(self, receiver, &delta, None))
                    .build(),
            );
            outcome.commission_receivers.push(receiver.clone());
        }

        metrics.apply(&outcome.delta);
        // Decided on the metrics as they will be once this commits; the
        // metrics version guard makes that true.
        outcome.change = decide(&profile, &metrics, rules.as_ref());
        let stale = metrics_item
            .map(|i| stale_buckets(i, today))
            .unwrap_or_default();
        // The sorted lists' ranks move only with own sales: set from the
        // metrics as they will stand, so the index is never a sum of races.
        let ranks: Vec<_> = if outcome.delta.sales.is_empty() {
            Vec::new()
        } else {
            tier_domain::ranking::sales_ranks(&metrics, distributor)
                .map(|r| crate::ranking::sales_rank_attributes(distributor, &r).to_vec())
                .unwrap_or_default()
        };
        if !outcome.delta.is_empty() || !stale.is_empty() {
            tx.push(
                TransactWriteItem::builder()
                    .update(metrics_update_pruning(
                        self,
                        distributor,
                        &outcome.delta,
                        Some(mversion),
                        &stale,
                        &ranks,
                    ))
                    .build(),
            );
        } else if outcome.change.is_some() {
            tx.push(self.metrics_unchanged_check(distributor, mversion));
        }
        if let Some(change) = &outcome.change {
            tx.extend(self.tier_items(
                distributor,
                profile.tier_version,
                Some(change),
                None,
                calendar,
            ));
        }
        tx.extend(self.sales_updates(&sales_moves, analytics::shard_of(distributor.as_str())));
        tx.extend(disorder.iter().map(|(day, r)| self.disorder_put(*day, r)));
        for (id, moves) in &daily_moves {
            tx.extend(
                daily_updates(self, id, moves)
                    .into_iter()
                    .map(|u| TransactWriteItem::builder().update(u).build()),
            );
        }
        if tx.len() > MAX_TX_ITEMS && events.len() > 1 {
            return Ok(Pass::TooLarge);
        }
        if !tx.is_empty() {
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => {}
                Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => {
                    return Ok(Pass::Raced);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // After the commit, retried here; should it still fail, the message
        // is delivered again and the redelivery writes what is missing.
        let mut attempt = 0;
        while let Err(e) = self.write_projections(distributor, &projections).await {
            attempt += 1;
            if attempt == MAX_ATTEMPTS {
                return Err(e.into());
            }
            crate::table::backoff(attempt).await;
        }
        Ok(Pass::Done(Box::new(outcome)))
    }

    /// Writes receivers' commission entries, each the projection of the
    /// terms its order's ledger entry keeps at version `lversion`: a plain
    /// write (1 unit; in the transaction it was 2), which never replaces
    /// what a later version of the ledger entry wrote.
    async fn write_projections(
        &self,
        source: &DistributorId,
        projections: &[Projection],
    ) -> Result<(), StoreError> {
        let writes = projections.iter().map(|p| {
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &keys::commission(&p.receiver, &p.order),
                    "commission",
                    [
                        ("entry", item::json(&p.entry)),
                        ("lversion", n(p.lversion)),
                        ("source", s(source.as_str())),
                        ("order", s(p.order.to_string())),
                    ],
                )))
                .condition_expression("attribute_not_exists(lversion) OR lversion <= :v")
                .expression_attribute_values(":v", n(p.lversion))
                .build()
                .expect("put has item");
            // A failed condition: a later version is there already.
            self.transact(vec![TransactWriteItem::builder().put(put).build()])
        });
        futures::future::try_join_all(writes).await?;
        Ok(())
    }

    fn metrics_unchanged_check(
        &self,
        distributor: &DistributorId,
        mversion: u64,
    ) -> TransactWriteItem {
        let (pk, sk) = keys::metrics(distributor);
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk));
        let check = if mversion == 0 {
            check.condition_expression("attribute_not_exists(mversion)")
        } else {
            check
                .condition_expression("mversion = :mv")
                .expression_attribute_values(":mv", n(mversion))
        };
        TransactWriteItem::builder()
            .condition_check(check.build().expect("check has key"))
            .build()
    }
}
