//! The brand's admin API, `/v1/admin/...`, behind an admin key
//! (`X-Admin-Key`), and the shipping queue, `/v1/fulfilment/...`, behind an
//! API key of the `fulfilment` scope (see `fulfilment`). A function of its
//! own so that price lookup keeps a read-only role and the write paths
//! scale and fail on their own.
//!
//! | method | path | does |
//! |---|---|---|
//! | PUT | `/v1/admin/rule-set` | validate and publish a rule set as the next version |
//! | GET | `/v1/admin/rule-set` | the current rule set and its version |
//! | PUT | `/v1/admin/distributors/{id}` | register a distributor (`name`, `upline`, `region`) |
//! | GET | `/v1/admin/distributors/{id}` | profile, metrics and tier history |
//! | PUT | `/v1/admin/distributors/{id}/tier` | manual override with a reason, optionally locked |
//! | DELETE | `/v1/admin/distributors/{id}/tier-lock` | lift a lock: automatic changes resume |
//! | POST | `/v1/admin/distributors/{id}/withdrawals` | pay out withdrawable commission, once per request id |
//! | PUT | `/v1/admin/what-ifs/{id}` | start evaluating a draft rule set against every distributor, changing nothing |
//! | GET | `/v1/admin/what-ifs/{id}` | a what-if's progress and who would move |
//! | POST | `/v1/admin/rule-set:backfill` | count the ledger into what the current rule set reads by day or by SKU |
//! | PUT | `/v1/admin/stores/{platform}/{store}` | map a platform store to its distributor (and, for Shopify, 抖店 and 有赞, the app it is connected through) |
//! | PUT | `/v1/admin/stores/{platform}/{store}/sku-mapping` | publish a store's SKU mapping (CSV or JSON); releases what it resolves |
//! | PUT | `/v1/admin/platform-apps/{platform}/{app}` | register a platform app, or rotate its secret (kept in Secrets Manager, never shown) |
//! | GET | `/v1/admin/platform-apps/{platform}/{app}` | an app, without its secrets |
//! | GET | `/v1/admin/orders?status=held` | orders held with their reasons, oldest first |
//! | POST | `/v1/admin/orders:release` | translate held orders again, queueing what can now be counted, and ask again for the lines of those still without them |
//! | PUT | `/v1/admin/price-book` | validate and publish a price book (CSV or JSON) as the next version |
//! | GET | `/v1/admin/price-book` | the current version and its promotions |
//! | POST | `/v1/admin/api-keys` | create an API key (shown once) |
//! | GET | `/v1/admin/api-keys` | list the keys |
//! | DELETE | `/v1/admin/api-keys/{id}` | revoke a key |
//! | PUT | `/v1/admin/skus/{sku}/stock` | count a SKU's stock: on hand, or the units free beside what orders hold |
//! | GET | `/v1/admin/skus/{sku}/stock` | a SKU's stock: on hand, the pool, reserves by tier, allocated, backordered, and the reserve plan with its inputs |
//! | POST | `/v1/admin/stock:sync` | the ERP's stock: every SKU's count (snapshot) or what changed (deltas, once per sync id), CSV or JSON; a file with a bad line changes nothing |
//! | PUT | `/v1/admin/skus/{sku}/reserves` | set the units kept for each tier; the pool takes up the difference (refused where the rule set plans them) |
//! | POST | `/v1/admin/stock:plan` | compute reserve plans now: one SKU's, or every SKU's in the price book |
//! | PUT | `/v1/admin/distributors/{id}/shards` | spread a hot seller's counters over 0 to 64 shards, so its orders, and the commission they pay its receivers, write different items |
//! | PUT | `/v1/admin/skus/{sku}/buckets` | spread a hot SKU's pool over 0 to 64 buckets, so its payments write different items |
//! | GET | `/v1/admin/orders/{platform}/{store}/{order}/reservations` | an order's line reservations |
//! | GET | `/v1/admin/dead-letters?queue=` | what a queue's consumer parked, with each reason |
//! | POST | `/v1/admin/dead-letters:redrive` | move dead letters back to their queue, optionally of one failure code |

use std::collections::BTreeMap;

use chrono::Utc;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tier_domain::access::{self, ApiKey, Scope};
use tier_domain::ids::{
    AppId, DistributorId, OrderId, OrderRef, Platform, Sku, StoreId, TierId, WhatIfId,
};
use tier_domain::pricing::PriceBookDraft;
use tier_domain::rules::{RuleSet, RuleSetDoc};
use tier_domain::tier::{Cause, Direction, TierChange};
use tier_runtime::http::{self, ApiError};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::Table;
use tier_store::distributors::{Distributor, RegisterError, StoreRegisterError};

// The handlers, by what they administer; each module adds its methods to
// `AdminApi` and uses the imports above.
mod analytics;
mod api_keys;
mod catalog;
mod dead_letters;
mod distributors;
mod fulfilment;
mod listing;
mod platforms;
mod reviews;
mod rule_sets;

/// Price books are the largest bodies: 50,000 rows of CSV fit.
const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

pub struct AdminApi {
    table: Table,
    /// Tier evaluation's queue: a new distributor's ancestors are re-evaluated through it.
    tier_events: tier_store::Queue,
    admin_key: String,
    calendar: tier_domain::calendar::BrandCalendar,
    /// The brand's decline rule: what region analytics judge by default,
    /// as the alerts job does.
    decline: tier_domain::analytics::DeclineRule,
    /// When a backfill's second pass starts; 0: no second pass.
    backfill_recheck_secs: u32,
    dead_letters: dead_letters::DeadLetterQueues,
    /// Platform apps' signing secrets.
    secrets: tier_store::secrets::SecretStore,
    /// The brand's currency: a held order in another stays held.
    currency: String,
    /// Where a held order without its lines asks for them again.
    order_details: tier_store::Queue,
}

/// Media types are case-insensitive: `TEXT/CSV` is CSV.
fn is_csv(headers: &lambda_http::http::HeaderMap) -> bool {
    http::header(headers, "content-type").is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
    })
}

fn id<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, tier_domain::ids::IdError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))
}

impl AdminApi {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        let admin_key = env.require("ADMIN_API_KEY")?.to_owned();
        if admin_key.len() < 32 {
            return Err(ConfigError::Invalid {
                name: "ADMIN_API_KEY",
                reason: "needs at least 32 characters".into(),
            });
        }
        let calendar = tier_domain::calendar::BrandCalendar::parse(
            env.get("BRAND_TIMEZONE")
                .unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE),
        )
        .map_err(|e| ConfigError::Invalid {
            name: "BRAND_TIMEZONE",
            reason: e.to_string(),
        })?;
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            tier_events: tier_store::Queue::new(
                aws.sqs.clone(),
                env.require("TIER_EVENTS_QUEUE_URL")?,
            ),
            admin_key,
            calendar,
            decline: tier_runtime::env::decline_rule(env)?,
            secrets: tier_store::secrets::SecretStore::new(
                aws_sdk_secretsmanager::Client::new(&aws.sdk),
                env.require("PLATFORM_SECRETS_PREFIX")?,
            ),
            currency: env.get("BRAND_CURRENCY").unwrap_or("CNY").to_owned(),
            order_details: tier_store::Queue::new(
                aws.sqs.clone(),
                env.require("ORDER_DETAIL_QUEUE_URL")?,
            ),
            backfill_recheck_secs: env.parse_or("BACKFILL_RECHECK_SECONDS", 900u32)?.min(900),
            dead_letters: dead_letters::DeadLetterQueues {
                tier_events: dead_letters::Parked {
                    source: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("TIER_EVENTS_QUEUE_URL")?,
                    ),
                    dead: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("TIER_EVENTS_DLQ_URL")?,
                    ),
                },
                stock_events: dead_letters::Parked {
                    source: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("STOCK_EVENTS_QUEUE_URL")?,
                    ),
                    dead: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("STOCK_EVENTS_DLQ_URL")?,
                    ),
                },
                order_details: dead_letters::Parked {
                    source: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("ORDER_DETAIL_QUEUE_URL")?,
                    ),
                    dead: tier_store::Queue::new(
                        aws.sqs.clone(),
                        env.require("ORDER_DETAIL_DLQ_URL")?,
                    ),
                },
            },
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        http::respond(self.route(req).await)
    }

    async fn route(&self, req: Request) -> Result<Response<Body>, ApiError> {
        let segments = http::path_segments(req.uri().path())?;
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        // The shipping queue answers to API keys, not to the admin key.
        if parts.starts_with(&["v1", "fulfilment"]) {
            let body = http::body_bytes(req.body(), MAX_BODY_BYTES)?;
            return self.fulfilment(&req, &parts, body).await;
        }
        match http::header(req.headers(), "x-admin-key") {
            None => {
                return Err(ApiError::unauthorized(
                    "missing_admin_key",
                    "send the admin key in the X-Admin-Key header",
                ));
            }
            Some(k) if !http::secret_matches(k, &self.admin_key) => {
                return Err(ApiError::unauthorized(
                    "invalid_admin_key",
                    "the admin key is not valid",
                ));
            }
            Some(_) => {}
        }
        let body = http::body_bytes(req.body(), MAX_BODY_BYTES)?;
        let method = req.method().clone();
        match (method, parts.as_slice()) {
            (Method::PUT, ["v1", "admin", "rule-set"]) => self.publish_rule_set(body).await,
            (Method::GET, ["v1", "admin", "rule-set"]) => self.get_rule_set().await,
            (Method::GET, ["v1", "admin", "distributors"]) => {
                self.list_distributors(req.uri().query()).await
            }
            (Method::GET, ["v1", "admin", "distributors:about-to-move"]) => {
                self.about_to_move(req.uri().query()).await
            }
            (Method::PUT, ["v1", "admin", "distributors", d]) => {
                self.register_distributor(id(d, DistributorId::parse)?, body)
                    .await
            }
            (Method::GET, ["v1", "admin", "distributors", d]) => {
                self.get_distributor(id(d, DistributorId::parse)?).await
            }
            (Method::PUT, ["v1", "admin", "distributors", d, "tier"]) => {
                let actor = http::header(req.headers(), "x-actor")
                    .unwrap_or("admin")
                    .chars()
                    .take(128)
                    .collect();
                self.set_tier(id(d, DistributorId::parse)?, actor, body)
                    .await
            }
            (Method::PUT, ["v1", "admin", "distributors", d, "shards"]) => {
                self.put_shards(id(d, DistributorId::parse)?, body).await
            }
            (Method::PUT, ["v1", "admin", "distributors", d, "tier-lock"]) => {
                let d = id(d, DistributorId::parse)?;
                if !self.table.lock_tier(&d).await? {
                    return Err(ApiError::not_found(
                        "distributor_not_found",
                        format!("distributor {d} does not exist"),
                    ));
                }
                Ok(http::json(
                    StatusCode::OK,
                    &json!({"distributor_id": d, "locked": true}),
                ))
            }
            (Method::DELETE, ["v1", "admin", "distributors", d, "tier-lock"]) => {
                let d = id(d, DistributorId::parse)?;
                if !self.table.unlock_tier(&d).await? {
                    return Err(ApiError::not_found(
                        "distributor_not_found",
                        format!("distributor {d} does not exist"),
                    ));
                }
                Ok(http::json(
                    StatusCode::OK,
                    &json!({"distributor_id": d, "locked": false}),
                ))
            }
            (Method::PUT, ["v1", "admin", "what-ifs", w]) => {
                self.start_what_if(id(w, WhatIfId::parse)?, body).await
            }
            (Method::GET, ["v1", "admin", "what-ifs", w]) => {
                self.get_what_if(id(w, WhatIfId::parse)?).await
            }
            (Method::POST, ["v1", "admin", "rule-set:backfill"]) => self.backfill_rule_set().await,
            (Method::GET, ["v1", "admin", "analytics", "regions"]) => {
                self.region_analytics(req.uri().query()).await
            }
            (Method::GET, ["v1", "admin", "analytics", "tiers"]) => {
                self.tier_analytics(req.uri().query()).await
            }
            (Method::GET, ["v1", "admin", "analytics", "price-disorder"]) => {
                self.price_disorder(req.uri().query()).await
            }
            (Method::POST, ["v1", "admin", "reviews"]) => self.start_review(body).await,
            (Method::GET, ["v1", "admin", "reviews", p]) => self.get_review(p).await,
            (Method::POST, ["v1", "admin", "distributors", d, "withdrawals"]) => {
                self.withdraw(id(d, DistributorId::parse)?, body).await
            }
            (Method::PUT, ["v1", "admin", "stores", p, s]) => {
                self.register_store(id(p, Platform::parse)?, id(s, StoreId::parse)?, body)
                    .await
            }
            (Method::PUT, ["v1", "admin", "stores", p, s, "sku-mapping"]) => {
                let csv = is_csv(req.headers());
                self.publish_sku_mapping(id(p, Platform::parse)?, id(s, StoreId::parse)?, body, csv)
                    .await
            }
            (Method::PUT, ["v1", "admin", "platform-apps", p, a]) => {
                self.put_platform_app(id(p, Platform::parse)?, id(a, AppId::parse)?, body)
                    .await
            }
            (Method::GET, ["v1", "admin", "platform-apps", p, a]) => {
                self.get_platform_app(id(p, Platform::parse)?, id(a, AppId::parse)?)
                    .await
            }
            (Method::GET, ["v1", "admin", "orders"]) => self.list_orders(req.uri().query()).await,
            (Method::POST, ["v1", "admin", "orders:release"]) => self.release_orders(body).await,
            (Method::PUT, ["v1", "admin", "price-book"]) => {
                self.publish_price_book(body, is_csv(req.headers())).await
            }
            (Method::GET, ["v1", "admin", "price-book"]) => self.get_price_book().await,
            (Method::GET, ["v1", "admin", "dead-letters"]) => {
                self.list_dead_letters(req.uri().query()).await
            }
            (Method::POST, ["v1", "admin", "dead-letters:redrive"]) => self.redrive(body).await,
            (Method::POST, ["v1", "admin", "api-keys"]) => self.create_api_key(body).await,
            (Method::GET, ["v1", "admin", "api-keys"]) => Ok(http::json(
                StatusCode::OK,
                &json!({"keys": self.table.list_api_keys().await?}),
            )),
            (Method::DELETE, ["v1", "admin", "api-keys", key]) => self.revoke_api_key(key).await,
            (Method::PUT, ["v1", "admin", "skus", s, "stock"]) => {
                self.put_stock(id(s, Sku::parse)?, body).await
            }
            (Method::GET, ["v1", "admin", "skus", s, "stock"]) => {
                self.get_stock(id(s, Sku::parse)?).await
            }
            (Method::POST, ["v1", "admin", "stock:sync"]) => {
                self.sync_stock(body, req.uri().query(), is_csv(req.headers()))
                    .await
            }
            (Method::POST, ["v1", "admin", "stock:plan"]) => self.run_plans(body).await,
            (Method::PUT, ["v1", "admin", "skus", s, "reserves"]) => {
                self.put_reserves(id(s, Sku::parse)?, body).await
            }
            (Method::PUT, ["v1", "admin", "skus", s, "buckets"]) => {
                self.put_buckets(id(s, Sku::parse)?, body).await
            }
            (Method::GET, ["v1", "admin", "orders", p, s, o, "reservations"]) => {
                let order = OrderRef {
                    platform: id(p, Platform::parse)?,
                    store: id(s, StoreId::parse)?,
                    order_id: id(o, OrderId::parse)?,
                };
                let (record, _) = self.table.order_stock(&order).await?;
                let lines: BTreeMap<String, _> = record
                    .lines
                    .into_iter()
                    .map(|(l, r)| (l.to_string(), r))
                    .collect();
                Ok(http::json(
                    StatusCode::OK,
                    &json!({"order": order, "lines": lines}),
                ))
            }
            (m, _) => Err(ApiError::not_found(
                "route_not_found",
                format!("no admin route for {m} {}", req.uri().path()),
            )),
        }
    }
}
