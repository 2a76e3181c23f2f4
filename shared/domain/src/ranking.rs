//! Distributors in order: by this month's or quarter's sales, or by when
//! their tier last changed, most first.
//!
//! A sorted list is read from indexes whose sort key is the rank defined
//! here, kept up to date by the writes that move it (an order's sales, a
//! tier change), never by sorting a scan. Each index is spread over
//! [`RANK_SHARDS`] partitions by distributor, so that no partition takes the
//! whole brand's order rate; a page reads the top of every shard and merges
//! them ([`merge_desc`]). A rank is a string that sorts as its order does
//! and ends with the distributor's id, so that ties have an order too and a
//! page's last rank is where every shard's next page starts.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::analytics::Span;
use crate::calendar::Month;
use crate::ids::DistributorId;
use crate::metrics::Metrics;
use crate::money::Money;

/// How many partitions a ranking index is spread over. Every order moves
/// its seller's month and quarter ranks: at 5,000 orders a second a shard's
/// partition takes about 156 index entries moved (312 write units) a second,
/// under a third of the 1,000 one partition takes; a page reads 32 Queries.
pub const RANK_SHARDS: u32 = 32;

/// The shard a distributor's ranks are kept in, stable across builds.
pub fn rank_shard(id: &DistributorId) -> u32 {
    crate::analytics::fnv1a(id.as_str()) % RANK_SHARDS
}

/// What a list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortBy {
    /// Own sales in the current natural month.
    SalesMonth,
    /// Own sales in the current natural quarter, so far.
    SalesQuarter,
    /// When the tier last changed (a registration in the entry tier counts).
    TierChangedAt,
}

impl SortBy {
    pub const ALL: [SortBy; 3] = [
        SortBy::SalesMonth,
        SortBy::SalesQuarter,
        SortBy::TierChangedAt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortBy::SalesMonth => "sales_month",
            SortBy::SalesQuarter => "sales_quarter",
            SortBy::TierChangedAt => "tier_changed_at",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == raw)
    }

    /// The period whose ranking a sales sort reads, as of `month`; `None`
    /// for the tier-change sort, which has one ranking for all time.
    pub fn period(self, month: Month) -> Option<Span> {
        match self {
            SortBy::SalesMonth => Some(Span::Month(month)),
            SortBy::SalesQuarter => Some(Span::quarter_of(month)),
            SortBy::TierChangedAt => None,
        }
    }
}

impl fmt::Display for SortBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Cents are written in this many digits, so that string order is numeric
/// order: up to 10^22 in money, far past any distributor's sales (a larger
/// total ranks as the largest this can write).
const CENTS_DIGITS: usize = 24;

/// The rank of `amount` for `id`: its cents, zero-padded, then the id.
/// Negative amounts (a refund of an order from a month no longer kept) rank
/// as zero.
pub fn amount_rank(amount: Money, id: &DistributorId) -> String {
    let cents = (amount.amount() * Decimal::ONE_HUNDRED)
        .trunc()
        .to_u128()
        .unwrap_or(0)
        .min(10u128.pow(CENTS_DIGITS as u32) - 1);
    format!("{cents:0width$}#{id}", width = CENTS_DIGITS)
}

/// The rank of a tier change at `at` for `id`: the instant in fixed-width
/// UTC (microseconds), then the id.
pub fn changed_rank(at: DateTime<Utc>, id: &DistributorId) -> String {
    format!("{}#{id}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// A distributor's place in the sales rankings, from its metrics as they
/// stand after a write: the latest month it has sales in, with that month's
/// sales, and that month's quarter, with the quarter's sales so far. `None`
/// without any monthly sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesRanks {
    pub month: Month,
    pub month_rank: String,
    pub quarter: Span,
    pub quarter_rank: String,
}

pub fn sales_ranks(metrics: &Metrics, id: &DistributorId) -> Option<SalesRanks> {
    let (&month, &in_month) = metrics.sales.by_month.iter().next_back()?;
    let in_quarter: Money = month
        .quarter_months()
        .into_iter()
        .filter(|m| *m <= month)
        .map(|m| metrics.sales.month(m))
        .sum();
    Some(SalesRanks {
        month,
        month_rank: amount_rank(in_month, id),
        quarter: Span::quarter_of(month),
        quarter_rank: amount_rank(in_quarter, id),
    })
}

/// Whether a distributor with these metrics is in `by`'s ranking of
/// `period`: what a sorted list's tail (those without sales in the period)
/// leaves out, because the ranking listed them.
pub fn ranked_in(metrics: &Metrics, id: &DistributorId, by: SortBy, period: Span) -> bool {
    match (by, sales_ranks(metrics, id)) {
        (SortBy::SalesMonth, Some(r)) => Span::Month(r.month) == period,
        (SortBy::SalesQuarter, Some(r)) => r.quarter == period,
        _ => false,
    }
}

/// One shard's page of a ranking, best first, and whether it has more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPage<T> {
    pub entries: Vec<T>,
    pub more: bool,
}

/// The best `limit` of the shards' pages, best first (greatest first), and
/// whether any entry is left after them. Exact when each page holds its
/// shard's best `limit` after the previous page's last entry: every entry
/// of the merged top is in its own shard's top.
pub fn merge_desc<T: Ord>(pages: Vec<ShardPage<T>>, limit: usize) -> (Vec<T>, bool) {
    let mut more = pages.iter().any(|p| p.more);
    let mut all: Vec<T> = pages.into_iter().flat_map(|p| p.entries).collect();
    all.sort_by(|a, b| b.cmp(a));
    if all.len() > limit {
        all.truncate(limit);
        more = true;
    }
    (all, more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;

    fn id(raw: &str) -> DistributorId {
        DistributorId::parse(raw).unwrap()
    }

    #[test]
    fn amount_ranks_sort_as_amounts_do() {
        let a = id("a");
        let ranks: Vec<String> = [0, 5, 99, 100, 1_000_000, 12_345_678_900]
            .into_iter()
            .map(|c| amount_rank(Money::cents(c), &a))
            .collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted);
        assert_eq!(
            amount_rank(Money::cents(-500), &a),
            amount_rank(Money::ZERO, &a)
        );
        // Ties are ordered by id.
        assert!(amount_rank(Money::cents(5), &id("b")) > amount_rank(Money::cents(5), &a));
        assert!(amount_rank(Money::cents(6), &a) > amount_rank(Money::cents(5), &id("zz")));
    }

    #[test]
    fn changed_ranks_sort_as_instants_do() {
        let a = id("a");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let earlier = changed_rank(t("2026-11-30T23:59:59+00:00"), &a);
        let later = changed_rank(t("2026-12-01T08:00:00.5+08:00"), &a);
        let latest = changed_rank(t("2026-12-01T00:00:01.000001+00:00"), &a);
        assert!(
            earlier < later && later < latest,
            "{earlier} {later} {latest}"
        );
    }

    #[test]
    fn sales_ranks_follow_the_latest_month() {
        let d = id("d1");
        assert_eq!(sales_ranks(&Metrics::default(), &d), None);
        let mut m = Metrics::default();
        let day = |s: &str| Day::parse(s).unwrap();
        for (at, cents) in [
            ("2026-10-03", 100),
            ("2026-11-02", 250),
            ("2026-09-30", 900),
        ] {
            m.sales
                .by_month
                .insert(day(at).month(), Money::cents(cents));
        }
        let r = sales_ranks(&m, &d).unwrap();
        assert_eq!(r.month, Month::parse("2026-11").unwrap());
        assert_eq!(r.month_rank, amount_rank(Money::cents(250), &d));
        // Q4 so far: October and November, not September.
        assert_eq!(r.quarter.to_string(), "2026-Q4");
        assert_eq!(r.quarter_rank, amount_rank(Money::cents(350), &d));
        let q4 = Span::parse("2026-Q4").unwrap();
        assert!(ranked_in(&m, &d, SortBy::SalesQuarter, q4));
        assert!(ranked_in(
            &m,
            &d,
            SortBy::SalesMonth,
            Span::parse("2026-11").unwrap()
        ));
        assert!(!ranked_in(
            &m,
            &d,
            SortBy::SalesMonth,
            Span::parse("2026-12").unwrap()
        ));
    }

    #[test]
    fn merging_takes_the_best_of_every_shard() {
        let page = |v: &[u32], more| ShardPage {
            entries: v.to_vec(),
            more,
        };
        let (top, more) = merge_desc(vec![page(&[9, 4, 1], false), page(&[8, 7], false)], 3);
        assert_eq!(top, vec![9, 8, 7]);
        assert!(more, "4 and 1 are left");
        let (top, more) = merge_desc(vec![page(&[3], false), page(&[], false)], 3);
        assert_eq!((top, more), (vec![3], false));
        let (_, more) = merge_desc(vec![page(&[3], true)], 3);
        assert!(more, "a shard with more has more");
    }

    #[test]
    fn shards_cover_the_range_and_spread() {
        let mut seen = [0u32; RANK_SHARDS as usize];
        for i in 0..3200 {
            let s = rank_shard(&id(&format!("d{i}")));
            assert!(s < RANK_SHARDS);
            seen[s as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 40), "{seen:?}");
    }

    #[test]
    fn sorts_parse_by_name() {
        for s in SortBy::ALL {
            assert_eq!(SortBy::parse(s.name()), Some(s));
        }
        assert_eq!(SortBy::parse("sales"), None);
    }
}
