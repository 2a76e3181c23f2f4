//! Stock allocation: consumes order events from SQS.
//!
//! - paid: each line reserves its quantity with a conditional decrement, so
//!   stock never goes below zero; a line that cannot be filled is recorded
//!   as backordered, not dropped;
//! - cancelled: every line's remaining reservation returns to stock, once;
//! - refunded: the returned lines it lists go back to stock, once per refund.
//!
//! A cancellation that overtakes its payment leaves a marker, and the late
//! payment then reserves nothing.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_messages::Message;
use tier_runtime::sqs::{BatchProcessor, Failure};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::catalog::Reservation;
use tier_store::{Queue, Table};

pub struct StockAllocation {
    table: Table,
    batches: BatchProcessor,
}

impl StockAllocation {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            batches: BatchProcessor::new(Queue::new(aws.sqs.clone(), env.require("DLQ_URL")?), env.parse_or("MAX_RECEIVE_COUNT", 5u32)?),
        })
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process(event, |message| async move {
                match message {
                    Message::OrderEventV1(e) => self.on_order_event(&e).await,
                    // Reviews belong to tier evaluation's queue: one here was misrouted.
                    other => Err(Failure::permanent("unexpected_message", format!("stock allocation does not handle {}", other.id()))),
                }
            })
            .await
    }

    async fn on_order_event(&self, event: &OrderEvent) -> Result<(), Failure> {
        match &event.kind {
            OrderEventKind::Paid { lines, .. } => {
                for line in lines {
                    let r = self.table.reserve_line(&event.order, line, &event.event_id).await?;
                    if r == Reservation::Backordered {
                        tracing::warn!(order = %event.order, line = %line.line_id, sku = %line.sku, quantity = line.quantity, "not enough stock: line backordered");
                    }
                }
            }
            OrderEventKind::Cancelled => {
                self.table.mark_cancelled(&event.order, &event.event_id).await?;
                for (line, _) in self.table.reservations(&event.order).await? {
                    self.table.release_line(&event.order, &line, None, "cancel").await?;
                }
            }
            OrderEventKind::Refunded { refund_id, lines, .. } => {
                for returned in lines {
                    self.table.release_line(&event.order, &returned.line_id, Some(returned.quantity), &format!("refund:{refund_id}")).await?;
                }
            }
        }
        Ok(())
    }
}
