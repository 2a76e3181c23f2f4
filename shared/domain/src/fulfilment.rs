//! Fulfilment order (发货优先级): which paid orders ship first.
//!
//! An order's priority is fixed when it is paid, and is used everywhere
//! (the shipping queue, and the order in which a batch is allocated):
//!
//! ```text
//! priority = tier priority + (urgent ? urgent_boost : 0)
//! ```
//!
//! - **Tier priority** is the rule set's `benefits.priority` of the tier
//!   the distributor was in when the order was paid.
//! - **Urgent** is the platform's flag (an express or same-day shipping
//!   line, 抖店's `early_arrival`, 有赞's same-city delivery) or the
//!   brand's rule: a total at or above `urgent_when.amount_gte`, or a line
//!   of a SKU listed in `urgent_when.skus`.
//! - **`urgent_boost`** (default 1) is what urgency is worth in tier
//!   priorities. With the default, an urgent order of one tier ships
//!   beside the orders of the tier above it. A brand that ships every
//!   urgent order first sets it above its highest tier priority.
//!
//! Higher ships first; among equals, the order paid first.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderRef, Sku};
use crate::money::Money;
use crate::order::OrderLine;
use crate::rules::RuleSetProblem;

/// The rule set's `fulfilment` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentRules {
    #[serde(default = "default_boost")]
    pub urgent_boost: u8,
    #[serde(default, skip_serializing_if = "UrgentWhen::is_empty")]
    pub urgent_when: UrgentWhen,
}

/// The brand's own reasons to treat an order as urgent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgentWhen {
    /// A paid total at or above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_gte: Option<Money>,
    /// Any line of one of these SKUs.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub skus: BTreeSet<Sku>,
}

impl UrgentWhen {
    fn is_empty(&self) -> bool {
        self.amount_gte.is_none() && self.skus.is_empty()
    }
}

fn default_boost() -> u8 {
    1
}

impl Default for FulfilmentRules {
    fn default() -> Self {
        Self {
            urgent_boost: default_boost(),
            urgent_when: UrgentWhen::default(),
        }
    }
}

/// At most this many SKUs in `urgent_when.skus`: the rule set stays small.
pub const MAX_URGENT_SKUS: usize = 1_000;

impl FulfilmentRules {
    /// Whether an order is urgent: the platform says so, or the brand's rule.
    pub fn is_urgent(&self, flagged: bool, total: Money, lines: &[OrderLine]) -> bool {
        flagged
            || self.urgent_when.amount_gte.is_some_and(|a| total >= a)
            || lines.iter().any(|l| self.urgent_when.skus.contains(&l.sku))
    }

    /// The order's priority (see the module's formula).
    pub fn priority(&self, tier_priority: u8, urgent: bool) -> u16 {
        u16::from(tier_priority)
            + if urgent {
                u16::from(self.urgent_boost)
            } else {
                0
            }
    }

    pub(crate) fn problems(&self) -> Vec<RuleSetProblem> {
        let mut out = Vec::new();
        if let Some(a) = self.urgent_when.amount_gte
            && (a.is_negative() || a.is_zero())
        {
            out.push(RuleSetProblem {
                path: "fulfilment.urgent_when.amount_gte".into(),
                message: format!("must be above zero, got {a}"),
            });
        }
        if self.urgent_when.skus.len() > MAX_URGENT_SKUS {
            out.push(RuleSetProblem {
                path: "fulfilment.urgent_when.skus".into(),
                message: format!("at most {MAX_URGENT_SKUS} SKUs"),
            });
        }
        out
    }
}

/// How many partitions the shipping queue's index is spread over. An
/// order enters the queue once its stock is taken and leaves it when it
/// ships (or is cancelled): about 2 index writes an order, so at 5,000
/// orders a second a shard's partition takes about 312 write units a
/// second, under a third of the 1,000 one partition takes; a page reads
/// one Query per shard.
pub const QUEUE_SHARDS: u32 = 32;

/// The shard an order is queued in, stable across builds.
pub fn queue_shard(order: &OrderRef) -> u32 {
    crate::analytics::fnv1a(&order.to_string()) % QUEUE_SHARDS
}

/// Milliseconds since the epoch stay below this until the year 2286.
const MILLIS_CEILING: i64 = 9_999_999_999_999;

/// An order's place in the queue as a string whose descending order is the
/// shipping order: higher priority first, then paid first, then by order
/// reference (so that no two orders share a place).
pub fn queue_rank(priority: u16, paid_at: DateTime<Utc>, order: &OrderRef) -> String {
    let earlier_first = MILLIS_CEILING - paid_at.timestamp_millis().clamp(0, MILLIS_CEILING);
    format!("{priority:05}#{earlier_first:013}#{order}")
}

/// Whether `raw` could be a rank [`queue_rank`] wrote: a cursor is one.
pub fn is_queue_rank(raw: &str) -> bool {
    let mut parts = raw.splitn(3, '#');
    let (Some(p), Some(t), Some(o)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    p.len() == 5
        && p.parse::<u16>().is_ok()
        && t.len() == 13
        && t.bytes().all(|b| b.is_ascii_digit())
        && OrderRef::parse(o).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str) -> OrderLine {
        OrderLine {
            line_id: crate::ids::LineId::parse("1").unwrap(),
            sku: Sku::parse(sku).unwrap(),
            quantity: 1,
            unit_price: Money::parse("10.00").unwrap(),
            amount: Money::parse("10.00").unwrap(),
            entitled_unit_price: None,
            floor_unit_price: None,
        }
    }

    #[test]
    fn urgency_is_the_platforms_flag_or_the_brands_rule_and_adds_its_boost() {
        let rules: FulfilmentRules = serde_json::from_value(serde_json::json!({
            "urgent_boost": 2,
            "urgent_when": {"amount_gte": "5000.00", "skus": ["JACKET-DOWN"]}
        }))
        .unwrap();
        let m = |s| Money::parse(s).unwrap();
        assert!(rules.is_urgent(true, m("1.00"), &[line("TEE")]));
        assert!(rules.is_urgent(false, m("5000.00"), &[line("TEE")]));
        assert!(rules.is_urgent(false, m("1.00"), &[line("JACKET-DOWN")]));
        assert!(!rules.is_urgent(false, m("4999.99"), &[line("TEE")]));
        assert_eq!(rules.priority(3, false), 3);
        assert_eq!(
            rules.priority(1, true),
            3,
            "an urgent intermediate beside gold"
        );
        assert_eq!(FulfilmentRules::default().priority(0, true), 1);
        assert!(rules.problems().is_empty());
        let bad = FulfilmentRules {
            urgent_when: UrgentWhen {
                amount_gte: Some(m("0.00")),
                skus: BTreeSet::new(),
            },
            ..FulfilmentRules::default()
        };
        assert_eq!(bad.problems().len(), 1);
    }

    #[test]
    fn queue_ranks_sort_by_priority_then_age() {
        let order = |o: &str| OrderRef::parse(&format!("jd/s/{o}")).unwrap();
        let at = |s: i64| DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap();
        let mut ranks = [
            queue_rank(0, at(0), &order("old-junior")),
            queue_rank(3, at(60), &order("new-gold")),
            queue_rank(3, at(0), &order("old-gold")),
            queue_rank(1, at(30), &order("urgent-junior")),
        ];
        ranks.sort_by(|a, b| b.cmp(a));
        let shipped: Vec<&str> = ranks
            .iter()
            .map(|r| r.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            shipped,
            ["old-gold", "new-gold", "urgent-junior", "old-junior"]
        );
        assert!(ranks.iter().all(|r| is_queue_rank(r)));
        assert!(!is_queue_rank("00003#123#jd/s/o"));
        assert!(!is_queue_rank("x"));
    }
}
