//! What a distributor's integration reads about it besides prices: its
//! tier with the progress to the next, its tier history, its commission.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tier_domain::ids::DistributorId;
use tier_runtime::http::{self, ApiError};
use tier_store::distributors::TierView;

use tier_runtime::api_key;

use crate::{PriceLookup, TierRef};

impl PriceLookup {
    /// The caller's key checked against the distributor, with everything
    /// the endpoints below read, in one round trip.
    async fn authorized(
        &self,
        req: &Request,
        id: &str,
    ) -> Result<(DistributorId, TierView), ApiError> {
        let presented = api_key::presented(req)?;
        let id = DistributorId::parse(id)
            .map_err(|e| ApiError::bad_request("invalid_distributor_id", e.to_string()))?;
        let view = self
            .table
            .tier_view(&id, presented.id, self.calendar.day_of(Utc::now()))
            .await?;
        let key = api_key::authenticate(view.api_key.as_ref(), &presented)?;
        if !key.scope.may_read(&id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_distributor",
                format!("this API key may not read distributor {id}"),
            ));
        }
        if view.distributor.is_none() {
            return Err(ApiError::not_found(
                "distributor_not_found",
                format!("distributor {id} does not exist"),
            ));
        }
        Ok((id, view))
    }

    pub(crate) async fn tier(&self, req: &Request, id: &str) -> Result<Response<Body>, ApiError> {
        let (id, view) = self.authorized(req, id).await?;
        let (d, metrics) = view.distributor.expect("authorized checks it exists");
        let rules = view.rules.ok_or_else(|| {
            ApiError::conflict("no_rule_set", "the brand has not published a rule set yet")
        })?;
        let tier = d
            .tier
            .as_ref()
            .and_then(|t| rules.rules.tier_by_id(t.as_str()))
            .unwrap_or_else(|| rules.rules.entry_tier());
        let today = self.calendar.day_of(Utc::now());
        let month = today.month();
        // Each condition of the next tier's rule against where the distributor is now.
        let next = rules
            .rules
            .progress(&metrics, today, tier.rank)
            .map(|outcome| {
                let next = rules
                    .rules
                    .tier_by_rank(tier.rank + 1)
                    .expect("progress implies a next tier");
                let conditions: Vec<_> = outcome
                    .observed
                    .iter()
                    .map(|o| {
                        let mut c = json!(o);
                        c["remaining"] = json!(
                            (o.threshold - o.value)
                                .max(rust_decimal::Decimal::ZERO)
                                .to_string()
                        );
                        c
                    })
                    .collect();
                json!({"tier": TierRef::from(next), "met": outcome.met, "conditions": conditions})
            });
        // What keeps it here: the retention rule, or without one the upgrade
        // rule, which must then keep holding.
        let keeps = match (&tier.retention, &tier.upgrade) {
            (Some(c), _) => Some((format!("retention:{}", tier.id), c)),
            (None, Some(c)) => Some((format!("upgrade:{}", tier.id), c)),
            (None, None) => None,
        };
        let retention = keeps.map(|(rule, c)| {
            let mut observed = Vec::new();
            let met = c.eval(&metrics, today, &mut observed);
            json!({"rule": rule, "met": met, "conditions": observed})
        });
        Ok(http::json(
            StatusCode::OK,
            &json!({"distributor_id": id, "tier": TierRef::from(tier), "benefits": tier.benefits, "permissions": tier.permissions,
                    "upgraded_at": d.upgraded_at, "locked": d.tier_locked, "rule_set_version": rules.version, "month": month,
                    "next": next, "retention": retention}),
        ))
    }

    /// The balance, from the distributor's counters, and one page of its
    /// entries (`limit`, default 50, at most 200; `cursor` from the last
    /// page's `next_cursor`).
    pub(crate) async fn commission(
        &self,
        req: &Request,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let limit = limit_param(req, 50)?;
        let cursor = match http::query_values(req.uri().query(), "cursor").first() {
            None => None,
            Some(raw) => Some(tier_domain::OrderRef::parse(raw).map_err(|_| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor is the next_cursor of the previous page",
                )
            })?),
        };
        let (id, view) = self.authorized(req, id).await?;
        let (_, metrics) = view.distributor.expect("authorized checks it exists");
        let (entries, next_cursor) = self
            .table
            .commission_entries_page(&id, cursor.as_ref(), limit)
            .await?;
        let now = Utc::now();
        let balance = tier_domain::commission::balance(
            metrics.cumulative_commission,
            &metrics.frozen_commission,
            metrics.withdrawn_commission,
            self.calendar.day_of(now),
        );
        let policy = view
            .rules
            .map(|r| r.rules.commission().clone())
            .unwrap_or_default();
        Ok(http::json(
            StatusCode::OK,
            &json!({"distributor_id": id, "currency": "CNY", "as_of": now, "balance": balance, "settlement_days": policy.settlement_days,
                    "min_withdrawal": policy.min_withdrawal, "entries": entries, "next_cursor": next_cursor}),
        ))
    }

    pub(crate) async fn tier_history(
        &self,
        req: &Request,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let limit = limit_param(req, 50)?;
        let (id, _) = self.authorized(req, id).await?;
        let history = self.table.tier_history(&id, limit).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"distributor_id": id, "history": history}),
        ))
    }
}

/// `?limit=`: 1 to 200.
fn limit_param(req: &Request, default: i32) -> Result<i32, ApiError> {
    match http::query_values(req.uri().query(), "limit").first() {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit is 1 to 200")),
    }
}
