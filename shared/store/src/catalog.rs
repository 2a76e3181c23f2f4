//! Each order's reservations against its SKUs' stock: one record per
//! order (see [`tier_domain::stock`]) written in one transaction with the
//! stock it moves (see [`crate::stock`]).

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use tier_domain::fulfilment;
use tier_domain::ids::{EventId, OrderRef, Sku};
use tier_domain::order::{OrderLine, ReturnedLine};
use tier_domain::stock::levels::Move;
use tier_domain::stock::{OrderStock, Payer, Payment, ShipError, Shipment, StockMoves};

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
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

/// SKUs whose stock one transaction moves, beside the order's record
/// (TransactWriteItems takes 100 actions; BatchGetItem 100 keys).
const SKUS_PER_TRANSACTION: usize = 99;
const MAX_ATTEMPTS: u32 = 8;

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

    /// Records a payment's lines, for `payer`, and takes their stock: the order's record and the SKUs are read together, each
    /// line draws on its tier's reserve and then the pool, and the record
    /// and the draws are written in one transaction, each part lowered
    /// conditional on enough being there, so stock never goes below zero. A
    /// line the stock cannot fill is backordered. A write that loses to
    /// another order is read and drawn again.
    pub async fn allocate_payment(
        &self,
        order: &OrderRef,
        event: &EventId,
        payer: Payer<'_>,
        lines: &[OrderLine],
    ) -> Result<Allocation, StoreError> {
        let mut backordered = BTreeSet::new();
        let mut reserved_any = false;
        // A fresh payment's SKUs are its lines': read them with the record.
        let mut guess: BTreeSet<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        let record_key = keys::order_stock(order);
        for attempt in 0..MAX_ATTEMPTS {
            let first: BTreeSet<Sku> = guess.iter().take(SKUS_PER_TRANSACTION).cloned().collect();
            let (mut stock, extra) = self
                .read_stock_with(&first, std::slice::from_ref(&record_key))
                .await?;
            let (mut record, version) = parse_record(extra.get(&record_key))?;
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
                    .write_stock(order, version, &record, &StockMoves::new())
                    .await?
                {
                    Written::Committed => return Ok(Allocation::OrderCancelled),
                    _ => continue,
                }
            }
            // An order of more SKUs than one transaction takes goes in parts;
            // an interrupted one carries on from its pending lines.
            let skus = record.pending_skus(SKUS_PER_TRANSACTION);
            let unread: BTreeSet<Sku> = skus.difference(&first).cloned().collect();
            if !unread.is_empty() {
                stock.extend(self.read_stock(&unread).await?);
            }
            let taken = record.take_pending(SKUS_PER_TRANSACTION, &stock);
            match self
                .write_stock(order, version, &record, &taken.moves)
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
                    crate::table::backoff(attempt + 1).await
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
    /// late payment reserves nothing. Returns the units put back.
    pub async fn cancel_order_stock(&self, order: &OrderRef) -> Result<i64, StoreError> {
        let done = self
            .step_stock(order, |r| {
                r.cancel();
                Ok::<_, ShipError>(())
            })
            .await?;
        Ok(done.map_or(0, |(_, units)| units))
    }

    /// Returns refund `refund_id`'s goods to stock, once per refund. Before
    /// the payment they are kept, and the payment reserves only what stays
    /// sold. Returns the units put back.
    pub async fn refund_order_stock(
        &self,
        order: &OrderRef,
        refund_id: &str,
        returned: &[ReturnedLine],
    ) -> Result<i64, StoreError> {
        let done = self
            .step_stock(order, |r| {
                r.refund(refund_id, returned);
                Ok::<_, ShipError>(())
            })
            .await?;
        Ok(done.map_or(0, |(_, units)| units))
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
    /// `Ok(Err)`: the step refused; `Ok(Ok)`: the record as written and the
    /// units it freed.
    async fn step_stock<E>(
        &self,
        order: &OrderRef,
        step: impl Fn(&mut OrderStock) -> Result<(), E>,
    ) -> Result<Result<(OrderStock, i64), E>, StoreError> {
        let mut units = 0;
        for attempt in 0..MAX_ATTEMPTS {
            let (before, version) = self.order_stock(order).await?;
            let mut record = before.clone();
            if let Err(e) = step(&mut record) {
                return Ok(Err(e));
            }
            if record == before && !record.has_releasing() {
                return Ok(Ok((record, units)));
            }
            let moves = record.take_releasing(SKUS_PER_TRANSACTION);
            let freed: i64 = moves.values().map(Move::freed).sum();
            match self.write_stock(order, version, &record, &moves).await? {
                Written::Committed => {
                    units += freed;
                    if !record.has_releasing() {
                        return Ok(Ok((record, units)));
                    }
                }
                Written::RecordChanged => crate::table::backoff(attempt + 1).await,
                // Giving back and shipping lower only what the order holds
                // (allocated, backordered, on hand with it), so a SKU that
                // refuses is one still holding its old single count (reading
                // converts it) or one whose parts no longer add up: a fault
                // for operators, not a retry.
                Written::StockChanged(skus) => {
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
    /// one transaction.
    async fn write_stock(
        &self,
        order: &OrderRef,
        version: u64,
        record: &OrderStock,
        moves: &StockMoves,
    ) -> Result<Written, StoreError> {
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
            tx.extend(moves.iter().map(|(sku, m)| {
                TransactWriteItem::builder()
                    .update(self.stock_update(sku, m))
                    .build()
            }));
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
                    let short: BTreeSet<Sku> = moves
                        .keys()
                        .enumerate()
                        .filter(|(i, _)| failed(i + 1))
                        .map(|(_, s)| s.clone())
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
                    index: QUEUE_INDEX,
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
