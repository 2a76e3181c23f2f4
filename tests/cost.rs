//! What one order costs in DynamoDB, end to end (order intake, tier
//! evaluation, stock allocation), counted by an SDK interceptor on every
//! request the functions make. Run with `-- --nocapture` to see the figures.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use system_tests::*;

/// A rough DynamoDB item size: attribute names plus values.
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
            AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + value(v)).sum(),
            AttributeValue::L(l) => l.iter().map(value).sum(),
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_line_order_costs() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Warm up: the first order of the store creates the metrics item.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("warm", "W", "b0", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let mut report = Vec::new();
    // (label, the document, at most this many write units)
    for (label, doc, max_units) in [
        (
            "new buyer, tier unchanged",
            docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 1, "199.00")], now),
            16.0,
        ),
        (
            "repeat buyer, tier unchanged",
            docs::paid("e2", "O2", "b1", &[("TEE-WHITE", 1, "199.00")], now),
            16.0,
        ),
        (
            "3 lines, 3 SKUs",
            docs::paid(
                "e4",
                "O4",
                "b3",
                &[
                    ("TEE-WHITE", 1, "199.00"),
                    ("HOODIE-GREY", 1, "459.00"),
                    ("JACKET-DOWN", 1, "1299.00"),
                ],
                now,
            ),
            20.0,
        ),
        (
            "order that changes the tier",
            docs::paid("e3", "O3", "b2", &[("JACKET-DOWN", 39, "1299.00")], now),
            24.0,
        ),
    ] {
        stack.dynamo_usage.reset();
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert_eq!(r.status, 202);
        stack.wait_idle(IDLE).await.unwrap();
        let usage = stack.dynamo_usage.snapshot();
        report.push(format!(
            "{label:<30} requests {:>2}  write units {:>4}  read units {:>4}  {:?}",
            usage.total_requests(),
            usage.write_units,
            usage.read_units,
            usage.requests
        ));
        // Regression guards, not targets: see the README for the breakdown.
        assert!(usage.total_requests() <= 10, "{label}: {usage:?}");
        assert!(usage.write_units <= max_units, "{label}: {usage:?}");
    }
    println!(
        "DynamoDB cost of one 1-line order, end to end:\n  {}",
        report.join("\n  ")
    );
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    // The write-unit count assumes items under 1 KB: check every item the
    // order path writes.
    let items = stack
        .clients
        .dynamodb
        .scan()
        .table_name(stack.table_name())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    for item in &items {
        let entity = item
            .get("entity_type")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        if entity == "rule_set" || entity == "price_book" {
            continue; // written by operators, not per order
        }
        assert!(
            item_size(item) < 1024,
            "{entity} item is {} bytes",
            item_size(item)
        );
    }
    stack.stop().await;
}

/// A spread seller's 1-line order, its upline spread too: the same write
/// units on shards instead of the two metrics items, plus the ranks set
/// from the shards (1 unit, once a window); the reads add the shards.
#[tokio::test(flavor = "multi_thread")]
async fn a_spread_sellers_order_costs_its_units_on_shards_and_its_ranks_once() {
    let (stack, api) = clothing_stack().await;
    for id in ["d-shanghai", "d-hangzhou"] {
        let r = api
            .put(
                &format!("distributors/{id}/shards"),
                &serde_json::json!({"shards": 8}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    let now = Utc::now();
    stack.dynamo_usage.reset();
    let doc = docs::paid("sp1", "SP1", "b1", &[("TEE-WHITE", 1, "199.00")], now);
    assert_eq!(
        api.webhook("jd", "sh-outlet", &doc).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    let usage = stack.dynamo_usage.snapshot();
    println!(
        "a spread seller's 1-line order: requests {}  write units {}  read units {}  {:?}",
        usage.total_requests(),
        usage.write_units,
        usage.read_units,
        usage.requests
    );
    // 16 as unspread, and 1 for the ranks.
    assert_eq!(usage.write_units, 17.0, "{usage:?}");
    for id in ["d-shanghai", "d-hangzhou"] {
        let home: Vec<_> = usage
            .writes
            .iter()
            .filter(|w| w.pk == format!("DIST#{id}") && w.sk == "METRICS")
            .collect();
        let expected = usize::from(id == "d-shanghai");
        assert_eq!(home.len(), expected, "{id}: {home:?}");
        assert!(home.iter().all(|w| !w.in_transaction), "{id}: {home:?}");
    }
    stack.stop().await;
}

/// A burst for one distributor: the events of a batch share one
/// transaction, so one metrics write per batch, not per order.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_for_one_distributor_costs_one_metrics_write_per_batch() {
    use tier_domain::ids::*;
    use tier_domain::money::Money;
    use tier_domain::order::{OrderEvent, OrderEventKind, OrderLine};
    use tier_messages::Message;

    let (stack, api) = clothing_stack().await;
    stack.wait_idle(IDLE).await.unwrap();
    const ORDERS: usize = 60;
    // Sent ten at a time, as fast as possible, so that batches of several
    // orders form on the queue.
    let sqs = &stack.clients.sqs;
    let url = stack.queue_url("TierEventsQueue");
    let unit = Money::parse("100.00").unwrap();
    stack.dynamo_usage.reset();
    for chunk in (0..ORDERS).collect::<Vec<_>>().chunks(10) {
        let mut batch = sqs.send_message_batch().queue_url(&url);
        for i in chunk {
            let event = Message::OrderEventV1(OrderEvent {
                event_id: EventId::parse(&format!("burst-{i}")).unwrap(),
                order: OrderRef {
                    platform: Platform::parse("jd").unwrap(),
                    store: StoreId::parse("sh-outlet").unwrap(),
                    order_id: OrderId::parse(&format!("B{i}")).unwrap(),
                },
                distributor: DistributorId::parse("d-shanghai").unwrap(),
                occurred_at: Utc::now(),
                kind: OrderEventKind::Paid {
                    buyer: BuyerId::parse("repeat-buyer").unwrap(),
                    total: unit,
                    lines: vec![OrderLine {
                        line_id: LineId::parse("1").unwrap(),
                        sku: Sku::parse("TEE-WHITE").unwrap(),
                        quantity: 1,
                        unit_price: unit,
                        amount: unit,
                        entitled_unit_price: None,
                        floor_unit_price: None,
                    }],
                    urgent: false,
                    region: None,
                    tier: None,
                    priority: 0,
                },
            });
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(event.to_json())
                    .build()
                    .unwrap(),
            );
        }
        batch.send().await.unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    let usage = stack.dynamo_usage.snapshot();
    let transactions = usage
        .requests
        .get("TransactWriteItems")
        .copied()
        .unwrap_or(0);
    println!(
        "{ORDERS} orders for one distributor: {transactions} transactions, {} write units, {usage:?}",
        usage.write_units
    );
    // Each transaction carries exactly one metrics update; per-order
    // processing would have needed one per order.
    assert!(
        transactions <= (ORDERS / 5) as u64,
        "{transactions} transactions for {ORDERS} orders: {usage:?}"
    );
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&shanghai["metrics"]["sales"]["lifetime"]), d("6000"));
    assert_eq!(shanghai["metrics"]["orders"]["lifetime"], ORDERS as i64);
    assert_eq!(shanghai["metrics"]["valid_downline_users"], 1);
    stack.stop().await;
}

/// What each metrics write costs depends on the item's size: with the
/// monthly buckets the windows read, and frozen commission only until it
/// settles, a year of trading keeps a seller's and its upline's metrics
/// items under 1 KB, so a write stays 1 unit (2 in a transaction).
#[tokio::test(flavor = "multi_thread")]
async fn a_year_of_trading_keeps_metrics_items_under_one_kilobyte() {
    use chrono::Duration;
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // A sale in each of the last 12 months, by d-shanghai (under d-hangzhou) and by d-hangzhou.
    for m in 0..12 {
        let at = now - Duration::days(30 * m);
        api.webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                &format!("y{m}"),
                &format!("Y{m}"),
                &format!("b{m}"),
                &[("TEE-WHITE", 3, "199.00")],
                at,
            ),
        )
        .await
        .unwrap();
        api.webhook(
            "tmall",
            "hz-flagship",
            &docs::paid(
                &format!("h{m}"),
                &format!("H{m}"),
                &format!("b{m}"),
                &[("TEE-WHITE", 1, "199.00")],
                at,
            ),
        )
        .await
        .unwrap();
    }
    // A sale on each of the last 7 days too: the upline's commission is
    // frozen for 7 days, so it holds a frozen bucket per settlement day.
    for day in 1..7 {
        let at = now - Duration::days(day);
        api.webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                &format!("w{day}"),
                &format!("W{day}"),
                "b-week",
                &[("TEE-WHITE", 1, "199.00")],
                at,
            ),
        )
        .await
        .unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    // One more order today writes both items, pruning what no window reads.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "y-now",
            "Y-NOW",
            "b-now",
            &[("TEE-WHITE", 1, "199.00")],
            now,
        ),
    )
    .await
    .unwrap();
    api.webhook(
        "tmall",
        "hz-flagship",
        &docs::paid(
            "h-now",
            "H-NOW",
            "b-now",
            &[("TEE-WHITE", 1, "199.00")],
            now,
        ),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let items = stack
        .clients
        .dynamodb
        .scan()
        .table_name(stack.table_name())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let mut sizes = Vec::new();
    for item in items.iter().filter(|i| {
        i.get("entity_type")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|e| e == "metrics")
    }) {
        let pk = item["PK"].as_s().unwrap().clone();
        let size = item_size(item);
        sizes.push(format!("{pk}: {size} bytes, {} attributes", item.len()));
        assert!(size < 1024, "{pk} metrics item is {size} bytes");
    }
    println!(
        "metrics items after a year of monthly sales:\n  {}",
        sizes.join("\n  ")
    );
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    stack.stop().await;
}

/// One SKU's reserve plan: the rule set, one Query of the SKU's partition
/// (its days of demand, its plan and its stock), and one transaction of the
/// stock and the plan when it changed; nothing written when it did not.
#[tokio::test(flavor = "multi_thread")]
async fn a_reserve_plan_costs_one_query_and_one_transaction_per_sku() {
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["reserves"] = json!({"history_days": 28, "forecast": {"method": "ses", "alpha": "0.3"}, "tiers": ["gold", "senior"]});
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let base = Utc::now();
    for day in 1..=28 {
        let doc = docs::paid(
            &format!("g{day}"),
            &format!("G{day}"),
            "b1",
            &[("TEE-WHITE", 2, "199.00")],
            base - chrono::Duration::days(day),
        );
        api.webhook("douyin", "sz-live", &doc).await.unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    let plan = |at: chrono::DateTime<Utc>| {
        json!({"type": "reserve_plan.v1", "payload": {"sku": "TEE-WHITE", "at": at}}).to_string()
    };
    let mut report = Vec::new();
    for (label, at, max_writes) in [
        ("a plan that moves reserves", base, 4.0),
        ("the same plan again", base, 0.0),
    ] {
        stack.dynamo_usage.reset();
        send_raw(&stack, "StockEventsQueue", &plan(at)).await;
        stack.wait_idle(IDLE).await.unwrap();
        let usage = stack.dynamo_usage.snapshot();
        report.push(format!(
            "{label:<28} requests {}  write units {}  read units {}  {:?}",
            usage.total_requests(),
            usage.write_units,
            usage.read_units,
            usage.requests
        ));
        // The rule set's GetItem, the partition's Query, and the write.
        assert!(usage.total_requests() <= 3, "{label}: {usage:?}");
        assert!(usage.write_units <= max_writes, "{label}: {usage:?}");
    }
    println!(
        "DynamoDB cost of one SKU's reserve plan, 28 days of demand:\n  {}",
        report.join("\n  ")
    );
    let r = api.get("skus/TEE-WHITE/stock").await.unwrap();
    assert_eq!(r.body["reserves"]["gold"], 14, "{}", r.body);
    stack.stop().await;
}

/// A spread SKU's payments write their own buckets and never the home
/// item: one read of the record and the home item, one of the order's
/// bucket, and the transaction of the record and the bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_spread_skus_payments_write_their_own_buckets_and_not_the_home_item() {
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    let r = api
        .put("skus/TEE-WHITE/buckets", &json!({"buckets": 8}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let now = Utc::now();
    // Warm up: the store's metrics item, and the SKU's running days.
    for i in 0..8 {
        let doc = docs::paid(
            &format!("w{i}"),
            &format!("W{i}"),
            "b0",
            &[("TEE-WHITE", 1, "199.00")],
            now,
        );
        api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    let orders = 24;
    stack.dynamo_usage.reset();
    for i in 0..orders {
        let doc = docs::paid(
            &format!("h{i}"),
            &format!("H{i}"),
            "b1",
            &[("TEE-WHITE", 1, "199.00")],
            now,
        );
        assert_eq!(
            api.webhook("jd", "sh-outlet", &doc).await.unwrap().status,
            202
        );
        stack.wait_idle(IDLE).await.unwrap();
    }
    let usage = stack.dynamo_usage.snapshot();
    let stock_writes: Vec<_> = usage
        .writes
        .iter()
        .filter(|w| w.pk.starts_with("SKU#TEE-WHITE") && !w.check_only)
        .collect();
    let home = stock_writes
        .iter()
        .filter(|w| w.pk == "SKU#TEE-WHITE" && w.sk == "STOCK")
        .count();
    let mut per_bucket = std::collections::BTreeMap::<&str, u64>::new();
    for w in &stock_writes {
        if w.pk.starts_with("SKU#TEE-WHITE#B") {
            *per_bucket.entry(w.pk.as_str()).or_default() += 1;
        }
    }
    println!(
        "{orders} payments of a SKU spread over 8 buckets: home item writes {home}, \
         bucket writes {per_bucket:?}"
    );
    assert_eq!(home, 0, "{stock_writes:?}");
    assert_eq!(per_bucket.values().sum::<u64>(), orders);
    assert!(
        per_bucket.len() >= 4,
        "spread over the buckets: {per_bucket:?}"
    );
    let s = api.get("skus/TEE-WHITE/stock").await.unwrap().body;
    assert_eq!(s["allocated"], orders + 8, "{s}");
    stack.stop().await;
}
