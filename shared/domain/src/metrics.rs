//! What rules measure. Metrics are the sum of the contributions recorded in
//! the ledger ([`crate::ledger`]); they are stored as counters per natural
//! month plus a lifetime counter, so that any calendar window is a sum of
//! buckets, and, for the metrics a rule set reads over rolling windows, per
//! day as well.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{Day, Month};
use crate::ids::OrderRef;
use crate::money::Money;

/// A metric a rule can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The distributor's own paid orders, net of refunds (销售额).
    SalesAmount,
    /// Paid orders not fully refunded or cancelled.
    OrderCount,
    /// Users who signed up through the distributor's stores or ever ordered
    /// there (下线用户).
    DownlineUsers,
    /// Customers with at least one paid order not fully refunded (有效下线用户).
    ValidDownlineUsers,
    /// Distributors whose upline is this one (下线分销商, level 1).
    DownlineDistributors,
    /// Distributors anywhere below this one (all levels).
    DownlineDistributorsAll,
    /// Paid orders of the level-1 downline distributors, net of refunds
    /// (下线订单金额).
    DownlineSalesAmount,
    /// Their order count.
    DownlineOrderCount,
    /// Paid orders of every downline distributor, all levels, net of refunds.
    DownlineSalesAmountAll,
    /// Their order count.
    DownlineOrderCountAll,
    /// Customers of this distributor and of every distributor below it.
    DownlineUsersAll,
    /// ... those with a paid order not fully refunded.
    ValidDownlineUsersAll,
    /// Own sales this window against the previous one, in percent
    /// (销售增长率): `month` compares with last month, `quarter` with last
    /// quarter (the same number of months into it). Nothing sold before
    /// means no growth to measure: the value is 0.
    SalesGrowthPct,
    /// Quantity of one SKU bought (购买指定商品), net of returns, lifetime;
    /// the condition names the SKU. Counted from when a published rule
    /// set first refers to that SKU.
    PurchasedQuantity,
    /// Commission earned, net of reversals (累计佣金), lifetime.
    CumulativeCommission,
    /// Commission paid out (已提现佣金), lifetime.
    WithdrawnCommission,
}

impl Metric {
    /// Counts of people and commission totals are current values; they have
    /// no calendar window.
    pub fn is_windowed(self) -> bool {
        matches!(
            self,
            Metric::SalesAmount
                | Metric::OrderCount
                | Metric::DownlineSalesAmount
                | Metric::DownlineOrderCount
                | Metric::DownlineSalesAmountAll
                | Metric::DownlineOrderCountAll
                | Metric::SalesGrowthPct
        )
    }
}

/// The period a windowed metric is summed over. Calendar windows are cut in
/// the brand's time zone and end at the evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The natural month so far (本月).
    Month,
    /// The natural quarter so far (本季度).
    Quarter,
    /// Everything ever recorded.
    Lifetime,
    /// The last N days, today included (近N天), cut in the brand's time zone:
    /// `{"rolling_days": 30}`.
    RollingDays(u16),
}

/// The longest rolling window a rule may use: a year and a day.
pub const MAX_ROLLING_DAYS: u16 = 366;

impl Window {
    /// Days of daily buckets the window needs to be evaluated, as of today
    /// (twice the window for a growth comparison); 0 for calendar windows.
    pub fn daily_span(self, metric: Metric) -> u32 {
        match self {
            Window::RollingDays(n) if metric == Metric::SalesGrowthPct => 2 * u32::from(n),
            Window::RollingDays(n) => u32::from(n),
            _ => 0,
        }
    }
}

/// Lifetime, per-month and (where rolling windows need them) per-day
/// totals of one quantity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Buckets<T> {
    pub lifetime: T,
    pub by_month: BTreeMap<Month, T>,
    /// Only the days a rule set's rolling windows read are loaded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_day: BTreeMap<Day, T>,
}

impl<T> Buckets<T>
where
    T: Copy + Default + std::ops::Add<Output = T>,
{
    pub fn add(&mut self, day: Day, delta: T) {
        self.lifetime = self.lifetime + delta;
        let slot = self.by_month.entry(day.month()).or_default();
        *slot = *slot + delta;
        let slot = self.by_day.entry(day).or_default();
        *slot = *slot + delta;
    }

    pub fn month(&self, month: Month) -> T {
        self.by_month.get(&month).copied().unwrap_or_default()
    }

    /// Adds another part's totals to these: a distributor whose counters
    /// are spread over shards is the sum of its parts.
    pub fn absorb(&mut self, other: &Buckets<T>) {
        self.lifetime = self.lifetime + other.lifetime;
        for (month, v) in &other.by_month {
            let slot = self.by_month.entry(*month).or_default();
            *slot = *slot + *v;
        }
        for (day, v) in &other.by_day {
            let slot = self.by_day.entry(*day).or_default();
            *slot = *slot + *v;
        }
    }

    /// The `days` days ending with `last`, inclusive.
    fn days(&self, last: Day, days: u16) -> T {
        let first = last.minus_days(u32::from(days.max(1)) - 1);
        self.by_day
            .range(first..=last)
            .fold(T::default(), |acc, (_, v)| acc + *v)
    }

    pub fn over(&self, window: Window, today: Day) -> T {
        let now = today.month();
        match window {
            Window::Lifetime => self.lifetime,
            Window::Month => self.month(now),
            Window::Quarter => now
                .quarter_months()
                .into_iter()
                .filter(|m| *m <= now)
                .fold(T::default(), |acc, m| acc + self.month(m)),
            Window::RollingDays(n) => self.days(today, n),
        }
    }
}

/// Everything known about one distributor's results.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub sales: Buckets<Money>,
    pub orders: Buckets<i64>,
    #[serde(default)]
    pub downline_sales: Buckets<Money>,
    #[serde(default)]
    pub downline_orders: Buckets<i64>,
    #[serde(default)]
    pub downline_sales_all: Buckets<Money>,
    #[serde(default)]
    pub downline_orders_all: Buckets<i64>,
    #[serde(default)]
    pub downline_users_all: i64,
    #[serde(default)]
    pub valid_downline_users_all: i64,
    pub downline_users: i64,
    pub valid_downline_users: i64,
    #[serde(default)]
    pub downline_distributors: i64,
    #[serde(default)]
    pub downline_distributors_all: i64,
    #[serde(default)]
    pub cumulative_commission: Money,
    #[serde(default)]
    pub withdrawn_commission: Money,
    /// Commission still frozen, by the day it settles (see
    /// [`crate::commission`]); days past are dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frozen_commission: BTreeMap<Day, Money>,
    /// Quantities bought, by the SKUs rules refer to.
    #[serde(default)]
    pub purchased: BTreeMap<crate::ids::Sku, i64>,
}

impl Metrics {
    /// The value of `metric` over `window`, as of `now` (the brand's today).
    pub fn value(&self, metric: Metric, window: Window, now: Day) -> Decimal {
        match metric {
            Metric::SalesAmount => self.sales.over(window, now).amount(),
            Metric::OrderCount => Decimal::from(self.orders.over(window, now)),
            Metric::DownlineUsers => Decimal::from(self.downline_users),
            Metric::ValidDownlineUsers => Decimal::from(self.valid_downline_users),
            Metric::DownlineDistributors => Decimal::from(self.downline_distributors),
            Metric::DownlineDistributorsAll => Decimal::from(self.downline_distributors_all),
            Metric::DownlineSalesAmount => self.downline_sales.over(window, now).amount(),
            Metric::DownlineOrderCount => Decimal::from(self.downline_orders.over(window, now)),
            Metric::DownlineSalesAmountAll => self.downline_sales_all.over(window, now).amount(),
            Metric::DownlineOrderCountAll => {
                Decimal::from(self.downline_orders_all.over(window, now))
            }
            Metric::DownlineUsersAll => Decimal::from(self.downline_users_all),
            Metric::ValidDownlineUsersAll => Decimal::from(self.valid_downline_users_all),
            Metric::SalesGrowthPct => self.growth_pct(window, now),
            // Needs a SKU: see `Metrics::purchased_quantity`.
            Metric::PurchasedQuantity => Decimal::ZERO,
            Metric::CumulativeCommission => self.cumulative_commission.amount(),
            Metric::WithdrawnCommission => self.withdrawn_commission.amount(),
        }
    }

    /// Growth of own sales, this window against the previous, in percent,
    /// rounded to 0.01.
    fn growth_pct(&self, window: Window, today: Day) -> Decimal {
        let now = today.month();
        let (current, previous) = match window {
            Window::Month => (self.sales.month(now), self.sales.month(now.previous())),
            Window::Quarter => {
                // The quarter so far against the same months of the last one.
                let months: Vec<Month> = now
                    .quarter_months()
                    .into_iter()
                    .filter(|m| *m <= now)
                    .collect();
                let shift = |m: Month| (0..3).fold(m, |m, _| m.previous());
                (
                    months.iter().map(|m| self.sales.month(*m)).sum::<Money>(),
                    months
                        .iter()
                        .map(|m| self.sales.month(shift(*m)))
                        .sum::<Money>(),
                )
            }
            Window::RollingDays(n) => (
                self.sales.days(today, n),
                self.sales.days(today.minus_days(u32::from(n)), n),
            ),
            Window::Lifetime => return Decimal::ZERO,
        };
        if previous.is_zero() || previous.is_negative() {
            return Decimal::ZERO;
        }
        ((current.amount() - previous.amount()) * Decimal::ONE_HUNDRED / previous.amount())
            .round_dp(2)
    }

    pub fn purchased_quantity(&self, sku: &crate::ids::Sku) -> Decimal {
        Decimal::from(self.purchased.get(sku).copied().unwrap_or(0))
    }

    /// Adds a shard's counters to these (see [`shard_of`]): every field is
    /// a sum, so the parts add up to the whole in any order.
    pub fn absorb(&mut self, part: &Metrics) {
        self.sales.absorb(&part.sales);
        self.orders.absorb(&part.orders);
        self.downline_sales.absorb(&part.downline_sales);
        self.downline_orders.absorb(&part.downline_orders);
        self.downline_sales_all.absorb(&part.downline_sales_all);
        self.downline_orders_all.absorb(&part.downline_orders_all);
        self.downline_users_all += part.downline_users_all;
        self.valid_downline_users_all += part.valid_downline_users_all;
        self.downline_users += part.downline_users;
        self.valid_downline_users += part.valid_downline_users;
        self.downline_distributors += part.downline_distributors;
        self.downline_distributors_all += part.downline_distributors_all;
        self.cumulative_commission = self.cumulative_commission + part.cumulative_commission;
        self.withdrawn_commission = self.withdrawn_commission + part.withdrawn_commission;
        for (day, amount) in &part.frozen_commission {
            let slot = self.frozen_commission.entry(*day).or_default();
            *slot = *slot + *amount;
        }
        for (sku, q) in &part.purchased {
            *self.purchased.entry(sku.clone()).or_default() += q;
        }
    }

    pub fn apply(&mut self, delta: &MetricsDelta) {
        for (sku, q) in &delta.purchased {
            *self.purchased.entry(sku.clone()).or_default() += q;
        }
        for (day, amount) in &delta.downline_sales {
            self.downline_sales.add(*day, *amount);
        }
        for (day, count) in &delta.downline_orders {
            self.downline_orders.add(*day, *count);
        }
        for (day, amount) in &delta.downline_sales_all {
            self.downline_sales_all.add(*day, *amount);
        }
        for (day, count) in &delta.downline_orders_all {
            self.downline_orders_all.add(*day, *count);
        }
        self.downline_users_all += delta.downline_users_all;
        self.valid_downline_users_all += delta.valid_downline_users_all;
        for (day, amount) in &delta.sales {
            self.sales.add(*day, *amount);
        }
        for (day, count) in &delta.orders {
            self.orders.add(*day, *count);
        }
        self.downline_users += delta.downline_users;
        self.valid_downline_users += delta.valid_downline_users;
        self.downline_distributors += delta.downline_distributors;
        self.downline_distributors_all += delta.downline_distributors_all;
        self.cumulative_commission = self.cumulative_commission + delta.cumulative_commission;
        self.withdrawn_commission = self.withdrawn_commission + delta.withdrawn_commission;
        for (day, amount) in &delta.frozen_commission {
            let slot = self.frozen_commission.entry(*day).or_default();
            *slot = *slot + *amount;
        }
    }
}

/// A change to [`Metrics`], as one event's contribution makes it. Sales and
/// orders move on the brand-calendar day the order was paid; storage keeps
/// them by month, and by day where rolling windows read them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetricsDelta {
    pub sales: Vec<(Day, Money)>,
    pub orders: Vec<(Day, i64)>,
    #[serde(default)]
    pub downline_sales: Vec<(Day, Money)>,
    #[serde(default)]
    pub downline_orders: Vec<(Day, i64)>,
    #[serde(default)]
    pub downline_sales_all: Vec<(Day, Money)>,
    #[serde(default)]
    pub downline_orders_all: Vec<(Day, i64)>,
    #[serde(default)]
    pub downline_users_all: i64,
    #[serde(default)]
    pub valid_downline_users_all: i64,
    pub downline_users: i64,
    pub valid_downline_users: i64,
    #[serde(default)]
    pub downline_distributors: i64,
    #[serde(default)]
    pub downline_distributors_all: i64,
    #[serde(default)]
    pub cumulative_commission: Money,
    #[serde(default)]
    pub withdrawn_commission: Money,
    #[serde(default)]
    pub frozen_commission: Vec<(Day, Money)>,
    #[serde(default)]
    pub purchased: Vec<(crate::ids::Sku, i64)>,
}

impl MetricsDelta {
    pub fn is_empty(&self) -> bool {
        self.sales.iter().all(|(_, m)| m.is_zero())
            && self.orders.iter().all(|(_, c)| *c == 0)
            && self.downline_sales.iter().all(|(_, m)| m.is_zero())
            && self.downline_orders.iter().all(|(_, c)| *c == 0)
            && self.downline_sales_all.iter().all(|(_, m)| m.is_zero())
            && self.downline_orders_all.iter().all(|(_, c)| *c == 0)
            && self.downline_users_all == 0
            && self.valid_downline_users_all == 0
            && self.downline_users == 0
            && self.valid_downline_users == 0
            && self.downline_distributors == 0
            && self.downline_distributors_all == 0
            && self.cumulative_commission.is_zero()
            && self.withdrawn_commission.is_zero()
            && self.frozen_commission.iter().all(|(_, m)| m.is_zero())
            && self.purchased.iter().all(|(_, q)| *q == 0)
    }

    /// What an upline's metrics gain from this distributor's own sales and
    /// users: at all levels, and for the level-1 upline also at level 1.
    pub fn as_downline(&self, level1: bool) -> MetricsDelta {
        let mut d = MetricsDelta {
            downline_sales_all: self.sales.clone(),
            downline_orders_all: self.orders.clone(),
            downline_users_all: self.downline_users,
            valid_downline_users_all: self.valid_downline_users,
            ..Default::default()
        };
        if level1 {
            d.downline_sales = self.sales.clone();
            d.downline_orders = self.orders.clone();
        }
        d
    }

    /// Adds `other` to `self`, merging buckets of the same day.
    pub fn merge(&mut self, other: &MetricsDelta) {
        fn add<T: Copy + std::ops::Add<Output = T>>(into: &mut Vec<(Day, T)>, from: &[(Day, T)]) {
            for (day, v) in from {
                match into.iter_mut().find(|(d, _)| d == day) {
                    Some((_, a)) => *a = *a + *v,
                    None => into.push((*day, *v)),
                }
            }
        }
        for (sku, q) in &other.purchased {
            match self.purchased.iter_mut().find(|(s, _)| s == sku) {
                Some((_, a)) => *a += q,
                None => self.purchased.push((sku.clone(), *q)),
            }
        }
        add(&mut self.downline_sales, &other.downline_sales);
        add(&mut self.downline_orders, &other.downline_orders);
        add(&mut self.downline_sales_all, &other.downline_sales_all);
        add(&mut self.downline_orders_all, &other.downline_orders_all);
        self.downline_users_all += other.downline_users_all;
        self.valid_downline_users_all += other.valid_downline_users_all;
        add(&mut self.sales, &other.sales);
        add(&mut self.orders, &other.orders);
        add(&mut self.frozen_commission, &other.frozen_commission);
        self.downline_users += other.downline_users;
        self.valid_downline_users += other.valid_downline_users;
        self.downline_distributors += other.downline_distributors;
        self.downline_distributors_all += other.downline_distributors_all;
        self.cumulative_commission = self.cumulative_commission + other.cumulative_commission;
        self.withdrawn_commission = self.withdrawn_commission + other.withdrawn_commission;
    }
}

/// The sales and order moves of `delta` in the bucket kinds `kinds`, and
/// nothing else: what goes into daily buckets.
pub fn only_kinds(delta: &MetricsDelta, kinds: &BTreeSet<String>) -> MetricsDelta {
    let has = |k: &str| kinds.contains(k);
    let pick = |k: &str, v: &[(Day, Money)]| if has(k) { v.to_vec() } else { Vec::new() };
    let pick_n = |k: &str, v: &[(Day, i64)]| if has(k) { v.to_vec() } else { Vec::new() };
    MetricsDelta {
        sales: pick("sales", &delta.sales),
        orders: pick_n("orders", &delta.orders),
        downline_sales: pick("dsales", &delta.downline_sales),
        downline_orders: pick_n("dorders", &delta.downline_orders),
        downline_sales_all: pick("dsalesA", &delta.downline_sales_all),
        downline_orders_all: pick_n("dordersA", &delta.downline_orders_all),
        ..Default::default()
    }
}

/// The most shards one distributor's counters may be spread over: a
/// read sums them all, so more cost every evaluation a read unit each.
pub const MAX_SHARDS: u8 = 64;

/// How a hot distributor's counters are spread (docs/cost.md, "Hot
/// sellers"). An order's contribution is added to one shard, chosen by
/// the order, instead of the distributor's own metrics item, so a seller
/// with hundreds of orders a second spreads its writes, and the receivers
/// of its commission theirs, over `shards` items. Reads add up every
/// shard that may hold something: `cells`, the most there ever were, since
/// a shard keeps its counters when the distributor is spread over fewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetricShards {
    pub shards: u8,
    pub cells: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a distributor's counters are spread over 0 to {MAX_SHARDS} shards, not {0}")]
pub struct TooManyShards(pub u64);

impl MetricShards {
    /// Spread over `shards` from now on; what the old shards hold stays
    /// counted.
    pub fn spread(self, shards: u64) -> Result<MetricShards, TooManyShards> {
        let k = u8::try_from(shards)
            .ok()
            .filter(|k| *k <= MAX_SHARDS)
            .ok_or(TooManyShards(shards))?;
        Ok(MetricShards {
            shards: k,
            cells: self.cells.max(k),
        })
    }

    /// The shard an order's contribution goes to; `None` when the
    /// distributor is not spread (its own metrics item takes it).
    pub fn shard_of(self, order: &OrderRef) -> Option<u8> {
        (self.shards > 0)
            .then(|| (crate::analytics::fnv1a(&order.to_string()) % u32::from(self.shards)) as u8)
    }

    pub fn is_spread(self) -> bool {
        self.cells > 0
    }

    pub fn is_default(&self) -> bool {
        *self == MetricShards::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up_to_the_whole_and_keep_what_they_held() {
        let day = m("2026-11");
        let deltas: Vec<MetricsDelta> = (1..=7)
            .map(|i| MetricsDelta {
                sales: vec![(day, Money::cents(i * 100))],
                orders: vec![(day, 1)],
                cumulative_commission: Money::cents(i),
                frozen_commission: vec![(day, Money::cents(i))],
                downline_users: 1,
                ..Default::default()
            })
            .collect();
        let mut whole = Metrics::default();
        let mut parts = vec![Metrics::default(); 3];
        for (i, d) in deltas.iter().enumerate() {
            whole.apply(d);
            parts[i % 3].apply(d);
        }
        let mut summed = Metrics::default();
        for p in &parts {
            summed.absorb(p);
        }
        assert_eq!(summed, whole);

        let spread = MetricShards::default().spread(8).unwrap();
        assert_eq!((spread.shards, spread.cells), (8, 8));
        let order = crate::ids::OrderRef::parse("tmall/hz/TM-1").unwrap();
        assert!(spread.shard_of(&order).unwrap() < 8);
        // Fewer shards: new orders go to the first two, reads keep all 8.
        let fewer = spread.spread(2).unwrap();
        assert_eq!((fewer.shards, fewer.cells), (2, 8));
        assert!(fewer.shard_of(&order).unwrap() < 2);
        let none = fewer.spread(0).unwrap();
        assert_eq!(none.shard_of(&order), None);
        assert!(none.is_spread());
        assert_eq!(spread.spread(65), Err(TooManyShards(65)));
        assert_eq!(spread.spread(1 << 40), Err(TooManyShards(1 << 40)));
    }

    /// The 15th of month `s`.
    fn m(s: &str) -> Day {
        Month::parse(s).unwrap().day(15).unwrap()
    }

    fn d(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    #[test]
    fn growth_against_the_previous_period() {
        let mut metrics = Metrics::default();
        metrics.sales.add(m("2026-10"), Money::cents(100_000));
        metrics.sales.add(m("2026-11"), Money::cents(125_000));
        assert_eq!(
            metrics.value(Metric::SalesGrowthPct, Window::Month, m("2026-11")),
            Decimal::new(25, 0)
        );
        assert_eq!(
            metrics.value(Metric::SalesGrowthPct, Window::Month, m("2026-10")),
            Decimal::ZERO,
            "nothing before"
        );
        // Q4 so far (Oct, Nov) against Jul, Aug.
        metrics.sales.add(m("2026-07"), Money::cents(150_000));
        metrics.sales.add(m("2026-08"), Money::cents(50_000));
        assert_eq!(
            metrics.value(Metric::SalesGrowthPct, Window::Quarter, m("2026-11")),
            Decimal::new(1250, 2)
        );
    }

    #[test]
    fn windows_sum_the_right_buckets() {
        let mut sales = Buckets::<Money>::default();
        sales.add(m("2026-06"), Money::cents(100));
        sales.add(m("2026-07"), Money::cents(200));
        sales.add(m("2026-08"), Money::cents(400));
        sales.add(m("2026-09"), Money::cents(800));
        assert_eq!(sales.over(Window::Month, m("2026-08")), Money::cents(400));
        // The quarter so far: July and August, not June, not September.
        assert_eq!(sales.over(Window::Quarter, m("2026-08")), Money::cents(600));
        assert_eq!(
            sales.over(Window::Lifetime, m("2026-08")),
            Money::cents(1500)
        );
    }

    #[test]
    fn rolling_windows_count_the_last_n_days_today_included() {
        let mut sales = Buckets::<Money>::default();
        sales.add(d("2026-10-29"), Money::cents(1));
        sales.add(d("2026-10-30"), Money::cents(10));
        sales.add(d("2026-11-27"), Money::cents(100));
        sales.add(d("2026-11-28"), Money::cents(1000));
        let today = d("2026-11-28");
        // 30 days back from the 28th, inclusive, starts on 30 October.
        assert_eq!(
            sales.over(Window::RollingDays(30), today),
            Money::cents(1110)
        );
        assert_eq!(
            sales.over(Window::RollingDays(31), today),
            Money::cents(1111)
        );
        assert_eq!(
            sales.over(Window::RollingDays(1), today),
            Money::cents(1000)
        );
        assert_eq!(
            sales.over(Window::RollingDays(1), d("2026-11-29")),
            Money::ZERO
        );

        let metrics = Metrics {
            sales,
            ..Default::default()
        };
        // The last 2 days (1,100) against the 2 before (nothing): no growth to measure.
        assert_eq!(
            metrics.value(Metric::SalesGrowthPct, Window::RollingDays(2), today),
            Decimal::ZERO
        );
        // The last 30 days (1,110) against the 30 before them (1).
        assert_eq!(
            metrics.value(Metric::SalesGrowthPct, Window::RollingDays(30), today),
            Decimal::new(110_900, 0)
        );
    }
}
