//! Stock allocation: consumes order events from SQS.
//!
//! - paid: the order's lines are recorded and their stock taken in one
//!   transaction, from the reserve of the tier the distributor had when it
//!   paid and then the shared pool, each part's decrement conditional on
//!   enough stock, so stock never goes below zero; a line that cannot be
//!   filled is recorded as backordered, not dropped;
//! - cancelled: every line's remaining reservation returns to stock, once;
//! - refunded: the returned lines it lists go back to stock, once per refund;
//! - shipped (the platform's notice): the order's reserved units leave on
//!   hand and the shipping queue, once;
//! - a release that frees units of a SKU with backorders asks for a fill:
//!   `backorder_fill.v1` fills the SKU's backorders by priority, then age,
//!   a page a message (as the admin API asks after a count or a plan);
//! - `reserve_plan.v1` computes reserve plans (see
//!   `tier_domain::stock::plan`) where the rule set has a `reserves`
//!   section: one SKU's after a restock, or every SKU of the price book a
//!   page a message, as the hourly schedule asks; a plan that leaves units
//!   free for a SKU with backorders asks for a fill.
//!
//! A batch is served releases first, then payments by priority (the
//! distributor's tier priority plus urgency, stamped when the order was
//! paid), then by age: when stock runs short, the senior tier's urgent
//! order is the one filled.
//!
//! An order's stock is one record (see `tier_domain::stock`): a
//! cancellation that overtakes its payment leaves it cancelled, and the late
//! payment reserves nothing; returns that overtake it are kept, and the
//! payment reserves only what stays sold.

use std::cmp::Reverse;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_domain::stock::Payer;

use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::{Sku, TierId};
use tier_domain::stock::plan::ReserveRules;
use tier_messages::{BackorderFill, Message, ReservePlanRun};
use tier_runtime::sqs::{BatchProcessor, Failure};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::catalog::Allocation;
use tier_store::stock::StockError;
use tier_store::{Queue, Table};

pub struct StockAllocation {
    table: Table,
    batches: BatchProcessor,
    /// Its own queue: backorder fills, plan pages, and their continuations.
    stock_events: Queue,
    /// The brand's days, which a payment's demand is counted by.
    calendar: BrandCalendar,
}

/// Backorders filled per message; each page sends the next.
const FILL_PAGE: usize = 100;
/// SKUs planned per message of a sweep (2 requests each); each page sends
/// the next.
const PLAN_PAGE: usize = 50;

/// The order a batch is served in: releases first, so that the units they
/// free serve the payments beside them; then payments by priority, highest
/// first, then paid first (see `tier_domain::fulfilment`).
fn serving_order(message: &Message) -> (bool, Reverse<u16>, Option<DateTime<Utc>>) {
    match message {
        Message::OrderEventV1(e) => match &e.kind {
            OrderEventKind::Paid { priority, .. } => {
                (true, Reverse(*priority), Some(e.occurred_at))
            }
            _ => (false, Reverse(0), Some(e.occurred_at)),
        },
        _ => (false, Reverse(0), None),
    }
}

impl StockAllocation {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            batches: BatchProcessor::new(
                Queue::new(aws.sqs.clone(), env.require("DLQ_URL")?),
                env.parse_or("MAX_RECEIVE_COUNT", 5u32)?,
                "stock-allocation",
            ),
            stock_events: Queue::new(aws.sqs.clone(), env.require("STOCK_EVENTS_QUEUE_URL")?),
            calendar: BrandCalendar::parse(
                env.get("BRAND_TIMEZONE")
                    .unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE),
            )
            .map_err(|e| ConfigError::Invalid {
                name: "BRAND_TIMEZONE",
                reason: e.to_string(),
            })?,
        })
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process_in_order(event, serving_order, |message| async move {
                match message {
                    Message::OrderEventV1(e) => self.on_order_event(&e).await,
                    Message::BackorderFillV1(f) => self.on_fill(&f).await,
                    Message::ReservePlanV1(r) => self.on_plan(&r).await,
                    // Reviews belong to tier evaluation's queue: one here was misrouted.
                    other => Err(Failure::permanent(
                        "unexpected_message",
                        format!("stock allocation does not handle {}", other.id()),
                    )),
                }
            })
            .await
    }

    async fn on_order_event(&self, event: &OrderEvent) -> Result<(), Failure> {
        let order = &event.order;
        match &event.kind {
            OrderEventKind::Paid {
                lines,
                tier,
                priority,
                ..
            } => match self
                .table
                .allocate_payment(
                    order,
                    &event.event_id,
                    Payer {
                        tier: tier.as_ref(),
                        priority: *priority,
                        paid_at: event.occurred_at,
                    },
                    self.calendar.day_of(event.occurred_at),
                    lines,
                )
                .await?
            {
                Allocation::Reserved { backordered } if !backordered.is_empty() => {
                    tracing::warn!(%order, skus = ?backordered, "not enough stock: lines backordered");
                }
                outcome => tracing::info!(%order, ?outcome, "payment allocated"),
            },
            OrderEventKind::Cancelled => {
                let released = self.table.cancel_order_stock(order).await?;
                tracing::info!(%order, units = released.units, "cancellation released stock");
                self.ask_fills(&released.skus).await?;
            }
            OrderEventKind::Shipped { reference } => {
                self.on_shipped(event, reference.clone()).await?;
            }
            OrderEventKind::Refunded {
                refund_id, lines, ..
            } => {
                let released = self
                    .table
                    .refund_order_stock(order, refund_id.as_str(), lines)
                    .await?;
                tracing::info!(%order, %refund_id, units = released.units, "returned goods released stock");
                self.ask_fills(&released.skus).await?;
            }
        }
        Ok(())
    }

    /// The platform (or the brand's system) says the order left the
    /// warehouse: its reserved units leave on hand and the shipping queue,
    /// once, as `POST .../:shipped` does. A shipment ahead of its payment
    /// waits for it (retried, then dead-lettered with the reason); one the
    /// book cannot ship (cancelled, lines still waiting for stock, nothing
    /// left) is dead-lettered with its reason for an operator, since what
    /// the warehouse did and what the book holds disagree.
    async fn on_shipped(
        &self,
        event: &OrderEvent,
        reference: Option<String>,
    ) -> Result<(), Failure> {
        use tier_domain::stock::{ShipError, Shipment};
        let order = &event.order;
        let shipment = Shipment {
            at: event.occurred_at,
            reference,
        };
        match self.table.ship_order(order, shipment).await? {
            Ok(_) => {
                tracing::info!(%order, "shipped, as the platform says");
                Ok(())
            }
            Err(ShipError::NotPaid) => Err(Failure::RetryLater(format!(
                "order {order} was shipped before its payment arrived: waiting for it"
            ))),
            Err(e) => Err(Failure::permanent(
                match e {
                    ShipError::Cancelled => "order_cancelled",
                    ShipError::NotReady => "order_not_ready",
                    _ => "nothing_to_ship",
                },
                format!("order {order} was shipped on the platform, but {e}"),
            )),
        }
    }

    /// Units came back to these SKUs: those with backorders get a fill. A
    /// redelivered release asks again, and the fill finds nothing twice.
    async fn ask_fills(&self, skus: &BTreeSet<Sku>) -> Result<(), Failure> {
        if skus.is_empty() {
            return Ok(());
        }
        for sku in self.table.skus_with_backorders(skus).await? {
            self.stock_events
                .send(&Message::BackorderFillV1(BackorderFill {
                    sku,
                    after: None,
                }))
                .await?;
        }
        Ok(())
    }

    /// A page of a SKU's backorders, by priority then age; the next page is
    /// its own message, so a long list never outruns the function's time.
    async fn on_fill(&self, fill: &BackorderFill) -> Result<(), Failure> {
        let page = self
            .table
            .fill_backorders(&fill.sku, fill.after.as_deref(), FILL_PAGE)
            .await?;
        tracing::info!(sku = %fill.sku, filled = page.filled.len(), more = page.next.is_some(), "backorders filled");
        if let Some(after) = page.next {
            self.stock_events
                .send(&Message::BackorderFillV1(BackorderFill {
                    sku: fill.sku.clone(),
                    after: Some(after),
                }))
                .await?;
        }
        Ok(())
    }

    /// Reserve plans: one SKU's, or a page of the book's SKUs and a message
    /// for the next. Without a `reserves` section reserves are set by hand,
    /// and a restock's message only asks for the SKU's fill.
    async fn on_plan(&self, run: &ReservePlanRun) -> Result<(), Failure> {
        let at = run.at.unwrap_or_else(Utc::now);
        let rules = self.table.current_rule_set().await?;
        let Some(reserves) = rules.as_ref().and_then(|r| r.rules.reserves()) else {
            let counted: BTreeSet<Sku> = run.sku.iter().chain(&run.skus).cloned().collect();
            self.ask_fills(&counted).await?;
            tracing::info!(sku = ?run.sku, "no reserves section: nothing to plan");
            return Ok(());
        };
        let seniority = rules
            .as_ref()
            .map(|r| r.rules.seniority())
            .unwrap_or_default();
        if let Some(sku) = &run.sku {
            return self.plan_one(sku, reserves, &seniority, at).await;
        }
        if !run.skus.is_empty() {
            let (now, rest) = run.skus.split_at(run.skus.len().min(PLAN_PAGE));
            for sku in now {
                self.plan_or_set_aside(sku, reserves, &seniority, at)
                    .await?;
            }
            if !rest.is_empty() {
                self.stock_events
                    .send(&Message::ReservePlanV1(ReservePlanRun {
                        skus: rest.to_vec(),
                        at: Some(at),
                        ..Default::default()
                    }))
                    .await?;
            }
            return Ok(());
        }
        let (skus, next) = self
            .table
            .planned_skus(run.after.as_ref(), PLAN_PAGE)
            .await?;
        for sku in &skus {
            self.plan_or_set_aside(sku, reserves, &seniority, at)
                .await?;
        }
        tracing::info!(planned = skus.len(), more = next.is_some(), %at, "reserve plans computed");
        if let Some(after) = next {
            self.stock_events
                .send(&Message::ReservePlanV1(ReservePlanRun {
                    after: Some(after),
                    at: Some(at),
                    ..Default::default()
                }))
                .await?;
        }
        Ok(())
    }

    /// One SKU of a page: a SKU whose plan fails goes on as a message of
    /// its own (retried, and dead-lettered with its reason if it keeps
    /// failing), so that it neither holds up nor repeats the SKUs after it.
    async fn plan_or_set_aside(
        &self,
        sku: &Sku,
        reserves: &ReserveRules,
        seniority: &std::collections::BTreeMap<TierId, u8>,
        at: DateTime<Utc>,
    ) -> Result<(), Failure> {
        if let Err(e) = self.plan_one(sku, reserves, seniority, at).await {
            tracing::warn!(%sku, error = %e, "reserve plan failed: set aside as its own message");
            self.stock_events
                .send(&Message::ReservePlanV1(ReservePlanRun {
                    sku: Some(sku.clone()),
                    at: Some(at),
                    ..Default::default()
                }))
                .await?;
        }
        Ok(())
    }

    async fn plan_one(
        &self,
        sku: &Sku,
        reserves: &ReserveRules,
        seniority: &std::collections::BTreeMap<TierId, u8>,
        at: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let planned = match self
            .table
            .plan_reserves(sku, reserves, seniority, &self.calendar, at)
            .await
        {
            Ok(Some(planned)) => planned,
            Ok(None) => return Ok(()),
            Err(StockError::Store(e)) => return Err(e.into()),
            // A plan never exceeds what is free: one that does is a defect,
            // not something a retry mends.
            Err(StockError::Refused(e)) => {
                return Err(Failure::permanent(
                    "plan_refused",
                    format!("SKU {sku}: {e}"),
                ));
            }
        };
        tracing::info!(%sku, reserves = ?planned.stock.reserves, pool = planned.stock.pool, written = planned.written, "reserve plan");
        if planned.stock.backordered > 0 && planned.stock.free() > 0 {
            self.ask_fills(&BTreeSet::from([sku.clone()])).await?;
        }
        Ok(())
    }
}
