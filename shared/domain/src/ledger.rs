//! The ledger: each order's contribution to its distributor's metrics.
//!
//! Delivery is at least once and out of order (a refund can arrive before
//! its order). So an order's record keeps every event it has seen, keyed by
//! id, and its contribution is a pure function of that record. Applying an
//! event yields the *difference* between the contribution before and after;
//! a duplicate yields nothing, and any arrival order ends in the same record.
//! Metrics are therefore always the sum of the contributions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{BrandCalendar, Day};
use crate::ids::{BuyerId, EventId, LineId, RefundId, Sku, TierId};
use crate::metrics::MetricsDelta;
use crate::money::Money;
use crate::order::{OrderEvent, OrderEventKind, ReturnedLine};
use crate::region::Region;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidFacts {
    pub event_id: EventId,
    pub buyer: BuyerId,
    pub at: DateTime<Utc>,
    /// The brand-calendar day (and so month) the sale counts in, fixed when
    /// paid: a refund in December reverses November's sales if the order was
    /// November's. Records from before days were kept name only the month
    /// (`"month": "2026-11"`); they read as its first day, which keeps their
    /// month and which no daily bucket holds (see `daily` on the entry).
    #[serde(alias = "month", deserialize_with = "day_or_month")]
    pub day: Day,
    pub total: Money,
    /// What was bought, for the purchased-quantity metric.
    #[serde(default)]
    pub lines: Vec<PaidLine>,
    /// The buyer's province, where the platform gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The seller's tier when the order was paid: the tier its sales count
    /// for in the tier analytics, refunds included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    /// What the buyer paid for the line (the commission base of a line
    /// with a fixed commission amount). `None` on records from before it
    /// was kept: such lines earn the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

fn day_or_month<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
    let raw = String::deserialize(d)?;
    match raw.len() {
        7 => crate::calendar::Month::parse(&raw)
            .map(|m| m.day(1).expect("every month has a first day"))
            .map_err(serde::de::Error::custom),
        _ => Day::parse(&raw).map_err(serde::de::Error::custom),
    }
}

/// Everything recorded about one order, for metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderRecord {
    pub paid: Option<PaidFacts>,
    pub refunds: BTreeMap<RefundId, Money>,
    /// Goods that came back with each refund.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub returns: BTreeMap<RefundId, Vec<ReturnedLine>>,
    pub cancelled_by: Option<EventId>,
}

/// What one order adds to its distributor's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contribution {
    /// The day the order was paid; `None` while it counts for nothing.
    pub day: Option<Day>,
    pub sales: Money,
    /// 1 while the order is paid and not fully refunded or cancelled.
    pub live: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event was already in the record.
    Duplicate,
    Changed {
        before: Contribution,
        after: Contribution,
    },
}

impl OrderRecord {
    pub fn contribution(&self) -> Contribution {
        match (&self.paid, &self.cancelled_by) {
            (Some(paid), None) => {
                let refunded: Money = self.refunds.values().copied().sum();
                // Refunds beyond what was paid are the platform's problem to
                // explain; they never make sales negative.
                let net = (paid.total - refunded).max(Money::ZERO);
                Contribution {
                    day: Some(paid.day),
                    sales: net,
                    live: i64::from(!net.is_zero() || paid.total.is_zero()),
                }
            }
            _ => Contribution::default(),
        }
    }

    /// Quantities bought by SKU, net of returns; nothing once the order no
    /// longer counts (fully refunded or cancelled).
    pub fn purchased(&self) -> BTreeMap<Sku, i64> {
        let mut out = BTreeMap::new();
        let Some(paid) = self.paid.as_ref().filter(|_| self.contribution().live > 0) else {
            return out;
        };
        for line in &paid.lines {
            let net = self.net_quantity(&line.line_id);
            if net > 0 {
                *out.entry(line.sku.clone()).or_default() += net;
            }
        }
        out
    }

    /// Units of a paid line not returned.
    pub fn net_quantity(&self, line: &LineId) -> i64 {
        let Some(paid) = &self.paid else { return 0 };
        let bought: i64 = paid
            .lines
            .iter()
            .filter(|l| &l.line_id == line)
            .map(|l| i64::from(l.quantity))
            .sum();
        let returned: i64 = self
            .returns
            .values()
            .flatten()
            .filter(|r| &r.line_id == line)
            .map(|r| i64::from(r.quantity))
            .sum();
        (bought - returned).max(0)
    }

    pub fn buyer(&self) -> Option<&BuyerId> {
        self.paid.as_ref().map(|p| &p.buyer)
    }

    /// Records `event`; says what changed.
    pub fn apply(&mut self, event: &OrderEvent, calendar: &BrandCalendar) -> Applied {
        let before = self.contribution();
        match &event.kind {
            OrderEventKind::Paid {
                buyer,
                total,
                lines,
                region,
                ..
            } => {
                if self.paid.is_some() {
                    return Applied::Duplicate;
                }
                self.paid = Some(PaidFacts {
                    event_id: event.event_id.clone(),
                    buyer: buyer.clone(),
                    at: event.occurred_at,
                    day: calendar.day_of(event.occurred_at),
                    total: *total,
                    lines: lines
                        .iter()
                        .map(|l| PaidLine {
                            line_id: l.line_id.clone(),
                            sku: l.sku.clone(),
                            quantity: l.quantity,
                            amount: Some(l.amount),
                        })
                        .collect(),
                    region: region.clone(),
                    tier: None,
                });
            }
            OrderEventKind::Refunded {
                refund_id,
                amount,
                lines,
            } => {
                if self.refunds.contains_key(refund_id) {
                    return Applied::Duplicate;
                }
                self.refunds.insert(refund_id.clone(), *amount);
                if !lines.is_empty() {
                    self.returns.insert(refund_id.clone(), lines.clone());
                }
            }
            OrderEventKind::Cancelled => {
                if self.cancelled_by.is_some() {
                    return Applied::Duplicate;
                }
                self.cancelled_by = Some(event.event_id.clone());
            }
            // Shipping moves stock, not sales: the record has nothing to keep.
            OrderEventKind::Shipped { .. } => return Applied::Duplicate,
        }
        Applied::Changed {
            before,
            after: self.contribution(),
        }
    }
}

/// The change in quantities bought, SKU by SKU, limited to `tracked`.
pub fn purchased_delta(
    before: &BTreeMap<Sku, i64>,
    after: &BTreeMap<Sku, i64>,
    tracked: &std::collections::BTreeSet<Sku>,
) -> Vec<(Sku, i64)> {
    tracked
        .iter()
        .map(|sku| {
            (
                sku.clone(),
                after.get(sku).copied().unwrap_or(0) - before.get(sku).copied().unwrap_or(0),
            )
        })
        .filter(|(_, d)| *d != 0)
        .collect()
}

/// The metrics change from an order's contribution moving `before → after`,
/// given whether its buyer had other live orders (`buyer_live_before`) and
/// whether this is the buyer's first order with the distributor.
pub fn delta(before: Contribution, after: Contribution) -> MetricsDelta {
    let mut d = MetricsDelta::default();
    for (c, sign) in [(before, -1i64), (after, 1)] {
        if let Some(day) = c.day {
            let sales = if sign < 0 { -c.sales } else { c.sales };
            if !sales.is_zero() {
                d.merge(&MetricsDelta {
                    sales: vec![(day, sales)],
                    ..Default::default()
                });
            }
            if c.live != 0 {
                d.merge(&MetricsDelta {
                    orders: vec![(day, sign * c.live)],
                    ..Default::default()
                });
            }
        }
    }
    d.sales.retain(|(_, m)| !m.is_zero());
    d.orders.retain(|(_, c)| *c != 0);
    d
}

/// A downline user (下线用户) as the distributor's metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BuyerRecord {
    /// Paid orders not fully refunded or cancelled.
    pub live_orders: i64,
}

impl BuyerRecord {
    /// The change to the user counts when this buyer's live orders move by
    /// `change`; `existed` says whether the buyer was already counted.
    pub fn apply(&mut self, change: i64, existed: bool) -> MetricsDelta {
        let was_valid = self.live_orders > 0;
        self.live_orders += change;
        let is_valid = self.live_orders > 0;
        MetricsDelta {
            downline_users: i64::from(!existed),
            valid_downline_users: i64::from(is_valid) - i64::from(was_valid),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_days_were_kept_still_read() {
        let old = r#"{"paid": {"event_id": "e1", "buyer": "b1", "at": "2026-11-27T02:00:00Z", "month": "2026-11", "total": "10.00",
                       "lines": [{"line_id": "1", "sku": "TEE", "quantity": 1}]},
                      "refunds": {}, "cancelled_by": null}"#;
        let record: OrderRecord = serde_json::from_str(old).unwrap();
        let paid = record.paid.as_ref().unwrap();
        assert_eq!(paid.day.to_string(), "2026-11-01");
        assert_eq!(paid.lines[0].amount, None);
        assert_eq!(record.contribution().sales, Money::parse("10.00").unwrap());
    }
    use crate::ids::*;
    use crate::metrics::Metrics;
    use proptest::prelude::*;

    fn event(id: &str, kind: OrderEventKind) -> OrderEvent {
        OrderEvent {
            event_id: EventId::parse(id).unwrap(),
            order: OrderRef {
                platform: Platform::parse("p").unwrap(),
                store: StoreId::parse("s").unwrap(),
                order_id: OrderId::parse("o").unwrap(),
            },
            distributor: DistributorId::parse("d").unwrap(),
            occurred_at: "2026-11-10T00:00:00Z".parse().unwrap(),
            kind,
        }
    }

    fn paid(total: i64) -> OrderEvent {
        event(
            "paid",
            OrderEventKind::Paid {
                buyer: BuyerId::parse("b").unwrap(),
                total: Money::cents(total),
                lines: vec![],
                urgent: false,
                region: None,
                tier: None,
                priority: 0,
            },
        )
    }

    fn refund(id: &str, cents: i64) -> OrderEvent {
        event(
            &format!("ev-{id}"),
            OrderEventKind::Refunded {
                refund_id: RefundId::parse(id).unwrap(),
                amount: Money::cents(cents),
                lines: vec![],
            },
        )
    }

    fn cancel() -> OrderEvent {
        event("cancel", OrderEventKind::Cancelled)
    }

    /// Applies events the way the store does: record, then delta into
    /// metrics (including the buyer's live count).
    fn replay(events: &[OrderEvent]) -> (OrderRecord, Metrics) {
        let cal = BrandCalendar::default();
        let mut rec = OrderRecord::default();
        let mut buyer = BuyerRecord::default();
        let mut buyer_exists = false;
        let mut metrics = Metrics::default();
        for e in events {
            if let Applied::Changed { before, after } = rec.apply(e, &cal) {
                let mut d = delta(before, after);
                if rec.buyer().is_some() && (after.live != before.live || !buyer_exists) {
                    d.merge(&buyer.apply(after.live - before.live, buyer_exists));
                    buyer_exists = true;
                }
                metrics.apply(&d);
            }
        }
        (rec, metrics)
    }

    #[test]
    fn refunds_reverse_exactly() {
        let (_, m) = replay(&[paid(10000), refund("r1", 2500)]);
        assert_eq!(m.sales.lifetime, Money::cents(7500));
        assert_eq!(m.orders.lifetime, 1);
        assert_eq!(m.valid_downline_users, 1);
        let (_, m) = replay(&[paid(10000), refund("r1", 2500), refund("r2", 7500)]);
        assert_eq!(m.sales.lifetime, Money::ZERO);
        assert_eq!(m.orders.lifetime, 0);
        assert_eq!(m.valid_downline_users, 0);
        assert_eq!(m.downline_users, 1);
    }

    #[test]
    fn duplicates_change_nothing() {
        let once = replay(&[paid(10000), refund("r1", 100), cancel()]);
        let twice = replay(&[
            paid(10000),
            paid(10000),
            refund("r1", 100),
            refund("r1", 100),
            cancel(),
            cancel(),
        ]);
        assert_eq!(once, twice);
    }

    /// One order's events: a redelivery repeats an event exactly, so the
    /// order has one total and each refund id one amount.
    fn arbitrary_events() -> impl Strategy<Value = Vec<OrderEvent>> {
        (
            1i64..100_000,
            prop::array::uniform4(1i64..60_000),
            prop::collection::vec(0u8..6, 0..12),
        )
            .prop_map(|(total, refunds, picks)| {
                picks
                    .into_iter()
                    .map(|p| match p {
                        0 | 1 => paid(total),
                        2..=4 => refund(&format!("r{p}"), refunds[usize::from(p - 2)]),
                        _ => cancel(),
                    })
                    .collect()
            })
    }

    proptest! {
        /// Any order of arrival, with any duplicates, ends in the metrics a
        /// from-scratch computation gives.
        #[test]
        fn metrics_equal_recomputation(events in arbitrary_events(), seed in any::<u64>()) {
            let (rec, metrics) = replay(&events);
            let mut shuffled = events.clone();
            // A deterministic shuffle from the seed.
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let (_, metrics2) = replay(&shuffled);
            let c = rec.contribution();
            prop_assert_eq!(metrics.sales.lifetime, c.sales);
            prop_assert_eq!(metrics.orders.lifetime, c.live);
            prop_assert_eq!(metrics.valid_downline_users, i64::from(c.live > 0));
            prop_assert_eq!(metrics.sales.lifetime, metrics2.sales.lifetime);
            prop_assert_eq!(metrics.orders.lifetime, metrics2.orders.lifetime);
            prop_assert_eq!(metrics.valid_downline_users, metrics2.valid_downline_users);
            prop_assert!(!metrics.sales.lifetime.is_negative());
        }
    }
}
