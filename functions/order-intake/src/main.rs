// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Error, Request, service_fn};
use lambda_runtime::LambdaEvent;
use order_intake::detail::DetailFetcher;
use order_intake::{Mode, OrderIntake};
use tier_runtime::{AwsClients, Env, logging};

// One thread: Lambda sends a process one invocation at a time, and what an
// invocation does concurrently (its SDK calls) waits on the network, so
// worker threads would only add their creation to every cold start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let env = Env::from_process();
    let mode = Mode::from_env(&env)?;
    let aws = AwsClients::from_environment().await?;
    match mode {
        Mode::Webhooks => {
            let app = OrderIntake::from_env(&env, &aws)?;
            let (app, aws) = (&app, &aws);
            lambda_http::run(service_fn(move |req: Request| async move {
                let response = app.handle(req).await;
                aws.emit_dynamo_usage("order-intake");
                Ok::<_, Error>(response)
            }))
            .await
        }
        Mode::DetailFetch => {
            let app = DetailFetcher::from_env(&env, &aws)?;
            let (app, aws) = (&app, &aws);
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
                let response = app.handle_batch(event.payload).await;
                aws.emit_dynamo_usage("order-detail");
                Ok::<_, Error>(response)
            }))
            .await
        }
    }
}
