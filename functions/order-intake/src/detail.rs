//! The order detail consumer (`ORDER_INTAKE_MODE=detail_fetch`): for each
//! [`DetailFetch`], the lines of an order whose push came without them.
//!
//! The held notice is read with its receipt. Held and still without its
//! lines, it gets them from the platform ([`OrderDetails`], asked as the
//! store's app with its current secret), and is translated again as a
//! release translates it: counted (its event queued for tier evaluation
//! and stock allocation, then the held item deleted), recorded, or held
//! again for what still stands in the way (an unmapped SKU), keeping the
//! lines, so that the fix releases it without another fetch.
//!
//! - No longer held (a duplicate message, or a release came first):
//!   nothing to do.
//! - Not held yet (no receipt): intake asks for the fetch just before it
//!   writes the hold, so the message waits for it.
//! - A retryable failure (the network, the platform's load or rate limit)
//!   is retried by SQS. On the last receive, and at once for a permanent
//!   one (the platform says the order does not exist, refuses the app, or
//!   answers what cannot be read), the held notice's detail says that the
//!   fetch failed and why, and the message is dead-lettered with its
//!   reason. The notice stays held as `awaiting_detail`;
//!   `POST /v1/admin/orders:release` asks for its detail again.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use tier_messages::{DetailFetch, Message};
use tier_platforms::translate::{Hold, HoldReason};
use tier_platforms::{Change, OrderDetail};
use tier_runtime::metrics;
use tier_runtime::sqs::{Attempt, BatchProcessor, Failure};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::platforms::{Admission, HeldLookup, HeldOrder, admit, notice_codes};
use tier_store::queue::send_order_event;
use tier_store::secrets::SecretStore;
use tier_store::{Queue, Table};

use crate::cache::IntakeCache;
use crate::doudian_api::{DoudianApi, FetchError, OrderDetails, Refusal};

/// The function's name in its metrics.
const FUNCTION: &str = "order-detail";

pub struct DetailFetcher<D = DoudianApi> {
    table: Table,
    tier_events: Queue,
    stock_events: Queue,
    secrets: SecretStore,
    cache: IntakeCache,
    /// The brand's currency, as intake translates with it.
    currency: String,
    batches: BatchProcessor,
    api: D,
}

impl DetailFetcher<DoudianApi> {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        Self::from_env_with(env, aws, DoudianApi::from_env(env, aws.tls.clone())?)
    }
}

impl<D: OrderDetails> DetailFetcher<D> {
    /// As [`DetailFetcher::from_env`], asking `api` for the details.
    pub fn from_env_with(env: &Env, aws: &AwsClients, api: D) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            tier_events: Queue::new(aws.sqs.clone(), env.require("TIER_EVENTS_QUEUE_URL")?),
            stock_events: Queue::new(aws.sqs.clone(), env.require("STOCK_EVENTS_QUEUE_URL")?),
            secrets: SecretStore::new(
                aws_sdk_secretsmanager::Client::new(&aws.sdk),
                env.require("PLATFORM_SECRETS_PREFIX")?,
            ),
            cache: IntakeCache::default(),
            currency: env.get("BRAND_CURRENCY").unwrap_or("CNY").to_owned(),
            batches: BatchProcessor::new(
                Queue::new(aws.sqs.clone(), env.require("DLQ_URL")?),
                env.parse_or("MAX_RECEIVE_COUNT", 5u32)?,
                FUNCTION,
            ),
            api,
        })
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process_attempts(event, |message, attempt| async move {
                match message {
                    Message::DetailFetchV1(f) => self.on_fetch(&f, attempt).await,
                    other => Err(Failure::permanent(
                        "unexpected_message",
                        format!("the order detail consumer does not handle {}", other.id()),
                    )),
                }
            })
            .await
    }

    async fn on_fetch(&self, f: &DetailFetch, attempt: Attempt) -> Result<(), Failure> {
        let held = match self
            .table
            .held_notice(&f.platform, &f.store, &f.order_id, &f.event_id)
            .await?
        {
            HeldLookup::Held(held) => *held,
            HeldLookup::Released => {
                tracing::info!("the notice is no longer held: nothing to fetch");
                return Ok(());
            }
            HeldLookup::NotKept => {
                return Err(Failure::RetryLater(
                    "the notice is not held yet: intake asks for its detail just before it holds it"
                        .into(),
                ));
            }
        };
        if !matches!(held.notice.change, Change::Paid { order: None }) {
            tracing::info!(
                reason = held.reason.as_str(),
                "the held notice has its lines already: nothing to fetch"
            );
            return Ok(());
        }
        match self.fetch(f).await {
            Ok(detail) => self.readmit(&held, detail).await,
            Err(failure) => self.failed(&held, failure, attempt).await,
        }
    }

    /// The order's detail, asked as the store's app.
    async fn fetch(&self, f: &DetailFetch) -> Result<OrderDetail, Failure> {
        if f.platform.as_str() != "doudian" {
            return Err(Failure::permanent(
                "unsupported_platform",
                format!("no order detail is fetched from {}", f.platform),
            ));
        }
        let app = self
            .table
            .platform_app(&f.platform, &f.app)
            .await?
            .ok_or_else(|| {
                Failure::permanent("unknown_app", format!("no {} app {}", f.platform, f.app))
            })?;
        let key = app.app_key.as_deref().ok_or_else(|| {
            Failure::permanent(
                "unknown_app",
                format!("{} app {} has no app key", f.platform, f.app),
            )
        })?;
        let mut used: Option<String> = None;
        loop {
            let secrets = self
                .cache
                .secrets(&self.secrets, &f.platform, &f.app, used.is_some())
                .await?;
            let secret = secrets.first().cloned().ok_or_else(|| {
                Failure::permanent(
                    "no_app_secret",
                    format!("{} app {} has no secret", f.platform, f.app),
                )
            })?;
            if used.as_ref() == Some(&secret) {
                // Read again and unchanged: the refusal stands.
                return Err(Failure::permanent(
                    Refusal::Auth.code(),
                    "the platform refused the app's current secret".to_owned(),
                ));
            }
            match self
                .api
                .order_detail(key, &secret, f.store.as_str(), &f.order_id)
                .await
            {
                Ok(detail) => return Ok(detail),
                // The secret may have been rotated since this process read
                // it: once more with the one Secrets Manager holds now.
                Err(FetchError::Permanent {
                    refusal: Refusal::Auth,
                    reason,
                }) if used.is_none() => {
                    tracing::warn!(%reason, "the platform refused the app; reading its secret again");
                    used = Some(secret);
                }
                Err(FetchError::Retryable(reason)) => return Err(Failure::RetryLater(reason)),
                Err(FetchError::Permanent { refusal, reason }) => {
                    return Err(Failure::permanent(refusal.code(), reason));
                }
            }
        }
    }

    /// The notice with its lines, translated again as a release does.
    async fn readmit(&self, held: &HeldOrder, detail: OrderDetail) -> Result<(), Failure> {
        let mut notice = held.notice.clone();
        notice.change = Change::Paid {
            order: Some(detail),
        };
        let (platform, store, event_id) = (&held.platform, &held.store, &held.event_id);
        let view = self
            .table
            .notice_view(
                platform,
                store,
                event_id,
                &notice_codes(&notice),
                true,
                &Default::default(),
            )
            .await?;
        let outcome = match admit(&view, platform, store, &notice, &self.currency, Utc::now()) {
            Admission::Event(event) => {
                // Before the held item goes: a crash in between fetches and
                // sends again.
                send_order_event(&self.tier_events, &self.stock_events, *event).await?;
                self.table.release_held(held).await?;
                tracing::info!(%platform, %store, %event_id, "order detail fetched: queued");
                "queued"
            }
            Admission::Nothing { why } => {
                self.table.release_held(held).await?;
                tracing::info!(%platform, %store, %event_id, why, "order detail fetched: recorded");
                "recorded"
            }
            Admission::Held(hold) => {
                // Held for what the lines show (an unmapped SKU, say), with
                // them, so that the fix releases it without a fetch.
                if self.table.rehold_with(held, &notice, &hold).await? {
                    tracing::warn!(%platform, %store, %event_id, reason = hold.reason.as_str(), detail = %hold.detail, "order detail fetched: still held");
                } else {
                    tracing::info!(%platform, %store, %event_id, "released meanwhile");
                }
                "held"
            }
        };
        metrics::count(
            "OrderDetailsFetched",
            &[("Platform", platform.as_str()), ("Outcome", outcome)],
            1,
        );
        Ok(())
    }

    /// A fetch that failed: noted on the held notice where nothing will
    /// try again (a permanent failure, or the message's last receive), so
    /// that an operator sees why it waits.
    async fn failed(
        &self,
        held: &HeldOrder,
        failure: Failure,
        attempt: Attempt,
    ) -> Result<(), Failure> {
        let permanent = match &failure {
            Failure::Permanent { .. } => true,
            Failure::Retryable(e) => !e.is_retryable(),
            Failure::RetryLater(_) => false,
        };
        let code = match &failure {
            Failure::Permanent { code, .. } => code,
            _ => "retryable",
        };
        metrics::count(
            "OrderDetailFetchFailed",
            &[("Platform", held.platform.as_str()), ("Code", code)],
            1,
        );
        if permanent || attempt.is_last() {
            let detail = if permanent {
                format!("detail fetch failed: {failure}")
            } else {
                format!(
                    "detail fetch failed (given up after {} attempts): {failure}",
                    attempt.receive
                )
            };
            let hold = Hold {
                reason: HoldReason::AwaitingDetail,
                detail,
            };
            self.table.rehold_with(held, &held.notice, &hold).await?;
        }
        Err(failure)
    }
}
