//! AWS clients, built once per process (during Lambda init, so the first
//! request does not pay for the TLS handshake).

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

use crate::env::{ConfigError, Env};
use crate::tls::Roots;

/// The two clients every function may need. Cloning is cheap: the SDK
/// clients are `Arc`s inside.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Every DynamoDB operation of these clients, counted (in Lambda, for
    /// the `DynamoDbReadUnits` and `DynamoDbWriteUnits` metrics).
    pub dynamo_usage: Option<crate::cost::DynamoCounter>,
    /// What the clients were built from: a function that needs another
    /// service's client (Secrets Manager) builds it from this, so that the
    /// others do not link or construct it.
    pub sdk: aws_config::SdkConfig,
    /// The TLS of the process's other HTTPS clients (a platform's API), the
    /// same roots as these clients'; `None` where the environment leaves
    /// TLS to each client's own loading ([`Roots::System`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl AwsClients {
    /// Inside Lambda: region and credentials come from the execution
    /// environment, the TLS roots from [`Roots::from_env`]: compiled in
    /// unless the environment names others. Fails on a roots file that
    /// cannot be read, rather than at every call.
    pub async fn from_environment() -> Result<Self, ConfigError> {
        let tls = Roots::from_env(&Env::from_process())?.client_config()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(tls) = &tls {
            loader = loader.http_client(crate::aws_http::http_client(tls.clone()));
        }
        let config = loader.load().await;
        let usage = crate::cost::DynamoCounter::default();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(usage.clone())
            .build();
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            sqs: aws_sdk_sqs::Client::new(&config),
            dynamo_usage: Some(usage),
            sdk: config,
            tls,
        })
    }

    /// Emits the DynamoDB units these clients used since the last call, as
    /// `function`'s metrics, and starts counting afresh. Called after each
    /// invocation: a Lambda process runs one at a time.
    pub fn emit_dynamo_usage(&self, function: &str) {
        let Some(counter) = &self.dynamo_usage else {
            return;
        };
        let usage = counter.snapshot();
        counter.reset();
        use crate::metrics::{Unit, emit};
        emit(
            &[("Function", function)],
            &[
                ("DynamoDbReadUnits", usage.read_units, Unit::Count),
                ("DynamoDbWriteUnits", usage.write_units, Unit::Count),
            ],
        );
    }

    /// Against a local emulator. Static credentials on purpose: without them
    /// the SDK probes the instance metadata address and stalls.
    pub fn local(endpoint: &str) -> Self {
        Self::local_counted(endpoint, None)
    }

    /// The same clients, DynamoDB's requests also counted by `counter`
    /// (beside any counter they had).
    pub fn with_dynamo_counter(mut self, counter: crate::cost::DynamoCounter) -> Self {
        let config = self
            .dynamodb
            .config()
            .to_builder()
            .interceptor(counter)
            .build();
        self.dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
        self
    }

    /// The same clients, with SQS sends counted by `counter`.
    pub fn with_sqs_counter(mut self, counter: crate::cost::SqsCounter) -> Self {
        let config = self.sqs.config().to_builder().interceptor(counter).build();
        self.sqs = aws_sdk_sqs::Client::from_conf(config);
        self
    }

    /// As [`AwsClients::local`], counting every DynamoDB operation.
    pub fn local_counted(endpoint: &str, counter: Option<crate::cost::DynamoCounter>) -> Self {
        let mut config = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::from_keys("test", "test", None));
        if let Some(c) = &counter {
            config = config.interceptor(c.clone());
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
            dynamo_usage: counter,
            sdk: aws_config::SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(
                        Credentials::from_keys("test", "test", None),
                    ),
                )
                .build(),
            tls: Some(crate::tls::compiled_roots()),
        }
    }
}
