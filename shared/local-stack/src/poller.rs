//! Lambda's SQS event source mapping, emulated: receive a batch, hand it to
//! the function as an `SqsEvent`, delete what succeeded. What is not deleted
//! becomes visible again after the queue's visibility timeout, and the
//! queue's redrive policy moves it to the dead-letter queue after
//! `maxReceiveCount` receives, as in AWS.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use lambda_http::BoxFuture;
use tier_runtime::AwsClients;
use tokio::task::JoinHandle;

use crate::resources::{REGION, sdk_err};

/// What a Lambda handler returns as its error.
pub type SqsError = Box<dyn std::error::Error + Send + Sync>;

/// A function subscribed to a queue: what
/// `lambda_runtime::run(service_fn(..))` would call in Lambda.
pub type SqsHandler =
    Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, Result<SqsBatchResponse, SqsError>> + Send + Sync>;

/// Wraps an async fn as an [`SqsHandler`].
/// `messages` as one batch, as the poller hands a batch to a function.
pub fn batch_of(messages: &[tier_messages::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, m) in messages.iter().enumerate() {
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("direct-{i}-{}", m.id()));
        record.body = Some(m.to_json());
        event.records.push(record);
    }
    event
}

pub fn sqs_handler<F, Fut>(f: F) -> SqsHandler
where
    F: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, SqsError>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

/// Messages received by pollers and not yet deleted or given up on; shared
/// by all pollers of a stack so [`wait_idle`] can see work in progress.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One event source mapping.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    pub queue_url: String,
    pub queue_arn: String,
    /// 1..=10 (larger values are capped at 10, SQS's per-receive maximum).
    pub batch_size: u32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`. Without it Lambda
    /// ignores the response and deletes the whole batch when the handler
    /// returns Ok.
    pub report_batch_item_failures: bool,
    /// Long-poll wait per ReceiveMessage (seconds, 0..=20).
    pub wait_time_seconds: i32,
}

/// Starts polling `queue_url` for `handler`, with
/// `ReportBatchItemFailures` semantics, until `shutdown` completes. A batch
/// being processed when shutdown comes is finished first.
pub fn spawn_poller(
    clients: AwsClients,
    queue_url: String,
    queue_arn: String,
    batch_size: u32,
    handler: SqsHandler,
    in_flight: InFlight,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    spawn_poller_with(
        clients,
        PollerConfig {
            queue_url,
            queue_arn,
            batch_size,
            report_batch_item_failures: true,
            wait_time_seconds: 1,
        },
        handler,
        in_flight,
        shutdown,
    )
}

pub fn spawn_poller_with(
    clients: AwsClients,
    config: PollerConfig,
    handler: SqsHandler,
    in_flight: InFlight,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let batch_size = config.batch_size.clamp(1, 10) as i32;
        loop {
            let received = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                r = clients
                    .sqs
                    .receive_message()
                    .queue_url(&config.queue_url)
                    .max_number_of_messages(batch_size)
                    .wait_time_seconds(config.wait_time_seconds)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send() => r,
            };
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(queue = %config.queue_url, error = %sdk_err(e), "poller: ReceiveMessage failed");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            if messages.is_empty() {
                continue;
            }
            let count = messages.len();
            in_flight.0.fetch_add(count, Ordering::SeqCst);
            process_batch(&clients, &config, &handler, messages).await;
            in_flight.0.fetch_sub(count, Ordering::SeqCst);
        }
    })
}

async fn process_batch(
    clients: &AwsClients,
    config: &PollerConfig,
    handler: &SqsHandler,
    messages: Vec<Message>,
) {
    let receipts: HashMap<String, String> = messages
        .iter()
        .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
        .collect();
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|m| to_record(m, &config.queue_arn))
        .collect();

    // The handler runs in its own task so a panic counts as a failed
    // invocation (as a crashed Lambda does) instead of killing the poller.
    // Its writes are labelled with the queue, for the write sets the load
    // model splits by cause.
    let source = config
        .queue_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let outcome = tokio::spawn(tier_runtime::cost::within(source, (handler)(event))).await;
    let to_delete: Vec<(&String, &String)> = match outcome {
        Err(panic) => {
            tracing::error!(queue = %config.queue_url, error = %panic, "poller: handler panicked; whole batch will be retried");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(queue = %config.queue_url, error = %e, "poller: handler failed; whole batch will be retried");
            return;
        }
        Ok(Ok(_)) if !config.report_batch_item_failures => receipts.iter().collect(),
        Ok(Ok(response)) => {
            let failed: HashSet<&str> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect();
            // Lambda treats an empty or unknown itemIdentifier as a failure
            // of the whole batch.
            if let Some(bad) = failed.iter().find(|id| !receipts.contains_key(**id)) {
                tracing::error!(
                    queue = %config.queue_url,
                    item_identifier = %bad,
                    "poller: batchItemFailures names a message not in the batch; whole batch will be retried"
                );
                return;
            }
            if !failed.is_empty() {
                tracing::info!(queue = %config.queue_url, failed = failed.len(), "poller: partial batch failure");
            }
            receipts
                .iter()
                .filter(|(id, _)| !failed.contains(id.as_str()))
                .collect()
        }
    };
    if to_delete.is_empty() {
        return;
    }
    let entries: Vec<DeleteMessageBatchRequestEntry> = to_delete
        .iter()
        .enumerate()
        .filter_map(|(i, (_, receipt))| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(*receipt)
                .build()
                .ok()
        })
        .collect();
    match clients
        .sqs
        .delete_message_batch()
        .queue_url(&config.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) if !out.failed.is_empty() => {
            tracing::warn!(queue = %config.queue_url, failed = ?out.failed, "poller: some deletes failed");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(queue = %config.queue_url, error = %sdk_err(e), "poller: DeleteMessageBatch failed")
        }
    }
}

fn to_record(m: Message, queue_arn: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.attributes = m
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    record.message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = v.string_value;
            a.binary_value = v.binary_value.map(|b| base64_data(b.into_inner()));
            a.string_list_values = v.string_list_values.unwrap_or_default();
            a.binary_list_values = v
                .binary_list_values
                .unwrap_or_default()
                .into_iter()
                .map(|b| base64_data(b.into_inner()))
                .collect();
            a.data_type = Some(v.data_type);
            (k, a)
        })
        .collect();
    record.message_id = m.message_id;
    record.receipt_handle = m.receipt_handle;
    record.body = m.body;
    record.md5_of_body = m.md5_of_body;
    record.md5_of_message_attributes = m.md5_of_message_attributes;
    record.event_source_arn = Some(queue_arn.to_owned());
    record.event_source = Some("aws:sqs".to_owned());
    record.aws_region = Some(REGION.to_owned());
    record
}

fn base64_data(bytes: Vec<u8>) -> Base64Data {
    let mut data = Base64Data::default();
    *data = bytes;
    data
}

/// A queue's message counts, as SQS reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.not_visible == 0 && self.delayed == 0
    }
}

/// The approximate counts of one queue.
pub async fn queue_depth(clients: &AwsClients, queue_url: &str) -> anyhow::Result<QueueDepth> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(sdk_err)?;
    let attrs = out.attributes.unwrap_or_default();
    let n = |k: QueueAttributeName| -> u64 {
        attrs
            .get(&k)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(QueueDepth {
        visible: n(QueueAttributeName::ApproximateNumberOfMessages),
        not_visible: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// Waits until every queue is empty (no visible, in-flight or delayed
/// messages) and no poller holds a message, seen on two consecutive checks.
/// Include the dead-letter queues only if they are expected to stay empty.
pub async fn wait_idle(
    clients: &AwsClients,
    queue_urls: &[String],
    in_flight: &InFlight,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut quiet_checks = 0;
    loop {
        let mut depths = Vec::with_capacity(queue_urls.len());
        for url in queue_urls {
            depths.push((url, queue_depth(clients, url).await?));
        }
        let busy = in_flight.get();
        if busy == 0 && depths.iter().all(|(_, d)| d.is_empty()) {
            quiet_checks += 1;
            if quiet_checks >= 2 {
                return Ok(());
            }
        } else {
            quiet_checks = 0;
        }
        if Instant::now() >= deadline {
            let detail: Vec<String> = depths
                .iter()
                .filter(|(_, d)| !d.is_empty())
                .map(|(url, d)| {
                    format!(
                        "{url}: {} visible, {} in flight, {} delayed",
                        d.visible, d.not_visible, d.delayed
                    )
                })
                .collect();
            bail!(
                "queues not idle after {timeout:?}: {} message(s) held by pollers; {}",
                busy,
                if detail.is_empty() {
                    "queues empty".to_owned()
                } else {
                    detail.join("; ")
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
