//! The brand's alerts: findings the daily job publishes, each once.
//!
//! A finding is named by what it is about and its period, so that a job
//! that runs again (or twice) finds the same names and publishes nothing
//! new: a region that turned declining in a period, an order resold below
//! its floor, the downgrades of a month's review.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::analytics::{DisorderRecord, MoveKind, RegionRow, Span};
use crate::calendar::Month;
use crate::ids::TierId;
use crate::money::Money;
use crate::region::Region;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A region's sales in a complete period fell beyond the rule.
    RegionDeclining {
        period: Span,
        region: Option<Region>,
        sales: Money,
        /// The base it fell from, and which: `previous` or `year_ago`.
        base: Money,
        against: &'static str,
        change_pct: Decimal,
    },
    /// An order with lines resold below their floor.
    PriceDisorder { record: DisorderRecord },
    /// The month's review moved distributors down.
    ReviewDowngrades {
        period: Month,
        downgrades: i64,
        /// Downgrades into each tier.
        by_tier: BTreeMap<TierId, i64>,
    },
}

impl Finding {
    /// What the finding is, once per period: the name its publication is
    /// recorded under.
    pub fn key(&self) -> String {
        match self {
            Finding::RegionDeclining { period, region, .. } => format!(
                "region_declining#{period}#{}",
                region.as_ref().map_or("-", |r| r.code())
            ),
            Finding::PriceDisorder { record } => format!(
                "price_disorder#{}#{}#{}#{}",
                record.distributor,
                record.order.platform,
                record.order.store,
                record.order.order_id
            ),
            Finding::ReviewDowngrades { period, .. } => format!("review_downgrades#{period}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Finding::RegionDeclining { .. } => "region_declining",
            Finding::PriceDisorder { .. } => "price_disorder",
            Finding::ReviewDowngrades { .. } => "review_downgrades",
        }
    }

    /// One line for a mail's subject or a chat robot's title: under 100
    /// characters, no line breaks (SNS refuses either).
    pub fn subject(&self) -> String {
        let text = match self {
            Finding::RegionDeclining {
                period,
                region,
                change_pct,
                against,
                ..
            } => format!(
                "Region {} declining in {period}: {change_pct}% against the {}",
                region.as_ref().map_or("(no province)", |r| r.code()),
                if *against == "previous" {
                    "previous period"
                } else {
                    "year before"
                }
            ),
            Finding::PriceDisorder { record } => format!(
                "Price disorder: {} sold {} line(s) below the floor in {}",
                record.distributor,
                record.lines.len(),
                record.order
            ),
            Finding::ReviewDowngrades {
                period, downgrades, ..
            } => format!("Review {period}: {downgrades} distributor(s) moved down"),
        };
        text.chars().filter(|c| !c.is_control()).take(99).collect()
    }
}

/// A region's decline as a finding, against the previous period first.
pub fn region_finding(period: Span, row: &RegionRow) -> Option<Finding> {
    let (base, against, change) = if row.declining_vs_previous {
        (row.previous.sales, "previous", row.change_vs_previous_pct)
    } else if row.declining_vs_year_ago {
        (row.year_ago.sales, "year_ago", row.change_vs_year_ago_pct)
    } else {
        return None;
    };
    Some(Finding::RegionDeclining {
        period,
        region: row.region.clone(),
        sales: row.current.sales,
        base,
        against,
        change_pct: change.unwrap_or_default(),
    })
}

/// The downgrades a month's moves counted, as a finding when there are any.
pub fn downgrades_finding(
    period: Month,
    moves: &BTreeMap<(TierId, MoveKind), i64>,
) -> Option<Finding> {
    let by_tier: BTreeMap<TierId, i64> = moves
        .iter()
        .filter(|((_, k), n)| *k == MoveKind::DownIn && **n > 0)
        .map(|((t, _), n)| (t.clone(), *n))
        .collect();
    let downgrades: i64 = by_tier.values().sum();
    (downgrades > 0).then_some(Finding::ReviewDowngrades {
        period,
        downgrades,
        by_tier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Tally;

    fn row(prev: bool, ago: bool) -> RegionRow {
        let t = |s: &str| Tally {
            sales: Money::parse(s).unwrap(),
            orders: 1,
        };
        RegionRow {
            region: Some(Region::parse("CN-GD").unwrap()),
            current: t("100"),
            previous: t("300"),
            year_ago: t("200"),
            change_vs_previous_pct: Some(Decimal::new(-6667, 2)),
            change_vs_year_ago_pct: Some(Decimal::from(-50)),
            declining_vs_previous: prev,
            declining_vs_year_ago: ago,
        }
    }

    #[test]
    fn a_finding_is_named_by_what_it_is_about_and_its_period() {
        let period = Span::parse("2026-11").unwrap();
        let f = region_finding(period, &row(true, true)).unwrap();
        assert_eq!(f.key(), "region_declining#2026-11#CN-GD");
        assert_eq!(
            f.subject(),
            "Region CN-GD declining in 2026-11: -66.67% against the previous period"
        );
        let Finding::RegionDeclining { against, base, .. } = &f else {
            unreachable!()
        };
        assert_eq!(
            (*against, base.to_string().as_str()),
            ("previous", "300.00")
        );
        let f = region_finding(period, &row(false, true)).unwrap();
        assert!(f.subject().ends_with("against the year before"));
        assert_eq!(region_finding(period, &row(false, false)), None);
    }

    #[test]
    fn downgrades_are_counted_from_the_months_moves() {
        let m = Month::parse("2026-12").unwrap();
        let junior = TierId::parse("junior").unwrap();
        let senior = TierId::parse("senior").unwrap();
        let moves = BTreeMap::from([
            ((junior.clone(), MoveKind::DownIn), 3),
            ((senior.clone(), MoveKind::DownOut), 3),
            ((senior.clone(), MoveKind::UpIn), 1),
        ]);
        let f = downgrades_finding(m, &moves).unwrap();
        assert_eq!(f.key(), "review_downgrades#2026-12");
        assert_eq!(f.subject(), "Review 2026-12: 3 distributor(s) moved down");
        assert_eq!(
            downgrades_finding(m, &BTreeMap::from([((senior, MoveKind::UpIn), 1)])),
            None
        );
    }
}
