//! AWS clients, built once per process (during Lambda init, so the first
//! request does not pay for the TLS handshake).

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

/// The two clients every function may need. Cloning is cheap: the SDK
/// clients are `Arc`s inside.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Inside Lambda: region and credentials come from the execution
    /// environment.
    pub async fn from_environment() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }

    /// Against a local emulator. Static credentials on purpose: without them
    /// the SDK probes the instance metadata address and stalls.
    pub fn local(endpoint: &str) -> Self {
        Self::local_counted(endpoint, None)
    }

    /// As [`AwsClients::local`], counting every DynamoDB operation.
    pub fn local_counted(endpoint: &str, counter: Option<crate::cost::DynamoCounter>) -> Self {
        let mut config = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::from_keys("test", "test", None));
        if let Some(c) = counter {
            config = config.interceptor(c);
        }
        let config = config.build();
        let sqs_config = aws_sdk_sqs::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::from_keys("test", "test", None))
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_config),
        }
    }
}
