//! The daily alerts job (`{"alerts": "daily"}`): what is new for the brand
//! to act on, published to its SNS topic once per finding and period.
//!
//! - **Regions turned declining** in the last complete month and the last
//!   complete quarter, by the brand's decline rule.
//! - **Price disorder** recorded for the last three days (today and the two
//!   before, so an order that arrived late on a day is still found).
//! - **Downgrades of this month's review**, once it is done: the downgrades
//!   the month's moves counted (the review runs at 00:05 on the 1st).
//!
//! Every read is of aggregates, so the job costs the same at any size of
//! brand: 96 Queries for the two regions checks, 3 for price disorder, one
//! GetItem and 16 Queries for the review, and per finding one conditional
//! write before its publication and one after.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tier_domain::alerts::{self, Finding};
use tier_domain::analytics::{self, Span};
use tier_domain::calendar::Period;
use tier_store::StoreError;
use tier_store::analytics::{MonthStats, sum_months};
use tier_store::reviews::ReviewState;

use crate::TierEvaluation;

/// What one run of the job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertsReport {
    /// Findings this run published, by key.
    pub published: Vec<String>,
    /// Findings already published (or being published by another run).
    pub already_published: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("ALERTS_TOPIC_ARN is not set: there is no topic to publish alerts to")]
    NoTopic,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TierEvaluation {
    /// Publishes the findings of `now` not published before.
    pub async fn run_alerts(&self, now: DateTime<Utc>) -> Result<AlertsReport, AlertsError> {
        let topic = self.alerts.as_ref().ok_or(AlertsError::NoTopic)?;
        let mut report = AlertsReport::default();
        for finding in self.findings(now).await? {
            let key = finding.key();
            if !self.table.claim_alert(&key, now).await? {
                report.already_published += 1;
                continue;
            }
            let id = topic.publish(&finding).await?;
            self.table.alert_sent(&key, &id, now).await?;
            tracing::info!(finding = %key, message_id = %id, "alert published");
            report.published.push(key);
        }
        Ok(report)
    }

    /// Everything the job would publish at `now`, published before or not.
    pub async fn findings(&self, now: DateTime<Utc>) -> Result<Vec<Finding>, StoreError> {
        let this_month = self.calendar.month_of(now);
        let today = self.calendar.day_of(now);
        let mut out = Vec::new();

        // The last complete month and quarter, each against its previous
        // period and the same period a year before.
        let last_quarter = Span::quarter_of(this_month)
            .previous()
            .into_iter()
            .collect::<Vec<_>>();
        let spans: Vec<Span> = [Span::Month(this_month.previous())]
            .into_iter()
            .chain(last_quarter)
            .collect();
        let mut months = Vec::new();
        for span in &spans {
            for s in [Some(*span), span.previous(), span.year_ago()]
                .into_iter()
                .flatten()
            {
                months.extend(s.months());
            }
        }
        months.sort();
        months.dedup();
        let stats = self.table.month_stats(&months).await?;
        let of = |s: Option<Span>| -> MonthStats {
            s.map(|s| sum_months(s.months().iter().map(|m| &stats[m])))
                .unwrap_or_default()
        };
        for span in spans {
            let rows = analytics::region_rows(
                &of(Some(span)).by_region(),
                &of(span.previous()).by_region(),
                &of(span.year_ago()).by_region(),
                &self.decline,
                true,
            );
            out.extend(rows.iter().filter_map(|r| alerts::region_finding(span, r)));
        }

        // Price disorder of the last three days.
        let records = self
            .table
            .disorder_records(today.minus_days(2), today, None)
            .await?;
        out.extend(
            records
                .into_iter()
                .map(|record| Finding::PriceDisorder { record }),
        );

        // This month's review, once done.
        let done = self
            .table
            .review(Period::Month(this_month))
            .await?
            .is_some_and(|r| r.state() == ReviewState::Done);
        if done {
            let moves = self.table.month_stats(&[this_month]).await?;
            out.extend(alerts::downgrades_finding(
                this_month,
                &moves[&this_month].moves,
            ));
        }
        Ok(out)
    }
}
