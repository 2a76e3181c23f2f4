//! A SKU's stock item (see [`tier_domain::stock::levels`]): on hand, the
//! shared pool, a reserve per tier, allocated and backordered, each a
//! top-level number attribute (`reserve:<tier>` for the reserves) because
//! DynamoDB's `ADD` reaches top-level attributes only.
//!
//! Every change is a [`Move`] written as `ADD`s, each part it lowers
//! conditional on holding enough: two writers then commute, and one fails
//! only when the units it counted on are really gone, never because the
//! other touched the item. Items written before stock was kept by tier hold
//! one `available` count; they are converted the first time they are read,
//! and every write is conditional on the conversion having happened.
//!
//! A hot SKU's pool is spread over bucket items (`SKU#{sku}#B{b:02}`, see
//! [`tier_domain::stock::levels`]) so that concurrent payments write
//! different items. The home item says over how many (`lanes`) and how many
//! bucket items may exist (`cells`: buckets beyond the lanes keep what
//! their orders hold until it ships or comes back). A payment reads the
//! home item and its own bucket; everything else reads every cell. Counts,
//! plans and a change of buckets write the home item and every cell in one
//! transaction, each conditional on its on hand as read.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use tier_domain::calendar::Day;
use tier_domain::ids::{OrderRef, Sku, TierId};
use tier_domain::stock::levels::{self, Cell, CellMove, LevelsError, MAX_BUCKETS, Move, SkuStock};

use crate::reserve_plans::RunningDemand;

use crate::error::StoreError;
use crate::item::{self, Item, n, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

const ON_HAND: &str = "on_hand";
const POOL: &str = "pool";
const ALLOCATED: &str = "allocated";
const BACKORDERED: &str = "backordered";
const RESERVE_PREFIX: &str = "reserve:";
/// The single count of an item from before stock was kept by tier.
const LEGACY_AVAILABLE: &str = "available";
const MAX_ATTEMPTS: u32 = 8;

/// The delta sync that last moved an item's on hand.
const LAST_SYNC: &str = "last_sync";
/// On the home item: the buckets the pool is spread over, and the bucket
/// items that may exist.
const LANES: &str = "lanes";
const CELLS: &str = "cells";

/// What [`Table::read_stock_with`] read.
#[derive(Debug, Default)]
pub(crate) struct StockRead {
    pub stock: BTreeMap<Sku, SkuStock>,
    /// The running day of demand on each cell read that has one, by SKU
    /// and bucket (`None`: the home item).
    pub running: BTreeMap<(Sku, Option<u8>), RunningDemand>,
    /// The other items asked for, by key.
    pub extra: std::collections::HashMap<keys::Key, Item>,
    /// Spread SKUs of which only the order's own bucket was read.
    pub partial: BTreeSet<Sku>,
    /// What the home items say beyond the stock: the bucket items that may
    /// exist, and the delta sync that last moved on hand.
    pub cells: BTreeMap<Sku, u8>,
    pub last_sync: BTreeMap<Sku, String>,
}

/// One SKU's stock read in full, for a change decided on all of it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shelf {
    pub stock: SkuStock,
    /// Whether the home item exists.
    pub exists: bool,
    /// The bucket items that may exist.
    pub cells: u8,
    pub last_sync: Option<String>,
}

/// A payment's units of one SKU, for the tier it was paid in, on its day,
/// and the running day its stock item held when read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PaidDemand<'a> {
    pub tier: &'a TierId,
    pub day: Day,
    pub units: u64,
    /// The cell whose running day counts it ([`demand_cell`]).
    pub cell: Option<u8>,
    pub running: Option<&'a RunningDemand>,
}

/// The cell of a SKU's move that counts a payment's demand: the order's
/// own bucket when the move writes it, else the home item when it writes
/// that, else the first bucket it writes. Never a cell the payment would
/// not write anyway.
pub(crate) fn demand_cell(m: &Move, lane: Option<u8>) -> Option<u8> {
    match lane {
        Some(b) if m.buckets.contains_key(&b) => Some(b),
        _ if m.moves_home() => None,
        _ => m.buckets.keys().next().copied(),
    }
}

/// A SKU's stock after a change, and whether this call made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub stock: SkuStock,
    /// `false`: the sync had moved it already.
    pub changed: bool,
}

/// A stock change the store refused, or could not make.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error(transparent)]
    Refused(#[from] LevelsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an item says, and whether it still holds the old single count.
pub(crate) fn parse(i: &Item) -> Result<(SkuStock, bool), StoreError> {
    if i.contains_key(LEGACY_AVAILABLE) {
        let available = item::get_u64_or_zero(i, LEGACY_AVAILABLE)?;
        let stock = SkuStock {
            on_hand: available,
            pool: available,
            ..SkuStock::default()
        };
        return Ok((stock, true));
    }
    let mut stock = SkuStock {
        on_hand: item::get_u64_or_zero(i, ON_HAND)?,
        pool: item::get_u64_or_zero(i, POOL)?,
        allocated: item::get_u64_or_zero(i, ALLOCATED)?,
        backordered: item::get_u64_or_zero(i, BACKORDERED)?,
        ..SkuStock::default()
    };
    for name in i.keys() {
        if let Some(tier) = name.strip_prefix(RESERVE_PREFIX) {
            let tier = TierId::parse(tier)
                .map_err(|e| StoreError::corrupt(&item::key_of(i), format!("{name}: {e}")))?;
            let units = item::get_u64_or_zero(i, name)?;
            if units > 0 {
                stock.reserves.insert(tier, units);
            }
        }
    }
    if !stock.is_consistent() {
        return Err(StoreError::corrupt(
            &item::key_of(i),
            format!("the parts do not sum to on hand: {stock:?}"),
        ));
    }
    stock.lanes = bucket_count(i, LANES)?;
    Ok((stock, false))
}

fn bucket_count(i: &Item, name: &str) -> Result<u8, StoreError> {
    let k = item::get_u64_or_zero(i, name)?;
    if k > u64::from(MAX_BUCKETS) {
        return Err(StoreError::corrupt(
            &item::key_of(i),
            format!("{name} of {k} is above {MAX_BUCKETS}"),
        ));
    }
    Ok(k as u8)
}

/// The bucket items a home item says may exist.
pub(crate) fn cells_of(i: &Item) -> Result<u8, StoreError> {
    Ok(bucket_count(i, CELLS)?.max(bucket_count(i, LANES)?))
}

/// A bucket item's share.
pub(crate) fn parse_bucket(i: &Item) -> Result<Cell, StoreError> {
    let cell = Cell {
        on_hand: item::get_u64_or_zero(i, ON_HAND)?,
        pool: item::get_u64_or_zero(i, POOL)?,
        allocated: item::get_u64_or_zero(i, ALLOCATED)?,
        backordered: item::get_u64_or_zero(i, BACKORDERED)?,
    };
    if cell.pool + cell.allocated != cell.on_hand {
        return Err(StoreError::corrupt(
            &item::key_of(i),
            format!("the bucket's parts do not sum to its on hand: {cell:?}"),
        ));
    }
    Ok(cell)
}

/// What an item says, read only: an old single count reads as all of it
/// in the pool.
pub(crate) fn parse_levels(i: &Item) -> Result<SkuStock, StoreError> {
    Ok(parse(i)?.0)
}

/// An update expression in the making: placeholders for every name and
/// value, since tier ids may be anything an attribute name can hold.
#[derive(Default)]
struct Expression {
    adds: Vec<String>,
    sets: Vec<String>,
    removes: Vec<String>,
    conditions: Vec<String>,
    names: Vec<(String, String)>,
    values: Vec<(String, AttributeValue)>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#a{}", self.names.len());
        self.names.push((placeholder.clone(), attribute.to_owned()));
        placeholder
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.push((placeholder.clone(), v));
        placeholder
    }

    /// `ADD attribute delta`, conditional on the part holding enough when
    /// the delta lowers it.
    fn add(&mut self, attribute: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let name = self.name(attribute);
        let value = self.value(n(delta));
        self.adds.push(format!("{name} {value}"));
        if delta < 0 {
            let enough = self.value(n(-delta));
            self.conditions.push(format!("{name} >= {enough}"));
        }
    }

    /// Counts a payment's units on the item's running day (see
    /// [`crate::reserve_plans`]), conditional on that day being as read.
    /// Returns the units of a day to add to its own item: the running day's
    /// when the payment's day is later (the item moves on to it), or the
    /// payment's when that day has left the item already.
    fn count_demand(&mut self, d: PaidDemand<'_>) -> Option<(Day, BTreeMap<TierId, u64>)> {
        use crate::reserve_plans::{DEMAND_DAY, DEMAND_WRITES, RUNNING_PREFIX};
        // A late payment leaves the item's counters alone (and DynamoDB
        // refuses placeholders an expression does not use).
        if let Some(r) = d.running
            && r.day > d.day
        {
            return Some((d.day, BTreeMap::from([(d.tier.clone(), d.units)])));
        }
        let day_name = self.name(DEMAND_DAY);
        let counter = self.name(&format!("{RUNNING_PREFIX}{}", d.tier));
        let units = self.value(n(d.units));
        // Every write to the running day counts itself, so that moving the
        // day out is refused if one came between its read and its write:
        // the counters it moves are then exactly those it read.
        let writes = self.name(DEMAND_WRITES);
        let one = self.value(n(1));
        match d.running {
            Some(r) if r.day == d.day => {
                let day = self.value(s(r.day.to_string()));
                self.conditions.push(format!("{day_name} = {day}"));
                self.adds.push(format!("{counter} {units}"));
                self.adds.push(format!("{writes} {one}"));
                None
            }
            running => {
                let new_day = self.value(s(d.day.to_string()));
                self.sets.push(format!("{day_name} = {new_day}"));
                self.sets.push(format!("{counter} = {units}"));
                self.sets.push(format!("{writes} = {one}"));
                match running {
                    Some(r) => {
                        let old_day = self.value(s(r.day.to_string()));
                        self.conditions.push(format!("{day_name} = {old_day}"));
                        let read = self.value(n(r.writes));
                        self.conditions.push(if r.writes == 0 {
                            format!("(attribute_not_exists({writes}) OR {writes} = {read})")
                        } else {
                            format!("{writes} = {read}")
                        });
                        for tier in r.units.keys().filter(|t| *t != d.tier) {
                            let name = self.name(&format!("{RUNNING_PREFIX}{tier}"));
                            self.removes.push(name);
                        }
                        Some((r.day, r.units.clone())).filter(|(_, u)| !u.is_empty())
                    }
                    None => {
                        self.conditions
                            .push(format!("attribute_not_exists({day_name})"));
                        None
                    }
                }
            }
        }
    }

    /// The home item's share of `m`.
    fn for_home(m: &Move) -> Self {
        let mut e = Expression::for_cell(&m.home());
        e.conditions
            .push(format!("attribute_not_exists({LEGACY_AVAILABLE})"));
        for (tier, delta) in &m.reserves {
            e.add(&format!("{RESERVE_PREFIX}{tier}"), *delta);
        }
        e
    }

    fn for_cell(m: &CellMove) -> Self {
        let mut e = Expression::default();
        e.add(ON_HAND, m.on_hand);
        e.add(POOL, m.pool);
        e.add(ALLOCATED, m.allocated);
        e.add(BACKORDERED, m.backordered);
        e
    }

    /// Conditional on the cell's on hand being `was`: what a change decided
    /// on every cell as read depends on.
    fn on_hand_was(&mut self, was: u64) {
        let on_hand = self.name(ON_HAND);
        let value = self.value(n(was));
        self.conditions.push(if was == 0 {
            format!("(attribute_not_exists({on_hand}) OR {on_hand} = {value})")
        } else {
            format!("{on_hand} = {value}")
        });
    }

    /// The item's entity and SKU, for a write that may create it.
    fn label(&mut self, sku: &Sku, at: DateTime<Utc>, entity: &str) {
        let entity_value = self.value(s(entity));
        let entity = self.name(keys::ENTITY);
        let sku_name = self.name("sku");
        let sku_value = self.value(s(sku.as_str()));
        let updated = self.name("updated_at");
        let updated_value = self.value(s(at.to_rfc3339()));
        self.sets.extend([
            format!("{entity} = {entity_value}"),
            format!("{sku_name} = {sku_value}"),
            format!("{updated} = {updated_value}"),
        ]);
    }

    fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        parts.join(" ")
    }

    fn build(self, table: &str, (pk, sk): keys::Key) -> Update {
        let update = Update::builder()
            .table_name(table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(self.update_expression());
        let update = if self.conditions.is_empty() {
            update
        } else {
            update.condition_expression(self.conditions.join(" AND "))
        };
        let update = self
            .names
            .into_iter()
            .fold(update, |u, (p, a)| u.expression_attribute_names(p, a));
        self.values
            .into_iter()
            .fold(update, |u, (p, v)| u.expression_attribute_values(p, v))
            .build()
            .expect("an update has its key and expression")
    }

    /// A check of the conditions alone, for a cell a change depends on but
    /// does not move.
    fn check(self, table: &str, (pk, sk): keys::Key) -> ConditionCheck {
        let check = ConditionCheck::builder()
            .table_name(table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .condition_expression(self.conditions.join(" AND "));
        let check = self
            .names
            .into_iter()
            .fold(check, |c, (p, a)| c.expression_attribute_names(p, a));
        self.values
            .into_iter()
            .fold(check, |c, (p, v)| c.expression_attribute_values(p, v))
            .build()
            .expect("a check has its key and condition")
    }
}

impl Table {
    /// The write that applies `m` to `sku`'s stock, refused whole if a part
    /// it lowers holds too little; with a payment's `demand`, that is
    /// counted too (see [`crate::reserve_plans`]), and the write of a day's
    /// demand that leaves the item, or comes after its day left, is
    /// returned beside it for the same transaction.
    ///
    /// A spread SKU's move writes only the cells it moves: the home item for
    /// reserves and its own parts, and each bucket for its share.
    pub(crate) fn stock_update(
        &self,
        sku: &Sku,
        m: &Move,
        demand: Option<PaidDemand<'_>>,
    ) -> (Vec<Update>, Option<Update>) {
        let mut side = None;
        let mut count = |e: &mut Expression, cell: Option<u8>| {
            if let Some(d) = demand.filter(|d| d.cell == cell) {
                side = e.count_demand(d).map(|(day, units)| {
                    crate::reserve_plans::demand_update(&self.name, sku, day, &units)
                });
            }
        };
        let mut updates = Vec::with_capacity(1 + m.buckets.len());
        if m.moves_home() || demand.is_some_and(|d| d.cell.is_none()) {
            let mut e = Expression::for_home(m);
            count(&mut e, None);
            updates.push(e.build(&self.name, keys::stock(sku)));
        }
        for (b, cell) in &m.buckets {
            let mut e = Expression::for_cell(cell);
            count(&mut e, Some(*b));
            updates.push(e.build(&self.name, keys::stock_bucket(sku, *b)));
        }
        (updates, side)
    }

    /// The stock of each of `skus` that has an item, strongly consistent,
    /// in one request per 100 SKUs; `extra` keys are read beside them.
    ///
    /// A spread SKU's buckets are read in a second request: for `order`'s
    /// payment only its own bucket (the SKU is then in `partial`), else
    /// every one.
    pub(crate) async fn read_stock_with(
        &self,
        skus: &BTreeSet<Sku>,
        extra: &[keys::Key],
        order: Option<&OrderRef>,
    ) -> Result<StockRead, StoreError> {
        let mut wanted: Vec<keys::Key> = skus.iter().map(keys::stock).collect();
        wanted.extend_from_slice(extra);
        let mut items = self.batch_get(&wanted, true).await?;
        let mut read = StockRead::default();
        let mut buckets: Vec<(Sku, u8)> = Vec::new();
        let order = order.map(ToString::to_string);
        for sku in skus {
            let Some(i) = items.remove(&keys::stock(sku)) else {
                continue;
            };
            let (stock, legacy) = parse(&i)?;
            if legacy {
                self.convert_legacy(sku).await?;
            }
            let cells = cells_of(&i)?;
            match order.as_deref() {
                // A payment reads its own bucket, if the SKU is spread: the
                // others only when that is short. (A SKU spread before and
                // no longer keeps its pool at home.)
                Some(o) if cells > 0 => {
                    buckets.extend(levels::lane(o, stock.lanes).map(|b| (sku.clone(), b)));
                    read.partial.insert(sku.clone());
                }
                _ => buckets.extend((0..cells).map(|b| (sku.clone(), b))),
            }
            read.stock.insert(sku.clone(), stock);
            read.cells.insert(sku.clone(), cells);
            if let Some(id) = item::opt_s(&i, LAST_SYNC) {
                read.last_sync.insert(sku.clone(), id.to_owned());
            }
            if let Some(running) = crate::reserve_plans::parse_running(&i)? {
                read.running.insert((sku.clone(), None), running);
            }
        }
        read.extra = items;
        self.add_buckets(buckets, &mut read.stock, &mut read.running)
            .await?;
        Ok(read)
    }

    /// Buckets `wanted` of spread SKUs, strongly consistent, in one request
    /// per 100: each one's share and its running day, for those that exist.
    pub(crate) async fn read_buckets(
        &self,
        wanted: Vec<(Sku, u8)>,
    ) -> Result<Vec<(Sku, u8, Cell, Option<RunningDemand>)>, StoreError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<keys::Key> = wanted
            .iter()
            .map(|(sku, b)| keys::stock_bucket(sku, *b))
            .collect();
        let found = self.batch_get(&keys, true).await?;
        let mut read = Vec::with_capacity(found.len());
        for ((sku, b), key) in wanted.into_iter().zip(keys) {
            if let Some(i) = found.get(&key) {
                let running = crate::reserve_plans::parse_running(i)?;
                read.push((sku, b, parse_bucket(i)?, running));
            }
        }
        Ok(read)
    }

    /// Reads buckets `wanted` into the stock read of their SKUs.
    async fn add_buckets(
        &self,
        wanted: Vec<(Sku, u8)>,
        stock: &mut BTreeMap<Sku, SkuStock>,
        running: &mut BTreeMap<(Sku, Option<u8>), RunningDemand>,
    ) -> Result<(), StoreError> {
        for (sku, b, cell, day) in self.read_buckets(wanted).await? {
            if let Some(s) = stock.get_mut(&sku) {
                s.add_cell(b, cell);
            }
            if let Some(day) = day {
                running.insert((sku, Some(b)), day);
            }
        }
        Ok(())
    }

    /// Completes a payment's read of `skus` (their home items and own
    /// buckets, in `stock`) with every other bucket, in one request.
    pub(crate) async fn read_other_buckets(
        &self,
        skus: &BTreeSet<Sku>,
        cells: &BTreeMap<Sku, u8>,
        stock: &mut BTreeMap<Sku, SkuStock>,
        running: &mut BTreeMap<(Sku, Option<u8>), RunningDemand>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<(Sku, u8)> = skus
            .iter()
            .flat_map(|sku| {
                let read = stock.get(sku);
                (0..cells.get(sku).copied().unwrap_or(0))
                    .filter(move |b| read.is_some_and(|s| !s.buckets.contains_key(b)))
                    .map(move |b| (sku.clone(), b))
            })
            .collect();
        self.add_buckets(wanted, stock, running).await
    }

    /// One SKU's stock, every cell, with what a change of it needs.
    pub(crate) async fn read_shelf(&self, sku: &Sku) -> Result<Shelf, StoreError> {
        let skus = BTreeSet::from([sku.clone()]);
        let mut read = self.read_stock_with(&skus, &[], None).await?;
        let Some(stock) = read.stock.remove(sku) else {
            return Ok(Shelf::default());
        };
        Ok(Shelf {
            stock,
            exists: true,
            cells: read.cells.remove(sku).unwrap_or(0),
            last_sync: read.last_sync.remove(sku),
        })
    }

    /// The stock of each of `skus` that has an item ([`Table::read_stock_with`]
    /// alone).
    pub async fn read_stock(
        &self,
        skus: &BTreeSet<Sku>,
    ) -> Result<BTreeMap<Sku, SkuStock>, StoreError> {
        Ok(self.read_stock_with(skus, &[], None).await?.stock)
    }

    /// Turns an item's single count into the parts: all of it on hand and
    /// in the pool (the units its orders took had left on hand). Done once:
    /// a second conversion finds nothing to convert.
    pub(crate) async fn convert_legacy(&self, sku: &Sku) -> Result<(), StoreError> {
        self.update_if_named(
            &keys::stock(sku),
            "SET #oh = #av, #pool = #av REMOVE #av",
            Some("attribute_exists(#av)"),
            &[("#oh", ON_HAND), ("#pool", POOL), ("#av", LEGACY_AVAILABLE)],
            [],
        )
        .await?;
        Ok(())
    }

    /// A SKU's stock; `None` if it has no stock item.
    pub async fn stock(&self, sku: &Sku) -> Result<Option<SkuStock>, StoreError> {
        let skus = BTreeSet::from([sku.clone()]);
        Ok(self.read_stock(&skus).await?.remove(sku))
    }

    /// Sets a SKU's on hand from a stock count: a rise goes to the pool, a
    /// fall comes out of the pool and then the reserves, most junior first
    /// (`junior_first`), and a count below what orders hold is refused.
    pub async fn set_stock(
        &self,
        sku: &Sku,
        on_hand: u64,
        junior_first: &[TierId],
        at: DateTime<Utc>,
    ) -> Result<SkuStock, StockError> {
        let done = self
            .change_stock(sku, at, None, None, |now| {
                now.recount(on_hand, junior_first)
            })
            .await?;
        Ok(done.stock)
    }

    /// Adds `delta` to a SKU's on hand (a line of the ERP's delta sync
    /// `sync_id`), as [`Table::set_stock`] counts, once per sync id: a
    /// resent file finds the SKU already moved by it and moves it no more.
    pub async fn add_stock_once(
        &self,
        sku: &Sku,
        delta: i64,
        sync_id: &str,
        junior_first: &[TierId],
        at: DateTime<Utc>,
    ) -> Result<Synced, StockError> {
        self.change_stock(sku, at, Some(sync_id), None, |now| {
            let on_hand =
                now.on_hand
                    .checked_add_signed(delta)
                    .ok_or(LevelsError::BelowAllocated {
                        asked: 0,
                        allocated: now.allocated,
                    })?;
            now.recount(on_hand, junior_first)
        })
        .await
    }

    /// Sets a SKU's reserves to `plan` (a tier absent keeps none); the pool
    /// takes up the difference, and a plan beyond what is free is refused.
    pub async fn set_reserves(
        &self,
        sku: &Sku,
        plan: &BTreeMap<TierId, u64>,
        at: DateTime<Utc>,
    ) -> Result<SkuStock, StockError> {
        Ok(self
            .change_stock(sku, at, None, None, |now| now.replan(plan))
            .await?
            .stock)
    }

    /// Spreads a SKU's pool over `lanes` buckets (0: back into one item),
    /// evenly; what orders hold stays in the bucket it was taken from.
    pub async fn set_buckets(
        &self,
        sku: &Sku,
        lanes: u8,
        at: DateTime<Utc>,
    ) -> Result<SkuStock, StockError> {
        Ok(self
            .change_stock(sku, at, None, Some(lanes), |now| {
                now.rebucket(u64::from(lanes))
            })
            .await?
            .stock)
    }

    /// The writes of `m`, a count, a plan or a change of buckets decided on
    /// `shelf` as read: conditional on on hand (every cell's) and the
    /// reserves being still as read (or on the item being absent, if it
    /// was), and labelled with the sync that made it, if any. `lanes`: the
    /// buckets the pool is spread over from now on.
    pub(crate) fn update_as_read(
        &self,
        sku: &Sku,
        shelf: &Shelf,
        m: &Move,
        at: DateTime<Utc>,
        sync_id: Option<&str>,
        lanes: Option<u8>,
    ) -> Vec<TransactWriteItem> {
        let read = &shelf.stock;
        let mut e = Expression::for_home(m);
        e.label(sku, at, "stock");
        if let Some(id) = sync_id {
            let name = e.name(LAST_SYNC);
            let value = e.value(s(id));
            e.sets.push(format!("{name} = {value}"));
        }
        if let Some(k) = lanes {
            for (attr, value) in [(LANES, k), (CELLS, k.max(shelf.cells))] {
                let name = e.name(attr);
                let value = e.value(n(value));
                e.sets.push(format!("{name} = {value}"));
            }
        }
        if shelf.exists {
            // An item its backorders created holds no on hand yet.
            e.on_hand_was(read.home().on_hand);
            let tiers: BTreeSet<&TierId> = read.reserves.keys().chain(m.reserves.keys()).collect();
            for tier in tiers {
                let name = e.name(&format!("{RESERVE_PREFIX}{tier}"));
                let units = read.reserves.get(tier).copied().unwrap_or(0);
                let was = e.value(n(units));
                e.conditions.push(if units == 0 {
                    format!("(attribute_not_exists({name}) OR {name} = {was})")
                } else {
                    format!("{name} = {was}")
                });
            }
        } else {
            let pk = e.name(keys::PK);
            e.conditions.push(format!("attribute_not_exists({pk})"));
        }
        let mut writes = vec![
            TransactWriteItem::builder()
                .update(e.build(&self.name, keys::stock(sku)))
                .build(),
        ];
        // Every cell, moved or not: a shipment out of any of them changes
        // the on hand the change was decided on.
        let cells: BTreeSet<u8> = read
            .buckets
            .keys()
            .chain(m.buckets.keys())
            .copied()
            .collect();
        for b in cells {
            let was = read.buckets.get(&b).map_or(0, |c| c.on_hand);
            let key = keys::stock_bucket(sku, b);
            writes.push(match m.buckets.get(&b) {
                Some(cell) => {
                    let mut e = Expression::for_cell(cell);
                    e.label(sku, at, "stock_bucket");
                    e.on_hand_was(was);
                    TransactWriteItem::builder()
                        .update(e.build(&self.name, key))
                        .build()
                }
                None => {
                    let mut e = Expression::default();
                    e.on_hand_was(was);
                    TransactWriteItem::builder()
                        .condition_check(e.check(&self.name, key))
                        .build()
                }
            });
        }
        writes
    }

    /// Reads, decides and writes one change, conditional on on hand and
    /// the reserves being as read (a count or a plan states what they are
    /// to be, so one made against stale parts is made again); the pool and
    /// allocations may move under it, as orders do.
    async fn change_stock(
        &self,
        sku: &Sku,
        at: DateTime<Utc>,
        sync_id: Option<&str>,
        lanes: Option<u8>,
        decide: impl Fn(&SkuStock) -> Result<Move, LevelsError>,
    ) -> Result<Synced, StockError> {
        for attempt in 0..MAX_ATTEMPTS {
            // An old single count reads as what its conversion writes.
            let shelf = self.read_shelf(sku).await?;
            if sync_id.is_some() && shelf.last_sync.as_deref() == sync_id {
                return Ok(Synced {
                    stock: shelf.stock,
                    changed: false,
                });
            }
            let m = decide(&shelf.stock)?;
            let writes = self.update_as_read(sku, &shelf, &m, at, sync_id, lanes);
            match self.transact(writes).await? {
                TxOutcome::Committed => {
                    let mut next = shelf.stock;
                    next.apply(&m)?;
                    if let Some(k) = lanes {
                        next.lanes = k;
                    }
                    next.buckets.retain(|_, c| *c != Cell::default());
                    return Ok(Synced {
                        stock: next,
                        changed: true,
                    });
                }
                TxOutcome::ConditionFailed { .. } => crate::table::backoff(attempt + 1).await,
            }
        }
        Err(StoreError::Contention {
            what: format!("stock of SKU {sku}"),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }
}
