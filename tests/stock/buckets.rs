//! A hot SKU's pool spread over buckets, through the real queues: payments
//! draw on their own bucket and then on the others, so the SKU sells
//! exactly what it has and no line is backordered while any cell could
//! fill it; every unit goes back to, or leaves, the cell it was taken from;
//! counts spread the pool evenly again; and bad settings are refused.

use chrono::Utc;
use serde_json::{Value, json};
use system_tests::*;

async fn stock_of(api: &ApiClient, sku: &str) -> Value {
    let r = api.get(&format!("skus/{sku}/stock")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn cells(s: &Value) -> Vec<Value> {
    s["cells"].as_array().cloned().unwrap_or_default()
}

fn sum(cells: &[Value], part: &str) -> u64 {
    cells.iter().map(|c| c[part].as_u64().unwrap()).sum()
}

/// Every cell's parts sum to its on hand, and the home cell's share (the
/// totals less the buckets') is whole.
fn assert_cells_consistent(s: &Value) {
    let cells = cells(s);
    for c in &cells {
        assert_eq!(
            c["pool"].as_u64().unwrap() + c["allocated"].as_u64().unwrap(),
            c["on_hand"].as_u64().unwrap(),
            "{s}"
        );
    }
    for part in ["on_hand", "pool", "allocated", "backordered"] {
        assert!(
            sum(&cells, part) <= s[part].as_u64().unwrap(),
            "{part}: {s}"
        );
    }
    let reserves: u64 = s["reserves"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        s["pool"].as_u64().unwrap() + reserves + s["allocated"].as_u64().unwrap(),
        s["on_hand"].as_u64().unwrap(),
        "{s}"
    );
}

/// The pools of buckets `0..lanes`, which a spread leaves within one unit
/// of each other.
fn pools(s: &Value, lanes: u64) -> Vec<u64> {
    (0..lanes)
        .map(|b| {
            cells(s)
                .iter()
                .find(|c| c["bucket"] == b)
                .map_or(0, |c| c["pool"].as_u64().unwrap())
        })
        .collect()
}

fn even(pools: &[u64]) -> bool {
    pools.iter().max().unwrap() - pools.iter().min().unwrap() <= 1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_sku_spread_over_buckets_sells_exactly_its_stock_with_no_false_sold_out() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Refused whole: too many buckets, not a count, not in the book.
    for (path, body, status, code) in [
        (
            "skus/JACKET-DOWN/buckets",
            json!({"buckets": 65}),
            422,
            "invalid_buckets",
        ),
        (
            "skus/JACKET-DOWN/buckets",
            json!({"buckets": -1}),
            422,
            "invalid_document",
        ),
        (
            "skus/JACKET-DOWN/buckets",
            json!({"buckets": 1.5}),
            422,
            "invalid_document",
        ),
        (
            "skus/JACKET-DOWN/buckets",
            json!({"lanes": 4}),
            422,
            "invalid_document",
        ),
        (
            "skus/NO-SUCH-SKU/buckets",
            json!({"buckets": 4}),
            422,
            "unknown_sku",
        ),
    ] {
        let r = api.put(path, &body).await.unwrap();
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        stock_of(&api, "JACKET-DOWN").await["buckets"],
        0,
        "nothing changed"
    );

    let r = api
        .put("skus/JACKET-DOWN/buckets", &json!({"buckets": 4}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        (&s["buckets"], &s["on_hand"], &s["pool"]),
        (&json!(4), &json!(40), &json!(40)),
        "{s}"
    );
    assert_eq!(pools(&s, 4), vec![10, 10, 10, 10], "{s}");
    assert_cells_consistent(&s);

    // 15 orders of 3 against 40: each bucket's 10 fill three orders and
    // leave one unit, so the fourth order of a bucket draws across the
    // others. Exactly 13 orders fit, as in one item.
    super::fifteen_orders_of_three_jackets(&stack, &api, now).await;
    let mut reserved = Vec::new();
    let mut backordered = Vec::new();
    let mut from_buckets = std::collections::BTreeMap::<u64, u64>::new();
    for i in 0..15 {
        let r = api
            .get(&format!("orders/jd/sh-outlet/O{i}/reservations"))
            .await
            .unwrap();
        let line = &r.body["lines"]["1"];
        match line["status"].as_str().unwrap() {
            "reserved" => {
                let draw = &line["draw"];
                let mut units = 0;
                for (b, u) in draw["buckets"].as_object().unwrap() {
                    *from_buckets.entry(b.parse().unwrap()).or_default() += u.as_u64().unwrap();
                    units += u.as_u64().unwrap();
                }
                assert_eq!(units, 3, "every unit came from a bucket: {line}");
                reserved.push(i);
            }
            "backordered" => backordered.push(i),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((reserved.len(), backordered.len()), (13, 2));
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        (
            &s["on_hand"],
            &s["pool"],
            &s["allocated"],
            &s["backordered"]
        ),
        (&json!(40), &json!(1), &json!(39), &json!(6)),
        "{s}"
    );
    assert_cells_consistent(&s);
    for c in cells(&s) {
        let b = c["bucket"].as_u64().unwrap();
        assert_eq!(
            c["allocated"].as_u64().unwrap(),
            from_buckets.get(&b).copied().unwrap_or(0),
            "{s}"
        );
    }
    assert_eq!(
        sum(&cells(&s), "backordered"),
        6,
        "counted in the orders' own buckets: {s}"
    );

    // A cancellation gives each unit back to its bucket, and the three
    // freed fill one of the two backorders: the units, again from the
    // cells, and its backorder closed in its own bucket.
    let gone = reserved[0];
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::cancelled("c1", &format!("O{gone}"), now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        (&s["pool"], &s["allocated"], &s["backordered"]),
        (&json!(1), &json!(39), &json!(3)),
        "{s}"
    );
    assert_eq!(sum(&cells(&s), "backordered"), 3, "{s}");
    assert_cells_consistent(&s);

    // Shipped units leave the cells they were allocated in.
    let shipping = reserved[1];
    let r = api
        .get(&format!("orders/jd/sh-outlet/O{shipping}/reservations"))
        .await
        .unwrap();
    let drawn = r.body["lines"]["1"]["draw"]["buckets"].clone();
    let before = stock_of(&api, "JACKET-DOWN").await;
    let doc = json!({"event_id": "s1", "type": "order.shipped",
                     "occurred_at": Utc::now(), "order_id": format!("O{shipping}")});
    assert_eq!(
        api.webhook("jd", "sh-outlet", &doc).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        (&s["on_hand"], &s["allocated"]),
        (&json!(37), &json!(36)),
        "{s}"
    );
    for (b, u) in drawn.as_object().unwrap() {
        let b: u64 = b.parse().unwrap();
        let cell = |s: &Value| cells(s).into_iter().find(|c| c["bucket"] == b).unwrap();
        assert_eq!(
            cell(&before)["on_hand"].as_u64().unwrap() - cell(&s)["on_hand"].as_u64().unwrap(),
            u.as_u64().unwrap(),
            "{s}"
        );
    }
    assert_cells_consistent(&s);

    // A count spreads the pool evenly again, none of it at home.
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 60}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(even(&pools(&r.body, 4)), "{}", r.body);
    assert_eq!(
        sum(&cells(&r.body), "pool"),
        r.body["pool"].as_u64().unwrap(),
        "{}",
        r.body
    );
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        (&s["on_hand"], &s["backordered"]),
        (&json!(60), &json!(0)),
        "the restock filled the last backorder: {s}"
    );
    assert_eq!(sum(&cells(&s), "pool"), s["pool"].as_u64().unwrap(), "{s}");
    assert_cells_consistent(&s);

    // Back to one item: the pool goes home; what orders hold stays in its
    // bucket until it ships or comes back, and comes back there.
    let r = api
        .put("skus/JACKET-DOWN/buckets", &json!({"buckets": 0}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(s["buckets"], 0, "{s}");
    assert_eq!(sum(&cells(&s), "pool"), 0, "{s}");
    assert_eq!(
        sum(&cells(&s), "allocated"),
        s["allocated"].as_u64().unwrap(),
        "{s}"
    );
    assert_cells_consistent(&s);
    let back = reserved[2];
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::cancelled("c2", &format!("O{back}"), now),
    )
    .await
    .unwrap();
    let doc = docs::paid("e99", "O99", "b99", &[("JACKET-DOWN", 2, "1299.00")], now);
    api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_cells_consistent(&s);
    assert_eq!(
        sum(&cells(&s), "pool"),
        3,
        "the cancelled units went back to their buckets: {s}"
    );
    let r = api
        .get("orders/jd/sh-outlet/O99/reservations")
        .await
        .unwrap();
    assert_eq!(r.body["lines"]["1"]["status"], "reserved", "{}", r.body);
    stack.stop().await;
}

/// A senior tier's reserve stays in the home item; its orders draw on it
/// there, and the pool the plan leaves is spread over the buckets.
#[tokio::test(flavor = "multi_thread")]
async fn reserves_stay_home_and_the_pool_they_leave_is_spread() {
    let (stack, api) = clothing_stack().await;
    place_locked(&stack, &api, "d-suzhou", "intermediate").await;
    let now = Utc::now();
    let r = api
        .put("skus/HOODIE-GREY/buckets", &json!({"buckets": 3}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            "skus/HOODIE-GREY/reserves",
            &json!({"reserves": {"intermediate": 500}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = stock_of(&api, "HOODIE-GREY").await;
    assert_eq!(
        (&s["pool"], &s["reserves"]["intermediate"]),
        (&json!(1500), &json!(500)),
        "{s}"
    );
    assert_eq!(pools(&s, 3), vec![500, 500, 500], "{s}");
    // d-suzhou is intermediate: its order takes its reserve, at home.
    let doc = docs::paid("z1", "Z1", "bz", &[("HOODIE-GREY", 4, "459.00")], now);
    assert_eq!(
        api.webhook("douyin", "sz-live", &doc).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    let r = api
        .get("orders/douyin/sz-live/Z1/reservations")
        .await
        .unwrap();
    assert_eq!(
        r.body["lines"]["1"]["draw"],
        json!({"pool": 0, "reserve": {"tier": "intermediate", "units": 4}}),
        "{}",
        r.body
    );
    let s = stock_of(&api, "HOODIE-GREY").await;
    assert_eq!(
        (&s["reserves"]["intermediate"], &s["allocated"]),
        (&json!(496), &json!(4)),
        "{s}"
    );
    assert_eq!(sum(&cells(&s), "allocated"), 0, "{s}");
    assert_cells_consistent(&s);
    stack.stop().await;
}
