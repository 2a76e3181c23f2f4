//! The plan against an in-memory store: single batches, and any grouping
//! of duplicated, reordered deliveries.

use super::*;
use crate::ids::{EventId, OrderId, Platform, RefundId, StoreId};
use crate::metrics::Metrics;
use proptest::prelude::*;

const RULES: &str = r#"{
  "tiers": [
    {"id": "junior", "name": "Junior", "rank": 0,
     "benefits": {"discount_pct": "0", "commission_pct": "5", "commission_l2_pct": "2", "priority": 0}},
    {"id": "senior", "name": "Senior", "rank": 1,
     "benefits": {"discount_pct": "10", "commission_pct": "10", "priority": 1},
     "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100000"}}
  ]
}"#;

fn id(raw: &str) -> DistributorId {
    DistributorId::parse(raw).unwrap()
}

fn order(n: u8) -> OrderRef {
    OrderRef {
        platform: Platform::parse("jd").unwrap(),
        store: StoreId::parse("s1").unwrap(),
        order_id: OrderId::parse(&format!("o{n}")).unwrap(),
    }
}

fn event(event_id: &str, o: u8, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        event_id: EventId::parse(event_id).unwrap(),
        order: order(o),
        distributor: id("seller"),
        occurred_at: "2026-11-10T02:00:00Z".parse().unwrap(),
        kind,
    }
}

fn paid(o: u8, buyer: &str, cents: i64) -> OrderEvent {
    event(
        &format!("paid-{o}"),
        o,
        OrderEventKind::Paid {
            buyer: BuyerId::parse(buyer).unwrap(),
            total: Money::cents(cents),
            lines: vec![],
            urgent: false,
            region: None,
            tier: None,
            priority: 0,
        },
    )
}

fn refund(o: u8, n: u8, cents: i64) -> OrderEvent {
    event(
        &format!("refund-{o}-{n}"),
        o,
        OrderEventKind::Refunded {
            refund_id: RefundId::parse(&format!("r{o}-{n}")).unwrap(),
            amount: Money::cents(cents),
            lines: vec![],
        },
    )
}

fn cancel(o: u8) -> OrderEvent {
    event(&format!("cancel-{o}"), o, OrderEventKind::Cancelled)
}

/// The items a plan is read from and written to, in memory: what the
/// store does, without its transaction.
#[derive(Default)]
struct Mem {
    entries: BTreeMap<OrderRef, EntryRead>,
    buyers: BTreeMap<BuyerId, i64>,
    commission: BTreeMap<(DistributorId, OrderRef), (u64, CommissionEntry)>,
    metrics: BTreeMap<DistributorId, Metrics>,
}

impl Mem {
    fn apply(&mut self, rules: &RuleSet, events: &[OrderEvent]) -> Plan {
        let seller = id("seller");
        let ancestors = [id("up1"), id("up2")];
        let calendar = BrandCalendar::default();
        let entries = events
            .iter()
            .map(|e| (e.order.clone(), self.entries.get(&e.order).cloned()))
            .collect();
        let staged = stage(
            FirstRead {
                distributor: &seller,
                tier: None,
                ancestors: &ancestors,
                rules: Some(rules),
                entries,
                calendar: &calendar,
                today: Day::parse("2026-11-12").unwrap(),
                daily_kinds: BTreeSet::new(),
            },
            events,
        );
        let wants = staged.wants();
        let second = SecondRead {
            buyers: wants
                .buyers
                .iter()
                .filter_map(|b| self.buyers.get(b).map(|n| (b.clone(), *n)))
                .collect(),
            receiver_tiers: wants.receivers.iter().map(|r| (r.clone(), None)).collect(),
            commission_entries: wants
                .commission_entries
                .iter()
                .filter_map(|k| self.commission.get(k).map(|(_, e)| (k.clone(), e.clone())))
                .collect(),
        };
        let plan = staged.finish(&second);
        for e in &plan.entries {
            let current = self.entries.get(&e.order).map_or(0, |r| r.version);
            assert_eq!(current, e.version, "written at the version read");
            self.entries.insert(
                e.order.clone(),
                EntryRead {
                    record: e.record.clone(),
                    version: e.version + 1,
                    daily: e.daily.clone(),
                    skus: e.skus.clone(),
                    commission: e.commission.clone(),
                    without_terms: false,
                },
            );
        }
        for b in &plan.buyers {
            assert_eq!(self.buyers.get(&b.buyer).copied(), b.read);
            self.buyers.insert(b.buyer.clone(), b.live_orders);
        }
        self.metrics
            .entry(seller.clone())
            .or_default()
            .apply(&plan.delta);
        for (r, d) in &plan.receiver_deltas {
            self.metrics.entry(r.clone()).or_default().apply(d);
        }
        for p in &plan.projections {
            let key = (p.receiver.clone(), p.order.clone());
            if self
                .commission
                .get(&key)
                .is_none_or(|(v, _)| *v <= p.lversion)
            {
                self.commission.insert(key, (p.lversion, p.entry.clone()));
            }
        }
        plan
    }

    /// What each distributor's metrics say, zero buckets aside.
    fn summary(&self, d: &str) -> Vec<String> {
        let m = self.metrics.get(&id(d)).cloned().unwrap_or_default();
        let frozen: Vec<_> = m
            .frozen_commission
            .iter()
            .filter(|(_, a)| !a.is_zero())
            .collect();
        vec![
            format!("sales {}", m.sales.lifetime),
            format!("orders {}", m.orders.lifetime),
            format!("dsales {}", m.downline_sales.lifetime),
            format!("dsalesA {}", m.downline_sales_all.lifetime),
            format!("dorders {}", m.downline_orders.lifetime),
            format!("users {} {}", m.downline_users, m.valid_downline_users),
            format!(
                "usersA {} {}",
                m.downline_users_all, m.valid_downline_users_all
            ),
            format!("commission {}", m.cumulative_commission),
            format!("frozen {frozen:?}"),
        ]
    }
}

fn rules() -> RuleSet {
    RuleSet::from_json(RULES).unwrap()
}

#[test]
fn a_first_payment_pays_both_uplines_and_counts_a_new_buyer() {
    let rules = rules();
    let mut mem = Mem::default();
    let plan = mem.apply(&rules, &[paid(1, "b1", 100_000)]);
    assert_eq!(plan.recorded, 1);
    assert_eq!(plan.entries.len(), 1);
    assert_eq!(plan.entries[0].version, 0);
    assert_eq!(plan.buyers.len(), 1);
    assert_eq!(plan.buyers[0].read, None);
    assert_eq!(plan.delta.downline_users, 1);
    assert_eq!(plan.delta.downline_users_all, 1);
    // 5% and 2% of 1,000.00, each frozen until settlement.
    let earned = |d: &str| plan.receiver_deltas[&id(d)].cumulative_commission;
    assert_eq!(earned("up1"), Money::cents(5_000));
    assert_eq!(earned("up2"), Money::cents(2_000));
    assert_eq!(plan.projections.len(), 2);
    assert!(plan.projections.iter().all(|p| p.lversion == 1));
    let kept = plan.entries[0].commission.as_ref().unwrap();
    assert_eq!(kept.len(), 2, "the entry keeps both receivers' terms");
    assert_eq!(mem.summary("up1")[2], "dsales 1000.00");
}

#[test]
fn a_duplicate_changes_nothing_and_rewrites_a_missing_projection() {
    let rules = rules();
    let mut mem = Mem::default();
    mem.apply(&rules, &[paid(1, "b1", 100_000)]);
    let before = (mem.summary("seller"), mem.summary("up1"));
    let plan = mem.apply(&rules, &[paid(1, "b1", 100_000)]);
    assert_eq!((plan.recorded, plan.duplicates), (0, 1));
    assert!(plan.entries.is_empty() && plan.buyers.is_empty());
    assert!(plan.delta.is_empty() && plan.receiver_deltas.is_empty());
    assert!(plan.projections.is_empty(), "both entries are written");
    assert_eq!(before, (mem.summary("seller"), mem.summary("up1")));
    // A first delivery that committed and stopped before the receivers'
    // entries: the redelivery writes them, at the entry's version.
    mem.commission.clear();
    let plan = mem.apply(&rules, &[paid(1, "b1", 100_000)]);
    assert_eq!(plan.projections.len(), 2, "{:?}", plan.projections);
    assert!(plan.projections.iter().all(|p| p.lversion == 1));
    assert!(plan.receiver_deltas.is_empty(), "nothing is counted twice");
}

#[test]
fn a_refund_takes_back_sales_and_commission_on_the_terms_first_counted() {
    let rules = rules();
    let mut mem = Mem::default();
    mem.apply(&rules, &[paid(1, "b1", 100_000)]);
    let plan = mem.apply(&rules, &[refund(1, 1, 40_000)]);
    assert_eq!(
        plan.receiver_deltas[&id("up1")].cumulative_commission,
        Money::cents(-2_000)
    );
    assert_eq!(mem.summary("seller")[0], "sales 600.00");
    assert!(plan.buyers.is_empty(), "the order is still live");
    mem.apply(&rules, &[cancel(1)]);
    assert_eq!(mem.summary("seller")[0], "sales 0.00");
    assert_eq!(mem.summary("up1")[7], "commission 0.00");
}

/// Each order's events: a payment, up to two refunds, maybe a
/// cancellation.
fn stream() -> impl Strategy<Value = Vec<OrderEvent>> {
    prop::collection::vec(
        (
            1u8..4,
            100i64..200_000,
            0i64..100_000,
            0i64..100_000,
            any::<bool>(),
        ),
        1..4,
    )
    .prop_map(|orders| {
        let mut events = Vec::new();
        for (n, (buyer, total, r1, r2, cancelled)) in orders.into_iter().enumerate() {
            let o = n as u8;
            events.push(paid(o, &format!("b{buyer}"), total));
            events.push(refund(o, 1, r1.min(total)));
            events.push(refund(o, 2, r2.min(total - r1.min(total))));
            if cancelled {
                events.push(cancel(o));
            }
        }
        events
    })
}

proptest! {
    /// Delivered again, out of order and in any grouping, the events
    /// end in the metrics that one delivery of each, in order, gives.
    #[test]
    fn any_grouping_duplicates_and_order_end_the_same(
        events in stream(),
        shuffle in prop::collection::vec(any::<u32>(), 0..40),
        cuts in prop::collection::vec(1usize..4, 1..40),
        dups in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        let rules = rules();
        let mut once = Mem::default();
        for e in &events {
            once.apply(&rules, std::slice::from_ref(e));
        }
        // Deliveries: every event, some twice, shuffled.
        let mut delivered = events.clone();
        for d in &dups {
            delivered.push(events[*d as usize % events.len()].clone());
        }
        for (i, s) in shuffle.iter().enumerate() {
            let n = delivered.len();
            delivered.swap(i % n, *s as usize % n);
        }
        let mut mem = Mem::default();
        let mut rest = delivered.as_slice();
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            let (group, more) = rest.split_at(n);
            mem.apply(&rules, group);
            rest = more;
        }
        for d in ["seller", "up1", "up2"] {
            prop_assert_eq!(once.summary(d), mem.summary(d), "{}", d);
        }
        prop_assert_eq!(&once.buyers, &mem.buyers);
        // Receivers' entries at 0.00 aside: an order paid and cancelled
        // in one batch never shows on their pages, one cancelled in a
        // later batch shows at 0.00.
        let amounts = |m: &Mem| -> BTreeMap<_, _> {
            m.commission
                .iter()
                .filter(|(_, (_, e))| !e.amount.is_zero())
                .map(|(k, (_, e))| (k.clone(), e.amount))
                .collect()
        };
        prop_assert_eq!(amounts(&once), amounts(&mem));
    }
}

#[test]
fn a_backfill_adds_only_the_kinds_and_skus_an_entry_lacks() {
    let mut record = OrderRecord::default();
    let calendar = BrandCalendar::default();
    record.apply(&paid(1, "b1", 50_000), &calendar);
    let kinds: BTreeSet<String> = ["sales".to_owned(), "orders".to_owned()].into();
    let has: BTreeSet<String> = ["orders".to_owned()].into();
    let ancestors = [id("up1")];
    let since = Day::parse("2026-11-01").unwrap();
    let b = backfill(
        &record,
        false,
        &has,
        &BTreeSet::new(),
        &kinds,
        &BTreeSet::new(),
        since,
        &id("seller"),
        &ancestors,
    )
    .unwrap();
    assert_eq!(b.add_kinds, ["sales".to_owned()].into());
    assert_eq!(b.moves.len(), 2, "the seller and its upline");
    assert_eq!(b.moves[0].1.sales.len(), 1);
    assert!(
        b.moves[0].1.orders.is_empty(),
        "orders are counted by day already"
    );
    // Paid before the window the rules read: nothing to add.
    let later = Day::parse("2026-12-01").unwrap();
    let none = backfill(
        &record,
        false,
        &has,
        &BTreeSet::new(),
        &kinds,
        &BTreeSet::new(),
        later,
        &id("seller"),
        &ancestors,
    );
    assert_eq!(none, None);
}

#[test]
fn a_newcomer_counts_for_its_upline_alone_the_ancestors_above_pull_it() {
    let d = newcomer_deltas(&[id("up1"), id("up2")]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, id("up1"));
    assert_eq!(
        (
            d[0].1.downline_distributors,
            d[0].1.downline_distributors_all
        ),
        (1, 1)
    );
    assert!(newcomer_deltas(&[]).is_empty());
}
