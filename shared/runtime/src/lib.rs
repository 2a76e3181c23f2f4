//! What every function shares at its edge.
//!
//! # Layout
//! - [`api_key`]: who presents which API key, checked against its record.
//! - [`aws`]: the AWS clients, built once.
//! - [`aws_http`]: their HTTP client in Lambda, with compiled-in TLS roots.
//! - [`cost`]: DynamoDB requests and capacity units, counted.
//! - [`env`]: configuration read from a variable lookup (the process
//!   environment in Lambda, a map in the local stack).
//! - [`http`]: the error shape of every HTTP response, body limits, JSON.
//! - [`sqs`]: partial batch failures and dead-lettering with a reason.
//! - [`logging`]: tracing set-up.
//! - [`metrics`]: operational metrics in CloudWatch embedded metric format.
//! - [`tls`]: the crypto and the TLS roots of the HTTPS clients.

pub mod api_key;
pub mod aws;
pub mod aws_http;
pub mod cost;
pub mod env;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod sqs;
pub mod tls;

pub use aws::AwsClients;
pub use env::{ConfigError, Env};
