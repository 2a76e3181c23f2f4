//! Defects found by trying the product from outside, each kept fixed: event
//! times the calendar cannot hold, an unreadable bucket in a metrics item,
//! percent-encoded ids, and order lines that cannot be true.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use serde_json::json;
use system_tests::*;

async fn lifetime_sales(api: &ApiClient, id: &str) -> rust_decimal::Decimal {
    dec(&distributor(api, id).await["metrics"]["sales"]["lifetime"])
}

/// `9999-12-31T23:59:59Z` is January 10000 in Shanghai: a month no read of
/// the metrics item could parse. Intake refuses it, and times before 2000
/// or more than a day ahead, with a code of their own.
#[tokio::test(flavor = "multi_thread")]
async fn implausible_event_times_are_refused_at_intake() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let poison = [
        "9999-12-31T23:59:59Z".parse().unwrap(),
        "0001-01-01T00:00:00Z".parse().unwrap(),
        "1969-12-31T00:00:00Z".parse().unwrap(),
        now + Duration::days(2),
    ];
    for (i, at) in poison.into_iter().enumerate() {
        let paid = docs::paid(
            &format!("poison-{i}"),
            &format!("P{i}"),
            "b1",
            &[("TEE-WHITE", 1, "199.00")],
            at,
        );
        let r = api.webhook("jd", "sh-outlet", &paid).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (422, "implausible_time"),
            "{at}: {}",
            r.body
        );
        let signup = docs::registered(&format!("poison-signup-{i}"), "u-1", at);
        let r = api.webhook("jd", "sh-outlet", &signup).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (422, "implausible_time"),
            "{at}: {}",
            r.body
        );
    }
    assert_eq!(receipts(&stack).await, 0);
    // An hour ahead (a platform's clock running fast) is accepted.
    let r = api
        .webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                "ok",
                "OK1",
                "b1",
                &[("TEE-WHITE", 1, "199.00")],
                now + Duration::hours(1),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.stop().await;
}

/// A message already on the queue with such a time (sent before intake
/// refused them) is dead-lettered with its reason, and the distributor's
/// later orders go on being counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_poison_date_is_parked_and_later_orders_still_count() {
    let (stack, api) = clothing_stack().await;
    let poison = json!({"type": "order_event.v1", "payload": {
        "event_id": "poison-1", "order": {"platform": "jd", "store": "sh-outlet", "order_id": "P1"},
        "distributor": "d-shanghai", "occurred_at": "9999-12-31T23:59:59Z", "kind": "paid",
        "buyer": "b1", "total": "199.00", "urgent": false,
        "lines": [{"line_id": "1", "sku": "TEE-WHITE", "quantity": 1, "unit_price": "199.00", "amount": "199.00"}]}});
    for queue in ["TierEventsQueue", "StockEventsQueue"] {
        send_raw(&stack, queue, &poison.to_string()).await;
    }
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("after", "A1", "b2", &[("TEE-WHITE", 2, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    for dlq in ["TierEventsDLQ", "StockEventsDLQ"] {
        let parked = dead_letters(&stack, dlq, 1, std::time::Duration::from_secs(10)).await;
        assert_eq!(parked.len(), 1, "{dlq}: {parked:?}");
        assert_eq!(
            parked[0].code.as_deref(),
            Some("malformed_message"),
            "{dlq}"
        );
        let reason = parked[0].reason.as_deref().unwrap_or("");
        assert!(reason.contains("9000-01-01"), "{dlq}: {reason}");
    }
    assert_eq!(lifetime_sales(&api, "d-shanghai").await, d("398.00"));
    let r = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.stop().await;
}

/// A metrics item holding a bucket no read can place (as an older build
/// wrote for a poison date) still reads, still takes orders, and loses the
/// bucket at its next write.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_bucket_does_not_stop_a_distributor() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let key = |pk: &str| {
        [
            ("PK".to_owned(), AttributeValue::S(pk.into())),
            ("SK".to_owned(), AttributeValue::S("METRICS".into())),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    for id in ["d-shanghai", "d-hangzhou"] {
        stack
            .clients
            .dynamodb
            .update_item()
            .table_name(stack.table_name())
            .set_key(Some(key(&format!("DIST#{id}"))))
            .update_expression("SET #a = :v, #b = :v")
            .expression_attribute_names("#a", "sales#10000-01")
            .expression_attribute_names("#b", "dsales#10000-01")
            .expression_attribute_values(":v", AttributeValue::N("5".into()))
            .send()
            .await
            .unwrap();
    }
    for path in ["tier", "tier-history", "commission"] {
        let r = api
            .read(&format!("/v1/distributors/d-shanghai/{path}"))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(lifetime_sales(&api, "d-shanghai").await, d("199.00"));

    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e2", "O2", "b2", &[("TEE-WHITE", 2, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(lifetime_sales(&api, "d-shanghai").await, d("597.00"));
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["downline_sales"]["lifetime"]),
        d("597.00")
    );
    let parked = dead_letters(
        &stack,
        "TierEventsDLQ",
        1,
        std::time::Duration::from_secs(2),
    )
    .await;
    assert!(parked.is_empty(), "{parked:?}");
    let item = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(stack.table_name())
        .set_key(Some(key("DIST#d-shanghai")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(
        !item.contains_key("sales#10000-01"),
        "the seller's write prunes it"
    );
    stack.stop().await;
}

/// Ids in a path are percent-decoded once, as API Gateway hands path
/// parameters over: `d%2Dshanghai` is `d-shanghai`, `a%3Ab` is `a:b`.
#[tokio::test(flavor = "multi_thread")]
async fn percent_encoded_ids_name_the_same_thing() {
    let (stack, api) = clothing_stack().await;
    let r = api.get("distributors/d%2Dshanghai").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["distributor"]["id"], "d-shanghai", "{}", r.body);
    let r = api.get("distributors/a%3Ab").await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (404, "distributor_not_found"),
        "{}",
        r.body
    );
    let r = api.get("distributors/a%2Fb").await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.get("distributors/%FF").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_path"), "{}", r.body);

    let r = api
        .read("/v1/distributors/d%2Dshanghai/tier")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .read("/v1/distributors/d%2Dshanghai/prices?sku=TEE-WHITE")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let r = api
        .webhook(
            "jd",
            "sh%2Doutlet",
            &json!({"platform": "jd", "store": "sh-outlet", "event_id": "enc-1",
                "type": "user.registered", "occurred_at": Utc::now(), "buyer_id": "u-9"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.stop().await;
}

/// A line worth more than its units, or of more units than any order
/// holds, is refused: it would move sales, tiers and stock by amounts no
/// buyer paid.
#[tokio::test(flavor = "multi_thread")]
async fn order_lines_that_cannot_be_true_are_refused() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let line = |quantity: u64, unit_price: &str, amount: &str| {
        json!({"event_id": format!("l-{quantity}-{amount}"), "type": "order.paid",
            "occurred_at": now, "order_id": format!("L-{quantity}"), "buyer_id": "b1",
            "total": amount, "lines": [{"line_id": "1", "sku": "TEE-WHITE",
            "quantity": quantity, "unit_price": unit_price, "amount": amount}]})
    };
    for (doc, needle) in [
        (line(1, "1.00", "99999.00"), "more than quantity"),
        (line(4_294_967_295, "0.00", "0.00"), "above the limit"),
        (line(100_001, "0.00", "0.00"), "above the limit"),
    ] {
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert_eq!((r.status, r.code()), (422, "invalid_order"), "{}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains(needle),
            "{}",
            r.body
        );
    }
    assert_eq!(receipts(&stack).await, 0);
    let r = api
        .webhook("jd", "sh-outlet", &line(3, "199.00", "500.00"))
        .await
        .unwrap();
    assert_eq!(r.status, 202, "a discounted line is fine: {}", r.body);
    stack.stop().await;
}

/// The smaller ones: an unknown field inside a line, decimals outside the
/// documented notation, `.` and `..` as ids, a lower-case `bearer`, an
/// upper-case `TEXT/CSV`.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_notations_are_the_only_ones() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();

    let mut doc = docs::paid("u1", "U1", "b1", &[("TEE-WHITE", 1, "199.00")], now);
    doc["lines"][0]["colour"] = json!("white");
    let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_order"), "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("colour"),
        "{}",
        r.body
    );

    let rules = api.get("rule-set").await.unwrap().body["rule_set"].clone();
    for bad in ["1_000", "1E5", "+300000", ".5e2 ", " 5"] {
        let mut draft = rules.clone();
        draft["tiers"][1]["upgrade"]["gte"] = json!(bad);
        let r = api.put("rule-set", &draft).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_rule_set"),
            "{bad:?}: {}",
            r.body
        );
    }
    assert_eq!(api.get("rule-set").await.unwrap().body["version"], 1);

    // URL clients resolve `.` and `..` away (even as `%2E`), so such an id
    // could never be read back: refused wherever an id is given.
    for id in [".", ".."] {
        let r = api
            .put("distributors/d-new", &json!({"name": "New", "upline": id}))
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{id:?}: {}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("relative path"),
            "{}",
            r.body
        );
    }

    // Too deep a document is malformed wherever it is sent.
    let deep: serde_json::Value =
        serde_json::from_str(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).unwrap();
    let mut nested = docs::paid("deep", "DEEP", "b1", &[("TEE-WHITE", 1, "199.00")], now);
    nested["lines"][0]["sku"] = deep.clone();
    let r = api.webhook("jd", "sh-outlet", &nested).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "malformed_json"), "{}", r.body);
    let r = api
        .put("distributors/d-deep", &json!({"name": deep}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "malformed_json"), "{}", r.body);

    let key = api.api_key.clone().unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/v1/distributors/d-shanghai/tier", api.base_url))
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the auth scheme is case-insensitive");

    let csv = "type,sku,tier,distributor,min_qty,price,discount_pct\n\
               base,TEE-WHITE,,,,189.00,\n\
               base,HOODIE-GREY,,,,459.00,\n\
               base,JACKET-DOWN,,,,1299.00,\n";
    let r = reqwest::Client::new()
        .put(format!("{}/v1/admin/price-book", api.base_url))
        .header("x-admin-key", &api.admin_key)
        .header("content-type", "TEXT/CSV; charset=UTF-8")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    stack.stop().await;
}

/// A rule set too large for one item is a permanent refusal with its
/// reason, never `503` "retry later".
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_rule_set_is_refused_for_good() {
    let (stack, api) = clothing_stack().await;
    let tiers: Vec<serde_json::Value> = (0..3000)
        .map(|i| {
            let mut t = json!({"id": format!("t{i}"), "name": format!("T{i}"), "rank": i});
            if i > 0 {
                t["upgrade"] =
                    json!({"metric": "sales_amount", "window": "month", "gte": format!("{i}000")});
            }
            t
        })
        .collect();
    let r = api.put("rule-set", &json!({"tiers": tiers})).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_rule_set"),
        "{}",
        r.body
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("at most 50 tiers"),
        "{}",
        r.body
    );

    let steps: Vec<serde_json::Value> = (0..10_000)
        .map(|i| json!({"id": format!("s{i}"), "when": {"metric": "valid_downline_users", "gte": "5"}}))
        .collect();
    let mut rules = api.get("rule-set").await.unwrap().body["rule_set"].clone();
    rules["step_ups"] = json!(steps);
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_rule_set"),
        "{}",
        r.body
    );
    assert_eq!(api.get("rule-set").await.unwrap().body["version"], 1);
    stack.stop().await;
}

/// A local stack started again on the same emulator and prefix finds its
/// stores and data: a platform's retried webhook is accepted, not
/// `422 unknown_store`. And an invocation past its function's timeout ends
/// as in Lambda: a 500, and the platform's retry is accepted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_stack_attaches_to_its_data_and_enforces_timeouts() {
    let (prefix, key) = loaded_prefix().await;

    // The same prefix, with every function's timeout at nothing.
    let mut opts = stack_options_on(&prefix);
    opts.function_timeout = Some(std::time::Duration::ZERO);
    let hurried = LocalStack::start(opts).await.unwrap();
    let late = client_with_key(&hurried, &key);
    let paid = docs::paid("r1", "R1", "b1", &[("TEE-WHITE", 2, "199.00")], Utc::now());
    let r = late.webhook("jd", "sh-outlet", &paid).await.unwrap();
    assert_eq!((r.status, r.code()), (500, "internal"), "{}", r.body);
    hurried.stop().await;

    let again = LocalStack::start(stack_options_on(&prefix)).await.unwrap();
    let api2 = client_with_key(&again, &key);
    let r = api2.webhook("jd", "sh-outlet", &paid).await.unwrap();
    assert_eq!(r.status, 202, "the store is found again: {}", r.body);
    again.wait_idle(IDLE).await.unwrap();
    assert_eq!(lifetime_sales(&api2, "d-shanghai").await, d("398.00"));
    let r = api2.webhook("jd", "sh-outlet", &paid).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    again.stop().await;
}

/// What an operator's dashboard reads: webhooks accepted, duplicate and
/// refused by platform and code, events applied, tier moves, commission,
/// dead letters by failure code, in CloudWatch's embedded metric format.
#[tokio::test(flavor = "multi_thread")]
async fn the_functions_emit_their_metrics() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // 40 jackets: 51,960 CNY, Intermediate, and commission for d-hangzhou.
    let paid = docs::paid("m1", "M1", "b1", &[("JACKET-DOWN", 40, "1299.00")], now);
    assert_eq!(
        api.webhook("jd", "sh-outlet", &paid).await.unwrap().status,
        202
    );
    assert_eq!(
        api.webhook("jd", "sh-outlet", &paid).await.unwrap().status,
        200
    );
    let mut bad = paid.clone();
    bad["event_id"] = json!("m2");
    bad["total"] = json!("1.00");
    assert_eq!(
        api.webhook("jd", "sh-outlet", &bad).await.unwrap().status,
        422
    );
    send_raw(&stack, "TierEventsQueue", "not a message").await;
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    let lines = tier_runtime::metrics::captured();
    let has = |name: &str, dims: &[(&str, &str)]| {
        lines.iter().any(|l| {
            l.get(name).is_some()
                && dims.iter().all(|(k, v)| l[*k] == *v)
                && l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DistributorTiers"
        })
    };
    assert!(has("WebhooksAccepted", &[("Platform", "jd")]));
    assert!(has("WebhooksDuplicate", &[("Platform", "jd")]));
    assert!(has(
        "WebhooksRefused",
        &[("Platform", "jd"), ("Code", "invalid_order")]
    ));
    assert!(has(
        "OrderEventsApplied",
        &[("Function", "tier-evaluation")]
    ));
    assert!(has("TierChangesUp", &[("Function", "tier-evaluation")]));
    assert!(has("CommissionEarned", &[("Function", "tier-evaluation")]));
    assert!(has("BatchSize", &[("Function", "stock-allocation")]));
    assert!(has(
        "DeadLettered",
        &[
            ("Function", "tier-evaluation"),
            ("FailureCode", "malformed_message")
        ]
    ));
    stack.stop().await;
}

/// The product's own redrive: dead letters are listed with their reasons,
/// moved back by failure code once the cause is fixed, processed once,
/// and what the filter skipped stays parked.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_redriven_by_failure_code() {
    let (stack, api) = clothing_stack().await;
    let early = json!({"type": "order_event.v1", "payload": {
        "event_id": "early-1", "order": {"platform": "jd", "store": "sh-outlet", "order_id": "E1"},
        "distributor": "d-late", "occurred_at": Utc::now(), "kind": "paid",
        "buyer": "b1", "total": "199.00", "urgent": false,
        "lines": [{"line_id": "1", "sku": "TEE-WHITE", "quantity": 1, "unit_price": "199.00", "amount": "199.00"}]}});
    for body in [early.to_string(), "not a message".to_owned()] {
        send_raw(&stack, "TierEventsQueue", &body).await;
    }
    stack.wait_idle(IDLE).await.unwrap();

    let r = api.get("dead-letters?queue=tier-events").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut codes: Vec<&str> = r.body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["failure_code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["malformed_message", "unknown_distributor"],
        "{}",
        r.body
    );
    let r = api.get("dead-letters?queue=nope").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_queue"));

    // The cause fixed: the distributor exists now.
    let r = api
        .put("distributors/d-late", &json!({"name": "Late"}))
        .await
        .unwrap();
    assert!(r.status < 300, "{}", r.body);
    let redrive = json!({"queue": "tier-events", "failure_code": "unknown_distributor"});
    let r = api
        .admin(
            reqwest::Method::POST,
            "dead-letters:redrive",
            Some(&redrive),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["moved"].as_u64(), r.body["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(lifetime_sales(&api, "d-late").await, d("199.00"));

    // Nothing more of that code; the malformed one is still parked.
    let r = api
        .admin(
            reqwest::Method::POST,
            "dead-letters:redrive",
            Some(&redrive),
        )
        .await
        .unwrap();
    assert_eq!(r.body["moved"].as_u64(), Some(0), "{}", r.body);
    let left = dead_letters(
        &stack,
        "TierEventsDLQ",
        1,
        std::time::Duration::from_secs(5),
    )
    .await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].code.as_deref(), Some("malformed_message"));

    let r = api
        .admin(
            reqwest::Method::POST,
            "dead-letters:redrive",
            Some(&json!({"queue": "tier-events", "limit": 0})),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_redrive"));
    stack.stop().await;
}
