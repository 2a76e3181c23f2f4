//! The network roll-up: how a distributor's all-level network metrics
//! reach its ancestors without riding in every order's transaction.
//!
//! A distributor's network (all levels below it) is its direct downline's
//! own results plus each direct downline's network. The first part is
//! written with the order, in the transaction that already writes the
//! seller's upline (its level-1 metrics and commission). The second part
//! is *pulled*: an upline reads each direct downline's [`NetworkTotals`],
//! compares them with what it saw last (an edge it alone writes) and adds
//! the difference. So
//!
//! ```text
//! network(P) = Σ own(c) + Σ seen(P, c)     over P's direct downline c
//! ```
//!
//! and once every pull has run, `seen(P, c) = NetworkTotals::of(c)`: the
//! totals equal what the ledger says, level by level. A pull is
//! state-based, so running it twice, or with a stale or duplicate message,
//! adds nothing the second time; no delta id has to be remembered. An
//! upline is written once per pull however many orders arrived below it,
//! and pulls are debounced to one per window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::Month;
use crate::metrics::{Buckets, Metrics};
use crate::money::Money;

/// What a distributor's upline takes from its network by pull: the part
/// of its all-level metrics that did not come from its own customers and
/// orders (those reach the upline with the order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkTotals {
    /// Sales of everyone below, by month, and in all.
    #[serde(rename = "s", default)]
    pub sales: Buckets<Money>,
    #[serde(rename = "o", default)]
    pub orders: Buckets<i64>,
    /// Users of everyone below (its own customers excluded).
    #[serde(rename = "u", default)]
    pub users: i64,
    #[serde(rename = "v", default)]
    pub valid_users: i64,
    /// Distributors below, at every level.
    #[serde(rename = "d", default)]
    pub distributors: i64,
}

impl NetworkTotals {
    /// What `metrics`' upline pulls from them.
    pub fn of(metrics: &Metrics) -> NetworkTotals {
        NetworkTotals {
            sales: monthly(&metrics.downline_sales_all),
            orders: monthly(&metrics.downline_orders_all),
            // A distributor's users at all levels count its own customers,
            // which its upline was given with their orders.
            users: metrics.downline_users_all - metrics.downline_users,
            valid_users: metrics.valid_downline_users_all - metrics.valid_downline_users,
            distributors: metrics.downline_distributors_all,
        }
    }

    /// What has moved since `seen`: the difference to add to the upline,
    /// in the months from `from` on (older ones no window reads, and the
    /// downline may have pruned them) and in all.
    pub fn since(&self, seen: &NetworkTotals, from: Month) -> NetworkTotals {
        NetworkTotals {
            sales: difference(&self.sales, &seen.sales, from),
            orders: difference(&self.orders, &seen.orders, from),
            users: self.users - seen.users,
            valid_users: self.valid_users - seen.valid_users,
            distributors: self.distributors - seen.distributors,
        }
    }

    /// Adds `other` to these totals.
    pub fn add(&mut self, other: &NetworkTotals) {
        add_buckets(&mut self.sales, &other.sales);
        add_buckets(&mut self.orders, &other.orders);
        self.users += other.users;
        self.valid_users += other.valid_users;
        self.distributors += other.distributors;
    }

    /// Whether nothing moved.
    pub fn is_zero(&self) -> bool {
        self.sales.lifetime.is_zero()
            && self.sales.by_month.values().all(|m| m.is_zero())
            && self.orders.lifetime == 0
            && self.orders.by_month.values().all(|c| *c == 0)
            && self.users == 0
            && self.valid_users == 0
            && self.distributors == 0
    }

    /// These totals applied to an upline's metrics, as its network.
    pub fn apply_to(&self, metrics: &mut Metrics) {
        add_buckets(&mut metrics.downline_sales_all, &self.sales);
        add_buckets(&mut metrics.downline_orders_all, &self.orders);
        metrics.downline_users_all += self.users;
        metrics.valid_downline_users_all += self.valid_users;
        metrics.downline_distributors_all += self.distributors;
    }
}

fn monthly<T: Copy>(b: &Buckets<T>) -> Buckets<T> {
    Buckets {
        lifetime: b.lifetime,
        by_month: b.by_month.clone(),
        by_day: BTreeMap::new(),
    }
}

fn difference<T>(now: &Buckets<T>, seen: &Buckets<T>, from: Month) -> Buckets<T>
where
    T: Copy + Default + PartialEq + std::ops::Sub<Output = T>,
{
    Buckets {
        lifetime: now.lifetime - seen.lifetime,
        by_month: now
            .by_month
            .range(from..)
            .map(|(m, v)| (*m, *v - seen.by_month.get(m).copied().unwrap_or_default()))
            .filter(|(_, d)| *d != T::default())
            .collect(),
        by_day: BTreeMap::new(),
    }
}

fn add_buckets<T>(into: &mut Buckets<T>, from: &Buckets<T>)
where
    T: Copy + Default + std::ops::Add<Output = T>,
{
    into.lifetime = into.lifetime + from.lifetime;
    for (m, v) in &from.by_month {
        let slot = into.by_month.entry(*m).or_default();
        *slot = *slot + *v;
    }
}

/// The window a pull signal falls in: signals for one (upline, downline)
/// in one window are one message, delivered once the window has passed,
/// so a burst of orders below an upline costs it one pull.
pub fn window_of(epoch_seconds: i64, window_seconds: u32) -> i64 {
    epoch_seconds.div_euclid(i64::from(window_seconds.max(1)))
}

#[cfg(test)]
mod tests;
