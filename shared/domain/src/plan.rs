//! What a batch of one distributor's order events changes, decided from
//! what was read: the ledger entries to write, the seller's, buyers' and
//! receivers' deltas, the commission terms each entry keeps, the sales
//! cells, price disorder and daily buckets. Pure: the store reads the
//! items, hands them here, and writes the plan as one transaction.
//!
//! Planning takes two reads, because what the second reads follows from
//! the first: [`stage`] applies the events to the entries read first and
//! says what else to read ([`Staged::wants`]: the buyers whose counts move,
//! the commission receivers, the receivers' entries to check), and
//! [`Staged::finish`] completes the plan from that second read.

use std::collections::{BTreeMap, BTreeSet};

use crate::analytics::{self, DisorderRecord, SalesMoves};
use crate::calendar::{BrandCalendar, Day};
use crate::commission::{self, CommissionEntry};
use crate::ids::{BuyerId, DistributorId, OrderRef, Sku, TierId};
use crate::ledger::{self, Applied, BuyerRecord, Contribution, OrderRecord};
use crate::metrics::{MetricsDelta, only_kinds};
use crate::money::Money;
use crate::order::{OrderEvent, OrderEventKind};
use crate::rules::RuleSet;

/// A ledger entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRead {
    pub record: OrderRecord,
    pub version: u64,
    /// The daily bucket kinds its contribution went into when first
    /// counted: its later changes move those and only those, whatever the
    /// rule set reads by then.
    pub daily: BTreeSet<String>,
    /// Likewise the SKUs whose purchased quantities it counted in.
    pub skus: BTreeSet<Sku>,
    /// What each receiver earns on the order; `None` on entries from
    /// before the ledger kept it (the receivers' entries hold it).
    pub commission: Option<BTreeMap<DistributorId, CommissionEntry>>,
    /// Written before entries kept their terms at all.
    pub without_terms: bool,
}

/// What the first read gave, and what the plan is for.
pub struct FirstRead<'a> {
    pub distributor: &'a DistributorId,
    /// The seller's tier now: what its payments count for in the tier
    /// analytics.
    pub tier: Option<&'a TierId>,
    /// The seller's upline, its upline, and so on.
    pub ancestors: &'a [DistributorId],
    pub rules: Option<&'a RuleSet>,
    /// Each order the events name, with its entry if it has one.
    pub entries: BTreeMap<OrderRef, Option<EntryRead>>,
    pub calendar: &'a BrandCalendar,
    /// The brand's day, which rolling windows end on and settlement is
    /// counted from.
    pub today: Day,
    /// The daily bucket kinds the current rules read: where an order first
    /// counted now goes.
    pub daily_kinds: BTreeSet<String>,
}

/// An entry being planned.
#[derive(Debug, Clone)]
struct Entry {
    record: OrderRecord,
    version: u64,
    before: Contribution,
    before_purchased: BTreeMap<Sku, i64>,
    changed: bool,
    daily: BTreeSet<String>,
    skus: BTreeSet<Sku>,
    commission: Option<BTreeMap<DistributorId, CommissionEntry>>,
}

/// The events applied, and what the second read must fetch.
pub struct Staged<'a> {
    read: FirstRead<'a>,
    entries: BTreeMap<OrderRef, Entry>,
    recorded: usize,
    duplicates: usize,
    delta: MetricsDelta,
    own_sales: MetricsDelta,
    buyer_changes: BTreeMap<BuyerId, (i64, bool)>,
    receivers: Vec<(u8, DistributorId)>,
    commission_orders: Vec<OrderRef>,
    daily_moves: BTreeMap<DistributorId, MetricsDelta>,
    disorder: Vec<(Day, DisorderRecord)>,
    sales_moves: SalesMoves,
    to_check: Vec<(OrderRef, DistributorId)>,
}

/// What the second read must fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wants {
    /// Buyers whose live-order counts move.
    pub buyers: Vec<BuyerId>,
    /// The commission receivers' profiles (their tiers give new orders'
    /// rates); empty when no order's commission moves.
    pub receivers: Vec<DistributorId>,
    /// Receivers' commission entries: of orders from before the ledger
    /// kept the terms, and of redelivered orders, which a first delivery
    /// may have committed without writing.
    pub commission_entries: Vec<(DistributorId, OrderRef)>,
}

/// What the second read gave.
#[derive(Debug, Clone, Default)]
pub struct SecondRead {
    /// Live orders of each buyer that has a record.
    pub buyers: BTreeMap<BuyerId, i64>,
    /// The tier of each receiver that exists (`None`: it has no tier).
    pub receiver_tiers: BTreeMap<DistributorId, Option<TierId>>,
    /// The receivers' commission entries that exist.
    pub commission_entries: BTreeMap<(DistributorId, OrderRef), CommissionEntry>,
}

/// A ledger entry to write, conditional on the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryWrite {
    pub order: OrderRef,
    pub record: OrderRecord,
    /// The version read (0: none); the write is version + 1.
    pub version: u64,
    pub daily: BTreeSet<String>,
    pub skus: BTreeSet<Sku>,
    pub commission: Option<BTreeMap<DistributorId, CommissionEntry>>,
}

/// A buyer's record to write: its new count, conditional on the one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerWrite {
    pub buyer: BuyerId,
    pub live_orders: i64,
    /// `None`: the buyer had no record.
    pub read: Option<i64>,
}

/// A receiver's commission entry, the projection of the terms its order's
/// ledger entry keeps at version `lversion`: written after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    pub receiver: DistributorId,
    pub order: OrderRef,
    pub entry: CommissionEntry,
    pub lversion: u64,
}

/// Everything a batch changes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub recorded: usize,
    pub duplicates: usize,
    pub entries: Vec<EntryWrite>,
    pub buyers: Vec<BuyerWrite>,
    /// The seller's own metrics.
    pub delta: MetricsDelta,
    /// The upline's level-1 and all-level downline metrics, and each
    /// receiver's commission; none empty.
    pub receiver_deltas: BTreeMap<DistributorId, MetricsDelta>,
    /// Day-by-day moves, where the rules read rolling windows.
    pub daily_moves: BTreeMap<DistributorId, MetricsDelta>,
    pub sales_moves: SalesMoves,
    pub disorder: Vec<(Day, DisorderRecord)>,
    pub projections: Vec<Projection>,
}

/// Applies `events` (all of `read.distributor`'s, in arrival order) to the
/// entries read, and works out what the second read must fetch.
pub fn stage<'a>(mut read: FirstRead<'a>, events: &[OrderEvent]) -> Staged<'a> {
    let tracked = read.rules.map(|r| r.referenced_skus()).unwrap_or_default();
    let mut entries: BTreeMap<OrderRef, Entry> = BTreeMap::new();
    // Taken, not copied: the staged entries are what the plan works on.
    for (order, found) in std::mem::take(&mut read.entries) {
        let (record, version, daily, skus, commission, without_terms) = match found {
            Some(e) => (
                e.record,
                e.version,
                e.daily,
                e.skus,
                e.commission,
                e.without_terms,
            ),
            None => (
                OrderRecord::default(),
                0,
                BTreeSet::new(),
                BTreeSet::new(),
                Some(BTreeMap::new()),
                false,
            ),
        };
        let before = record.contribution();
        let before_purchased = record.purchased();
        // An entry counted before entries kept their terms counted its
        // purchases in whatever SKUs rules referred to, as they still do.
        let skus = if without_terms && before.day.is_some() {
            before_purchased
                .keys()
                .filter(|s| tracked.contains(*s))
                .cloned()
                .collect()
        } else {
            skus
        };
        entries.insert(
            order,
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
    let mut recorded = 0;
    let mut duplicates = 0;
    // Orders an event of which was delivered again: a first delivery may
    // have committed and failed before writing the receivers' entries.
    let mut redelivered: BTreeSet<OrderRef> = BTreeSet::new();
    // Price disorder found in payments counted now, by day.
    let mut disorder: Vec<(Day, DisorderRecord)> = Vec::new();
    for e in events {
        let entry = entries.get_mut(&e.order).expect("every order was read");
        match entry.record.apply(e, read.calendar) {
            Applied::Duplicate => {
                duplicates += 1;
                redelivered.insert(e.order.clone());
            }
            Applied::Changed { .. } => {
                entry.changed = true;
                recorded += 1;
                if let OrderEventKind::Paid { lines, .. } = &e.kind {
                    // The tier its sales count for in the tier analytics,
                    // refunds included: the seller's as the payment is counted.
                    if let Some(paid) = entry.record.paid.as_mut() {
                        paid.tier = read.tier.cloned();
                    }
                    let found = analytics::violations(lines);
                    if !found.is_empty() {
                        disorder.push((
                            read.calendar.day_of(e.occurred_at),
                            DisorderRecord {
                                distributor: read.distributor.clone(),
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
    let mut sales_moves = SalesMoves::new();
    for (order, entry) in entries.iter().filter(|(_, e)| e.changed) {
        if let Some(paid) = &entry.record.paid {
            analytics::merge_moves(
                &mut sales_moves,
                analytics::sales_move(
                    entry.before,
                    entry.record.contribution(),
                    paid,
                    analytics::order_shard(order),
                ),
            );
        }
    }
    let mut delta = MetricsDelta::default();
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
            let purchased = ledger::purchased_delta(&entry.before_purchased, &after, &entry.skus);
            delta.merge(&MetricsDelta {
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
        delta.merge(&ledger::delta(entry.before, after));
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
    let receivers: Vec<(u8, DistributorId)> = read
        .ancestors
        .iter()
        .take(2)
        .enumerate()
        .map(|(i, a)| (i as u8 + 1, a.clone()))
        .collect();
    // Orders whose amount or units moved (units earn fixed amounts).
    let commission_orders: Vec<OrderRef> = if read.rules.is_some() {
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
            .map(|(o, _)| o.clone())
            .collect()
    } else {
        Vec::new()
    };
    // Daily buckets, where the rules read rolling windows: an order first
    // counted now goes into the kinds they read, and keeps to them.
    let mut daily_moves: BTreeMap<DistributorId, MetricsDelta> = BTreeMap::new();
    for entry in entries.values_mut().filter(|e| e.changed) {
        let after = entry.record.contribution();
        if entry.before.day.is_none() && after.day.is_some() {
            entry.daily = read.daily_kinds.clone();
        }
        if entry.daily.is_empty() {
            continue;
        }
        let own = ledger::delta(entry.before, after);
        daily_moves
            .entry(read.distributor.clone())
            .or_default()
            .merge(&only_kinds(&own, &entry.daily));
        for (level, ancestor) in read.ancestors.iter().enumerate() {
            daily_moves
                .entry(ancestor.clone())
                .or_default()
                .merge(&only_kinds(&own.as_downline(level == 0), &entry.daily));
        }
    }
    let to_check: Vec<(OrderRef, DistributorId)> = redelivered
        .iter()
        .flat_map(|o| {
            entries[o]
                .commission
                .iter()
                .flat_map(|c| c.keys().cloned())
                .map(move |r| (o.clone(), r))
        })
        .collect();
    Staged {
        read,
        entries,
        recorded,
        duplicates,
        delta,
        own_sales,
        buyer_changes,
        receivers,
        commission_orders,
        daily_moves,
        disorder,
        sales_moves,
        to_check,
    }
}

impl Staged<'_> {
    pub fn wants(&self) -> Wants {
        let mut wants = Wants {
            buyers: self.buyer_changes.keys().cloned().collect(),
            ..Default::default()
        };
        if !self.commission_orders.is_empty() {
            for (_, r) in &self.receivers {
                wants.receivers.push(r.clone());
                // Entries from before the ledger kept the terms: the
                // receivers' entries hold them.
                wants.commission_entries.extend(
                    self.commission_orders
                        .iter()
                        .filter(|o| self.entries[*o].commission.is_none())
                        .map(|o| (r.clone(), o.clone())),
                );
            }
        }
        wants
            .commission_entries
            .extend(self.to_check.iter().map(|(o, r)| (r.clone(), o.clone())));
        wants
    }

    /// The plan, from the second read.
    pub fn finish(self, second: &SecondRead) -> Plan {
        let Staged {
            read,
            mut entries,
            recorded,
            duplicates,
            mut delta,
            own_sales,
            buyer_changes,
            receivers,
            commission_orders,
            daily_moves,
            disorder,
            sales_moves,
            to_check,
        } = self;
        let mut buyers = Vec::new();
        for (buyer, (change, _)) in &buyer_changes {
            let existing = second.buyers.get(buyer).copied();
            let mut rec = BuyerRecord {
                live_orders: existing.unwrap_or(0),
            };
            // Counted as a downline user from the first paid order on.
            delta.merge(&rec.apply(*change, existing.is_some()));
            buyers.push(BuyerWrite {
                buyer: buyer.clone(),
                live_orders: rec.live_orders,
                read: existing,
            });
        }

        // What each upline gains: the level-1 upline the seller's sales as
        // downline sales, each receiver its commission. One update each.
        let mut receiver_deltas: BTreeMap<DistributorId, MetricsDelta> = BTreeMap::new();
        // The seller's sales and its buyers count in its upline's metrics,
        // at level 1 and at all levels. The ancestors above take them from
        // the upline's network by pull ([`crate::network`]), not here.
        let mut network = own_sales;
        network.downline_users = delta.downline_users;
        network.valid_downline_users = delta.valid_downline_users;
        if let Some(upline) = read.ancestors.first() {
            let downline = network.as_downline(true);
            if !downline.is_empty() {
                receiver_deltas
                    .entry(upline.clone())
                    .or_default()
                    .merge(&downline);
            }
        }
        // Its own customers count among its users at all levels too.
        delta.downline_users_all += delta.downline_users;
        delta.valid_downline_users_all += delta.valid_downline_users;
        // The receivers' entries to write once the transaction commits, and
        // the new terms the ledger entries keep.
        let mut projections: Vec<Projection> = Vec::new();
        let mut terms: Vec<(OrderRef, DistributorId, CommissionEntry)> = Vec::new();
        if let Some(rules) = read.rules.filter(|_| !commission_orders.is_empty()) {
            let mut earned: BTreeMap<&DistributorId, Money> = BTreeMap::new();
            let mut frozen: BTreeMap<&DistributorId, Vec<(Day, Money)>> = BTreeMap::new();
            for (level, receiver) in &receivers {
                let Some(receiver_tier) = second.receiver_tiers.get(receiver) else {
                    continue;
                };
                // The receiver's rate now, for an order it has no entry for yet.
                let tier = receiver_tier
                    .as_ref()
                    .and_then(|t| rules.tier_by_id(t.as_str()))
                    .unwrap_or_else(|| rules.entry_tier());
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
                        Some(terms) => terms.get(receiver).cloned(),
                        None => second
                            .commission_entries
                            .get(&(receiver.clone(), order.clone()))
                            .cloned(),
                    };
                    if let (None, Some(old)) = (&entry.commission, &old) {
                        // The ledger entry takes over every receiver's terms at once.
                        terms.push((order.clone(), receiver.clone(), old.clone()));
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
                            commission::settles_at(
                                read.calendar,
                                paid.at,
                                rules.commission().settlement_days,
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
                        terms.push((order.clone(), receiver.clone(), new_entry.clone()));
                    }
                    if amount == before && (old.is_some() || nothing_earned) {
                        continue;
                    }
                    projections.push(Projection {
                        receiver: receiver.clone(),
                        order: order.clone(),
                        entry: new_entry.clone(),
                        lversion: entry.version + 1,
                    });
                    terms.push((order.clone(), receiver.clone(), new_entry));
                    let slot = earned.entry(receiver).or_default();
                    *slot = *slot + (amount - before);
                    // Frozen until its day; once settled, only the total moves.
                    let settles_on = read.calendar.day_of(settles_at);
                    if settles_on > read.today {
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
                    .entry(receiver.clone())
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
                .get_mut(&order)
                .expect("every order was read")
                .commission
                .get_or_insert_with(BTreeMap::new)
                .insert(receiver, term);
        }
        // Receivers' entries a first delivery may not have written.
        for (order, receiver) in &to_check {
            let entry = &entries[order];
            let Some(term) = entry.commission.as_ref().and_then(|c| c.get(receiver)) else {
                continue;
            };
            if projections
                .iter()
                .any(|p| &p.receiver == receiver && &p.order == order)
            {
                continue;
            }
            let written = second
                .commission_entries
                .get(&(receiver.clone(), order.clone()));
            // Terms that never earned anything have no entry to show.
            let never_earned = written.is_none() && term.amount.is_zero();
            if written != Some(term) && !never_earned {
                // The version the entry has once this pass commits.
                projections.push(Projection {
                    receiver: receiver.clone(),
                    order: order.clone(),
                    entry: term.clone(),
                    lversion: entry.version + u64::from(entry.changed),
                });
            }
        }
        receiver_deltas.retain(|_, d| !d.is_empty());
        Plan {
            recorded,
            duplicates,
            entries: entries
                .into_iter()
                .filter(|(_, e)| e.changed)
                .map(|(order, e)| EntryWrite {
                    order,
                    record: e.record,
                    version: e.version,
                    daily: e.daily,
                    skus: e.skus,
                    commission: e.commission,
                })
                .collect(),
            buyers,
            delta,
            receiver_deltas,
            daily_moves,
            sales_moves,
            disorder,
            projections,
        }
    }
}

/// What a backfill adds to one ledger entry for a newly published rule
/// set: the daily kinds and SKUs it now counts in, and the buckets that
/// move with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    pub add_kinds: BTreeSet<String>,
    pub add_skus: BTreeMap<Sku, i64>,
    /// The entry's contribution as it stands, into the new kinds: the
    /// seller's, then each ancestor's as downline.
    pub moves: Vec<(DistributorId, MetricsDelta)>,
}

/// The backfill of an entry holding `record`, which counts in `has_kinds`
/// and `has_skus` already, for rules that read `kinds` by day since
/// `since` and purchases of `skus`; `None` when it has nothing to add.
/// An entry from before terms were kept (`without_terms`) counts its
/// purchases in every SKU rules refer to already.
#[allow(clippy::too_many_arguments)]
pub fn backfill(
    record: &OrderRecord,
    without_terms: bool,
    has_kinds: &BTreeSet<String>,
    has_skus: &BTreeSet<String>,
    kinds: &BTreeSet<String>,
    skus: &BTreeSet<Sku>,
    since: Day,
    seller: &DistributorId,
    ancestors: &[DistributorId],
) -> Option<Backfill> {
    let contribution = record.contribution();
    let day = contribution.day?;
    let add_kinds: BTreeSet<String> = if day >= since {
        kinds.difference(has_kinds).cloned().collect()
    } else {
        BTreeSet::new()
    };
    let add_skus: BTreeMap<Sku, i64> = if without_terms {
        BTreeMap::new()
    } else {
        record
            .purchased()
            .into_iter()
            .filter(|(sku, q)| *q != 0 && skus.contains(sku) && !has_skus.contains(sku.as_str()))
            .collect()
    };
    if add_kinds.is_empty() && add_skus.is_empty() {
        return None;
    }
    let whole = ledger::delta(Contribution::default(), contribution);
    let mut moves = vec![(seller.clone(), only_kinds(&whole, &add_kinds))];
    for (level, ancestor) in ancestors.iter().enumerate() {
        moves.push((
            ancestor.clone(),
            only_kinds(&whole.as_downline(level == 0), &add_kinds),
        ));
    }
    Some(Backfill {
        add_kinds,
        add_skus,
        moves,
    })
}

/// What registering a distributor under `ancestors` (its upline first)
/// adds to them: a downline distributor for the upline, at level 1 and at
/// all levels. The ancestors above count it by pull ([`crate::network`]).
pub fn newcomer_deltas(ancestors: &[DistributorId]) -> Vec<(DistributorId, MetricsDelta)> {
    ancestors
        .first()
        .map(|upline| {
            (
                upline.clone(),
                MetricsDelta {
                    downline_distributors: 1,
                    downline_distributors_all: 1,
                    ..Default::default()
                },
            )
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests;
