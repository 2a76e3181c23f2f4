//! Price lookup for ERP integrations:
//! `GET /v1/distributors/{id}/prices?sku=A&sku=B`.
//!
//! Answers, per SKU, what the distributor pays at its current tier, and the
//! rule that produced the price (see `tier_domain::pricing` for the
//! precedence). Read-only; one DynamoDB round trip for up to 98 SKUs.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tier_domain::ids::{DistributorId, Sku};
use tier_domain::pricing::{self, Quote};
use tier_runtime::http::{self, ApiError};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::Table;

/// SKUs per request: bounds the work and the response size.
pub const MAX_SKUS: usize = 100;

pub struct PriceLookup {
    table: Table,
}

#[derive(Debug, Serialize)]
pub struct TierRef {
    pub id: String,
    pub name: String,
    pub rank: u32,
}

#[derive(Debug, Serialize)]
pub struct PriceAnswer {
    pub distributor_id: DistributorId,
    pub tier: TierRef,
    pub rule_set_version: u64,
    pub currency: &'static str,
    pub prices: Vec<Quote>,
    /// Requested SKUs without a price book: reported, not an error, so one
    /// unknown SKU does not hide the prices of the rest.
    pub unknown_skus: Vec<Sku>,
}

impl PriceLookup {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        Ok(Self { table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?) })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        http::respond(self.lookup(req).await)
    }

    async fn lookup(&self, req: Request) -> Result<Response<Body>, ApiError> {
        let id = parse_path(req.uri().path())?;
        let mut skus = Vec::new();
        for raw in http::query_values(req.uri().query(), "sku") {
            let sku = Sku::parse(&raw).map_err(|e| ApiError::bad_request("invalid_sku", e.to_string()))?;
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        if skus.is_empty() {
            return Err(ApiError::bad_request("missing_sku", "give at least one sku query parameter: ?sku=A&sku=B"));
        }
        if skus.len() > MAX_SKUS {
            return Err(ApiError::bad_request("too_many_skus", format!("at most {MAX_SKUS} SKUs per request, got {}", skus.len())));
        }
        let view = self.table.price_view(&id, &skus).await?;
        let distributor = view.distributor.ok_or_else(|| ApiError::not_found("distributor_not_found", format!("distributor {id} does not exist")))?;
        let rules = view.rules.ok_or_else(|| ApiError::conflict("no_rule_set", "the brand has not published a rule set yet"))?;
        // A distributor registered before the first rule set sits in the
        // entry tier until it is evaluated.
        let tier = distributor.tier.as_ref().and_then(|t| rules.rules.tier_by_id(t.as_str())).unwrap_or_else(|| rules.rules.entry_tier());
        let mut prices = Vec::with_capacity(skus.len());
        let mut unknown_skus = Vec::new();
        for sku in skus {
            match view.prices.get(&sku) {
                Some(p) => prices.push(pricing::quote(p, tier)),
                None => unknown_skus.push(sku),
            }
        }
        let answer = PriceAnswer {
            distributor_id: id,
            tier: TierRef { id: tier.id.to_string(), name: tier.name.clone(), rank: tier.rank },
            rule_set_version: rules.version,
            currency: "CNY",
            prices,
            unknown_skus,
        };
        Ok(http::json(StatusCode::OK, &answer))
    }
}

fn parse_path(path: &str) -> Result<DistributorId, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "distributors", id, "prices"] => DistributorId::parse(id).map_err(|e| ApiError::bad_request("invalid_distributor_id", e.to_string())),
        _ => Err(ApiError::not_found("route_not_found", format!("no route for {path}"))),
    }
}
