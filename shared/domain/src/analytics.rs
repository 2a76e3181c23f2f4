//! What the brand sees of its network as orders arrive: sales by region and
//! tier, the moves between tiers, and price disorder (乱价).
//!
//! Every figure here is an aggregate kept up to date by the events that move
//! it (an order's contribution, a tier change), never a scan of orders. The
//! store keeps each aggregate in [`SHARDS`] items, so that no single item's
//! write rate is the whole brand's order rate; reading one sums the shards.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Month;
use crate::ids::{DistributorId, LineId, OrderRef, Sku, TierId};
use crate::ledger::{Contribution, PaidFacts};
use crate::money::Money;
use crate::order::OrderLine;
use crate::region::Region;
use crate::tier::{Direction, TierChange};

/// How many items each aggregate is spread over. At 5,000 orders a second
/// a shard takes about 310 transactional writes (625 write units) a second,
/// under the 1,000 one item or partition takes; a read sums 16 items.
pub const SHARDS: u32 = 16;

/// The shard an aggregate write goes to, from a key that spreads writers
/// (a seller, a distributor): FNV-1a, stable across builds and platforms.
pub fn shard_of(key: &str) -> u32 {
    fnv1a(key) % SHARDS
}

/// The 32-bit FNV-1a hash of `key`.
pub(crate) fn fnv1a(key: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

// ---------------------------------------------------------------------------
// Periods

/// What an analytics call reports on: a natural month (`2026-11`) or a
/// natural quarter (`2026-Q4`) of the brand's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Span {
    Month(Month),
    Quarter { year: i32, quarter: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period {0:?} is neither a month (2026-11) nor a quarter (2026-Q4)")]
pub struct SpanError(String);

impl Span {
    pub fn parse(raw: &str) -> Result<Self, SpanError> {
        let err = || SpanError(raw.chars().take(40).collect());
        if let Some((y, q)) = raw.split_once("-Q") {
            let year: i32 = (y.len() == 4)
                .then(|| y.parse().ok())
                .flatten()
                .ok_or_else(err)?;
            let quarter: u8 = (q.len() == 1)
                .then(|| q.parse().ok())
                .flatten()
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(err)?;
            Month::new(year, 1).ok_or_else(err)?;
            return Ok(Span::Quarter { year, quarter });
        }
        Month::parse(raw).map(Span::Month).map_err(|_| err())
    }

    /// The natural quarter holding `month`.
    pub fn quarter_of(month: Month) -> Span {
        Span::Quarter {
            year: month.year(),
            quarter: (month.number() - 1) / 3 + 1,
        }
    }

    /// The span holding `month`, of the same kind as `self`.
    fn like(self, month: Month) -> Span {
        match self {
            Span::Month(_) => Span::Month(month),
            Span::Quarter { .. } => Span::quarter_of(month),
        }
    }

    pub fn months(self) -> Vec<Month> {
        match self {
            Span::Month(m) => vec![m],
            Span::Quarter { year, quarter } => Month::new(year, (quarter - 1) * 3 + 1)
                .expect("a parsed quarter's first month exists")
                .quarter_months()
                .to_vec(),
        }
    }

    pub fn first_month(self) -> Month {
        self.months()[0]
    }

    pub fn last_month(self) -> Month {
        *self.months().last().expect("a span has a month")
    }

    /// The span before: the previous month or quarter. `None` before 1970.
    pub fn previous(self) -> Option<Span> {
        let before = self.first_month().previous();
        Month::new(before.year(), before.number()).map(|m| self.like(m))
    }

    /// The same span a year earlier. `None` before 1970.
    pub fn year_ago(self) -> Option<Span> {
        let first = self.first_month();
        Month::new(first.year() - 1, first.number()).map(|m| self.like(m))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Month(m) => m.fmt(f),
            Span::Quarter { year, quarter } => write!(f, "{year}-Q{quarter}"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------
// Sales by region and tier

/// One cell of the sales aggregate: where the buyer was, and the seller's
/// tier when the order was paid. Either may be unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cell {
    pub region: Option<Region>,
    pub tier: Option<TierId>,
}

/// Sales net of refunds, and orders that still count (paid and neither
/// cancelled nor fully refunded): what an order's contribution adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Tally {
    pub sales: Money,
    pub orders: i64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.sales = self.sales + other.sales;
        self.orders += other.orders;
    }

    pub fn is_zero(&self) -> bool {
        self.sales.is_zero() && self.orders == 0
    }
}

/// What the aggregate of each month, shard and cell moves by.
pub type SalesMoves = BTreeMap<(Month, u32, Cell), Tally>;

/// What one order's change of contribution moves in the sales aggregate:
/// the difference, in the month it was paid in and the cell its payment
/// named, so a refund in December takes back from November's cell, and the
/// aggregate is always the sum of the orders' contributions. The shard is
/// the order's ([`order_shard`]): so a refund takes back from the shard its
/// payment added to, and a seller's orders spread over every shard, however
/// busy the seller.
pub fn sales_move(
    before: Contribution,
    after: Contribution,
    paid: &PaidFacts,
    shard: u32,
) -> SalesMoves {
    let cell = Cell {
        region: paid.region.clone(),
        tier: paid.tier.clone(),
    };
    let mut out = SalesMoves::new();
    for (c, sign) in [(before, -1i64), (after, 1)] {
        let Some(day) = c.day else { continue };
        let slot = out.entry((day.month(), shard, cell.clone())).or_default();
        let sales = if sign < 0 { -c.sales } else { c.sales };
        slot.add(Tally {
            sales,
            orders: sign * c.live,
        });
    }
    out.retain(|_, t| !t.is_zero());
    out
}

/// The shard an order's sales go to.
pub fn order_shard(order: &crate::ids::OrderRef) -> u32 {
    shard_of(&order.to_string())
}

/// Adds `more` into `into`, dropping cells that net to nothing.
pub fn merge_moves(into: &mut SalesMoves, more: SalesMoves) {
    for (k, t) in more {
        into.entry(k).or_default().add(t);
    }
    into.retain(|_, t| !t.is_zero());
}

/// When a region counts as declining: its sales fell by more than
/// `threshold_pct` against a base (the previous period's sales, or the same
/// period's a year before) of at least `min_base`. A small base is noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeclineRule {
    pub threshold_pct: Decimal,
    pub min_base: Money,
}

impl DeclineRule {
    /// From the brand's settings: a percentage and an amount, as written.
    pub fn parse(threshold_pct: &str, min_base: &str) -> Result<Self, String> {
        Ok(Self {
            threshold_pct: crate::money::Percent::parse(threshold_pct)
                .map_err(|e| format!("threshold {threshold_pct:?}: {e}"))?
                .value(),
            min_base: Money::parse_non_negative(min_base)
                .map_err(|e| format!("minimum base {min_base:?}: {e}"))?,
        })
    }
}

impl Default for DeclineRule {
    fn default() -> Self {
        Self {
            threshold_pct: Decimal::from(20),
            min_base: Money::parse("1000.00").expect("a money literal"),
        }
    }
}

/// A region's sales in the period and the two periods it is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionRow {
    /// `None`: orders whose platform gave no province.
    pub region: Option<Region>,
    pub current: Tally,
    pub previous: Tally,
    pub year_ago: Tally,
    /// Change of sales in percent, to 2 places; `None` on a zero base.
    pub change_vs_previous_pct: Option<Decimal>,
    pub change_vs_year_ago_pct: Option<Decimal>,
    pub declining_vs_previous: bool,
    pub declining_vs_year_ago: bool,
}

impl RegionRow {
    pub fn declining(&self) -> bool {
        self.declining_vs_previous || self.declining_vs_year_ago
    }
}

/// Sales change from `base` to `now` in percent, rounded half to even at
/// 2 places; `None` when there is no base to compare with.
pub fn change_pct(base: Money, now: Money) -> Option<Decimal> {
    (!base.is_zero()).then(|| {
        ((now.amount() - base.amount()) * Decimal::ONE_HUNDRED / base.amount()).round_dp(2)
    })
}

/// One row per region seen in any of the three periods, largest sales
/// first. Only a `complete` period is judged: a month under way has not
/// sold all it will, and would look like a decline every morning.
pub fn region_rows(
    current: &BTreeMap<Option<Region>, Tally>,
    previous: &BTreeMap<Option<Region>, Tally>,
    year_ago: &BTreeMap<Option<Region>, Tally>,
    rule: &DeclineRule,
    complete: bool,
) -> Vec<RegionRow> {
    let mut regions: Vec<&Option<Region>> = current
        .keys()
        .chain(previous.keys())
        .chain(year_ago.keys())
        .collect();
    regions.sort();
    regions.dedup();
    let declines = |base: Tally, now: Tally| {
        complete
            && base.sales >= rule.min_base
            && !base.sales.is_zero()
            && change_pct(base.sales, now.sales).is_some_and(|c| -c > rule.threshold_pct)
    };
    let mut rows: Vec<RegionRow> = regions
        .into_iter()
        .map(|r| {
            let get = |m: &BTreeMap<Option<Region>, Tally>| m.get(r).copied().unwrap_or_default();
            let (cur, prev, ago) = (get(current), get(previous), get(year_ago));
            RegionRow {
                region: r.clone(),
                current: cur,
                previous: prev,
                year_ago: ago,
                change_vs_previous_pct: change_pct(prev.sales, cur.sales),
                change_vs_year_ago_pct: change_pct(ago.sales, cur.sales),
                declining_vs_previous: declines(prev, cur),
                declining_vs_year_ago: declines(ago, cur),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.current
            .sales
            .cmp(&a.current.sales)
            .then_with(|| a.region.cmp(&b.region))
    });
    rows
}

// ---------------------------------------------------------------------------
// Tiers

/// How a tier change moves the tier aggregates: who is a member of which
/// tier now, and the moves counted in the month it happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierMoves {
    /// Members gained (+1) and lost (-1) per tier.
    pub members: BTreeMap<TierId, i64>,
    /// Counters of the month, by tier and name (`joined`, `up_in`,
    /// `down_in`, `up_out`, `down_out`).
    pub counts: BTreeMap<(TierId, MoveKind), i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Took its first tier (a new distributor, or one placed by a first rule set).
    Joined,
    /// Came up into the tier.
    UpIn,
    /// Came down into the tier.
    DownIn,
    /// Left the tier upwards.
    UpOut,
    /// Left the tier downwards.
    DownOut,
}

impl MoveKind {
    pub const ALL: [MoveKind; 5] = [
        MoveKind::Joined,
        MoveKind::UpIn,
        MoveKind::DownIn,
        MoveKind::UpOut,
        MoveKind::DownOut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Joined => "joined",
            MoveKind::UpIn => "up_in",
            MoveKind::DownIn => "down_in",
            MoveKind::UpOut => "up_out",
            MoveKind::DownOut => "down_out",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == raw)
    }
}

/// What `change` moves. A change to the tier it comes from moves nothing.
pub fn tier_moves(change: &TierChange) -> TierMoves {
    let mut out = TierMoves::default();
    if change.from.as_ref() == Some(&change.to) {
        return out;
    }
    out.members.insert(change.to.clone(), 1);
    match &change.from {
        None => {
            out.counts.insert((change.to.clone(), MoveKind::Joined), 1);
        }
        Some(from) => {
            out.members.insert(from.clone(), -1);
            let (into, out_of) = match change.direction {
                Direction::Up => (MoveKind::UpIn, MoveKind::UpOut),
                Direction::Down => (MoveKind::DownIn, MoveKind::DownOut),
            };
            out.counts.insert((change.to.clone(), into), 1);
            out.counts.insert((from.clone(), out_of), 1);
        }
    }
    out
}

/// One tier's figures for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierRow {
    pub tier: Option<TierId>,
    /// Members at the period's end (now, for the period under way).
    pub members: i64,
    pub joined: i64,
    pub moved_up_in: i64,
    pub moved_down_in: i64,
    pub moved_up_out: i64,
    pub moved_down_out: i64,
    /// Sales by members of the tier (the seller's tier when each order was paid).
    pub sales: Money,
    pub orders: i64,
    /// Sales per member at the period's end, to 0.01; `None` without members.
    pub sales_per_member: Option<Money>,
}

/// One row per tier in `order` (the rule set's, lowest first), then any
/// other tier the aggregates name (a tier since removed) and sales whose
/// seller had no tier.
pub fn tier_rows(
    order: &[TierId],
    members: &BTreeMap<TierId, i64>,
    counts: &BTreeMap<(TierId, MoveKind), i64>,
    sales: &BTreeMap<Option<TierId>, Tally>,
) -> Vec<TierRow> {
    let mut tiers: Vec<Option<TierId>> = order.iter().cloned().map(Some).collect();
    let mut extra: Vec<Option<TierId>> = members
        .keys()
        .chain(counts.keys().map(|(t, _)| t))
        .cloned()
        .map(Some)
        .chain(sales.keys().cloned())
        .filter(|t| !tiers.contains(t))
        .collect();
    extra.sort();
    extra.dedup();
    tiers.extend(extra);
    tiers
        .into_iter()
        .map(|t| {
            let count = |k: MoveKind| {
                t.as_ref()
                    .and_then(|t| counts.get(&(t.clone(), k)))
                    .copied()
                    .unwrap_or(0)
            };
            let m = t
                .as_ref()
                .and_then(|t| members.get(t))
                .copied()
                .unwrap_or(0);
            let tally = sales.get(&t).copied().unwrap_or_default();
            TierRow {
                members: m,
                joined: count(MoveKind::Joined),
                moved_up_in: count(MoveKind::UpIn),
                moved_down_in: count(MoveKind::DownIn),
                moved_up_out: count(MoveKind::UpOut),
                moved_down_out: count(MoveKind::DownOut),
                sales: tally.sales,
                orders: tally.orders,
                sales_per_member: (m > 0)
                    .then(|| Money::round(tally.sales.amount() / Decimal::from(m))),
                tier: t,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Price disorder (乱价)

/// A line resold below the SKU's floor price at order time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub line_id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    /// What the buyer paid per unit: the line's amount over its quantity,
    /// to 0.01 (the comparison itself is exact: amount against floor × units).
    pub resale_unit_price: Money,
    pub floor: Money,
    /// How far below the floor, in percent of it, to 2 places.
    pub gap_pct: Decimal,
    /// The floor's worth of the line less what was paid: what the brand's
    /// price lost on it.
    pub gap_amount: Money,
}

/// The lines of a payment that were sold below the floor its intake
/// recorded on them. Lines without a floor (no price book, or no floor for
/// the SKU) are never violations.
pub fn violations(lines: &[OrderLine]) -> Vec<Violation> {
    lines
        .iter()
        .filter_map(|l| {
            let floor = l.floor_unit_price?;
            if l.quantity == 0 || floor.is_zero() {
                return None;
            }
            let floor_total = floor.times(l.quantity);
            (l.amount < floor_total).then(|| {
                let resale = l.amount.amount() / Decimal::from(l.quantity);
                Violation {
                    line_id: l.line_id.clone(),
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    resale_unit_price: Money::round(resale),
                    floor,
                    gap_pct: ((floor.amount() - resale) * Decimal::ONE_HUNDRED / floor.amount())
                        .round_dp(2),
                    gap_amount: floor_total - l.amount,
                }
            })
        })
        .collect()
}

/// The evidence of one order's violations, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisorderRecord {
    pub distributor: DistributorId,
    pub order: OrderRef,
    pub at: DateTime<Utc>,
    pub lines: Vec<Violation>,
}

/// One distributor's price disorder over a range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisorderRank {
    pub distributor: DistributorId,
    /// Lines sold below the floor.
    pub violations: u64,
    pub orders: u64,
    pub units: u64,
    pub gap_amount: Money,
    pub max_gap_pct: Decimal,
    pub last_at: DateTime<Utc>,
}

/// Distributors by violations, then by what the gaps cost, then by the
/// deepest gap.
pub fn rank<'a>(records: impl IntoIterator<Item = &'a DisorderRecord>) -> Vec<DisorderRank> {
    let mut by: BTreeMap<&DistributorId, DisorderRank> = BTreeMap::new();
    for r in records {
        let slot = by.entry(&r.distributor).or_insert_with(|| DisorderRank {
            distributor: r.distributor.clone(),
            violations: 0,
            orders: 0,
            units: 0,
            gap_amount: Money::ZERO,
            max_gap_pct: Decimal::ZERO,
            last_at: r.at,
        });
        slot.orders += 1;
        slot.last_at = slot.last_at.max(r.at);
        for v in &r.lines {
            slot.violations += 1;
            slot.units += u64::from(v.quantity);
            slot.gap_amount = slot.gap_amount + v.gap_amount;
            slot.max_gap_pct = slot.max_gap_pct.max(v.gap_pct);
        }
    }
    let mut out: Vec<DisorderRank> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.violations
            .cmp(&a.violations)
            .then_with(|| b.gap_amount.cmp(&a.gap_amount))
            .then_with(|| b.max_gap_pct.cmp(&a.max_gap_pct))
            .then_with(|| a.distributor.cmp(&b.distributor))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::ids::{BuyerId, EventId};
    use crate::tier::Cause;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn line(id: &str, qty: u32, amount: &str, floor: Option<&str>) -> OrderLine {
        OrderLine {
            line_id: LineId::parse(id).unwrap(),
            sku: Sku::parse("TEE").unwrap(),
            quantity: qty,
            unit_price: money(amount),
            amount: money(amount),
            entitled_unit_price: None,
            floor_unit_price: floor.map(money),
        }
    }

    #[test]
    fn periods_parse_and_compare_like_with_like() {
        let q = Span::parse("2026-Q1").unwrap();
        assert_eq!(q.to_string(), "2026-Q1");
        assert_eq!(q.previous().unwrap().to_string(), "2025-Q4");
        assert_eq!(q.year_ago().unwrap().to_string(), "2025-Q1");
        assert_eq!(
            q.months().iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            ["2026-01", "2026-02", "2026-03"]
        );
        let m = Span::parse("2026-01").unwrap();
        assert_eq!(m.previous().unwrap().to_string(), "2025-12");
        assert_eq!(m.year_ago().unwrap().to_string(), "2025-01");
        assert_eq!(Span::parse("1970-01").unwrap().previous(), None);
        for bad in [
            "2026-Q5", "2026-Q0", "2026-13", "26-Q1", "2026-Q", "", "2026-Q11",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refund_takes_back_from_the_cell_and_month_of_the_payment() {
        let paid = PaidFacts {
            event_id: EventId::parse("e").unwrap(),
            buyer: BuyerId::parse("b").unwrap(),
            at: Utc::now(),
            day: Day::parse("2026-11-30").unwrap(),
            total: money("100"),
            lines: vec![],
            region: Some(Region::parse("CN-ZJ").unwrap()),
            tier: Some(TierId::parse("gold").unwrap()),
        };
        let nov = Day::parse("2026-11-30").unwrap();
        let paid_c = Contribution {
            day: Some(nov),
            sales: money("100"),
            live: 1,
        };
        let first = sales_move(Contribution::default(), paid_c, &paid, 3);
        let refunded = Contribution {
            day: Some(nov),
            sales: money("0"),
            live: 0,
        };
        let second = sales_move(paid_c, refunded, &paid, 3);
        let key = (
            nov.month(),
            3,
            Cell {
                region: paid.region.clone(),
                tier: paid.tier.clone(),
            },
        );
        assert_eq!(
            first[&key],
            Tally {
                sales: money("100"),
                orders: 1
            }
        );
        assert_eq!(
            second[&key],
            Tally {
                sales: money("-100"),
                orders: -1
            }
        );
        let mut total = first;
        merge_moves(&mut total, second);
        assert!(total.is_empty(), "a full refund nets to nothing");
    }

    #[test]
    fn declines_are_judged_on_a_large_enough_base_of_a_complete_period() {
        let zj = Some(Region::parse("CN-ZJ").unwrap());
        let gd = Some(Region::parse("CN-GD").unwrap());
        let t = |s: &str| Tally {
            sales: money(s),
            orders: 1,
        };
        let current = BTreeMap::from([(zj.clone(), t("700")), (gd.clone(), t("50"))]);
        let previous = BTreeMap::from([(zj.clone(), t("1000")), (gd.clone(), t("500"))]);
        let year_ago = BTreeMap::from([(zj.clone(), t("800"))]);
        let rule = DeclineRule::default();
        let rows = region_rows(&current, &previous, &year_ago, &rule, true);
        assert_eq!(rows[0].region, zj);
        assert_eq!(rows[0].change_vs_previous_pct, Some(Decimal::from(-30)));
        assert!(rows[0].declining_vs_previous);
        // 800 is below the minimum base.
        assert!(!rows[0].declining_vs_year_ago);
        // -90 %, but on a base of 500.
        assert!(!rows[1].declining());
        // Exactly the threshold is not more than it.
        let rows = region_rows(
            &BTreeMap::from([(zj.clone(), t("800"))]),
            &previous,
            &BTreeMap::new(),
            &rule,
            true,
        );
        assert!(!rows.iter().find(|r| r.region == zj).unwrap().declining());
        let rows = region_rows(&current, &previous, &year_ago, &rule, false);
        assert!(rows.iter().all(|r| !r.declining()), "a period under way");
    }

    #[test]
    fn tier_moves_count_both_ends_of_a_change() {
        let gold = TierId::parse("gold").unwrap();
        let silver = TierId::parse("silver").unwrap();
        let change = |from: Option<&TierId>, to: &TierId, direction| TierChange {
            from: from.cloned(),
            to: to.clone(),
            direction,
            rule_set_version: 1,
            reasons: vec![],
            cause: Cause::Assignment,
            at: Utc::now(),
        };
        let up = tier_moves(&change(Some(&silver), &gold, Direction::Up));
        assert_eq!(
            up.members,
            BTreeMap::from([(gold.clone(), 1), (silver.clone(), -1)])
        );
        assert_eq!(
            up.counts,
            BTreeMap::from([
                ((gold.clone(), MoveKind::UpIn), 1),
                ((silver.clone(), MoveKind::UpOut), 1)
            ])
        );
        let joined = tier_moves(&change(None, &silver, Direction::Up));
        assert_eq!(
            joined.counts,
            BTreeMap::from([((silver.clone(), MoveKind::Joined), 1)])
        );
        assert_eq!(
            tier_moves(&change(Some(&gold), &gold, Direction::Down)),
            TierMoves::default()
        );
    }

    #[test]
    fn tier_rows_follow_the_rule_sets_order_and_average_on_members() {
        let gold = TierId::parse("gold").unwrap();
        let silver = TierId::parse("silver").unwrap();
        let rows = tier_rows(
            &[silver.clone(), gold.clone()],
            &BTreeMap::from([(silver.clone(), 3)]),
            &BTreeMap::from([((gold.clone(), MoveKind::UpIn), 2)]),
            &BTreeMap::from([
                (
                    Some(silver.clone()),
                    Tally {
                        sales: money("100"),
                        orders: 2,
                    },
                ),
                (
                    None,
                    Tally {
                        sales: money("5"),
                        orders: 1,
                    },
                ),
            ]),
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].tier.as_ref(), Some(&silver));
        assert_eq!(rows[0].sales_per_member, Some(money("33.33")));
        assert_eq!(rows[1].moved_up_in, 2);
        assert_eq!(rows[1].sales_per_member, None);
        assert_eq!(rows[2].tier, None);
    }

    #[test]
    fn a_line_below_its_floor_is_a_violation_with_its_gap() {
        let lines = [
            line("1", 3, "297.00", Some("100.00")),
            line("2", 3, "300.00", Some("100.00")),
            line("3", 1, "10.00", None),
            line("4", 3, "100.00", Some("40.00")),
        ];
        let found = violations(&lines);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].line_id.as_str(), "1");
        assert_eq!(found[0].resale_unit_price, money("99.00"));
        assert_eq!(found[0].gap_pct, Decimal::new(100, 2));
        assert_eq!(found[0].gap_amount, money("3.00"));
        // 33.333… a unit: shown to 0.01, compared exactly.
        assert_eq!(found[1].resale_unit_price, money("33.33"));
        assert_eq!(found[1].gap_amount, money("20.00"));
        assert_eq!(found[1].gap_pct, Decimal::new(1667, 2));
    }

    #[test]
    fn distributors_rank_by_violations_then_by_gap() {
        let rec = |d: &str, o: &str, gaps: &[&str]| DisorderRecord {
            distributor: DistributorId::parse(d).unwrap(),
            order: OrderRef::parse(&format!("shopify/s/{o}")).unwrap(),
            at: Utc::now(),
            lines: gaps
                .iter()
                .enumerate()
                .map(|(i, g)| Violation {
                    line_id: LineId::parse(&i.to_string()).unwrap(),
                    sku: Sku::parse("TEE").unwrap(),
                    quantity: 1,
                    resale_unit_price: money("1"),
                    floor: money("2"),
                    gap_pct: Decimal::from(50),
                    gap_amount: money(g),
                })
                .collect(),
        };
        let records = [
            rec("a", "1", &["1"]),
            rec("b", "2", &["1", "1"]),
            rec("c", "3", &["5"]),
        ];
        let ranked = rank(&records);
        let names: Vec<&str> = ranked.iter().map(|r| r.distributor.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
        assert_eq!(ranked[0].violations, 2);
        assert_eq!(ranked[0].gap_amount, money("2"));
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("d-1"), shard_of("d-1"));
        let spread: std::collections::BTreeSet<u32> =
            (0..200).map(|i| shard_of(&format!("d-{i}"))).collect();
        assert_eq!(spread.len() as u32, SHARDS);
    }
}
