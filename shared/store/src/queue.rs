//! Sending to SQS: work for the next function, or a message that cannot be
//! processed to the dead-letter queue with its reason.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_messages::Message;

use crate::error::StoreError;

/// Tries of one dead-letter send, with backoff between them.
const DEAD_LETTER_ATTEMPTS: u32 = 4;

/// A message on a dead-letter queue, received and hidden from other
/// readers until it is deleted or released.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub body: String,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub source_message_id: Option<String>,
    receipt: String,
}

#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    url: String,
}

fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("type and value are set")
}

/// Sends an order event to both of its consumers at once: tier evaluation
/// and stock allocation each need every one. Both sends succeed before the
/// caller settles the event (writes its receipt, lets its hold go): a
/// failure in between leaves it unsettled, so the platform's retry (or the
/// next release or fetch) sends both again, and each consumer drops by
/// event id what it already has.
pub async fn send_order_event(
    tier_events: &Queue,
    stock_events: &Queue,
    event: OrderEvent,
) -> Result<(), StoreError> {
    // A shipment moves stock only: tier evaluation has nothing to count.
    if matches!(event.kind, OrderEventKind::Shipped { .. }) {
        return stock_events.send(&Message::OrderEventV1(event)).await;
    }
    let message = Message::OrderEventV1(event);
    let (tier, stock) = tokio::join!(tier_events.send(&message), stock_events.send(&message));
    tier?;
    stock
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, message: &Message) -> Result<(), StoreError> {
        self.send_delayed(message, 0).await
    }

    /// As [`Queue::send`], invisible for `seconds` (at most 900).
    pub async fn send_delayed(&self, message: &Message, seconds: u32) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.to_json())
            .message_attributes("message_id", attr(&message.id()))
            .set_delay_seconds((seconds > 0).then_some(seconds.min(900) as i32))
            .send()
            .await
            .map_err(|e| StoreError::aws("SendMessage", e))?;
        Ok(())
    }

    /// Asks each upline to pull its downline's network
    /// ([`tier_domain::network`]), on the FIFO roll-up queue: grouped by
    /// upline, so one upline's pulls never run at once, and one message per
    /// pair and window of `window_seconds` (SQS drops the repeats as
    /// duplicates), delivered after the queue's delay of one window, so a
    /// burst of orders below an upline costs it one pull.
    pub async fn send_pulls(
        &self,
        pulls: &[tier_messages::NetworkPull],
        window_seconds: u32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let window = tier_domain::network::window_of(now.timestamp(), window_seconds);
        for chunk in pulls.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let message = Message::NetworkPullV1(p.clone());
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(message.to_json())
                        .message_attributes("message_id", attr(&message.id()))
                        // Hashed: ids may hold characters SQS refuses here.
                        .message_group_id(digest(&[p.upline.as_str()]))
                        .message_deduplication_id(digest(&[
                            p.upline.as_str(),
                            p.downline.as_str(),
                            &window.to_string(),
                        ]))
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::aws("SendMessageBatch", e))?;
            if let Some(failed) = out.failed.first() {
                return Err(StoreError::Partial {
                    operation: "SendMessageBatch",
                    detail: format!(
                        "roll-up signal not sent: {} ({})",
                        failed.message.as_deref().unwrap_or("no reason given"),
                        failed.code
                    ),
                });
            }
        }
        Ok(())
    }

    /// Sends `body` unchanged, with why it failed in message attributes
    /// (`failure_code`, `failure_reason`, `source_message_id`), so an
    /// operator can read the reason, fix the cause and redrive.
    pub async fn dead_letter(
        &self,
        body: &str,
        source_message_id: &str,
        code: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        // SQS attribute values are limited in size along with the message.
        let reason: String = reason.chars().take(1000).collect();
        // Retried here: a message whose dead-letter send fails stays on its
        // queue and is parked by the queue's own redrive later, without its
        // reason.
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .send_message()
                .queue_url(&self.url)
                .message_body(body)
                .message_attributes("failure_code", attr(code))
                .message_attributes("failure_reason", attr(&reason))
                .message_attributes("source_message_id", attr(source_message_id))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if attempt + 1 >= DEAD_LETTER_ATTEMPTS => {
                    return Err(StoreError::aws("SendMessage", e));
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "dead-letter send failed; retrying");
                    attempt += 1;
                    crate::table::backoff(attempt).await;
                }
            }
        }
    }

    /// Receives up to 10 dead letters, hidden for `hide_secs` from other
    /// readers (and from this one's next call).
    pub async fn receive_dead_letters(
        &self,
        hide_secs: i32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(hide_secs)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| StoreError::aws("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attr = |k: &str| {
                    m.message_attributes
                        .as_ref()
                        .and_then(|a| a.get(k))
                        .and_then(|v| v.string_value.clone())
                };
                Some(DeadLetter {
                    failure_code: attr("failure_code"),
                    failure_reason: attr("failure_reason"),
                    source_message_id: attr("source_message_id"),
                    body: m.body.clone().unwrap_or_default(),
                    receipt: m.receipt_handle.clone()?,
                })
            })
            .collect())
    }

    /// Sends a dead letter's body back unchanged, as its first send did.
    pub async fn send_body(&self, body: &str) -> Result<(), StoreError> {
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body);
        if let Ok(message) = Message::from_json(body) {
            req = req.message_attributes("message_id", attr(&message.id()));
        }
        req.send()
            .await
            .map_err(|e| StoreError::aws("SendMessage", e))?;
        Ok(())
    }

    /// Removes a received message for good.
    pub async fn delete(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map_err(|e| StoreError::aws("DeleteMessage", e))?;
        Ok(())
    }

    /// Makes a received message visible again at once.
    pub async fn release(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&letter.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| StoreError::aws("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

/// 32 hex digits of the SHA-256 of `parts`, each ended by a NUL: a group
/// or de-duplication id SQS accepts whatever the ids hold.
fn digest(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
