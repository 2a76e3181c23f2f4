//! The price book, and each SKU's stock by tier.

use futures::{StreamExt, TryStreamExt};
use tier_domain::pricing::RowError;
use tier_domain::stock::levels::{LevelsError, MAX_BUCKETS, SkuStock};
use tier_domain::stock::sync::{SyncFile, SyncLine, SyncMode};
use tier_store::stock::StockError;

use super::*;

/// The most units any part of a SKU's stock may be set to.
const MAX_UNITS: u64 = 1_000_000_000;

/// SKUs of a stock sync one plan message names (a few KB).
const SKUS_PER_PLAN_MESSAGE: usize = 500;

/// A stock count: what is on hand, or (as ERP integrations sent before
/// stock was kept by tier) what is free to sell beside what orders hold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    on_hand: Option<u64>,
    available: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReservesBody {
    /// Units kept per tier; a tier absent keeps none.
    reserves: BTreeMap<String, u64>,
}

/// A SKU's stock as the API shows it: `available` is what is free to any
/// tier or kept for one (the pool and the reserves).
fn stock_json(sku: &Sku, s: &SkuStock) -> serde_json::Value {
    json!({
        "sku": sku,
        "on_hand": s.on_hand,
        "available": s.free(),
        "pool": s.pool,
        "reserves": s.reserves,
        "allocated": s.allocated,
        "backordered": s.backordered,
        "buckets": s.lanes,
        "cells": s.buckets.iter().map(|(b, c)| json!({
            "bucket": b,
            "on_hand": c.on_hand,
            "pool": c.pool,
            "allocated": c.allocated,
            "backordered": c.backordered,
        })).collect::<Vec<_>>(),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketsBody {
    /// Buckets the SKU's pool is spread over; 0: one item.
    buckets: u64,
}

fn sync_problem(line: usize, field: &str, message: String) -> RowError {
    RowError {
        line,
        field: field.to_owned(),
        message,
    }
}

/// A sync file refused whole, every bad line named.
fn refused_sync(errors: Vec<RowError>) -> ApiError {
    let first = errors
        .first()
        .map(|e| format!("line {} {}: {}", e.line, e.field, e.message))
        .unwrap_or_default();
    ApiError::unprocessable(
        "invalid_stock_sync",
        format!(
            "{} problem(s); nothing was changed. First: {first}",
            errors.len()
        ),
    )
    .with_errors(serde_json::to_value(&errors).expect("row errors serialise"))
}

fn refused(e: StockError) -> ApiError {
    match e {
        StockError::Store(e) => e.into(),
        StockError::Refused(e @ LevelsError::ReservesExceedFree { .. }) => {
            ApiError::unprocessable("reserves_exceed_stock", e.to_string())
        }
        StockError::Refused(e @ LevelsError::BelowAllocated { .. }) => {
            ApiError::conflict("below_allocated", e.to_string())
        }
        StockError::Refused(e @ LevelsError::Negative { .. }) => {
            ApiError::conflict("stock_changed", e.to_string())
        }
        StockError::Refused(e @ LevelsError::TooManyBuckets { .. }) => {
            ApiError::unprocessable("invalid_buckets", e.to_string())
        }
    }
}

impl AdminApi {
    pub(crate) async fn publish_price_book(
        &self,
        body: &[u8],
        csv: bool,
    ) -> Result<Response<Body>, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("malformed_body", "the price book must be UTF-8"))?;
        // Tier rows are checked against the current rule set.
        let rules = self.table.current_rule_set().await?.ok_or_else(|| {
            ApiError::conflict(
                "no_rule_set",
                "publish a rule set before a price book: tier prices refer to its tiers",
            )
        })?;
        let parsed = if csv {
            PriceBookDraft::from_csv(text, &rules.rules)
        } else {
            PriceBookDraft::from_json(text, &rules.rules)
        };
        let draft = parsed.map_err(|errors| {
            let first = errors
                .first()
                .map(|e| format!("line {} {}: {}", e.line, e.field, e.message))
                .unwrap_or_default();
            ApiError::unprocessable(
                "invalid_price_book",
                format!(
                    "{} problem(s); the book was not published. First: {first}",
                    errors.len()
                ),
            )
            .with_errors(serde_json::to_value(&errors).expect("row errors serialise"))
        })?;
        let published = self.table.publish_price_book(&draft, Utc::now()).await?;
        tracing::info!(
            version = published.version,
            skus = draft.skus.len(),
            "price book published"
        );
        // Orders held for a SKU the book lacked can now be counted.
        let released = self.release_after_catalog_change().await?;
        Ok(http::json(
            StatusCode::CREATED,
            &json!({"version": published.version, "published_at": published.published_at, "skus": draft.skus.len(), "promotions": draft.promotions.len(), "released": released}),
        ))
    }

    pub(crate) async fn get_price_book(&self) -> Result<Response<Body>, ApiError> {
        let book = self.table.current_book().await?.ok_or_else(|| {
            ApiError::not_found("no_price_book", "no price book has been published")
        })?;
        let promotions = self.table.book_promotions(book.version).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"version": book.version, "published_at": book.published_at, "promotions": promotions}),
        ))
    }

    pub(crate) async fn put_stock(
        &self,
        sku: Sku,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let b: StockBody = http::parse_json(body)?;
        let count = match (b.on_hand, b.available) {
            (Some(units), None) | (None, Some(units)) => units,
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_document",
                    "give exactly one of on_hand and available",
                ));
            }
        };
        if count > MAX_UNITS {
            return Err(ApiError::unprocessable(
                "invalid_stock",
                format!("stock must be at most {MAX_UNITS}"),
            ));
        }
        self.require_sku(&sku).await?;
        let (junior_first, planned) = self.stock_rules().await?;
        let now = Utc::now();
        let stock = match b.available {
            // Free units asked for: on hand is those beside what orders
            // hold, as read; a race with an order is the count's to rerun.
            Some(free) => {
                let held = self.table.stock(&sku).await?.map_or(0, |s| s.allocated);
                self.table
                    .set_stock(&sku, held + free, &junior_first, now)
                    .await
            }
            None => self.table.set_stock(&sku, count, &junior_first, now).await,
        }
        .map_err(refused)?;
        tracing::info!(%sku, on_hand = stock.on_hand, "stock counted");
        self.after_count(&sku, &stock, planned).await?;
        Ok(http::json(StatusCode::OK, &stock_json(&sku, &stock)))
    }

    pub(crate) async fn put_reserves(
        &self,
        sku: Sku,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let b: ReservesBody = http::parse_json(body)?;
        let rules = self.table.current_rule_set().await?.ok_or_else(|| {
            ApiError::conflict(
                "no_rule_set",
                "publish a rule set before reserves: they are kept for its tiers",
            )
        })?;
        if rules.rules.reserves().is_some() {
            return Err(ApiError::conflict(
                "reserves_planned",
                "the rule set's reserves section plans every SKU's reserves; change it there, \
                 or publish a rule set without it to set reserves by hand",
            ));
        }
        let mut plan = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, units) in &b.reserves {
            match TierId::parse(name)
                .ok()
                .filter(|t| rules.rules.tier_by_id(t.as_str()).is_some())
            {
                None => errors.push(json!({"tier": name, "code": "unknown_tier", "message": format!("tier {name} is not in the current rule set")})),
                Some(_) if *units > MAX_UNITS => errors.push(json!({"tier": name, "code": "invalid_quantity", "message": format!("a reserve must be at most {MAX_UNITS}")})),
                Some(t) => {
                    plan.insert(t, *units);
                }
            }
        }
        if let Some(first) = errors.first() {
            let code = if errors.iter().any(|e| e["code"] == "unknown_tier") {
                "unknown_tier"
            } else {
                "invalid_quantity"
            };
            return Err(ApiError::unprocessable(
                code,
                format!(
                    "{} reserve(s) refused; nothing changed. First: {}",
                    errors.len(),
                    first["message"].as_str().unwrap_or_default()
                ),
            )
            .with_errors(json!(errors)));
        }
        self.require_sku(&sku).await?;
        plan.retain(|_, u| *u > 0);
        let stock = self
            .table
            .set_reserves(&sku, &plan, Utc::now())
            .await
            .map_err(refused)?;
        tracing::info!(%sku, reserves = ?stock.reserves, "reserves set");
        self.after_count(&sku, &stock, false).await?;
        Ok(http::json(StatusCode::OK, &stock_json(&sku, &stock)))
    }

    /// The tiers, most junior first (whose reserves a fall in stock cuts
    /// first), and whether the rule set plans reserves.
    async fn stock_rules(&self) -> Result<(Vec<TierId>, bool), ApiError> {
        Ok(match self.table.current_rule_set().await? {
            Some(rules) => {
                let mut tiers: Vec<_> = rules.rules.tiers().iter().collect();
                tiers.sort_by_key(|t| t.rank);
                (
                    tiers.into_iter().map(|t| t.id.clone()).collect(),
                    rules.rules.reserves().is_some(),
                )
            }
            None => (Vec::new(), false),
        })
    }

    /// A stock sync from the ERP (see `tier_domain::stock::sync`): read and
    /// checked whole, against the book and what orders hold, before any
    /// line is applied, so that a file with a bad line changes nothing.
    pub(crate) async fn sync_stock(
        &self,
        body: &[u8],
        query: Option<&str>,
        csv: bool,
    ) -> Result<Response<Body>, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("malformed_body", "a stock sync must be UTF-8"))?;
        let parsed = if csv {
            let param = |name: &str| http::query_values(query, name).into_iter().next();
            match param("mode") {
                Some(raw) if SyncMode::parse(&raw).is_none() => Err(vec![sync_problem(
                    0,
                    "mode",
                    "?mode= must be snapshot or delta".into(),
                )]),
                given => SyncFile::from_csv(
                    text,
                    given.as_deref().and_then(SyncMode::parse),
                    param("sync_id").as_deref().unwrap_or(""),
                ),
            }
        } else {
            let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
            })?;
            SyncFile::from_json(&doc)
        };
        let file = parsed.map_err(refused_sync)?;
        // Every SKU in the book, and every count at or above what orders hold.
        let skus: Vec<Sku> = file.lines.iter().map(|l| l.sku.clone()).collect();
        let known = self.table.skus_in_current_book(&skus).await?;
        let now = self
            .table
            .read_stock(&skus.iter().cloned().collect())
            .await?;
        let mut problems = Vec::new();
        for line in &file.lines {
            if !known.contains(&line.sku) {
                problems.push(sync_problem(
                    line.line,
                    "sku",
                    format!("SKU {} is not in the current price book", line.sku),
                ));
                continue;
            }
            let current = now.get(&line.sku).cloned().unwrap_or_default();
            let target = match file.mode {
                SyncMode::Snapshot => line.value,
                SyncMode::Delta => current.on_hand as i64 + line.value,
            };
            if target < current.allocated as i64 || target > MAX_UNITS as i64 {
                problems.push(sync_problem(
                    line.line,
                    file.mode.field(),
                    format!(
                        "on hand would be {target}: it must be from the {} units orders hold to {MAX_UNITS}",
                        current.allocated
                    ),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(refused_sync(problems));
        }
        let (junior_first, planned) = self.stock_rules().await?;
        let at = Utc::now();
        // Lines are SKUs of their own: applied 25 at a time.
        let lines: Vec<_> = file
            .lines
            .iter()
            .map(|line| self.apply_sync_line(line, &file, (&junior_first, planned), at))
            .collect();
        let applied: Vec<bool> = futures::stream::iter(lines)
            .buffer_unordered(25)
            .try_collect()
            .await?;
        if planned {
            // One message a few hundred SKUs, not one a line: stock
            // allocation plans them a page at a time.
            let skus: Vec<Sku> = file.lines.iter().map(|l| l.sku.clone()).collect();
            for part in skus.chunks(SKUS_PER_PLAN_MESSAGE) {
                self.dead_letters
                    .stock_events
                    .source
                    .send(&tier_messages::Message::ReservePlanV1(
                        tier_messages::ReservePlanRun {
                            skus: part.to_vec(),
                            ..Default::default()
                        },
                    ))
                    .await?;
            }
        }
        let changed = applied.iter().filter(|c| **c).count();
        let already = applied.len() - changed;
        tracing::info!(sync_id = %file.sync_id, mode = ?file.mode, changed, already, "stock synced");
        Ok(http::json(
            StatusCode::OK,
            &json!({"sync_id": file.sync_id, "mode": file.mode, "lines": file.lines.len(), "changed": changed, "already_applied": already}),
        ))
    }

    /// One line of a checked sync file; whether it changed the SKU (a delta
    /// of a sync applied before does not).
    async fn apply_sync_line(
        &self,
        line: &SyncLine,
        file: &SyncFile,
        (junior_first, planned): (&[TierId], bool),
        at: chrono::DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let done = match file.mode {
            SyncMode::Snapshot => tier_store::stock::Synced {
                stock: self
                    .table
                    .set_stock(&line.sku, line.value as u64, junior_first, at)
                    .await
                    .map_err(refused)?,
                changed: true,
            },
            SyncMode::Delta => self
                .table
                .add_stock_once(&line.sku, line.value, &file.sync_id, junior_first, at)
                .await
                .map_err(refused)?,
        };
        // Asked again for a line applied before: the request that applied
        // it may have failed before asking. Planned SKUs are asked for
        // together, once the file is applied.
        if !planned {
            self.after_count(&line.sku, &done.stock, false).await?;
        }
        Ok(done.changed)
    }

    /// After a count or a plan, through stock allocation's queue: where
    /// reserves are planned, the SKU's plan is computed again from the new
    /// count (and its backorders filled after it); otherwise a SKU with
    /// backorders and units free gets its fill, by priority then age.
    /// Asked on every such change: a plan or a fill that finds nothing to
    /// do changes nothing.
    async fn after_count(
        &self,
        sku: &Sku,
        stock: &SkuStock,
        planned: bool,
    ) -> Result<(), ApiError> {
        let message = if planned {
            tier_messages::Message::ReservePlanV1(tier_messages::ReservePlanRun {
                sku: Some(sku.clone()),
                ..Default::default()
            })
        } else if stock.backordered > 0 && stock.free() > 0 {
            tier_messages::Message::BackorderFillV1(tier_messages::BackorderFill {
                sku: sku.clone(),
                after: None,
            })
        } else {
            return Ok(());
        };
        self.dead_letters.stock_events.source.send(&message).await?;
        Ok(())
    }

    /// `POST /v1/admin/stock:plan`: computes reserve plans now, of one SKU
    /// (`{"sku": ...}`) or of every SKU in the price book (an empty body),
    /// as the hourly schedule does.
    pub(crate) async fn run_plans(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct PlanBody {
            sku: Option<String>,
        }
        let b: PlanBody = if body.iter().all(u8::is_ascii_whitespace) {
            PlanBody::default()
        } else {
            http::parse_json(body)?
        };
        let sku = b
            .sku
            .map(|raw| {
                Sku::parse(&raw).map_err(|e| ApiError::unprocessable("invalid_sku", e.to_string()))
            })
            .transpose()?;
        let rules = self.table.current_rule_set().await?;
        if rules.as_ref().and_then(|r| r.rules.reserves()).is_none() {
            return Err(ApiError::conflict(
                "reserves_not_planned",
                "the current rule set has no reserves section: reserves are set by hand",
            ));
        }
        if let Some(sku) = &sku {
            self.require_sku(sku).await?;
        }
        let at = Utc::now();
        self.dead_letters
            .stock_events
            .source
            .send(&tier_messages::Message::ReservePlanV1(
                tier_messages::ReservePlanRun {
                    sku: sku.clone(),
                    at: Some(at),
                    ..Default::default()
                },
            ))
            .await?;
        tracing::info!(sku = ?sku, "reserve plans asked");
        Ok(http::json(
            StatusCode::ACCEPTED,
            &json!({"plans": "started", "sku": sku, "at": at}),
        ))
    }

    async fn require_sku(&self, sku: &Sku) -> Result<(), ApiError> {
        if self.table.sku_in_current_book(sku).await? {
            Ok(())
        } else {
            Err(ApiError::unprocessable(
                "unknown_sku",
                format!("SKU {sku} is not in the current price book; publish its prices first"),
            ))
        }
    }

    /// Spreads a hot SKU's pool over buckets, so that its payments write
    /// different items (see docs/stock.md, "Hot SKUs").
    pub(crate) async fn put_buckets(
        &self,
        sku: Sku,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let b: BucketsBody = http::parse_json(body)?;
        if b.buckets > u64::from(MAX_BUCKETS) {
            return Err(ApiError::unprocessable(
                "invalid_buckets",
                format!(
                    "a SKU's pool is spread over 0 to {MAX_BUCKETS} buckets, not {}",
                    b.buckets
                ),
            ));
        }
        self.require_sku(&sku).await?;
        let stock = self
            .table
            .set_buckets(&sku, b.buckets as u8, Utc::now())
            .await
            .map_err(refused)?;
        tracing::info!(%sku, buckets = stock.lanes, "stock spread");
        Ok(http::json(StatusCode::OK, &stock_json(&sku, &stock)))
    }

    pub(crate) async fn get_stock(&self, sku: Sku) -> Result<Response<Body>, ApiError> {
        let stock = self.table.stock(&sku).await?.ok_or_else(|| {
            ApiError::not_found("stock_not_found", format!("SKU {sku} has no stock record"))
        })?;
        let mut body = stock_json(&sku, &stock);
        if let Some(plan) = self.table.reserve_plan(&sku).await? {
            body["plan"] = serde_json::to_value(&plan).expect("a plan serialises");
        }
        Ok(http::json(StatusCode::OK, &body))
    }
}
