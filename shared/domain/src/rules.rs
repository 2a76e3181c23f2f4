//! The brand's rule set: tiers, their benefits and the conditions that put a
//! distributor in them.
//!
//! # Semantics
//! A distributor's *qualified* tier is a pure function of its metrics at a
//! point in time, so that evaluating twice gives the same answer and a
//! recomputation from the ledger gives the same tier:
//!
//! 1. the highest-ranked tier whose upgrade rule holds (rank 0 needs none);
//! 2. then one rank higher for every step-up rule that holds (the seed's
//!    "5 valid downline users move it up one tier"), capped at the top tier.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Day;
use crate::ids::{RuleId, Sku, TierId};
use crate::metrics::{Metric, Metrics, Window};
use crate::money::{Money, Percent};

/// What a tier grants (权益).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benefits {
    /// Discount off the base price, in percent ("5" = 5 % off).
    #[serde(default)]
    pub discount_pct: Percent,
    /// Commission (返佣) a distributor of this tier earns on the orders of
    /// its level-1 downline distributors, in percent of the amount paid.
    #[serde(default)]
    pub commission_pct: Percent,
    /// ... and on those of its level-2 downline.
    #[serde(default)]
    pub commission_l2_pct: Percent,
    /// A fixed commission per unit sold for some SKUs, in place of
    /// `commission_pct` on those lines (level 1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commission_fixed: BTreeMap<Sku, Money>,
    /// ... and in place of `commission_l2_pct` (level 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commission_l2_fixed: BTreeMap<Sku, Money>,
    /// Order handling priority: higher ships first.
    #[serde(default)]
    pub priority: u8,
}

/// A condition over metrics. On the wire:
/// `{"metric": "sales_amount", "window": "month", "gte": "50000"}`,
/// `{"all": [..]}`, `{"any": [..]}`, `{"at_least": {"n": 2, "of": [..]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCondition", into = "RawCondition")]
pub enum Condition {
    Threshold {
        metric: Metric,
        window: Window,
        gte: Decimal,
        /// The SKUs whose quantities add up, for `purchased_quantity` only:
        /// one SKU, or a product's SKUs (购买指定商品); empty otherwise.
        skus: Vec<Sku>,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    AtLeast {
        n: usize,
        of: Vec<Condition>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AtLeastRaw {
    n: usize,
    of: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gte: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<Sku>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skus: Option<Vec<Sku>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_least: Option<AtLeastRaw>,
}

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(raw: RawCondition) -> Result<Self, String> {
        let shapes = [
            raw.metric.is_some()
                || raw.gte.is_some()
                || raw.window.is_some()
                || raw.sku.is_some()
                || raw.skus.is_some(),
            raw.all.is_some(),
            raw.any.is_some(),
            raw.at_least.is_some(),
        ];
        if shapes.iter().filter(|s| **s).count() != 1 {
            return Err(
                "a condition is exactly one of {metric, window, gte}, {all}, {any} or {at_least}"
                    .into(),
            );
        }
        if let Some(all) = raw.all {
            return Ok(Condition::All(all));
        }
        if let Some(any) = raw.any {
            return Ok(Condition::Any(any));
        }
        if let Some(AtLeastRaw { n, of }) = raw.at_least {
            return Ok(Condition::AtLeast { n, of });
        }
        let metric = raw.metric.ok_or("a threshold needs \"metric\"")?;
        let gte = raw
            .gte
            .ok_or("a threshold needs \"gte\" (a decimal string)")?;
        let gte: Decimal = crate::money::parse_plain_decimal(&gte).ok_or_else(|| {
            format!("gte {gte:?} is not a decimal number (plain notation: 50000, 12.5)")
        })?;
        let window = match (metric.is_windowed(), raw.window) {
            (true, Some(w)) => w,
            (true, None) => {
                return Err(format!(
                    "metric {metric:?} needs a \"window\" (month, quarter, lifetime or {{\"rolling_days\": N}})"
                ));
            }
            (false, None | Some(Window::Lifetime)) => Window::Lifetime,
            (false, Some(w)) => {
                return Err(format!(
                    "metric {metric:?} is a current count and takes no window, got {w:?}"
                ));
            }
        };
        let skus = match (metric, raw.sku, raw.skus) {
            (_, Some(_), Some(_)) => {
                return Err(
                    "give \"sku\" (one SKU) or \"skus\" (a product's SKUs), not both".into(),
                );
            }
            (Metric::PurchasedQuantity, Some(sku), None) => vec![sku],
            (Metric::PurchasedQuantity, None, Some(mut skus)) => {
                skus.sort();
                skus.dedup();
                if skus.is_empty() || skus.len() > 100 {
                    return Err("\"skus\" lists 1 to 100 SKUs".into());
                }
                skus
            }
            (Metric::PurchasedQuantity, None, None) => {
                return Err("metric purchased_quantity needs \"sku\" or \"skus\"".into());
            }
            (_, Some(_), _) | (_, _, Some(_)) => {
                return Err(format!(
                    "only purchased_quantity takes \"sku\" or \"skus\", not {metric:?}"
                ));
            }
            (_, None, None) => Vec::new(),
        };
        Ok(Condition::Threshold {
            metric,
            window,
            gte,
            skus,
        })
    }
}

impl From<Condition> for RawCondition {
    fn from(c: Condition) -> Self {
        match c {
            Condition::Threshold {
                metric,
                window,
                gte,
                mut skus,
            } => RawCondition {
                metric: Some(metric),
                window: metric.is_windowed().then_some(window),
                gte: Some(gte.to_string()),
                sku: if skus.len() == 1 { skus.pop() } else { None },
                skus: (!skus.is_empty()).then_some(skus),
                ..Default::default()
            },
            Condition::All(v) => RawCondition {
                all: Some(v),
                ..Default::default()
            },
            Condition::Any(v) => RawCondition {
                any: Some(v),
                ..Default::default()
            },
            Condition::AtLeast { n, of } => RawCondition {
                at_least: Some(AtLeastRaw { n, of }),
                ..Default::default()
            },
        }
    }
}

/// One metric compared with one threshold, as it stood at evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub metric: Metric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// The SKUs, for `purchased_quantity` over a product's SKUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<Sku>,
    pub window: Window,
    pub value: Decimal,
    pub threshold: Decimal,
    pub met: bool,
}

/// What a threshold measures: the metric, its window, its SKUs if any.
type ThresholdKey = (Metric, Window, Vec<Sku>);

impl Condition {
    /// Whether the condition holds; every threshold visited is appended to
    /// `seen` so the outcome can be explained.
    pub fn eval(&self, metrics: &Metrics, now: Day, seen: &mut Vec<Observation>) -> bool {
        match self {
            Condition::Threshold {
                metric,
                window,
                gte,
                skus,
            } => {
                let value = match skus.as_slice() {
                    [] => metrics.value(*metric, *window, now),
                    skus => skus.iter().map(|s| metrics.purchased_quantity(s)).sum(),
                };
                let met = value >= *gte;
                let (sku, skus) = match skus.as_slice() {
                    [one] => (Some(one.clone()), Vec::new()),
                    many => (None, many.to_vec()),
                };
                seen.push(Observation {
                    metric: *metric,
                    sku,
                    skus,
                    window: *window,
                    value,
                    threshold: *gte,
                    met,
                });
                met
            }
            // Every branch is visited (no short-circuit) so explanations show
            // all values, not just the first that failed.
            Condition::All(cs) => cs
                .iter()
                .fold(true, |acc, c| c.eval(metrics, now, seen) & acc),
            Condition::Any(cs) => cs
                .iter()
                .fold(false, |acc, c| c.eval(metrics, now, seen) | acc),
            Condition::AtLeast { n, of } => {
                of.iter().filter(|c| c.eval(metrics, now, seen)).count() >= *n
            }
        }
    }

    /// How far the metrics are towards the condition, from 0 (nothing) to
    /// 1 (it holds): a threshold by its value's share of the threshold,
    /// `all` by its furthest-behind part, `any` by its closest, `at_least
    /// n` by its n-th closest. A threshold of zero has no share to speak
    /// of: it is 1 when it holds, else 0.
    pub fn progress(&self, metrics: &Metrics, now: Day) -> Decimal {
        match self {
            Condition::Threshold { .. } => {
                let mut seen = Vec::new();
                let met = self.eval(metrics, now, &mut seen);
                let (value, gte) = seen
                    .first()
                    .map_or((Decimal::ZERO, Decimal::ONE), |o| (o.value, o.threshold));
                if met {
                    Decimal::ONE
                } else if gte <= Decimal::ZERO {
                    Decimal::ZERO
                } else {
                    (value.max(Decimal::ZERO) / gte).min(Decimal::ONE)
                }
            }
            Condition::All(cs) => cs
                .iter()
                .map(|c| c.progress(metrics, now))
                .min()
                .unwrap_or(Decimal::ONE),
            Condition::Any(cs) => cs
                .iter()
                .map(|c| c.progress(metrics, now))
                .max()
                .unwrap_or(Decimal::ZERO),
            Condition::AtLeast { n, of } => {
                let mut parts: Vec<Decimal> = of.iter().map(|c| c.progress(metrics, now)).collect();
                parts.sort_unstable_by(|a, b| b.cmp(a));
                match n {
                    0 => Decimal::ONE,
                    n => parts.get(n - 1).copied().unwrap_or(Decimal::ZERO),
                }
            }
        }
    }

    /// The thresholds of a purely conjunctive condition, or `None`.
    fn conjuncts(&self) -> Option<BTreeMap<ThresholdKey, Decimal>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self];
        while let Some(c) = stack.pop() {
            match c {
                Condition::Threshold {
                    metric,
                    window,
                    gte,
                    skus,
                } => {
                    let slot = out.entry((*metric, *window, skus.clone())).or_insert(*gte);
                    *slot = (*slot).max(*gte);
                }
                Condition::All(cs) => stack.extend(cs),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// One tier of the rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub id: TierId,
    pub name: String,
    pub rank: u32,
    #[serde(default)]
    pub benefits: Benefits,
    /// What puts a distributor in this tier. Rank 0 has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Condition>,
    /// What keeps a distributor in this tier once there (保级条件), when its
    /// upgrade rule no longer holds. Without one, the upgrade rule must
    /// keep holding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Condition>,
    /// Operations this tier may perform (权限管理).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub permissions: BTreeSet<Permission>,
}

/// A per-tier operation permission, enforced on the APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See and use the promotions that list the tier.
    SeePromotions,
    /// See stock levels in price lookups.
    SeeStock,
    /// Place orders for SKUs out of stock.
    PlacePreOrders,
    /// Request commission withdrawals.
    RequestWithdrawals,
}

impl Tier {
    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
}

/// "Up one tier when ..." (the seed's 5 valid downline users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUp {
    pub id: RuleId,
    pub when: Condition,
}

/// The document a brand publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDoc {
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub step_ups: Vec<StepUp>,
    #[serde(default)]
    pub downgrades: Downgrades,
    #[serde(default)]
    pub commission: CommissionPolicy,
    /// Which orders ship first (see [`crate::fulfilment`]).
    #[serde(default)]
    pub fulfilment: crate::fulfilment::FulfilmentRules,
    /// How reserves are planned (see [`crate::stock::plan`]); without it
    /// they are set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserves: Option<crate::stock::plan::ReserveRules>,
}

/// When commission becomes withdrawable, and the smallest withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissionPolicy {
    /// Days after the order is paid that its commission stays frozen
    /// (the refund window).
    #[serde(default = "default_settlement_days")]
    pub settlement_days: u32,
    #[serde(default)]
    pub min_withdrawal: crate::money::Money,
}

fn default_settlement_days() -> u32 {
    7
}

impl Default for CommissionPolicy {
    fn default() -> Self {
        Self {
            settlement_days: default_settlement_days(),
            min_withdrawal: crate::money::Money::ZERO,
        }
    }
}

/// How tiers move down (保级).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Downgrades {
    /// Days after an upgrade during which no automatic downgrade happens
    /// (保护期), so sales oscillating around a threshold do not make the
    /// tier flap.
    #[serde(default)]
    pub protection_days: u32,
    #[serde(default)]
    pub strategy: DowngradeStrategy,
    #[serde(default)]
    pub step: DowngradeStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DowngradeStrategy {
    /// As soon as an event leaves the distributor below its tier.
    #[default]
    RealTime,
    /// Only at the scheduled review; events only ever move tiers up.
    ReviewOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DowngradeStep {
    /// To the highest tier still qualified for.
    #[default]
    HighestQualified,
    /// One tier at a time.
    OneStep,
}

/// A problem with a rule set, naming the field it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetProblem {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule set: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
pub struct RuleSetError(pub Vec<RuleSetProblem>);

/// What a published rule set reads that its predecessor did not keep; see
/// [`RuleSet::backfill_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// Metrics to keep by day, with the days their windows need.
    pub daily: BTreeMap<Metric, u32>,
    pub skus: BTreeSet<Sku>,
}

/// A validated rule set: tiers sorted by rank, ranks 0..n.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    doc: RuleSetDoc,
}

/// The outcome of one rule, with the values that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// `upgrade:<tier id>` or `step_up:<rule id>`.
    pub rule: String,
    pub met: bool,
    pub observed: Vec<Observation>,
}

/// Which tier the metrics qualify for, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub tier: TierId,
    pub rank: u32,
    /// Every upgrade rule (ranks above 0, highest first) and every step-up
    /// rule, with its values.
    pub outcomes: Vec<RuleOutcome>,
}

impl Qualification {
    /// The rules that explain a move from `from_rank` to this tier: on the
    /// way up, the rules that hold; on the way down, the upgrade rules of the
    /// tiers left behind, which no longer hold.
    pub fn reasons(&self, from_rank: Option<u32>, rules: &RuleSet) -> Vec<RuleOutcome> {
        let Some(from) = from_rank.filter(|f| *f > self.rank) else {
            return self.outcomes.iter().filter(|o| o.met).cloned().collect();
        };
        // What no longer holds: the upgrade rules of the tiers left behind,
        // and the step-up rules that do not hold (a tier may have come from
        // them).
        self.outcomes
            .iter()
            .filter(|o| {
                let lost_upgrade = o
                    .rule
                    .strip_prefix("upgrade:")
                    .and_then(|id| rules.tier_by_id(id))
                    .is_some_and(|t| t.rank <= from && t.rank > self.rank);
                !o.met && (lost_upgrade || o.rule.starts_with("step_up:"))
            })
            .cloned()
            .collect()
    }
}

/// Far above any brand's scheme (three to ten tiers are usual), and what
/// keeps a rule set well inside one DynamoDB item (400 KB) with its
/// validation quick: the unreachable-tier check compares tiers pairwise.
pub const MAX_TIERS: usize = 50;
pub const MAX_STEP_UPS: usize = 50;
/// Conditions nest at most this deep (`all` within `any` within ...).
pub const MAX_CONDITION_DEPTH: usize = 8;
/// A rule set's size as stored (its canonical JSON).
pub const MAX_RULE_SET_BYTES: usize = 128 * 1024;

impl RuleSet {
    /// Parses and validates a rule set document. Every problem is reported,
    /// each naming its field.
    pub fn from_json(json: &str) -> Result<RuleSet, RuleSetError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let doc: RuleSetDoc = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            RuleSetError(vec![RuleSetProblem {
                path,
                message: e.into_inner().to_string(),
            }])
        })?;
        RuleSet::new(doc)
    }

    pub fn new(mut doc: RuleSetDoc) -> Result<RuleSet, RuleSetError> {
        // Bounds first: past them nothing else is checked, so a document of
        // 10,000 tiers is refused at once rather than compared pairwise.
        let mut bounds = Vec::new();
        if doc.tiers.len() > MAX_TIERS {
            bounds.push(RuleSetProblem {
                path: "tiers".into(),
                message: format!("at most {MAX_TIERS} tiers, got {}", doc.tiers.len()),
            });
        }
        if doc.step_ups.len() > MAX_STEP_UPS {
            bounds.push(RuleSetProblem {
                path: "step_ups".into(),
                message: format!(
                    "at most {MAX_STEP_UPS} step-ups, got {}",
                    doc.step_ups.len()
                ),
            });
        }
        let size = serde_json::to_vec(&doc).map_or(usize::MAX, |v| v.len());
        if size > MAX_RULE_SET_BYTES {
            bounds.push(RuleSetProblem {
                path: "(the document)".into(),
                message: format!(
                    "the rule set is {size} bytes as stored; at most {MAX_RULE_SET_BYTES}"
                ),
            });
        }
        if !bounds.is_empty() {
            return Err(RuleSetError(bounds));
        }
        let mut problems = Vec::new();
        let mut p = |path: String, message: String| problems.push(RuleSetProblem { path, message });

        if doc.tiers.is_empty() {
            p("tiers".into(), "at least one tier is required".into());
        }
        let mut ids = BTreeSet::new();
        let mut ranks = BTreeSet::new();
        for (i, t) in doc.tiers.iter().enumerate() {
            if !ids.insert(t.id.clone()) {
                p(
                    format!("tiers[{i}].id"),
                    format!("tier id {:?} is used twice", t.id.as_str()),
                );
            }
            // `-` stands for "no tier" wherever tiers are listed (the tier
            // members index, what-if moves).
            if t.id.as_str() == crate::ids::NO_TIER {
                p(
                    format!("tiers[{i}].id"),
                    format!(
                        "tier id {:?} is reserved for distributors without a tier",
                        crate::ids::NO_TIER
                    ),
                );
            }
            if !ranks.insert(t.rank) {
                p(
                    format!("tiers[{i}].rank"),
                    format!("rank {} is used twice", t.rank),
                );
            }
            if t.name.trim().is_empty() || t.name.chars().count() > 64 {
                p(
                    format!("tiers[{i}].name"),
                    "a name of 1 to 64 characters is required".into(),
                );
            }
            for (field, table) in [
                ("commission_fixed", &t.benefits.commission_fixed),
                ("commission_l2_fixed", &t.benefits.commission_l2_fixed),
            ] {
                for (sku, amount) in table.iter().filter(|(_, a)| a.is_negative()) {
                    p(
                        format!("tiers[{i}].benefits.{field}.{sku}"),
                        format!("a commission amount must not be negative, got {amount}"),
                    );
                }
            }
            match (&t.retention, t.rank) {
                (Some(_), 0) => p(
                    format!("tiers[{i}].retention"),
                    "nobody leaves the rank-0 tier; it takes no retention rule".into(),
                ),
                (Some(c), _) => check_condition(c, &format!("tiers[{i}].retention"), &mut p),
                _ => {}
            }
            match (&t.upgrade, t.rank) {
                (Some(_), 0) => p(
                    format!("tiers[{i}].upgrade"),
                    "the rank-0 tier is where everyone starts; it takes no upgrade rule".into(),
                ),
                (None, r) if r > 0 => p(
                    format!("tiers[{i}].upgrade"),
                    "a tier above rank 0 needs an upgrade rule".into(),
                ),
                (Some(c), _) => check_condition(c, &format!("tiers[{i}].upgrade"), &mut p),
                _ => {}
            }
        }
        if let Some(max) = ranks.iter().max()
            && (*max as usize) + 1 != ranks.len()
        {
            p(
                "tiers".into(),
                format!("ranks must be 0, 1, 2, ... without gaps; got {ranks:?}"),
            );
        }
        if doc.commission.settlement_days > 3650 {
            p(
                "commission.settlement_days".into(),
                "at most 3650 days".into(),
            );
        }
        if doc.commission.min_withdrawal.is_negative() {
            p(
                "commission.min_withdrawal".into(),
                "must not be negative".into(),
            );
        }
        if doc.downgrades.protection_days > 3650 {
            p(
                "downgrades.protection_days".into(),
                "at most 3650 days".into(),
            );
        }
        for problem in doc.fulfilment.problems() {
            p(problem.path, problem.message);
        }
        if let Some(reserves) = &doc.reserves {
            let known: BTreeSet<&str> = doc.tiers.iter().map(|t| t.id.as_str()).collect();
            for problem in reserves.problems(|t| known.contains(t.as_str())) {
                p(problem.path, problem.message);
            }
        }
        let mut step_ids = BTreeSet::new();
        for (i, s) in doc.step_ups.iter().enumerate() {
            if !step_ids.insert(s.id.clone()) {
                p(
                    format!("step_ups[{i}].id"),
                    format!("step-up id {:?} is used twice", s.id.as_str()),
                );
            }
            check_condition(&s.when, &format!("step_ups[{i}].when"), &mut p);
        }

        // A tier whose rule implies the rule of a higher tier can never be
        // where anyone lands: the higher tier always wins.
        for (i, lower) in doc.tiers.iter().enumerate() {
            let Some(lc) = lower.upgrade.as_ref().and_then(Condition::conjuncts) else {
                continue;
            };
            for higher in doc.tiers.iter().filter(|h| h.rank > lower.rank) {
                let Some(hc) = higher.upgrade.as_ref().and_then(Condition::conjuncts) else {
                    continue;
                };
                let implied = hc.iter().all(|(k, h)| lc.get(k).is_some_and(|l| l >= h));
                if implied {
                    p(
                        format!("tiers[{i}].upgrade"),
                        format!(
                            "tier {:?} is unreachable: whenever its rule holds, the rule of higher tier {:?} holds too",
                            lower.id.as_str(),
                            higher.id.as_str()
                        ),
                    );
                    break;
                }
            }
        }

        if !problems.is_empty() {
            return Err(RuleSetError(problems));
        }
        doc.tiers.sort_by_key(|t| t.rank);
        Ok(RuleSet { doc })
    }

    pub fn doc(&self) -> &RuleSetDoc {
        &self.doc
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.doc.tiers
    }

    /// The tier every distributor starts in.
    pub fn entry_tier(&self) -> &Tier {
        &self.doc.tiers[0]
    }

    pub fn tier_by_id(&self, id: &str) -> Option<&Tier> {
        self.doc.tiers.iter().find(|t| t.id.as_str() == id)
    }

    /// For each metric read over a rolling window, the days of daily
    /// buckets the rules need (the longest window; twice it for growth).
    /// Daily buckets are kept, and read, only for these.
    pub fn daily_spans(&self) -> BTreeMap<Metric, u32> {
        fn walk(c: &Condition, out: &mut BTreeMap<Metric, u32>) {
            match c {
                Condition::Threshold { metric, window, .. } => {
                    let span = window.daily_span(*metric);
                    if span > 0 {
                        // Growth reads own sales by day.
                        let stored = if *metric == Metric::SalesGrowthPct {
                            Metric::SalesAmount
                        } else {
                            *metric
                        };
                        let slot = out.entry(stored).or_default();
                        *slot = (*slot).max(span);
                    }
                }
                Condition::All(cs) | Condition::Any(cs) | Condition::AtLeast { of: cs, .. } => {
                    cs.iter().for_each(|c| walk(c, out))
                }
            }
        }
        let mut out = BTreeMap::new();
        for t in &self.doc.tiers {
            t.upgrade
                .iter()
                .chain(t.retention.iter())
                .for_each(|c| walk(c, &mut out));
        }
        self.doc
            .step_ups
            .iter()
            .for_each(|s| walk(&s.when, &mut out));
        out
    }

    /// What this rule set reads that a `previous` one did not keep: metrics
    /// over rolling windows (new, or longer than before) and SKUs whose
    /// purchases count. Publishing it counts the orders already in the
    /// ledger into them, so new rules do not start from nothing.
    pub fn backfill_from(&self, previous: Option<&RuleSet>) -> Option<Backfill> {
        let before = previous.map(RuleSet::daily_spans).unwrap_or_default();
        let daily: BTreeMap<Metric, u32> = self
            .daily_spans()
            .into_iter()
            .filter(|(m, span)| before.get(m).is_none_or(|b| b < span))
            .collect();
        let known = previous.map(RuleSet::referenced_skus).unwrap_or_default();
        let skus: BTreeSet<Sku> = self
            .referenced_skus()
            .into_iter()
            .filter(|s| !known.contains(s))
            .collect();
        (!daily.is_empty() || !skus.is_empty()).then_some(Backfill { daily, skus })
    }

    /// The SKUs conditions refer to: the ones whose purchases are counted.
    pub fn referenced_skus(&self) -> BTreeSet<Sku> {
        fn walk(c: &Condition, out: &mut BTreeSet<Sku>) {
            match c {
                Condition::Threshold { skus, .. } => out.extend(skus.iter().cloned()),
                Condition::All(cs) | Condition::Any(cs) | Condition::AtLeast { of: cs, .. } => {
                    cs.iter().for_each(|c| walk(c, out))
                }
            }
        }
        let mut out = BTreeSet::new();
        for t in &self.doc.tiers {
            t.upgrade
                .iter()
                .chain(t.retention.iter())
                .for_each(|c| walk(c, &mut out));
        }
        self.doc
            .step_ups
            .iter()
            .for_each(|s| walk(&s.when, &mut out));
        out
    }

    pub fn commission(&self) -> &CommissionPolicy {
        &self.doc.commission
    }

    pub fn fulfilment(&self) -> &crate::fulfilment::FulfilmentRules {
        &self.doc.fulfilment
    }

    pub fn reserves(&self) -> Option<&crate::stock::plan::ReserveRules> {
        self.doc.reserves.as_ref()
    }

    /// Each tier's seniority (`benefits.priority`), as reserve plans rank them.
    pub fn seniority(&self) -> BTreeMap<TierId, u8> {
        self.doc
            .tiers
            .iter()
            .map(|t| (t.id.clone(), t.benefits.priority))
            .collect()
    }

    pub fn downgrades(&self) -> &Downgrades {
        &self.doc.downgrades
    }

    pub fn tier_by_rank(&self, rank: u32) -> Option<&Tier> {
        self.doc.tiers.get(rank as usize)
    }

    /// Progress towards the next tier: each condition of its upgrade rule,
    /// its current value and its threshold.
    pub fn progress(&self, metrics: &Metrics, now: Day, current_rank: u32) -> Option<RuleOutcome> {
        let next = self.tier_by_rank(current_rank + 1)?;
        let cond = next.upgrade.as_ref()?;
        let mut observed = Vec::new();
        let met = cond.eval(metrics, now, &mut observed);
        Some(RuleOutcome {
            rule: format!("upgrade:{}", next.id),
            met,
            observed,
        })
    }

    /// The tier above `current_rank` and how far the metrics are towards
    /// its upgrade rule, in percent (0 to 100, one decimal place, rounded
    /// down so that 100 means the rule holds). `None` at the top tier.
    pub fn next_tier_progress(
        &self,
        metrics: &Metrics,
        now: Day,
        current_rank: u32,
    ) -> Option<(&Tier, Decimal)> {
        let next = self.tier_by_rank(current_rank + 1)?;
        let share = next
            .upgrade
            .as_ref()
            .map_or(Decimal::ONE, |c| c.progress(metrics, now));
        let mut pct = (share * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::ToZero);
        // Always one place, so that 80 reads "80.0" as 12.5 reads "12.5".
        pct.rescale(1);
        Some((next, pct))
    }

    /// The tier the metrics qualify for as of `now`, the brand's today (see
    /// the module docs for the semantics).
    pub fn qualify(&self, metrics: &Metrics, now: Day) -> Qualification {
        let tiers = &self.doc.tiers;
        let mut outcomes = Vec::with_capacity(tiers.len() + self.doc.step_ups.len());
        let mut base = 0usize;
        for (idx, tier) in tiers.iter().enumerate().rev() {
            let Some(cond) = &tier.upgrade else { continue };
            let mut observed = Vec::new();
            let met = cond.eval(metrics, now, &mut observed);
            if met && base == 0 {
                base = idx;
            }
            outcomes.push(RuleOutcome {
                rule: format!("upgrade:{}", tier.id),
                met,
                observed,
            });
        }
        let mut steps = 0usize;
        for step in &self.doc.step_ups {
            let mut observed = Vec::new();
            let met = step.when.eval(metrics, now, &mut observed);
            steps += usize::from(met);
            outcomes.push(RuleOutcome {
                rule: format!("step_up:{}", step.id),
                met,
                observed,
            });
        }
        let idx = (base + steps).min(tiers.len() - 1);
        Qualification {
            tier: tiers[idx].id.clone(),
            rank: tiers[idx].rank,
            outcomes,
        }
    }
}

fn check_condition(c: &Condition, path: &str, p: &mut impl FnMut(String, String)) {
    check_condition_at(c, path, 1, p)
}

fn check_condition_at(c: &Condition, path: &str, depth: usize, p: &mut impl FnMut(String, String)) {
    if depth > MAX_CONDITION_DEPTH {
        p(
            path.to_owned(),
            format!("conditions nest at most {MAX_CONDITION_DEPTH} deep"),
        );
        return;
    }
    match c {
        Condition::Threshold { gte, window, .. } => {
            if gte.is_sign_negative() && !gte.is_zero() {
                p(
                    format!("{path}.gte"),
                    format!("threshold {gte} is negative"),
                );
            }
            if let Window::RollingDays(n) = window
                && !(1..=crate::metrics::MAX_ROLLING_DAYS).contains(n)
            {
                p(
                    format!("{path}.window.rolling_days"),
                    format!(
                        "a rolling window is 1 to {} days, got {n}",
                        crate::metrics::MAX_ROLLING_DAYS
                    ),
                );
            }
        }
        Condition::All(cs) | Condition::Any(cs) => {
            let key = if matches!(c, Condition::All(_)) {
                "all"
            } else {
                "any"
            };
            if cs.is_empty() {
                p(
                    format!("{path}.{key}"),
                    "needs at least one condition".into(),
                );
            }
            for (i, c) in cs.iter().enumerate() {
                check_condition_at(c, &format!("{path}.{key}[{i}]"), depth + 1, p);
            }
        }
        Condition::AtLeast { n, of } => {
            if *n == 0 || *n > of.len() {
                p(
                    format!("{path}.at_least.n"),
                    format!(
                        "n must be between 1 and {} (the number of conditions), got {n}",
                        of.len()
                    ),
                );
            }
            for (i, c) in of.iter().enumerate() {
                check_condition_at(c, &format!("{path}.at_least.of[{i}]"), depth + 1, p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;

    fn tiers_doc(n: usize) -> String {
        let tiers: Vec<String> = (0..n)
            .map(|i| {
                let upgrade = if i == 0 {
                    String::new()
                } else {
                    format!(r#", "upgrade": {{"metric": "sales_amount", "window": "month", "gte": "{i}000"}}"#)
                };
                format!(r#"{{"id": "t{i}", "name": "T{i}", "rank": {i}{upgrade}}}"#)
            })
            .collect();
        format!(r#"{{"tiers": [{}]}}"#, tiers.join(","))
    }

    #[test]
    fn rule_sets_are_bounded_and_refused_past_the_bounds_at_once() {
        assert!(RuleSet::from_json(&tiers_doc(MAX_TIERS)).is_ok());
        // Only the bounds: past them, the pairwise checks do not run.
        let e = RuleSet::from_json(&tiers_doc(10_000)).unwrap_err().0;
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].message.contains("at most 50 tiers"), "{e:?}");
        assert!(e[1].message.contains("bytes as stored"), "{e:?}");

        let fixed: Vec<String> = (0..8000)
            .map(|i| format!(r#""SKU-{i:05}": "1.00""#))
            .collect();
        let doc = format!(
            r#"{{"tiers": [{{"id": "a", "name": "A", "rank": 0, "benefits": {{"commission_fixed": {{{}}}}}}}]}}"#,
            fixed.join(",")
        );
        let e = RuleSet::from_json(&doc).unwrap_err().0;
        assert!(e[0].message.contains("bytes as stored"), "{e:?}");

        let mut nested = r#"{"metric": "sales_amount", "window": "month", "gte": "1"}"#.to_owned();
        for _ in 0..MAX_CONDITION_DEPTH {
            nested = format!(r#"{{"all": [{nested}]}}"#);
        }
        let doc = format!(
            r#"{{"tiers": [{{"id": "a", "name": "A", "rank": 0}}, {{"id": "b", "name": "B", "rank": 1, "upgrade": {nested}}}]}}"#
        );
        let e = RuleSet::from_json(&doc).unwrap_err().0;
        assert!(e[0].message.contains("nest at most 8 deep"), "{e:?}");

        let steps: Vec<String> = (0..=MAX_STEP_UPS)
            .map(|i| {
                format!(
                    r#"{{"id": "s{i}", "when": {{"metric": "valid_downline_users", "gte": "5"}}}}"#
                )
            })
            .collect();
        let doc = format!(
            r#"{{"tiers": [{{"id": "a", "name": "A", "rank": 0}}], "step_ups": [{}]}}"#,
            steps.join(",")
        );
        let e = RuleSet::from_json(&doc).unwrap_err().0;
        assert!(e[0].message.contains("at most 50 step-ups"), "{e:?}");
    }

    pub(crate) const CLOTHING: &str = r#"{
      "tiers": [
        {"id": "junior", "name": "初级 Junior", "rank": 0, "benefits": {"discount_pct": "0", "commission_pct": "5", "priority": 0}},
        {"id": "intermediate", "name": "中级 Intermediate", "rank": 1, "benefits": {"discount_pct": "5", "commission_pct": "8", "priority": 1},
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "50000"}},
        {"id": "senior", "name": "高级 Senior", "rank": 2, "benefits": {"discount_pct": "10", "commission_pct": "10", "priority": 2},
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100000"}},
        {"id": "gold", "name": "金牌 Gold", "rank": 3, "benefits": {"discount_pct": "15", "commission_pct": "12", "priority": 3},
         "upgrade": {"all": [{"metric": "sales_amount", "window": "month", "gte": "300000"},
                             {"metric": "valid_downline_users", "gte": "20"}]}}
      ],
      "step_ups": [{"id": "five-valid-downline-users", "when": {"metric": "valid_downline_users", "gte": "5"}}]
    }"#;

    fn month() -> Day {
        Day::parse("2026-11-15").unwrap()
    }

    fn with_sales(amount: &str, valid_users: i64) -> Metrics {
        let mut m = Metrics::default();
        m.sales.add(month(), Money::parse(amount).unwrap());
        m.valid_downline_users = valid_users;
        m
    }

    #[test]
    fn progress_to_the_next_tier_in_percent() {
        let rules = RuleSet::from_json(CLOTHING).unwrap();
        let pct = |sales: &str, users, rank| {
            rules
                .next_tier_progress(&with_sales(sales, users), month(), rank)
                .map(|(t, p)| (t.id.to_string(), p.to_string()))
        };
        let p = |t: &str, v: &str| Some((t.to_owned(), v.to_owned()));
        assert_eq!(pct("0", 0, 0), p("intermediate", "0.0"));
        assert_eq!(
            pct("12345.67", 0, 0),
            p("intermediate", "24.6"),
            "rounded down"
        );
        assert_eq!(
            pct("49999.99", 0, 0),
            p("intermediate", "99.9"),
            "not 100 until it holds"
        );
        assert_eq!(pct("60000", 0, 0), p("intermediate", "100.0"));
        // Gold's `all`: its furthest-behind part (150,000 of 300,000; 4 of 20 users).
        assert_eq!(pct("150000", 4, 2), p("gold", "20.0"));
        assert_eq!(pct("150000", 20, 2), p("gold", "50.0"));
        assert_eq!(pct("1", 0, 3), None, "the top tier has no next");

        let doc = r#"{"tiers": [{"id": "a", "name": "A", "rank": 0},
            {"id": "b", "name": "B", "rank": 1, "upgrade": {"at_least": {"n": 2, "of": [
                {"metric": "sales_amount", "window": "month", "gte": "1000"},
                {"metric": "valid_downline_users", "gte": "10"},
                {"any": [{"metric": "order_count", "window": "month", "gte": "4"},
                         {"metric": "downline_distributors", "gte": "0"}]}]}}}]}"#;
        let rules = RuleSet::from_json(doc).unwrap();
        let (_, p) = rules
            .next_tier_progress(&with_sales("500", 8), month(), 0)
            .unwrap();
        // A threshold of 0 holds: `any` is complete; users are at 80%, sales
        // at 50%; the second closest of the three is 80%.
        assert_eq!(p.to_string(), "80.0");
        let (_, p) = rules
            .next_tier_progress(&with_sales("500", 2), month(), 0)
            .unwrap();
        assert_eq!(p.to_string(), "50.0", "now sales are second");
    }

    #[test]
    fn the_clothing_example() {
        let rules = RuleSet::from_json(CLOTHING).unwrap();
        let tier = |sales: &str, users| {
            rules
                .qualify(&with_sales(sales, users), month())
                .tier
                .to_string()
        };
        assert_eq!(tier("49999.99", 0), "junior");
        assert_eq!(tier("50000", 0), "intermediate");
        assert_eq!(tier("99999.99", 0), "intermediate");
        assert_eq!(tier("100000", 0), "senior");
        // 5 valid downline users: up one from wherever sales put it.
        assert_eq!(tier("0", 5), "intermediate");
        assert_eq!(tier("50000", 5), "senior");
        assert_eq!(tier("100000", 5), "gold");
        // Capped at the top.
        assert_eq!(tier("300000", 20), "gold");
    }

    #[test]
    fn rolling_windows_are_validated_and_their_spans_known() {
        let doc = |window: &str| {
            format!(
                r#"{{"tiers": [{{"id": "a", "name": "A", "rank": 0}}, {{"id": "b", "name": "B", "rank": 1,
                   "upgrade": {{"any": [{{"metric": "sales_amount", "window": {window}, "gte": "1"}},
                                       {{"metric": "sales_growth_pct", "window": {{"rolling_days": 30}}, "gte": "10"}},
                                       {{"metric": "order_count", "window": {{"rolling_days": 7}}, "gte": "3"}}]}}}}]}}"#
            )
        };
        let rules = RuleSet::from_json(&doc(r#"{"rolling_days": 90}"#)).unwrap();
        assert_eq!(
            rules.daily_spans(),
            BTreeMap::from([(Metric::SalesAmount, 90), (Metric::OrderCount, 7)])
        );
        let rules = RuleSet::from_json(&doc(r#"{"rolling_days": 45}"#)).unwrap();
        assert_eq!(
            rules.daily_spans()[&Metric::SalesAmount],
            60,
            "growth over 30 days reads 60"
        );
        let err = |json: &str| RuleSet::from_json(json).unwrap_err().0;
        let e = err(&doc(r#"{"rolling_days": 0}"#));
        assert_eq!(e[0].path, "tiers[1].upgrade.any[0].window.rolling_days");
        let e = err(&doc(r#"{"rolling_days": 400}"#));
        assert!(e[0].message.contains("1 to 366 days"), "{e:?}");
        let e = err(&doc(r#"{"rolling_weeks": 4}"#));
        assert!(e[0].path.starts_with("tiers[1].upgrade"), "{e:?}");
        assert!(
            CLOTHING.contains("month")
                && RuleSet::from_json(CLOTHING)
                    .unwrap()
                    .daily_spans()
                    .is_empty()
        );
    }

    #[test]
    fn the_no_tier_mark_is_no_tier_id() {
        let e = RuleSet::from_json(r#"{"tiers": [{"id": "-", "name": "None", "rank": 0}]}"#)
            .unwrap_err()
            .0;
        assert_eq!(e[0].path, "tiers[0].id", "{e:?}");
        assert!(e[0].message.contains("reserved"), "{e:?}");
    }

    #[test]
    fn a_rule_set_backfills_what_its_predecessor_did_not_keep() {
        let base = RuleSet::from_json(CLOTHING).unwrap();
        assert_eq!(base.backfill_from(None), None);
        let with = |extra: &str| {
            RuleSet::from_json(
                &CLOTHING.replace(r#""step_ups": ["#, &format!(r#""step_ups": [{extra}, "#)),
            )
            .unwrap()
        };
        let rolling = with(
            r#"{"id": "r", "when": {"metric": "sales_amount", "window": {"rolling_days": 30}, "gte": "1"}}"#,
        );
        let b = rolling.backfill_from(Some(&base)).unwrap();
        assert_eq!(b.daily, BTreeMap::from([(Metric::SalesAmount, 30)]));
        assert!(b.skus.is_empty());
        assert_eq!(rolling.backfill_from(Some(&rolling)), None, "nothing new");
        let longer = with(
            r#"{"id": "r", "when": {"metric": "sales_amount", "window": {"rolling_days": 60}, "gte": "1"}}"#,
        );
        assert_eq!(
            longer.backfill_from(Some(&rolling)).unwrap().daily[&Metric::SalesAmount],
            60
        );
        assert_eq!(
            rolling.backfill_from(Some(&longer)),
            None,
            "a shorter window has its days already"
        );
        let sku = with(
            r#"{"id": "s", "when": {"metric": "purchased_quantity", "sku": "JACKET", "gte": "1"}}"#,
        );
        assert_eq!(sku.backfill_from(Some(&base)).unwrap().skus.len(), 1);
    }

    #[test]
    fn last_months_sales_do_not_count_this_month() {
        let rules = RuleSet::from_json(CLOTHING).unwrap();
        let m = with_sales("120000", 0);
        assert_eq!(rules.qualify(&m, month()).tier.as_str(), "senior");
        let next = Day::parse("2026-12-01").unwrap();
        assert_eq!(rules.qualify(&m, next).tier.as_str(), "junior");
    }

    #[test]
    fn reasons_explain_up_and_down() {
        let rules = RuleSet::from_json(CLOTHING).unwrap();
        let q = rules.qualify(&with_sales("100000", 0), month());
        let up = q.reasons(Some(0), &rules);
        assert_eq!(
            up.iter().map(|o| o.rule.as_str()).collect::<Vec<_>>(),
            ["upgrade:senior", "upgrade:intermediate"]
        );
        assert_eq!(up[0].observed[0].value, Decimal::from(100000));
        let q = rules.qualify(&with_sales("60000", 0), month());
        let down = q.reasons(Some(2), &rules);
        assert_eq!(
            down.iter().map(|o| o.rule.as_str()).collect::<Vec<_>>(),
            ["upgrade:senior", "step_up:five-valid-downline-users"]
        );
        assert!(down.iter().all(|o| !o.met));
    }

    #[test]
    fn at_least_n_of() {
        let c: Condition = serde_json::from_str(
            r#"{"at_least": {"n": 2, "of": [
                {"metric": "sales_amount", "window": "lifetime", "gte": "10"},
                {"metric": "order_count", "window": "lifetime", "gte": "2"},
                {"metric": "downline_users", "gte": "1"}]}}"#,
        )
        .unwrap();
        let mut m = with_sales("10", 0);
        let mut seen = vec![];
        assert!(!c.eval(&m, month(), &mut seen));
        assert_eq!(seen.len(), 3);
        m.downline_users = 1;
        assert!(c.eval(&m, month(), &mut vec![]));
    }

    #[test]
    fn invalid_rule_sets_name_the_field() {
        let err = |json: &str| RuleSet::from_json(json).unwrap_err().0;
        let e = err(
            r#"{"tiers": [{"id": "a", "name": "A", "rank": 0}, {"id": "b", "name": "B", "rank": 1, "upgrade": {"metric": "salez", "window": "month", "gte": "1"}}]}"#,
        );
        assert!(e[0].path.starts_with("tiers[1].upgrade"), "{e:?}");
        assert!(e[0].message.contains("salez"), "{e:?}");

        let e = err(
            r#"{"tiers": [{"id": "a", "name": "A", "rank": 0}, {"id": "b", "name": "B", "rank": 1, "upgrade": {"metric": "sales_amount", "gte": "1"}}]}"#,
        );
        assert!(e[0].message.contains("window"), "{e:?}");

        let e = err(
            r#"{"tiers": [{"id": "a", "name": "A", "rank": 0}, {"id": "b", "name": "B", "rank": 2, "upgrade": {"metric": "order_count", "window": "month", "gte": "1"}}]}"#,
        );
        assert!(
            e.iter().any(|p| p.message.contains("without gaps")),
            "{e:?}"
        );

        let e = err(r#"{"tiers": [{"id": "a", "name": "A", "rank": 0},
            {"id": "b", "name": "B", "rank": 1, "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100"}},
            {"id": "c", "name": "C", "rank": 2, "upgrade": {"metric": "sales_amount", "window": "month", "gte": "50"}}]}"#);
        assert_eq!(e[0].path, "tiers[1].upgrade");
        assert!(e[0].message.contains("unreachable"), "{e:?}");

        let e = err(
            r#"{"tiers": [{"id": "a", "name": "A", "rank": 0}, {"id": "b", "name": "B", "rank": 1, "upgrade": {"at_least": {"n": 3, "of": [{"metric": "downline_users", "gte": "1"}]}}}]}"#,
        );
        assert_eq!(e[0].path, "tiers[1].upgrade.at_least.n");

        let e = err(
            r#"{"tiers": [{"id": "a", "name": "A", "rank": 0, "upgrade": {"metric": "downline_users", "gte": "1"}}]}"#,
        );
        assert_eq!(e[0].path, "tiers[0].upgrade");

        let e = err(r#"{"tiers": []}"#);
        assert_eq!(e[0].path, "tiers");
    }

    #[test]
    fn conditions_round_trip() {
        let rules = RuleSet::from_json(CLOTHING).unwrap();
        let json = serde_json::to_string(rules.doc()).unwrap();
        assert_eq!(RuleSet::from_json(&json).unwrap(), rules);
    }
}
