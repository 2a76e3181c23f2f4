//! What one invocation of the function is. One binary serves two triggers:
//! SQS batches (order events, and the review's partition and page messages)
//! and the EventBridge schedules, whose payload the template sets:
//! `{"review": "scheduled"}` on the 1st starts the month's review and fans it
//! out through the queue; `{"review": "daily"}` does the same for the day
//! where the rule set reads rolling windows; `{"alerts": "daily"}` runs the
//! alerts job.

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::TierEvaluation;

/// An invocation's payload, parsed.
#[derive(Debug)]
pub enum Invocation {
    Batch(SqsEvent),
    Review(Schedule),
    /// `{"alerts": "daily"}`: publish what is new to the brand's topic.
    Alerts,
}

/// Which scheduled review a schedule's payload asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `{"review": "scheduled"}`: the month-end review, on the 1st.
    Monthly,
    /// `{"review": "daily"}`: the day's review of rolling windows.
    Daily,
}

/// A payload that is neither an SQS batch nor a schedule's. Nothing retries
/// it into something else, so it fails the invocation with what was seen.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("SQS batch does not parse: {0}")]
    Batch(#[source] serde_json::Error),
    #[error("unknown review {0}: expected \"scheduled\" or \"daily\"")]
    UnknownReview(Value),
    #[error("unknown alerts job {0}: expected \"daily\"")]
    UnknownAlerts(Value),
    #[error(
        "unrecognised event: expected SQS records, {{\"review\": ...}} or {{\"alerts\": \"daily\"}}, got {0}"
    )]
    Unrecognised(Value),
}

impl Invocation {
    pub fn parse(payload: Value) -> Result<Self, InvocationError> {
        if payload.get("Records").is_some() {
            return serde_json::from_value(payload)
                .map(Invocation::Batch)
                .map_err(InvocationError::Batch);
        }
        match payload.get("alerts") {
            Some(Value::String(s)) if s == "daily" => return Ok(Invocation::Alerts),
            Some(other) => return Err(InvocationError::UnknownAlerts(other.clone())),
            None => {}
        }
        match payload.get("review") {
            Some(Value::String(s)) if s == "scheduled" => Ok(Invocation::Review(Schedule::Monthly)),
            Some(Value::String(s)) if s == "daily" => Ok(Invocation::Review(Schedule::Daily)),
            Some(other) => Err(InvocationError::UnknownReview(other.clone())),
            None => Err(InvocationError::Unrecognised(payload)),
        }
    }
}

impl TierEvaluation {
    /// Runs one invocation; `now` is the schedule's clock for a review.
    /// Returns what the runtime answers: the batch's item failures, or the
    /// review's record (`null` for a daily review the rule set does not need).
    pub async fn handle(
        &self,
        payload: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, lambda_runtime::Error> {
        Ok(match Invocation::parse(payload)? {
            Invocation::Batch(batch) => serde_json::to_value(self.handle_batch(batch).await)?,
            Invocation::Review(Schedule::Monthly) => {
                serde_json::to_value(self.start_review(now).await?)?
            }
            Invocation::Review(Schedule::Daily) => {
                serde_json::to_value(self.start_daily_review(now).await?)?
            }
            Invocation::Alerts => serde_json::to_value(self.run_alerts(now).await?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_batch_is_its_records() {
        let parsed = Invocation::parse(json!({"Records": []})).unwrap();
        assert!(matches!(parsed, Invocation::Batch(b) if b.records.is_empty()));
    }

    #[test]
    fn the_template_schedules_parse() {
        for (input, want) in [("scheduled", Schedule::Monthly), ("daily", Schedule::Daily)] {
            let parsed = Invocation::parse(json!({ "review": input })).unwrap();
            assert!(
                matches!(parsed, Invocation::Review(s) if s == want),
                "{input}"
            );
        }
    }

    #[test]
    fn an_unknown_review_is_refused_not_run_as_the_monthly_one() {
        let err = Invocation::parse(json!({"review": "weekly"})).unwrap_err();
        assert!(matches!(err, InvocationError::UnknownReview(_)), "{err}");
        let err = Invocation::parse(json!({"review": 1})).unwrap_err();
        assert!(matches!(err, InvocationError::UnknownReview(_)), "{err}");
    }

    #[test]
    fn anything_else_is_unrecognised() {
        let err = Invocation::parse(json!({"detail-type": "Scheduled Event"})).unwrap_err();
        assert!(matches!(err, InvocationError::Unrecognised(_)), "{err}");
        let err = Invocation::parse(json!({"Records": "nope"})).unwrap_err();
        assert!(matches!(err, InvocationError::Batch(_)), "{err}");
    }
}
