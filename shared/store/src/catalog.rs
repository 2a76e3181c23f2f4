//! Each order's reservations against its SKUs' stock: one record per
//! order (see [`tier_domain::stock`]) written in one transaction with the
//! stock it moves (see [`crate::stock`]).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use tier_domain::calendar::Day;
use tier_domain::fulfilment;
use tier_domain::ids::{EventId, OrderRef, Sku, TierId};
use tier_domain::order::{OrderLine, ReturnedLine};
use tier_domain::stock::levels::Move;
use tier_domain::stock::{OrderStock, Payer, Payment, ShipError, Shipment, StockMoves};

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::reserve_plans::RunningDemand;
use crate::stock::PaidDemand;
use crate::table::{Table, TxOutcome};

/// What a payment did to stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// Reserved; the SKUs listed lacked stock for some line, backordered.
    Reserved { backordered: Vec<Sku> },
    /// The order was cancelled before its payment arrived: nothing reserved.
    OrderCancelled,
    /// Already handled by an earlier delivery.
    Duplicate,
}

/// SKUs whose stock one transaction moves, beside the order's record: each
/// SKU's update, the entry of its backorder list the step adds or removes,
/// and the day's demand a payment adds to (TransactWriteItems takes 100
/// actions; BatchGetItem 100 keys).
const SKUS_PER_TRANSACTION: usize = 33;
/// The actions one transaction takes.
const TRANSACTION_ACTIONS: usize = 100;

/// SKUs a payment's transaction may take from `stock` as read: each may
/// write its home item and every bucket read, its backorder entry and its
/// day of demand, beside the record. With a spread SKU read in full, fewer
/// go together (99 / (3 + K)), one alone from K = 47.
fn skus_per_transaction(stock: &BTreeMap<Sku, tier_domain::stock::levels::SkuStock>) -> usize {
    let cells = stock.values().map(|s| s.buckets.len()).max().unwrap_or(0);
    ((TRANSACTION_ACTIONS - 1) / (3 + cells)).clamp(1, SKUS_PER_TRANSACTION)
}

/// The actions writing `moves` with the record takes, at most.
fn actions(moves: &StockMoves) -> usize {
    1 + moves
        .values()
        .map(|m| usize::from(m.moves_home()) + m.buckets.len() + 2)
        .sum::<usize>()
}
const MAX_ATTEMPTS: u32 = 8;

/// What a cancellation or refund gave back to stock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    pub units: i64,
    /// The SKUs it freed units of: their backorders may now be filled.
    pub skus: BTreeSet<Sku>,
}

/// A payment's demand, for the tier it was paid in, on its day, and the
/// running days of demand its SKUs' items held when read.
struct Demand<'a> {
    tier: &'a TierId,
    day: Day,
    units: &'a BTreeMap<Sku, u64>,
    running: &'a BTreeMap<(Sku, Option<u8>), RunningDemand>,
}

/// How a write of a record and its stock moves went.
enum Written {
    Committed,
    /// The record changed since it was read.
    RecordChanged,
    /// These SKUs no longer held what the moves lower: another order took
    /// the units, or the item still held its old single count.
    StockChanged(BTreeSet<Sku>),
}

/// The shipping queue's index and its key attributes.
pub const QUEUE_INDEX: &str = "ByFulfilment";
const QUEUE_KEY: &str = "fq_key";
const QUEUE_RANK: &str = "fq_rank";

fn queue_partition(shard: u32) -> String {
    format!("READY#{shard:02}")
}

fn queue_attributes(
    order: &OrderRef,
    priority: u16,
    paid_at: chrono::DateTime<chrono::Utc>,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        (
            QUEUE_KEY.to_owned(),
            s(queue_partition(fulfilment::queue_shard(order))),
        ),
        (
            QUEUE_RANK.to_owned(),
            s(fulfilment::queue_rank(priority, paid_at, order)),
        ),
    ]
}

/// A SKU's backorder list: one entry per order backordered on it, spread
/// over partitions by order as the shipping queue is (a sold-out SKU's
/// backorders arrive as fast as its orders), ranked as the queue is.
fn backorder_partition(sku: &Sku, shard: u32) -> String {
    format!("BACKORDER#{sku}#{shard:02}")
}

fn backorder_entry(sku: &Sku, order: &OrderRef, record: &OrderStock) -> keys::Key {
    (
        backorder_partition(sku, fulfilment::queue_shard(order)),
        fulfilment::queue_rank(record.priority, record.paid_at.unwrap_or_default(), order),
    )
}

/// One page of the shipping queue.
#[derive(Debug, Clone)]
pub struct QueuePage {
    /// First to ship first.
    pub orders: Vec<(OrderRef, OrderStock)>,
    /// The rank of the page's last order, where the next page starts;
    /// `None` at the end.
    pub next: Option<String>,
}

fn parse_record(i: Option<&Item>) -> Result<(OrderStock, u64), StoreError> {
    match i {
        Some(i) => Ok((
            item::get_json(i, "record")?,
            item::get_u64_or_zero(i, "version")?,
        )),
        None => Ok((OrderStock::default(), 0)),
    }
}

impl Table {
    /// An order's stock record and its version (0: none yet).
    pub async fn order_stock(&self, order: &OrderRef) -> Result<(OrderStock, u64), StoreError> {
        parse_record(self.get(&keys::order_stock(order), true).await?.as_ref())
    }

    /// Records a payment's lines, for `payer`, and takes their stock: the
    /// order's record and the SKUs are read together, each line draws on its
    /// tier's reserve and then the pool, and the record and the draws are
    /// written in one transaction, each part lowered conditional on enough
    /// being there, so stock never goes below zero. A line the stock cannot
    /// fill is backordered. A write that loses to another order is read and
    /// drawn again; an order of many SKUs goes in parts, and only lost
    /// writes count towards giving up. The units each SKU's lines asked for
    /// are added to the tier's demand on `day` (the payment's, in the
    /// brand's calendar) in the same transaction, so they count once.
    pub async fn allocate_payment(
        &self,
        order: &OrderRef,
        event: &EventId,
        payer: Payer<'_>,
        day: Day,
        lines: &[OrderLine],
    ) -> Result<Allocation, StoreError> {
        let mut backordered = BTreeSet::new();
        let mut reserved_any = false;
        // A fresh payment's SKUs are its lines': read them with the record.
        let mut guess: BTreeSet<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        let record_key = keys::order_stock(order);
        let mut lost = 0;
        while lost < MAX_ATTEMPTS {
            let first: BTreeSet<Sku> = guess.iter().take(SKUS_PER_TRANSACTION).cloned().collect();
            let read = self
                .read_stock_with(&first, std::slice::from_ref(&record_key), Some(order))
                .await?;
            let (mut stock, mut running, mut partial, mut cells) =
                (read.stock, read.running, read.partial, read.cells);
            let (mut record, version) = parse_record(read.extra.get(&record_key))?;
            let was = record.backordered_skus();
            let payment = record.pay(event, payer, lines);
            if payment == Payment::Duplicate && !record.has_pending() {
                return Ok(if reserved_any {
                    Allocation::Reserved {
                        backordered: backordered.into_iter().collect(),
                    }
                } else {
                    Allocation::Duplicate
                });
            }
            if payment == Payment::Cancelled {
                match self
                    .write_stock(order, version, &was, &record, &StockMoves::new(), None)
                    .await?
                {
                    Written::Committed => return Ok(Allocation::OrderCancelled),
                    _ => {
                        lost += 1;
                        continue;
                    }
                }
            }
            // An order of more SKUs than one transaction takes goes in parts;
            // an interrupted one carries on from its pending lines.
            let skus = record.pending_skus(SKUS_PER_TRANSACTION);
            let unread: BTreeSet<Sku> = skus.difference(&first).cloned().collect();
            if !unread.is_empty() {
                let more = self.read_stock_with(&unread, &[], Some(order)).await?;
                stock.extend(more.stock);
                running.extend(more.running);
                partial.extend(more.partial);
                cells.extend(more.cells);
            }
            let paid = record.clone();
            let mut taken = record.take_pending(order, skus_per_transaction(&stock), &stock);
            // A spread SKU's line its own bucket could not fill draws on
            // every bucket before it is backordered: no false sold-out.
            let short: BTreeSet<Sku> = taken.backordered.intersection(&partial).cloned().collect();
            if !short.is_empty() {
                self.read_other_buckets(&short, &cells, &mut stock, &mut running)
                    .await?;
                partial.retain(|sku| !short.contains(sku));
                record = paid;
                taken = record.take_pending(order, skus_per_transaction(&stock), &stock);
            }
            match self
                .write_stock(
                    order,
                    version,
                    &was,
                    &record,
                    &taken.moves,
                    record.tier.as_ref().map(|tier| Demand {
                        tier,
                        day,
                        units: &taken.demand,
                        running: &running,
                    }),
                )
                .await?
            {
                Written::Committed => {
                    reserved_any = true;
                    backordered.extend(taken.backordered);
                    if !record.has_pending() {
                        return Ok(Allocation::Reserved {
                            backordered: backordered.into_iter().collect(),
                        });
                    }
                    guess = record.pending_skus(SKUS_PER_TRANSACTION);
                }
                Written::RecordChanged | Written::StockChanged(_) => {
                    lost += 1;
                    crate::table::backoff(lost).await
                }
            }
        }
        Err(StoreError::Contention {
            what: format!("stock of order {order}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Cancels the order's stock: what is still reserved goes back, once. A
    /// cancellation before the payment leaves the record cancelled, so the
    /// late payment reserves nothing.
    pub async fn cancel_order_stock(&self, order: &OrderRef) -> Result<Released, StoreError> {
        let done = self
            .step_stock(order, |r| {
                r.cancel();
                Ok::<_, ShipError>(())
            })
            .await?;
        Ok(done.map(|(_, r)| r).unwrap_or_default())
    }

    /// Returns refund `refund_id`'s goods to stock, once per refund. Before
    /// the payment they are kept, and the payment reserves only what stays
    /// sold.
    pub async fn refund_order_stock(
        &self,
        order: &OrderRef,
        refund_id: &str,
        returned: &[ReturnedLine],
    ) -> Result<Released, StoreError> {
        let done = self
            .step_stock(order, |r| {
                r.refund(refund_id, returned);
                Ok::<_, ShipError>(())
            })
            .await?;
        Ok(done.map(|(_, r)| r).unwrap_or_default())
    }

    /// Ships the order (see [`OrderStock::ship`]): its reserved units leave
    /// on hand and what is allocated, and it leaves the shipping queue. A
    /// second shipment changes nothing; the record says when it shipped.
    pub async fn ship_order(
        &self,
        order: &OrderRef,
        shipment: Shipment,
    ) -> Result<Result<OrderStock, ShipError>, StoreError> {
        Ok(self
            .step_stock(order, |r| r.ship(shipment.clone()).map(|_| ()))
            .await?
            .map(|(record, _)| record))
    }

    /// Applies `step` to the order's record and writes it with the stock it
    /// moves, in parts for an order of more SKUs than one transaction
    /// holds; an interrupted step carries on from what is still moving.
    /// `Ok(Err)`: the step refused; `Ok(Ok)`: the record as written and
    /// what it freed.
    async fn step_stock<E>(
        &self,
        order: &OrderRef,
        step: impl Fn(&mut OrderStock) -> Result<(), E>,
    ) -> Result<Result<(OrderStock, Released), E>, StoreError> {
        let mut released = Released::default();
        // Parts written do not count towards giving up; lost writes do.
        let mut lost = 0;
        while lost < MAX_ATTEMPTS {
            let (before, version) = self.order_stock(order).await?;
            let mut record = before.clone();
            if let Err(e) = step(&mut record) {
                return Ok(Err(e));
            }
            if record == before && !record.has_releasing() {
                return Ok(Ok((record, released)));
            }
            let stepped = record.clone();
            let mut moves = record.take_releasing(SKUS_PER_TRANSACTION);
            // Lines drawn over many buckets go one SKU at a time.
            if actions(&moves) > TRANSACTION_ACTIONS {
                record = stepped;
                moves = record.take_releasing(1);
            }
            let freed: i64 = moves.values().map(Move::freed).sum();
            let was = before.backordered_skus();
            match self
                .write_stock(order, version, &was, &record, &moves, None)
                .await?
            {
                Written::Committed => {
                    released.units += freed;
                    released.skus.extend(
                        moves
                            .iter()
                            .filter(|(_, m)| m.freed() > 0)
                            .map(|(s, _)| s.clone()),
                    );
                    if !record.has_releasing() {
                        return Ok(Ok((record, released)));
                    }
                }
                Written::RecordChanged => {
                    lost += 1;
                    crate::table::backoff(lost).await
                }
                // Giving back and shipping lower only what the order holds
                // (allocated, backordered, on hand with it), so a SKU that
                // refuses is one still holding its old single count (reading
                // converts it) or one whose parts no longer add up: a fault
                // for operators, not a retry.
                Written::StockChanged(skus) => {
                    lost += 1;
                    let stock = self.read_stock(&skus).await?;
                    for sku in &skus {
                        let mut s = stock.get(sku).cloned().unwrap_or_default();
                        if let Err(e) = s.apply(&moves[sku]) {
                            return Err(StoreError::corrupt(
                                &keys::stock(sku),
                                format!("order {order} moves more than the SKU holds: {e}"),
                            ));
                        }
                    }
                }
            }
        }
        Err(StoreError::Contention {
            what: format!("stock of order {order}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Writes `record` (conditional on `version`) with its stock moves in
    /// one transaction, and the entries of the moved SKUs' backorder lists
    /// it joins or leaves (`was`: the SKUs it was backordered on).
    async fn write_stock(
        &self,
        order: &OrderRef,
        version: u64,
        was: &BTreeSet<Sku>,
        record: &OrderStock,
        moves: &StockMoves,
        demand: Option<Demand<'_>>,
    ) -> Result<Written, StoreError> {
        let now = record.backordered_skus();
        let key = keys::order_stock(order);
        let mut contention = 0u32;
        loop {
            let mut stored = new_item(
                &key,
                "order_stock",
                [
                    ("record", item::json(record)),
                    ("version", n(version + 1)),
                    ("order", s(order.to_string())),
                ],
            );
            // In the shipping queue while ready; a put without them leaves it.
            if let (true, Some(paid_at)) = (record.is_ready(), record.paid_at) {
                stored.extend(queue_attributes(order, record.priority, paid_at));
            }
            let put = Put::builder().table_name(&self.name).set_item(Some(stored));
            let put = if version == 0 {
                put.condition_expression("attribute_not_exists(PK)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", n(version))
            };
            let mut tx = vec![
                TransactWriteItem::builder()
                    .put(put.build().expect("put has item"))
                    .build(),
            ];
            let mut days = Vec::new();
            // The SKU each stock update after the record moves.
            let mut owners: Vec<&Sku> = Vec::new();
            for (sku, m) in moves {
                let lane = record
                    .lines
                    .values()
                    .find(|l| &l.sku == sku)
                    .and_then(|l| l.lane);
                let paid = demand.as_ref().and_then(|d| {
                    let units = d.units.get(sku).copied().filter(|u| *u > 0)?;
                    let cell = crate::stock::demand_cell(m, lane);
                    Some(PaidDemand {
                        tier: d.tier,
                        day: d.day,
                        units,
                        cell,
                        running: d.running.get(&(sku.clone(), cell)),
                    })
                });
                let (updates, day) = self.stock_update(sku, m, paid);
                for update in updates {
                    tx.push(TransactWriteItem::builder().update(update).build());
                    owners.push(sku);
                }
                days.extend(day);
            }
            // After the SKUs' updates, so that a refused update's index is
            // its SKU's.
            for sku in moves.keys() {
                let entry = backorder_entry(sku, order, record);
                match (was.contains(sku), now.contains(sku)) {
                    (false, true) => tx.push(
                        TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(&self.name)
                                    .set_item(Some(new_item(
                                        &entry,
                                        "backorder",
                                        [("order", s(order.to_string()))],
                                    )))
                                    .build()
                                    .expect("put has item"),
                            )
                            .build(),
                    ),
                    (true, false) => tx.push(
                        TransactWriteItem::builder()
                            .delete(
                                Delete::builder()
                                    .table_name(&self.name)
                                    .set_key(Some(item::key_item(&entry)))
                                    .build()
                                    .expect("delete has key"),
                            )
                            .build(),
                    ),
                    _ => {}
                }
            }
            // Last, so the indices above stay the SKUs'; unconditional ADDs.
            tx.extend(
                days.into_iter()
                    .map(|u| TransactWriteItem::builder().update(u).build()),
            );
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(Written::Committed),
                Ok(TxOutcome::ConditionFailed { reasons }) => {
                    let failed = |i: usize| {
                        reasons
                            .get(i)
                            .is_some_and(|r| r == "ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(Written::RecordChanged);
                    }
                    let short: BTreeSet<Sku> = owners
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| failed(i + 1))
                        .map(|(_, s)| (*s).clone())
                        .collect();
                    if short.is_empty() {
                        return Ok(Written::RecordChanged);
                    }
                    return Ok(Written::StockChanged(short));
                }
                // Concurrent orders of a hot SKU conflict on its stock item;
                // DynamoDB cancels the losers, which try again after a short,
                // jittered wait.
                Err(StoreError::Contention { .. }) if contention < MAX_ATTEMPTS => {
                    contention += 1;
                    crate::table::backoff(contention).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Table {
    /// The first `limit` orders ready to ship after `after` (the rank a
    /// previous page ended on): the top `limit` of every shard of the
    /// queue's index, one Query each in parallel, merged. What a page reads
    /// is bounded by the shards and the limit, however many orders are open.
    pub async fn ready_to_ship(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<QueuePage, StoreError> {
        let (top, more) = self
            .sharded_page(
                crate::ranking::Sharded {
                    index: Some(QUEUE_INDEX),
                    key_attr: QUEUE_KEY,
                    rank_attr: QUEUE_RANK,
                },
                (0..fulfilment::QUEUE_SHARDS).map(queue_partition),
                after,
                limit,
                |i| {
                    let order = OrderRef::parse(item::get_s(i, "order")?)
                        .map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))?;
                    Ok((order, parse_record(Some(i))?.0))
                },
            )
            .await?;
        Ok(QueuePage {
            next: more
                .then(|| top.last().map(|(rank, _)| rank.clone()))
                .flatten(),
            orders: top.into_iter().map(|(_, entry)| entry).collect(),
        })
    }
}

/// What a page of a SKU's backorder fill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillPage {
    /// The orders whose backorders of the SKU were filled, in fill order.
    pub filled: Vec<OrderRef>,
    /// Where the next page starts; `None` when the list ended or the SKU
    /// has nothing left to give.
    pub next: Option<String>,
}

impl Table {
    /// Fills up to `limit` of `sku`'s backorders after `after`, by priority
    /// then age: each order's lines whole from its tier's reserve and then
    /// the pool, or not at all (it keeps its place). A rerun fills nothing
    /// twice: a filled order leaves the list in its own transaction.
    pub async fn fill_backorders(
        &self,
        sku: &Sku,
        after: Option<&str>,
        limit: usize,
    ) -> Result<FillPage, StoreError> {
        let (entries, more) = self
            .sharded_page(
                crate::ranking::Sharded {
                    index: None,
                    key_attr: keys::PK,
                    rank_attr: keys::SK,
                },
                (0..fulfilment::QUEUE_SHARDS).map(|shard| backorder_partition(sku, shard)),
                after,
                limit,
                |i| {
                    OrderRef::parse(item::get_s(i, "order")?)
                        .map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))
                },
            )
            .await?;
        let mut page = FillPage::default();
        for (_, order) in &entries {
            let (filled, free_left) = self.fill_order(order, sku).await?;
            if filled {
                page.filled.push(order.clone());
            }
            if free_left == 0 {
                return Ok(page);
            }
        }
        page.next = more
            .then(|| entries.last().map(|(rank, _)| rank.clone()))
            .flatten();
        Ok(page)
    }

    /// Fills what `order`'s backorders of `sku` can take now. Whether any
    /// was, and the units the SKU has free after.
    async fn fill_order(&self, order: &OrderRef, sku: &Sku) -> Result<(bool, u64), StoreError> {
        let key = keys::order_stock(order);
        let skus = BTreeSet::from([sku.clone()]);
        for attempt in 0..MAX_ATTEMPTS {
            let read = self
                .read_stock_with(&skus, std::slice::from_ref(&key), None)
                .await?;
            let stock = read.stock;
            let (mut record, version) = parse_record(read.extra.get(&key))?;
            let shelf = stock.get(sku).cloned().unwrap_or_default();
            let was = record.backordered_skus();
            let Some(m) = record.fill_backorders(sku, &shelf) else {
                return Ok((false, shelf.free()));
            };
            let moves = StockMoves::from([(sku.clone(), m.clone())]);
            match self
                .write_stock(order, version, &was, &record, &moves, None)
                .await?
            {
                Written::Committed => {
                    let left = shelf.free().saturating_add_signed(m.freed());
                    return Ok((true, left));
                }
                Written::RecordChanged | Written::StockChanged(_) => {
                    crate::table::backoff(attempt + 1).await
                }
            }
        }
        Err(StoreError::Contention {
            what: format!("backorders of order {order}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Which of `skus` have backorders counted.
    pub async fn skus_with_backorders(
        &self,
        skus: &BTreeSet<Sku>,
    ) -> Result<BTreeSet<Sku>, StoreError> {
        Ok(self
            .read_stock(skus)
            .await?
            .into_iter()
            .filter(|(_, s)| s.backordered > 0)
            .map(|(sku, _)| sku)
            .collect())
    }
}
