//! A distributor's tier and the record of every change to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Month;
use crate::ids::{EventId, TierId};
use crate::metrics::Metrics;
use crate::rules::{RuleOutcome, RuleSet};

/// What caused a tier change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cause {
    /// An order event moved a metric.
    OrderEvent { event_id: EventId },
    /// The distributor was registered, or the rule set changed.
    Assignment,
    /// The scheduled review of the given month.
    Review { month: Month },
}

/// One entry in a distributor's tier history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChange {
    /// `None` when the distributor had no tier yet.
    pub from: Option<TierId>,
    pub to: TierId,
    pub direction: Direction,
    pub rule_set_version: u64,
    /// The rules that decided it, with the metric values they saw.
    pub reasons: Vec<RuleOutcome>,
    pub cause: Cause,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// Decides whether `metrics` move a distributor out of `current`, and if so
/// builds the history entry. `None` means the tier stays.
pub fn decide(
    rules: &RuleSet,
    rule_set_version: u64,
    current: Option<&TierId>,
    metrics: &Metrics,
    now: DateTime<Utc>,
    month: Month,
    cause: Cause,
) -> Option<TierChange> {
    let q = rules.qualify(metrics, month);
    let from_rank = current.and_then(|c| rules.tier_by_id(c.as_str())).map(|t| t.rank);
    if current == Some(&q.tier) {
        return None;
    }
    let direction = if from_rank.is_some_and(|f| f > q.rank) { Direction::Down } else { Direction::Up };
    Some(TierChange {
        from: current.cloned(),
        to: q.tier.clone(),
        direction,
        rule_set_version,
        reasons: q.reasons(from_rank, rules),
        cause,
        at: now,
    })
}
