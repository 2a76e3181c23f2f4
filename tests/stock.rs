//! Stock allocation through the real queues: never oversold, backorders
//! recorded, releases applied once.

use chrono::Utc;
use system_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn stock_never_goes_below_zero_and_what_cannot_be_filled_is_backordered() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // 15 orders of 3 jackets against 40 in stock, all at once.
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
            .set_stock(&sku(i), if i == 7 { 0 } else { 2 }, now)
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
    assert_eq!(
        table
            .allocate_payment(&order, &event, &lines)
            .await
            .unwrap(),
        Allocation::Reserved {
            backordered: vec![sku(7)]
        }
    );
    assert_eq!(
        table
            .allocate_payment(&order, &event, &lines)
            .await
            .unwrap(),
        Allocation::Duplicate
    );
    let (record, _) = table.order_stock(&order).await.unwrap();
    assert_eq!(
        record.lines.values().filter(|l| l.reserved == 1).count(),
        149
    );
    assert_eq!(table.stock(&sku(0)).await.unwrap(), Some(1));
    assert_eq!(table.stock(&sku(149)).await.unwrap(), Some(1));
    assert_eq!(table.stock(&sku(7)).await.unwrap(), Some(0));
    assert_eq!(table.cancel_order_stock(&order).await.unwrap(), 149);
    assert_eq!(table.cancel_order_stock(&order).await.unwrap(), 0);
    assert_eq!(table.stock(&sku(149)).await.unwrap(), Some(2));
    stack.stop().await;
}
