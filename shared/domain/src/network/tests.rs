use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::calendar::Day;

fn day(m: u32, d: u32) -> Day {
    Day::parse(&format!("2026-{m:02}-{d:02}")).unwrap()
}

/// A network held in memory the way the store holds it: each node's
/// metrics, and each upline's edges (what it saw of each downline).
#[derive(Default)]
struct Net {
    parent: Vec<Option<usize>>,
    metrics: Vec<Metrics>,
    seen: BTreeMap<(usize, usize), NetworkTotals>,
}

#[derive(Debug, Clone)]
enum Step {
    /// An order (or its refund, negative) by a node, on a day of a month.
    Sale(usize, i64, u32),
    /// A customer of the node signs up.
    User(usize),
    /// A distributor joins under the node.
    Join(usize),
    /// An upline pulls from one of its downline.
    Pull(usize),
}

impl Net {
    fn new(parents: &[usize]) -> Net {
        let mut net = Net {
            parent: vec![None],
            metrics: vec![Metrics::default()],
            ..Default::default()
        };
        for (i, p) in parents.iter().enumerate() {
            net.parent.push(Some(p % (i + 1)));
            net.metrics.push(Metrics::default());
        }
        net
    }

    /// What the order's transaction writes: the seller, and its upline's
    /// level-1 and all-level metrics.
    fn step(&mut self, step: &Step) {
        match *step {
            Step::Sale(n, cents, m) => {
                let (amount, d) = (Money::cents(cents), day(m, 10));
                let orders = cents.signum();
                self.metrics[n].sales.add(d, amount);
                self.metrics[n].orders.add(d, orders);
                if let Some(p) = self.parent[n] {
                    let up = &mut self.metrics[p];
                    up.downline_sales.add(d, amount);
                    up.downline_orders.add(d, orders);
                    up.downline_sales_all.add(d, amount);
                    up.downline_orders_all.add(d, orders);
                }
            }
            Step::User(n) => {
                self.metrics[n].downline_users += 1;
                self.metrics[n].downline_users_all += 1;
                if let Some(p) = self.parent[n] {
                    self.metrics[p].downline_users_all += 1;
                }
            }
            Step::Join(n) => {
                self.metrics[n].downline_distributors += 1;
                self.metrics[n].downline_distributors_all += 1;
            }
            Step::Pull(c) => self.pull(c),
        }
    }

    fn pull(&mut self, child: usize) {
        let Some(p) = self.parent[child] else { return };
        let now = NetworkTotals::of(&self.metrics[child]);
        let seen = self.seen.get(&(p, child)).cloned().unwrap_or_default();
        let moved = now.since(&seen, Month::parse("2026-01").unwrap());
        moved.apply_to(&mut self.metrics[p]);
        self.seen.insert((p, child), now);
    }

    /// Every pull, deepest first: what the signals amount to once they
    /// have all been delivered.
    fn settle(&mut self) {
        let depth = |mut n: usize| {
            let mut d = 0;
            while let Some(p) = self.parent[n] {
                n = p;
                d += 1;
            }
            d
        };
        let mut order: Vec<usize> = (0..self.parent.len()).collect();
        order.sort_by_key(|n| std::cmp::Reverse(depth(*n)));
        for n in order {
            self.pull(n);
        }
    }

    fn descendants(&self, n: usize) -> Vec<usize> {
        (0..self.parent.len())
            .filter(|&d| {
                let mut at = d;
                while let Some(p) = self.parent[at] {
                    if p == n {
                        return true;
                    }
                    at = p;
                }
                false
            })
            .collect()
    }
}

proptest! {
    /// Whatever the order of orders, sign-ups and pulls, and however many
    /// pulls repeat, once every pull has run each node's network equals
    /// the sum over everyone below it.
    #[test]
    fn rolled_up_networks_equal_the_sums_below(
        parents in prop::collection::vec(0usize..100, 1..12),
        steps in prop::collection::vec(
            (0usize..4, 0usize..100, -500i64..2_000, 1u32..4),
            0..60,
        ),
    ) {
        let mut net = Net::new(&parents);
        let size = net.parent.len();
        let mut applied = Vec::new();
        for (kind, node, cents, month) in steps {
            let n = node % size;
            let step = match kind {
                0 => Step::Sale(n, cents, month),
                1 => Step::User(n),
                2 => Step::Join(n),
                _ => Step::Pull(n),
            };
            net.step(&step);
            applied.push(step);
        }
        net.settle();
        let once: Vec<Metrics> = net.metrics.clone();
        // A second round of every pull is a redelivery: nothing moves.
        net.settle();
        prop_assert_eq!(&once, &net.metrics);
        for n in 0..size {
            let below = net.descendants(n);
            let m = &net.metrics[n];
            let mut sales = Money::ZERO;
            let mut orders = 0;
            let mut users = m.downline_users;
            let mut distributors = m.downline_distributors;
            for d in &below {
                sales = sales + net.metrics[*d].sales.lifetime;
                orders += net.metrics[*d].orders.lifetime;
                users += net.metrics[*d].downline_users;
                distributors += net.metrics[*d].downline_distributors;
            }
            prop_assert_eq!(m.downline_sales_all.lifetime, sales, "sales below {}", n);
            prop_assert_eq!(m.downline_orders_all.lifetime, orders);
            prop_assert_eq!(m.downline_users_all, users);
            prop_assert_eq!(m.downline_distributors_all, distributors);
            for month in 1..4 {
                let mo = day(month, 1).month();
                let below_month = below
                    .iter()
                    .fold(Money::ZERO, |a, d| a + net.metrics[*d].sales.month(mo));
                prop_assert_eq!(m.downline_sales_all.month(mo), below_month);
            }
        }
    }
}

#[test]
fn a_pull_takes_only_what_moved_and_not_the_downlines_own_customers() {
    let mut child = Metrics {
        downline_users: 2, // its own customers: its upline has them
        downline_users_all: 5,
        downline_distributors_all: 3,
        ..Default::default()
    };
    child.downline_sales_all.add(day(3, 1), Money::cents(1_000));
    let first = NetworkTotals::of(&child);
    assert_eq!(first.users, 3);
    let from = day(3, 1).month();
    assert_eq!(first.since(&NetworkTotals::default(), from), first);
    assert!(first.since(&first, from).is_zero());
    child.downline_sales_all.add(day(3, 2), Money::cents(-400));
    let moved = NetworkTotals::of(&child).since(&first, from);
    assert_eq!(moved.sales.lifetime, Money::cents(-400));
    assert_eq!(moved.sales.by_month.len(), 1);
    assert_eq!(moved.users, 0);
}

#[test]
fn months_before_the_horizon_are_left_out_but_the_lifetime_counts_them() {
    let mut child = Metrics::default();
    child.downline_sales_all.add(day(1, 5), Money::cents(700));
    child.downline_sales_all.add(day(3, 5), Money::cents(300));
    let moved = NetworkTotals::of(&child).since(&NetworkTotals::default(), day(2, 1).month());
    assert_eq!(moved.sales.lifetime, Money::cents(1_000));
    assert_eq!(
        moved.sales.by_month.keys().copied().collect::<Vec<_>>(),
        vec![day(3, 1).month()]
    );
}

#[test]
fn edges_round_trip_through_json() {
    let mut child = Metrics::default();
    child.downline_sales_all.add(day(3, 5), Money::cents(300));
    child.downline_orders_all.add(day(3, 5), 1);
    let t = NetworkTotals::of(&child);
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(serde_json::from_str::<NetworkTotals>(&json).unwrap(), t);
}

#[test]
fn windows_are_whole_multiples() {
    assert_eq!(window_of(10, 2), 5);
    assert_eq!(window_of(11, 2), 5);
    assert_eq!(window_of(-1, 2), -1);
    assert_eq!(window_of(11, 0), 11);
}
