//! The network roll-up through the real queues and tables: an order four
//! levels down reaches every ancestor's all-level metrics by pulls, each
//! ancestor is re-evaluated on them, duplicate and stale pulls change
//! nothing, bad pulls are dead-lettered with their reason, and random
//! orders interleaved with random pulls end in the totals the ledger gives.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::json;
use system_tests::*;
use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::*;
use tier_domain::ledger::OrderRecord;
use tier_domain::money::Money;
use tier_domain::order::{OrderEvent, OrderEventKind};

/// d-hangzhou ← d-shanghai ← d-wuxi ← d-jiangyin: the seller is three
/// levels below the top.
async fn chain(api: &ApiClient) {
    for (id, upline) in [("d-wuxi", "d-shanghai"), ("d-jiangyin", "d-wuxi")] {
        let r = api
            .put(
                &format!("distributors/{id}"),
                &json!({"name": id, "upline": upline}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

fn all_levels(d: &serde_json::Value) -> (rust_decimal::Decimal, i64, i64) {
    (
        dec(&d["metrics"]["downline_sales_all"]["lifetime"]),
        d["metrics"]["downline_orders_all"]["lifetime"]
            .as_i64()
            .unwrap_or(0),
        d["metrics"]["downline_distributors_all"]
            .as_i64()
            .unwrap_or(0),
    )
}

/// Asserts `id`'s all-level network sales and orders; returns the
/// distributor as the admin API shows it.
async fn network_is(api: &ApiClient, id: &str, sales: &str, orders: i64) -> serde_json::Value {
    let dist = distributor(api, id).await;
    let (s, o, _) = all_levels(&dist);
    assert_eq!((s, o), (d(sales), orders), "{id}: {}", dist["metrics"]);
    dist
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_deep_in_the_network_reach_every_ancestor_by_pulls() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] = json!([{"id": "network-sales", "when":
        {"metric": "downline_sales_amount_all", "window": "month", "gte": "900"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    chain(&api).await;
    assert_eq!(
        api.put(
            "stores/tmall/jy-shop",
            &json!({"distributor": "d-jiangyin"})
        )
        .await
        .unwrap()
        .status,
        200
    );
    stack.wait_idle(IDLE).await.unwrap();
    // The registrations were counted above the upline by pull too.
    assert_eq!(
        all_levels(&distributor(&api, "d-hangzhou").await).2,
        4,
        "d-shanghai, d-suzhou, d-wuxi, d-jiangyin"
    );
    assert_eq!(all_levels(&distributor(&api, "d-shanghai").await).2, 2);

    let now = Utc::now();
    for (i, price) in ["500.00", "450.00"].iter().enumerate() {
        api.webhook(
            "tmall",
            "jy-shop",
            &docs::paid(
                &format!("jy{i}"),
                &format!("JY{i}"),
                "b1",
                &[("HOODIE-GREY", 1, price)],
                now,
            ),
        )
        .await
        .unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    for id in ["d-wuxi", "d-shanghai", "d-hangzhou"] {
        let dist = network_is(&api, id, "950", 2).await;
        // Each moved up on its network: the seller's upline with the
        // order (as a commission receiver), the rest as their pulls landed.
        assert_eq!(dist["distributor"]["tier"], "intermediate", "{id}");
        let cause = if id == "d-wuxi" {
            "commission"
        } else {
            "network"
        };
        assert_eq!(dist["tier_history"][0]["cause"]["type"], cause, "{id}");
    }
    // Users below count once at every level; the seller's own customer
    // is its own and its upline's by the order, the rest's by pull.
    for id in ["d-jiangyin", "d-wuxi", "d-shanghai"] {
        assert_eq!(
            distributor(&api, id).await["metrics"]["downline_users_all"],
            1,
            "{id}"
        );
    }

    // A duplicate or late pull, as a redelivery or a redrive brings it,
    // changes nothing.
    let before = distributor(&api, "d-hangzhou").await["metrics"].clone();
    let pull = json!({"type": "network_pull.v1", "payload":
        {"upline": "d-hangzhou", "downline": "d-shanghai"}});
    send_raw(&stack, "TierEventsQueue", &pull.to_string()).await;
    send_raw(&stack, "TierEventsQueue", &pull.to_string()).await;
    stack.wait_idle(IDLE).await.unwrap();
    let after = distributor(&api, "d-hangzhou").await["metrics"].clone();
    assert_eq!(
        (
            after["downline_sales_all"].clone(),
            after["downline_users_all"].clone()
        ),
        (
            before["downline_sales_all"].clone(),
            before["downline_users_all"].clone()
        )
    );

    // A refund goes up the same way.
    api.webhook(
        "tmall",
        "jy-shop",
        &docs::refunded("jy0r", "JY0", "R1", "500.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    for id in ["d-wuxi", "d-shanghai", "d-hangzhou"] {
        network_is(&api, id, "450", 1).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_that_cannot_be_applied_are_dead_lettered_with_their_reason() {
    let (stack, api) = clothing_stack().await;
    stack.wait_idle(IDLE).await.unwrap();
    for body in [
        // d-suzhou is d-hangzhou's, not d-shanghai's.
        json!({"type": "network_pull.v1", "payload":
            {"upline": "d-shanghai", "downline": "d-suzhou"}}),
        json!({"type": "network_pull.v1", "payload":
            {"upline": "d-nobody", "downline": "d-suzhou"}}),
        json!({"type": "network_pull.v1", "payload": {"upline": "d-hangzhou"}}),
    ] {
        send_raw(&stack, "TierEventsQueue", &body.to_string()).await;
    }
    stack.wait_idle(IDLE).await.unwrap();
    let mut codes: Vec<String> = dead_letters(&stack, "TierEventsDLQ", 3, IDLE)
        .await
        .into_iter()
        .map(|l| l.code.unwrap_or_default())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        ["malformed_message", "not_a_downline", "unknown_distributor"]
    );
    // Nothing moved.
    assert_eq!(all_levels(&distributor(&api, "d-shanghai").await).2, 0);
    stack.stop().await;
}

/// A small deterministic generator: the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random orders, refunds and redeliveries by the two lowest distributors
/// of the chain, applied as the ledger applies them, interleaved with pulls
/// at random levels (repeated, and out of order: a pull before the one
/// below it has run), end, once every pull has run, in all-level totals at
/// each ancestor that equal what the ledger's records add up to.
#[tokio::test(flavor = "multi_thread")]
async fn random_orders_and_pulls_end_in_the_ledgers_totals_at_every_level() {
    let (stack, api) = clothing_stack().await;
    chain(&api).await;
    stack.wait_idle(IDLE).await.unwrap();
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let calendar = BrandCalendar::default();
    let now = Utc::now();
    let today = calendar.day_of(now);
    let id = |s: &str| DistributorId::parse(s).unwrap();
    let (top, shanghai, wuxi, jiangyin) = (
        id("d-hangzhou"),
        id("d-shanghai"),
        id("d-wuxi"),
        id("d-jiangyin"),
    );
    let edges = [
        (wuxi.clone(), jiangyin.clone()),
        (shanghai.clone(), wuxi.clone()),
        (top.clone(), shanghai.clone()),
    ];
    let no_change = |_: &tier_store::distributors::Distributor,
                     _: &tier_domain::metrics::Metrics,
                     _: Option<&tier_store::rules::PublishedRuleSet>| None;
    let seed = 0x2545_F491_4F6C_DD1Du64 ^ now.timestamp() as u64;
    let mut rng = Rng(seed | 1);
    let mut events: Vec<OrderEvent> = Vec::new();
    for o in 0..10 {
        let seller = if rng.below(2) == 0 { &jiangyin } else { &wuxi };
        let order = OrderRef {
            platform: Platform::parse("jd").unwrap(),
            store: StoreId::parse("s").unwrap(),
            order_id: OrderId::parse(&format!("N{o}")).unwrap(),
        };
        let e = |suffix: &str, kind| OrderEvent {
            event_id: EventId::parse(&format!("N{o}-{suffix}")).unwrap(),
            order: order.clone(),
            distributor: seller.clone(),
            occurred_at: now - chrono::Duration::hours(rng_hours(o)),
            kind,
        };
        events.push(e(
            "paid",
            OrderEventKind::Paid {
                buyer: BuyerId::parse(&format!("b{}", o % 3)).unwrap(),
                total: Money::cents(1_000 + 137 * o as i64),
                lines: vec![],
                urgent: false,
                region: None,
                tier: None,
                priority: 0,
            },
        ));
        if o % 3 == 0 {
            events.push(e(
                "r",
                OrderEventKind::Refunded {
                    refund_id: RefundId::parse("R").unwrap(),
                    amount: Money::cents(500),
                    lines: vec![],
                },
            ));
        }
    }
    let extra: Vec<OrderEvent> = events
        .iter()
        .filter(|_| rng.below(3) == 0)
        .cloned()
        .collect();
    events.extend(extra);
    for i in (1..events.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        events.swap(i, j);
    }
    for e in &events {
        table
            .apply_group(
                &e.distributor,
                std::slice::from_ref(e),
                &calendar,
                today,
                None,
                &no_change,
            )
            .await
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        // Now and then a pull somewhere, perhaps twice.
        for _ in 0..rng.below(3) {
            let (up, down) = &edges[rng.below(3) as usize];
            table
                .pull_network(up, std::slice::from_ref(down), today)
                .await
                .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        }
    }
    // Every signal delivered: bottom up.
    for (up, down) in &edges {
        table
            .pull_network(up, std::slice::from_ref(down), today)
            .await
            .unwrap();
    }

    // From the ledger: each order's record from its distinct events.
    let mut records: BTreeMap<(DistributorId, String), OrderRecord> = BTreeMap::new();
    for e in &events {
        records
            .entry((e.distributor.clone(), e.order.order_id.to_string()))
            .or_default()
            .apply(e, &calendar);
    }
    let sold = |by: &[&DistributorId]| -> (Money, i64) {
        records
            .iter()
            .filter(|((d, _), _)| by.contains(&d))
            .fold((Money::ZERO, 0), |(s, n), (_, r)| {
                (s + r.contribution().sales, n + r.contribution().live)
            })
    };
    for (ancestor, below) in [
        (&wuxi, vec![&jiangyin]),
        (&shanghai, vec![&jiangyin, &wuxi]),
        (&top, vec![&jiangyin, &wuxi]),
    ] {
        let (_, m) = table
            .distributor_with_metrics(ancestor)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                m.downline_sales_all.lifetime,
                m.downline_orders_all.lifetime
            ),
            sold(&below),
            "seed {seed}: {ancestor}"
        );
        assert_eq!(
            m.downline_sales_all.month(today.month()),
            records
                .iter()
                .filter(|((d, _), r)| below.contains(&d)
                    && r.contribution()
                        .day
                        .is_some_and(|x| x.month() == today.month()))
                .map(|(_, r)| r.contribution().sales)
                .sum::<Money>(),
            "seed {seed}: {ancestor} this month"
        );
    }
    // Pulling again once all is in moves nothing.
    let (_, before) = table.distributor_with_metrics(&top).await.unwrap().unwrap();
    let again = table
        .pull_network(&top, std::slice::from_ref(&shanghai), today)
        .await
        .unwrap();
    assert!(!again.moved);
    let (_, after) = table.distributor_with_metrics(&top).await.unwrap().unwrap();
    assert_eq!(before, after);
    stack.stop().await;
}

/// Spread over the last few days, all in this month or the one before.
fn rng_hours(o: usize) -> i64 {
    (o as i64 * 7) % 48
}

/// A hot seller spread over shards, and its upline (the level-1 receiver)
/// too: their orders' counters and commission write shards, never the two
/// metrics items in a transaction; every read adds the shards up, so the
/// totals, the seller's tier, the network above, the sorted list, a
/// duplicate and a refund are what they are unspread.
#[tokio::test(flavor = "multi_thread")]
async fn a_hot_sellers_orders_spread_over_shards_and_add_up_everywhere() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] = json!([{"id": "own-sales", "when":
        {"metric": "sales_amount", "window": "month", "gte": "900"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    chain(&api).await;
    let r = api
        .put(
            "stores/tmall/jy-shop",
            &json!({"distributor": "d-jiangyin"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    for (body, status, code) in [
        (json!({"shards": 65}), 422, "invalid_shards"),
        (json!({"shards": 1u64 << 40}), 422, "invalid_shards"),
        (json!({"shards": -1}), 422, "invalid_document"),
        (json!({"shards": "4"}), 422, "invalid_document"),
        (json!({"shards": 4, "cells": 8}), 422, "invalid_document"),
    ] {
        let r = api
            .put("distributors/d-jiangyin/shards", &body)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let r = api
        .put("distributors/d-nobody/shards", &json!({"shards": 4}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("distributor_not_found"))
    );
    for id in ["d-jiangyin", "d-wuxi"] {
        let r = api
            .put(&format!("distributors/{id}/shards"), &json!({"shards": 4}))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (r.body["shards"].as_u64(), r.body["cells"].as_u64()),
            (Some(4), Some(4))
        );
    }
    stack.wait_idle(IDLE).await.unwrap();

    stack.dynamo_usage.reset();
    let now = Utc::now();
    let paid = |i: usize| {
        docs::paid(
            &format!("hot{i}"),
            &format!("HOT{i}"),
            &format!("b{i}"),
            &[("HOODIE-GREY", 1, "150.00")],
            now,
        )
    };
    for i in 0..8 {
        api.webhook("tmall", "jy-shop", &paid(i)).await.unwrap();
    }
    // An unspread seller with less, ranked in its own transaction.
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("sz1", "SZ1", "b9", &[("HOODIE-GREY", 1, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let usage = stack.dynamo_usage.snapshot();
    for id in ["d-jiangyin", "d-wuxi"] {
        let home = format!("DIST#{id}");
        let moved: Vec<_> = usage
            .writes
            .iter()
            .filter(|w| w.pk == home && w.sk == "METRICS" && w.in_transaction && !w.check_only)
            .collect();
        assert!(
            moved.is_empty(),
            "{id}'s metrics item in a transaction: {moved:?}"
        );
        let shards: std::collections::BTreeSet<_> = usage
            .writes
            .iter()
            .filter(|w| w.pk.starts_with(&format!("{home}#M")) && w.sk == "METRICS")
            .map(|w| w.pk.clone())
            .collect();
        assert!(
            shards.len() >= 2,
            "{id}: 8 orders over 4 shards wrote {shards:?}"
        );
    }

    // The seller: every order counted once, and its tier moved on its own
    // order's event.
    let seller = distributor(&api, "d-jiangyin").await;
    assert_eq!(dec(&seller["metrics"]["sales"]["lifetime"]), d("1200"));
    assert_eq!(seller["metrics"]["orders"]["lifetime"], 8);
    assert_eq!(seller["distributor"]["tier"], "intermediate");
    assert_eq!(seller["distributor"]["metric_shards"]["shards"], 4);
    // Its upline's level-1 sales and the commission at its 5 %.
    let upline = distributor(&api, "d-wuxi").await;
    assert_eq!(
        dec(&upline["metrics"]["downline_sales"]["lifetime"]),
        d("1200")
    );
    assert_eq!(dec(&upline["metrics"]["cumulative_commission"]), d("60"));
    // Above: the pull of a spread downline reads its shards (the top
    // has d-suzhou's order too).
    network_is(&api, "d-shanghai", "1200", 8).await;
    network_is(&api, "d-hangzhou", "1659", 9).await;
    // The sorted list reads the ranks a refresh set from the shards.
    let r = api
        .get("distributors?sort=sales_month&limit=2")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["distributors"][0]["id"], "d-jiangyin", "{}", r.body);
    assert_eq!(r.body["distributors"][1]["id"], "d-suzhou", "{}", r.body);

    // A duplicate changes nothing; a refund takes back from wherever its
    // payment went.
    api.webhook("tmall", "jy-shop", &paid(3)).await.unwrap();
    api.webhook(
        "tmall",
        "jy-shop",
        &docs::refunded("hot0r", "HOT0", "R1", "150.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let seller = distributor(&api, "d-jiangyin").await;
    assert_eq!(dec(&seller["metrics"]["sales"]["lifetime"]), d("1050"));
    assert_eq!(seller["metrics"]["orders"]["lifetime"], 7);
    let upline = distributor(&api, "d-wuxi").await;
    assert_eq!(dec(&upline["metrics"]["cumulative_commission"]), d("52.50"));
    network_is(&api, "d-shanghai", "1050", 7).await;
    network_is(&api, "d-hangzhou", "1509", 8).await;

    // Back to one item: the next order goes there, and the shards' counts
    // stay counted.
    let r = api
        .put("distributors/d-jiangyin/shards", &json!({"shards": 0}))
        .await
        .unwrap();
    assert_eq!(
        (r.body["shards"].as_u64(), r.body["cells"].as_u64()),
        (Some(0), Some(4))
    );
    api.webhook("tmall", "jy-shop", &paid(8)).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let seller = distributor(&api, "d-jiangyin").await;
    assert_eq!(dec(&seller["metrics"]["sales"]["lifetime"]), d("1200"));
    assert_eq!(seller["metrics"]["orders"]["lifetime"], 8);
    network_is(&api, "d-shanghai", "1200", 8).await;
    network_is(&api, "d-hangzhou", "1659", 9).await;
    stack.stop().await;
}
