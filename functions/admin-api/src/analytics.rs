//! `GET /v1/admin/analytics/{regions|tiers|price-disorder}`: what the brand
//! sees of its network, read from aggregates the order and tier events keep
//! (`tier_store::analytics`), never from a scan of orders or distributors.
//! Each call's cost is fixed by the calendar (months and shards, days),
//! not by the brand's size: see docs/cost.md#analytics.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tier_domain::analytics::{self, MoveKind, Span, Tally};
use tier_domain::calendar::{Day, Month};
use tier_domain::ids::{DistributorId, TierId};
use tier_domain::money::Money;
use tier_runtime::http::{self, ApiError};
use tier_store::analytics::{MonthStats, sum_months};

use crate::AdminApi;

/// The longest range of days a price disorder call reads: a quarter.
pub(crate) const MAX_DISORDER_DAYS: u32 = 92;
/// How far back the tier analytics go: members at a period's end are the
/// members now less the moves since, one read per month and shard.
pub(crate) const MAX_TIER_MONTHS_BACK: usize = 24;
const DEFAULT_EVIDENCE: usize = 100;
const MAX_EVIDENCE: usize = 1000;

/// The query's parameters: only `known` ones, each at most once.
struct Params<'a> {
    query: Option<&'a str>,
}

impl<'a> Params<'a> {
    fn check(query: Option<&'a str>, known: &[&str]) -> Result<Self, ApiError> {
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            if !known.contains(&name) {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!(
                        "unknown query parameter {:?}: {} are",
                        name.chars().take(40).collect::<String>(),
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(Self { query })
    }

    fn one(&self, name: &str) -> Result<Option<String>, ApiError> {
        match http::query_values(self.query, name).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v.clone())),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is given more than once"),
            )),
        }
    }
}

fn tally(t: Tally) -> Value {
    json!({"sales": t.sales, "orders": t.orders})
}

fn pct(p: Option<Decimal>) -> Value {
    p.map_or(Value::Null, |p| Value::String(p.to_string()))
}

impl AdminApi {
    fn this_month(&self) -> Month {
        self.calendar.month_of(Utc::now())
    }

    /// `?period=` as a month or quarter, the current month by default; a
    /// period that has not begun is refused.
    fn span(&self, p: &Params<'_>) -> Result<Span, ApiError> {
        let span = match p.one("period")? {
            None => Span::Month(self.this_month()),
            Some(raw) => Span::parse(&raw)
                .map_err(|e| ApiError::bad_request("invalid_period", e.to_string()))?,
        };
        if span.first_month() > self.this_month() {
            return Err(ApiError::bad_request(
                "future_period",
                format!("period {span} has not begun"),
            ));
        }
        Ok(span)
    }

    pub(crate) async fn region_analytics(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let p = Params::check(query, &["period", "threshold_pct", "min_base"])?;
        let span = self.span(&p)?;
        let mut rule = self.decline;
        if let Some(raw) = p.one("threshold_pct")? {
            rule.threshold_pct = tier_domain::money::Percent::parse(&raw)
                .map_err(|e| ApiError::bad_request("invalid_threshold_pct", e.to_string()))?
                .value();
        }
        if let Some(raw) = p.one("min_base")? {
            rule.min_base = Money::parse_non_negative(&raw)
                .map_err(|e| ApiError::bad_request("invalid_min_base", e.to_string()))?;
        }
        let previous = span.previous();
        let year_ago = span.year_ago();
        let spans: Vec<Span> = [Some(span), previous, year_ago]
            .into_iter()
            .flatten()
            .collect();
        let months: Vec<Month> = spans.iter().flat_map(|s| s.months()).collect();
        let stats = self.table.month_stats(&months).await?;
        let of = |s: Option<Span>| -> MonthStats {
            s.map(|s| sum_months(s.months().iter().map(|m| &stats[m])))
                .unwrap_or_default()
        };
        let (now, before, ago) = (of(Some(span)), of(previous), of(year_ago));
        let complete = span.last_month() < self.this_month();
        let rows = analytics::region_rows(
            &now.by_region(),
            &before.by_region(),
            &ago.by_region(),
            &rule,
            complete,
        );
        let total = |m: &MonthStats| {
            let mut t = Tally::default();
            for v in m.sales.values() {
                t.add(*v);
            }
            t
        };
        let declining: Vec<String> = rows
            .iter()
            .filter(|r| r.declining())
            .map(|r| r.region.as_ref().map_or("-".into(), |r| r.to_string()))
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "period": span,
                "previous_period": previous,
                "year_ago_period": year_ago,
                "complete": complete,
                "rule": {"threshold_pct": rule.threshold_pct.to_string(), "min_base": rule.min_base},
                "total": {
                    "current": tally(total(&now)),
                    "previous": tally(total(&before)),
                    "year_ago": tally(total(&ago)),
                },
                "declining": declining,
                "regions": rows.iter().map(|r| json!({
                    "region": r.region,
                    "current": tally(r.current),
                    "previous": tally(r.previous),
                    "year_ago": tally(r.year_ago),
                    "change_vs_previous_pct": pct(r.change_vs_previous_pct),
                    "change_vs_year_ago_pct": pct(r.change_vs_year_ago_pct),
                    "declining": r.declining(),
                    "declining_vs_previous": r.declining_vs_previous,
                    "declining_vs_year_ago": r.declining_vs_year_ago,
                })).collect::<Vec<_>>(),
            }),
        ))
    }

    pub(crate) async fn tier_analytics(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let p = Params::check(query, &["period"])?;
        let span = self.span(&p)?;
        let this_month = self.this_month();
        // Months after the period, whose moves are taken back from the
        // members now to give the members at the period's end.
        let later: Vec<Month> = this_month
            .since(span.last_month())
            .into_iter()
            .skip(1)
            .collect();
        if later.len() > MAX_TIER_MONTHS_BACK {
            return Err(ApiError::bad_request(
                "period_too_old",
                format!("tier analytics go back {MAX_TIER_MONTHS_BACK} months; {span} is further"),
            ));
        }
        let mut months = span.months();
        months.extend(later.iter().copied());
        let (stats, mut members, rules) = tokio::try_join!(
            self.table.month_stats(&months),
            self.table.tier_members_count(),
            self.table.current_rule_set(),
        )?;
        for m in &later {
            for ((tier, kind), by) in &stats[m].moves {
                let net = match kind {
                    MoveKind::Joined | MoveKind::UpIn | MoveKind::DownIn => *by,
                    MoveKind::UpOut | MoveKind::DownOut => -by,
                };
                *members.entry(tier.clone()).or_default() -= net;
            }
        }
        members.retain(|_, m| *m != 0);
        let period = sum_months(span.months().iter().map(|m| &stats[m]));
        let order: Vec<TierId> = rules
            .as_ref()
            .map(|r| r.rules.tiers().iter().map(|t| t.id.clone()).collect())
            .unwrap_or_default();
        let rows = analytics::tier_rows(&order, &members, &period.moves, &period.by_tier());
        let upgrades: i64 = rows.iter().map(|r| r.moved_up_in).sum();
        let downgrades: i64 = rows.iter().map(|r| r.moved_down_in).sum();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "period": span,
                "complete": span.last_month() < this_month,
                "rule_set_version": rules.as_ref().map(|r| r.version),
                "upgrades": upgrades,
                "downgrades": downgrades,
                "tiers": rows,
            }),
        ))
    }

    pub(crate) async fn price_disorder(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let p = Params::check(query, &["from", "to", "distributor", "limit"])?;
        let day = |name: &str| -> Result<Option<Day>, ApiError> {
            p.one(name)?
                .map(|raw| {
                    Day::parse(&raw)
                        .map_err(|e| ApiError::bad_request("invalid_range", format!("{name}: {e}")))
                })
                .transpose()
        };
        let today = self.calendar.day_of(Utc::now());
        let to = day("to")?.unwrap_or(today);
        let from = day("from")?.unwrap_or_else(|| to.minus_days(29));
        if from > to {
            return Err(ApiError::bad_request(
                "invalid_range",
                format!("from {from} is after to {to}"),
            ));
        }
        if from.plus_days(MAX_DISORDER_DAYS - 1) < to {
            return Err(ApiError::bad_request(
                "range_too_long",
                format!("a range is at most {MAX_DISORDER_DAYS} days"),
            ));
        }
        let distributor = p
            .one("distributor")?
            .map(|raw| {
                DistributorId::parse(&raw)
                    .map_err(|e| ApiError::bad_request("invalid_distributor", e.to_string()))
            })
            .transpose()?;
        let limit = match p.one("limit")? {
            None => DEFAULT_EVIDENCE,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_EVIDENCE).contains(l))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_limit", format!("limit is 1 to {MAX_EVIDENCE}"))
                })?,
        };
        let records = self
            .table
            .disorder_records(from, to.min(today), distributor.as_ref())
            .await?;
        let ranked = analytics::rank(&records);
        let lines: usize = records.iter().map(|r| r.lines.len()).sum();
        // The evidence, deepest gaps first, then newest.
        let mut evidence: Vec<(&analytics::DisorderRecord, &analytics::Violation)> = records
            .iter()
            .flat_map(|r| r.lines.iter().map(move |v| (r, v)))
            .collect();
        evidence.sort_by(|(ra, a), (rb, b)| b.gap_pct.cmp(&a.gap_pct).then(rb.at.cmp(&ra.at)));
        let evidence: Vec<Value> = evidence
            .into_iter()
            .take(limit)
            .map(|(r, v)| {
                json!({
                    "distributor": r.distributor,
                    "order": r.order.to_string(),
                    "at": r.at,
                    "line_id": v.line_id,
                    "sku": v.sku,
                    "quantity": v.quantity,
                    "resale_unit_price": v.resale_unit_price,
                    "floor_price": v.floor,
                    "gap_pct": v.gap_pct.to_string(),
                    "gap_amount": v.gap_amount,
                })
            })
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "from": from,
                "to": to,
                "distributor": distributor,
                "violations": lines,
                "orders": records.len(),
                "distributors": ranked.iter().map(|r| json!({
                    "distributor": r.distributor,
                    "violations": r.violations,
                    "orders": r.orders,
                    "units": r.units,
                    "gap_amount": r.gap_amount,
                    "max_gap_pct": r.max_gap_pct.to_string(),
                    "last_at": r.last_at,
                })).collect::<Vec<_>>(),
                "evidence": evidence,
                "evidence_truncated": lines > evidence.len(),
            }),
        ))
    }
}
