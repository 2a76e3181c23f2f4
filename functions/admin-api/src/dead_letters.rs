//! Dead letters: what the queue consumers parked and why, and moving it
//! back once the cause is fixed. The emulator has no
//! `StartMessageMoveTask`, and an operator should not need the AWS CLI for
//! this: the same code redrives locally and in AWS.

use super::*;
use tier_store::Queue;
use tier_store::queue::DeadLetter;

/// A redrive moves at most this many a request: well inside the
/// function's 10 s timeout (a send and a delete each).
const MAX_REDRIVE: u32 = 200;
/// How long the messages a request has received stay hidden from other
/// readers if it ends early; it releases what it keeps before answering.
const HIDE_SECS: i32 = 30;
/// Receives of one request: with 10 messages a receive, room for the
/// moved ones and a good many that a filter skips.
const MAX_RECEIVES: usize = 60;

/// A work queue and its dead-letter queue.
pub(crate) struct Parked {
    pub(crate) source: Queue,
    pub(crate) dead: Queue,
}

/// The queues whose dead letters the admin API reads and redrives.
pub(crate) struct DeadLetterQueues {
    pub(crate) tier_events: Parked,
    pub(crate) stock_events: Parked,
    /// 抖店 order detail fetches: a redriven one fetches again, or finds
    /// the order released already and does nothing.
    pub(crate) order_details: Parked,
}

/// A work queue, by the name the API gives it; one list of names serves
/// the query parameter and the redrive body alike.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
enum QueueName {
    TierEvents,
    StockEvents,
    OrderDetails,
}

impl TryFrom<String> for QueueName {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        [
            QueueName::TierEvents,
            QueueName::StockEvents,
            QueueName::OrderDetails,
        ]
        .into_iter()
        .find(|q| q.name() == raw)
        .ok_or_else(|| {
            format!("queue {raw:?} is not one of tier-events, stock-events, order-details")
        })
    }
}

impl QueueName {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        Self::try_from(raw.to_owned()).map_err(|e| ApiError::bad_request("invalid_queue", e))
    }

    fn name(self) -> &'static str {
        match self {
            QueueName::TierEvents => "tier-events",
            QueueName::StockEvents => "stock-events",
            QueueName::OrderDetails => "order-details",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveRequest {
    queue: QueueName,
    /// Only the dead letters parked with this code.
    #[serde(default)]
    failure_code: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

fn describe(letter: &DeadLetter) -> serde_json::Value {
    json!({
        "failure_code": letter.failure_code,
        "failure_reason": letter.failure_reason,
        "source_message_id": letter.source_message_id,
        // The message as it was sent, parsed when it is JSON.
        "message": serde_json::from_str::<serde_json::Value>(&letter.body)
            .unwrap_or_else(|_| json!(letter.body)),
    })
}

impl AdminApi {
    fn parked(&self, queue: QueueName) -> &Parked {
        match queue {
            QueueName::TierEvents => &self.dead_letters.tier_events,
            QueueName::StockEvents => &self.dead_letters.stock_events,
            QueueName::OrderDetails => &self.dead_letters.order_details,
        }
    }

    /// `GET /v1/admin/dead-letters?queue=tier-events&limit=10`: a look at
    /// what is parked, with each message's reason. Nothing moves.
    pub(crate) async fn list_dead_letters(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let raw = http::query_values(query, "queue");
        let queue = QueueName::parse(raw.first().map(String::as_str).unwrap_or(""))?;
        let limit = match http::query_values(query, "limit").first() {
            None => 10,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=50).contains(l))
                .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit is 1 to 50"))?,
        };
        let dead = &self.parked(queue).dead;
        let mut seen = Vec::new();
        for _ in 0..limit.div_ceil(10) + 1 {
            let batch = dead.receive_dead_letters(HIDE_SECS).await?;
            if batch.is_empty() {
                break;
            }
            seen.extend(batch);
            if seen.len() >= limit {
                break;
            }
        }
        let shown: Vec<_> = seen.iter().take(limit).map(describe).collect();
        release_all(dead, &seen).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"queue": queue.name(), "dead_letters": shown}),
        ))
    }

    /// `POST /v1/admin/dead-letters:redrive`: moves dead letters back to
    /// their work queue, all of them or those of one failure code, up to
    /// `limit` a request. Each is sent before it is deleted, so none is
    /// lost; one whose delete fails is sent again by a later redrive, which
    /// the consumers recognise as a duplicate.
    pub(crate) async fn redrive(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let req: RedriveRequest = http::parse_json(body).map_err(|e| ApiError {
            code: if e.code == "invalid_document" {
                "invalid_redrive"
            } else {
                e.code
            },
            ..e
        })?;
        let limit = req.limit.unwrap_or(MAX_REDRIVE);
        if !(1..=MAX_REDRIVE).contains(&limit) {
            return Err(ApiError::unprocessable(
                "invalid_redrive",
                format!("limit is 1 to {MAX_REDRIVE}"),
            ));
        }
        let Parked { source, dead } = self.parked(req.queue);
        let (mut moved, mut kept) = (0u32, Vec::new());
        let outcome = async {
            for _ in 0..MAX_RECEIVES {
                if moved >= limit {
                    break;
                }
                let batch = dead.receive_dead_letters(HIDE_SECS).await?;
                if batch.is_empty() {
                    break;
                }
                for letter in batch {
                    let wanted = req
                        .failure_code
                        .as_ref()
                        .is_none_or(|c| letter.failure_code.as_ref() == Some(c));
                    if !wanted || moved >= limit {
                        kept.push(letter);
                        continue;
                    }
                    source.send_body(&letter.body).await?;
                    dead.delete(&letter).await?;
                    moved += 1;
                }
            }
            Ok::<_, tier_store::StoreError>(())
        }
        .await;
        // What this request skipped is visible again for the next one,
        // whatever happened above.
        release_all(dead, &kept).await?;
        outcome?;
        tracing::info!(
            queue = req.queue.name(),
            moved,
            skipped = kept.len(),
            "dead letters redriven"
        );
        Ok(http::json(
            StatusCode::OK,
            &json!({"queue": req.queue.name(), "moved": moved, "skipped": kept.len()}),
        ))
    }
}

async fn release_all(dead: &Queue, letters: &[DeadLetter]) -> Result<(), tier_store::StoreError> {
    for letter in letters {
        dead.release(letter).await?;
    }
    Ok(())
}
