//! An order's stock (库存占用): what each of its lines took, from which
//! part of its SKU's stock, and what came back, as one record per order.
//!
//! Delivery is at least once and out of order, so the record is a state
//! machine that every event moves at most once: a payment records its lines
//! once, a cancellation releases once (`cancel`), a refund releases its
//! returned goods once per refund (`refund:<id>`, whatever event id carries
//! it). A cancellation that overtakes the payment leaves the record
//! cancelled, and the late payment reserves nothing; returns that overtake
//! the payment are kept, and the payment reserves only what stays sold.
//!
//! Each step leaves the stock it moves pending on the lines. The store reads
//! the SKUs' stock ([`levels::SkuStock`]), lets the record draw on it
//! ([`OrderStock::take_pending`]: the order's tier's reserve, then the pool;
//! a line that finds too little is backordered) or give back what it holds
//! ([`OrderStock::take_releasing`]), as many SKUs as one transaction holds,
//! and writes the record and the SKUs' [`levels::Move`]s in one
//! transaction, each part a move lowers conditional on enough being there.
//! A write that loses to another is read and drawn again. What is still
//! pending after an interruption is carried on by the redelivery.
//!
//! Lines recorded before stock was kept by tier hold no [`Draw`]: their
//! units left on hand when they were taken, so they come back as a restock,
//! and their backorders were never counted.

pub mod forecast;
pub mod levels;
pub mod plan;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, LineId, OrderRef, Sku, TierId};
use crate::money::Money;
use crate::order::{OrderLine, ReturnedLine};
use levels::{Draw, Move, SkuStock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Recorded with its payment, stock not yet taken: an order with more
    /// SKUs than one transaction can move is taken in parts.
    Pending,
    /// Stock taken (partly returned goods leave it reserved with a lower
    /// `reserved`).
    Reserved,
    /// Not enough stock when paid: counted in its SKU's backorders and
    /// listed there, to be filled by priority when stock comes back.
    Backordered,
    /// Everything returned to stock by a cancellation or returned goods.
    Released,
    /// A backorder whose order was cancelled or whose goods were all
    /// refunded, or a line paid after its order's cancellation.
    Cancelled,
    /// Its reserved units left the warehouse: gone from on hand.
    Shipped,
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
    /// Where the reserved units came from (its units are `reserved`).
    /// `None` on lines taken before stock was kept by tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<Draw>,
    /// Units backordered, counted in the SKU's backorders.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub short: u32,
    /// Units shipped and not returned since.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shipped: u32,
    /// Released units not yet back in stock: an order of more SKUs than one
    /// transaction can return is released in parts. `returning` goes back
    /// to the parts it came from; `releasing` back to on hand and the pool
    /// (lines without a draw, and goods returned after they shipped);
    /// `closing` leaves the SKU's backorders.
    #[serde(default, skip_serializing_if = "is_nothing")]
    pub returning: Draw,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub releasing: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closing: u32,
    /// Shipped units not yet taken off on hand and what is allocated.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leaving: u32,
    /// The units of `leaving` that sit in buckets, by bucket.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leaving_buckets: BTreeMap<u8, u64>,
    /// The bucket of a spread SKU whose backorders count the line's
    /// (`short` and `closing`); `None`: the home cell's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<u8>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_nothing(d: &Draw) -> bool {
    d.units() == 0
}

impl LineStock {
    fn has_releasing(&self) -> bool {
        self.returning.units() > 0 || self.releasing > 0 || self.closing > 0 || self.leaving > 0
    }

    /// Moves up to `units` of what the line holds to what it is returning.
    fn release(&mut self, units: u32) {
        let back = units.min(self.reserved);
        self.reserved -= back;
        match &mut self.draw {
            Some(d) => self.returning.absorb(d.split_off(u64::from(back))),
            None => self.releasing += back,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderStock {
    /// The payment event that recorded the lines.
    pub paid_by: Option<EventId>,
    /// The distributor's tier when the order was paid: whose reserve the
    /// lines draw on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierId>,
    /// Its place in the shipping queue (see [`crate::fulfilment`]).
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub priority: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    /// When the order shipped, and the shipment's reference if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped: Option<Shipment>,
    pub cancelled: bool,
    pub lines: BTreeMap<LineId, LineStock>,
    /// Releases applied: `cancel`, `refund:<refund id>`.
    pub releases: BTreeSet<String>,
    /// Returned goods that arrived before the payment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub early_returns: BTreeMap<String, Vec<ReturnedLine>>,
}

/// Who pays: whose reserve the lines draw on, and where the order stands
/// in the shipping queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payer<'a> {
    pub tier: Option<&'a TierId>,
    pub priority: u16,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Why an order cannot ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShipError {
    #[error("the order has not been paid")]
    NotPaid,
    #[error("the order was cancelled")]
    Cancelled,
    #[error("some lines still wait for stock (pending or backordered)")]
    NotReady,
    #[error("nothing is left to ship: every line was returned or cancelled")]
    NothingToShip,
}

/// What each SKU's stock is to be moved by, as one conditional write each.
pub type StockMoves = BTreeMap<Sku, Move>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// The lines are recorded as pending: take their stock.
    Recorded,
    /// Recorded before (lines may still be pending after an interruption).
    Duplicate,
    /// The order was cancelled first: lines recorded as cancelled, nothing reserved.
    Cancelled,
}

/// What [`OrderStock::take_pending`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub moves: StockMoves,
    /// SKUs with a line that found too little stock.
    pub backordered: BTreeSet<Sku>,
    /// Units the payment asked for per SKU, filled or backordered: the
    /// demand reserve plans read ([`plan`]), counted once, as the lines
    /// are taken.
    pub demand: BTreeMap<Sku, u64>,
}

impl OrderStock {
    /// Records a payment's lines, pending until [`OrderStock::take_pending`].
    pub fn pay(&mut self, event: &EventId, payer: Payer<'_>, lines: &[OrderLine]) -> Payment {
        if self.paid_by.is_some() {
            return Payment::Duplicate;
        }
        self.paid_by = Some(event.clone());
        self.tier = payer.tier.cloned();
        self.priority = payer.priority;
        self.paid_at = Some(payer.paid_at);
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
                    draw: None,
                    short: 0,
                    shipped: 0,
                    returning: Draw::default(),
                    releasing: 0,
                    closing: 0,
                    leaving: 0,
                    leaving_buckets: BTreeMap::new(),
                    lane: None,
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

    /// The SKUs [`OrderStock::take_pending`] takes next: up to `max_skus`
    /// of those with pending lines.
    pub fn pending_skus(&self, max_skus: usize) -> BTreeSet<Sku> {
        let pending: BTreeSet<&Sku> = self
            .lines
            .values()
            .filter(|l| l.status == LineStatus::Pending)
            .map(|l| &l.sku)
            .collect();
        pending.into_iter().take(max_skus).cloned().collect()
    }

    /// Takes the stock of the pending lines of up to `max_skus` SKUs, net of
    /// returns that came before the payment, from `stock` as read (a SKU
    /// absent has none): each line draws on the order's tier's reserve,
    /// then the pool, in line order, and a line the two cannot fill whole
    /// is backordered.
    ///
    /// A spread SKU's line draws on the home cell, then on the bucket
    /// `order` hashes to, then on the others read ([`SkuStock::draw_in`]),
    /// and is backordered in that bucket.
    pub fn take_pending(
        &mut self,
        order: &OrderRef,
        max_skus: usize,
        stock: &BTreeMap<Sku, SkuStock>,
    ) -> Taken {
        let order = order.to_string();
        let skus = self.pending_skus(max_skus);
        let mut left: BTreeMap<Sku, SkuStock> = skus
            .iter()
            .map(|s| (s.clone(), stock.get(s).cloned().unwrap_or_default()))
            .collect();
        let mut taken = Taken::default();
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
            let wanted = line.quantity.saturating_sub(returned);
            if wanted == 0 {
                line.status = LineStatus::Released;
                continue;
            }
            *taken.demand.entry(line.sku.clone()).or_default() += u64::from(wanted);
            let sku_stock = left.get_mut(&line.sku).expect("every taken SKU is read");
            line.lane = levels::lane(&order, sku_stock.lanes);
            let step = match sku_stock.draw_in(self.tier.as_ref(), u64::from(wanted), line.lane) {
                Some(draw) => {
                    line.status = LineStatus::Reserved;
                    line.reserved = wanted;
                    let step = SkuStock::take(&draw);
                    line.draw = Some(draw);
                    step
                }
                None => {
                    line.status = LineStatus::Backordered;
                    line.short = wanted;
                    taken.backordered.insert(line.sku.clone());
                    Move::backorder(i64::from(wanted), line.lane)
                }
            };
            sku_stock
                .apply(&step)
                .expect("a draw fits the stock it was drawn from");
            taken.moves.entry(line.sku.clone()).or_default().add(&step);
        }
        taken.moves.retain(|_, m| !m.is_empty());
        taken
    }

    /// The SKUs whose backorder lists hold the order: a line's counted
    /// backorder, open or still closing (its move not yet written, in an
    /// order of more SKUs than one transaction holds). The store adds and
    /// removes the entries with the moves.
    pub fn backordered_skus(&self) -> BTreeSet<Sku> {
        self.lines
            .values()
            .filter(|l| (l.status == LineStatus::Backordered && l.short > 0) || l.closing > 0)
            .map(|l| l.sku.clone())
            .collect()
    }

    /// Fills what the order's backorders of `sku` can take from `stock` as
    /// read, in line order: each line whole from the order's tier's reserve
    /// and then the pool, or not at all (it keeps its place). `None`: none
    /// could be filled.
    pub fn fill_backorders(&mut self, sku: &Sku, stock: &SkuStock) -> Option<Move> {
        let mut left = stock.clone();
        let mut filled = Move::default();
        for line in self
            .lines
            .values_mut()
            .filter(|l| &l.sku == sku && l.status == LineStatus::Backordered && l.short > 0)
        {
            let Some(draw) = left.draw_in(self.tier.as_ref(), u64::from(line.short), line.lane)
            else {
                continue;
            };
            let mut step = SkuStock::take(&draw);
            step.add(&Move::backorder(-i64::from(line.short), line.lane));
            left.apply(&step)
                .expect("a draw fits the stock it was drawn from");
            filled.add(&step);
            line.status = LineStatus::Reserved;
            line.reserved = line.short;
            line.short = 0;
            line.draw = Some(draw);
        }
        (!filled.is_empty()).then_some(filled)
    }

    /// Cancels the order: everything still reserved is released, and its
    /// backorders closed, once.
    pub fn cancel(&mut self) {
        if !self.releases.insert("cancel".into()) {
            return;
        }
        self.cancelled = true;
        for line in self.lines.values_mut() {
            match line.status {
                LineStatus::Pending => line.status = LineStatus::Cancelled,
                LineStatus::Backordered => {
                    line.status = LineStatus::Cancelled;
                    line.closing += line.short;
                    line.short = 0;
                }
                LineStatus::Reserved => {
                    line.status = LineStatus::Released;
                    line.release(line.reserved);
                }
                // Gone from the warehouse: what comes back is a refund's.
                LineStatus::Released | LineStatus::Cancelled | LineStatus::Shipped => {}
            }
        }
    }

    /// Releases the returned goods of refund `refund_id`, once; before the
    /// payment they are kept for it. A backorder partly refunded stays open
    /// for what is left.
    pub fn refund(&mut self, refund_id: &str, returned: &[ReturnedLine]) {
        let release = format!("refund:{refund_id}");
        if returned.is_empty() || !self.releases.insert(release.clone()) {
            return;
        }
        if self.paid_by.is_none() {
            self.early_returns.insert(release, returned.to_vec());
            return;
        }
        // Lines still pending (an order taken in parts) have taken no
        // stock yet: their returns wait for them, as if before the payment.
        let mut for_pending = Vec::new();
        for r in returned {
            let Some(line) = self.lines.get_mut(&r.line_id) else {
                continue;
            };
            match line.status {
                LineStatus::Pending => for_pending.push(r.clone()),
                LineStatus::Backordered => {
                    let cut = r.quantity.min(line.short);
                    line.short -= cut;
                    line.closing += cut;
                    if line.short == 0 {
                        line.status = LineStatus::Cancelled;
                    }
                }
                LineStatus::Reserved => {
                    line.release(r.quantity);
                    if line.reserved == 0 {
                        line.status = LineStatus::Released;
                    }
                }
                // Goods back from the buyer: on hand again, in the pool.
                LineStatus::Shipped => {
                    let back = r.quantity.min(line.shipped);
                    line.shipped -= back;
                    line.releasing += back;
                    if line.shipped == 0 {
                        line.status = LineStatus::Released;
                    }
                }
                LineStatus::Released | LineStatus::Cancelled => {}
            }
        }
        if !for_pending.is_empty() {
            self.early_returns.insert(release, for_pending);
        }
    }

    pub fn has_releasing(&self) -> bool {
        self.lines.values().any(LineStock::has_releasing)
    }

    /// Whether a line's stock is still to be taken: pending, or backordered.
    fn waits_for_stock(&self) -> bool {
        self.lines
            .values()
            .any(|l| matches!(l.status, LineStatus::Pending | LineStatus::Backordered))
    }

    /// Whether the order is in the shipping queue: paid, not cancelled, not
    /// shipped, every line's stock taken (none pending or backordered), and
    /// something to ship.
    pub fn is_ready(&self) -> bool {
        self.paid_by.is_some()
            && !self.cancelled
            && self.shipped.is_none()
            && !self.waits_for_stock()
            && self
                .lines
                .values()
                .any(|l| l.status == LineStatus::Reserved)
    }

    /// Ships the order whole: every reserved unit is to leave on hand and
    /// what is allocated ([`OrderStock::take_releasing`] gives the moves,
    /// in parts for an order of many SKUs). `Ok(false)`: shipped before
    /// (the first shipment stands).
    pub fn ship(&mut self, shipment: Shipment) -> Result<bool, ShipError> {
        if self.shipped.is_some() {
            return Ok(false);
        }
        if self.paid_by.is_none() {
            return Err(ShipError::NotPaid);
        }
        if self.cancelled {
            return Err(ShipError::Cancelled);
        }
        if !self.is_ready() {
            return Err(if self.waits_for_stock() {
                ShipError::NotReady
            } else {
                ShipError::NothingToShip
            });
        }
        for line in self
            .lines
            .values_mut()
            .filter(|l| l.status == LineStatus::Reserved)
        {
            // Lines taken before stock was kept by tier already left on hand.
            if let Some(draw) = line.draw.as_mut() {
                let draw = std::mem::take(draw);
                line.leaving += draw.units() as u32;
                for (b, u) in draw.buckets {
                    *line.leaving_buckets.entry(b).or_default() += u;
                }
            }
            line.shipped = line.reserved;
            line.reserved = 0;
            line.status = LineStatus::Shipped;
        }
        self.shipped = Some(shipment);
        Ok(true)
    }

    /// The released units of up to `max_skus` SKUs, to give back to stock,
    /// and the shipped ones, to take off it.
    pub fn take_releasing(&mut self, max_skus: usize) -> StockMoves {
        let releasing: BTreeSet<&Sku> = self
            .lines
            .values()
            .filter(|l| l.has_releasing())
            .map(|l| &l.sku)
            .collect();
        let skus: BTreeSet<Sku> = releasing.into_iter().take(max_skus).cloned().collect();
        let mut moves = StockMoves::new();
        for line in self
            .lines
            .values_mut()
            .filter(|l| l.has_releasing() && skus.contains(&l.sku))
        {
            let m = moves.entry(line.sku.clone()).or_default();
            m.add(&SkuStock::give_back(&std::mem::take(&mut line.returning)));
            let restock = i64::from(std::mem::take(&mut line.releasing));
            let shipped = i64::from(std::mem::take(&mut line.leaving));
            // Shipped units leave the cells they were allocated in.
            let buckets = std::mem::take(&mut line.leaving_buckets)
                .into_iter()
                .map(|(b, u)| {
                    let u = u as i64;
                    (
                        b,
                        levels::CellMove {
                            on_hand: -u,
                            allocated: -u,
                            ..levels::CellMove::default()
                        },
                    )
                })
                .collect();
            m.add(&Move {
                on_hand: restock - shipped,
                pool: restock,
                allocated: -shipped,
                buckets,
                ..Move::default()
            });
            m.add(&Move::backorder(
                -i64::from(std::mem::take(&mut line.closing)),
                line.lane,
            ));
        }
        moves.retain(|_, m| !m.is_empty());
        moves
    }
}

#[cfg(test)]
mod tests;
