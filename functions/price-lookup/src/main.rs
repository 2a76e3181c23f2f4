// The SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, service_fn};
use price_lookup::PriceLookup;
use tier_runtime::{AwsClients, Env, logging};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let app = PriceLookup::from_env(&Env::from_process(), &AwsClients::from_environment().await)?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
