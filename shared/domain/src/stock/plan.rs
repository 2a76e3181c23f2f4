//! Reserve plans (分级备货): how many units of a SKU each tier keeps for
//! itself, computed from four inputs and written down with them.
//!
//! 1. **Demand**: the units each tier's orders asked for, a day at a time,
//!    over the last `history_days` full days (today, still running, is left
//!    out). A paid line counts on its payment's day in the brand's
//!    calendar, for the tier its distributor paid in, filled or
//!    backordered: it is what the tier wanted.
//! 2. **Forecast**: a named method and its parameters
//!    ([`super::forecast`]) turns that history into the units the tier will
//!    want over the next `horizon_days`. A promotion window that names the
//!    tier multiplies the forecast by its factor, rounded up.
//! 3. **Stock**: what is free (on hand beside what orders hold) is the
//!    supply shared out.
//! 4. **Seniority**: the tier's `benefits.priority`. A short supply goes to
//!    the most senior tiers first, in full, and the first seniority that
//!    falls short shares what is left in proportion to its tiers' claims,
//!    in whole units by largest remainder ([`super::levels::share`]).
//!
//! A tier's reserve is its share, never above its claim; what no claim
//! takes stays in the shared pool. The plan is a pure function of those
//! inputs: recomputed from the same ones it is the same plan, so a rerun
//! (a redelivered message, a job run twice) moves nothing.
//!
//! **Promotions.** A window raises the claims of the tiers it names, on the
//! SKUs it names (all of them when it names none), while it runs; no other
//! tier draws on a reserve. The first plan computed after it ends no
//! longer applies it, so what the raised reserves did not sell returns to
//! the pool, once: that plan's reserves are its target, and a second
//! computation of the same target moves nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::forecast::Forecast;
use super::levels::{Claim, share};
use crate::calendar::Day;
use crate::ids::{Sku, TierId};
use crate::rules::RuleSetProblem;

/// The longest history a plan reads, in days.
pub const MAX_HISTORY_DAYS: u32 = 365;
/// The longest horizon a plan forecasts, in days.
pub const MAX_HORIZON_DAYS: u32 = 90;
/// The largest factor a promotion may raise a claim by.
pub const MAX_PROMOTION_FACTOR: u32 = 100;
/// At most this many promotions in a rule set, each naming at most
/// [`MAX_PROMOTION_SKUS`]: the rule set stays small.
pub const MAX_PROMOTIONS: usize = 50;
pub const MAX_PROMOTION_SKUS: usize = 1_000;

/// The rule set's `reserves` section. Without it reserves are set by hand
/// (`PUT /v1/admin/skus/{sku}/reserves`); with it they are planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRules {
    #[serde(default = "default_history_days")]
    pub history_days: u32,
    #[serde(default = "default_horizon_days")]
    pub horizon_days: u32,
    pub forecast: Forecast,
    /// The tiers that keep reserves; the others draw on the pool alone.
    pub tiers: BTreeSet<TierId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<Promotion>,
}

fn default_history_days() -> u32 {
    28
}

fn default_horizon_days() -> u32 {
    7
}

/// A promotion window (大促备货): from `starts_at` until `ends_at`, the
/// claims of the tiers named are multiplied by their factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    pub id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Factor per tier, at least 1.
    pub tiers: BTreeMap<TierId, Decimal>,
    /// The SKUs it covers; none named is every SKU.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub skus: BTreeSet<Sku>,
}

impl Promotion {
    /// Whether the window covers `sku` at `at`: from its start, up to but
    /// not including its end.
    pub fn covers(&self, sku: &Sku, at: DateTime<Utc>) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && (self.skus.is_empty() || self.skus.contains(sku))
    }
}

impl ReserveRules {
    /// What is wrong with the section, each problem at its path; `known`
    /// says whether the rule set has a tier.
    pub fn problems(&self, known: impl Fn(&TierId) -> bool) -> Vec<RuleSetProblem> {
        let mut out = Vec::new();
        let mut p = |path: String, message: String| out.push(RuleSetProblem { path, message });
        if !(1..=MAX_HISTORY_DAYS).contains(&self.history_days) {
            p(
                "reserves.history_days".into(),
                format!("must be from 1 to {MAX_HISTORY_DAYS}"),
            );
        }
        if !(1..=MAX_HORIZON_DAYS).contains(&self.horizon_days) {
            p(
                "reserves.horizon_days".into(),
                format!("must be from 1 to {MAX_HORIZON_DAYS}"),
            );
        }
        if let Err(e) = self.forecast.validate() {
            p(format!("reserves.forecast.{}", e.parameter), e.to_string());
        }
        if self.tiers.is_empty() {
            p(
                "reserves.tiers".into(),
                "name at least one tier to keep reserves".into(),
            );
        }
        for t in self.tiers.iter().filter(|t| !known(t)) {
            p(
                format!("reserves.tiers.{t}"),
                format!("tier {t} is not in the rule set"),
            );
        }
        if self.promotions.len() > MAX_PROMOTIONS {
            p(
                "reserves.promotions".into(),
                format!("at most {MAX_PROMOTIONS} promotions"),
            );
        }
        let mut ids = BTreeSet::new();
        for (i, promo) in self.promotions.iter().enumerate() {
            let at = format!("reserves.promotions[{i}]");
            let id_ok = !promo.id.is_empty()
                && promo.id.len() <= 64
                && promo
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                p(
                    format!("{at}.id"),
                    "1 to 64 letters, digits, '-' or '_'".into(),
                );
            } else if !ids.insert(promo.id.as_str()) {
                p(
                    format!("{at}.id"),
                    format!("promotion id {:?} is used twice", promo.id),
                );
            }
            if promo.ends_at <= promo.starts_at {
                p(format!("{at}.ends_at"), "must be after starts_at".into());
            }
            if promo.tiers.is_empty() {
                p(
                    format!("{at}.tiers"),
                    "name at least one tier and its factor".into(),
                );
            }
            for (t, factor) in &promo.tiers {
                if !known(t) {
                    p(
                        format!("{at}.tiers.{t}"),
                        format!("tier {t} is not in the rule set"),
                    );
                } else if *factor < Decimal::ONE || *factor > Decimal::from(MAX_PROMOTION_FACTOR) {
                    p(
                        format!("{at}.tiers.{t}"),
                        format!("a factor must be from 1 to {MAX_PROMOTION_FACTOR}, got {factor}"),
                    );
                }
            }
            if promo.skus.len() > MAX_PROMOTION_SKUS {
                p(
                    format!("{at}.skus"),
                    format!("at most {MAX_PROMOTION_SKUS} SKUs"),
                );
            }
        }
        out
    }

    /// The full days whose demand a plan on `today` reads: the last
    /// `history_days`, ending yesterday.
    pub fn history(&self, today: Day) -> (Day, Day) {
        (today.minus_days(self.history_days), today.minus_days(1))
    }
}

/// Units asked for per day and tier.
pub type DailyDemand = BTreeMap<Day, BTreeMap<TierId, u64>>;

/// What a plan is computed from, beside the rules.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    pub sku: &'a Sku,
    pub at: DateTime<Utc>,
    /// `at`'s day in the brand's calendar.
    pub today: Day,
    /// On hand beside what orders hold.
    pub free: u64,
    /// Each tier's `benefits.priority`.
    pub seniority: &'a BTreeMap<TierId, u8>,
    pub demand: &'a DailyDemand,
}

/// A SKU's reserve plan, with the inputs that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservePlan {
    pub computed_at: DateTime<Utc>,
    /// The history read: these days, both included.
    pub history_from: Day,
    pub history_to: Day,
    pub horizon_days: u32,
    pub forecast: Forecast,
    /// The supply shared: on hand beside what orders hold.
    pub free: u64,
    /// Promotions in effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<String>,
    /// Most senior first.
    pub tiers: Vec<TierPlan>,
}

/// One tier's line of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPlan {
    pub tier: TierId,
    pub seniority: u8,
    /// Units its orders asked for over the history.
    pub ordered: u64,
    /// The forecast over the horizon.
    pub forecast: u64,
    /// The promotion factor applied, if any (the largest, when several
    /// windows name the tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_factor: Option<Decimal>,
    /// The forecast raised by the promotion: what caps the reserve.
    pub claim: u64,
    pub reserve: u64,
}

impl ReservePlan {
    /// The reserves it sets; a tier absent keeps none.
    pub fn reserves(&self) -> BTreeMap<TierId, u64> {
        self.tiers
            .iter()
            .filter(|t| t.reserve > 0)
            .map(|t| (t.tier.clone(), t.reserve))
            .collect()
    }

    /// The same plan, whenever computed.
    pub fn same_as(&self, other: &ReservePlan) -> bool {
        ReservePlan {
            computed_at: other.computed_at,
            ..self.clone()
        } == *other
    }
}

/// Computes a SKU's plan (see the module's documentation).
pub fn plan(rules: &ReserveRules, inputs: &PlanInputs<'_>) -> ReservePlan {
    let (from, to) = rules.history(inputs.today);
    let active: Vec<&Promotion> = rules
        .promotions
        .iter()
        .filter(|p| p.covers(inputs.sku, inputs.at))
        .collect();
    let mut tiers: BTreeSet<&TierId> = rules.tiers.iter().collect();
    tiers.extend(active.iter().flat_map(|p| p.tiers.keys()));
    let mut lines: Vec<TierPlan> = tiers
        .into_iter()
        .map(|tier| {
            // Every day of the window, a quiet day as a zero.
            let history: Vec<u64> = (0..rules.history_days)
                .map(|back| {
                    let day = to.minus_days(back);
                    inputs
                        .demand
                        .get(&day)
                        .and_then(|d| d.get(tier))
                        .copied()
                        .unwrap_or(0)
                })
                .rev()
                .collect();
            let forecast = rules.forecast.demand(&history, rules.horizon_days);
            let factor = active
                .iter()
                .filter_map(|p| p.tiers.get(tier))
                .max()
                .copied();
            let claim = match factor {
                Some(f) => (Decimal::from(forecast) * f)
                    .ceil()
                    .to_u64()
                    .unwrap_or(u64::MAX),
                None => forecast,
            };
            TierPlan {
                tier: tier.clone(),
                seniority: inputs.seniority.get(tier).copied().unwrap_or(0),
                ordered: history.iter().sum(),
                forecast,
                promotion_factor: factor,
                claim,
                reserve: 0,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.seniority.cmp(&a.seniority).then(a.tier.cmp(&b.tier)));
    let claims: Vec<Claim> = lines
        .iter()
        .map(|l| Claim {
            tier: l.tier.clone(),
            seniority: l.seniority,
            demand: l.claim,
        })
        .collect();
    let shares = share(inputs.free, &claims);
    for line in &mut lines {
        line.reserve = shares.get(&line.tier).copied().unwrap_or(0);
    }
    ReservePlan {
        computed_at: inputs.at,
        history_from: from,
        history_to: to,
        horizon_days: rules.horizon_days,
        forecast: rules.forecast,
        free: inputs.free,
        promotions: active.iter().map(|p| p.id.clone()).collect(),
        tiers: lines,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn t(id: &str) -> TierId {
        TierId::parse(id).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rules(promotions: Vec<Promotion>) -> ReserveRules {
        ReserveRules {
            history_days: 7,
            horizon_days: 7,
            forecast: Forecast::Ses {
                alpha: Decimal::ONE,
            },
            tiers: [t("gold"), t("senior")].into(),
            promotions,
        }
    }

    fn seniority() -> BTreeMap<TierId, u8> {
        [(t("junior"), 0), (t("senior"), 2), (t("gold"), 3)].into()
    }

    /// Yesterday's demand per tier (α = 1 forecasts yesterday's every day).
    fn yesterday(today: Day, per_tier: &[(&str, u64)]) -> DailyDemand {
        [(
            today.minus_days(1),
            per_tier.iter().map(|(id, u)| (t(id), *u)).collect(),
        )]
        .into()
    }

    fn inputs<'a>(
        sku: &'a Sku,
        free: u64,
        seniority: &'a BTreeMap<TierId, u8>,
        demand: &'a DailyDemand,
        when: &str,
    ) -> PlanInputs<'a> {
        let at = at(when);
        PlanInputs {
            sku,
            at,
            today: crate::calendar::BrandCalendar::parse("UTC")
                .unwrap()
                .day_of(at),
            free,
            seniority,
            demand,
        }
    }

    #[test]
    fn plenty_covers_every_claim_and_the_rest_stays_pooled() {
        let sku = Sku::parse("TEE").unwrap();
        let s = seniority();
        let today = Day::parse("2026-11-20").unwrap();
        let demand = yesterday(today, &[("gold", 3), ("senior", 5), ("junior", 40)]);
        let p = plan(
            &rules(vec![]),
            &inputs(&sku, 1_000, &s, &demand, "2026-11-20T10:00:00Z"),
        );
        // 7 days of 3 and 5; junior keeps none, it is not a reserve tier.
        assert_eq!(p.reserves(), [(t("gold"), 21), (t("senior"), 35)].into());
        assert_eq!(p.tiers[0].tier, t("gold"));
        assert_eq!(p.tiers[0].ordered, 3);
        assert_eq!(
            (p.history_from.to_string(), p.history_to.to_string()),
            ("2026-11-13".into(), "2026-11-19".into())
        );
        // Today's orders are not history yet.
        let mut with_today = demand.clone();
        with_today.insert(today, [(t("gold"), 100)].into());
        let again = plan(
            &rules(vec![]),
            &inputs(&sku, 1_000, &s, &with_today, "2026-11-20T11:00:00Z"),
        );
        assert!(again.same_as(&p));
    }

    #[test]
    fn a_short_supply_goes_to_the_senior_tier_first() {
        let sku = Sku::parse("TEE").unwrap();
        let s = seniority();
        let today = Day::parse("2026-11-20").unwrap();
        let demand = yesterday(today, &[("gold", 3), ("senior", 5)]);
        let p = plan(
            &rules(vec![]),
            &inputs(&sku, 30, &s, &demand, "2026-11-20T10:00:00Z"),
        );
        assert_eq!(p.reserves(), [(t("gold"), 21), (t("senior"), 9)].into());
    }

    #[test]
    fn a_promotion_raises_its_tiers_claims_in_its_window_only() {
        let sku = Sku::parse("TEE").unwrap();
        let s = seniority();
        let promo = Promotion {
            id: "double-11".into(),
            starts_at: at("2026-11-10T16:00:00Z"),
            ends_at: at("2026-11-11T16:00:00Z"),
            tiers: [(t("gold"), Decimal::new(25, 1))].into(),
            skus: BTreeSet::new(),
        };
        let r = rules(vec![promo]);
        let today = Day::parse("2026-11-11").unwrap();
        let demand = yesterday(today, &[("gold", 3), ("senior", 5)]);
        let during = plan(
            &r,
            &inputs(&sku, 1_000, &s, &demand, "2026-11-11T02:00:00Z"),
        );
        // 21 × 2.5 = 52.5, rounded up.
        assert_eq!(during.reserves()[&t("gold")], 53);
        assert_eq!(during.promotions, vec!["double-11".to_owned()]);
        assert_eq!(during.tiers[0].promotion_factor, Some(Decimal::new(25, 1)));
        let after = plan(
            &r,
            &inputs(&sku, 1_000, &s, &demand, "2026-11-11T16:00:00Z"),
        );
        assert_eq!(after.reserves()[&t("gold")], 21);
        assert!(after.promotions.is_empty());
        // A window that names other SKUs leaves this one alone.
        let mut other = r.clone();
        other.promotions[0].skus = [Sku::parse("HOODIE").unwrap()].into();
        let elsewhere = plan(
            &other,
            &inputs(&sku, 1_000, &s, &demand, "2026-11-11T02:00:00Z"),
        );
        assert_eq!(elsewhere.reserves()[&t("gold")], 21);
    }

    #[test]
    fn bad_sections_name_every_problem() {
        let mut r = rules(vec![Promotion {
            id: "bad id".into(),
            starts_at: at("2026-11-11T00:00:00Z"),
            ends_at: at("2026-11-10T00:00:00Z"),
            tiers: [(t("gold"), Decimal::new(5, 1)), (t("ghost"), Decimal::ONE)].into(),
            skus: BTreeSet::new(),
        }]);
        r.history_days = 0;
        r.tiers.insert(t("nobody"));
        let known = |x: &TierId| ["gold", "senior", "junior"].contains(&x.as_str());
        let paths: Vec<String> = r.problems(known).into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            vec![
                "reserves.history_days",
                "reserves.tiers.nobody",
                "reserves.promotions[0].id",
                "reserves.promotions[0].ends_at",
                "reserves.promotions[0].tiers.ghost",
                "reserves.promotions[0].tiers.gold",
            ]
        );
        assert!(rules(vec![]).problems(known).is_empty());
    }

    proptest! {
        /// Whatever the demand and supply: the reserves fit the supply,
        /// none exceeds its claim, they use the whole supply whenever the
        /// claims reach it, and a tier gets a unit only when every more
        /// senior tier is covered in full.
        #[test]
        fn plans_fit_the_supply_and_serve_seniority_first(
            free in 0u64..500,
            gold in prop::collection::vec(0u64..30, 7),
            senior in prop::collection::vec(0u64..30, 7),
            junior in prop::collection::vec(0u64..30, 7),
        ) {
            let sku = Sku::parse("TEE").unwrap();
            let s = seniority();
            let today = Day::parse("2026-11-20").unwrap();
            let mut demand = DailyDemand::new();
            for (i, ((g, se), j)) in gold.iter().zip(&senior).zip(&junior).enumerate() {
                demand.insert(
                    today.minus_days(i as u32 + 1),
                    [(t("gold"), *g), (t("senior"), *se), (t("junior"), *j)].into(),
                );
            }
            let mut r = rules(vec![]);
            r.tiers.insert(t("junior"));
            r.forecast = Forecast::Ses { alpha: Decimal::new(3, 1) };
            let p = plan(&r, &inputs(&sku, free, &s, &demand, "2026-11-20T10:00:00Z"));
            let total: u64 = p.tiers.iter().map(|l| l.reserve).sum();
            let claims: u64 = p.tiers.iter().map(|l| l.claim).sum();
            prop_assert_eq!(total, free.min(claims));
            for l in &p.tiers {
                prop_assert!(l.reserve <= l.claim);
                if l.reserve > 0 {
                    for senior_line in p.tiers.iter().filter(|o| o.seniority > l.seniority) {
                        prop_assert_eq!(senior_line.reserve, senior_line.claim);
                    }
                }
            }
        }
    }
}
