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
//! | PUT | `/v1/admin/distributors/{id}/tier` | manual override with a reason, optionally locked |
//! | DELETE | `/v1/admin/distributors/{id}/tier-lock` | lift a lock: automatic changes resume |
//! | POST | `/v1/admin/distributors/{id}/withdrawals` | pay out withdrawable commission, once per request id |
//! | PUT | `/v1/admin/what-ifs/{id}` | start evaluating a draft rule set against every distributor, changing nothing |
//! | GET | `/v1/admin/what-ifs/{id}` | a what-if's progress and who would move |
//! | POST | `/v1/admin/rule-set:backfill` | count the ledger into what the current rule set reads by day or by SKU |
//! | PUT | `/v1/admin/stores/{platform}/{store}` | map a platform store to its distributor |
//! | PUT | `/v1/admin/price-book` | validate and publish a price book (CSV or JSON) as the next version |
//! | GET | `/v1/admin/price-book` | the current version and its promotions |
//! | POST | `/v1/admin/api-keys` | create an API key (shown once) |
//! | GET | `/v1/admin/api-keys` | list the keys |
//! | DELETE | `/v1/admin/api-keys/{id}` | revoke a key |
//! | PUT | `/v1/admin/skus/{sku}/stock` | set the stock available to reserve |
//! | GET | `/v1/admin/skus/{sku}/stock` | the stock available |
//! | GET | `/v1/admin/orders/{platform}/{store}/{order}/reservations` | an order's line reservations |

use std::collections::BTreeMap;

use chrono::Utc;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tier_domain::access::{self, ApiKey, Scope};
use tier_domain::ids::{DistributorId, OrderId, OrderRef, Platform, Sku, StoreId, WhatIfId};
use tier_domain::pricing::PriceBookDraft;
use tier_domain::rules::{RuleSet, RuleSetDoc};
use tier_domain::tier::{Cause, Direction, TierChange};
use tier_runtime::http::{self, ApiError};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::Table;
use tier_store::distributors::{Distributor, RegisterError, StoreRegisterError};

/// Price books are the largest bodies: 50,000 rows of CSV fit.
const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

pub struct AdminApi {
    table: Table,
    /// Tier evaluation's queue: a new distributor's ancestors are re-evaluated through it.
    tier_events: tier_store::Queue,
    admin_key: String,
    calendar: tier_domain::calendar::BrandCalendar,
    /// When a backfill's second pass starts; 0: no second pass.
    backfill_recheck_secs: u32,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiKey {
    name: String,
    scope: Scope,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    available: u64,
}

/// The same answer under another status (a what-if just started is 202).
fn with_status(mut r: Response<Body>, status: StatusCode) -> Response<Body> {
    *r.status_mut() = status;
    r
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
        let calendar = tier_domain::calendar::BrandCalendar::parse(env.get("BRAND_TIMEZONE").unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE))
            .map_err(|e| ConfigError::Invalid { name: "BRAND_TIMEZONE", reason: e.to_string() })?;
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            tier_events: tier_store::Queue::new(aws.sqs.clone(), env.require("TIER_EVENTS_QUEUE_URL")?),
            admin_key,
            calendar,
            backfill_recheck_secs: env.parse_or("BACKFILL_RECHECK_SECONDS", 900u32)?.min(900),
        })
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
            (Method::PUT, ["v1", "admin", "distributors", d, "tier"]) => {
                let actor = http::header(req.headers(), "x-actor").unwrap_or("admin").chars().take(128).collect();
                self.set_tier(id(d, DistributorId::parse)?, actor, body).await
            }
            (Method::DELETE, ["v1", "admin", "distributors", d, "tier-lock"]) => {
                let d = id(d, DistributorId::parse)?;
                if !self.table.unlock_tier(&d).await? {
                    return Err(ApiError::not_found("distributor_not_found", format!("distributor {d} does not exist")));
                }
                Ok(http::json(StatusCode::OK, &json!({"distributor_id": d, "locked": false})))
            }
            (Method::PUT, ["v1", "admin", "what-ifs", w]) => self.start_what_if(id(w, WhatIfId::parse)?, body).await,
            (Method::GET, ["v1", "admin", "what-ifs", w]) => self.get_what_if(id(w, WhatIfId::parse)?).await,
            (Method::POST, ["v1", "admin", "rule-set:backfill"]) => self.backfill_rule_set().await,
            (Method::POST, ["v1", "admin", "distributors", d, "withdrawals"]) => self.withdraw(id(d, DistributorId::parse)?, body).await,
            (Method::PUT, ["v1", "admin", "stores", p, s]) => self.register_store(id(p, Platform::parse)?, id(s, StoreId::parse)?, body).await,
            (Method::PUT, ["v1", "admin", "price-book"]) => {
                let csv = http::header(req.headers(), "content-type").is_some_and(|c| c.starts_with("text/csv"));
                self.publish_price_book(body, csv).await
            }
            (Method::GET, ["v1", "admin", "price-book"]) => self.get_price_book().await,
            (Method::POST, ["v1", "admin", "api-keys"]) => self.create_api_key(body).await,
            (Method::GET, ["v1", "admin", "api-keys"]) => Ok(http::json(StatusCode::OK, &json!({"keys": self.table.list_api_keys().await?}))),
            (Method::DELETE, ["v1", "admin", "api-keys", key]) => self.revoke_api_key(key).await,
            (Method::PUT, ["v1", "admin", "skus", s, "stock"]) => self.put_stock(id(s, Sku::parse)?, body).await,
            (Method::GET, ["v1", "admin", "skus", s, "stock"]) => self.get_stock(id(s, Sku::parse)?).await,
            (Method::GET, ["v1", "admin", "orders", p, s, o, "reservations"]) => {
                let order = OrderRef { platform: id(p, Platform::parse)?, store: id(s, StoreId::parse)?, order_id: id(o, OrderId::parse)? };
                let (record, _) = self.table.order_stock(&order).await?;
                let lines: BTreeMap<String, _> = record.lines.into_iter().map(|(l, r)| (l.to_string(), r)).collect();
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
        let previous = self.table.current_rule_set().await?;
        let now = Utc::now();
        // What the new rules read that the old ones did not keep is counted
        // from the ledger, so they do not start from nothing.
        let needed = rules.backfill_from(previous.as_ref().map(|p| &p.rules));
        let version = self.table.publish_rule_set(&rules, now, needed.is_some()).await?;
        tracing::info!(version, "rule set published");
        let backfill = match needed {
            None => "none",
            Some(b) => match self.start_backfill(version, b, now).await {
                Ok(()) => "started",
                Err(e) => {
                    tracing::error!(version, error = %e, "could not start the backfill; POST /v1/admin/rule-set:backfill starts it");
                    "not_started"
                }
            },
        };
        Ok(http::json(StatusCode::CREATED, &json!({"version": version, "tiers": rules.tiers().len(), "backfill": backfill})))
    }

    /// `POST /v1/admin/rule-set:backfill`: counts the ledger into everything
    /// the current rule set reads by day or by SKU. Safe to repeat: what is
    /// counted already is left alone.
    async fn backfill_rule_set(&self) -> Result<Response<Body>, ApiError> {
        let current = self.table.current_rule_set().await?.ok_or_else(|| ApiError::conflict("no_rule_set", "no rule set has been published"))?;
        let Some(b) = current.rules.backfill_from(None) else {
            return Ok(http::json(StatusCode::OK, &json!({"rule_set_version": current.version, "backfill": "none"})));
        };
        self.start_backfill(current.version, b, Utc::now()).await?;
        Ok(http::json(StatusCode::ACCEPTED, &json!({"rule_set_version": current.version, "backfill": "started"})))
    }

    /// One partition message per tier any version has had, and one for
    /// distributors without a tier: tier evaluation pages through them.
    async fn start_backfill(&self, version: u64, b: tier_domain::rules::Backfill, now: chrono::DateTime<Utc>) -> Result<(), tier_store::StoreError> {
        let backfill = tier_messages::Backfill::new(version, b, self.calendar.day_of(now));
        // Twice: at once, and again later for orders first counted under the
        // previous rules in the moment of publication and for distributors
        // whose tier moved while their partition was listed. The second pass
        // finds everything else counted and only reads.
        let tiers: Vec<Option<tier_domain::ids::TierId>> = self.table.all_tier_ids().await?.into_iter().map(Some).chain([None]).collect();
        let passes: Vec<u32> = [0].into_iter().chain((self.backfill_recheck_secs > 0).then_some(self.backfill_recheck_secs)).collect();
        let start = self.table.record_backfill_start(version, now, (tiers.len() * passes.len()) as u64).await?;
        for (pass, delay) in passes.into_iter().enumerate() {
            for tier in &tiers {
                let partition = tier_messages::BackfillPartition { backfill: backfill.clone(), tier: tier.clone(), cursor: None, start, pass: pass as u64 };
                let message = tier_messages::Message::BackfillPartitionV1(partition);
                self.tier_events.send_delayed(&message, delay).await?;
            }
        }
        Ok(())
    }

    async fn get_rule_set(&self) -> Result<Response<Body>, ApiError> {
        let current = self.table.current_rule_set().await?.ok_or_else(|| ApiError::not_found("no_rule_set", "no rule set has been published"))?;
        let backfill = self.table.backfill_progress(current.version).await?;
        Ok(http::json(StatusCode::OK, &json!({"version": current.version, "published_at": current.published_at, "rule_set": current.rules.doc(), "backfill": backfill})))
    }

    async fn register_distributor(&self, id: DistributorId, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let new: NewDistributor = http::parse_json(body)?;
        if new.name.trim().is_empty() || new.name.chars().count() > 128 {
            return Err(ApiError::unprocessable("invalid_document", "name: 1 to 128 characters"));
        }
        if new.upline.as_ref() == Some(&id) {
            return Err(ApiError::unprocessable("invalid_upline", "a distributor cannot be its own upline"));
        }
        // The newcomer counts in the network metrics of every ancestor.
        let ancestors = match &new.upline {
            None => Vec::new(),
            Some(u) => {
                let up = self.table.distributor(u).await?.ok_or_else(|| ApiError::unprocessable("unknown_upline", format!("upline {u} does not exist")))?;
                let mut a = vec![u.clone()];
                a.extend(up.ancestors);
                a
            }
        };
        if ancestors.len() > tier_store::distributors::MAX_DEPTH {
            return Err(ApiError::unprocessable("network_too_deep", format!("a network is at most {} levels deep", tier_store::distributors::MAX_DEPTH)));
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
            ancestors,
        };
        self.table.register_distributor(&d, entry.as_ref()).await.map_err(|e| match e {
            RegisterError::AlreadyExists(_) => ApiError::conflict("distributor_exists", e.to_string()),
            RegisterError::UnknownUpline(_) => ApiError::unprocessable("unknown_upline", e.to_string()),
            RegisterError::Store(s) => s.into(),
        })?;
        if !d.ancestors.is_empty() {
            let message = tier_messages::Message::NetworkChangedV1(tier_messages::NetworkChanged { downline: d.id.clone(), ancestors: d.ancestors.clone() });
            // The metrics are recorded; if this send fails the ancestors are
            // re-evaluated at their next event or review instead.
            if let Err(e) = self.tier_events.send(&message).await {
                tracing::error!(distributor = %d.id, error = %e, "could not ask for the ancestors' re-evaluation");
            }
        }
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

    async fn withdraw(&self, id: DistributorId, body: &[u8]) -> Result<Response<Body>, ApiError> {
        use tier_store::commission::WithdrawOutcome;
        let w: WithdrawalRequest = http::parse_json(body)?;
        if w.amount.is_negative() || w.amount.is_zero() {
            return Err(ApiError::unprocessable("invalid_amount", "the amount must be positive"));
        }
        let rules = self.table.current_rule_set().await?.ok_or_else(|| ApiError::conflict("no_rule_set", "no rule set has been published"))?;
        let d = self.table.distributor(&id).await?.ok_or_else(|| ApiError::not_found("distributor_not_found", format!("distributor {id} does not exist")))?;
        let tier = d.tier.as_ref().and_then(|t| rules.rules.tier_by_id(t.as_str())).unwrap_or_else(|| rules.rules.entry_tier());
        if !tier.may(tier_domain::rules::Permission::RequestWithdrawals) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "permission_denied", format!("tier {} may not request withdrawals", tier.id)));
        }
        let min = rules.rules.commission().min_withdrawal;
        if w.amount < min {
            return Err(ApiError::unprocessable("below_minimum", format!("the smallest withdrawal is {min} CNY")));
        }
        let now = Utc::now();
        match self.table.withdraw(&id, w.request_id.as_str(), w.amount, now, self.calendar.day_of(now)).await? {
            WithdrawOutcome::Paid(p) => {
                tracing::info!(distributor = %id, amount = %p.amount, request = %p.request_id, "commission withdrawn");
                Ok(http::json(StatusCode::CREATED, &json!({"distributor_id": id, "withdrawal": p})))
            }
            WithdrawOutcome::AlreadyPaid(p) => Ok(http::json(StatusCode::OK, &json!({"distributor_id": id, "withdrawal": p, "status": "duplicate"}))),
            WithdrawOutcome::RequestReused(p) => Err(ApiError::conflict("request_id_reused", format!("request {} paid {} before", p.request_id, p.amount))),
            WithdrawOutcome::Insufficient { withdrawable } => {
                Err(ApiError::unprocessable("insufficient_balance", format!("{} CNY is withdrawable, less than {}", withdrawable, w.amount)))
            }
        }
    }

    async fn set_tier(&self, id: DistributorId, actor: String, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let m: ManualTier = http::parse_json(body)?;
        if m.reason.trim().is_empty() || m.reason.chars().count() > 500 {
            return Err(ApiError::unprocessable("missing_reason", "a manual tier change needs a reason of 1 to 500 characters"));
        }
        let rules = self.table.current_rule_set().await?.ok_or_else(|| ApiError::conflict("no_rule_set", "no rule set has been published"))?;
        let to = rules.rules.tier_by_id(m.tier.as_str()).ok_or_else(|| ApiError::unprocessable("unknown_tier", format!("tier {} is not in rule set version {}", m.tier, rules.version)))?;
        for _ in 0..5 {
            let d = self.table.distributor(&id).await?.ok_or_else(|| ApiError::not_found("distributor_not_found", format!("distributor {id} does not exist")))?;
            let from_rank = d.tier.as_ref().and_then(|t| rules.rules.tier_by_id(t.as_str())).map(|t| t.rank);
            let change = (d.tier.as_ref() != Some(&to.id)).then(|| TierChange {
                from: d.tier.clone(),
                to: to.id.clone(),
                direction: if from_rank.is_some_and(|f| f > to.rank) { Direction::Down } else { Direction::Up },
                rule_set_version: rules.version,
                reasons: Vec::new(),
                cause: Cause::Manual { actor: actor.clone(), reason: m.reason.clone(), locked: m.lock },
                at: Utc::now(),
            });
            if self.table.set_tier_manually(&id, d.tier_version, change.as_ref(), m.lock).await? {
                tracing::info!(distributor = %id, to = %to.id, lock = m.lock, %actor, "manual tier change");
                return Ok(http::json(StatusCode::OK, &json!({"distributor_id": id, "tier": to.id, "locked": m.lock, "change": change})));
            }
        }
        Err(ApiError::conflict("concurrent_change", "the tier changed while this request was applied; retry"))
    }

    /// `PUT /v1/admin/what-ifs/{id}`: every distributor is to be evaluated
    /// against the draft as a review would (protection periods and locks
    /// included), through the tier queue, a page at a time, changing
    /// nothing. Starting the same id with the same draft again answers
    /// where it stands, and sends its partitions again only if the first
    /// start failed before sending them all (their pages count once).
    async fn start_what_if(&self, what_if: WhatIfId, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let doc: RuleSetDoc = http::parse_json(body).map_err(|e| ApiError { code: if e.code == "invalid_document" { "invalid_rule_set" } else { e.code }, ..e })?;
        let draft = RuleSet::new(doc).map_err(|e| {
            let problems: Vec<String> = e.0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
            ApiError::unprocessable("invalid_rule_set", problems.join("; "))
        })?;
        // Every tier any published version has had (members of a dropped
        // tier are distributors too), the draft's, and no tier.
        let mut partitions: Vec<Option<tier_domain::ids::TierId>> = self.table.all_tier_ids().await?.into_iter().map(Some).collect();
        for t in draft.tiers() {
            if !partitions.contains(&Some(t.id.clone())) {
                partitions.push(Some(t.id.clone()));
            }
        }
        partitions.push(None);
        let names: Vec<String> = partitions.iter().map(|p| p.as_ref().map_or("-".to_owned(), |t| t.to_string())).collect();
        let doc = serde_json::to_value(draft.doc()).expect("rule sets serialise");
        let (run, status) = match self.table.start_what_if(what_if.as_str(), &doc, Utc::now(), &names).await? {
            tier_store::what_if::WhatIfStart::Created(run) => (run, StatusCode::ACCEPTED),
            tier_store::what_if::WhatIfStart::Existing(run) => (run, StatusCode::OK),
            tier_store::what_if::WhatIfStart::OtherDraft => {
                return Err(ApiError::conflict("what_if_exists", format!("what-if {what_if} was started with another draft; choose another id")));
            }
        };
        // A start that failed before every partition was sent is finished
        // by the next: the listings and pages it did send are named the
        // same again, and count once.
        if !run.sent {
            let at = tier_messages::WhatIfRun { id: run.id.clone(), at: run.at };
            for name in &run.partitions {
                let tier = (name != "-").then(|| tier_domain::ids::TierId::parse(name)).transpose().map_err(|e| tier_store::StoreError::corrupt(&("WHATIF".into(), run.id.clone()), e.to_string()))?;
                self.tier_events.send(&tier_messages::Message::WhatIfPartitionV1(tier_messages::WhatIfPartition { run: at.clone(), tier, cursor: None })).await?;
            }
            self.table.mark_what_if_sent(&run.id).await?;
        }
        self.get_what_if(what_if).await.map(|r| if status == StatusCode::ACCEPTED { with_status(r, status) } else { r })
    }

    /// `GET /v1/admin/what-ifs/{id}`: its pages added up so far.
    async fn get_what_if(&self, what_if: WhatIfId) -> Result<Response<Body>, ApiError> {
        let r = self.table.what_if_results(what_if.as_str()).await?.ok_or_else(|| ApiError::not_found("what_if_not_found", format!("no what-if {what_if} (they are kept a week)")))?;
        let moved = r.tally.moved();
        let moves: Vec<_> = r.tally.by_tiers().map(|(from, to, m)| json!({"from": from, "to": to, "count": m.count, "distributors": m.distributors})).collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "id": what_if, "as_of": r.run.at, "status": if r.complete() { "complete" } else { "running" },
                "partitions": r.run.partitions.len(), "partitions_listed": r.partitions_listed, "pages": r.pages, "pages_done": r.pages_done,
                "evaluated": r.tally.evaluated, "unchanged": r.tally.evaluated - moved, "changed_during_run": r.tally.skipped, "moves": moves,
            }),
        ))
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

    async fn publish_price_book(&self, body: &[u8], csv: bool) -> Result<Response<Body>, ApiError> {
        let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("malformed_body", "the price book must be UTF-8"))?;
        // Tier rows are checked against the current rule set.
        let rules = self
            .table
            .current_rule_set()
            .await?
            .ok_or_else(|| ApiError::conflict("no_rule_set", "publish a rule set before a price book: tier prices refer to its tiers"))?;
        let parsed = if csv { PriceBookDraft::from_csv(text, &rules.rules) } else { PriceBookDraft::from_json(text, &rules.rules) };
        let draft = parsed.map_err(|errors| {
            let first = errors.first().map(|e| format!("line {} {}: {}", e.line, e.field, e.message)).unwrap_or_default();
            ApiError::unprocessable("invalid_price_book", format!("{} problem(s); the book was not published. First: {first}", errors.len()))
                .with_errors(serde_json::to_value(&errors).expect("row errors serialise"))
        })?;
        let published = self.table.publish_price_book(&draft, Utc::now()).await?;
        tracing::info!(version = published.version, skus = draft.skus.len(), "price book published");
        Ok(http::json(
            StatusCode::CREATED,
            &json!({"version": published.version, "published_at": published.published_at, "skus": draft.skus.len(), "promotions": draft.promotions.len()}),
        ))
    }

    async fn get_price_book(&self) -> Result<Response<Body>, ApiError> {
        let book = self.table.current_book().await?.ok_or_else(|| ApiError::not_found("no_price_book", "no price book has been published"))?;
        let promotions = self.table.book_promotions(book.version).await?;
        Ok(http::json(StatusCode::OK, &json!({"version": book.version, "published_at": book.published_at, "promotions": promotions})))
    }

    async fn create_api_key(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let new: NewApiKey = http::parse_json(body)?;
        if new.name.trim().is_empty() || new.name.chars().count() > 128 {
            return Err(ApiError::unprocessable("invalid_document", "name: 1 to 128 characters"));
        }
        if let Scope::Distributor { distributor_id } = &new.scope
            && self.table.distributor(distributor_id).await?.is_none()
        {
            return Err(ApiError::unprocessable("unknown_distributor", format!("distributor {distributor_id} does not exist")));
        }
        // 16 + 64 hex characters from two v4 UUIDs: 244 random bits.
        let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let key = ApiKey {
            id: id.clone(),
            name: new.name,
            scope: new.scope,
            secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.table.create_api_key(&key).await?;
        let mut answer = serde_json::to_value(&key).expect("keys serialise");
        // The only time the key is shown: it is stored hashed.
        answer["key"] = json!(format!("{}{id}_{secret}", access::KEY_PREFIX));
        Ok(http::json(StatusCode::CREATED, &answer))
    }

    async fn revoke_api_key(&self, id: &str) -> Result<Response<Body>, ApiError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::not_found("api_key_not_found", format!("no API key {id}")));
        }
        if !self.table.revoke_api_key(id, Utc::now()).await? {
            return Err(ApiError::not_found("api_key_not_found", format!("no API key {id}")));
        }
        Ok(http::json(StatusCode::OK, &json!({"id": id, "revoked": true})))
    }

    async fn put_stock(&self, sku: Sku, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let b: StockBody = http::parse_json(body)?;
        if b.available > 1_000_000_000 {
            return Err(ApiError::unprocessable("invalid_stock", "available must be at most 1,000,000,000"));
        }
        if !self.table.sku_in_current_book(&sku).await? {
            return Err(ApiError::unprocessable("unknown_sku", format!("SKU {sku} is not in the current price book; publish its prices first")));
        }
        self.table.set_stock(&sku, b.available, Utc::now()).await?;
        Ok(http::json(StatusCode::OK, &json!({"sku": sku, "available": b.available})))
    }

    async fn get_stock(&self, sku: Sku) -> Result<Response<Body>, ApiError> {
        let available = self.table.stock(&sku).await?.ok_or_else(|| ApiError::not_found("stock_not_found", format!("SKU {sku} has no stock record")))?;
        Ok(http::json(StatusCode::OK, &json!({"sku": sku, "available": available})))
    }
}
