//! SQS batches with partial failure, as Lambda's event source mapping runs
//! them (`ReportBatchItemFailures`).
//!
//! Each record is parsed and handled on its own; one bad record never fails
//! its neighbours. Failures are of two kinds:
//! - permanent (the message can never succeed: unreadable, refers to
//!   something impossible, or needs an item that does not read back or a
//!   write the service refuses as such): sent to the dead-letter queue at
//!   once, with its reason in message attributes, and deleted from the
//!   source queue;
//! - retryable (throttling, a lost race, the network, a platform's API that
//!   is down): reported as a batch item failure so SQS delivers it again
//!   after the visibility timeout. On the last allowed receive it is
//!   dead-lettered with its reason rather than left for the queue's
//!   redrive, which would drop the reason. A handler that must record the
//!   failure itself before then learns which receive it runs on
//!   ([`BatchProcessor::process_attempts`]).

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tier_messages::Message;
use tier_store::{Queue, StoreError};
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{code}: {reason}")]
    Permanent { code: &'static str, reason: String },
    #[error(transparent)]
    Retryable(#[from] StoreError),
    /// Something outside the store failed in a way that may pass (a
    /// platform's API: the network, a 5xx, its rate limit): retried as a
    /// throttled store is.
    #[error("{0}")]
    RetryLater(String),
}

impl Failure {
    pub fn permanent(code: &'static str, reason: impl Into<String>) -> Self {
        Failure::Permanent {
            code,
            reason: reason.into(),
        }
    }
}

/// The span every log line of handling `messages` carries, so that one
/// order can be followed across the functions: the messages' ids (an
/// order event's is `platform/store/event_id`, as intake logs it) and the
/// orders they are about (`platform/store/order_id`).
fn span_of(messages: &[Message]) -> tracing::Span {
    let ids: Vec<String> = messages.iter().map(Message::id).collect();
    let orders: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            Message::OrderEventV1(e) => Some(e.order.to_string()),
            Message::DetailFetchV1(f) => Some(format!("{}/{}/{}", f.platform, f.store, f.order_id)),
            _ => None,
        })
        .collect();
    tracing::info_span!(
        "messages",
        message_ids = %ids.join(","),
        orders = %orders.join(",")
    )
}

/// A failure as a record is settled with: its text, since one failure may
/// settle a whole group of records.
#[derive(Clone, Debug)]
enum Settle {
    Permanent { code: &'static str, reason: String },
    Retryable(String),
}

impl From<Failure> for Settle {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Permanent { code, reason } => Settle::Permanent { code, reason },
            // An item that cannot be read or written back fails the same way
            // on every receive: parked with its reason at once, for an
            // operator to fix and redrive, not retried into the same wall.
            Failure::Retryable(e) if !e.is_retryable() => Settle::Permanent {
                code: match e {
                    StoreError::Unwritable { .. } => "unwritable_item",
                    StoreError::Aws { .. } => "refused_by_store",
                    _ => "corrupt_item",
                },
                reason: e.to_string(),
            },
            Failure::Retryable(e) => Settle::Retryable(e.to_string()),
            Failure::RetryLater(e) => Settle::Retryable(e),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BatchProcessor {
    dlq: Queue,
    max_receive_count: u32,
    /// The function's name in its metrics.
    function: &'static str,
}

/// Which receive of its message a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive: u32,
    /// Receives allowed before a retryable failure is dead-lettered.
    pub max: u32,
}

impl Attempt {
    /// Whether a retryable failure now dead-letters the message rather
    /// than have it delivered again.
    pub fn is_last(self) -> bool {
        self.receive >= self.max
    }
}

fn receives(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// How one record ended, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Done,
    DeadLettered { code: String },
    Retry,
}

impl BatchProcessor {
    pub fn new(dlq: Queue, max_receive_count: u32, function: &'static str) -> Self {
        Self {
            dlq,
            max_receive_count,
            function,
        }
    }

    fn count_batch(&self, records: usize) {
        crate::metrics::emit(
            &[("Function", self.function)],
            &[("BatchSize", records as f64, crate::metrics::Unit::Count)],
        );
    }

    pub async fn process<F, Fut>(&self, event: SqsEvent, handle: F) -> SqsBatchResponse
    where
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        self.process_attempts(event, |message, _| handle(message))
            .await
    }

    /// As [`BatchProcessor::process`], the readable messages handed over in
    /// the order of `key` (equal keys keep the batch's order), after the
    /// unreadable ones, which are dead-lettered.
    pub async fn process_in_order<K, KF, F, Fut>(
        &self,
        mut event: SqsEvent,
        key: KF,
        handle: F,
    ) -> SqsBatchResponse
    where
        K: Ord,
        KF: Fn(&Message) -> K,
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        event.records.sort_by_cached_key(|r| {
            Message::from_json(r.body.as_deref().unwrap_or(""))
                .ok()
                .map(|m| key(&m))
        });
        self.process(event, handle).await
    }

    /// As [`BatchProcessor::process`], telling the handler which receive of
    /// its message each record is, so that it can leave a record of a
    /// failure before a last one dead-letters the message.
    pub async fn process_attempts<F, Fut>(&self, event: SqsEvent, handle: F) -> SqsBatchResponse
    where
        F: Fn(Message, Attempt) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        self.count_batch(event.records.len());
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            if self.process_one(&record, &handle).await == RecordOutcome::Retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn process_one<F, Fut>(&self, record: &SqsMessage, handle: &F) -> RecordOutcome
    where
        F: Fn(Message, Attempt) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let attempt = Attempt {
            receive: receives(record),
            max: self.max_receive_count,
        };
        let result = match Message::from_json(record.body.as_deref().unwrap_or("")) {
            Ok(message) => {
                let span = span_of(std::slice::from_ref(&message));
                handle(message, attempt).instrument(span).await
            }
            Err(e) => Err(Failure::permanent("malformed_message", e.reason)),
        };
        self.settle(record, result.map_err(Settle::from)).await
    }

    /// Like [`BatchProcessor::process`], but the readable messages are
    /// handed over in groups (by `key`), so that a group's effects can be
    /// written together, with the latest receive among them (a group with
    /// a redelivered message is a redelivery). A group's result applies to
    /// each of its records; unreadable records are dead-lettered on their
    /// own.
    pub async fn process_grouped<K, KF, F, Fut>(
        &self,
        event: SqsEvent,
        key: KF,
        handle: F,
    ) -> SqsBatchResponse
    where
        K: Ord,
        KF: Fn(&Message) -> K,
        F: Fn(Vec<Message>, Attempt) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        self.count_batch(event.records.len());
        let mut groups: std::collections::BTreeMap<K, Vec<(SqsMessage, Message)>> =
            std::collections::BTreeMap::new();
        let mut outcomes = Vec::new();
        for record in event.records {
            match Message::from_json(record.body.as_deref().unwrap_or("")) {
                Ok(m) => groups.entry(key(&m)).or_default().push((record, m)),
                Err(e) => outcomes.push((
                    record.message_id.clone(),
                    self.settle(
                        &record,
                        Err(Settle::Permanent {
                            code: "malformed_message",
                            reason: e.reason,
                        }),
                    )
                    .await,
                )),
            }
        }
        for (_, members) in groups {
            let (records, messages): (Vec<SqsMessage>, Vec<Message>) = members.into_iter().unzip();
            let span = span_of(&messages);
            let attempt = Attempt {
                receive: records.iter().map(receives).max().unwrap_or(1),
                max: self.max_receive_count,
            };
            let result = handle(messages, attempt)
                .instrument(span)
                .await
                .map_err(Settle::from);
            // A group succeeds or fails whole: its messages were written
            // together. Say so when it is more than the one.
            let result = match result {
                Err(Settle::Retryable(cause)) if records.len() > 1 => {
                    Err(Settle::Retryable(format!(
                        "{cause} (the whole group of {} messages failed with it)",
                        records.len()
                    )))
                }
                Err(Settle::Permanent { code, reason }) if records.len() > 1 => {
                    Err(Settle::Permanent {
                        code,
                        reason: format!(
                            "{reason} (the whole group of {} messages failed with it)",
                            records.len()
                        ),
                    })
                }
                other => other,
            };
            for record in &records {
                outcomes.push((
                    record.message_id.clone(),
                    self.settle(record, result.clone()).await,
                ));
            }
        }
        let mut response = SqsBatchResponse::default();
        for (id, outcome) in outcomes {
            if outcome == RecordOutcome::Retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Ends one record: done, retried, or dead-lettered with its reason.
    async fn settle(&self, record: &SqsMessage, result: Result<(), Settle>) -> RecordOutcome {
        let id = record.message_id.as_deref().unwrap_or("");
        let body = record.body.as_deref().unwrap_or("");
        let receives = receives(record);
        let (code, reason) = match result {
            Ok(()) => return RecordOutcome::Done,
            Err(Settle::Permanent { code, reason }) => (code, reason),
            Err(Settle::Retryable(e)) if receives < self.max_receive_count => {
                tracing::warn!(message_id = id, receives, error = %e, "retryable failure; the message will be redelivered");
                return RecordOutcome::Retry;
            }
            Err(Settle::Retryable(e)) => (
                "retries_exhausted",
                format!("failed {receives} times; last error: {e}"),
            ),
        };
        tracing::error!(message_id = id, code, reason, "dead-lettering message");
        match self.dlq.dead_letter(body, id, code, &reason).await {
            Ok(()) => {
                crate::metrics::count(
                    "DeadLettered",
                    &[("Function", self.function), ("FailureCode", code)],
                    1,
                );
                RecordOutcome::DeadLettered {
                    code: code.to_owned(),
                }
            }
            Err(e) => {
                // Not lost: left on the source queue, whose redrive policy
                // moves it to the same dead-letter queue in the end.
                tracing::error!(message_id = id, error = %e, "could not dead-letter; leaving the message on its queue");
                RecordOutcome::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Where the test's log lines go.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some("m-1".into());
        m.body = Some(body.into());
        m
    }

    /// The tests that run the batch processor's spans take turns: tracing
    /// caches whether a span is wanted when it is first hit, and a span
    /// first hit by a test without a subscriber, while the logging test is
    /// installing its own, can be cached as never wanted.
    static SPANS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test(flavor = "current_thread")]
    async fn a_handler_learns_which_receive_it_runs_on() {
        let _turn = SPANS.lock().await;
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .build(),
        );
        let batches = BatchProcessor::new(Queue::new(sqs, "http://unused"), 5, "test");
        let body = serde_json::json!({"type": "detail_fetch.v1", "payload": {
            "platform": "doudian", "store": "77977", "event_id": "m-101",
            "order_id": "4837328765348566675", "app": "dd-app"}});
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut event = SqsEvent::default();
        for receives in ["1", "5"] {
            let mut r = record(&body.to_string());
            r.attributes
                .insert("ApproximateReceiveCount".into(), receives.into());
            event.records.push(r);
        }
        let response = batches
            .process_attempts(event, |_, attempt| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(attempt);
                    Ok(())
                }
            })
            .await;
        assert!(response.batch_item_failures.is_empty());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                Attempt { receive: 1, max: 5 },
                Attempt { receive: 5, max: 5 }
            ]
        );
        assert!(!seen[0].is_last());
        assert!(seen[1].is_last());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_log_line_of_a_message_names_its_event_and_order() {
        let _turn = SPANS.lock().await;
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // Whatever a span's first hit cached before this subscriber is asked again.
        tracing::callsite::rebuild_interest_cache();
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .build(),
        );
        let batches = BatchProcessor::new(Queue::new(sqs, "http://unused"), 5, "test");
        let body = serde_json::json!({"type": "order_event.v1", "payload": {
            "event_id": "evt-9", "order": {"platform": "jd", "store": "s-1", "order_id": "O-9"},
            "distributor": "d-1", "occurred_at": "2026-11-27T03:00:00Z", "kind": "cancelled"}});
        let mut event = SqsEvent::default();
        event.records = vec![record(&body.to_string())];
        let response = batches
            .process_grouped(
                event,
                |_| 0,
                |_, _| async {
                    tracing::info!("handled");
                    Ok(())
                },
            )
            .await;
        assert!(response.batch_item_failures.is_empty());
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("handled"))
            .expect("the line");
        assert!(line.contains("jd/s-1/evt-9"), "{line}");
        assert!(line.contains("jd/s-1/O-9"), "{line}");
    }
}
