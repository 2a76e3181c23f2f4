//! A SKU's stock by tier (按等级分配库存): what is on hand, split into the
//! units kept for each tier (reserves), the shared pool and the units
//! allocated to orders, beside the units backordered.
//!
//! The parts always sum to on hand: every step moves units between parts
//! or changes on hand and one part by the same amount, and a step that
//! would take a part below zero is refused whole. A tier draws from its own
//! reserve first, then from the shared pool, and never from another tier's
//! reserve: a reserve is kept for its tier's forecast demand, so a senior
//! tier drawing on a junior's would starve the tier it was planned for,
//! and a junior drawing on a senior's is what reserves exist to prevent.
//!
//! Every step is a set of additions to the parts, [`Move`], so the store can
//! write it as `ADD`s conditional on each part it lowers staying at or above
//! zero: concurrent steps then commute, and a loser's condition fails only
//! when the stock it counted on was really taken.
//!
//! A hot SKU's stock is split into cells (库存分桶): the home cell keeps
//! the reserves, and up to [`MAX_BUCKETS`] bucket cells share the pool, so
//! that concurrent orders write different items. [`SkuStock`]'s parts are
//! always the SKU's totals over the cells read; `buckets` says which share
//! of them each bucket holds, and the home cell holds the rest. Each cell
//! is consistent on its own, so the totals are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::TierId;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuStock {
    pub on_hand: u64,
    /// Free to any tier.
    pub pool: u64,
    /// Free, but only to the tier named.
    pub reserves: BTreeMap<TierId, u64>,
    /// Taken by paid orders, not yet shipped.
    pub allocated: u64,
    /// Units of paid lines that found no stock: not part of on hand.
    pub backordered: u64,
    /// How many buckets the pool is spread over (0: the SKU is one item).
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub lanes: u8,
    /// The buckets read, and their share of the parts above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub buckets: BTreeMap<u8, Cell>,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

/// The most buckets a SKU's pool may be spread over: a count or a plan
/// writes the home cell and every bucket in one transaction of at most 100
/// items.
pub const MAX_BUCKETS: u8 = 64;

/// A bucket's share of a SKU's stock. It holds no reserves: its on hand is
/// its pool and what its orders took from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub on_hand: u64,
    pub pool: u64,
    pub allocated: u64,
    pub backordered: u64,
}

impl Cell {
    fn is_consistent(&self) -> bool {
        self.pool + self.allocated == self.on_hand
    }
}

/// A bucket's share of a [`Move`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellMove {
    pub on_hand: i64,
    pub pool: i64,
    pub allocated: i64,
    pub backordered: i64,
}

impl CellMove {
    fn is_empty(&self) -> bool {
        *self == CellMove::default()
    }

    fn add(&mut self, o: &CellMove) {
        self.on_hand += o.on_hand;
        self.pool += o.pool;
        self.allocated += o.allocated;
        self.backordered += o.backordered;
    }

    fn negated(&self) -> CellMove {
        CellMove {
            on_hand: -self.on_hand,
            pool: -self.pool,
            allocated: -self.allocated,
            backordered: -self.backordered,
        }
    }
}

/// The bucket an order draws on first, of a SKU spread over `lanes`
/// buckets: the order's own, so that concurrent orders spread over them.
pub fn lane(order: &str, lanes: u8) -> Option<u8> {
    (lanes > 0).then(|| (crate::analytics::fnv1a(order) % u32::from(lanes)) as u8)
}

/// Where an allocation's units came from, kept on the order line so that a
/// release gives each unit back to the part it was taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    #[serde(default)]
    pub pool: u64,
    /// Units from a reserve: only ever the ordering tier's own, so the
    /// draw names it and a release cannot put them anywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<Reserved>,
    /// The pool units that came from buckets, by bucket; the rest of
    /// `pool` came from the home cell.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub buckets: BTreeMap<u8, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub tier: TierId,
    pub units: u64,
}

impl Draw {
    pub fn units(&self) -> u64 {
        self.pool + self.reserved()
    }

    pub fn reserved(&self) -> u64 {
        self.reserve.as_ref().map_or(0, |r| r.units)
    }

    /// Takes up to `units` off this draw, from the reserve first: returned
    /// goods refill the reserve kept for their tier before the pool.
    pub fn split_off(&mut self, units: u64) -> Draw {
        let mut part = Draw::default();
        if let Some(r) = &mut self.reserve {
            let back = units.min(r.units);
            r.units -= back;
            part.reserve = Some(Reserved {
                tier: r.tier.clone(),
                units: back,
            });
            if r.units == 0 {
                self.reserve = None;
            }
        }
        let back = (units - part.reserved()).min(self.pool);
        self.pool -= back;
        part.pool = back;
        // The home cell's units first, then the buckets' from the last.
        let from_buckets: u64 = self.buckets.values().sum();
        let mut owed = back.saturating_sub(self.pool + back - from_buckets);
        for (b, u) in self.buckets.iter_mut().rev() {
            if owed == 0 {
                break;
            }
            let cut = owed.min(*u);
            *u -= cut;
            owed -= cut;
            part.buckets.insert(*b, cut);
        }
        self.buckets.retain(|_, u| *u > 0);
        if part.reserved() == 0 {
            part.reserve = None;
        }
        part
    }

    /// Adds `other`, a part split off the same line's draw (so of the same
    /// tier's reserve, if any).
    pub fn absorb(&mut self, other: Draw) {
        self.pool += other.pool;
        for (b, u) in other.buckets {
            *self.buckets.entry(b).or_default() += u;
        }
        match (&mut self.reserve, other.reserve) {
            (Some(mine), Some(theirs)) => mine.units += theirs.units,
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }
}

/// Additions to a SKU's parts, as one conditional write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Move {
    pub on_hand: i64,
    pub pool: i64,
    pub reserves: BTreeMap<TierId, i64>,
    pub allocated: i64,
    pub backordered: i64,
    /// The buckets' share of the parts above; the home cell moves the rest.
    pub buckets: BTreeMap<u8, CellMove>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelsError {
    #[error("reserves of {asked} units exceed the {free} free (on hand less allocated)")]
    ReservesExceedFree { asked: u64, free: u64 },
    #[error("on hand of {asked} is below the {allocated} units allocated to orders")]
    BelowAllocated { asked: u64, allocated: u64 },
    #[error("the step would take {part} below zero")]
    Negative { part: &'static str },
    #[error("a SKU's pool is spread over at most {MAX_BUCKETS} buckets, not {asked}")]
    TooManyBuckets { asked: u64 },
}

fn add(part: &'static str, value: u64, delta: i64) -> Result<u64, LevelsError> {
    value
        .checked_add_signed(delta)
        .ok_or(LevelsError::Negative { part })
}

impl SkuStock {
    /// Units free: the pool and every reserve.
    pub fn free(&self) -> u64 {
        self.pool + self.reserves.values().sum::<u64>()
    }

    /// What `tier` may take: its own reserve and the pool. `None`: a line
    /// whose distributor has no tier draws on the pool alone.
    pub fn available_to(&self, tier: Option<&TierId>) -> u64 {
        self.pool
            + tier
                .and_then(|t| self.reserves.get(t))
                .copied()
                .unwrap_or(0)
    }

    /// Whether the parts sum to on hand, in every cell.
    pub fn is_consistent(&self) -> bool {
        self.free() + self.allocated == self.on_hand
            && self.buckets.values().all(Cell::is_consistent)
            && self.home_checked().is_some()
    }

    /// The home cell's share: the totals less the buckets'. `None` when the
    /// buckets hold more of a part than the totals.
    fn home_checked(&self) -> Option<Cell> {
        let mut home = Cell {
            on_hand: self.on_hand,
            pool: self.pool,
            allocated: self.allocated,
            backordered: self.backordered,
        };
        for c in self.buckets.values() {
            home.on_hand = home.on_hand.checked_sub(c.on_hand)?;
            home.pool = home.pool.checked_sub(c.pool)?;
            home.allocated = home.allocated.checked_sub(c.allocated)?;
            home.backordered = home.backordered.checked_sub(c.backordered)?;
        }
        Some(home)
    }

    /// The home cell's pool, on hand, allocated and backordered (its
    /// reserves are all of `reserves`).
    pub fn home(&self) -> Cell {
        self.home_checked().unwrap_or_default()
    }

    /// The SKU's stock with `cell`'s share added: how the store sums the
    /// cells it reads.
    pub fn add_cell(&mut self, bucket: u8, cell: Cell) {
        self.on_hand += cell.on_hand;
        self.pool += cell.pool;
        self.allocated += cell.allocated;
        self.backordered += cell.backordered;
        self.buckets.insert(bucket, cell);
    }

    /// The draw that fills `quantity` for `tier`: its reserve first, then
    /// the pool. `None` when the two together fall short.
    pub fn draw(&self, tier: Option<&TierId>, quantity: u64) -> Option<Draw> {
        self.draw_in(tier, quantity, None)
    }

    /// [`SkuStock::draw`] of a spread SKU: the pool's units come from the
    /// home cell, then from bucket `lane` (the order's), then from the
    /// other buckets read, lowest first, so a line is short only when every
    /// cell read together is.
    pub fn draw_in(&self, tier: Option<&TierId>, quantity: u64, lane: Option<u8>) -> Option<Draw> {
        if self.available_to(tier) < quantity {
            return None;
        }
        let reserve = tier.and_then(|t| {
            let units = self.reserves.get(t).copied().unwrap_or(0).min(quantity);
            (units > 0).then(|| Reserved {
                tier: t.clone(),
                units,
            })
        });
        let pool = quantity - reserve.as_ref().map_or(0, |r| r.units);
        let mut owed = pool.saturating_sub(self.home().pool);
        let mut buckets = BTreeMap::new();
        let order = lane
            .into_iter()
            .chain(self.buckets.keys().copied().filter(|b| Some(*b) != lane));
        for b in order {
            if owed == 0 {
                break;
            }
            let has = self.buckets.get(&b).map_or(0, |c| c.pool);
            let cut = owed.min(has);
            if cut > 0 {
                buckets.insert(b, cut);
                owed -= cut;
            }
        }
        debug_assert_eq!(owed, 0, "the cells' pools sum to the pool");
        Some(Draw {
            pool,
            reserve,
            buckets,
        })
    }

    /// The move that allocates `draw` to an order.
    pub fn take(draw: &Draw) -> Move {
        let mut m = Move {
            pool: -(draw.pool as i64),
            allocated: draw.units() as i64,
            ..Move::default()
        };
        if let Some(r) = &draw.reserve {
            m.reserves.insert(r.tier.clone(), -(r.units as i64));
        }
        for (b, u) in &draw.buckets {
            let u = *u as i64;
            m.buckets.insert(
                *b,
                CellMove {
                    pool: -u,
                    allocated: u,
                    ..CellMove::default()
                },
            );
        }
        m
    }

    /// The move that gives `draw` back to where it came from: a
    /// cancellation, or returned goods.
    pub fn give_back(draw: &Draw) -> Move {
        Self::take(draw).negated()
    }

    /// The move that sets on hand to `on_hand` (a stock count from the
    /// ERP): a rise goes to the pool; a fall comes out of the pool first,
    /// then out of the reserves, most junior first (`junior_first` orders
    /// the tiers), and never out of what is allocated.
    pub fn recount(&self, on_hand: u64, junior_first: &[TierId]) -> Result<Move, LevelsError> {
        if on_hand < self.allocated {
            return Err(LevelsError::BelowAllocated {
                asked: on_hand,
                allocated: self.allocated,
            });
        }
        let mut m = Move {
            on_hand: on_hand as i64 - self.on_hand as i64,
            ..Move::default()
        };
        if on_hand >= self.on_hand {
            m.pool = m.on_hand;
            return Ok(self.spread(m));
        }
        let mut short = self.on_hand - on_hand;
        let from_pool = short.min(self.pool);
        m.pool = -(from_pool as i64);
        short -= from_pool;
        // Tiers the rule set no longer names go first: no distributor is
        // placed in them any more, so their reserves serve nobody.
        let ranked = |t: &TierId| junior_first.iter().position(|j| j == t);
        let mut order: Vec<(&TierId, u64)> = self.reserves.iter().map(|(t, &u)| (t, u)).collect();
        order.sort_by_key(|(t, _)| ranked(t).map_or(0, |p| p + 1));
        for (tier, units) in order {
            if short == 0 {
                break;
            }
            let cut = short.min(units);
            if cut > 0 {
                m.reserves.insert(tier.clone(), -(cut as i64));
                short -= cut;
            }
        }
        debug_assert_eq!(short, 0, "on hand at or above allocated leaves enough free");
        Ok(self.spread(m))
    }

    /// The move that sets the reserves to `plan` (a tier absent from it
    /// keeps none); the pool takes up the difference.
    pub fn replan(&self, plan: &BTreeMap<TierId, u64>) -> Result<Move, LevelsError> {
        let asked: u64 = plan.values().sum();
        let free = self.free();
        if asked > free {
            return Err(LevelsError::ReservesExceedFree { asked, free });
        }
        let mut m = Move {
            pool: (free - asked) as i64 - self.pool as i64,
            ..Move::default()
        };
        for tier in self.reserves.keys().chain(plan.keys()) {
            let now = self.reserves.get(tier).copied().unwrap_or(0) as i64;
            let then = plan.get(tier).copied().unwrap_or(0) as i64;
            if now != then {
                m.reserves.insert(tier.clone(), then - now);
            }
        }
        Ok(self.spread(m))
    }

    /// The move that spreads the pool over `lanes` buckets (0: back to the
    /// home cell). Buckets beyond them give their pool up and keep what
    /// their orders hold until it ships or comes back.
    pub fn rebucket(&self, lanes: u64) -> Result<Move, LevelsError> {
        if lanes > u64::from(MAX_BUCKETS) {
            return Err(LevelsError::TooManyBuckets { asked: lanes });
        }
        let mut spread = self.clone();
        spread.lanes = lanes as u8;
        Ok(spread.spread(Move::default()))
    }

    /// `m`, a move of the totals read in full, with the cells' shares that
    /// leave the pool spread evenly over the buckets in use, the lowest
    /// holding the odd units, and none in the home cell: a payment draws on
    /// its own bucket, and none is short while another holds much more.
    /// Without buckets the home cell holds the pool, and `m` is unchanged
    /// for a SKU that never had any.
    fn spread(&self, mut m: Move) -> Move {
        if self.lanes == 0 && self.buckets.is_empty() {
            return m;
        }
        let pool = self
            .pool
            .checked_add_signed(m.pool)
            .expect("a move decided on the totals keeps the pool at or above zero");
        let lanes = u64::from(self.lanes);
        let cells: std::collections::BTreeSet<u8> =
            self.buckets.keys().copied().chain(0..self.lanes).collect();
        m.buckets.clear();
        for b in cells {
            let target = if u64::from(b) < lanes {
                pool / lanes + u64::from(u64::from(b) < pool % lanes)
            } else {
                0
            };
            let now = self.buckets.get(&b).map_or(0, |c| c.pool);
            let d = target as i64 - now as i64;
            if d != 0 {
                m.buckets.insert(
                    b,
                    CellMove {
                        on_hand: d,
                        pool: d,
                        ..CellMove::default()
                    },
                );
            }
        }
        m
    }

    /// Applies `m` whole, or refuses it whole when a part would go below
    /// zero (the store's conditions do the same).
    pub fn apply(&mut self, m: &Move) -> Result<(), LevelsError> {
        let mut next = self.clone();
        next.on_hand = add("on_hand", next.on_hand, m.on_hand)?;
        next.pool = add("pool", next.pool, m.pool)?;
        next.allocated = add("allocated", next.allocated, m.allocated)?;
        next.backordered = add("backordered", next.backordered, m.backordered)?;
        for (tier, delta) in &m.reserves {
            let r = next.reserves.entry(tier.clone()).or_default();
            *r = add("a reserve", *r, *delta)?;
            if *r == 0 {
                next.reserves.remove(tier);
            }
        }
        for (b, d) in &m.buckets {
            let c = next.buckets.entry(*b).or_default();
            c.on_hand = add("a bucket's on hand", c.on_hand, d.on_hand)?;
            c.pool = add("a bucket's pool", c.pool, d.pool)?;
            c.allocated = add("a bucket's allocated", c.allocated, d.allocated)?;
            c.backordered = add("a bucket's backordered", c.backordered, d.backordered)?;
        }
        if next.home_checked().is_none() {
            return Err(LevelsError::Negative {
                part: "the home cell",
            });
        }
        *self = next;
        Ok(())
    }
}

impl Move {
    /// Counts (negative: closes) `units` of backorders, in bucket `lane`
    /// when there is one.
    pub fn backorder(units: i64, lane: Option<u8>) -> Move {
        let mut m = Move {
            backordered: units,
            ..Move::default()
        };
        if let Some(b) = lane {
            m.buckets.insert(
                b,
                CellMove {
                    backordered: units,
                    ..CellMove::default()
                },
            );
        }
        m
    }

    /// Adds `other` to this move: two steps written as one.
    pub fn add(&mut self, other: &Move) {
        self.on_hand += other.on_hand;
        self.pool += other.pool;
        self.allocated += other.allocated;
        self.backordered += other.backordered;
        for (tier, d) in &other.reserves {
            *self.reserves.entry(tier.clone()).or_default() += d;
        }
        self.reserves.retain(|_, d| *d != 0);
        for (b, d) in &other.buckets {
            self.buckets.entry(*b).or_default().add(d);
        }
        self.buckets.retain(|_, d| !d.is_empty());
    }

    /// The home cell's share: the move less the buckets'.
    pub fn home(&self) -> CellMove {
        let mut home = CellMove {
            on_hand: self.on_hand,
            pool: self.pool,
            allocated: self.allocated,
            backordered: self.backordered,
        };
        for d in self.buckets.values() {
            home.add(&d.negated());
        }
        home
    }

    /// Whether the home cell's item is written: it moves a part, or a
    /// reserve.
    pub fn moves_home(&self) -> bool {
        !self.home().is_empty() || self.reserves.values().any(|d| *d != 0)
    }

    /// Units the move frees (negative: takes) from the pool and reserves.
    pub fn freed(&self) -> i64 {
        self.pool + self.reserves.values().sum::<i64>()
    }

    /// Whether the move changes nothing.
    pub fn is_empty(&self) -> bool {
        self.on_hand == 0
            && self.pool == 0
            && self.allocated == 0
            && self.backordered == 0
            && self.reserves.values().all(|d| *d == 0)
            && self.buckets.values().all(CellMove::is_empty)
    }

    pub fn negated(&self) -> Move {
        Move {
            on_hand: -self.on_hand,
            pool: -self.pool,
            reserves: self.reserves.iter().map(|(t, d)| (t.clone(), -d)).collect(),
            allocated: -self.allocated,
            backordered: -self.backordered,
            buckets: self
                .buckets
                .iter()
                .map(|(b, d)| (*b, d.negated()))
                .collect(),
        }
    }
}

/// One tier's claim on a short supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub tier: TierId,
    /// Higher is served first (the rule set's `benefits.priority`).
    pub seniority: u8,
    /// Units wanted: the tier's forecast demand, which caps its share.
    pub demand: u64,
}

/// Shares `supply` among `claims` in whole units: the most senior tiers in
/// full, one seniority after another, and the first seniority that falls
/// short shares what is left in proportion to demand, by largest remainder
/// (Hamilton's method), ties to the tier named first. The shares never
/// exceed a tier's demand, and sum to `supply` whenever the demands reach it.
pub fn share(supply: u64, claims: &[Claim]) -> BTreeMap<TierId, u64> {
    let mut shares: BTreeMap<TierId, u64> = claims.iter().map(|c| (c.tier.clone(), 0)).collect();
    let mut levels: Vec<u8> = claims.iter().map(|c| c.seniority).collect();
    levels.sort_unstable_by(|a, b| b.cmp(a));
    levels.dedup();
    let mut left = supply;
    for level in levels {
        let group: Vec<&Claim> = claims.iter().filter(|c| c.seniority == level).collect();
        let wanted: u64 = group.iter().map(|c| c.demand).sum();
        if wanted <= left {
            for c in &group {
                *shares.get_mut(&c.tier).expect("every claim has a share") += c.demand;
            }
            left -= wanted;
            continue;
        }
        // Quotas left·demand/wanted, in u128 so no product overflows.
        let mut given = 0u64;
        let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(group.len());
        for (i, c) in group.iter().enumerate() {
            let exact = u128::from(left) * u128::from(c.demand);
            let whole = (exact / u128::from(wanted)) as u64;
            *shares.get_mut(&c.tier).expect("every claim has a share") += whole;
            given += whole;
            remainders.push((exact % u128::from(wanted), i));
        }
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in remainders.iter().take((left - given) as usize) {
            *shares
                .get_mut(&group[i].tier)
                .expect("every claim has a share") += 1;
        }
        break;
    }
    shares.retain(|_, u| *u > 0);
    shares
}

#[cfg(test)]
mod tests;
