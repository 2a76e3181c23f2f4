//! Applying order events to the ledger, the metrics and the tier, exactly
//! once, one distributor at a time. What a batch changes is decided by the
//! domain's [`tier_domain::plan`] from the items read here; this module
//! reads them, and writes the plan.
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

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use tier_domain::calendar::{BrandCalendar, Day};
use tier_domain::commission::CommissionEntry;
use tier_domain::ids::{DistributorId, OrderRef};
use tier_domain::ledger::OrderRecord;
use tier_domain::metrics::{MetricShards, Metrics, MetricsDelta};
use tier_domain::money::Money;
use tier_domain::order::OrderEvent;
use tier_domain::plan;
use tier_domain::tier::TierChange;

use crate::distributors::{Distributor, parse_profile};
use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::metrics::{
    check_writable, daily_keys, daily_kinds, daily_updates_in, merge_daily, metrics_update,
    metrics_update_pruning, parse_metrics, shard_update, stale_buckets,
};
use crate::rules::{PublishedRuleSet, parse_rule_set};
use crate::shards;
use crate::table::{Table, TxOutcome};

/// Conditional writes that lose a race are retried from a fresh read this
/// many times before the messages are handed back to the queue.
const MAX_ATTEMPTS: u32 = 8;
/// Events per transaction: each may touch its ledger entry and its buyer,
/// beside the seller's, the upline's and the level-2 receiver's metrics
/// and, for rules with rolling windows over the network, a daily bucket
/// per ancestor (at most [`crate::distributors::MAX_DEPTH`]), and
/// TransactWriteItems takes 100 actions.
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
    /// Every upline of the seller, the upline first: after a redelivery,
    /// the re-evaluation a failed first delivery may have missed, and who
    /// pulls the upline's network next.
    pub ancestors: Vec<DistributorId>,
    /// Commission the receivers gained (a refund makes it negative), for
    /// the operators' metrics.
    pub commission_earned: Money,
    /// A spread distributor's tier changed on a read its shards may have
    /// moved past: evaluated once more ([`crate::shards`]).
    recheck: bool,
    /// A spread seller's sales moved: its ranks wait for its refresh.
    pub ranks_stale: bool,
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

/// A ledger entry as the plan reads it.
fn parse_entry(key: &keys::Key, i: &item::Item) -> Result<plan::EntryRead, StoreError> {
    Ok(plan::EntryRead {
        record: item::get_json::<OrderRecord>(i, "record")?,
        version: item::get_u64_or_zero(i, "version")?,
        daily: item::get_string_set(i, "daily"),
        skus: item::get_string_set(i, "skus")
            .iter()
            .map(|raw| {
                tier_domain::ids::Sku::parse(raw)
                    .map_err(|e| StoreError::corrupt(key, e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        commission: kept_commission(i)?,
        without_terms: !i.contains_key("terms"),
    })
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
        self.recheck = later.recheck;
        self.ranks_stale |= later.ranks_stale;
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
                Pass::Done(outcome) if outcome.recheck => {
                    let again = Box::pin(self.apply_group(
                        distributor,
                        &[],
                        calendar,
                        today,
                        known_rules,
                        decide,
                    ))
                    .await?;
                    return Ok(outcome.then(again));
                }
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

    /// One read-decide-write pass: the items read, the plan drawn from them
    /// ([`tier_domain::plan`]), and the plan written as one transaction.
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
        let mut entries = BTreeMap::new();
        for o in &orders {
            let key = keys::order_ledger(distributor, o);
            let read = items.get(&key).map(|i| parse_entry(&key, i)).transpose()?;
            entries.insert((*o).clone(), read);
        }
        let spans = rules
            .as_ref()
            .map(|r| r.rules.daily_spans())
            .unwrap_or_default();
        let staged = plan::stage(
            plan::FirstRead {
                distributor,
                tier: profile.tier.as_ref(),
                ancestors: &profile.ancestors,
                rules: rules.as_ref().map(|r| &r.rules),
                entries,
                calendar,
                today,
                daily_kinds: daily_kinds(&spans),
            },
            events,
        );

        // The second read: buyers, the seller's daily items, the receivers
        // and the receivers' entries the plan needs.
        let wants = staged.wants();
        let spread = profile.metric_shards;
        let seller_daily = daily_keys(distributor, spread, today, &spans);
        let mut round2: Vec<keys::Key> = wants
            .buyers
            .iter()
            .map(|b| keys::buyer(distributor, b))
            .collect();
        round2.extend(seller_daily.iter().cloned());
        round2.extend(shards::shard_keys([(distributor, spread)]));
        round2.extend(wants.receivers.iter().map(keys::distributor));
        round2.extend(
            wants
                .commission_entries
                .iter()
                .map(|(r, o)| keys::commission(r, o)),
        );
        round2.sort();
        round2.dedup();
        let round2_items = if round2.is_empty() {
            HashMap::new()
        } else {
            self.batch_get(&round2, true).await?
        };
        for key in &seller_daily {
            if let Some(item) = round2_items.get(key) {
                merge_daily(&mut metrics, item)?;
            }
        }
        shards::absorb_shards(distributor, spread, &round2_items, &mut metrics)?;
        let mut receiver_shards = HashMap::new();
        let mut second = plan::SecondRead::default();
        for buyer in &wants.buyers {
            if let Some(i) = round2_items.get(&keys::buyer(distributor, buyer)) {
                second
                    .buyers
                    .insert(buyer.clone(), item::get_i64(i, "live_orders")?);
            }
        }
        for r in &wants.receivers {
            if let Some(i) = round2_items.get(&keys::distributor(r)) {
                let receiver = parse_profile(i)?;
                receiver_shards.insert(r.clone(), receiver.metric_shards);
                second.receiver_tiers.insert(r.clone(), receiver.tier);
            }
        }
        for (r, o) in &wants.commission_entries {
            if let Some(i) = round2_items.get(&keys::commission(r, o)) {
                second.commission_entries.insert(
                    (r.clone(), o.clone()),
                    item::get_json::<CommissionEntry>(i, "entry")?,
                );
            }
        }
        let plan = staged.finish(&second);

        // Nothing is written that a read could not place back.
        check_writable(distributor, &plan.delta)?;
        for (id, delta) in plan.receiver_deltas.iter().chain(&plan.daily_moves) {
            check_writable(id, delta)?;
        }
        let mut outcome = GroupOutcome {
            recorded: plan.recorded,
            duplicates: plan.duplicates,
            delta: plan.delta.clone(),
            ancestors: profile.ancestors.clone(),
            ..Default::default()
        };
        let mut tx = Vec::new();
        tx.extend(plan.buyers.iter().map(|b| self.buyer_put(distributor, b)));
        tx.extend(plan.entries.iter().map(|e| self.entry_put(distributor, e)));
        // A spread distributor's part of the batch goes to the shard of the
        // batch's first order: any shard counts the same, and a retry of the
        // batch picks the same one.
        let shard_of = |shards: MetricShards| orders.first().and_then(|o| shards.shard_of(o));
        for (receiver, delta) in &plan.receiver_deltas {
            outcome.commission_earned = outcome.commission_earned + delta.cumulative_commission;
            let update = match receiver_shards.get(receiver).copied().and_then(shard_of) {
                Some(b) => shard_update(self, receiver, b, delta),
                None => metrics_update(self, receiver, delta, None),
            };
            tx.push(TransactWriteItem::builder().update(update).build());
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
        let seller_shard = shard_of(spread);
        let ranks: Vec<_> = if outcome.delta.sales.is_empty() || seller_shard.is_some() {
            Vec::new()
        } else {
            tier_domain::ranking::sales_ranks(&metrics, distributor)
                .map(|r| crate::ranking::sales_rank_attributes(distributor, &r).to_vec())
                .unwrap_or_default()
        };
        // Whether the metrics item is written, under its version; if not, a
        // tier change checks that version instead.
        let mut guarded = false;
        if let Some(b) = seller_shard {
            // Spread: the shard takes the batch, and the metrics item is
            // left alone (pulls and withdrawals write it); a tier change is
            // looked at again once committed. The ranks wait for their
            // refresh, after a redelivery too: its first delivery may have
            // committed and stopped before asking.
            outcome.ranks_stale = !outcome.delta.sales.is_empty() || plan.duplicates > 0;
            if !outcome.delta.is_empty() {
                tx.push(
                    TransactWriteItem::builder()
                        .update(shard_update(self, distributor, b, &outcome.delta))
                        .build(),
                );
            }
        } else if !outcome.delta.is_empty() || !stale.is_empty() {
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
            guarded = true;
        }
        if outcome.change.is_some() && !guarded {
            tx.push(self.metrics_unchanged_check(distributor, mversion));
        }
        // Orders may have added to the shards since they were read, by this
        // batch or an evaluation alike: a change is looked at once more.
        outcome.recheck = spread.shards > 0 && outcome.change.is_some();
        if let Some(change) = &outcome.change {
            tx.extend(self.tier_items(
                distributor,
                profile.tier_version,
                Some(change),
                None,
                calendar,
            ));
        }
        tx.extend(self.sales_updates(&plan.sales_moves));
        tx.extend(
            plan.disorder
                .iter()
                .map(|(day, r)| self.disorder_put(*day, r)),
        );
        for (id, moves) in &plan.daily_moves {
            // Spread, a day's moves go where its counters went.
            let shard = if id == distributor {
                seller_shard
            } else {
                receiver_shards.get(id).copied().and_then(shard_of)
            };
            tx.extend(
                daily_updates_in(self, id, shard, moves)
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
        while let Err(e) = self.write_projections(distributor, &plan.projections).await {
            attempt += 1;
            if attempt == MAX_ATTEMPTS {
                return Err(e.into());
            }
            crate::table::backoff(attempt).await;
        }
        Ok(Pass::Done(Box::new(outcome)))
    }

    /// A buyer's record, conditional on the count read.
    fn buyer_put(&self, distributor: &DistributorId, b: &plan::BuyerWrite) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(new_item(
                &keys::buyer(distributor, &b.buyer),
                "downline_user",
                [
                    ("live_orders", n(b.live_orders)),
                    ("buyer", s(b.buyer.as_str())),
                ],
            )));
        let put = match b.read {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(old) => put
                .condition_expression("live_orders = :old")
                .expression_attribute_values(":old", n(old)),
        };
        TransactWriteItem::builder()
            .put(put.build().expect("put has item"))
            .build()
    }

    /// An order's ledger entry, conditional on the version read.
    fn entry_put(
        &self,
        distributor: &DistributorId,
        entry: &plan::EntryWrite,
    ) -> TransactWriteItem {
        let order = &entry.order;
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
        TransactWriteItem::builder()
            .put(put.build().expect("put has item"))
            .build()
    }

    /// Writes receivers' commission entries, each the projection of the
    /// terms its order's ledger entry keeps at version `lversion`: a plain
    /// write (1 unit; in the transaction it was 2), which never replaces
    /// what a later version of the ledger entry wrote.
    async fn write_projections(
        &self,
        source: &DistributorId,
        projections: &[plan::Projection],
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
