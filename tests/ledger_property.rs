//! Exactness under real delivery, against the emulator: random streams of
//! paid, refunded and cancelled events, duplicated, reordered and applied in
//! random groups (as SQS batches form), end in the metrics (by month, by day
//! over a rolling window, for the seller and its upline), commission (earned
//! and still frozen) and tier that a from-scratch recomputation from the
//! events gives.

use std::collections::BTreeMap;

use chrono::Utc;
use rust_decimal::Decimal;
use system_tests::*;
use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::*;
use tier_domain::ledger::OrderRecord;
use tier_domain::money::{Money, Percent};
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_domain::tier::{self, Cause, Standing, Trigger};

/// A small deterministic generator: the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn event(id: String, order: &str, at: chrono::DateTime<Utc>, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        event_id: EventId::parse(&id).unwrap(),
        order: OrderRef {
            platform: Platform::parse("jd").unwrap(),
            store: StoreId::parse("sh-outlet").unwrap(),
            order_id: OrderId::parse(order).unwrap(),
        },
        distributor: DistributorId::parse("d-shanghai").unwrap(),
        occurred_at: at,
        kind,
    }
}

/// One order's events: paid once in the last 40 days, up to three refunds,
/// maybe a cancellation.
fn order_events(rng: &mut Rng, order: &str) -> Vec<OrderEvent> {
    let total = Money::cents(100 + rng.below(5_000_000) as i64);
    let at = Utc::now() - chrono::Duration::hours(rng.below(40 * 24) as i64);
    let mut out = vec![event(
        format!("{order}-paid"),
        order,
        at,
        OrderEventKind::Paid {
            buyer: BuyerId::parse(&format!("b{}", rng.below(4))).unwrap(),
            total,
            lines: vec![],
            urgent: false,
            region: None,
            tier: None,
            priority: 0,
        },
    )];
    for r in 0..rng.below(4) {
        let amount = Money::cents(1 + rng.below(2_500_000) as i64);
        out.push(event(
            format!("{order}-r{r}"),
            order,
            Utc::now(),
            OrderEventKind::Refunded {
                refund_id: RefundId::parse(&format!("R{r}")).unwrap(),
                amount,
                lines: vec![],
            },
        ));
    }
    if rng.below(5) == 0 {
        out.push(event(
            format!("{order}-cancel"),
            order,
            Utc::now(),
            OrderEventKind::Cancelled,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn random_streams_end_in_the_recomputed_metrics_commission_and_tier() {
    random_streams(0).await;
}

/// The same with the seller and its upline spread over shards: the parts
/// add up to what the events give, whichever shard each batch went to.
#[tokio::test(flavor = "multi_thread")]
async fn random_streams_of_a_spread_seller_end_in_the_same_totals() {
    random_streams(3).await;
}

async fn random_streams(shards: u64) {
    let (stack, api) = clothing_stack().await;
    // Rules that read own and network sales over the last 30 days (so both
    // are kept by day), and freeze commission for 7 days.
    let mut doc = local_stack::demo::clothing_rule_set();
    doc["commission"] = serde_json::json!({"settlement_days": 7});
    doc["step_ups"] = serde_json::json!([{"id": "rolling", "when": {"any": [
        {"metric": "sales_amount", "window": {"rolling_days": 30}, "gte": "999999999"},
        {"metric": "downline_sales_amount", "window": {"rolling_days": 30}, "gte": "999999999"}]}}]);
    assert_eq!(api.put("rule-set", &doc).await.unwrap().status, 201);
    stack.wait_idle(IDLE).await.unwrap();
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let calendar = BrandCalendar::default();
    let rules = table.current_rule_set().await.unwrap().unwrap();
    let seller = DistributorId::parse("d-shanghai").unwrap();
    let upline = DistributorId::parse("d-hangzhou").unwrap();
    for id in [&seller, &upline] {
        table.set_metric_shards(id, shards).await.unwrap();
    }
    let now = Utc::now();
    let today = calendar.day_of(now);
    let month = today.month();
    let decide = |profile: &tier_store::distributors::Distributor,
                  metrics: &tier_domain::metrics::Metrics,
                  rules: Option<&tier_store::rules::PublishedRuleSet>| {
        let rules = rules?;
        let standing = Standing {
            tier: profile.tier.as_ref(),
            since: profile.upgraded_at,
            locked: profile.tier_locked,
        };
        tier::decide(
            &rules.rules,
            rules.version,
            standing,
            metrics,
            now,
            today,
            Trigger::Event,
            Cause::Assignment,
        )
    };

    let seed = 0x9E37_79B9_7F4A_7C15u64 ^ now.timestamp() as u64;
    let mut rng = Rng(seed | 1);
    let mut all = Vec::new();
    for o in 0..12 {
        all.extend(order_events(&mut rng, &format!("P{o}")));
    }
    // Redeliveries: a third of the events again.
    let extra: Vec<OrderEvent> = all.iter().filter(|_| rng.below(3) == 0).cloned().collect();
    all.extend(extra);
    // Any order of arrival.
    for i in (1..all.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        all.swap(i, j);
    }
    // Batches of any size.
    let mut rest = all.as_slice();
    while !rest.is_empty() {
        let n = (1 + rng.below(6) as usize).min(rest.len());
        table
            .apply_group(&seller, &rest[..n], &calendar, today, None, &decide)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        rest = &rest[n..];
    }

    // From scratch: each order's record from its distinct events.
    let mut records: BTreeMap<String, OrderRecord> = BTreeMap::new();
    for e in &all {
        records
            .entry(e.order.order_id.to_string())
            .or_default()
            .apply(e, &calendar);
    }
    let net: Money = records.values().map(|r| r.contribution().sales).sum();
    let live: i64 = records.values().map(|r| r.contribution().live).sum();
    let l1_rate = Percent::parse("5").unwrap(); // d-hangzhou is Junior throughout
    let commission: Money = records
        .values()
        .map(|r| {
            tier_domain::commission::CommissionEntry::amount_for(l1_rate, r.contribution().sales)
        })
        .sum();

    // By month, and over the last 30 days (from the daily buckets).
    let in_month: Money = records
        .values()
        .filter(|r| r.contribution().day.is_some_and(|d| d.month() == month))
        .map(|r| r.contribution().sales)
        .sum();
    let window_start = today.minus_days(29);
    let in_window: Money = records
        .values()
        .filter(|r| r.contribution().day.is_some_and(|d| d >= window_start))
        .map(|r| r.contribution().sales)
        .sum();
    // Commission still frozen: paid less than 7 brand-calendar days ago.
    let frozen: Money = records
        .values()
        .filter(|r| {
            r.paid
                .as_ref()
                .is_some_and(|p| calendar.day_of(p.at).plus_days(7) > today)
        })
        .map(|r| {
            tier_domain::commission::CommissionEntry::amount_for(l1_rate, r.contribution().sales)
        })
        .sum();
    let spans = rules.rules.daily_spans();
    let rows = table
        .distributors_with_metrics(&[seller.clone(), upline.clone()], today, &spans)
        .await
        .unwrap();
    let rolling = |m: &tier_domain::metrics::Metrics, metric| {
        m.value(metric, tier_domain::metrics::Window::RollingDays(30), today)
    };
    assert_eq!(
        rolling(&rows[0].1, tier_domain::metrics::Metric::SalesAmount),
        in_window.amount(),
        "seed {seed}"
    );
    assert_eq!(
        rolling(
            &rows[1].1,
            tier_domain::metrics::Metric::DownlineSalesAmount
        ),
        in_window.amount(),
        "seed {seed}"
    );
    let balance = tier_domain::commission::balance(
        rows[1].1.cumulative_commission,
        &rows[1].1.frozen_commission,
        rows[1].1.withdrawn_commission,
        today,
    );
    assert_eq!(
        (balance.earned, balance.frozen),
        (commission, frozen),
        "seed {seed}"
    );

    let (profile, metrics) = table
        .distributor_with_metrics(&seller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(metrics.sales.lifetime, net, "seed {seed}");
    assert_eq!(metrics.sales.month(month), in_month, "seed {seed}");
    assert_eq!(metrics.orders.lifetime, live, "seed {seed}");
    assert_eq!(
        profile.tier.as_ref(),
        Some(&rules.rules.qualify(&metrics, today).tier),
        "seed {seed}"
    );
    let (_, up) = table
        .distributor_with_metrics(&upline)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.cumulative_commission, commission, "seed {seed}");
    assert_eq!(up.downline_sales.lifetime, net, "seed {seed}");
    assert_eq!(up.downline_sales_all.lifetime, net, "seed {seed}");
    assert_eq!(up.downline_orders_all.lifetime, live, "seed {seed}");
    assert_eq!(
        up.valid_downline_users_all, metrics.valid_downline_users,
        "seed {seed}"
    );
    assert_eq!(
        metrics.valid_downline_users_all, metrics.valid_downline_users,
        "seed {seed}"
    );
    assert!(metrics.sales.lifetime.amount() >= Decimal::ZERO);
    let entries = table.commission_entries(&upline).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.entry.amount).sum::<Money>(),
        commission,
        "seed {seed}"
    );
    drop(api);
    stack.stop().await;
}
