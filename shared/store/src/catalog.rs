//! SKUs: stock on hand, and each order's reservations against it (one
//! record per order, see [`tier_domain::stock`]).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use tier_domain::ids::{EventId, OrderRef, Sku};
use tier_domain::order::{OrderLine, ReturnedLine};
use tier_domain::stock::{OrderStock, Payment, StockMoves};

use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

/// What a payment did to stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// Reserved; the SKUs listed lacked stock and their lines are backordered.
    Reserved { backordered: Vec<Sku> },
    /// The order was cancelled before its payment arrived: nothing reserved.
    OrderCancelled,
    /// Already handled by an earlier delivery.
    Duplicate,
}

/// SKUs whose stock one transaction moves, beside the order's record
/// (TransactWriteItems takes 100 actions).
const SKUS_PER_TRANSACTION: usize = 99;
const MAX_ATTEMPTS: u32 = 8;

impl Table {
    /// Sets the stock on hand (available to reserve) of a SKU.
    pub async fn set_stock(
        &self,
        sku: &Sku,
        available: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let item = new_item(
            &keys::stock(sku),
            "stock",
            [
                ("sku", s(sku.as_str())),
                ("available", n(available)),
                ("updated_at", s(at.to_rfc3339())),
            ],
        );
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// Stock available to reserve; `None` if the SKU has no stock record.
    pub async fn stock(&self, sku: &Sku) -> Result<Option<i64>, StoreError> {
        self.get(&keys::stock(sku), true)
            .await?
            .map(|i| item::get_i64(&i, "available"))
            .transpose()
    }

    /// An order's stock record and its version (0: none yet).
    pub async fn order_stock(&self, order: &OrderRef) -> Result<(OrderStock, u64), StoreError> {
        let key = keys::order_stock(order);
        match self.get(&key, true).await? {
            Some(i) => Ok((
                item::get_json(&i, "record")?,
                item::get_u64_or_zero(&i, "version")?,
            )),
            None => Ok((OrderStock::default(), 0)),
        }
    }

    /// Records a payment's lines and takes their stock: the record and the
    /// decrements in one transaction, each decrement conditional on enough
    /// stock, so stock never goes below zero. A SKU without enough is
    /// backordered and the write tried again without it.
    pub async fn allocate_payment(
        &self,
        order: &OrderRef,
        event: &EventId,
        lines: &[OrderLine],
    ) -> Result<Allocation, StoreError> {
        let mut backordered = Vec::new();
        let mut reserved_any = false;
        for attempt in 0..MAX_ATTEMPTS {
            let (mut record, version) = self.order_stock(order).await?;
            let payment = record.pay(event, lines);
            if payment == Payment::Duplicate && !record.has_pending() {
                return Ok(if reserved_any {
                    Allocation::Reserved { backordered }
                } else {
                    Allocation::Duplicate
                });
            }
            if payment == Payment::Cancelled {
                match self
                    .write_stock(order, version, &mut record, StockMoves::new())
                    .await?
                {
                    Some(_) => return Ok(Allocation::OrderCancelled),
                    None => continue,
                }
            }
            // An order of more SKUs than one transaction takes goes in parts;
            // an interrupted one carries on from its pending lines.
            let moves = record.take_pending(SKUS_PER_TRANSACTION);
            match self.write_stock(order, version, &mut record, moves).await? {
                Some(short) => {
                    reserved_any = true;
                    backordered.extend(short);
                    if !record.has_pending() {
                        return Ok(Allocation::Reserved { backordered });
                    }
                }
                None => crate::table::backoff(attempt + 1).await,
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
        self.release_stock(order, |r| r.cancel()).await
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
        self.release_stock(order, |r| r.refund(refund_id, returned))
            .await
    }

    async fn release_stock(
        &self,
        order: &OrderRef,
        step: impl Fn(&mut OrderStock),
    ) -> Result<i64, StoreError> {
        let mut units = 0;
        for attempt in 0..MAX_ATTEMPTS {
            let (before, version) = self.order_stock(order).await?;
            let mut record = before.clone();
            step(&mut record);
            if record == before && !record.has_releasing() {
                return Ok(units);
            }
            // More SKUs than one transaction takes go back in parts; an
            // interrupted release carries on from what is still releasing.
            let moves = record.take_releasing(SKUS_PER_TRANSACTION);
            let back: i64 = moves.values().sum();
            match self.write_stock(order, version, &mut record, moves).await? {
                Some(_) => {
                    units += back;
                    if !record.has_releasing() {
                        return Ok(units);
                    }
                }
                None => crate::table::backoff(attempt + 1).await,
            }
        }
        Err(StoreError::Contention {
            what: format!("stock of order {order}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Writes `record` (conditional on `version`) with its stock moves in one
    /// transaction. A decrement that finds too little stock backorders its
    /// SKU and the write is tried again. `None`: the record changed since it
    /// was read; `Some`: committed, with the SKUs backordered.
    async fn write_stock(
        &self,
        order: &OrderRef,
        version: u64,
        record: &mut OrderStock,
        mut moves: StockMoves,
    ) -> Result<Option<Vec<Sku>>, StoreError> {
        let key = keys::order_stock(order);
        let mut backordered = Vec::new();
        let mut contention = 0u32;
        loop {
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &key,
                    "order_stock",
                    [
                        ("record", item::json(&*record)),
                        ("version", n(version + 1)),
                        ("order", s(order.to_string())),
                    ],
                )));
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
            let skus: Vec<Sku> = moves.keys().cloned().collect();
            for (sku, units) in &moves {
                let (pk, sk) = keys::stock(sku);
                let update = Update::builder()
                    .table_name(&self.name)
                    .key(keys::PK, s(pk))
                    .key(keys::SK, s(sk));
                let update = if *units < 0 {
                    update
                        .update_expression("SET available = available - :q")
                        .condition_expression("available >= :q")
                        .expression_attribute_values(":q", n(-units))
                } else {
                    update
                        .update_expression("ADD available :q")
                        .expression_attribute_values(":q", n(units))
                };
                tx.push(
                    TransactWriteItem::builder()
                        .update(update.build().expect("update has key"))
                        .build(),
                );
            }
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(Some(backordered)),
                Ok(TxOutcome::ConditionFailed { reasons }) => {
                    let failed = |i: usize| {
                        reasons
                            .get(i)
                            .is_some_and(|r| r == "ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(None);
                    }
                    let short: Vec<Sku> = skus
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| failed(i + 1))
                        .map(|(_, s)| s.clone())
                        .collect();
                    if short.is_empty() {
                        return Ok(None);
                    }
                    for sku in short {
                        record.backorder(&sku);
                        moves.remove(&sku);
                        backordered.push(sku);
                    }
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
