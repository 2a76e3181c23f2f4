//! Commission (返佣): what the level-1 and level-2 uplines of a selling
//! distributor earn on its orders.
//!
//! # Base and rounding
//! The base is the amount the buyer paid for the order's lines, net of
//! refunds (no shipping is in it). Each receiver's commission on an order
//! is `rate × base`, rounded half up to 0.01 CNY, with the rate of the
//! receiver's tier when the order was first counted, kept with the entry.
//! It is recomputed from the net base on every refund, so a refund
//! reverses exactly what the order earned: from frozen commission, or as a
//! negative adjustment once it has become withdrawable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
}

impl CommissionEntry {
    pub fn amount_for(rate: Percent, base: Money) -> Money {
        rate.of(base.max(Money::ZERO))
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

/// The balance of `entries` at `now`, given what was already withdrawn.
pub fn balance<'a>(entries: impl IntoIterator<Item = &'a CommissionEntry>, withdrawn: Money, now: DateTime<Utc>) -> Balance {
    let mut b = Balance { withdrawn, ..Default::default() };
    for e in entries {
        b.earned = b.earned + e.amount;
        if e.settles_at > now {
            b.frozen = b.frozen + e.amount;
        }
    }
    b.withdrawable = b.earned - b.frozen - withdrawn;
    b
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

        let entries = [
            CommissionEntry { level: 1, rate, amount: Money::parse("80.00").unwrap(), settles_at: at("2026-11-01T00:00:00Z") },
            CommissionEntry { level: 2, rate, amount: Money::parse("20.00").unwrap(), settles_at: at("2026-12-01T00:00:00Z") },
        ];
        let b = balance(&entries, Money::parse("50.00").unwrap(), at("2026-11-15T00:00:00Z"));
        assert_eq!((b.earned, b.frozen, b.withdrawable), (Money::parse("100").unwrap(), Money::parse("20").unwrap(), Money::parse("30").unwrap()));
        // A reversal after payout leaves a negative balance to recover.
        let b = balance(&entries[1..], Money::parse("50.00").unwrap(), at("2026-12-15T00:00:00Z"));
        assert_eq!(b.withdrawable, Money::parse("-30").unwrap());
    }
}
