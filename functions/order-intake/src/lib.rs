//! Order intake: `POST /webhooks/{platform}/{store}` in the generic signed
//! format, and `POST /webhooks/{shopify|doudian|youzan}[/{app}]` in the
//! platforms' own ([`native`]).
//!
//! Verifies the signature over the raw bytes, validates the order, resolves
//! the store to its distributor, and enqueues the order event for tier
//! evaluation and for stock allocation (a user's registration, for tier
//! evaluation only). A retried webhook (same event id,
//! same body) is answered 200 and changes nothing; nothing is stored or
//! enqueued for a request that is refused.
//!
//! The same binary is the order detail consumer ([`detail`]) where
//! `ORDER_INTAKE_MODE` is `detail_fetch` ([`Mode`]): it fetches the lines a
//! 抖店 paid push leaves out and releases the notice intake held for them.
//!
//! # Layout
//! - [`signature`]: the signed-webhook scheme.
//! - [`webhook`]: the document and its translation into an order event.
//! - [`native`]: the platforms' own formats, and holding what cannot be
//!   counted yet.
//! - [`detail`]: the order detail consumer.
//! - [`doudian_api`]: the 抖店 open API it asks (a port and its HTTPS
//!   adapter).

pub mod cache;
pub mod detail;
pub mod doudian_api;
pub mod native;
pub mod signature;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use tier_domain::OrderRef;
use tier_domain::ids::{BuyerId, EventId, Platform, Sku, StoreId};
use tier_domain::order::{OrderEvent, OrderEventKind, event_time};
use tier_messages::{Message, UserRegistered};
use tier_runtime::http::{self, ApiError};
use tier_runtime::metrics;
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::queue::send_order_event;
use tier_store::{Queue, StoreError, Table};
use tracing::Instrument;

use crate::signature::SignatureError;
use crate::webhook::{Incoming, WebhookDoc};

/// Far above any real order document, far below SQS's 256 KiB.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

pub struct OrderIntake {
    table: Table,
    tier_events: Queue,
    stock_events: Queue,
    order_details: Queue,
    secrets: Secrets,
    native: native::NativeIntake,
    /// Shared with native intake: one instance's memory of the table.
    cache: Arc<cache::IntakeCache>,
}

/// What the binary runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The webhooks, behind the HTTP API (the default).
    Webhooks,
    /// The order detail consumer, on its queue.
    DetailFetch,
}

impl Mode {
    /// `ORDER_INTAKE_MODE`: `webhooks` (or unset) or `detail_fetch`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.get("ORDER_INTAKE_MODE") {
            None | Some("webhooks") => Ok(Mode::Webhooks),
            Some("detail_fetch") => Ok(Mode::DetailFetch),
            Some(other) => Err(ConfigError::Invalid {
                name: "ORDER_INTAKE_MODE",
                reason: format!("{other:?} is neither webhooks nor detail_fetch"),
            }),
        }
    }
}

/// Webhook signing secrets: a platform with its own only accepts those, so
/// one platform integration's leaked secret cannot sign another's events;
/// the shared ones serve every other platform.
#[derive(Debug, Clone)]
pub struct Secrets {
    shared: Vec<String>,
    by_platform: BTreeMap<Platform, Vec<String>>,
}

impl Secrets {
    /// `shared`: comma-separated; `by_platform`: JSON `{"jd": ["..."], ...}`
    /// (empty means none). Every secret has at least 16 characters.
    pub fn parse(shared: &str, by_platform: &str) -> Result<Self, ConfigError> {
        let shared: Vec<String> = shared
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let by_platform: BTreeMap<Platform, Vec<String>> = match by_platform.trim() {
            "" => BTreeMap::new(),
            raw => serde_json::from_str(raw).map_err(|e| ConfigError::Invalid {
                name: "WEBHOOK_PLATFORM_SECRETS",
                reason: format!("expected {{\"<platform>\": [\"<secret>\", ...]}}: {e}"),
            })?,
        };
        if shared
            .iter()
            .chain(by_platform.values().flatten())
            .any(|s| s.len() < 16)
            || by_platform.values().any(Vec::is_empty)
        {
            return Err(ConfigError::Invalid {
                name: "WEBHOOK_SECRETS",
                reason:
                    "every secret needs at least 16 characters, every platform listed at least one"
                        .into(),
            });
        }
        Ok(Self {
            shared,
            by_platform,
        })
    }

    pub fn for_platform(&self, platform: &Platform) -> &[String] {
        self.by_platform.get(platform).unwrap_or(&self.shared)
    }
}

impl OrderIntake {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        let secrets = Secrets::parse(
            env.require("WEBHOOK_SECRETS")?,
            env.get("WEBHOOK_PLATFORM_SECRETS").unwrap_or_default(),
        )?;
        let cache = Arc::new(cache::IntakeCache::default());
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            tier_events: Queue::new(aws.sqs.clone(), env.require("TIER_EVENTS_QUEUE_URL")?),
            stock_events: Queue::new(aws.sqs.clone(), env.require("STOCK_EVENTS_QUEUE_URL")?),
            order_details: Queue::new(aws.sqs.clone(), env.require("ORDER_DETAIL_QUEUE_URL")?),
            secrets,
            native: native::NativeIntake {
                secrets: tier_store::secrets::SecretStore::new(
                    aws_sdk_secretsmanager::Client::new(&aws.sdk),
                    env.require("PLATFORM_SECRETS_PREFIX")?,
                ),
                cache: cache.clone(),
                currency: env.get("BRAND_CURRENCY").unwrap_or("CNY").to_owned(),
                timezone: env
                    .get("BRAND_TIMEZONE")
                    .unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE)
                    .parse()
                    .map_err(|e| ConfigError::Invalid {
                        name: "BRAND_TIMEZONE",
                        reason: format!("{e}"),
                    })?,
            },
            cache,
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        // Decoded once: the metrics name the platform the URL names (a
        // refused request may not name a valid one), and `accept` routes.
        let segments = http::path_segments(req.uri().path());
        let platform = segments
            .as_ref()
            .ok()
            .and_then(|s| s.get(1).cloned())
            .filter(|p| Platform::parse(p).is_ok())
            .unwrap_or_else(|| "unknown".into());
        // Every log line of the request carries what it is about, once
        // known, as the consumers' lines do.
        let span = tracing::info_span!(
            "webhook",
            platform = %platform,
            event_id = tracing::field::Empty,
            order = tracing::field::Empty
        );
        let result = self.accept(req, segments).instrument(span).await;
        let counted_per_notice = native::Native::from_segment(&platform).is_some();
        match &result {
            // A native delivery's notices are counted one by one.
            Ok(_) if counted_per_notice => {}
            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                metrics::count("WebhooksAccepted", &[("Platform", &platform)], 1)
            }
            Ok(_) => metrics::count("WebhooksDuplicate", &[("Platform", &platform)], 1),
            Err(e) => metrics::count(
                "WebhooksRefused",
                &[("Platform", &platform), ("Code", e.code)],
                1,
            ),
        }
        http::respond(result)
    }

    async fn accept(
        &self,
        req: Request,
        segments: Result<Vec<String>, ApiError>,
    ) -> Result<Response<Body>, ApiError> {
        let segments = segments?;
        if let Some(native) = segments
            .get(1)
            .and_then(|p| native::Native::from_segment(p))
            && segments.first().is_some_and(|s| s == "webhooks")
            && segments.len() <= 3
        {
            let body = http::body_bytes(req.body(), MAX_BODY_BYTES)?;
            return self
                .native
                .accept(
                    &self.table,
                    native::Queues {
                        tier_events: &self.tier_events,
                        stock_events: &self.stock_events,
                        order_details: &self.order_details,
                    },
                    native,
                    segments.get(2).map(String::as_str),
                    req.headers(),
                    body,
                )
                .await;
        }
        let (platform, store) = parse_path(req.uri().path(), &segments)?;
        let body = http::body_bytes(req.body(), MAX_BODY_BYTES)?;
        signature::verify(
            http::header(req.headers(), "x-signature"),
            body,
            self.secrets.for_platform(&platform),
            Utc::now().timestamp(),
        )
        .map_err(|e| {
            let code = match e {
                SignatureError::Missing => "missing_signature",
                SignatureError::Malformed(_) => "malformed_signature",
                SignatureError::Stale(_) => "stale_signature",
                SignatureError::Mismatch => "invalid_signature",
            };
            ApiError::unauthorized(code, e.to_string())
        })?;

        let doc: WebhookDoc = http::parse_json(body).map_err(|e| match e.code {
            "invalid_document" => ApiError {
                code: "invalid_order",
                ..e
            },
            _ => e,
        })?;
        if doc.platform != platform || doc.store != store {
            return Err(ApiError::unprocessable(
                "store_mismatch",
                format!(
                    "the document is for {}/{}, but was sent to {platform}/{store}",
                    doc.platform, doc.store
                ),
            ));
        }
        let event_id = doc.event_id.clone();
        let span = tracing::Span::current();
        span.record(
            "event_id",
            tracing::field::display(format!("{platform}/{store}/{event_id}")),
        );
        if let Some(order) = &doc.order_id {
            span.record(
                "order",
                tracing::field::display(format!("{platform}/{store}/{order}")),
            );
        }
        let occurred_at = doc.occurred_at;
        // Refused here rather than queued: a month the calendar cannot write
        // would otherwise reach the distributor's metrics.
        event_time::check_at_intake(occurred_at, Utc::now())
            .map_err(|e| ApiError::unprocessable("implausible_time", e.to_string()))?;
        let (order_id, kind) = match doc
            .into_incoming()
            .map_err(|m| ApiError::unprocessable("invalid_order", m))?
        {
            Incoming::Order { order_id, kind } => (order_id, kind),
            Incoming::Signup { user } => {
                return self
                    .accept_signup(platform, store, event_id, user, occurred_at, body)
                    .await;
            }
        };
        kind.validate()
            .map_err(|e| ApiError::unprocessable("invalid_order", e.to_string()))?;

        let skus: Vec<Sku> = match &kind {
            OrderEventKind::Paid { lines, .. } => lines.iter().map(|l| l.sku.clone()).collect(),
            _ => Vec::new(),
        };
        let view = self.view(&platform, &store, &event_id, &skus).await?;
        let digest = hex::encode(Sha256::digest(body));
        if let Some(reply) = duplicate(&view, &event_id, &digest)? {
            return Ok(reply);
        }
        let owner = view
            .owner
            .clone()
            .ok_or_else(|| unknown_store(&platform, &store))?;
        let mut unknown: Vec<&str> = skus
            .iter()
            .filter(|s| !view.entries.contains_key(*s))
            .map(Sku::as_str)
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            return Err(ApiError::unprocessable(
                "unknown_sku",
                format!(
                    "SKU(s) not in the current price book: {}",
                    unknown.join(", ")
                ),
            ));
        }
        let mut kind = kind;
        tier_store::webhooks::stamp_paid(
            &mut kind,
            view.rules.as_deref(),
            view.distributor.as_ref(),
        );
        if let OrderEventKind::Paid { lines, .. } = &mut kind {
            tier_store::webhooks::record_entitled_prices(
                lines,
                view.rules.as_deref(),
                view.book,
                view.distributor.as_ref(),
                &view.entries,
                &owner,
                occurred_at,
            );
        }
        let event = OrderEvent {
            event_id: event_id.clone(),
            order: OrderRef {
                platform: platform.clone(),
                store: store.clone(),
                order_id,
            },
            distributor: owner.clone(),
            occurred_at,
            kind,
        };
        send_order_event(&self.tier_events, &self.stock_events, event).await?;
        self.table
            .put_receipt(&platform, &store, &event_id, &digest, Utc::now())
            .await?;
        tracing::info!(%platform, %store, %event_id, distributor = %owner, "order event accepted");
        Ok(http::json(
            StatusCode::ACCEPTED,
            &json!({"status": "accepted", "event_id": event_id, "distributor_id": owner}),
        ))
    }

    /// The table's view of an event, in one read where the cache guesses
    /// right; what it read teaches the next one.
    async fn view(
        &self,
        platform: &Platform,
        store: &StoreId,
        event_id: &EventId,
        skus: &[Sku],
    ) -> Result<tier_store::webhooks::IntakeView, StoreError> {
        let hints = self.cache.hints(platform, store, &[]);
        let view = self
            .table
            .intake_view(platform, store, event_id, skus, &hints)
            .await?;
        // The generic format maps no codes: the mapping stays as it is.
        self.cache.learn(
            platform,
            store,
            view.owner.as_ref(),
            view.app.as_ref(),
            &[],
            &Default::default(),
            view.rules.as_ref(),
            view.book.map(|b| b.version),
        );
        Ok(view)
    }

    /// A user signed up through the store: the store's distributor gains a
    /// downline user, its uplines a user in their network. Tier evaluation
    /// only; no stock moves.
    async fn accept_signup(
        &self,
        platform: Platform,
        store: StoreId,
        event_id: EventId,
        user: BuyerId,
        occurred_at: DateTime<Utc>,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let view = self.view(&platform, &store, &event_id, &[]).await?;
        let digest = hex::encode(Sha256::digest(body));
        if let Some(reply) = duplicate(&view, &event_id, &digest)? {
            return Ok(reply);
        }
        let owner = view
            .owner
            .clone()
            .ok_or_else(|| unknown_store(&platform, &store))?;
        let message = Message::UserRegisteredV1(UserRegistered {
            event_id: event_id.clone(),
            platform: platform.clone(),
            store: store.clone(),
            distributor: owner.clone(),
            user,
            occurred_at,
        });
        self.tier_events.send(&message).await?;
        self.table
            .put_receipt(&platform, &store, &event_id, &digest, Utc::now())
            .await?;
        tracing::info!(%platform, %store, %event_id, distributor = %owner, "user registration accepted");
        Ok(http::json(
            StatusCode::ACCEPTED,
            &json!({"status": "accepted", "event_id": event_id, "distributor_id": owner}),
        ))
    }
}

/// The reply to a retried webhook (the same event id and body), or the
/// refusal of an event id reused with another body.
fn duplicate(
    view: &tier_store::webhooks::IntakeView,
    event_id: &EventId,
    digest: &str,
) -> Result<Option<Response<Body>>, ApiError> {
    match &view.receipt {
        Some(r) if r.body_sha256 == digest => Ok(Some(http::json(
            StatusCode::OK,
            &json!({"status": "duplicate", "event_id": event_id, "received_at": r.received_at}),
        ))),
        Some(_) => Err(ApiError::conflict(
            "event_id_reused",
            format!("event {event_id} was received before with a different body"),
        )),
        None => Ok(None),
    }
}

fn unknown_store(platform: &Platform, store: &StoreId) -> ApiError {
    ApiError::unprocessable(
        "unknown_store",
        format!("store {platform}/{store} is not registered to a distributor"),
    )
}

/// The platform and store of `path`, from its decoded `segments`.
fn parse_path(path: &str, segments: &[String]) -> Result<(Platform, StoreId), ApiError> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let [_, platform, store] = parts.as_slice() else {
        return Err(ApiError::not_found(
            "route_not_found",
            format!("no route for {path}"),
        ));
    };
    let platform = Platform::parse(platform)
        .map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
    let store =
        StoreId::parse(store).map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
    Ok((platform, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_the_webhooks_unless_set() {
        let env =
            |mode: &str| Env::from_map([("ORDER_INTAKE_MODE".to_owned(), mode.to_owned())].into());
        assert_eq!(Mode::from_env(&Env::default()).unwrap(), Mode::Webhooks);
        assert_eq!(Mode::from_env(&env("webhooks")).unwrap(), Mode::Webhooks);
        assert_eq!(
            Mode::from_env(&env("detail_fetch")).unwrap(),
            Mode::DetailFetch
        );
        assert!(Mode::from_env(&env("detail")).is_err());
    }

    #[test]
    fn secrets_are_per_platform_where_configured() {
        let s = Secrets::parse(
            "shared-secret-0123456789, old-shared-secret-0123",
            r#"{"tmall": ["tmall-secret-0123456789"]}"#,
        )
        .unwrap();
        let p = |raw: &str| Platform::parse(raw).unwrap();
        assert_eq!(s.for_platform(&p("tmall")), ["tmall-secret-0123456789"]);
        assert_eq!(s.for_platform(&p("jd")).len(), 2);
        assert!(
            Secrets::parse("shared-secret-0123456789", "")
                .unwrap()
                .by_platform
                .is_empty()
        );
        assert!(Secrets::parse("short", "").is_err());
        assert!(Secrets::parse("shared-secret-0123456789", r#"{"tmall": ["short"]}"#).is_err());
        assert!(Secrets::parse("shared-secret-0123456789", r#"{"tmall": []}"#).is_err());
        assert!(Secrets::parse("shared-secret-0123456789", r#"["not", "a map"]"#).is_err());
        assert!(
            Secrets::parse(
                "shared-secret-0123456789",
                r#"{"bad platform": ["tmall-secret-0123456789"]}"#
            )
            .is_err()
        );
    }
}
