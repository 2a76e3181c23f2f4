//! Reviews on demand: `POST /v1/admin/reviews` starts (or resumes) the
//! current period's review, as the schedules do, and
//! `GET /v1/admin/reviews/{period}` shows how far a run has got.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::json;
use tier_domain::calendar::Period;
use tier_runtime::http::{self, ApiError};
use tier_store::reviews::ReviewRecord;

use crate::AdminApi;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReviewKind {
    /// The month's review, as on the 1st.
    Monthly,
    /// The day's review of rolling windows.
    Daily,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    kind: ReviewKind,
    /// The period meant, to guard against a request that arrives after the
    /// period turned: the current one, or one already run (resumed).
    #[serde(default)]
    period: Option<Period>,
}

/// A run as operators see it.
fn view(record: &ReviewRecord) -> serde_json::Value {
    json!({
        "period": record.period,
        "at": record.at,
        "state": record.state(),
        "partitions": record.partitions,
        "partitions_listed": record.partitions_listed,
        "pages_listed": record.pages_listed,
        "distributors_listed": record.distributors_listed,
        "pages_done": record.pages_done,
        "evaluated": record.evaluated,
        "changed": record.changed,
    })
}

impl AdminApi {
    pub(crate) async fn start_review(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let req: ReviewRequest = http::parse_json(body)?;
        let now = Utc::now();
        let current = match req.kind {
            ReviewKind::Monthly => Period::Month(self.calendar.month_of(now)),
            ReviewKind::Daily => Period::Day(self.calendar.day_of(now)),
        };
        let period = req.period.unwrap_or(current);
        if matches!(
            (req.kind, period),
            (ReviewKind::Monthly, Period::Day(_)) | (ReviewKind::Daily, Period::Month(_))
        ) {
            return Err(ApiError::unprocessable(
                "invalid_period",
                format!(
                    "a monthly review's period is a month (YYYY-MM), a daily one's a day (YYYY-MM-DD); got {period}"
                ),
            ));
        }
        if period > current {
            return Err(ApiError::unprocessable(
                "future_period",
                format!(
                    "{period} has not begun in the brand's time zone ({}); its review can start once it has",
                    self.calendar.name()
                ),
            ));
        }
        let existing = self.table.review(period).await?;
        if period < current && existing.is_none() {
            // A past period's review would evaluate today's metrics under
            // its name: only one that ran can be resumed, at its instant.
            return Err(ApiError::unprocessable(
                "period_over",
                format!(
                    "{period} is over and was never reviewed; only the current period ({current}) can start"
                ),
            ));
        }
        let Some(rules) = self.table.current_rule_set().await? else {
            return Err(ApiError::conflict(
                "no_rule_set",
                "no rule set is published: a review has nothing to apply",
            ));
        };
        if req.kind == ReviewKind::Daily && existing.is_none() {
            let today = self.calendar.day_of(now);
            if rules.rules.daily_spans().is_empty() {
                return Err(ApiError::unprocessable(
                    "no_daily_review",
                    "the published rule set reads no rolling windows: the monthly review covers it",
                ));
            }
            if today.day_of_month() == 1 {
                return Err(ApiError::unprocessable(
                    "no_daily_review",
                    "on the 1st the month's review runs instead of the day's",
                ));
            }
        }
        let record = self
            .table
            .begin_review(&self.tier_events, period, now, true)
            .await?;
        tracing::info!(period = %record.period, at = %record.at, created = record.created, "review requested");
        Ok(http::json(
            if record.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &json!({"review": view(&record), "created": record.created}),
        ))
    }

    pub(crate) async fn get_review(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let period = Period::parse(raw).map_err(|e| {
            ApiError::bad_request(
                "invalid_period",
                format!("{e}: a period is YYYY-MM or YYYY-MM-DD"),
            )
        })?;
        let record = self.table.review(period).await?.ok_or_else(|| {
            ApiError::not_found("review_not_found", format!("no review of {period} has run"))
        })?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"review": view(&record)}),
        ))
    }
}
