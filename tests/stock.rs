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
            let doc = docs::paid(&format!("e{i}"), &format!("O{i}"), &format!("b{i}"), &[("JACKET-DOWN", 3, "1299.00")], now);
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
        let r = api.get(&format!("orders/jd/sh-outlet/O{i}/reservations")).await.unwrap();
        let line = &r.body["lines"]["1"];
        match line["status"].as_str().unwrap() {
            "reserved" => reserved += line["reserved"].as_i64().unwrap(),
            "backordered" => backordered += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(reserved + available, 40, "every unit is either reserved or available");
    assert_eq!(backordered, 2);
    stack.stop().await;
}

/// Lambda runs many batches at once; the local poller runs one. So the
/// conditional decrement is also raced directly: 30 reservations of 1 unit
/// at the same moment against 10 in stock.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reservations_never_oversell() {
    use tier_domain::ids::*;
    use tier_domain::money::Money;
    use tier_domain::order::OrderLine;
    use tier_store::catalog::Reservation;

    let (stack, api) = clothing_stack().await;
    api.put("skus/HOODIE-GREY/stock", &serde_json::json!({"available": 10})).await.unwrap();
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let table = table.clone();
        tasks.spawn(async move {
            let order = OrderRef { platform: Platform::parse("jd").unwrap(), store: StoreId::parse("sh-outlet").unwrap(), order_id: OrderId::parse(&format!("R{i}")).unwrap() };
            let line = OrderLine {
                line_id: LineId::parse("1").unwrap(),
                sku: Sku::parse("HOODIE-GREY").unwrap(),
                quantity: 1,
                unit_price: Money::cents(45900),
                amount: Money::cents(45900),
                entitled_unit_price: None,
            };
            table.reserve_line(&order, &line, &EventId::parse(&format!("ev{i}")).unwrap()).await.unwrap()
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        outcomes.push(r.unwrap());
    }
    let reserved = outcomes.iter().filter(|o| **o == Reservation::Reserved).count();
    let backordered = outcomes.iter().filter(|o| **o == Reservation::Backordered).count();
    assert_eq!((reserved, backordered), (10, 20), "{outcomes:?}");
    assert_eq!(stock(&api, "HOODIE-GREY").await, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_and_returns_release_stock_once() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook("jd", "sh-outlet", &docs::paid("p1", "O1", "b1", &[("TEE-WHITE", 5, "199.00")], now)).await.unwrap();
    api.webhook("jd", "sh-outlet", &docs::paid("p2", "O2", "b2", &[("TEE-WHITE", 10, "199.00"), ("HOODIE-GREY", 1, "459.00")], now)).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4985);

    api.webhook("jd", "sh-outlet", &docs::cancelled("c1", "O1", now)).await.unwrap();
    // The platform sends a second cancellation event for the same order.
    api.webhook("jd", "sh-outlet", &docs::cancelled("c1-again", "O1", now)).await.unwrap();
    // 4 of the 10 T-shirts come back with a refund; the refund is retried.
    let refund = docs::refunded("r2", "O2", "RF2", "796.00", &[("1", 4)], now);
    api.webhook("jd", "sh-outlet", &refund).await.unwrap();
    api.webhook("jd", "sh-outlet", &refund).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4994);
    assert_eq!(stock(&api, "HOODIE-GREY").await, 1999);
    let o1 = api.get("orders/jd/sh-outlet/O1/reservations").await.unwrap();
    assert_eq!(o1.body["lines"]["1"]["status"], "released");

    // A cancellation that overtakes its payment: the late payment reserves nothing.
    api.webhook("jd", "sh-outlet", &docs::cancelled("c3", "O3", now)).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    api.webhook("jd", "sh-outlet", &docs::paid("p3", "O3", "b3", &[("TEE-WHITE", 7, "199.00")], now)).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock(&api, "TEE-WHITE").await, 4994);
    stack.stop().await;
}
