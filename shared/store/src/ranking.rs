//! The ranking indexes behind sorted distributor lists: where each rank is
//! kept, the attributes that write it, and a merged page of them.
//!
//! | index | item | partition (`*_key`) | sort (`*_rank`) |
//! |---|---|---|---|
//! | `ByMonthSales` | metrics | `SALES#{YYYY-MM}#{shard:02}` | [`amount_rank`](tier_domain::ranking::amount_rank) |
//! | `ByQuarterSales` | metrics | `SALES#{YYYY}-Q{n}#{shard:02}` | the quarter's amount rank |
//! | `ByTierChange` | profile | `CHANGED#{shard:02}` | [`changed_rank`](tier_domain::ranking::changed_rank) |
//!
//! The sales ranks are set in the ledger's transaction whenever the seller's
//! own sales move, from the metrics as they will stand; the tier-change rank
//! with every tier change and a registration in the entry tier. The indexes
//! project keys only: a list reads the rows' profiles and metrics itself.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use tier_domain::analytics::Span;
use tier_domain::ids::DistributorId;
use tier_domain::ranking::{self, RANK_SHARDS, SalesRanks, ShardPage, SortBy};

use crate::error::StoreError;
use crate::item::{self, s};
use crate::table::Table;

pub const MONTH_SALES_INDEX: &str = "ByMonthSales";
pub const QUARTER_SALES_INDEX: &str = "ByQuarterSales";
pub const TIER_CHANGE_INDEX: &str = "ByTierChange";

/// The index, its key attributes, of a sort.
fn index_of(by: SortBy) -> (&'static str, &'static str, &'static str) {
    match by {
        SortBy::SalesMonth => (MONTH_SALES_INDEX, "rm_key", "rm_rank"),
        SortBy::SalesQuarter => (QUARTER_SALES_INDEX, "rq_key", "rq_rank"),
        SortBy::TierChangedAt => (TIER_CHANGE_INDEX, "rc_key", "rc_rank"),
    }
}

fn sales_partition(period: Span, shard: u32) -> String {
    format!("SALES#{period}#{shard:02}")
}

fn changed_partition(shard: u32) -> String {
    format!("CHANGED#{shard:02}")
}

/// The attributes a metrics update sets to keep `id`'s sales ranks.
pub(crate) fn sales_rank_attributes(
    id: &DistributorId,
    ranks: &SalesRanks,
) -> [(&'static str, AttributeValue); 4] {
    let shard = ranking::rank_shard(id);
    [
        (
            "rm_key",
            s(sales_partition(Span::Month(ranks.month), shard)),
        ),
        ("rm_rank", s(&ranks.month_rank)),
        ("rq_key", s(sales_partition(ranks.quarter, shard))),
        ("rq_rank", s(&ranks.quarter_rank)),
    ]
}

/// The attributes a profile write sets to keep `id`'s tier-change rank.
pub(crate) fn changed_rank_attributes(
    id: &DistributorId,
    at: DateTime<Utc>,
) -> [(&'static str, AttributeValue); 2] {
    [
        ("rc_key", s(changed_partition(ranking::rank_shard(id)))),
        ("rc_rank", s(ranking::changed_rank(at, id))),
    ]
}

/// One page of a ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedPage {
    /// Best first.
    pub ids: Vec<DistributorId>,
    /// The last rank on the page, where the next starts; `None` at the end.
    pub next: Option<String>,
}

impl Table {
    /// The best `limit` of `by`'s ranking (of `period`, for a sales sort)
    /// after `after` (a rank a previous page ended on): the top `limit` of
    /// every shard, one Query each, merged.
    pub async fn ranked_page(
        &self,
        by: SortBy,
        period: Option<Span>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<RankedPage, StoreError> {
        let (index, key_attr, rank_attr) = index_of(by);
        let partitions = (0..RANK_SHARDS).map(|shard| match period {
            Some(p) => sales_partition(p, shard),
            None => changed_partition(shard),
        });
        let (top, more) = self
            .sharded_page(
                Sharded {
                    index: Some(index),
                    key_attr,
                    rank_attr,
                },
                partitions,
                after,
                limit,
                |i| {
                    let (pk, _) = item::key_of(i);
                    pk.strip_prefix("DIST#")
                        .and_then(|raw| DistributorId::parse(raw).ok())
                        .ok_or_else(|| {
                            StoreError::corrupt(&item::key_of(i), "not a distributor's item")
                        })
                },
            )
            .await?;
        Ok(RankedPage {
            next: more
                .then(|| top.last().map(|(rank, _)| rank.clone()))
                .flatten(),
            ids: top.into_iter().map(|(_, id)| id).collect(),
        })
    }

    /// The greatest `limit` ranks of an index spread over `partitions`
    /// after `after` (a rank a previous page ended on), each with what
    /// `parse` reads of its item: the top `limit` of every partition, one
    /// Query each in parallel, merged; and whether any is left after them.
    pub(crate) async fn sharded_page<T>(
        &self,
        sharded: Sharded,
        partitions: impl Iterator<Item = String>,
        after: Option<&str>,
        limit: usize,
        parse: impl Fn(&crate::item::Item) -> Result<T, StoreError> + Copy,
    ) -> Result<(Vec<(String, T)>, bool), StoreError> {
        let Sharded {
            index,
            key_attr,
            rank_attr,
        } = sharded;
        let queries = partitions.map(|partition| {
            let query = self
                .client
                .query()
                .table_name(&self.name)
                .set_index_name(index.map(str::to_owned))
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":k", s(partition))
                .scan_index_forward(false)
                .limit(limit as i32);
            let query = match after {
                None => query.key_condition_expression("#k = :k"),
                Some(rank) => query
                    .key_condition_expression("#k = :k AND #r < :r")
                    .expression_attribute_names("#r", rank_attr)
                    .expression_attribute_values(":r", s(rank)),
            };
            async move {
                let out = query
                    .send()
                    .await
                    .map_err(|e| StoreError::aws("Query", e))?;
                let more = out.last_evaluated_key.is_some();
                let entries = out
                    .items
                    .unwrap_or_default()
                    .iter()
                    .map(|i| Ok(Ranked(item::get_s(i, rank_attr)?.to_owned(), parse(i)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok::<_, StoreError>(ShardPage { entries, more })
            }
        });
        let pages = futures::future::try_join_all(queries).await?;
        let (top, more) = ranking::merge_desc(pages, limit);
        Ok((top.into_iter().map(|Ranked(r, t)| (r, t)).collect(), more))
    }
}

/// An index spread over partitions, and its key attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sharded {
    /// `None`: the table itself.
    pub index: Option<&'static str>,
    pub key_attr: &'static str,
    pub rank_attr: &'static str,
}

/// An entry of a sharded index, ordered by its rank alone.
struct Ranked<T>(String, T);

impl<T> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T> Eq for Ranked<T> {}

impl<T> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_name_their_period_and_shard() {
        let q4 = Span::parse("2026-Q4").unwrap();
        assert_eq!(sales_partition(q4, 3), "SALES#2026-Q4#03");
        assert_eq!(
            sales_partition(Span::parse("2026-11").unwrap(), 31),
            "SALES#2026-11#31"
        );
        assert_eq!(changed_partition(0), "CHANGED#00");
    }
}
