// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tier_evaluation::TierEvaluation;
use tier_runtime::{AwsClients, Env, logging};

// One thread: Lambda sends a process one invocation at a time, and what an
// invocation does concurrently (its SDK calls) waits on the network, so
// worker threads would only add their creation to every cold start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let aws = AwsClients::from_environment().await?;
    let app = TierEvaluation::from_env(&Env::from_process(), &aws)?;
    let (app, aws) = (&app, &aws);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result = app.handle(event.payload, chrono::Utc::now()).await;
        aws.emit_dynamo_usage("tier-evaluation");
        result
    }))
    .await
}
