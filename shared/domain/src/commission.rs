//! Commission (返佣): what the level-1 and level-2 uplines of a selling
//! distributor earn on its orders.
//!
//! # Base and rounding
//! The base is the amount the buyer paid for the order's lines, net of
//! refunds (no shipping is in it). Each receiver's commission on an order
//! is `rate × base`, rounded half up to 0.01 CNY, with the rate of the
//! receiver's tier when the order was first counted, kept with the entry.
//!
//! A tier may set a fixed amount per unit for some SKUs instead
//! (`commission_fixed`): those lines earn the amount for every unit not
//! returned, and leave the base; the rest of the base earns the rate. The
//! base the fixed lines leave is their amount for the units not returned
//! (line amount × net units ÷ units, rounded half up), and money-only
//! refunds come off the rate's part. An order fully refunded or cancelled
//! earns nothing.
//!
//! It is recomputed from the order's record on every refund, so a refund
//! reverses exactly what the order earned: from frozen commission, or as a
//! negative adjustment once it has become withdrawable.
//!
//! # Settlement
//! Commission is frozen for the rule set's settlement days, counted in the
//! brand's calendar: paid on 27 November with 7 days, it becomes
//! withdrawable at the start of 4 December (0 days: at once). Whole days let
//! a receiver's balance be kept as counters (earned, withdrawn, and what is
//! frozen by the day it settles), so reading it never lists the entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{BrandCalendar, Day};
use crate::ids::Sku;
use crate::ledger::OrderRecord;
use crate::money::{Money, Percent};

/// One receiver's commission on one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionEntry {
    /// 1: the seller's upline; 2: its upline.
    pub level: u8,
    pub rate: Percent,
    /// The commission on the order as it stands (net of reversals).
    pub amount: Money,
    /// Frozen until then; withdrawable after.
    pub settles_at: DateTime<Utc>,
    /// Fixed amounts per unit that replaced the rate for the order's SKUs,
    /// as the receiver's tier set them when the order was first counted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed: BTreeMap<Sku, Money>,
}

impl CommissionEntry {
    pub fn amount_for(rate: Percent, base: Money) -> Money {
        rate.of(base.max(Money::ZERO))
    }

    /// What `order` earns at `rate`, with `fixed` amounts per unit for some
    /// SKUs (see the module docs).
    pub fn amount_for_order(
        rate: Percent,
        fixed: &BTreeMap<Sku, Money>,
        order: &OrderRecord,
    ) -> Money {
        let contribution = order.contribution();
        let Some(paid) = order.paid.as_ref().filter(|_| contribution.live > 0) else {
            return Money::ZERO;
        };
        let mut earned = Money::ZERO;
        let mut base = contribution.sales;
        for line in paid.lines.iter().filter(|l| l.quantity > 0) {
            let (Some(per_unit), Some(amount)) = (fixed.get(&line.sku), line.amount) else {
                continue;
            };
            let net = order.net_quantity(&line.line_id);
            earned = earned + Money::round(per_unit.amount() * Decimal::from(net));
            base = base
                - Money::round(amount.amount() * Decimal::from(net) / Decimal::from(line.quantity));
        }
        earned + Self::amount_for(rate, base)
    }

    /// The fixed amounts of `table` that apply to `order`'s SKUs: what the
    /// entry keeps, so later refunds are computed on the same terms.
    pub fn fixed_terms(table: &BTreeMap<Sku, Money>, order: &OrderRecord) -> BTreeMap<Sku, Money> {
        let Some(paid) = &order.paid else {
            return BTreeMap::new();
        };
        paid.lines
            .iter()
            .filter_map(|l| table.get(&l.sku).map(|m| (l.sku.clone(), *m)))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Earned, net of reversals.
    pub earned: Money,
    /// Still inside the settlement period.
    pub frozen: Money,
    /// Settled, minus what was withdrawn. Negative when a refund reversed
    /// commission already paid out.
    pub withdrawable: Money,
    pub withdrawn: Money,
}

/// When commission on an order paid at `paid_at` becomes withdrawable: the
/// start of the day `settlement_days` after the day it was paid.
pub fn settles_at(
    calendar: &BrandCalendar,
    paid_at: DateTime<Utc>,
    settlement_days: u32,
) -> DateTime<Utc> {
    calendar.start_of(calendar.day_of(paid_at).plus_days(settlement_days))
}

/// The balance from a receiver's counters: `earned` (net of reversals),
/// what is frozen by the day it settles, and what was withdrawn, as of
/// `today`.
pub fn balance(
    earned: Money,
    frozen_by_day: &BTreeMap<Day, Money>,
    withdrawn: Money,
    today: Day,
) -> Balance {
    let frozen = frozen_by_day
        .range(today.plus_days(1)..)
        .map(|(_, m)| *m)
        .sum();
    Balance {
        earned,
        frozen,
        withdrawable: earned - frozen - withdrawn,
        withdrawn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn reversal_is_exact_and_balances_split_by_settlement() {
        let rate = Percent::parse("8").unwrap();
        let full = CommissionEntry::amount_for(rate, Money::parse("1299.99").unwrap());
        assert_eq!(full, Money::parse("104.00").unwrap()); // 103.9992 → 104.00
        let after_refund = CommissionEntry::amount_for(rate, Money::parse("999.99").unwrap());
        assert_eq!(after_refund, Money::parse("80.00").unwrap()); // 79.9992
        assert_eq!(CommissionEntry::amount_for(rate, Money::ZERO), Money::ZERO);

        let cal = BrandCalendar::default();
        let day = |s: &str| Day::parse(s).unwrap();
        // Paid late on 27 November in Shanghai: 7 days on is the start of 4 December there.
        assert_eq!(
            settles_at(&cal, at("2026-11-27T15:00:00Z"), 7),
            at("2026-12-03T16:00:00Z")
        );
        // 0 days: withdrawable at once (its day has already started).
        assert_eq!(
            settles_at(&cal, at("2026-11-27T15:00:00Z"), 0),
            at("2026-11-26T16:00:00Z")
        );
        // 80 settled on 1 November, 20 settling on 1 December, 50 withdrawn.
        let frozen = BTreeMap::from([
            (day("2026-11-01"), Money::parse("80.00").unwrap()),
            (day("2026-12-01"), Money::parse("20.00").unwrap()),
        ]);
        let b = balance(
            Money::parse("100").unwrap(),
            &frozen,
            Money::parse("50.00").unwrap(),
            day("2026-11-15"),
        );
        assert_eq!(
            (b.earned, b.frozen, b.withdrawable),
            (
                Money::parse("100").unwrap(),
                Money::parse("20").unwrap(),
                Money::parse("30").unwrap()
            )
        );
        // On its settlement day it is withdrawable.
        assert_eq!(
            balance(
                Money::parse("100").unwrap(),
                &frozen,
                Money::ZERO,
                day("2026-12-01")
            )
            .frozen,
            Money::ZERO
        );
        // A reversal after payout leaves a negative balance to recover.
        let b = balance(
            Money::parse("20").unwrap(),
            &BTreeMap::new(),
            Money::parse("50.00").unwrap(),
            day("2026-12-15"),
        );
        assert_eq!(b.withdrawable, Money::parse("-30").unwrap());
    }

    #[test]
    fn fixed_amounts_per_unit_replace_the_rate_for_their_skus() {
        use crate::calendar::BrandCalendar;
        use crate::ids::*;
        use crate::order::{OrderEvent, OrderEventKind, OrderLine, ReturnedLine};
        let m = |s: &str| Money::parse(s).unwrap();
        let line = |id: &str, sku: &str, qty: u32, amount: &str| OrderLine {
            line_id: LineId::parse(id).unwrap(),
            sku: Sku::parse(sku).unwrap(),
            quantity: qty,
            unit_price: m("0"),
            amount: m(amount),
            entitled_unit_price: None,
            floor_unit_price: None,
        };
        let event = |id: &str, kind: OrderEventKind| OrderEvent {
            event_id: EventId::parse(id).unwrap(),
            distributor: DistributorId::parse("d").unwrap(),
            order: OrderRef {
                platform: Platform::parse("jd").unwrap(),
                store: StoreId::parse("s").unwrap(),
                order_id: OrderId::parse("O").unwrap(),
            },
            occurred_at: at("2026-11-27T00:00:00Z"),
            kind,
        };
        let cal = BrandCalendar::default();
        let mut order = OrderRecord::default();
        // 3 jackets for 3,897.00 and 2 hoodies for 918.00.
        let lines = vec![
            line("1", "JACKET", 3, "3897.00"),
            line("2", "HOODIE", 2, "918.00"),
        ];
        order.apply(
            &event(
                "e1",
                OrderEventKind::Paid {
                    buyer: BuyerId::parse("b").unwrap(),
                    total: m("4815.00"),
                    lines,
                    urgent: false,
                    region: None,
                    tier: None,
                    priority: 0,
                },
            ),
            &cal,
        );
        let rate = Percent::parse("5").unwrap();
        let fixed = BTreeMap::from([(Sku::parse("JACKET").unwrap(), m("50.00"))]);
        assert_eq!(CommissionEntry::fixed_terms(&fixed, &order).len(), 1);
        // 3 × 50 + 5 % of the hoodies' 918 = 150 + 45.90.
        assert_eq!(
            CommissionEntry::amount_for_order(rate, &fixed, &order),
            m("195.90")
        );
        assert_eq!(
            CommissionEntry::amount_for_order(rate, &BTreeMap::new(), &order),
            m("240.75"),
            "no fixed amounts: 5 % of 4,815"
        );

        // One jacket comes back with its 1,299.00: 2 × 50 + 45.90.
        let back = vec![ReturnedLine {
            line_id: LineId::parse("1").unwrap(),
            quantity: 1,
        }];
        order.apply(
            &event(
                "e2",
                OrderEventKind::Refunded {
                    refund_id: RefundId::parse("R1").unwrap(),
                    amount: m("1299.00"),
                    lines: back,
                },
            ),
            &cal,
        );
        assert_eq!(
            CommissionEntry::amount_for_order(rate, &fixed, &order),
            m("145.90")
        );
        // A money-only refund comes off the rate's part: 5 % of 818.
        order.apply(
            &event(
                "e3",
                OrderEventKind::Refunded {
                    refund_id: RefundId::parse("R2").unwrap(),
                    amount: m("100.00"),
                    lines: vec![],
                },
            ),
            &cal,
        );
        assert_eq!(
            CommissionEntry::amount_for_order(rate, &fixed, &order),
            m("140.90")
        );
        // Cancelled: nothing.
        order.apply(&event("e4", OrderEventKind::Cancelled), &cal);
        assert_eq!(
            CommissionEntry::amount_for_order(rate, &fixed, &order),
            Money::ZERO
        );
    }
}
