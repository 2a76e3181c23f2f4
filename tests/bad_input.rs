//! Bad input gets a clear error with a stable code, and nothing is stored
//! or enqueued for it.

use chrono::Utc;
use serde_json::json;
use system_tests::*;

fn with_store(mut doc: serde_json::Value, store: &str) -> serde_json::Value {
    doc["platform"] = json!("jd");
    doc["store"] = json!(store);
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_webhooks_say_why_and_leave_no_trace() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let mut good = docs::paid("evt-1", "O1", "b1", &[("TEE-WHITE", 1, "199.00")], now);
    good["platform"] = json!("jd");
    good["store"] = json!("sh-outlet");
    let body = serde_json::to_vec(&good).unwrap();
    let sign = |body: &[u8], t: i64| order_intake::signature::sign(body, &api.webhook_secret, t);

    // (case, body, X-Signature, status, code)
    type Case<'a> = (&'a str, Vec<u8>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no signature", body.clone(), None, 401, "missing_signature"),
        (
            "wrong secret",
            body.clone(),
            Some(order_intake::signature::sign(
                &body,
                "not-the-secret-at-all",
                now.timestamp(),
            )),
            401,
            "invalid_signature",
        ),
        (
            "tampered body",
            body.iter()
                .map(|b| if *b == b'9' { b'8' } else { *b })
                .collect(),
            Some(sign(&body, now.timestamp())),
            401,
            "invalid_signature",
        ),
        (
            "stale",
            body.clone(),
            Some(sign(&body, now.timestamp() - 301)),
            401,
            "stale_signature",
        ),
        (
            "garbage header",
            body.clone(),
            Some("v1=abc".into()),
            401,
            "malformed_signature",
        ),
    ];
    for (name, body, signature, status, code) in cases {
        let r = api
            .webhook_raw("jd", "sh-outlet", body, signature)
            .await
            .unwrap();
        assert_eq!((r.status, r.code()), (status, code), "{name}: {}", r.body);
        assert!(
            !r.body["message"].as_str().unwrap_or("").is_empty(),
            "{name}: a message for humans"
        );
    }

    let signed = |doc: serde_json::Value| serde_json::to_vec(&doc).unwrap();
    let mut negative = good.clone();
    negative["lines"][0]["quantity"] = json!(-1);
    let mut mismatch = good.clone();
    mismatch["total"] = json!("200.00");
    let mut sub_cent = good.clone();
    sub_cent["lines"][0]["amount"] = json!("199.001");
    let mut no_buyer = good.clone();
    no_buyer.as_object_mut().unwrap().remove("buyer_id");
    let mut unknown_field = good.clone();
    unknown_field["surprise"] = json!(true);
    let mut province_name = good.clone();
    province_name["region"] = json!("Zhejiang");
    let mut region_on_cancel = good.clone();
    region_on_cancel["type"] = json!("order.cancelled");
    region_on_cancel["region"] = json!("CN-ZJ");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "not json",
            "sh-outlet",
            b"{\"event_id\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "negative quantity",
            "sh-outlet",
            signed(negative),
            422,
            "invalid_order",
        ),
        (
            "total is not the sum",
            "sh-outlet",
            signed(mismatch),
            422,
            "invalid_order",
        ),
        (
            "fraction of a cent",
            "sh-outlet",
            signed(sub_cent),
            422,
            "invalid_order",
        ),
        (
            "paid without buyer",
            "sh-outlet",
            signed(no_buyer),
            422,
            "invalid_order",
        ),
        (
            "unknown field",
            "sh-outlet",
            signed(unknown_field),
            422,
            "invalid_order",
        ),
        (
            "a province's name, not its code",
            "sh-outlet",
            signed(province_name),
            422,
            "invalid_order",
        ),
        (
            "a region on a cancellation",
            "sh-outlet",
            signed(region_on_cancel),
            422,
            "invalid_order",
        ),
        (
            "unknown sku",
            "sh-outlet",
            signed(with_store(
                docs::paid("evt-2", "O2", "b1", &[("NO-SUCH-SKU", 1, "1.00")], now),
                "sh-outlet",
            )),
            422,
            "unknown_sku",
        ),
        (
            "unknown store",
            "nowhere",
            signed(with_store(good.clone(), "nowhere")),
            422,
            "unknown_store",
        ),
        // A signed document replayed to another store's URL.
        (
            "another store's document",
            "sz-live",
            signed(good.clone()),
            422,
            "store_mismatch",
        ),
        (
            "too large",
            "sh-outlet",
            vec![b' '; 200 * 1024],
            413,
            "payload_too_large",
        ),
    ];
    for (name, store, body, status, code) in cases {
        let signature = sign(&body, Utc::now().timestamp());
        let r = api
            .webhook_raw("jd", store, body, Some(signature))
            .await
            .unwrap();
        assert_eq!((r.status, r.code()), (status, code), "{name}: {}", r.body);
    }

    assert_eq!(
        depth(&stack, "TierEventsQueue").await,
        0,
        "nothing enqueued"
    );
    assert_eq!(
        depth(&stack, "StockEventsQueue").await,
        0,
        "nothing enqueued"
    );
    assert_eq!(receipts(&stack).await, 0, "nothing stored");
    // The valid document still goes through afterwards.
    let r = api.webhook("jd", "sh-outlet", &good).await.unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(receipts(&stack).await, 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_refuses_bad_keys_and_bad_documents() {
    let (stack, api) = clothing_stack().await;
    let mut no_key = api.clone();
    no_key.admin_key = "wrong-key-wrong-key-wrong-key-wrong".into();
    let r = no_key.get("rule-set").await.unwrap();
    assert_eq!((r.status, r.code()), (401, "invalid_admin_key"));

    let bad_rules = json!({"tiers": [{"id": "a", "name": "A", "rank": 0},
        {"id": "b", "name": "B", "rank": 1, "upgrade": {"metric": "sales_amount", "window": "fortnight", "gte": "1"}}]});
    let r = api.put("rule-set", &bad_rules).await.unwrap();
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
            .contains("tiers[1].upgrade"),
        "{}",
        r.body
    );
    let unreachable = json!({"tiers": [{"id": "a", "name": "A", "rank": 0},
        {"id": "b", "name": "B", "rank": 1, "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100"}},
        {"id": "c", "name": "C", "rank": 2, "upgrade": {"metric": "sales_amount", "window": "month", "gte": "10"}}]});
    let r = api.put("rule-set", &unreachable).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_rule_set"));
    assert!(
        r.body["message"].as_str().unwrap().contains("unreachable"),
        "{}",
        r.body
    );
    // The published version is untouched.
    assert_eq!(api.get("rule-set").await.unwrap().body["version"], 1);

    let r = api
        .put(
            "distributors/d-new",
            &json!({"name": "N", "upline": "d-ghost"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_upline"));
    let r = api
        .put("distributors/d-shanghai", &json!({"name": "again"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (409, "distributor_exists"));
    let r = api
        .put("stores/jd/sh-outlet", &json!({"distributor": "d-suzhou"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (409, "store_owned_by_another"));
    let r = api
        .put("skus/NEW-SKU/stock", &json!({"available": 5}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_sku"));
    let r = api
        .put("skus/TEE-WHITE/stock", &json!({"available": -5}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_document"));
    let r = api.get("nothing-here").await.unwrap();
    assert_eq!((r.status, r.code()), (404, "route_not_found"));
    // Outside the admin API, what no route serves (an unknown path, a known
    // path's other method) reaches the `$default` route: still coded.
    for path in [
        "/v1/nothing-here",
        "/webhooks/jd/sh-outlet",
        "/",
        "/v1/distributors/d-shanghai/tier/",
        "/v1/distributors//tier",
    ] {
        let r = api.read(path).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (404, "route_not_found"),
            "GET {path}: {}",
            r.body
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn price_lookup_refuses_bad_requests_and_reports_unknown_skus() {
    let (stack, api) = clothing_stack().await;
    let r = api.prices("d-ghost", &["TEE-WHITE"]).await.unwrap();
    assert_eq!((r.status, r.code()), (404, "distributor_not_found"));
    let r = api.prices("d-shanghai", &[]).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "missing_sku"));
    let r = api.prices("d-shanghai", &["BAD#SKU"]).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_sku"));
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = api.prices("d-shanghai", &many).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "too_many_skus"));
    let r = api
        .prices_query("d-shanghai", &["TEE-WHITE"], &[("qty", "0")])
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_quantity"));
    let r = api
        .prices_query(
            "d-shanghai",
            &["TEE-WHITE", "HOODIE-GREY"],
            &[("qty", "1"), ("qty", "2"), ("qty", "3")],
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_quantity"));
    let r = api
        .prices("d-shanghai", &["TEE-WHITE", "NOPE"])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["unknown_skus"], json!(["NOPE"]));
    assert_eq!(r.body["prices"].as_array().unwrap().len(), 1);
    stack.stop().await;
}

/// A platform with its own webhook secrets accepts only those: the shared
/// secret, or another platform's, cannot sign its events.
#[tokio::test(flavor = "multi_thread")]
async fn a_platform_with_its_own_secret_refuses_the_shared_one() {
    use local_stack::moto::Moto;
    use local_stack::stack::StackOptions;
    const TMALL_SECRET: &str = "tmall-only-secret-0123456789";
    let mut opts = StackOptions::new(
        Moto::shared(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    opts.params.insert(
        "WebhookPlatformSecrets".into(),
        format!(r#"{{"tmall": ["{TMALL_SECRET}"]}}"#),
    );
    let stack = LocalStack::start(opts).await.unwrap();
    let mut api = ApiClient::for_stack(&stack);
    local_stack::demo::load(&mut api).await.unwrap();
    let now = Utc::now();
    let doc = |event: &str, platform: &str, store: &str| {
        let mut d = docs::paid(event, event, "b1", &[("TEE-WHITE", 1, "199.00")], now);
        d["platform"] = serde_json::json!(platform);
        d["store"] = serde_json::json!(store);
        serde_json::to_vec(&d).unwrap()
    };
    let signed = |body: &[u8], secret: &str| {
        Some(order_intake::signature::sign(body, secret, now.timestamp()))
    };

    let body = doc("t1", "tmall", "hz-flagship");
    let r = api
        .webhook_raw(
            "tmall",
            "hz-flagship",
            body.clone(),
            signed(&body, &api.webhook_secret),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (401, "invalid_signature"),
        "the shared secret does not sign for tmall"
    );
    let r = api
        .webhook_raw(
            "tmall",
            "hz-flagship",
            body.clone(),
            signed(&body, TMALL_SECRET),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    // Other platforms keep the shared secret, and tmall's signs nothing of theirs.
    let body = doc("j1", "jd", "sh-outlet");
    let r = api
        .webhook_raw("jd", "sh-outlet", body.clone(), signed(&body, TMALL_SECRET))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, "invalid_signature"));
    let r = api
        .webhook_raw(
            "jd",
            "sh-outlet",
            body.clone(),
            signed(&body, &api.webhook_secret),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.stop().await;
}
