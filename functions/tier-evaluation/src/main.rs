// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tier_evaluation::TierEvaluation;
use tier_runtime::{AwsClients, Env, logging};

/// One binary, two triggers: SQS batches (order events, and the review's
/// partition and page messages), and the schedules: `{"review": "scheduled"}`
/// on the 1st starts the month's review and fans it out through the queue;
/// `{"review": "daily"}` does the same for the day where the rule set reads
/// rolling windows.
#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let app =
        TierEvaluation::from_env(&Env::from_process(), &AwsClients::from_environment().await)?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            Ok::<Value, Error>(serde_json::to_value(app.handle_batch(batch).await)?)
        } else if let Some(review) = event.payload.get("review") {
            let now = chrono::Utc::now();
            match review.as_str() {
                // Rule sets with rolling windows: every day but the 1st.
                Some("daily") => Ok(serde_json::to_value(app.start_daily_review(now).await?)?),
                _ => Ok(serde_json::to_value(app.start_review(now).await?)?),
            }
        } else {
            Err(format!(
                "unrecognised event: expected SQS records or {{\"review\": ...}}, got {}",
                event.payload
            )
            .into())
        }
    }))
    .await
}
