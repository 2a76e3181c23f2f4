//! Applying an order event to the ledger and the metrics, exactly once.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use tier_domain::calendar::BrandCalendar;
use tier_domain::ledger::{self, Applied, BuyerRecord, OrderRecord};
use tier_domain::metrics::MetricsDelta;
use tier_domain::order::OrderEvent;

use crate::distributors::metrics_update;
use crate::error::StoreError;
use crate::item::{self, n, new_item};
use crate::keys;
use crate::table::{Table, TxOutcome};

/// Conditional writes that lose a race are retried from a fresh read this
/// many times before the message is handed back to the queue.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// The event was already recorded.
    Duplicate,
    Recorded { delta: MetricsDelta },
}

impl Table {
    /// Records `event` in its order's ledger entry and adds the change in the
    /// order's contribution to the distributor's metrics, in one transaction
    /// conditional on the entry's version. A redelivered event finds itself
    /// in the entry and changes nothing.
    pub async fn apply_order_event(&self, event: &OrderEvent, calendar: &BrandCalendar) -> Result<LedgerOutcome, StoreError> {
        let order_key = keys::order_ledger(&event.distributor, &event.order);
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get(&order_key, true).await?;
            let version = match &current {
                Some(i) => item::get_u64_or_zero(i, "version")?,
                None => 0,
            };
            let mut record: OrderRecord = match &current {
                Some(i) => item::get_json(i, "record")?,
                None => OrderRecord::default(),
            };
            let Applied::Changed { before, after } = record.apply(event, calendar) else {
                return Ok(LedgerOutcome::Duplicate);
            };
            let mut delta = ledger::delta(before, after);

            let mut tx = vec![TransactWriteItem::builder()
                .put({
                    let put = Put::builder()
                        .table_name(&self.name)
                        .set_item(Some(new_item(
                            &order_key,
                            "order_ledger",
                            [("record", item::json(&record)), ("version", n(version + 1)), ("order", item::s(event.order.to_string()))],
                        )));
                    let put = if version == 0 {
                        put.condition_expression("attribute_not_exists(PK)")
                    } else {
                        put.condition_expression("version = :v").expression_attribute_values(":v", n(version))
                    };
                    put.build().expect("put has item")
                })
                .build()];

            // The buyer's record changes when the order starts or stops
            // counting, or when the buyer is first seen.
            let newly_paid = before.month.is_none() && record.paid.is_some();
            if let Some(buyer) = record.buyer().filter(|_| newly_paid || before.live != after.live) {
                let bkey = keys::buyer(&event.distributor, buyer);
                let existing = self.get(&bkey, true).await?;
                let mut rec = BuyerRecord { live_orders: existing.as_ref().map(|i| item::get_i64(i, "live_orders")).transpose()?.unwrap_or(0) };
                let old_live = rec.live_orders;
                // Counted as a downline user from the first paid order on.
                delta.merge(&rec.apply(after.live - before.live, existing.is_some()));
                let put = Put::builder().table_name(&self.name).set_item(Some(new_item(
                    &bkey,
                    "downline_user",
                    [("live_orders", n(rec.live_orders)), ("buyer", item::s(buyer.as_str()))],
                )));
                let put = if existing.is_none() {
                    put.condition_expression("attribute_not_exists(PK)")
                } else {
                    put.condition_expression("live_orders = :old").expression_attribute_values(":old", n(old_live))
                };
                tx.push(TransactWriteItem::builder().put(put.build().expect("put has item")).build());
            }
            if !delta.is_empty() {
                tx.push(TransactWriteItem::builder().update(metrics_update(self, &event.distributor, &delta)).build());
            }
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(LedgerOutcome::Recorded { delta }),
                // Someone else wrote the entry or the buyer: read again.
                Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention { what: format!("ledger entry {}", event.order), attempts: MAX_ATTEMPTS })
    }
}
