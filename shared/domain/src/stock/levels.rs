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
        if part.reserved() == 0 {
            part.reserve = None;
        }
        part
    }

    /// Adds `other`, a part split off the same line's draw (so of the same
    /// tier's reserve, if any).
    pub fn absorb(&mut self, other: Draw) {
        self.pool += other.pool;
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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelsError {
    #[error("reserves of {asked} units exceed the {free} free (on hand less allocated)")]
    ReservesExceedFree { asked: u64, free: u64 },
    #[error("on hand of {asked} is below the {allocated} units allocated to orders")]
    BelowAllocated { asked: u64, allocated: u64 },
    #[error("the step would take {part} below zero")]
    Negative { part: &'static str },
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

    /// Whether the parts sum to on hand.
    pub fn is_consistent(&self) -> bool {
        self.free() + self.allocated == self.on_hand
    }

    /// The draw that fills `quantity` for `tier`: its reserve first, then
    /// the pool. `None` when the two together fall short.
    pub fn draw(&self, tier: Option<&TierId>, quantity: u64) -> Option<Draw> {
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
        Some(Draw { pool, reserve })
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
            return Ok(m);
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
        Ok(m)
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
        Ok(m)
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
        *self = next;
        Ok(())
    }
}

impl Move {
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
    }

    pub fn negated(&self) -> Move {
        Move {
            on_hand: -self.on_hand,
            pool: -self.pool,
            reserves: self.reserves.iter().map(|(t, d)| (t.clone(), -d)).collect(),
            allocated: -self.allocated,
            backordered: -self.backordered,
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
