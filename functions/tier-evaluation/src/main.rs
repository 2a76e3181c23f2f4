// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tier_evaluation::TierEvaluation;
use tier_runtime::{AwsClients, Env, logging};

/// One binary, two triggers: SQS batches (order events, and the review's
/// partition and page messages), and the schedule (`{"review": "scheduled"}`),
/// which starts the review of the period and fans it out through the queue.
#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let app = TierEvaluation::from_env(&Env::from_process(), &AwsClients::from_environment().await)?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            Ok::<Value, Error>(serde_json::to_value(app.handle_batch(batch).await)?)
        } else if event.payload.get("review").is_some() {
            Ok(serde_json::to_value(app.start_review(chrono::Utc::now()).await?)?)
        } else {
            Err(format!("unrecognised event: expected SQS records or {{\"review\": ...}}, got {}", event.payload).into())
        }
    }))
    .await
}
