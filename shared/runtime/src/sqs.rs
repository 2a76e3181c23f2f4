//! SQS batches with partial failure, as Lambda's event source mapping runs
//! them (`ReportBatchItemFailures`).
//!
//! Each record is parsed and handled on its own; one bad record never fails
//! its neighbours. Failures are of two kinds:
//! - permanent (the message can never succeed: unreadable, refers to
//!   something impossible): sent to the dead-letter queue at once, with its
//!   reason in message attributes, and deleted from the source queue;
//! - retryable (throttling, a lost race, the network): reported as a batch
//!   item failure so SQS delivers it again after the visibility timeout.
//!   On the last allowed receive it is dead-lettered with its reason rather
//!   than left for the queue's redrive, which would drop the reason.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tier_messages::Message;
use tier_store::{Queue, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{code}: {reason}")]
    Permanent { code: &'static str, reason: String },
    #[error(transparent)]
    Retryable(#[from] StoreError),
}

impl Failure {
    pub fn permanent(code: &'static str, reason: impl Into<String>) -> Self {
        Failure::Permanent {
            code,
            reason: reason.into(),
        }
    }
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
        F: Fn(Message) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let result = match Message::from_json(record.body.as_deref().unwrap_or("")) {
            Ok(message) => handle(message).await,
            Err(e) => Err(Failure::permanent("malformed_message", e.reason)),
        };
        self.settle(record, result.map_err(Settle::from)).await
    }

    /// Like [`BatchProcessor::process`], but the readable messages are
    /// handed over in groups (by `key`), so that a group's effects can be
    /// written together. A group's result applies to each of its records;
    /// unreadable records are dead-lettered on their own.
    pub async fn process_grouped<K, KF, F, Fut>(
        &self,
        event: SqsEvent,
        key: KF,
        handle: F,
    ) -> SqsBatchResponse
    where
        K: Ord,
        KF: Fn(&Message) -> K,
        F: Fn(Vec<Message>) -> Fut,
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
            let result = handle(messages).await.map_err(Settle::from);
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
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
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
