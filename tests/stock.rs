//! Stock allocation through the real queues: never oversold, backorders
//! recorded, releases applied once.

use chrono::Utc;
use system_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn stock_never_goes_below_zero_and_what_cannot_be_filled_is_backordered() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // 15 orders of 3 jackets against 40 in stock, all at once.
    fifteen_orders_of_three_jackets(&stack, &api, now).await;
    let available = stock(&api, "JACKET-DOWN").await;
    assert_eq!(available, 1, "13 orders of 3 fit in 40");
    let (mut reserved, mut backordered) = (0, 0);
    for i in 0..15 {
        let r = api
            .get(&format!("orders/jd/sh-outlet/O{i}/reservations"))
            .await
            .unwrap();
        let line = &r.body["lines"]["1"];
        match line["status"].as_str().unwrap() {
            "reserved" => reserved += line["reserved"].as_i64().unwrap(),
            "backordered" => backordered += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        reserved + available,
        40,
        "every unit is either reserved or available"
    );
    assert_eq!(backordered, 2);

    // Cancelling a backordered order closes the backorder and returns nothing.
    let backordered_order = (0..15)
        .map(|i| format!("O{i}"))
        .find(|o| futures_status(&api, o) == "backordered")
        .expect("a backordered order");
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::cancelled("cx", &backordered_order, now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let r = api
        .get(&format!(
            "orders/jd/sh-outlet/{backordered_order}/reservations"
        ))
        .await
        .unwrap();
    assert_eq!(r.body["lines"]["1"]["status"], "cancelled");
    assert_eq!(stock(&api, "JACKET-DOWN").await, 1);
    stack.stop().await;
}

/// Orders O0 to O14 of 3 jackets each, sent at once, and handled.
async fn fifteen_orders_of_three_jackets(
    stack: &LocalStack,
    api: &ApiClient,
    now: chrono::DateTime<Utc>,
) {
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..15 {
        let api = api.clone();
        sends.spawn(async move {
            let doc = docs::paid(
                &format!("e{i}"),
                &format!("O{i}"),
                &format!("b{i}"),
                &[("JACKET-DOWN", 3, "1299.00")],
                now,
            );
            api.webhook("jd", "sh-outlet", &doc).await.unwrap()
        });
    }
    while let Some(r) = sends.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
}

/// The status of an order's first line (blocking on the runtime we are in).
fn futures_status(api: &ApiClient, order: &str) -> String {
    let api = api.clone();
    let order = order.to_owned();
    tokio::task::block_in_place(move || {
        tokio::runtime::Handle::current().block_on(async move {
            let r = api
                .get(&format!("orders/jd/sh-outlet/{order}/reservations"))
                .await
                .unwrap();
            r.body["lines"]["1"]["status"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_and_returns_release_stock_once() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p1", "O1", "b1", &[("TEE-WHITE", 5, "199.00")], now),
    )
    .await
    .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "p2",
            "O2",
            "b2",
            &[("TEE-WHITE", 10, "199.00"), ("HOODIE-GREY", 1, "459.00")],
            now,
        ),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4985);

    api.webhook("jd", "sh-outlet", &docs::cancelled("c1", "O1", now))
        .await
        .unwrap();
    // The platform sends a second cancellation event for the same order.
    api.webhook("jd", "sh-outlet", &docs::cancelled("c1-again", "O1", now))
        .await
        .unwrap();
    // 4 of the 10 T-shirts come back with a refund; the refund is retried.
    let refund = docs::refunded("r2", "O2", "RF2", "796.00", &[("1", 4)], now);
    api.webhook("jd", "sh-outlet", &refund).await.unwrap();
    api.webhook("jd", "sh-outlet", &refund).await.unwrap();
    // ... and the platform sends the same refund again under another event id.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("r2-again", "O2", "RF2", "796.00", &[("1", 4)], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4994);
    assert_eq!(stock(&api, "HOODIE-GREY").await, 1999);
    let o1 = api
        .get("orders/jd/sh-outlet/O1/reservations")
        .await
        .unwrap();
    assert_eq!(o1.body["lines"]["1"]["status"], "released");

    // A cancellation that overtakes its payment: the late payment reserves nothing.
    api.webhook("jd", "sh-outlet", &docs::cancelled("c3", "O3", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p3", "O3", "b3", &[("TEE-WHITE", 7, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4994);
    let o3 = api
        .get("orders/jd/sh-outlet/O3/reservations")
        .await
        .unwrap();
    assert_eq!(
        (
            o3.body["lines"]["1"]["status"].as_str(),
            o3.body["lines"]["1"]["reserved"].as_i64()
        ),
        (Some("cancelled"), Some(0))
    );

    // Returned goods that overtake their payment: the payment reserves only what stays sold.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("r4", "O4", "RF4", "398.00", &[("1", 2)], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p4", "O4", "b4", &[("TEE-WHITE", 5, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4991);
    let o4 = api
        .get("orders/jd/sh-outlet/O4/reservations")
        .await
        .unwrap();
    assert_eq!(
        (
            o4.body["lines"]["1"]["status"].as_str(),
            o4.body["lines"]["1"]["reserved"].as_i64()
        ),
        (Some("reserved"), Some(3))
    );
    stack.stop().await;
}

/// An order of more SKUs than one transaction can decrement is reserved in
/// parts, each part with the order's record; a redelivery changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_of_many_skus_is_reserved_in_parts_exactly_once() {
    use tier_domain::ids::*;
    use tier_domain::money::Money;
    use tier_domain::order::OrderLine;
    use tier_store::catalog::Allocation;

    let (stack, _api) = spawn_stack().await;
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let now = Utc::now();
    let sku = |i: usize| Sku::parse(&format!("MANY-{i:03}")).unwrap();
    for i in 0..150 {
        // MANY-007 has none left.
        table
            .set_stock(&sku(i), if i == 7 { 0 } else { 2 }, &[], now)
            .await
            .unwrap();
    }
    let price = Money::parse("1.00").unwrap();
    let lines: Vec<OrderLine> = (0..150)
        .map(|i| OrderLine {
            line_id: LineId::parse(&i.to_string()).unwrap(),
            sku: sku(i),
            quantity: 1,
            unit_price: price,
            amount: price,
            entitled_unit_price: None,
            floor_unit_price: None,
        })
        .collect();
    let order = OrderRef {
        platform: Platform::parse("jd").unwrap(),
        store: StoreId::parse("bulk").unwrap(),
        order_id: OrderId::parse("MANY").unwrap(),
    };
    let event = EventId::parse("many-paid").unwrap();
    let payer = tier_domain::stock::Payer {
        tier: None,
        priority: 0,
        paid_at: now,
    };
    let day = tier_domain::calendar::BrandCalendar::parse(tier_domain::calendar::DEFAULT_TIMEZONE)
        .unwrap()
        .day_of(now);
    assert_eq!(
        table
            .allocate_payment(&order, &event, payer, day, &lines)
            .await
            .unwrap(),
        Allocation::Reserved {
            backordered: vec![sku(7)]
        }
    );
    assert_eq!(
        table
            .allocate_payment(&order, &event, payer, day, &lines)
            .await
            .unwrap(),
        Allocation::Duplicate
    );
    let (record, _) = table.order_stock(&order).await.unwrap();
    assert_eq!(
        record.lines.values().filter(|l| l.reserved == 1).count(),
        149
    );
    let free = |s: Option<tier_domain::stock::levels::SkuStock>| s.map(|s| s.free());
    assert_eq!(free(table.stock(&sku(0)).await.unwrap()), Some(1));
    assert_eq!(free(table.stock(&sku(149)).await.unwrap()), Some(1));
    assert_eq!(free(table.stock(&sku(7)).await.unwrap()), Some(0));
    assert_eq!(table.stock(&sku(7)).await.unwrap().unwrap().backordered, 1);
    assert_eq!(table.cancel_order_stock(&order).await.unwrap().units, 149);
    assert_eq!(table.cancel_order_stock(&order).await.unwrap().units, 0);
    assert_eq!(free(table.stock(&sku(149)).await.unwrap()), Some(2));
    assert_eq!(table.stock(&sku(7)).await.unwrap().unwrap().backordered, 0);
    stack.stop().await;
}

/// Stock kept for a tier: a junior order cannot draw on gold's reserve,
/// gold's draws it first; a cancellation gives each unit back to the part
/// it came from and closes a backorder; a recount cuts the pool, then the
/// reserves; price lookup shows a tier what it may draw on; bad counts and
/// plans change nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_tiers_reserve_is_kept_for_it_and_every_unit_goes_back_where_it_came_from() {
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    let parts = |b: &serde_json::Value| {
        (
            b["on_hand"].as_u64().unwrap(),
            b["pool"].as_u64().unwrap(),
            b["reserves"].clone(),
            b["allocated"].as_u64().unwrap(),
            b["backordered"].as_u64().unwrap(),
        )
    };
    let levels = || async { parts(&api.get("skus/JACKET-DOWN/stock").await.unwrap().body) };
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 10}))
        .await
        .unwrap();
    assert_eq!(parts(&r.body), (10, 10, json!({}), 0, 0), "{}", r.body);
    let r = api
        .put(
            "skus/JACKET-DOWN/reserves",
            &json!({"reserves": {"gold": 6}}),
        )
        .await
        .unwrap();
    assert_eq!(
        parts(&r.body),
        (10, 4, json!({"gold": 6}), 0, 0),
        "{}",
        r.body
    );
    assert_eq!(r.body["available"], 10);
    let seen_by_gold = || async {
        let r = api
            .prices_query("d-suzhou", &["JACKET-DOWN"], &[("include", "stock")])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["stock"]["JACKET-DOWN"].as_u64().unwrap()
    };
    assert_eq!(seen_by_gold().await, 10);

    // Junior d-shanghai: 5 find only the pool's 4; then 4 take them.
    let jacket = |event: &str, order: &str, q: u32| {
        docs::paid(event, order, "b1", &[("JACKET-DOWN", q, "1299.00")], now)
    };
    api.webhook("jd", "sh-outlet", &jacket("j1", "J1", 5))
        .await
        .unwrap();
    api.webhook("jd", "sh-outlet", &jacket("j2", "J2", 4))
        .await
        .unwrap();
    // Gold d-suzhou: 6 from its reserve.
    api.webhook("douyin", "sz-live", &jacket("g1", "G1", 6))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let line = |platform: &str, store: &str, order: &str| {
        let api = api.clone();
        let path = format!("orders/{platform}/{store}/{order}/reservations");
        async move { api.get(&path).await.unwrap().body["lines"]["1"].clone() }
    };
    assert_eq!(line("jd", "sh-outlet", "J1").await["status"], "backordered");
    assert_eq!(
        line("jd", "sh-outlet", "J2").await["draw"],
        json!({"pool": 4})
    );
    assert_eq!(
        line("douyin", "sz-live", "G1").await["draw"],
        json!({"pool": 0, "reserve": {"tier": "gold", "units": 6}})
    );
    assert_eq!(levels().await, (10, 0, json!({}), 10, 5));
    assert_eq!(seen_by_gold().await, 0);

    // Cancelled: gold's units go back to gold's reserve; the backorder closes.
    api.webhook("douyin", "sz-live", &docs::cancelled("g1-x", "G1", now))
        .await
        .unwrap();
    api.webhook("jd", "sh-outlet", &docs::cancelled("j1-x", "J1", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(levels().await, (10, 0, json!({"gold": 6}), 4, 0));
    assert_eq!(seen_by_gold().await, 6);

    // A count of 8: the pool is empty, so 2 come out of gold's reserve.
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 8}))
        .await
        .unwrap();
    assert_eq!(
        parts(&r.body),
        (8, 0, json!({"gold": 4}), 4, 0),
        "{}",
        r.body
    );
    // Below what orders hold: refused, nothing changed.
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 3}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (409, "below_allocated"), "{}", r.body);
    // Free units, as older integrations count: on hand is them plus the 4 held.
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"available": 5}))
        .await
        .unwrap();
    assert_eq!(
        parts(&r.body),
        (9, 1, json!({"gold": 4}), 4, 0),
        "{}",
        r.body
    );
    for (body, want) in [
        (
            json!({"on_hand": 1, "available": 1}),
            (422, "invalid_document"),
        ),
        (json!({}), (422, "invalid_document")),
        (json!({"on_hand": -1}), (422, "invalid_document")),
        (json!({"on_hand": 2.5}), (422, "invalid_document")),
    ] {
        let r = api.put("skus/JACKET-DOWN/stock", &body).await.unwrap();
        assert_eq!((r.status, r.code()), want, "{body}: {}", r.body);
    }

    // Bad plans: each named, nothing changed.
    let r = api
        .put(
            "skus/JACKET-DOWN/reserves",
            &json!({"reserves": {"platinum": 1, "gold": 2, "x#y": 1}}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_tier"), "{}", r.body);
    let named: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tier"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["platinum", "x#y"]);
    for (body, want) in [
        (
            json!({"reserves": {"gold": 6}}),
            (422, "reserves_exceed_stock"),
        ),
        (
            json!({"reserves": {"gold": 2_000_000_000u64}}),
            (422, "invalid_quantity"),
        ),
        (json!({"reserves": {"gold": -1}}), (422, "invalid_document")),
        (
            json!({"reserves": {"gold": 1.5}}),
            (422, "invalid_document"),
        ),
        (json!({"gold": 1}), (422, "invalid_document")),
    ] {
        let r = api.put("skus/JACKET-DOWN/reserves", &body).await.unwrap();
        assert_eq!((r.status, r.code()), want, "{body}: {}", r.body);
    }
    let r = api
        .put(
            "skus/NO-SUCH-SKU/reserves",
            &json!({"reserves": {"gold": 1}}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_sku"));
    assert_eq!(levels().await, (9, 1, json!({"gold": 4}), 4, 0));

    // A new plan: gold keeps none, senior 2; the pool takes the rest.
    let r = api
        .put(
            "skus/JACKET-DOWN/reserves",
            &json!({"reserves": {"gold": 0, "senior": 2}}),
        )
        .await
        .unwrap();
    assert_eq!(
        parts(&r.body),
        (9, 3, json!({"senior": 2}), 4, 0),
        "{}",
        r.body
    );
    assert_eq!(levels().await, (9, 3, json!({"senior": 2}), 4, 0));
    stack.stop().await;
}

/// Items written before stock was kept by tier: a SKU's single
/// `available` count, and an order's lines without a draw. The first read
/// converts the SKU (all of it on hand and in the pool); the old lines
/// come back as a restock, and their old backorders were never counted.
#[tokio::test(flavor = "multi_thread")]
async fn stock_kept_before_tiers_is_converted_and_released_as_a_restock() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    let db = &stack.clients.dynamodb;
    let put = |item: Vec<(&str, A)>| {
        db.put_item()
            .table_name(stack.table_name())
            .set_item(Some(
                item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .send()
    };
    let s = |v: &str| A::S(v.into());
    put(vec![
        ("PK", s("SKU#JACKET-DOWN")),
        ("SK", s("STOCK")),
        ("entity_type", s("stock")),
        ("sku", s("JACKET-DOWN")),
        ("available", A::N("7".into())),
    ])
    .await
    .unwrap();
    let record = json!({
        "paid_by": "old-p", "cancelled": false, "releases": [],
        "lines": {
            "1": {"sku": "JACKET-DOWN", "quantity": 3, "reserved": 3, "status": "reserved",
                  "unit_price": "1299.00", "entitled_unit_price": null},
            "2": {"sku": "JACKET-DOWN", "quantity": 2, "reserved": 0, "status": "backordered",
                  "unit_price": "1299.00", "entitled_unit_price": null}
        }
    });
    put(vec![
        ("PK", s("ORDER#jd#sh-outlet#OLD")),
        ("SK", s("STOCK")),
        ("entity_type", s("order_stock")),
        ("order", s("jd/sh-outlet/OLD")),
        ("version", A::N("1".into())),
        ("record", s(&record.to_string())),
    ])
    .await
    .unwrap();

    // A new order converts the item as it reads it, then draws on it.
    let now = Utc::now();
    let paid = docs::paid("new-p", "NEW", "b1", &[("JACKET-DOWN", 2, "1299.00")], now);
    api.webhook("jd", "sh-outlet", &paid).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let levels = || async {
        let b = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
        (
            b["on_hand"].clone(),
            b["pool"].clone(),
            b["allocated"].clone(),
            b["backordered"].clone(),
        )
    };
    assert_eq!(levels().await, (json!(7), json!(5), json!(2), json!(0)));

    // The old order's cancellation: its 3 units come back on hand.
    api.webhook("jd", "sh-outlet", &docs::cancelled("old-x", "OLD", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(levels().await, (json!(10), json!(8), json!(2), json!(0)));
    // A count of an old item converts it first: 9 become 12.
    put(vec![
        ("PK", s("SKU#HOODIE-GREY")),
        ("SK", s("STOCK")),
        ("entity_type", s("stock")),
        ("sku", s("HOODIE-GREY")),
        ("available", A::N("9".into())),
    ])
    .await
    .unwrap();
    let r = api
        .put("skus/HOODIE-GREY/stock", &json!({"on_hand": 12}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, &r.body["on_hand"], &r.body["pool"]),
        (200, &json!(12), &json!(12)),
        "{}",
        r.body
    );
    let old = api
        .get("orders/jd/sh-outlet/OLD/reservations")
        .await
        .unwrap()
        .body;
    assert_eq!(
        (&old["lines"]["1"]["status"], &old["lines"]["2"]["status"]),
        (&json!("released"), &json!("cancelled"))
    );
    stack.stop().await;
}

/// Backorders filled on restock by priority, then age, each line whole or
/// not at all; a rerun of the fill changes nothing; a cancellation's units
/// fill the next in line; a filled order joins the shipping queue.
#[tokio::test(flavor = "multi_thread")]
async fn restocks_and_releases_fill_backorders_by_priority_then_age() {
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 2}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let at = |m: i64| t0 + chrono::Duration::minutes(m);
    let jackets = |event: &str, order: &str, q: u32, m: i64| {
        docs::paid(event, order, "b1", &[("JACKET-DOWN", q, "1299.00")], at(m))
    };
    let sends = [
        ("jd", "sh-outlet", jackets("j0", "J0", 2, 0)),
        // Backordered, in this order: junior 1, gold 1, junior 3, junior 1.
        ("jd", "sh-outlet", jackets("j1", "J1", 1, 1)),
        ("douyin", "sz-live", jackets("g1", "G1", 1, 2)),
        ("jd", "sh-outlet", jackets("j2", "J2", 3, 3)),
        ("jd", "sh-outlet", jackets("j3", "J3", 1, 4)),
    ];
    for (platform, store, doc) in &sends {
        assert_eq!(api.webhook(platform, store, doc).await.unwrap().status, 202);
    }
    stack.wait_idle(IDLE).await.unwrap();
    let status = |platform: &'static str, store: &'static str, order: &'static str| {
        let api = api.clone();
        async move {
            api.get(&format!("orders/{platform}/{store}/{order}/reservations"))
                .await
                .unwrap()
                .body["lines"]["1"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let statuses = || async {
        [
            status("douyin", "sz-live", "G1").await,
            status("jd", "sh-outlet", "J1").await,
            status("jd", "sh-outlet", "J2").await,
            status("jd", "sh-outlet", "J3").await,
        ]
    };
    assert_eq!(statuses().await, ["backordered"; 4]);
    let backordered = || async {
        api.get("skus/JACKET-DOWN/stock").await.unwrap().body["backordered"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(backordered().await, 6);

    // 2 more: Gold first, then the oldest junior; J2's 3 do not fit whole,
    // so it keeps its place and J3 waits behind it.
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 4}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        statuses().await,
        ["reserved", "reserved", "backordered", "backordered"]
    );
    assert_eq!(backordered().await, 4);

    // The same fill again, as a redelivery would: nothing changes.
    send_raw(
        &stack,
        "StockEventsQueue",
        &tier_messages::Message::BackorderFillV1(tier_messages::BackorderFill {
            sku: tier_domain::ids::Sku::parse("JACKET-DOWN").unwrap(),
            after: None,
        })
        .to_json(),
    )
    .await;
    stack.wait_idle(IDLE).await.unwrap();
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(
        (
            &s["on_hand"],
            &s["allocated"],
            &s["backordered"],
            &s["pool"]
        ),
        (&json!(4), &json!(4), &json!(4), &json!(0))
    );

    // J0's cancellation frees 2: J2 still needs 3, so J3 (1) is filled.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::cancelled("j0-x", "J0", Utc::now()),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        statuses().await,
        ["reserved", "reserved", "backordered", "reserved"]
    );
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(
        (&s["allocated"], &s["backordered"], &s["pool"]),
        (&json!(3), &json!(3), &json!(1))
    );
    stack.stop().await;
}

/// A SKU whose first stock item its backorders made (no count yet) takes a
/// count, and the fill then reserves what was waiting.
#[tokio::test(flavor = "multi_thread")]
async fn a_sku_first_seen_in_a_backorder_takes_a_count_and_fills_it() {
    use tier_domain::ids::*;
    use tier_domain::money::Money;
    use tier_domain::order::OrderLine;
    use tier_store::catalog::Allocation;

    let (stack, _api) = spawn_stack().await;
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let now = Utc::now();
    let sku = Sku::parse("NEVER-STOCKED").unwrap();
    let price = Money::parse("9.00").unwrap();
    let line = OrderLine {
        line_id: LineId::parse("1").unwrap(),
        sku: sku.clone(),
        quantity: 2,
        unit_price: price,
        amount: price.times(2),
        entitled_unit_price: None,
        floor_unit_price: None,
    };
    let order = OrderRef {
        platform: Platform::parse("jd").unwrap(),
        store: StoreId::parse("sh-outlet").unwrap(),
        order_id: OrderId::parse("FIRST").unwrap(),
    };
    let payer = tier_domain::stock::Payer {
        tier: None,
        priority: 0,
        paid_at: now,
    };
    let day = tier_domain::calendar::BrandCalendar::parse(tier_domain::calendar::DEFAULT_TIMEZONE)
        .unwrap()
        .day_of(now);
    let outcome = table
        .allocate_payment(
            &order,
            &EventId::parse("first").unwrap(),
            payer,
            day,
            &[line],
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Allocation::Reserved {
            backordered: vec![sku.clone()]
        }
    );
    let s = table.stock(&sku).await.unwrap().unwrap();
    assert_eq!((s.on_hand, s.backordered), (0, 2));

    let s = table.set_stock(&sku, 5, &[], now).await.unwrap();
    assert_eq!((s.on_hand, s.pool), (5, 5));
    let page = table.fill_backorders(&sku, None, 10).await.unwrap();
    assert_eq!(page.filled, vec![order.clone()]);
    let s = table.stock(&sku).await.unwrap().unwrap();
    assert_eq!((s.pool, s.allocated, s.backordered), (3, 2, 0));
    let again = table.fill_backorders(&sku, None, 10).await.unwrap();
    assert!(again.filled.is_empty(), "filled once");
    stack.stop().await;
}

/// The lines a refused sync names.
fn refused_lines(r: &Reply) -> Vec<u64> {
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_stock_sync"),
        "{}",
        r.body
    );
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect()
}

/// The ERP's stock sync: a snapshot in JSON, deltas in CSV applied once
/// per sync id, and a file with bad lines refused whole, each named.
#[tokio::test(flavor = "multi_thread")]
async fn an_erp_sync_applies_whole_files_and_deltas_once() {
    use serde_json::json;
    let (stack, api) = clothing_stack().await;
    let on_hand = |sku: &'static str| {
        let api = api.clone();
        async move {
            api.get(&format!("skus/{sku}/stock")).await.unwrap().body["on_hand"]
                .as_u64()
                .unwrap()
        }
    };
    let r = api
        .post(
            "stock:sync",
            &json!({"mode": "snapshot", "sync_id": "s1", "lines": [
                {"sku": "TEE-WHITE", "on_hand": 100}, {"sku": "HOODIE-GREY", "on_hand": 50}
            ]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, &r.body["changed"]),
        (200, &json!(2)),
        "{}",
        r.body
    );
    assert_eq!(
        (on_hand("TEE-WHITE").await, on_hand("HOODIE-GREY").await),
        (100, 50)
    );

    let csv = |query: &str, body: &str| {
        let api = api.clone();
        let (query, body) = (query.to_owned(), body.to_owned());
        async move {
            api.post_raw(
                &format!("/v1/admin/stock:sync?{query}"),
                &[
                    ("x-admin-key", api.admin_key.clone()),
                    ("content-type", "text/csv".into()),
                ],
                body.into_bytes(),
            )
            .await
            .unwrap()
            .0
        }
    };
    let deltas = "sku,delta\nTEE-WHITE,-10\nJACKET-DOWN,5\n";
    let r = csv("mode=delta&sync_id=d1", deltas).await;
    assert_eq!(
        (r.status, &r.body["changed"]),
        (200, &json!(2)),
        "{}",
        r.body
    );
    assert_eq!(
        (on_hand("TEE-WHITE").await, on_hand("JACKET-DOWN").await),
        (90, 45)
    );
    // The ERP sends the same file again: nothing moves.
    let r = csv("mode=delta&sync_id=d1", deltas).await;
    assert_eq!(
        (r.status, &r.body["already_applied"]),
        (200, &json!(2)),
        "{}",
        r.body
    );
    assert_eq!(
        (on_hand("TEE-WHITE").await, on_hand("JACKET-DOWN").await),
        (90, 45)
    );

    // Bad lines, each named; the good ones are not applied either.
    let now = Utc::now();
    let paid = docs::paid("p1", "O1", "b1", &[("TEE-WHITE", 5, "199.00")], now);
    api.webhook("jd", "sh-outlet", &paid).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let r = csv(
        "mode=delta&sync_id=d2",
        "sku,delta\nHOODIE-GREY,1\nNO-SUCH-SKU,1\nTEE-WHITE,-88\nJACKET-DOWN,x\n",
    )
    .await;
    let lines = refused_lines(&r);
    assert_eq!(lines, [5], "parsing stops the file before the book is read");
    let r = csv(
        "mode=delta&sync_id=d2",
        "sku,delta\nHOODIE-GREY,1\nNO-SUCH-SKU,1\nTEE-WHITE,-88\n",
    )
    .await;
    let lines = refused_lines(&r);
    assert_eq!(lines, [3, 4], "an unknown SKU; below the 5 an order holds");
    assert_eq!(on_hand("HOODIE-GREY").await, 50, "nothing changed");
    for (query, body) in [
        ("mode=delta", deltas),
        ("mode=sometimes&sync_id=x", deltas),
        ("mode=snapshot&sync_id=x", "sku,delta\nTEE-WHITE,1\n"),
    ] {
        let r = csv(query, body).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_stock_sync"),
            "{query}: {}",
            r.body
        );
    }
    let r = api
        .post("stock:sync", &json!({"mode": "delta", "lines": []}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_stock_sync"),
        "{}",
        r.body
    );
    stack.stop().await;
}

#[path = "stock/plans.rs"]
mod plans;

#[path = "stock/buckets.rs"]
mod buckets;
