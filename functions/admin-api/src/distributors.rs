//! Distributors: registration into a network, stores, manual tier
//! overrides and commission withdrawals.

use super::*;
use tier_store::shards::ShardsError;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardsBody {
    /// Shards the distributor's counters are spread over; 0: its metrics
    /// item alone.
    shards: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawalRequest {
    /// The payout system's id for the request: a retry pays once.
    request_id: tier_domain::ids::EventId,
    amount: tier_domain::money::Money,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualTier {
    tier: tier_domain::ids::TierId,
    reason: String,
    #[serde(default)]
    lock: bool,
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
    /// The platform app the store is connected through (Shopify, 抖店,
    /// 有赞 only).
    #[serde(default)]
    app: Option<tier_domain::ids::AppId>,
}

impl AdminApi {
    pub(crate) async fn register_distributor(
        &self,
        id: DistributorId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let new: NewDistributor = http::parse_json(body)?;
        if new.name.trim().is_empty() || new.name.chars().count() > 128 {
            return Err(ApiError::unprocessable(
                "invalid_document",
                "name: 1 to 128 characters",
            ));
        }
        if new.upline.as_ref() == Some(&id) {
            return Err(ApiError::unprocessable(
                "invalid_upline",
                "a distributor cannot be its own upline",
            ));
        }
        // The newcomer counts in its upline's network metrics at once, and
        // in every ancestor's above by pull.
        let ancestors = match &new.upline {
            None => Vec::new(),
            Some(u) => {
                let up = self.table.distributor(u).await?.ok_or_else(|| {
                    ApiError::unprocessable("unknown_upline", format!("upline {u} does not exist"))
                })?;
                let mut a = vec![u.clone()];
                a.extend(up.ancestors);
                a
            }
        };
        if ancestors.len() > tier_store::distributors::MAX_DEPTH {
            return Err(ApiError::unprocessable(
                "network_too_deep",
                format!(
                    "a network is at most {} levels deep",
                    tier_store::distributors::MAX_DEPTH
                ),
            ));
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
            upgraded_at: None,
            tier_locked: false,
            last_review: None,
            backfilled: None,
            metric_shards: Default::default(),
            ancestors,
        };
        self.table
            .register_distributor(&d, entry.as_ref(), &self.calendar)
            .await
            .map_err(|e| match e {
                RegisterError::AlreadyExists(_) => {
                    ApiError::conflict("distributor_exists", e.to_string())
                }
                RegisterError::UnknownUpline(_) => {
                    ApiError::unprocessable("unknown_upline", e.to_string())
                }
                RegisterError::Store(s) => s.into(),
            })?;
        if !d.ancestors.is_empty() {
            let message = tier_messages::Message::NetworkChangedV1(tier_messages::NetworkChanged {
                downline: d.id.clone(),
                ancestors: d.ancestors.clone(),
            });
            // The metrics are recorded; if this send fails the ancestors are
            // re-evaluated at their next event or review instead.
            if let Err(e) = self.tier_events.send(&message).await {
                tracing::error!(distributor = %d.id, error = %e, "could not ask for the ancestors' re-evaluation");
            }
        }
        Ok(http::json(StatusCode::CREATED, &d))
    }

    pub(crate) async fn get_distributor(
        &self,
        id: DistributorId,
    ) -> Result<Response<Body>, ApiError> {
        let (profile, metrics) =
            self.table
                .distributor_with_metrics(&id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(
                        "distributor_not_found",
                        format!("distributor {id} does not exist"),
                    )
                })?;
        let history = self.table.tier_history(&id, 50).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"distributor": profile, "metrics": metrics, "tier_history": history}),
        ))
    }

    /// Spreads a hot seller's counters over shards (docs/cost.md, "Hot
    /// sellers"): its orders, and the commission they pay its receivers if
    /// those are spread too, write one shard each.
    pub(crate) async fn put_shards(
        &self,
        id: DistributorId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let b: ShardsBody = http::parse_json(body)?;
        let spread = self
            .table
            .set_metric_shards(&id, b.shards)
            .await
            .map_err(|e| match e {
                ShardsError::UnknownDistributor(id) => ApiError::not_found(
                    "distributor_not_found",
                    format!("distributor {id} does not exist"),
                ),
                ShardsError::Invalid(e) => ApiError::unprocessable("invalid_shards", e.to_string()),
                ShardsError::Store(e) => e.into(),
            })?;
        tracing::info!(distributor = %id, shards = spread.shards, cells = spread.cells, "counters spread");
        Ok(http::json(
            StatusCode::OK,
            &json!({"distributor_id": id, "shards": spread.shards, "cells": spread.cells}),
        ))
    }

    pub(crate) async fn withdraw(
        &self,
        id: DistributorId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        use tier_store::commission::WithdrawOutcome;
        let w: WithdrawalRequest = http::parse_json(body)?;
        if w.amount.is_negative() || w.amount.is_zero() {
            return Err(ApiError::unprocessable(
                "invalid_amount",
                "the amount must be positive",
            ));
        }
        let rules =
            self.table.current_rule_set().await?.ok_or_else(|| {
                ApiError::conflict("no_rule_set", "no rule set has been published")
            })?;
        let d = self.table.distributor(&id).await?.ok_or_else(|| {
            ApiError::not_found(
                "distributor_not_found",
                format!("distributor {id} does not exist"),
            )
        })?;
        let tier = d
            .tier
            .as_ref()
            .and_then(|t| rules.rules.tier_by_id(t.as_str()))
            .unwrap_or_else(|| rules.rules.entry_tier());
        if !tier.may(tier_domain::rules::Permission::RequestWithdrawals) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                format!("tier {} may not request withdrawals", tier.id),
            ));
        }
        let min = rules.rules.commission().min_withdrawal;
        if w.amount < min {
            return Err(ApiError::unprocessable(
                "below_minimum",
                format!("the smallest withdrawal is {min} CNY"),
            ));
        }
        let now = Utc::now();
        match self
            .table
            .withdraw(
                &id,
                w.request_id.as_str(),
                w.amount,
                now,
                self.calendar.day_of(now),
            )
            .await?
        {
            WithdrawOutcome::Paid(p) => {
                tracing::info!(distributor = %id, amount = %p.amount, request = %p.request_id, "commission withdrawn");
                Ok(http::json(
                    StatusCode::CREATED,
                    &json!({"distributor_id": id, "withdrawal": p}),
                ))
            }
            WithdrawOutcome::AlreadyPaid(p) => Ok(http::json(
                StatusCode::OK,
                &json!({"distributor_id": id, "withdrawal": p, "status": "duplicate"}),
            )),
            WithdrawOutcome::RequestReused(p) => Err(ApiError::conflict(
                "request_id_reused",
                format!("request {} paid {} before", p.request_id, p.amount),
            )),
            WithdrawOutcome::Insufficient { withdrawable } => Err(ApiError::unprocessable(
                "insufficient_balance",
                format!(
                    "{} CNY is withdrawable, less than {}",
                    withdrawable, w.amount
                ),
            )),
        }
    }

    pub(crate) async fn set_tier(
        &self,
        id: DistributorId,
        actor: String,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let m: ManualTier = http::parse_json(body)?;
        if m.reason.trim().is_empty() || m.reason.chars().count() > 500 {
            return Err(ApiError::unprocessable(
                "missing_reason",
                "a manual tier change needs a reason of 1 to 500 characters",
            ));
        }
        let rules =
            self.table.current_rule_set().await?.ok_or_else(|| {
                ApiError::conflict("no_rule_set", "no rule set has been published")
            })?;
        let to = rules.rules.tier_by_id(m.tier.as_str()).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_tier",
                format!(
                    "tier {} is not in rule set version {}",
                    m.tier, rules.version
                ),
            )
        })?;
        for _ in 0..5 {
            let d = self.table.distributor(&id).await?.ok_or_else(|| {
                ApiError::not_found(
                    "distributor_not_found",
                    format!("distributor {id} does not exist"),
                )
            })?;
            let from_rank = d
                .tier
                .as_ref()
                .and_then(|t| rules.rules.tier_by_id(t.as_str()))
                .map(|t| t.rank);
            let change = (d.tier.as_ref() != Some(&to.id)).then(|| TierChange {
                from: d.tier.clone(),
                to: to.id.clone(),
                direction: if from_rank.is_some_and(|f| f > to.rank) {
                    Direction::Down
                } else {
                    Direction::Up
                },
                rule_set_version: rules.version,
                reasons: Vec::new(),
                cause: Cause::Manual {
                    actor: actor.clone(),
                    reason: m.reason.clone(),
                    locked: m.lock,
                },
                at: Utc::now(),
            });
            if self
                .table
                .set_tier_manually(&id, d.tier_version, change.as_ref(), m.lock, &self.calendar)
                .await?
            {
                tracing::info!(distributor = %id, to = %to.id, lock = m.lock, %actor, "manual tier change");
                return Ok(http::json(
                    StatusCode::OK,
                    &json!({"distributor_id": id, "tier": to.id, "locked": m.lock, "change": change}),
                ));
            }
        }
        Err(ApiError::conflict(
            "concurrent_change",
            "the tier changed while this request was applied; retry",
        ))
    }

    pub(crate) async fn register_store(
        &self,
        platform: Platform,
        store: StoreId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let owner: StoreOwner = http::parse_json(body)?;
        let app = self.store_app(&platform, &store, owner.app).await?;
        self.table
            .register_store(&platform, &store, &owner.distributor, app.as_ref())
            .await
            .map_err(|e| match e {
                StoreRegisterError::UnknownDistributor(_) => {
                    ApiError::unprocessable("unknown_distributor", e.to_string())
                }
                StoreRegisterError::OwnedByAnother { .. } => {
                    ApiError::conflict("store_owned_by_another", e.to_string())
                }
                StoreRegisterError::Store(s) => s.into(),
            })?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"platform": platform, "store": store, "distributor": owner.distributor, "app": app}),
        ))
    }
}
