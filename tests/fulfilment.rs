//! The shipping queue: orders whose stock is taken, by priority (the tier's
//! priority plus urgency, fixed when paid) then age, paged; shipments
//! recorded once, taking the units off hand; orders that are backordered,
//! cancelled or shipped are not in it; and a batch of the stock queue is
//! served in the same order.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use system_tests::*;
use tier_messages::Message;

/// The queue's orders, first to ship first, and the next cursor.
async fn queue(wms: &ApiClient, query: &str) -> (Vec<String>, Value) {
    let r = wms
        .read(&format!("/v1/fulfilment/orders?status=ready{query}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let ids = r.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, r.body["next_cursor"].clone())
}

async fn ship(wms: &ApiClient, order: &str, body: &str) -> Reply {
    let key = wms.api_key.clone().unwrap();
    wms.post_raw(
        &format!("/v1/fulfilment/orders/{order}:shipped"),
        &[
            ("authorization", format!("Bearer {key}")),
            ("content-type", "application/json".into()),
        ],
        body.as_bytes().to_vec(),
    )
    .await
    .unwrap()
    .0
}

fn jackets(event: &str, order: &str, q: u32, at: chrono::DateTime<Utc>) -> Value {
    docs::paid(event, order, "b1", &[("JACKET-DOWN", q, "1299.00")], at)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_ships_by_priority_then_age_and_each_shipment_once() {
    let (stack, api) = clothing_stack().await;
    // Hoodies are urgent by the brand's rule; d-suzhou is Gold.
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["fulfilment"] = json!({"urgent_when": {"skus": ["HOODIE-GREY"]}});
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    let key = api
        .create_api_key("wms", json!({"type": "fulfilment"}))
        .await
        .unwrap();
    let mut wms = api.clone();
    wms.api_key = Some(key);

    let t0 = Utc::now() - Duration::minutes(10);
    let at = |m: i64| t0 + Duration::minutes(m);
    let mut urgent = jackets("j2", "J2", 1, at(2));
    urgent["urgent"] = json!(true);
    let sends = [
        ("jd", "sh-outlet", jackets("j1", "J1", 1, at(0))),
        ("douyin", "sz-live", jackets("g1", "G1", 2, at(1))),
        ("jd", "sh-outlet", urgent),
        (
            "jd",
            "sh-outlet",
            docs::paid("j3", "J3", "b3", &[("HOODIE-GREY", 1, "459.00")], at(3)),
        ),
        // More than there is: backordered, so not ready.
        ("jd", "sh-outlet", jackets("j4", "J4", 999, at(4))),
    ];
    for (platform, store, doc) in &sends {
        let r = api.webhook(platform, store, doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();

    // Gold (3); then the urgent junior orders (0 + 1), older first; then J1.
    let (first, cursor) = queue(&wms, "&limit=2").await;
    assert_eq!(first, ["G1", "J2"]);
    let cursor = cursor.as_str().expect("a next page").to_owned();
    let (rest, end) = queue(&wms, &format!("&limit=2&cursor={cursor}")).await;
    assert_eq!(rest, ["J3", "J1"]);
    assert!(end.is_null(), "{end}");
    let page = wms
        .read("/v1/fulfilment/orders?status=ready&limit=1")
        .await
        .unwrap();
    let g1 = &page.body["orders"][0];
    assert_eq!(
        (&g1["priority"], &g1["tier"], &g1["lines"]),
        (
            &json!(3),
            &json!("gold"),
            &json!([{"line_id": "1", "sku": "JACKET-DOWN", "quantity": 2}])
        )
    );

    // Shipped once: the units leave on hand and what is allocated.
    let before = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    let r = ship(&wms, "douyin/sz-live/G1", r#"{"reference": "SF1001"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["status"], &r.body["reference"]),
        (&json!("shipped"), &json!("SF1001"))
    );
    let again = ship(&wms, "douyin/sz-live/G1", "").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body["shipped_at"], r.body["shipped_at"],
        "the first shipment stands"
    );
    assert_eq!(again.body["reference"], "SF1001");
    let after = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    let n = |b: &Value, f: &str| b[f].as_i64().unwrap();
    assert_eq!(n(&after, "on_hand"), n(&before, "on_hand") - 2);
    assert_eq!(n(&after, "allocated"), n(&before, "allocated") - 2);
    assert_eq!(n(&after, "pool"), n(&before, "pool"));

    // A cancelled order leaves the queue, and cannot ship.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::cancelled("j1-x", "J1", Utc::now()),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(queue(&wms, "").await.0, ["J2", "J3"]);
    for (order, want) in [
        ("jd/sh-outlet/J1", (409, "order_cancelled")),
        ("jd/sh-outlet/J4", (409, "order_not_ready")),
        ("jd/sh-outlet/NO-SUCH", (404, "order_not_found")),
    ] {
        let r = ship(&wms, order, "").await;
        assert_eq!((r.status, r.code()), want, "{order}: {}", r.body);
    }
    let r = ship(&wms, "jd/sh-outlet/J2", r#"{"reference": ""}"#).await;
    assert_eq!((r.status, r.code()), (422, "invalid_reference"));
    let r = ship(&wms, "jd/sh-outlet/J2", r#"{"tracking": "x"}"#).await;
    assert_eq!((r.status, r.code()), (422, "invalid_document"));

    // Bad queries; keys of other scopes.
    for (query, code) in [
        ("", "invalid_status"),
        ("?status=open", "invalid_status"),
        ("?status=ready&limit=0", "invalid_limit"),
        ("?status=ready&limit=101", "invalid_limit"),
        ("?status=ready&cursor=zz", "invalid_cursor"),
        ("?status=ready&cursor=6869", "invalid_cursor"),
    ] {
        let r = wms
            .read(&format!("/v1/fulfilment/orders{query}"))
            .await
            .unwrap();
        assert_eq!((r.status, r.code()), (400, code), "{query}: {}", r.body);
    }
    let r = api
        .read("/v1/fulfilment/orders?status=ready")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (403, "forbidden_scope"),
        "the ERP key"
    );
    let mut anonymous = api.clone();
    anonymous.api_key = None;
    let r = anonymous
        .read("/v1/fulfilment/orders?status=ready")
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, "missing_api_key"));
    let r = wms
        .prices_query("d-shanghai", &["TEE-WHITE"], &[])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (403, "forbidden_distributor"),
        "no prices"
    );
    stack.stop().await;
}

/// A batch as the queue poller hands it over: a junior order first, a Gold
/// one after it, for the last jacket. The batch is served by priority, so
/// the Gold order gets it.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_served_by_priority_when_stock_runs_short() {
    let (stack, api) = clothing_stack().await;
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let handler = stack.stock_allocation().unwrap();
    let now = Utc::now();
    let paid = |id: &str, tier: &str, priority: u16| {
        let Message::OrderEventV1(mut e) =
            paid_event(id, id, "d-shanghai", "JACKET-DOWN", 1, "1299.00")
        else {
            unreachable!("an order event")
        };
        e.occurred_at = now;
        if let tier_domain::order::OrderEventKind::Paid {
            tier: t,
            priority: p,
            ..
        } = &mut e.kind
        {
            *t = Some(tier_domain::ids::TierId::parse(tier).unwrap());
            *p = priority;
        }
        Message::OrderEventV1(e)
    };
    let batch =
        local_stack::poller::batch_of(&[paid("JUNIOR", "junior", 0), paid("GOLD", "gold", 3)]);
    let response = {
        let _turn = stack.turns.lock().await;
        handler.handle_batch(batch).await
    };
    assert!(response.batch_item_failures.is_empty());
    let status = |order: &str| {
        let api = api.clone();
        let path = format!("orders/jd/sh-outlet/{order}/reservations");
        async move { api.get(&path).await.unwrap().body["lines"]["1"]["status"].clone() }
    };
    assert_eq!(status("GOLD").await, "reserved");
    assert_eq!(status("JUNIOR").await, "backordered");
    stack.stop().await;
}

/// The platform's own shipped notice ships the order as the WMS's call
/// does: its units leave on hand once, however many notices come. One for
/// an order the book cannot ship is dead-lettered with its reason for an
/// operator; a malformed one is refused at the door.
#[tokio::test(flavor = "multi_thread")]
async fn a_platforms_shipped_notice_ships_the_order_once() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    for doc in [
        jackets("p1", "O1", 2, now),
        jackets("p2", "O2", 1, now),
        docs::cancelled("c2", "O2", now),
    ] {
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    let shipped = |event: &str, order: &str, reference: Option<&str>| {
        let mut doc = json!({"event_id": event, "type": "order.shipped",
                             "occurred_at": Utc::now(), "order_id": order});
        if let Some(r) = reference {
            doc["shipment_reference"] = json!(r);
        }
        doc
    };
    for (event, reference) in [("s1", Some("SF1234567890")), ("s1b", None)] {
        let r = api
            .webhook("jd", "sh-outlet", &shipped(event, "O1", reference))
            .await
            .unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    let r = api
        .get("orders/jd/sh-outlet/O1/reservations")
        .await
        .unwrap();
    assert_eq!(r.body["lines"]["1"]["status"], "shipped", "{}", r.body);
    assert_eq!(r.body["lines"]["1"]["shipped"], 2, "{}", r.body);
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(
        (&s["on_hand"], &s["allocated"]),
        (&json!(38), &json!(0)),
        "{s}"
    );
    // Sales do not move with a shipment.
    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["sales"]["lifetime"]),
        d("2598")
    );

    // Shipped on the platform, cancelled in the book: an operator's to see.
    let r = api
        .webhook("jd", "sh-outlet", &shipped("s2", "O2", None))
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    let parked = dead_letters(
        &stack,
        "StockEventsDLQ",
        1,
        std::time::Duration::from_secs(5),
    )
    .await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(
        parked[0].code.as_deref(),
        Some("order_cancelled"),
        "{parked:?}"
    );

    // A reference only on a shipment, and a sane one.
    let mut paid_with_reference = jackets("p3", "O3", 1, now);
    paid_with_reference["shipment_reference"] = json!("SF1");
    for doc in [paid_with_reference, shipped("s3", "O1", Some(""))] {
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert!(r.status == 400 || r.status == 422, "{}", r.body);
        assert!(!r.code().is_empty(), "{}", r.body);
    }
    stack.stop().await;
}
