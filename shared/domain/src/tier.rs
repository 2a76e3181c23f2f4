//! A distributor's tier and the record of every change to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use rust_decimal::Decimal;

use crate::calendar::{BrandCalendar, Day, Month, Period};
use crate::ids::{DistributorId, EventId, TierId};
use crate::metrics::Metrics;
use chrono::Duration;

use crate::rules::{DowngradeStep, DowngradeStrategy, RuleOutcome, RuleSet};

/// What caused a tier change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CauseWire", try_from = "CauseWire")]
pub enum Cause {
    /// An order event moved a metric.
    OrderEvent { event_id: EventId },
    /// The distributor was registered, or the rule set changed.
    Assignment,
    /// The scheduled review of the given period: a month, or a day for rule
    /// sets with rolling windows.
    Review { period: Period },
    /// Commission earned on a downline's order moved (累计佣金).
    Commission { event_id: EventId },
    /// A distributor joined this one's downline network.
    Network { downline: DistributorId },
    /// A user signed up through this distributor's store, or through the
    /// store of one in its network (`distributor`).
    UserRegistered {
        event_id: EventId,
        distributor: DistributorId,
    },
    /// An operator set the tier by hand.
    Manual {
        actor: String,
        reason: String,
        locked: bool,
    },
}

/// [`Cause`] on the wire: a review names its `month`, or for a daily review
/// its `day`, so readers of the month-end review's `month` keep working.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CauseWire {
    OrderEvent {
        event_id: EventId,
    },
    Assignment,
    Review {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        month: Option<Month>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day: Option<Day>,
    },
    Commission {
        event_id: EventId,
    },
    Network {
        downline: DistributorId,
    },
    UserRegistered {
        event_id: EventId,
        distributor: DistributorId,
    },
    Manual {
        actor: String,
        reason: String,
        locked: bool,
    },
}

impl From<Cause> for CauseWire {
    fn from(c: Cause) -> Self {
        match c {
            Cause::OrderEvent { event_id } => CauseWire::OrderEvent { event_id },
            Cause::Assignment => CauseWire::Assignment,
            Cause::Review {
                period: Period::Month(m),
            } => CauseWire::Review {
                month: Some(m),
                day: None,
            },
            Cause::Review {
                period: Period::Day(d),
            } => CauseWire::Review {
                month: None,
                day: Some(d),
            },
            Cause::Commission { event_id } => CauseWire::Commission { event_id },
            Cause::Network { downline } => CauseWire::Network { downline },
            Cause::UserRegistered {
                event_id,
                distributor,
            } => CauseWire::UserRegistered {
                event_id,
                distributor,
            },
            Cause::Manual {
                actor,
                reason,
                locked,
            } => CauseWire::Manual {
                actor,
                reason,
                locked,
            },
        }
    }
}

impl TryFrom<CauseWire> for Cause {
    type Error = &'static str;

    fn try_from(w: CauseWire) -> Result<Self, Self::Error> {
        Ok(match w {
            CauseWire::OrderEvent { event_id } => Cause::OrderEvent { event_id },
            CauseWire::Assignment => Cause::Assignment,
            CauseWire::Review {
                month: Some(m),
                day: None,
            } => Cause::Review {
                period: Period::Month(m),
            },
            CauseWire::Review {
                month: None,
                day: Some(d),
            } => Cause::Review {
                period: Period::Day(d),
            },
            CauseWire::Review { .. } => return Err("a review cause names its month or its day"),
            CauseWire::Commission { event_id } => Cause::Commission { event_id },
            CauseWire::Network { downline } => Cause::Network { downline },
            CauseWire::UserRegistered {
                event_id,
                distributor,
            } => Cause::UserRegistered {
                event_id,
                distributor,
            },
            CauseWire::Manual {
                actor,
                reason,
                locked,
            } => Cause::Manual {
                actor,
                reason,
                locked,
            },
        })
    }
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

/// Where a distributor stands now.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub tier: Option<&'a TierId>,
    /// When it last moved up, for the protection period (none for a
    /// distributor only ever assigned the entry tier: nothing is below it).
    pub since: Option<DateTime<Utc>>,
    /// A manual lock suspends every automatic change.
    pub locked: bool,
}

/// What asked for the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An order, refund or network event.
    Event,
    /// The scheduled review.
    Review,
}

/// Decides whether `metrics` move a distributor from where it stands, and
/// if so builds the history entry. `None` means the tier stays.
///
/// Up: at once, to the qualified tier. Down: only if the current tier's
/// retention rule (or, without one, its upgrade rule) no longer holds, the
/// protection period since the last upgrade is over, and the rule set's
/// strategy allows it for this trigger; then to the highest tier still
/// qualified for, or one step, as configured.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    rules: &RuleSet,
    rule_set_version: u64,
    standing: Standing<'_>,
    metrics: &Metrics,
    now: DateTime<Utc>,
    today: Day,
    trigger: Trigger,
    cause: Cause,
) -> Option<TierChange> {
    if standing.locked {
        return None;
    }
    let q = rules.qualify(metrics, today);
    let current = standing.tier.and_then(|c| rules.tier_by_id(c.as_str()));
    let Some(current) = current else {
        // No tier yet, or one a newer rule set dropped: assign what qualifies.
        return Some(TierChange {
            from: standing.tier.cloned(),
            to: q.tier.clone(),
            direction: Direction::Up,
            rule_set_version,
            reasons: q.reasons(None, rules),
            cause,
            at: now,
        });
    };
    if q.rank == current.rank {
        return None;
    }
    if q.rank > current.rank {
        return Some(TierChange {
            from: Some(current.id.clone()),
            to: q.tier.clone(),
            direction: Direction::Up,
            rule_set_version,
            reasons: q.reasons(Some(current.rank), rules),
            cause,
            at: now,
        });
    }
    // Down, unless something holds it up.
    let downgrades = rules.downgrades();
    if trigger == Trigger::Event && downgrades.strategy == DowngradeStrategy::ReviewOnly {
        return None;
    }
    if let Some(since) = standing.since
        && now < since + Duration::days(i64::from(downgrades.protection_days))
    {
        return None;
    }
    let mut reasons = q.reasons(Some(current.rank), rules);
    if let Some(retention) = &current.retention {
        let mut observed = Vec::new();
        let met = retention.eval(metrics, today, &mut observed);
        if met {
            return None;
        }
        reasons.insert(
            0,
            RuleOutcome {
                rule: format!("retention:{}", current.id),
                met,
                observed,
            },
        );
    }
    let to = match downgrades.step {
        DowngradeStep::HighestQualified => rules.tier_by_rank(q.rank),
        DowngradeStep::OneStep => rules.tier_by_rank(current.rank - 1),
    }
    .expect("ranks are contiguous");
    Some(TierChange {
        from: Some(current.id.clone()),
        to: to.id.clone(),
        direction: Direction::Down,
        rule_set_version,
        reasons,
        cause,
        at: now,
    })
}

/// Where a distributor is heading, for the account managers who can act
/// before the month closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum Outlook {
    /// Within reach of the next tier's upgrade rule; it moves at the first
    /// event that completes it.
    Up {
        to: TierId,
        progress_pct: Decimal,
        /// Each condition of the rule, its value and its threshold.
        rule: RuleOutcome,
    },
    /// Its tier's retention rule fails now: the review at `takes_effect`
    /// (the first after its protection period) moves it down to `to`,
    /// unless its metrics recover first.
    Down {
        to: TierId,
        rule: RuleOutcome,
        takes_effect: DateTime<Utc>,
    },
}

/// When the next scheduled review runs after `now`: 00:05 on the 1st in the
/// brand's time zone, or, where the rules read rolling windows, 00:05 the
/// next day.
pub fn next_review(rules: &RuleSet, calendar: &BrandCalendar, now: DateTime<Utc>) -> DateTime<Utc> {
    let at = |day: Day| calendar.start_of(day) + Duration::minutes(5);
    let today = calendar.day_of(now);
    if !rules.daily_spans().is_empty() && at(today) > now {
        return at(today);
    }
    let mut day = today.plus_days(1);
    if !rules.daily_spans().is_empty() {
        return at(day);
    }
    while day.day_of_month() != 1 {
        day = day.plus_days(1);
    }
    at(day)
}

/// Whether the distributor is about to move: up, when its progress to the
/// next tier is at least `100 - within_pct` percent (and the rule does not
/// hold yet); down, when a review would move it down as its metrics stand
/// today, at the first review its protection period allows. `None` for a
/// locked distributor and one that stays.
pub fn outlook(
    rules: &RuleSet,
    standing: Standing<'_>,
    metrics: &Metrics,
    calendar: &BrandCalendar,
    now: DateTime<Utc>,
    within_pct: Decimal,
) -> Option<Outlook> {
    if standing.locked {
        return None;
    }
    let today = calendar.day_of(now);
    let current = standing
        .tier
        .and_then(|t| rules.tier_by_id(t.as_str()))
        .unwrap_or_else(|| rules.entry_tier());
    let mut review = next_review(rules, calendar, now);
    if let Some(since) = standing.since {
        let protected_until = since + Duration::days(i64::from(rules.downgrades().protection_days));
        while review < protected_until {
            review = next_review(rules, calendar, review);
        }
    }
    let change = decide(
        rules,
        0,
        standing,
        metrics,
        review,
        today,
        Trigger::Review,
        Cause::Assignment,
    );
    if let Some(c) = change.filter(|c| c.direction == Direction::Down) {
        let rule = c.reasons.first().cloned()?;
        return Some(Outlook::Down {
            to: c.to,
            rule,
            takes_effect: review,
        });
    }
    let (next, pct) = rules.next_tier_progress(metrics, today, current.rank)?;
    let hundred = Decimal::ONE_HUNDRED;
    if pct >= hundred || pct < hundred - within_pct {
        return None;
    }
    let rule = rules.progress(metrics, today, current.rank)?;
    Some(Outlook::Up {
        to: next.id.clone(),
        progress_pct: pct,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_causes_name_their_month_or_day() {
        let month = Cause::Review {
            period: Period::parse("2026-12").unwrap(),
        };
        assert_eq!(
            serde_json::to_value(&month).unwrap(),
            serde_json::json!({"type": "review", "month": "2026-12"})
        );
        let day = Cause::Review {
            period: Period::parse("2026-12-05").unwrap(),
        };
        assert_eq!(
            serde_json::to_value(&day).unwrap(),
            serde_json::json!({"type": "review", "day": "2026-12-05"})
        );
        for c in [month, day, Cause::Assignment] {
            assert_eq!(
                serde_json::from_value::<Cause>(serde_json::to_value(&c).unwrap()).unwrap(),
                c
            );
        }
        assert!(serde_json::from_value::<Cause>(serde_json::json!({"type": "review"})).is_err());
    }
    use crate::money::Money;

    const RULES: &str = r#"{
      "tiers": [
        {"id": "junior", "name": "Junior", "rank": 0},
        {"id": "intermediate", "name": "Intermediate", "rank": 1,
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "50000"}},
        {"id": "senior", "name": "Senior", "rank": 2,
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100000"},
         "retention": {"metric": "sales_amount", "window": "month", "gte": "80000"}}
      ],
      "downgrades": {"protection_days": 30}
    }"#;

    fn rules(extra: &str) -> RuleSet {
        let json = RULES.replace(
            r#""protection_days": 30"#,
            &format!(r#""protection_days": 30{extra}"#),
        );
        RuleSet::from_json(&json).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn sales(amount: &str) -> (Metrics, Day) {
        let month = Day::parse("2026-11-15").unwrap();
        let mut m = Metrics::default();
        m.sales.add(month, Money::parse(amount).unwrap());
        (m, month)
    }

    fn run(
        rules: &RuleSet,
        tier: &str,
        since: &str,
        locked: bool,
        amount: &str,
        now: &str,
        trigger: Trigger,
    ) -> Option<String> {
        let t = TierId::parse(tier).unwrap();
        let (m, month) = sales(amount);
        let standing = Standing {
            tier: Some(&t),
            since: Some(at(since)),
            locked,
        };
        decide(
            rules,
            1,
            standing,
            &m,
            at(now),
            month,
            trigger,
            Cause::Assignment,
        )
        .map(|c| c.to.to_string())
    }

    #[test]
    fn the_outlook_names_who_is_about_to_move_and_when() {
        let r = rules("");
        let calendar = BrandCalendar::parse("Asia/Shanghai").unwrap();
        let now = at("2026-11-20T00:00:00Z");
        let look = |tier: &str, since: &str, locked: bool, amount: &str, within: &str| {
            let t = TierId::parse(tier).unwrap();
            let (m, _) = sales(amount);
            let standing = Standing {
                tier: Some(&t),
                since: Some(at(since)),
                locked,
            };
            outlook(&r, standing, &m, &calendar, now, within.parse().unwrap())
        };
        let long_ago = "2026-01-01T00:00:00Z";
        // Retention fails: down at the month-end review, 00:05 on the 1st
        // in Shanghai.
        let Some(Outlook::Down {
            to,
            rule,
            takes_effect,
        }) = look("senior", long_ago, false, "79999.99", "10")
        else {
            panic!("senior below its retention rule moves down");
        };
        assert_eq!(to.as_str(), "intermediate");
        assert_eq!(takes_effect, at("2026-11-30T16:05:00Z"));
        assert_eq!(rule.rule, "retention:senior");
        assert_eq!(rule.observed[0].threshold.to_string(), "80000");
        // Upgraded on the 15th: protected until 15 December, so the
        // January review.
        let Some(Outlook::Down { takes_effect, .. }) =
            look("senior", "2026-11-15T00:00:00Z", false, "79999.99", "10")
        else {
            panic!("still moves down, later");
        };
        assert_eq!(takes_effect, at("2026-12-31T16:05:00Z"));
        // 46,000 of 50,000: within 10% of Intermediate, not within 5%.
        let Some(Outlook::Up {
            to,
            progress_pct,
            rule,
        }) = look("junior", long_ago, false, "46000", "10")
        else {
            panic!("within reach");
        };
        assert_eq!(
            (to.as_str(), progress_pct.to_string().as_str()),
            ("intermediate", "92.0")
        );
        assert_eq!(rule.rule, "upgrade:intermediate");
        assert_eq!(look("junior", long_ago, false, "46000", "5"), None);
        // Staying put, or locked.
        assert_eq!(look("senior", long_ago, false, "85000", "10"), None);
        assert_eq!(look("senior", long_ago, true, "1", "10"), None);
    }

    #[test]
    fn retention_keeps_a_tier_its_upgrade_rule_no_longer_grants() {
        let r = rules("");
        let long_ago = "2026-01-01T00:00:00Z";
        let now = "2026-11-20T00:00:00Z";
        assert_eq!(
            run(&r, "senior", long_ago, false, "85000", now, Trigger::Event),
            None
        );
        assert_eq!(
            run(
                &r,
                "senior",
                long_ago,
                false,
                "79999.99",
                now,
                Trigger::Event
            )
            .as_deref(),
            Some("intermediate")
        );
        // Intermediate has no retention rule: its upgrade rule must hold.
        assert_eq!(
            run(
                &r,
                "intermediate",
                long_ago,
                false,
                "49999",
                now,
                Trigger::Event
            )
            .as_deref(),
            Some("junior")
        );
    }

    #[test]
    fn no_downgrade_inside_the_protection_period() {
        let r = rules("");
        let upgraded = "2026-11-10T00:00:00Z";
        assert_eq!(
            run(
                &r,
                "senior",
                upgraded,
                false,
                "0",
                "2026-11-20T00:00:00Z",
                Trigger::Event
            ),
            None
        );
        assert_eq!(
            run(
                &r,
                "senior",
                upgraded,
                false,
                "0",
                "2026-12-09T23:59:59Z",
                Trigger::Review
            ),
            None
        );
        assert_eq!(
            run(
                &r,
                "senior",
                upgraded,
                false,
                "0",
                "2026-12-10T00:00:00Z",
                Trigger::Review
            )
            .as_deref(),
            Some("junior")
        );
        // Upgrades are never held back.
        assert_eq!(
            run(
                &r,
                "junior",
                upgraded,
                false,
                "100000",
                "2026-11-20T00:00:00Z",
                Trigger::Event
            )
            .as_deref(),
            Some("senior")
        );
    }

    #[test]
    fn review_only_strategy_and_one_step() {
        let r = rules(r#", "strategy": "review_only", "step": "one_step""#);
        let long_ago = "2026-01-01T00:00:00Z";
        let now = "2026-11-20T00:00:00Z";
        assert_eq!(
            run(&r, "senior", long_ago, false, "0", now, Trigger::Event),
            None
        );
        assert_eq!(
            run(&r, "senior", long_ago, false, "0", now, Trigger::Review).as_deref(),
            Some("intermediate")
        );
        assert_eq!(
            run(&r, "junior", long_ago, false, "60000", now, Trigger::Event).as_deref(),
            Some("intermediate")
        );
    }

    #[test]
    fn a_lock_suspends_every_automatic_change() {
        let r = rules("");
        assert_eq!(
            run(
                &r,
                "senior",
                "2026-01-01T00:00:00Z",
                true,
                "0",
                "2026-11-20T00:00:00Z",
                Trigger::Review
            ),
            None
        );
        assert_eq!(
            run(
                &r,
                "junior",
                "2026-01-01T00:00:00Z",
                true,
                "500000",
                "2026-11-20T00:00:00Z",
                Trigger::Event
            ),
            None
        );
    }

    #[test]
    fn a_downgrade_explains_the_retention_rule_it_failed() {
        let r = rules("");
        let t = TierId::parse("senior").unwrap();
        let (m, month) = sales("60000");
        let standing = Standing {
            tier: Some(&t),
            since: None,
            locked: false,
        };
        let change = decide(
            &r,
            1,
            standing,
            &m,
            at("2026-11-20T00:00:00Z"),
            month,
            Trigger::Event,
            Cause::Assignment,
        )
        .unwrap();
        assert_eq!(change.direction, Direction::Down);
        assert_eq!(change.reasons[0].rule, "retention:senior");
        assert!(!change.reasons[0].met);
    }
}
