//! The brand's admin API, `/v1/admin/...`, behind an admin key
//! (`X-Admin-Key`). A function of its own so that price lookup keeps a
//! read-only role and the write paths scale and fail on their own.
//!
//! | method | path | does |
//! |---|---|---|
//! | PUT | `/v1/admin/rule-set` | validate and publish a rule set as the next version |
//! | GET | `/v1/admin/rule-set` | the current rule set and its version |
//! | PUT | `/v1/admin/distributors/{id}` | register a distributor (`name`, `upline`, `region`) |
//! | GET | `/v1/admin/distributors/{id}` | profile, metrics and tier history |
//! | PUT | `/v1/admin/stores/{platform}/{store}` | map a platform store to its distributor |
//! | PUT | `/v1/admin/skus/{sku}/prices` | the SKU's base price and fixed tier prices |
//! | PUT | `/v1/admin/skus/{sku}/stock` | set the stock available to reserve |
//! | GET | `/v1/admin/skus/{sku}/stock` | the stock available |
//! | GET | `/v1/admin/orders/{platform}/{store}/{order}/reservations` | an order's line reservations |

use std::collections::BTreeMap;

use chrono::Utc;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use tier_domain::ids::{DistributorId, OrderId, OrderRef, Platform, Sku, StoreId, TierId};
use tier_domain::money::Money;
use tier_domain::pricing::SkuPrices;
use tier_domain::rules::{RuleSet, RuleSetDoc};
use tier_domain::tier::{Cause, Direction, TierChange};
use tier_runtime::http::{self, ApiError};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::Table;
use tier_store::distributors::{Distributor, RegisterError, StoreRegisterError};

const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct AdminApi {
    table: Table,
    admin_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDistributor {
    name: String,
    #[serde(default)]
    upline: Option<DistributorId>,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreOwner {
    distributor: DistributorId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    base_price: Money,
    #[serde(default)]
    tier_prices: BTreeMap<TierId, Money>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    available: u64,
}

fn id<T>(raw: &str, parse: fn(&str) -> Result<T, tier_domain::ids::IdError>) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))
}

impl AdminApi {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        let admin_key = env.require("ADMIN_API_KEY")?.to_owned();
        if admin_key.len() < 32 {
            return Err(ConfigError::Invalid { name: "ADMIN_API_KEY", reason: "needs at least 32 characters".into() });
        }
        Ok(Self { table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?), admin_key })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        http::respond(self.route(req).await)
    }

    async fn route(&self, req: Request) -> Result<Response<Body>, ApiError> {
        match http::header(req.headers(), "x-admin-key") {
            None => return Err(ApiError::unauthorized("missing_admin_key", "send the admin key in the X-Admin-Key header")),
            Some(k) if !http::secret_matches(k, &self.admin_key) => return Err(ApiError::unauthorized("invalid_admin_key", "the admin key is not valid")),
            Some(_) => {}
        }
        let path = req.uri().path().to_owned();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body = http::body_bytes(req.body(), MAX_BODY_BYTES)?;
        let method = req.method().clone();
        match (method, parts.as_slice()) {
            (Method::PUT, ["v1", "admin", "rule-set"]) => self.publish_rule_set(body).await,
            (Method::GET, ["v1", "admin", "rule-set"]) => self.get_rule_set().await,
            (Method::PUT, ["v1", "admin", "distributors", d]) => self.register_distributor(id(d, DistributorId::parse)?, body).await,
            (Method::GET, ["v1", "admin", "distributors", d]) => self.get_distributor(id(d, DistributorId::parse)?).await,
            (Method::PUT, ["v1", "admin", "stores", p, s]) => self.register_store(id(p, Platform::parse)?, id(s, StoreId::parse)?, body).await,
            (Method::PUT, ["v1", "admin", "skus", s, "prices"]) => self.put_prices(id(s, Sku::parse)?, body).await,
            (Method::PUT, ["v1", "admin", "skus", s, "stock"]) => self.put_stock(id(s, Sku::parse)?, body).await,
            (Method::GET, ["v1", "admin", "skus", s, "stock"]) => self.get_stock(id(s, Sku::parse)?).await,
            (Method::GET, ["v1", "admin", "orders", p, s, o, "reservations"]) => {
                let order = OrderRef { platform: id(p, Platform::parse)?, store: id(s, StoreId::parse)?, order_id: id(o, OrderId::parse)? };
                let lines = self.table.reservations(&order).await?;
                let lines: BTreeMap<String, _> = lines.into_iter().map(|(l, r)| (l.to_string(), r)).collect();
                Ok(http::json(StatusCode::OK, &json!({"order": order, "lines": lines})))
            }
            (m, _) => Err(ApiError::not_found("route_not_found", format!("no admin route for {m} {path}"))),
        }
    }

    async fn publish_rule_set(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let doc: RuleSetDoc = http::parse_json(body).map_err(|e| ApiError { code: if e.code == "invalid_document" { "invalid_rule_set" } else { e.code }, ..e })?;
        let rules = RuleSet::new(doc).map_err(|e| {
            let problems: Vec<String> = e.0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
            ApiError::unprocessable("invalid_rule_set", problems.join("; "))
        })?;
        let version = self.table.publish_rule_set(&rules, Utc::now()).await?;
        tracing::info!(version, "rule set published");
        Ok(http::json(StatusCode::CREATED, &json!({"version": version, "tiers": rules.tiers().len()})))
    }

    async fn get_rule_set(&self) -> Result<Response<Body>, ApiError> {
        let current = self.table.current_rule_set().await?.ok_or_else(|| ApiError::not_found("no_rule_set", "no rule set has been published"))?;
        Ok(http::json(StatusCode::OK, &json!({"version": current.version, "published_at": current.published_at, "rule_set": current.rules.doc()})))
    }

    async fn register_distributor(&self, id: DistributorId, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let new: NewDistributor = http::parse_json(body)?;
        if new.name.trim().is_empty() || new.name.chars().count() > 128 {
            return Err(ApiError::unprocessable("invalid_document", "name: 1 to 128 characters"));
        }
        if new.upline.as_ref() == Some(&id) {
            return Err(ApiError::unprocessable("invalid_upline", "a distributor cannot be its own upline"));
        }
        let now = Utc::now();
        // Everyone starts in the entry tier of the current rule set, with the
        // assignment recorded as the first history entry.
        let rules = self.table.current_rule_set().await?;
        let entry = rules.as_ref().map(|r| TierChange {
            from: None,
            to: r.rules.entry_tier().id.clone(),
            direction: Direction::Up,
            rule_set_version: r.version,
            reasons: Vec::new(),
            cause: Cause::Assignment,
            at: now,
        });
        let d = Distributor {
            id: id.clone(),
            name: new.name,
            upline: new.upline,
            region: new.region,
            tier: entry.as_ref().map(|e| e.to.clone()),
            tier_version: u64::from(entry.is_some()),
            created_at: now,
        };
        self.table.register_distributor(&d, entry.as_ref()).await.map_err(|e| match e {
            RegisterError::AlreadyExists(_) => ApiError::conflict("distributor_exists", e.to_string()),
            RegisterError::UnknownUpline(_) => ApiError::unprocessable("unknown_upline", e.to_string()),
            RegisterError::Store(s) => s.into(),
        })?;
        Ok(http::json(StatusCode::CREATED, &d))
    }

    async fn get_distributor(&self, id: DistributorId) -> Result<Response<Body>, ApiError> {
        let (profile, metrics) = self
            .table
            .distributor_with_metrics(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("distributor_not_found", format!("distributor {id} does not exist")))?;
        let history = self.table.tier_history(&id, 50).await?;
        Ok(http::json(StatusCode::OK, &json!({"distributor": profile, "metrics": metrics, "tier_history": history})))
    }

    async fn register_store(&self, platform: Platform, store: StoreId, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let owner: StoreOwner = http::parse_json(body)?;
        self.table.register_store(&platform, &store, &owner.distributor).await.map_err(|e| match e {
            StoreRegisterError::UnknownDistributor(_) => ApiError::unprocessable("unknown_distributor", e.to_string()),
            StoreRegisterError::OwnedByAnother { .. } => ApiError::conflict("store_owned_by_another", e.to_string()),
            StoreRegisterError::Store(s) => s.into(),
        })?;
        Ok(http::json(StatusCode::OK, &json!({"platform": platform, "store": store, "distributor": owner.distributor})))
    }

    async fn put_prices(&self, sku: Sku, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let b: PriceBody = http::parse_json(body)?;
        let prices = SkuPrices { sku, base_price: b.base_price, tier_prices: b.tier_prices };
        prices.validate().map_err(|e| ApiError::unprocessable("invalid_price", e.to_string()))?;
        if let Some(rules) = self.table.current_rule_set().await?
            && let Some(unknown) = prices.tier_prices.keys().find(|t| rules.rules.tier_by_id(t.as_str()).is_none())
        {
            return Err(ApiError::unprocessable("unknown_tier", format!("tier {unknown} is not in rule set version {}", rules.version)));
        }
        self.table.put_prices(&prices, Utc::now()).await?;
        Ok(http::json(StatusCode::OK, &prices))
    }

    async fn put_stock(&self, sku: Sku, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let b: StockBody = http::parse_json(body)?;
        if b.available > 1_000_000_000 {
            return Err(ApiError::unprocessable("invalid_stock", "available must be at most 1,000,000,000"));
        }
        if self.table.prices(std::slice::from_ref(&sku)).await?.is_empty() {
            return Err(ApiError::unprocessable("unknown_sku", format!("SKU {sku} has no price book; set its prices first")));
        }
        self.table.set_stock(&sku, b.available, Utc::now()).await?;
        Ok(http::json(StatusCode::OK, &json!({"sku": sku, "available": b.available})))
    }

    async fn get_stock(&self, sku: Sku) -> Result<Response<Body>, ApiError> {
        let available = self.table.stock(&sku).await?.ok_or_else(|| ApiError::not_found("stock_not_found", format!("SKU {sku} has no stock record")))?;
        Ok(http::json(StatusCode::OK, &json!({"sku": sku, "available": available})))
    }
}
