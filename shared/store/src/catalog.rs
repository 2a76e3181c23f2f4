//! SKUs: price books, stock on hand and stock reservations.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use tier_domain::ids::{EventId, LineId, OrderRef, Sku};
use tier_domain::order::OrderLine;

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

/// What happened to one order line's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    /// Not enough stock: recorded so operations can fill it later.
    Backordered,
    /// The order was cancelled before its payment arrived.
    OrderCancelled,
    /// Already handled by an earlier delivery.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineReservation {
    pub sku: Sku,
    pub quantity: u32,
    pub reserved: u32,
    pub status: String,
    /// What the buyer paid per unit (the distributor's resale price).
    pub unit_price: Option<tier_domain::money::Money>,
    /// What the distributor was entitled to pay per unit at order time.
    pub entitled_unit_price: Option<tier_domain::money::Money>,
}

fn money_attr(i: &Item, name: &str) -> Result<Option<tier_domain::money::Money>, StoreError> {
    i.contains_key(name)
        .then(|| item::get_decimal(i, name).and_then(|d| tier_domain::money::Money::from_decimal(d).map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))))
        .transpose()
}

impl Table {
    /// Sets the stock on hand (available to reserve) of a SKU.
    pub async fn set_stock(&self, sku: &Sku, available: u64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let item = new_item(&keys::stock(sku), "stock", [("sku", s(sku.as_str())), ("available", n(available)), ("updated_at", s(at.to_rfc3339()))]);
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
        self.get(&keys::stock(sku), true).await?.map(|i| item::get_i64(&i, "available")).transpose()
    }

    /// Reserves one paid line: the line's record is created and the stock
    /// decremented in one transaction, the decrement conditional on enough
    /// stock, so stock never goes below zero. Without enough stock the line
    /// is recorded as backordered.
    pub async fn reserve_line(&self, order: &OrderRef, line: &OrderLine, event: &EventId) -> Result<Reservation, StoreError> {
        let rkey = keys::reservation(order, &line.line_id);
        let record = |status: &str, reserved: u32| -> Item {
            new_item(
                &rkey,
                "reservation",
                [
                    ("sku", s(line.sku.as_str())),
                    ("quantity", n(line.quantity)),
                    ("reserved", n(reserved)),
                    ("status", s(status)),
                    ("order", s(order.to_string())),
                    ("paid_event", s(event.as_str())),
                    ("unit_price", n(line.unit_price.amount())),
                ],
            )
            .into_iter()
            .chain(line.entitled_unit_price.map(|p| ("entitled_unit_price".to_owned(), n(p.amount()))))
            .collect()
        };
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(Put::builder().table_name(&self.name).set_item(Some(item)).condition_expression("attribute_not_exists(PK)").build().expect("put has item"))
                .build()
        };
        let (cpk, csk) = keys::cancellation(order);
        let not_cancelled = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.name)
                    .key(keys::PK, s(cpk))
                    .key(keys::SK, s(csk))
                    .condition_expression("attribute_not_exists(PK)")
                    .build()
                    .expect("check has key"),
            )
            .build();
        let (spk, ssk) = keys::stock(&line.sku);
        let decrement = TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.name)
                    .key(keys::PK, s(spk))
                    .key(keys::SK, s(ssk))
                    .update_expression("SET available = available - :q")
                    .condition_expression("available >= :q")
                    .expression_attribute_values(":q", n(line.quantity))
                    .build()
                    .expect("update has key"),
            )
            .build();
        // Concurrent orders of a hot SKU conflict on its stock item; DynamoDB
        // cancels the losers, which try again after a short, jittered wait.
        let mut attempt = 0u32;
        let first = loop {
            match self.transact(vec![put(record("reserved", line.quantity)), not_cancelled.clone(), decrement.clone()]).await {
                Err(StoreError::Contention { .. }) if attempt < 8 => {
                    attempt += 1;
                    crate::table::backoff(attempt).await;
                }
                other => break other?,
            }
        };
        match first {
            TxOutcome::Committed => Ok(Reservation::Reserved),
            TxOutcome::ConditionFailed { reasons } => {
                let failed = |i: usize| reasons.get(i).is_some_and(|r| r == "ConditionalCheckFailed");
                if failed(0) {
                    return Ok(Reservation::Duplicate);
                }
                if failed(1) {
                    return Ok(Reservation::OrderCancelled);
                }
                match self.transact(vec![put(record("backordered", 0)), not_cancelled]).await? {
                    TxOutcome::Committed => Ok(Reservation::Backordered),
                    TxOutcome::ConditionFailed { reasons } if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") => Ok(Reservation::Duplicate),
                    TxOutcome::ConditionFailed { .. } => Ok(Reservation::OrderCancelled),
                }
            }
        }
    }

    /// Marks an order cancelled, so that a payment arriving late reserves
    /// nothing. Idempotent.
    pub async fn mark_cancelled(&self, order: &OrderRef, event: &EventId) -> Result<(), StoreError> {
        let item = new_item(&keys::cancellation(order), "cancellation", [("event", s(event.as_str()))]);
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// Returns up to `quantity` reserved units of one line to stock, once
    /// per `release` (`cancel`, or `refund:<refund id>`: the platform may send
    /// one refund under two event ids). `None` for `quantity` releases
    /// everything still reserved. Returns how many units went back.
    pub async fn release_line(&self, order: &OrderRef, line: &LineId, quantity: Option<u32>, release: &str) -> Result<u32, StoreError> {
        let rkey = keys::reservation(order, line);
        for _ in 0..8 {
            let Some(current) = self.get(&rkey, true).await? else { return Ok(0) };
            let reserved = u32::try_from(item::get_i64(&current, "reserved")?).unwrap_or(0);
            let applied = current.get("released_by").and_then(|v| v.as_ss().ok()).is_some_and(|ids| ids.iter().any(|i| i == release));
            if applied {
                return Ok(0);
            }
            let q = quantity.unwrap_or(reserved).min(reserved);
            let sku = item::get_s(&current, "sku")?;
            let status = if reserved == q { "released" } else { "reserved" };
            // A backorder that is cancelled is closed; one that is partly
            // refunded stays open.
            let status = match (item::get_s(&current, "status")?, quantity) {
                ("backordered", None) => "cancelled",
                ("backordered", Some(_)) => "backordered",
                _ => status,
            };
            let mut tx = vec![TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.name)
                        .key(keys::PK, s(&rkey.0))
                        .key(keys::SK, s(&rkey.1))
                        .update_expression("SET reserved = :new, #st = :st ADD released_by :e")
                        .condition_expression("reserved = :old AND NOT contains(released_by, :eid)")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_values(":new", n(reserved - q))
                        .expression_attribute_values(":old", n(reserved))
                        .expression_attribute_values(":st", s(status))
                        .expression_attribute_values(":e", aws_sdk_dynamodb::types::AttributeValue::Ss(vec![release.to_owned()]))
                        .expression_attribute_values(":eid", s(release))
                        .build()
                        .expect("update has key"),
                )
                .build()];
            if q > 0 {
                let (spk, ssk) = keys::stock(&Sku::parse(sku).map_err(|e| StoreError::corrupt(&rkey, e.to_string()))?);
                tx.push(
                    TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name(&self.name)
                                .key(keys::PK, s(spk))
                                .key(keys::SK, s(ssk))
                                .update_expression("ADD available :q")
                                .expression_attribute_values(":q", n(q))
                                .build()
                                .expect("update has key"),
                        )
                        .build(),
                );
            }
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(q),
                Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention { what: format!("reservation {order}/{line}"), attempts: 8 })
    }

    /// Every line reservation of an order.
    pub async fn reservations(&self, order: &OrderRef) -> Result<Vec<(LineId, LineReservation)>, StoreError> {
        let (pk, _) = keys::cancellation(order);
        self.query_prefix(&pk, "LINE#", true)
            .await?
            .iter()
            .map(|i| {
                let key = item::key_of(i);
                let line = LineId::parse(key.1.trim_start_matches("LINE#")).map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
                Ok((
                    line,
                    LineReservation {
                        sku: Sku::parse(item::get_s(i, "sku")?).map_err(|e| StoreError::corrupt(&key, e.to_string()))?,
                        quantity: u32::try_from(item::get_i64(i, "quantity")?).unwrap_or(0),
                        reserved: u32::try_from(item::get_i64(i, "reserved")?).unwrap_or(0),
                        status: item::get_s(i, "status")?.to_owned(),
                        unit_price: money_attr(i, "unit_price")?,
                        entitled_unit_price: money_attr(i, "entitled_unit_price")?,
                    },
                ))
            })
            .collect()
    }
}

