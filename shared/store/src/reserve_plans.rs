//! Reserve plans (see [`tier_domain::stock::plan`]) as the store keeps
//! them, beside the SKU's stock item in its partition:
//!
//! - the running day, on the stock item itself: `demand_day` and the units
//!   each tier's payments asked for that day (`dmd:<tier>`), added in the
//!   write that takes the payment's stock, so a payment costs no write of
//!   its own and a redelivered one adds nothing. The first payment of a
//!   later day moves the running day out to its own item in the same
//!   transaction (once a day a SKU sells), conditional on no write to the
//!   day since it was read (`demand_writes`), and a payment of a day that
//!   has moved out already (a late delivery) adds to that day's item;
//! - `DEMAND#{YYYY-MM-DD}`: a past day's units per tier (`d:<tier>`); kept
//!   a year and a month;
//! - `PLAN`: the last plan, with the inputs that gave it.
//!
//! A spread SKU's buckets each keep a running day of their own, for the
//! payments that write them.
//!
//! One strongly consistent Query reads the history, the plan and the stock
//! together (the sort keys `DEMAND#…` < `PLAN` < `STOCK`), and a spread
//! SKU's buckets, in partitions of their own, are read in one BatchGetItem
//! after it; the new reserves and the plan are written in one transaction,
//! the reserves conditional on on hand (every cell's) and the reserves
//! being as read.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use tier_domain::calendar::{BrandCalendar, Day};
use tier_domain::ids::{Sku, TierId};
use tier_domain::stock::levels::{Move, SkuStock};
use tier_domain::stock::plan::{
    self, DailyDemand, MAX_HISTORY_DAYS, PlanInputs, ReservePlan, ReserveRules,
};

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::stock::{Shelf, StockError};
use crate::table::{Table, TxOutcome};

const TIER_PREFIX: &str = "d:";
/// The stock item's running day of demand, and its counters.
pub(crate) const DEMAND_DAY: &str = "demand_day";
pub(crate) const RUNNING_PREFIX: &str = "dmd:";
/// Writes to the running day since it began: what moving it out is
/// conditional on.
pub(crate) const DEMAND_WRITES: &str = "demand_writes";
/// The plan's instant in microseconds, for the condition that no plan
/// replaces one of a later instant.
const COMPUTED_US: &str = "computed_us";
/// A day's demand is kept past the longest history a plan reads.
const DEMAND_KEPT_DAYS: i64 = MAX_HISTORY_DAYS as i64 + 30;
const MAX_ATTEMPTS: u32 = 8;

/// A stock item's running day of demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunningDemand {
    pub day: Day,
    pub units: BTreeMap<TierId, u64>,
    /// Writes to it so far.
    pub writes: u64,
}

/// The running day a stock item holds, if it has one.
pub(crate) fn parse_running(i: &Item) -> Result<Option<RunningDemand>, StoreError> {
    let Some(day) = item::opt_s(i, DEMAND_DAY) else {
        return Ok(None);
    };
    let (day, units) = parse_counts(i, day, RUNNING_PREFIX)?;
    Ok(Some(RunningDemand {
        day,
        units,
        writes: item::get_u64_or_zero(i, DEMAND_WRITES)?,
    }))
}

/// Adds `units` (per tier) to `sku`'s demand on `day`, creating the day:
/// ADDs, so that writes to one day commute.
pub(crate) fn demand_update(
    table: &str,
    sku: &Sku,
    day: Day,
    units: &BTreeMap<TierId, u64>,
) -> Update {
    let (pk, sk) = keys::sku_demand(sku, day);
    let expires = day.midnight_utc_timestamp() + DEMAND_KEPT_DAYS * 86_400;
    let mut adds = Vec::new();
    let update = Update::builder()
        .table_name(table)
        .key(keys::PK, s(pk))
        .key(keys::SK, s(sk))
        .expression_attribute_names("#e", keys::ENTITY)
        .expression_attribute_names("#x", keys::TTL)
        .expression_attribute_values(":e", s("sku_demand"))
        .expression_attribute_values(":x", n(expires));
    let update = units
        .iter()
        .enumerate()
        .fold(update, |u, (i, (tier, units))| {
            adds.push(format!("#u{i} :u{i}"));
            u.expression_attribute_names(format!("#u{i}"), format!("{TIER_PREFIX}{tier}"))
                .expression_attribute_values(format!(":u{i}"), n(units))
        });
    update
        .update_expression(format!("SET #e = :e, #x = :x ADD {}", adds.join(", ")))
        .build()
        .expect("an update has its key and expression")
}

/// A day's counts: `day`, and the attributes named `prefix<tier>`.
fn parse_counts(
    i: &Item,
    day: &str,
    prefix: &str,
) -> Result<(Day, BTreeMap<TierId, u64>), StoreError> {
    let day = Day::parse(day).map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))?;
    let mut tiers = BTreeMap::new();
    for name in i.keys() {
        if let Some(tier) = name.strip_prefix(prefix) {
            let tier = TierId::parse(tier)
                .map_err(|e| StoreError::corrupt(&item::key_of(i), format!("{name}: {e}")))?;
            tiers.insert(tier, item::get_u64_or_zero(i, name)?);
        }
    }
    Ok((day, tiers))
}

fn add_day(demand: &mut DailyDemand, day: Day, units: BTreeMap<TierId, u64>) {
    let into = demand.entry(day).or_default();
    for (tier, u) in units {
        *into.entry(tier).or_default() += u;
    }
}

/// What one plan computation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub plan: ReservePlan,
    /// The stock after it.
    pub stock: SkuStock,
    /// What it moved between the pool and the reserves.
    pub moved: Move,
    /// `false`: the same plan was in place, and nothing was written.
    pub written: bool,
}

/// What a SKU's partition holds for planning.
#[derive(Default)]
struct Read {
    demand: DailyDemand,
    plan: Option<ReservePlan>,
    /// The stock, every cell, and whether the home item still held its old
    /// single count.
    stock: Option<(Shelf, bool)>,
}

impl Table {
    async fn read_for_plan(&self, sku: &Sku, from: Day) -> Result<Read, StoreError> {
        let (pk, stock_sk) = keys::stock(sku);
        let plan_sk = keys::reserve_plan(sku).1;
        let mut read = Read::default();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(keys::sku_demand(sku, from).1))
                .expression_attribute_values(":to", s(&stock_sk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", e))?;
            for i in out.items.unwrap_or_default() {
                let sk = item::get_s(&i, keys::SK)?;
                if let Some(day) = sk.strip_prefix(keys::SKU_DEMAND_PREFIX) {
                    let (day, tiers) = parse_counts(&i, day, TIER_PREFIX)?;
                    add_day(&mut read.demand, day, tiers);
                } else if sk == plan_sk {
                    read.plan = Some(item::get_json(&i, "plan")?);
                } else if sk == stock_sk {
                    let (stock, legacy) = crate::stock::parse(&i)?;
                    let shelf = Shelf {
                        stock,
                        exists: true,
                        cells: crate::stock::cells_of(&i)?,
                        last_sync: None,
                    };
                    read.stock = Some((shelf, legacy));
                    if let Some(r) = parse_running(&i)? {
                        add_day(&mut read.demand, r.day, r.units);
                    }
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let Some((shelf, _)) = read.stock.as_mut() else {
            return Ok(read);
        };
        let wanted = (0..shelf.cells).map(|b| (sku.clone(), b)).collect();
        for (_, b, cell, running) in self.read_buckets(wanted).await? {
            shelf.stock.add_cell(b, cell);
            if let Some(r) = running {
                add_day(&mut read.demand, r.day, r.units);
            }
        }
        Ok(read)
    }

    /// Computes `sku`'s reserve plan at `at` and puts it in place: the
    /// reserves move to the plan's, the pool takes up the difference. A SKU
    /// without stock has nothing to plan (`None`). The same plan again
    /// writes nothing, nor does one older than the plan in place; a plan
    /// that loses to an order or a count drawing on the same parts is
    /// computed again from what they left.
    pub async fn plan_reserves(
        &self,
        sku: &Sku,
        rules: &ReserveRules,
        seniority: &BTreeMap<TierId, u8>,
        calendar: &BrandCalendar,
        at: DateTime<Utc>,
    ) -> Result<Option<Planned>, StockError> {
        let today = calendar.day_of(at);
        let (from, _) = rules.history(today);
        for attempt in 0..MAX_ATTEMPTS {
            let read = self.read_for_plan(sku, from).await?;
            let Some((shelf, legacy)) = read.stock else {
                return Ok(None);
            };
            let mut stock = shelf.stock.clone();
            if legacy {
                self.convert_legacy(sku).await?;
                continue;
            }
            // A plan of a later instant is in place (a restock's, say, ahead
            // of a delayed page of the hourly sweep): this one would undo it.
            if let Some(newer) = read.plan.as_ref().filter(|p| p.computed_at > at) {
                return Ok(Some(Planned {
                    plan: newer.clone(),
                    stock,
                    moved: Move::default(),
                    written: false,
                }));
            }
            let planned = plan::plan(
                rules,
                &PlanInputs {
                    sku,
                    at,
                    today,
                    free: stock.free(),
                    seniority,
                    demand: &read.demand,
                },
            );
            let m = stock.replan(&planned.reserves())?;
            if m.is_empty() && read.plan.as_ref().is_some_and(|p| p.same_as(&planned)) {
                return Ok(Some(Planned {
                    plan: read.plan.expect("checked above"),
                    stock,
                    moved: m,
                    written: false,
                }));
            }
            let mut tx = Vec::with_capacity(2);
            if !m.is_empty() {
                tx.extend(self.update_as_read(sku, &shelf, &m, at, None, None));
            }
            tx.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.name)
                            .set_item(Some(new_item(
                                &keys::reserve_plan(sku),
                                "reserve_plan",
                                [
                                    ("plan", item::json(&planned)),
                                    ("sku", s(sku.as_str())),
                                    (COMPUTED_US, n(at.timestamp_micros())),
                                ],
                            )))
                            // And none of a later instant came in between.
                            .condition_expression("attribute_not_exists(#c) OR #c <= :at")
                            .expression_attribute_names("#c", COMPUTED_US)
                            .expression_attribute_values(":at", n(at.timestamp_micros()))
                            .build()
                            .expect("put has item"),
                    )
                    .build(),
            );
            match self.transact(tx).await? {
                TxOutcome::Committed => {
                    stock.apply(&m)?;
                    return Ok(Some(Planned {
                        plan: planned,
                        stock,
                        moved: m,
                        written: true,
                    }));
                }
                TxOutcome::ConditionFailed { .. } => crate::table::backoff(attempt + 1).await,
            }
        }
        Err(StoreError::Contention {
            what: format!("reserve plan of SKU {sku}"),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The plan last put in place for `sku`, if any.
    pub async fn reserve_plan(&self, sku: &Sku) -> Result<Option<ReservePlan>, StoreError> {
        self.get(&keys::reserve_plan(sku), false)
            .await?
            .map(|i| item::get_json(&i, "plan"))
            .transpose()
    }

    /// `sku`'s demand per day and tier from `from` to `to`, both included.
    pub async fn sku_demand(
        &self,
        sku: &Sku,
        from: Day,
        to: Day,
    ) -> Result<DailyDemand, StoreError> {
        let read = self.read_for_plan(sku, from).await?;
        Ok(read.demand.into_iter().filter(|(d, _)| *d <= to).collect())
    }

    /// A page of the SKUs the plans cover: the current price book's, in
    /// order, after the SKU `after`. Empty without a book.
    pub async fn planned_skus(
        &self,
        after: Option<&Sku>,
        limit: usize,
    ) -> Result<(Vec<Sku>, Option<Sku>), StoreError> {
        let Some(book) = self.current_book().await? else {
            return Ok((Vec::new(), None));
        };
        let pk = keys::book_partition(book.version);
        let after = after.map(|sku| keys::book_entry(book.version, sku).1);
        let (items, next) = self
            .query_page(&pk, "SKU#", after.as_deref(), Some(limit as i32), false)
            .await?;
        let parse = |sk: &str| {
            Sku::parse(sk.trim_start_matches("SKU#"))
                .map_err(|e| StoreError::corrupt(&(pk.clone(), sk.to_owned()), e.to_string()))
        };
        let skus = items
            .iter()
            .map(|i| item::get_s(i, keys::SK).and_then(parse))
            .collect::<Result<Vec<_>, _>>()?;
        let next = next.as_deref().map(parse).transpose()?;
        Ok((skus, next))
    }
}
