//! Forcing a race. The emulator's transactions are not isolated, so the
//! local stack runs one invocation at a time and no race happens by
//! chance. This DynamoDB interceptor makes the interleaving a race needs
//! happen on purpose: just before the next request of a chosen operation
//! is sent (after the caller has read what it decides from), it runs a
//! competing action to its end. The caller's conditional write must then
//! fail, and its retry come out right.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;

type Competitor = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The operations a competitor can be run before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    PutItem,
    UpdateItem,
    TransactWriteItems,
}

#[derive(Clone, Default)]
pub struct Interleave {
    armed: Arc<Mutex<Option<(Write, Competitor)>>>,
    fired: Arc<Mutex<u32>>,
    /// Writes sent, by kind: a lost race shows as a second try.
    sent: Arc<Mutex<[u32; 3]>>,
}

impl std::fmt::Debug for Interleave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interleave")
            .field("fired", &self.fired())
            .finish()
    }
}

impl Interleave {
    /// Before the next `write` these clients send, runs `competitor` to its
    /// end, on a runtime of its own (it should build its own clients).
    pub fn before_next<F, Fut>(&self, write: Write, competitor: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let boxed: Competitor = Box::new(move || Box::pin(competitor()));
        *self.armed.lock().expect("interleave lock") = Some((write, boxed));
    }

    /// How many competitors have run.
    pub fn fired(&self) -> u32 {
        *self.fired.lock().expect("interleave lock")
    }

    /// How many `write` requests these clients have sent (tries included).
    pub fn sent(&self, write: Write) -> u32 {
        self.sent.lock().expect("interleave lock")[write as usize]
    }
}

impl Intercept for Interleave {
    fn name(&self) -> &'static str {
        "Interleave"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let write = if input.downcast_ref::<TransactWriteItemsInput>().is_some() {
            Write::TransactWriteItems
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            Write::UpdateItem
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            Write::PutItem
        } else {
            return Ok(());
        };
        self.sent.lock().expect("interleave lock")[write as usize] += 1;
        let competitor = {
            let mut armed = self.armed.lock().expect("interleave lock");
            match armed.take() {
                Some((w, c)) if w == write => c,
                other => {
                    *armed = other;
                    return Ok(());
                }
            }
        };
        // The caller waits, as a slower writer would, while the competitor
        // reads and writes to its end.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the competitor")
                .block_on(competitor())
        })
        .join()
        .map_err(|_| "the competitor panicked")?;
        *self.fired.lock().expect("interleave lock") += 1;
        Ok(())
    }
}

/// DynamoDB clients for `endpoint` with `interleave` in their path.
pub fn clients(endpoint: &str, interleave: &Interleave) -> aws_sdk_dynamodb::Client {
    use aws_config::{BehaviorVersion, Region};
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::from_keys(
            "test", "test", None,
        ))
        .interceptor(interleave.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
