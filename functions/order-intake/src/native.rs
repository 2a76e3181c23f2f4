//! Deliveries in the platforms' own formats: `POST /webhooks/shopify`,
//! `/webhooks/doudian`, `/webhooks/youzan`, each optionally `/{app}`.
//!
//! The app is named by the URL or by the delivery itself (抖店's `app-id`
//! header, 有赞's `client_id`, a Shopify shop's own app); its secrets come
//! from Secrets Manager. Once a delivery is authentic and parses, every
//! notice in it is kept: queued as an order event, recorded as changing
//! nothing, or held with its reason until an operator's fix releases it.
//! Only what is not authentic, not parseable, or for an app or store that
//! is not connected is refused, and then nothing is stored.
//!
//! A 抖店 paid push carries no lines: its notice is held as
//! `awaiting_detail` and a [`DetailFetch`] is queued for the order detail
//! consumer ([`crate::detail`]), which fetches the lines and releases it.

use std::sync::Arc;

use chrono::Utc;
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;
use tier_domain::ids::{AppId, EventId, Platform, StoreId};
use tier_messages::{DetailFetch, Message};
use tier_platforms::translate::HoldReason;
use tier_platforms::{Delivery, DeliveryError, Notice, doudian, shopify, youzan};
use tier_runtime::http::{self, ApiError};
use tier_runtime::metrics;
use tier_store::platforms::{Admission, notice_codes};
use tier_store::queue::send_order_event;
use tier_store::secrets::SecretStore;
use tier_store::{Queue, Table};

use crate::cache::IntakeCache;

/// The platforms whose own delivery format intake reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    Shopify,
    Doudian,
    Youzan,
}

impl Native {
    pub fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "shopify" => Some(Self::Shopify),
            "doudian" => Some(Self::Doudian),
            "youzan" => Some(Self::Youzan),
            _ => None,
        }
    }

    pub fn platform(self) -> Platform {
        Platform::parse(match self {
            Self::Shopify => "shopify",
            Self::Doudian => "doudian",
            Self::Youzan => "youzan",
        })
        .expect("platform names are valid ids")
    }

    /// Whether the platform names the app in its deliveries (so the URL
    /// need not).
    pub fn names_its_app(self) -> bool {
        !matches!(self, Self::Shopify)
    }
}

/// What native intake needs besides the table and queues.
pub struct NativeIntake {
    pub secrets: SecretStore,
    pub cache: Arc<IntakeCache>,
    /// The brand's currency: an order in another is held.
    pub currency: String,
    /// The brand's time zone: 有赞 writes local times without one.
    pub timezone: chrono_tz::Tz,
}

/// One notice's fate, for the answer and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Queued,
    Recorded,
    Held,
    Duplicate,
}

impl Fate {
    fn as_str(self) -> &'static str {
        match self {
            Fate::Queued => "queued",
            Fate::Recorded => "recorded",
            Fate::Held => "held",
            Fate::Duplicate => "duplicate",
        }
    }
}

pub(crate) struct Queues<'a> {
    pub tier_events: &'a Queue,
    pub stock_events: &'a Queue,
    /// Where a notice without its lines asks for the order's detail.
    pub order_details: &'a Queue,
}

impl NativeIntake {
    pub(crate) async fn accept(
        &self,
        table: &Table,
        queues: Queues<'_>,
        native: Native,
        app_segment: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let platform = native.platform();
        let named = app_segment
            .map(AppId::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
        // Which app signed this, by what the delivery says of itself.
        let (app, shopify_store) = match native {
            Native::Shopify => {
                let shop = shopify::shop_domain(headers).map_err(refusal)?;
                let store = StoreId::parse(&shop)
                    .map_err(|e| ApiError::bad_request("invalid_delivery", e.to_string()))?;
                let mut known = self.cache.store(table, &platform, &store, false).await?;
                if let (Some(n), Some(k)) = (&named, &known)
                    && k.app.as_ref() != Some(n)
                {
                    // Moved to the named app since it was last read?
                    known = self.cache.store(table, &platform, &store, true).await?;
                }
                let store_app = known
                    .and_then(|k| k.app)
                    .ok_or_else(|| unknown_store(&platform, &store))?;
                if let Some(n) = named
                    && n != store_app
                {
                    return Err(ApiError::unauthorized(
                        "wrong_app",
                        format!("store {store} is connected through another app than {n}"),
                    ));
                }
                (store_app, Some(store))
            }
            Native::Doudian | Native::Youzan => {
                let key = match native {
                    Native::Doudian => doudian::app_key(headers),
                    _ => youzan::client_id(body),
                };
                let app = match (named, key) {
                    (Some(n), _) => n,
                    (None, Ok(key)) => self
                        .cache
                        .app_by_key(table, &platform, &key)
                        .await?
                        .ok_or_else(|| {
                            ApiError::not_found(
                                "unknown_app",
                                format!("no {platform} app is registered with key {key}"),
                            )
                        })?,
                    (None, Err(e)) => return Err(refusal(e)),
                };
                (app, None)
            }
        };
        let record = self
            .cache
            .app(table, &platform, &app)
            .await?
            .ok_or_else(|| {
                ApiError::not_found("unknown_app", format!("no {platform} app {app}"))
            })?;
        self.verify(native, &record, headers, body).await?;

        let delivery = match native {
            Native::Shopify => shopify::parse(headers, body),
            Native::Doudian => doudian::parse(body),
            Native::Youzan => youzan::parse(body, self.timezone),
        }
        .map_err(refusal)?;
        let notices = match delivery {
            Delivery::Probe => return Ok(ack(native, json!({"status": "probe"}))),
            Delivery::Unsubscribed { event } => {
                metrics::count(
                    "WebhooksUnsubscribed",
                    &[("Platform", platform.as_str())],
                    1,
                );
                return Ok(ack(native, json!({"status": "ignored", "event": event})));
            }
            Delivery::Notices(n) => n,
        };
        // Every notice's store first: one that is not this app's refuses
        // the delivery before anything of it is kept.
        let mut stores = Vec::with_capacity(notices.len());
        for notice in &notices {
            let store = match &shopify_store {
                Some(s) => s.clone(),
                None => StoreId::parse(&notice.shop)
                    .map_err(|e| ApiError::bad_request("invalid_delivery", e.to_string()))?,
            };
            if shopify_store.is_none() {
                let mut known = self.cache.store(table, &platform, &store, false).await?;
                if known.as_ref().is_some_and(|k| k.app.as_ref() != Some(&app)) {
                    known = self.cache.store(table, &platform, &store, true).await?;
                }
                if known.and_then(|k| k.app).as_ref() != Some(&app) {
                    return Err(unknown_store(&platform, &store));
                }
            }
            stores.push(store);
        }
        let mut fates = Vec::with_capacity(notices.len());
        for (notice, store) in notices.iter().zip(&stores) {
            let (event_id, fate) = self
                .keep(table, &queues, &platform, store, &app, notice)
                .await?;
            metrics::count(
                match fate {
                    Fate::Queued => "WebhooksAccepted",
                    Fate::Recorded => "WebhooksRecorded",
                    Fate::Held => "WebhooksHeld",
                    Fate::Duplicate => "WebhooksDuplicate",
                },
                &[("Platform", platform.as_str())],
                1,
            );
            fates.push(
                json!({"event_id": event_id, "order_id": notice.order_id, "status": fate.as_str()}),
            );
        }
        Ok(ack(native, json!({"status": "accepted", "notices": fates})))
    }

    async fn verify(
        &self,
        native: Native,
        app: &tier_store::platforms::PlatformApp,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let check = |secrets: &[String]| {
            let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
            let key = app.app_key.as_deref().unwrap_or_default();
            match native {
                Native::Shopify => shopify::verify(headers, body, &secrets),
                Native::Doudian => doudian::verify(headers, body, key, &secrets),
                Native::Youzan => youzan::verify(headers, body, key, &secrets),
            }
        };
        let cached = self
            .cache
            .secrets(&self.secrets, &app.platform, &app.app, false)
            .await?;
        match check(&cached) {
            Ok(()) => Ok(()),
            // A rotation this process has not seen yet: read again, once.
            Err(DeliveryError::BadSignature) => {
                let fresh = self
                    .cache
                    .secrets(&self.secrets, &app.platform, &app.app, true)
                    .await?;
                check(&fresh).map_err(refusal)
            }
            Err(e) => Err(refusal(e)),
        }
    }

    /// Queues, records or holds one notice of `store` (connected through
    /// `app`), unless it was kept before.
    async fn keep(
        &self,
        table: &Table,
        queues: &Queues<'_>,
        platform: &Platform,
        store: &StoreId,
        app: &AppId,
        notice: &Notice,
    ) -> Result<(EventId, Fate), ApiError> {
        let event_id = tier_platforms::translate::event_id(&notice.event_key);
        let codes = notice_codes(notice);
        let hints = self.cache.hints(platform, store, &codes);
        let view = table
            .notice_view(platform, store, &event_id, &codes, false, &hints)
            .await?;
        self.cache.learn(
            platform,
            store,
            view.owner.as_ref(),
            view.app.as_ref(),
            &codes,
            &view.mapping,
            view.rules.as_ref(),
            view.book.map(|b| b.version),
        );
        if view.seen {
            return Ok((event_id, Fate::Duplicate));
        }
        if view.owner.is_some() && view.app.as_ref() != Some(app) {
            // The store left this app after the check above read it.
            return Err(unknown_store(platform, store));
        }
        let now = Utc::now();
        let fate = match tier_store::platforms::admit(
            &view,
            platform,
            store,
            notice,
            &self.currency,
            now,
        ) {
            Admission::Event(event) => {
                send_order_event(queues.tier_events, queues.stock_events, *event).await?;
                table
                    .put_notice_receipt(platform, store, &event_id, now)
                    .await?;
                Fate::Queued
            }
            Admission::Nothing { why } => {
                tracing::info!(%platform, %store, %event_id, why, "notice recorded");
                table
                    .put_notice_receipt(platform, store, &event_id, now)
                    .await?;
                Fate::Recorded
            }
            Admission::Held(hold) => {
                tracing::warn!(%platform, %store, %event_id, reason = hold.reason.as_str(), detail = %hold.detail, "notice held");
                if hold.reason == HoldReason::AwaitingDetail {
                    // Asked before the hold and its receipt are written, as
                    // an event is queued before its receipt: if the write
                    // fails, the platform's retry asks again. The consumer
                    // waits for a hold it does not find yet.
                    let fetch = Message::DetailFetchV1(DetailFetch {
                        platform: platform.clone(),
                        store: store.clone(),
                        event_id: event_id.clone(),
                        order_id: notice.order_id.clone(),
                        app: app.clone(),
                    });
                    queues.order_details.send(&fetch).await?;
                }
                table
                    .hold_notice(platform, store, &event_id, notice, &hold, now)
                    .await?;
                Fate::Held
            }
        };
        Ok((event_id, fate))
    }
}

/// The answer to an accepted delivery: 抖店 and 有赞 want exactly their
/// acknowledgement; Shopify only a 2xx, so it gets what happened.
fn ack(native: Native, detail: serde_json::Value) -> Response<Body> {
    match native {
        Native::Shopify => http::json(StatusCode::OK, &detail),
        Native::Doudian | Native::Youzan => {
            let body = match native {
                Native::Doudian => doudian::ACK,
                _ => youzan::ACK,
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("a static response")
        }
    }
}

fn refusal(e: DeliveryError) -> ApiError {
    match &e {
        DeliveryError::MissingHeader(h) if is_signature_header(h) => {
            ApiError::unauthorized("missing_signature", e.to_string())
        }
        DeliveryError::MissingHeader(_) => ApiError::bad_request("missing_header", e.to_string()),
        DeliveryError::BadSignature => ApiError::unauthorized("invalid_signature", e.to_string()),
        DeliveryError::WrongApp(_) => ApiError::unauthorized("wrong_app", e.to_string()),
        DeliveryError::Shape { .. } => ApiError::bad_request("invalid_delivery", e.to_string()),
    }
}

fn is_signature_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("hmac") || name.contains("sign")
}

fn unknown_store(platform: &Platform, store: &StoreId) -> ApiError {
    ApiError::not_found(
        "unknown_store",
        format!("{platform} store {store} is not connected"),
    )
}
