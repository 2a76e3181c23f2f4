//! `?sort=`: the list in rank order, most first, from the ranking indexes
//! (`ByMonthSales`, `ByQuarterSales`, `ByTierChange`; see
//! `tier_store::ranking`).
//!
//! A page reads the top of each of the ranking's 32 shards (one Query each,
//! keys only) and merges them, then the rows as any page does. The first
//! page fixes the period a sales sort ranks (this month, or this quarter,
//! in the brand's calendar); its cursors keep it, so a walk that crosses a
//! month end stays one ranking. Once the ranking is done the walk goes on
//! through its tail, the distributors the ranking does not hold: for a
//! sales sort every tier partition, skipping the rows the ranking listed
//! (so a tail page may hold fewer rows than asked for, even none, with a
//! cursor to the next); for the tier-change sort the distributors without
//! a tier, since every tier is joined by a change.

use chrono::Utc;
use tier_domain::analytics::Span;
use tier_domain::ranking::{self, SortBy};
use tier_runtime::http::ApiError;

use super::{Cursor, Page, invalid_cursor};
use crate::AdminApi;

/// Ranks are a padded amount or an instant, `#`, then a distributor id.
const MAX_RANK_LEN: usize = 200;

/// A sorted walk's cursor names its sort, a period of the sort's kind,
/// and either a rank or a place in the tail.
pub(super) fn check_cursor(c: &Cursor, by: SortBy) -> Result<(), ApiError> {
    if c.s.as_deref() != Some(by.name()) {
        return Err(invalid_cursor());
    }
    let period =
        c.p.as_deref()
            .map(|p| Span::parse(p).map_err(|_| invalid_cursor()))
            .transpose()?;
    let kind_ok = matches!(
        (by, period),
        (SortBy::SalesMonth, Some(Span::Month(_)))
            | (SortBy::SalesQuarter, Some(Span::Quarter { .. }))
            | (SortBy::TierChangedAt, None)
    );
    if !kind_ok {
        return Err(invalid_cursor());
    }
    match &c.r {
        Some(rank) => {
            if rank.is_empty() || rank.len() > MAX_RANK_LEN || !c.t.is_empty() || c.k.is_some() {
                return Err(invalid_cursor());
            }
        }
        None => {
            if by == SortBy::TierChangedAt && c.t != "-" {
                return Err(invalid_cursor());
            }
            c.check_tier_key()?;
        }
    }
    Ok(())
}

impl AdminApi {
    /// A page of the `by` ranking from `cursor`, then of its tail.
    pub(super) async fn sorted_page(
        &self,
        by: SortBy,
        cursor: Option<Cursor>,
        limit: usize,
        rules: Option<tier_store::rules::PublishedRuleSet>,
    ) -> Result<Page, ApiError> {
        let period = match cursor.as_ref() {
            Some(c) => {
                c.p.as_deref()
                    .map(|p| Span::parse(p).map_err(|_| invalid_cursor()))
                    .transpose()?
            }
            None => by.period(self.calendar.month_of(Utc::now())),
        };
        let sorted = |c: Cursor| Cursor {
            s: Some(by.name().to_owned()),
            p: period.map(|p| p.to_string()),
            ..c
        };
        // The ranking's page, unless the walk is in its tail already; then
        // the tail, if the ranking ended with room left on the page.
        let (mut ids, mut next, tail_from) = match cursor {
            Some(c) if c.r.is_none() => (Vec::new(), None, Some(Some(c))),
            from => {
                let after = from.and_then(|c| c.r);
                let page = self
                    .table
                    .ranked_page(by, period, after.as_deref(), limit)
                    .await?;
                match page.next {
                    Some(rank) => {
                        let next = Cursor {
                            r: Some(rank),
                            ..Cursor::at_partition(String::new())
                        };
                        (page.ids, Some(next), None)
                    }
                    // The ranking ended with this page, full: the tail is
                    // the next.
                    None if page.ids.len() >= limit => {
                        let first = match by {
                            SortBy::TierChangedAt => "-".to_owned(),
                            _ => self.all_partitions(rules.as_ref()).await?.remove(0),
                        };
                        (page.ids, Some(Cursor::at_partition(first)), None)
                    }
                    None => (page.ids, None, Some(None)),
                }
            }
        };
        let ranked: std::collections::HashSet<_> = ids.iter().cloned().collect();
        if let Some(from) = tail_from {
            // The tail: every partition for a sales sort, the tierless for
            // the tier-change sort.
            let partitions = match by {
                SortBy::TierChangedAt => vec!["-".to_owned()],
                SortBy::SalesMonth | SortBy::SalesQuarter => {
                    self.all_partitions(rules.as_ref()).await?
                }
            };
            let (tail, after) = self
                .walk_tiers(
                    &partitions,
                    from.map(|c| Cursor {
                        s: None,
                        p: None,
                        ..c
                    }),
                    limit - ids.len(),
                )
                .await?;
            // On this page, by id: a batch read takes each key once.
            ids.extend(tail.into_iter().filter(|id| !ranked.contains(id)));
            next = after;
        }
        let mut out = self.rows(ids, next.map(sorted), rules).await?;
        // The tail skips those the ranking listed on earlier pages, by the
        // metrics that put them in the ranking.
        if let Some(period) = period {
            out.rows.retain(|(d, m)| {
                ranked.contains(&d.id) || !ranking::ranked_in(m, &d.id, by, period)
            });
        }
        out.period = period;
        Ok(out)
    }
}
