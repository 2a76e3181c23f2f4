//! What-if: a draft rule set evaluated against distributors as a review
//! would, counting who would move from which tier to which, writing
//! nothing. A brand's distributors are evaluated in pages, whose tallies
//! add up; adding a page's tally twice is for the caller to prevent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Day;
use crate::ids::{DistributorId, TierId};
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::tier::{self, Cause, Standing, Trigger};

/// Names kept per move: enough to look at, bounded whatever the brand's size.
pub const NAMES_PER_MOVE: usize = 100;

/// Moves counted by (from, to), with up to [`NAMES_PER_MOVE`] distributors each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub evaluated: u64,
    /// Distributors not evaluated because their tier changed between the
    /// listing and the page: counted where they are listed now, or, if
    /// that tier's listing was done already, not at all.
    #[serde(default)]
    pub skipped: u64,
    /// Keyed `from>to`, so that it stores as a JSON object.
    pub moves: BTreeMap<String, Move>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub count: u64,
    pub distributors: Vec<DistributorId>,
}

impl Tally {
    /// Evaluates one distributor against `draft` at `now` (`today` in the
    /// brand's calendar), as the review would: protection periods, locks
    /// and the downgrade strategy included.
    pub fn evaluate(
        &mut self,
        draft: &RuleSet,
        standing: Standing<'_>,
        id: &DistributorId,
        metrics: &Metrics,
        now: DateTime<Utc>,
        today: Day,
    ) {
        self.evaluated += 1;
        if let Some(change) = tier::decide(
            draft,
            0,
            standing,
            metrics,
            now,
            today,
            Trigger::Review,
            Cause::Assignment,
        ) {
            let from = TierId::name_or_none(change.from.as_ref());
            self.add(
                &format!("{from}>{}", change.to),
                1,
                std::slice::from_ref(id),
            );
        }
    }

    fn add(&mut self, key: &str, count: u64, names: &[DistributorId]) {
        let m = self.moves.entry(key.to_owned()).or_default();
        m.count += count;
        for name in names {
            if m.distributors.len() >= NAMES_PER_MOVE {
                break;
            }
            if !m.distributors.contains(name) {
                m.distributors.push(name.clone());
            }
        }
    }

    /// Adds another page's tally.
    pub fn merge(&mut self, other: &Tally) {
        self.evaluated += other.evaluated;
        self.skipped += other.skipped;
        for (key, m) in &other.moves {
            self.add(key, m.count, &m.distributors);
        }
    }

    pub fn moved(&self) -> u64 {
        self.moves.values().map(|m| m.count).sum()
    }

    /// The moves as (from, to, move), in key order.
    pub fn by_tiers(&self) -> impl Iterator<Item = (&str, &str, &Move)> {
        self.moves.iter().map(|(k, m)| {
            let (from, to) = k.split_once('>').unwrap_or((k.as_str(), ""));
            (from, to, m)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DistributorId {
        DistributorId::parse(s).unwrap()
    }

    #[test]
    fn pages_add_up_and_names_stay_bounded() {
        let mut total = Tally::default();
        for page in 0..3 {
            let mut t = Tally {
                evaluated: 60,
                ..Default::default()
            };
            let names: Vec<DistributorId> = (0..50).map(|i| id(&format!("d-{page}-{i}"))).collect();
            t.add("junior>senior", 50, &names);
            total.merge(&t);
        }
        assert_eq!(total.evaluated, 180);
        let m = &total.moves["junior>senior"];
        assert_eq!((m.count, m.distributors.len()), (150, NAMES_PER_MOVE));
        assert_eq!(total.moved(), 150);
        let (from, to, _) = total.by_tiers().find(|(_, _, m)| m.count == 150).unwrap();
        assert_eq!((from, to), ("junior", "senior"));
    }
}
