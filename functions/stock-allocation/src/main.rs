// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use stock_allocation::StockAllocation;
use tier_runtime::{AwsClients, Env, logging};

// One thread: Lambda sends a process one invocation at a time, and what an
// invocation does concurrently (its SDK calls) waits on the network, so
// worker threads would only add their creation to every cold start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let aws = AwsClients::from_environment().await?;
    let app = StockAllocation::from_env(&Env::from_process(), &aws)?;
    let (app, aws) = (&app, &aws);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = app.handle_batch(event.payload).await;
        aws.emit_dynamo_usage("stock-allocation");
        Ok::<_, Error>(response)
    }))
    .await
}
