//! Price lookup for ERP integrations.
//!
//! - `GET /v1/distributors/{id}/prices?sku=A&sku=B&qty=10[&include=stock]`
//! - `POST /v1/prices:batch` with up to 100 (distributor, SKU, quantity).
//! - `GET /v1/distributors/{id}/tier`: the tier, and progress to the next.
//! - `GET /v1/distributors/{id}/tier-history`: every change, with its reason.
//! - `GET /v1/distributors/{id}/commission`: earned, frozen, withdrawable.
//!
//! Every answer is explained (see `tier_domain::pricing` for the
//! precedence) and fresh: reads are strongly consistent and nothing is
//! cached, so the lookup after a tier change or a new price book version
//! shows it. Two DynamoDB round trips whatever the number of SKUs: the
//! distributors, rule set, book version and API key; then the book entries.
//!
//! # Layout
//! - API keys and their scopes: `tier_runtime::api_key`.
//! - `distributor`: the tier, tier history and commission endpoints.

mod distributor;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tier_domain::ids::{DistributorId, Sku};
use tier_domain::pricing::{self, PriceQuote, QuoteRequest};
use tier_domain::rules::{Permission, Tier};
use tier_runtime::api_key;
use tier_runtime::http::{self, ApiError};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::Table;
use tier_store::price_book::{BookVersion, LookupHeads};
use tier_store::rules::PublishedRuleSet;

/// SKUs per GET, items per batch: bounds the work, keeps one round trip
/// for the book entries (BatchGetItem takes 100 keys).
pub const MAX_ITEMS: usize = 100;
/// Above any real order line; keeps arithmetic far from overflow.
pub const MAX_QUANTITY: u32 = 1_000_000;
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct PriceLookup {
    table: Table,
    calendar: tier_domain::calendar::BrandCalendar,
}

#[derive(Debug, Serialize)]
pub struct TierRef {
    pub id: String,
    pub name: String,
    pub rank: u32,
}

impl From<&Tier> for TierRef {
    fn from(t: &Tier) -> Self {
        TierRef {
            id: t.id.to_string(),
            name: t.name.clone(),
            rank: t.rank,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    items: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    distributor_id: DistributorId,
    sku: Sku,
    #[serde(default = "one")]
    quantity: u32,
}

fn one() -> u32 {
    1
}

/// The rule set and book a lookup prices against.
struct Basis<'a> {
    rules: &'a PublishedRuleSet,
    book: BookVersion,
}

impl<'a> Basis<'a> {
    fn from(heads: &'a LookupHeads) -> Result<Self, ApiError> {
        let rules = heads.rules.as_ref().ok_or_else(|| {
            ApiError::conflict("no_rule_set", "the brand has not published a rule set yet")
        })?;
        let book = heads.book.ok_or_else(|| {
            ApiError::conflict(
                "no_price_book",
                "the brand has not published a price book yet",
            )
        })?;
        Ok(Self { rules, book })
    }

    /// The distributor's tier; one registered before the first rule set,
    /// or in a tier a newer rule set dropped, prices as the entry tier.
    fn tier(&self, heads: &LookupHeads, id: &DistributorId) -> Option<&'a Tier> {
        let d = heads.distributors.get(id)?;
        Some(
            d.tier
                .as_ref()
                .and_then(|t| self.rules.rules.tier_by_id(t.as_str()))
                .unwrap_or_else(|| self.rules.rules.entry_tier()),
        )
    }
}

/// Whether API Gateway routed the request by its `$default` route.
fn unmatched(req: &Request) -> bool {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    matches!(req.request_context_ref(), Some(RequestContext::ApiGatewayV2(c)) if c.route_key.as_deref() == Some("$default"))
}

fn quote_one(
    basis: &Basis<'_>,
    entry: &tier_domain::pricing::SkuBook,
    tier: &Tier,
    distributor: &DistributorId,
    quantity: u32,
    at: DateTime<Utc>,
) -> PriceQuote {
    pricing::quote(&QuoteRequest {
        book: entry,
        tier,
        distributor,
        quantity,
        at,
        promotions_allowed: tier.may(Permission::SeePromotions),
        book_published_at: basis.book.published_at,
    })
}

impl PriceLookup {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
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
            calendar,
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.uri().path().to_owned();
        // What only the API's `$default` route brought here matched none of
        // ours in API Gateway, whatever it looks like once trimmed (a
        // trailing slash, an empty segment): not a lookup.
        if unmatched(&req) {
            return http::respond(Err(ApiError::not_found(
                "route_not_found",
                format!("no route for {} {path}", req.method()),
            )));
        }
        let segments = match http::path_segments(&path) {
            Ok(segments) => segments,
            Err(e) => return http::respond(Err(e)),
        };
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        let result = match (req.method().clone(), parts.as_slice()) {
            (Method::GET, ["v1", "distributors", id, "prices"]) => self.prices(&req, id).await,
            (Method::POST, ["v1", "prices:batch"]) => self.batch(&req).await,
            (Method::GET, ["v1", "distributors", id, "tier"]) => self.tier(&req, id).await,
            (Method::GET, ["v1", "distributors", id, "tier-history"]) => {
                self.tier_history(&req, id).await
            }
            (Method::GET, ["v1", "distributors", id, "commission"]) => {
                self.commission(&req, id).await
            }
            (m, _) => Err(ApiError::not_found(
                "route_not_found",
                format!("no route for {m} {path}"),
            )),
        };
        http::respond(result)
    }

    async fn prices(&self, req: &Request, id: &str) -> Result<Response<Body>, ApiError> {
        let presented = api_key::presented(req)?;
        let id = DistributorId::parse(id)
            .map_err(|e| ApiError::bad_request("invalid_distributor_id", e.to_string()))?;
        let query = req.uri().query();
        let mut skus: Vec<Sku> = Vec::new();
        for raw in http::query_values(query, "sku") {
            let sku = Sku::parse(&raw)
                .map_err(|e| ApiError::bad_request("invalid_sku", e.to_string()))?;
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        if skus.is_empty() {
            return Err(ApiError::bad_request(
                "missing_sku",
                "give at least one sku query parameter: ?sku=A&sku=B",
            ));
        }
        if skus.len() > MAX_ITEMS {
            return Err(ApiError::bad_request(
                "too_many_skus",
                format!("at most {MAX_ITEMS} SKUs per request, got {}", skus.len()),
            ));
        }
        let quantities = parse_quantities(&http::query_values(query, "qty"), skus.len())?;
        let include_stock = http::query_values(query, "include")
            .iter()
            .any(|v| v.split(',').any(|p| p == "stock"));

        let heads = self
            .table
            .lookup_heads(std::slice::from_ref(&id), Some(presented.id))
            .await?;
        let key = api_key::authenticate(heads.api_key.as_ref(), &presented)?;
        if !key.scope.may_read(&id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_distributor",
                format!("this API key may not read distributor {id}"),
            ));
        }
        if !heads.distributors.contains_key(&id) {
            return Err(ApiError::not_found(
                "distributor_not_found",
                format!("distributor {id} does not exist"),
            ));
        }
        let basis = Basis::from(&heads)?;
        let tier = basis.tier(&heads, &id).expect("the distributor was found");
        if include_stock && !tier.may(Permission::SeeStock) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                format!("tier {} may not see stock levels", tier.id),
            ));
        }
        let (entries, stock) = self
            .table
            .book_entries(basis.book.version, &skus, include_stock)
            .await?;
        let at = Utc::now();
        let mut prices = Vec::with_capacity(skus.len());
        let mut unknown_skus = Vec::new();
        for (sku, qty) in skus.iter().zip(quantities) {
            match entries.get(sku) {
                Some(entry) => prices.push(quote_one(&basis, entry, tier, &id, qty, at)),
                None => unknown_skus.push(sku.clone()),
            }
        }
        let mut answer = json!({
            "distributor_id": id,
            "tier": TierRef::from(tier),
            "rule_set_version": basis.rules.version,
            "price_book_version": basis.book.version,
            "currency": "CNY",
            "priced_at": at,
            "prices": prices,
            // Requested SKUs not in the book: reported, not an error, so one
            // unknown SKU does not hide the prices of the rest.
            "unknown_skus": unknown_skus,
        });
        if include_stock {
            // What this distributor's orders may draw on: the pool and its
            // tier's reserve, never another tier's.
            let levels: HashMap<&Sku, u64> = skus
                .iter()
                .map(|s| {
                    (
                        s,
                        stock.get(s).map_or(0, |st| st.available_to(Some(&tier.id))),
                    )
                })
                .collect();
            answer["stock"] = json!(levels);
        }
        Ok(http::json(StatusCode::OK, &answer))
    }

    async fn batch(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let presented = api_key::presented(req)?;
        let body: BatchRequest = http::parse_json(http::body_bytes(req.body(), MAX_BODY_BYTES)?)?;
        if body.items.is_empty() || body.items.len() > MAX_ITEMS {
            return Err(ApiError::bad_request(
                "invalid_batch_size",
                format!("1 to {MAX_ITEMS} items per batch, got {}", body.items.len()),
            ));
        }
        if let Some(bad) = body
            .items
            .iter()
            .position(|i| i.quantity == 0 || i.quantity > MAX_QUANTITY)
        {
            return Err(ApiError::unprocessable(
                "invalid_quantity",
                format!("items[{bad}].quantity must be 1 to {MAX_QUANTITY}"),
            ));
        }
        let mut distributors: Vec<DistributorId> = body
            .items
            .iter()
            .map(|i| i.distributor_id.clone())
            .collect();
        distributors.sort();
        distributors.dedup();
        let heads = self
            .table
            .lookup_heads(&distributors, Some(presented.id))
            .await?;
        let key = api_key::authenticate(heads.api_key.as_ref(), &presented)?;
        let basis = Basis::from(&heads)?;
        let mut skus: Vec<Sku> = body.items.iter().map(|i| i.sku.clone()).collect();
        skus.sort();
        skus.dedup();
        let (entries, _) = self
            .table
            .book_entries(basis.book.version, &skus, false)
            .await?;
        let at = Utc::now();
        let results: Vec<serde_json::Value> = body
            .items
            .iter()
            .map(|item| {
                let error = |code: &str, message: String| json!({"distributor_id": item.distributor_id, "sku": item.sku, "quantity": item.quantity, "error": {"code": code, "message": message}});
                if !key.scope.may_read(&item.distributor_id) {
                    return error("forbidden_distributor", format!("this API key may not read distributor {}", item.distributor_id));
                }
                let Some(tier) = basis.tier(&heads, &item.distributor_id) else {
                    return error("distributor_not_found", format!("distributor {} does not exist", item.distributor_id));
                };
                let Some(entry) = entries.get(&item.sku) else {
                    return error("unknown_sku", format!("SKU {} is not in price book version {}", item.sku, basis.book.version));
                };
                json!({"distributor_id": item.distributor_id, "sku": item.sku, "quantity": item.quantity, "tier": TierRef::from(tier),
                       "price": quote_one(&basis, entry, tier, &item.distributor_id, item.quantity, at)})
            })
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({"rule_set_version": basis.rules.version, "price_book_version": basis.book.version, "currency": "CNY", "priced_at": at, "results": results}),
        ))
    }
}

/// `qty` is absent (1 each), one value for every SKU, or one per SKU in order.
fn parse_quantities(raw: &[String], skus: usize) -> Result<Vec<u32>, ApiError> {
    let parsed: Vec<u32> = raw
        .iter()
        .map(|q| {
            q.parse::<u32>()
                .ok()
                .filter(|q| (1..=MAX_QUANTITY).contains(q))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_quantity",
                format!("qty must be a whole number from 1 to {MAX_QUANTITY}"),
            )
        })?;
    match parsed.len() {
        0 => Ok(vec![1; skus]),
        1 => Ok(vec![parsed[0]; skus]),
        n if n == skus => Ok(parsed),
        n => Err(ApiError::bad_request(
            "invalid_quantity",
            format!("give one qty for all SKUs or one per SKU; got {n} for {skus} SKUs"),
        )),
    }
}
