// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, service_fn};
use price_lookup::PriceLookup;
use tier_runtime::{AwsClients, Env, logging};

// One thread: Lambda sends a process one invocation at a time, and what an
// invocation does concurrently (its SDK calls) waits on the network, so
// worker threads would only add their creation to every cold start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let aws = AwsClients::from_environment().await?;
    let app = PriceLookup::from_env(&Env::from_process(), &aws)?;
    let (app, aws) = (&app, &aws);
    lambda_http::run(service_fn(move |req: Request| async move {
        let response = app.handle(req).await;
        aws.emit_dynamo_usage("price-lookup");
        Ok::<_, Error>(response)
    }))
    .await
}
