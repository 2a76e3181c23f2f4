//! An order's stock (库存占用): what each of its lines reserved, and what
//! came back, as one record per order.
//!
//! Delivery is at least once and out of order, so the record is a state
//! machine that every event moves at most once: a payment records its lines
//! once, a cancellation releases once (`cancel`), a refund releases its
//! returned goods once per refund (`refund:<id>`, whatever event id carries
//! it). A cancellation that overtakes the payment leaves the record
//! cancelled, and the late payment reserves nothing; returns that overtake
//! the payment are kept, and the payment reserves only what stays sold.
//!
//! Each step leaves the stock it moves pending on the lines; the store takes
//! it ([`OrderStock::take_pending`], [`OrderStock::take_releasing`], as many
//! SKUs as one transaction holds) and writes the record and the moves in one
//! transaction, the decrements conditional on enough stock. A SKU without
//! enough is backordered ([`OrderStock::backorder`]) and the write tried again
//! without it. What is still pending after an interruption is carried on by
//! the redelivery.

pub mod levels;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, LineId, Sku};
use crate::money::Money;
use crate::order::{OrderLine, ReturnedLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Recorded with its payment, stock not yet taken: an order with more
    /// SKUs than one transaction can decrement is reserved in parts.
    Pending,
    /// Stock decremented (partly returned goods leave it reserved with a
    /// lower `reserved`).
    Reserved,
    /// Not enough stock when paid: recorded so operations can fill it.
    Backordered,
    /// Everything returned to stock by a cancellation or returned goods.
    Released,
    /// A backorder whose order was cancelled, or a line paid after its
    /// order's cancellation.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineStock {
    pub sku: Sku,
    /// Ordered.
    pub quantity: u32,
    /// Still reserved.
    pub reserved: u32,
    pub status: LineStatus,
    /// What the buyer paid per unit (the distributor's resale price).
    pub unit_price: Option<Money>,
    /// What the distributor was entitled to pay per unit at order time.
    pub entitled_unit_price: Option<Money>,
    /// Released units not yet back in stock: an order of more SKUs than one
    /// transaction can return is released in parts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub releasing: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderStock {
    /// The payment event that recorded the lines.
    pub paid_by: Option<EventId>,
    pub cancelled: bool,
    pub lines: BTreeMap<LineId, LineStock>,
    /// Releases applied: `cancel`, `refund:<refund id>`.
    pub releases: BTreeSet<String>,
    /// Returned goods that arrived before the payment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub early_returns: BTreeMap<String, Vec<ReturnedLine>>,
}

/// Units to take from (negative) or give back to (positive) each SKU's stock.
pub type StockMoves = BTreeMap<Sku, i64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// The lines are recorded as pending: take their stock.
    Recorded,
    /// Recorded before (lines may still be pending after an interruption).
    Duplicate,
    /// The order was cancelled first: lines recorded as cancelled, nothing reserved.
    Cancelled,
}

impl OrderStock {
    /// Records a payment's lines, pending until [`OrderStock::take_pending`].
    pub fn pay(&mut self, event: &EventId, lines: &[OrderLine]) -> Payment {
        if self.paid_by.is_some() {
            return Payment::Duplicate;
        }
        self.paid_by = Some(event.clone());
        let status = if self.cancelled {
            LineStatus::Cancelled
        } else {
            LineStatus::Pending
        };
        for line in lines {
            self.lines.insert(
                line.line_id.clone(),
                LineStock {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    reserved: 0,
                    status,
                    unit_price: Some(line.unit_price),
                    entitled_unit_price: line.entitled_unit_price,
                    releasing: 0,
                },
            );
        }
        if self.cancelled {
            Payment::Cancelled
        } else {
            Payment::Recorded
        }
    }

    pub fn has_pending(&self) -> bool {
        self.lines.values().any(|l| l.status == LineStatus::Pending)
    }

    /// Reserves the pending lines of up to `max_skus` SKUs, net of returns
    /// that came before the payment, and returns the units to take.
    pub fn take_pending(&mut self, max_skus: usize) -> StockMoves {
        let pending: BTreeSet<&Sku> = self
            .lines
            .values()
            .filter(|l| l.status == LineStatus::Pending)
            .map(|l| &l.sku)
            .collect();
        let skus: BTreeSet<Sku> = pending.into_iter().take(max_skus).cloned().collect();
        let mut moves = StockMoves::new();
        for (id, line) in self
            .lines
            .iter_mut()
            .filter(|(_, l)| l.status == LineStatus::Pending && skus.contains(&l.sku))
        {
            let returned: u32 = self
                .early_returns
                .values()
                .flatten()
                .filter(|r| &r.line_id == id)
                .map(|r| r.quantity)
                .sum();
            line.reserved = line.quantity.saturating_sub(returned);
            line.status = if line.reserved == 0 {
                LineStatus::Released
            } else {
                LineStatus::Reserved
            };
            if line.reserved > 0 {
                *moves.entry(line.sku.clone()).or_default() -= i64::from(line.reserved);
            }
        }
        moves
    }

    /// Marks every reserved line of `sku` backordered: the stock did not
    /// cover them. Returns the units they had asked for.
    pub fn backorder(&mut self, sku: &Sku) -> i64 {
        let mut asked = 0;
        for line in self
            .lines
            .values_mut()
            .filter(|l| &l.sku == sku && l.status == LineStatus::Reserved)
        {
            asked += i64::from(line.reserved);
            line.reserved = 0;
            line.status = LineStatus::Backordered;
        }
        asked
    }

    /// Cancels the order: everything still reserved is released, once.
    pub fn cancel(&mut self) {
        if !self.releases.insert("cancel".into()) {
            return;
        }
        self.cancelled = true;
        for line in self.lines.values_mut() {
            line.status = match line.status {
                LineStatus::Backordered | LineStatus::Pending => LineStatus::Cancelled,
                LineStatus::Reserved => LineStatus::Released,
                s => s,
            };
            line.releasing += line.reserved;
            line.reserved = 0;
        }
    }

    /// Releases the returned goods of refund `refund_id`, once; before the
    /// payment they are kept for it. A backorder partly refunded stays open.
    pub fn refund(&mut self, refund_id: &str, returned: &[ReturnedLine]) {
        let release = format!("refund:{refund_id}");
        if returned.is_empty() || !self.releases.insert(release.clone()) {
            return;
        }
        if self.paid_by.is_none() {
            self.early_returns.insert(release, returned.to_vec());
            return;
        }
        // Lines still pending (an order reserved in parts) have taken no
        // stock yet: their returns wait for them, as if before the payment.
        let mut for_pending = Vec::new();
        for r in returned {
            let Some(line) = self.lines.get_mut(&r.line_id) else {
                continue;
            };
            if line.status == LineStatus::Pending {
                for_pending.push(r.clone());
                continue;
            }
            let back = r.quantity.min(line.reserved);
            line.reserved -= back;
            line.releasing += back;
            if back > 0 && line.reserved == 0 {
                line.status = LineStatus::Released;
            }
        }
        if !for_pending.is_empty() {
            self.early_returns.insert(release, for_pending);
        }
    }

    pub fn has_releasing(&self) -> bool {
        self.lines.values().any(|l| l.releasing > 0)
    }

    /// The released units of up to `max_skus` SKUs, to give back to stock.
    pub fn take_releasing(&mut self, max_skus: usize) -> StockMoves {
        let releasing: BTreeSet<&Sku> = self
            .lines
            .values()
            .filter(|l| l.releasing > 0)
            .map(|l| &l.sku)
            .collect();
        let skus: BTreeSet<Sku> = releasing.into_iter().take(max_skus).cloned().collect();
        let mut moves = StockMoves::new();
        for line in self
            .lines
            .values_mut()
            .filter(|l| l.releasing > 0 && skus.contains(&l.sku))
        {
            *moves.entry(line.sku.clone()).or_default() += i64::from(line.releasing);
            line.releasing = 0;
        }
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, sku: &str, q: u32) -> OrderLine {
        OrderLine {
            line_id: LineId::parse(id).unwrap(),
            sku: Sku::parse(sku).unwrap(),
            quantity: q,
            unit_price: Money::parse("10.00").unwrap(),
            amount: Money::parse("10.00").unwrap(),
            entitled_unit_price: None,
            floor_unit_price: None,
        }
    }

    fn ret(id: &str, q: u32) -> ReturnedLine {
        ReturnedLine {
            line_id: LineId::parse(id).unwrap(),
            quantity: q,
        }
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn ev(s: &str) -> EventId {
        EventId::parse(s).unwrap()
    }

    #[test]
    fn a_payment_reserves_by_sku_once_and_a_short_sku_is_backordered() {
        let mut o = OrderStock::default();
        let lines = [
            line("1", "TEE", 2),
            line("2", "TEE", 3),
            line("3", "HOODIE", 1),
        ];
        assert_eq!(o.pay(&ev("p"), &lines), Payment::Recorded);
        assert_eq!(
            o.take_pending(99),
            BTreeMap::from([(sku("HOODIE"), -1), (sku("TEE"), -5)])
        );
        assert!(!o.has_pending());
        assert_eq!(o.pay(&ev("p-again"), &lines), Payment::Duplicate);
        assert_eq!(o.backorder(&sku("TEE")), 5);
        assert_eq!(
            o.lines[&LineId::parse("2").unwrap()].status,
            LineStatus::Backordered
        );
        // Cancelling returns only what was reserved; the backorders close.
        o.cancel();
        assert_eq!(o.take_releasing(99), BTreeMap::from([(sku("HOODIE"), 1)]));
        o.cancel();
        assert_eq!(o.take_releasing(99), BTreeMap::new());
        assert_eq!(
            o.lines[&LineId::parse("1").unwrap()].status,
            LineStatus::Cancelled
        );
        assert_eq!(
            o.lines[&LineId::parse("3").unwrap()].status,
            LineStatus::Released
        );
    }

    #[test]
    fn refunds_release_once_and_early_events_are_kept_for_the_payment() {
        let mut o = OrderStock::default();
        o.pay(&ev("p"), &[line("1", "TEE", 10)]);
        o.take_pending(99);
        let refund = |o: &mut OrderStock, id: &str, back: &[ReturnedLine]| {
            o.refund(id, back);
            o.take_releasing(99)
        };
        assert_eq!(
            refund(&mut o, "RF1", &[ret("1", 4)]),
            BTreeMap::from([(sku("TEE"), 4)])
        );
        assert_eq!(
            refund(&mut o, "RF1", &[ret("1", 4)]),
            BTreeMap::new(),
            "the same refund under another event id"
        );
        assert_eq!(
            refund(&mut o, "RF2", &[ret("1", 99)]),
            BTreeMap::from([(sku("TEE"), 6)]),
            "never more than reserved"
        );
        assert_eq!(
            o.lines[&LineId::parse("1").unwrap()].status,
            LineStatus::Released
        );

        // A refund before its payment: the payment reserves what stays sold.
        let mut early = OrderStock::default();
        assert_eq!(refund(&mut early, "RF1", &[ret("1", 3)]), BTreeMap::new());
        assert_eq!(
            early.pay(&ev("p"), &[line("1", "TEE", 5)]),
            Payment::Recorded
        );
        assert_eq!(early.take_pending(99), BTreeMap::from([(sku("TEE"), -2)]));
        assert_eq!(
            refund(&mut early, "RF1", &[ret("1", 3)]),
            BTreeMap::new(),
            "applied with the payment"
        );

        // A cancellation before its payment: nothing is reserved.
        let mut cancelled = OrderStock::default();
        cancelled.cancel();
        assert!(!cancelled.has_releasing());
        assert_eq!(
            cancelled.pay(&ev("p"), &[line("1", "TEE", 5)]),
            Payment::Cancelled
        );
        assert_eq!(
            cancelled.lines[&LineId::parse("1").unwrap()].status,
            LineStatus::Cancelled
        );
        assert_eq!(cancelled.lines[&LineId::parse("1").unwrap()].reserved, 0);
    }

    #[test]
    fn many_skus_are_taken_in_parts() {
        let mut o = OrderStock::default();
        let lines: Vec<OrderLine> = (0..5)
            .map(|i| line(&i.to_string(), &format!("SKU-{i}"), 1))
            .collect();
        o.pay(&ev("p"), &lines);
        assert_eq!(o.take_pending(2).len(), 2);
        // A refund of a line not yet reserved: it reserves only what stays sold.
        o.refund("RF1", &[ret("4", 1)]);
        assert!(!o.has_releasing());
        assert_eq!(o.take_pending(2).len(), 2);
        assert!(o.has_pending());
        // A cancellation in between cancels what is still pending, and
        // what was reserved goes back in parts too.
        o.cancel();
        assert!(!o.has_pending());
        assert_eq!(o.take_releasing(3).values().sum::<i64>(), 3);
        assert_eq!(o.take_releasing(3).values().sum::<i64>(), 1);
        assert_eq!(
            o.lines[&LineId::parse("4").unwrap()].status,
            LineStatus::Cancelled,
            "never reserved, returned, then cancelled"
        );
        assert!(!o.has_releasing());
        assert_eq!(o.take_pending(2), BTreeMap::new());
    }
}
