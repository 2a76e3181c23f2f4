//! Shopify, 抖店 and 有赞 deliveries in their own formats, through intake,
//! the queues and the tables: connected apps and stores, secrets in
//! Secrets Manager, SKU mappings, and orders held until they can be counted.
//!
//! The fixtures are written here in the shapes the platforms document.

use base64::Engine;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;
use system_tests::*;

const SHOP: &str = "hz-flagship.myshopify.com";
const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef0123456789ab";

fn shopify_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// An `orders/paid` body as Shopify sends it: the REST Order resource,
/// money as strings in shop and presentment sets, ids past 2^53.
fn shopify_order(order_id: &str, lines: &[(&str, &str, u32, &str, &str)], currency: &str) -> Value {
    let money = |amount: &str| {
        json!({"shop_money": {"amount": amount, "currency_code": currency},
                                      "presentment_money": {"amount": amount, "currency_code": currency}})
    };
    let mut subtotal = rust_decimal::Decimal::ZERO;
    let line_items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (code, variant, qty, price, discount))| {
            let p: rust_decimal::Decimal = price.parse().unwrap();
            let d: rust_decimal::Decimal = discount.parse().unwrap();
            subtotal += p * rust_decimal::Decimal::from(*qty) - d;
            json!({
                "id": format!("{}", 866550311766439020u64 + i as u64),
                "variant_id": variant.parse::<u64>().unwrap(),
                "sku": code, "quantity": qty, "price": price, "price_set": money(price),
                "discount_allocations": [{"amount": discount, "amount_set": money(discount)}],
            })
        })
        .collect();
    let subtotal = format!("{subtotal:.2}");
    json!({
        "id": order_id.parse::<u64>().unwrap(),
        "admin_graphql_api_id": format!("gid://shopify/Order/{order_id}"),
        "created_at": (Utc::now() - Duration::minutes(5)).to_rfc3339(),
        "updated_at": Utc::now().to_rfc3339(),
        "processed_at": Utc::now().to_rfc3339(),
        "currency": currency,
        "financial_status": "voided",
        "subtotal_price": subtotal, "subtotal_price_set": money(&subtotal),
        "total_price": subtotal,
        "customer": {"id": 115310627314723954u64, "email": "buyer@example.com"},
        "shipping_address": {"province": "Zhejiang", "province_code": "ZJ", "country_code": "CN"},
        "shipping_lines": [{"code": "Standard", "title": "Standard"}],
        "line_items": line_items,
    })
}

struct Shopify<'a> {
    api: &'a ApiClient,
    secret: String,
}

impl Shopify<'_> {
    async fn deliver(&self, topic: &str, event_id: &str, body: &Value) -> (Reply, String) {
        let body = serde_json::to_vec(body).unwrap();
        let headers = vec![
            ("x-shopify-topic", topic.to_owned()),
            ("x-shopify-shop-domain", SHOP.to_owned()),
            ("x-shopify-event-id", event_id.to_owned()),
            ("x-shopify-webhook-id", format!("wh-{event_id}")),
            ("x-shopify-triggered-at", Utc::now().to_rfc3339()),
            ("x-shopify-api-version", "2024-10".to_owned()),
            ("x-shopify-hmac-sha256", shopify_hmac(&self.secret, &body)),
            ("content-type", "application/json".to_owned()),
        ];
        self.api
            .post_raw("/webhooks/shopify", &headers, body)
            .await
            .unwrap()
    }
}

/// The clothing brand with a Shopify app and store for d-shanghai, whose
/// mapping knows one code and one variant.
async fn shopify_stack() -> (LocalStack, ApiClient) {
    let (stack, api) = clothing_stack().await;
    let r = api
        .put(
            "platform-apps/shopify/brand-app",
            &json!({"secret": SHOPIFY_SECRET}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.to_string().contains(SHOPIFY_SECRET), "never shown");
    assert_eq!(r.body["secret_count"], 1);
    let r = api
        .put(
            &format!("stores/shopify/{SHOP}"),
            &json!({"distributor": "d-shanghai", "app": "brand-app"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put_csv(
            &format!("stores/shopify/{SHOP}/sku-mapping"),
            "platform_sku,sku\nTEE-W-M,TEE-WHITE\n808950810,JACKET-DOWN\n",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["entries"], 2);
    (stack, api)
}

async fn sales(api: &ApiClient, id: &str) -> rust_decimal::Decimal {
    dec(&distributor(api, id).await["metrics"]["sales"]["lifetime"])
}

async fn held(api: &ApiClient) -> Vec<Value> {
    let r = api.get("orders?status=held").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["orders"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shopify_order_is_counted_once_and_its_refund_read_exactly() {
    let (stack, api) = shopify_stack().await;
    let shopify = Shopify {
        api: &api,
        secret: SHOPIFY_SECRET.into(),
    };
    let stock_before = stock(&api, "TEE-WHITE").await;
    // Two tees less a 20.00 line discount, and a jacket by its variant id.
    let order = shopify_order(
        "820982911946154508",
        &[
            ("TEE-W-M", "4001", 2, "199.00", "20.00"),
            ("", "808950810", 1, "1299.00", "0.00"),
        ],
        "CNY",
    );
    let (r, _) = shopify.deliver("orders/paid", "evt-paid-1", &order).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["notices"][0]["status"], "queued", "{}", r.body);
    // The same event again (Shopify retries), and a second subscription's
    // delivery of it: nothing changes.
    let (again, _) = shopify.deliver("orders/paid", "evt-paid-1", &order).await;
    assert_eq!(
        again.body["notices"][0]["status"], "duplicate",
        "{}",
        again.body
    );
    // orders/create before it: placed, not counted.
    let (created, _) = shopify
        .deliver("orders/create", "evt-create-1", &order)
        .await;
    assert_eq!(created.body["notices"][0]["status"], "recorded");
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await, d("1677.00"));
    assert_eq!(stock(&api, "TEE-WHITE").await, stock_before - 2);

    // refunds/create: subtotals are JSON numbers, read exactly; shipping
    // refunded with it does not move sales.
    let refund = json!({
        "id": 890088186047892319u64, "order_id": 820982911946154508u64,
        "created_at": Utc::now().to_rfc3339(), "processed_at": Utc::now().to_rfc3339(),
        "refund_line_items": [{"id": 1, "line_item_id": "866550311766439020", "quantity": 1,
                               "subtotal": 189.0, "total_tax": 0,
                               "subtotal_set": {"shop_money": {"amount": "189.00", "currency_code": "CNY"}}}],
        "order_adjustments": [{"kind": "shipping_refund", "amount": "-10.00",
                               "amount_set": {"shop_money": {"amount": "-10.00", "currency_code": "CNY"}}}],
        "transactions": [{"amount": "199.00", "kind": "refund"}]
    });
    let (r, _) = shopify
        .deliver("refunds/create", "evt-refund-1", &refund)
        .await;
    assert_eq!(r.body["notices"][0]["status"], "queued", "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await, d("1488.00"));
    assert_eq!(
        stock(&api, "TEE-WHITE").await,
        stock_before - 1,
        "one tee came back"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_be_counted_yet_is_held_and_released_when_fixed() {
    let (stack, api) = shopify_stack().await;
    let shopify = Shopify {
        api: &api,
        secret: SHOPIFY_SECRET.into(),
    };
    let unmapped = shopify_order(
        "1001",
        &[("HOODIE-G-L", "5001", 1, "459.00", "0.00")],
        "CNY",
    );
    let (r, _) = shopify
        .deliver("orders/paid", "evt-hoodie", &unmapped)
        .await;
    assert_eq!(
        r.status, 200,
        "acknowledged, so Shopify does not retry and give up"
    );
    assert_eq!(r.body["notices"][0]["status"], "held");
    let usd = shopify_order("1002", &[("TEE-W-M", "4001", 1, "29.00", "0.00")], "USD");
    let (r, _) = shopify.deliver("orders/paid", "evt-usd", &usd).await;
    assert_eq!(r.body["notices"][0]["status"], "held");
    let mut poison = shopify_order("1003", &[("TEE-W-M", "4001", 1, "199.00", "0.00")], "CNY");
    poison["updated_at"] = json!("9999-12-31T23:59:59Z");
    let (r, _) = shopify.deliver("orders/paid", "evt-poison", &poison).await;
    assert_eq!(r.body["notices"][0]["status"], "held");
    let fake = shopify_order("1004", &[("TEE-W-M", "4001", 1, "1.00", "0.00")], "CNY");
    let mut fake = fake;
    fake["line_items"][0]["quantity"] = json!(4294967295u64);
    let (r, _) = shopify.deliver("orders/paid", "evt-fake", &fake).await;
    assert_eq!(r.body["notices"][0]["status"], "held");

    let list = held(&api).await;
    let reasons: std::collections::BTreeMap<String, String> = list
        .iter()
        .map(|h| {
            (
                h["order_id"].as_str().unwrap().to_owned(),
                h["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons["1001"], "unmapped_sku", "{list:?}");
    assert_eq!(reasons["1002"], "foreign_currency");
    assert_eq!(reasons["1003"], "implausible_time");
    assert_eq!(reasons["1004"], "implausible_order");
    assert!(list[0]["detail"].as_str().unwrap().len() > 5);
    // A held order's retry is a duplicate, not a second hold.
    let (r, _) = shopify
        .deliver("orders/paid", "evt-hoodie", &unmapped)
        .await;
    assert_eq!(r.body["notices"][0]["status"], "duplicate");
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        sales(&api, "d-shanghai").await,
        d("0"),
        "nothing held is counted"
    );

    // The brand maps the hoodie: that order is released and counted; the
    // others stay held with their reasons.
    let r = api
        .put(
            &format!("stores/shopify/{SHOP}/sku-mapping"),
            &json!({"mappings": [{"platform_sku": "TEE-W-M", "sku": "TEE-WHITE"},
                                  {"platform_sku": "808950810", "sku": "JACKET-DOWN"},
                                  {"platform_sku": "HOODIE-G-L", "sku": "HOODIE-GREY"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["released"]["queued"], 1, "{}", r.body);
    assert_eq!(r.body["released"]["still_held"]["foreign_currency"], 1);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await, d("459.00"));
    assert_eq!(held(&api).await.len(), 3);
    // Releasing again changes nothing.
    let r = api
        .admin(reqwest::Method::POST, "orders:release", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["queued"].clone()),
        (200, json!(0)),
        "{}",
        r.body
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await, d("459.00"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_deliveries_store_nothing() {
    let (stack, api) = shopify_stack().await;
    let order = shopify_order("2001", &[("TEE-W-M", "4001", 1, "199.00", "0.00")], "CNY");
    let forged = Shopify {
        api: &api,
        secret: "not-the-secret-at-all-0123456789".into(),
    };
    let (r, _) = forged.deliver("orders/paid", "evt-2001", &order).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "invalid_signature"),
        "{}",
        r.body
    );
    let body = serde_json::to_vec(&order).unwrap();
    let (r, _) = api
        .post_raw(
            "/webhooks/shopify",
            &[
                ("x-shopify-topic", "orders/paid".into()),
                ("x-shopify-shop-domain", SHOP.into()),
                ("x-shopify-event-id", "e".into()),
            ],
            body.clone(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, "missing_signature"));
    let (r, _) = api
        .post_raw(
            "/webhooks/shopify",
            &[
                ("x-shopify-topic", "orders/paid".into()),
                ("x-shopify-shop-domain", "nobody.myshopify.com".into()),
                ("x-shopify-event-id", "e".into()),
                ("x-shopify-hmac-sha256", shopify_hmac(SHOPIFY_SECRET, &body)),
            ],
            body,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, "unknown_store"));
    let shopify = Shopify {
        api: &api,
        secret: SHOPIFY_SECRET.into(),
    };
    let mut misshapen = order.clone();
    misshapen["line_items"] = json!("no");
    let (r, _) = shopify
        .deliver("orders/paid", "evt-shape", &misshapen)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_delivery"),
        "{}",
        r.body
    );
    assert!(
        r.body["message"].as_str().unwrap().contains("line_items"),
        "{}",
        r.body
    );
    let (r, _) = shopify
        .deliver("products/update", "evt-product", &json!({"id": 1}))
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("ignored"))
    );
    assert!(held(&api).await.is_empty(), "nothing refused was kept");

    // The refused event's real delivery is new, not a duplicate.
    let (r, _) = shopify.deliver("orders/paid", "evt-2001", &order).await;
    assert_eq!(r.body["notices"][0]["status"], "queued", "{}", r.body);

    // A rotation: the new secret signs at once; the old one still verifies
    // until it is retired.
    let rotated = "shpss_rotated_0123456789abcdef01234";
    let r = api
        .put(
            "platform-apps/shopify/brand-app",
            &json!({"secret": rotated}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["secret_count"], 2, "{}", r.body);
    let new = Shopify {
        api: &api,
        secret: rotated.into(),
    };
    let (r, _) = new
        .deliver(
            "orders/paid",
            "evt-2002",
            &shopify_order("2002", &[("TEE-W-M", "4001", 1, "199.00", "0.00")], "CNY"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (r, _) = shopify
        .deliver(
            "orders/paid",
            "evt-2003",
            &shopify_order("2003", &[("TEE-W-M", "4001", 1, "199.00", "0.00")], "CNY"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await, d("597.00"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doudian_and_youzan_pushes_are_acknowledged_as_they_expect() {
    let (stack, api) = clothing_stack().await;
    // 抖店: an app named by its app_key, a shop by its shop_id.
    let (dd_key, dd_secret) = ("7031234567890123456", "dd-secret-0123456789abcdef");
    let r = api
        .put(
            "platform-apps/doudian/dd-app",
            &json!({"app_key": dd_key, "secret": dd_secret}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            "stores/doudian/77977",
            &json!({"distributor": "d-shanghai", "app": "dd-app"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let dd = |body: String| {
        let sign = md5_hex(&[dd_key.as_bytes(), body.as_bytes(), dd_secret.as_bytes()]);
        (
            vec![("app-id", dd_key.to_owned()), ("event-sign", sign)],
            body.into_bytes(),
        )
    };
    let (headers, body) =
        dd(r#"[{"tag":"0","msg_id":"0","data":"2026-12-01T16:27:56.52842897+08:00"}]"#.into());
    let (r, text) = api
        .post_raw("/webhooks/doudian", &headers, body)
        .await
        .unwrap();
    assert_eq!(
        (r.status, text.as_str()),
        (200, r#"{"code":0,"msg":"success"}"#)
    );
    let now = Utc::now().timestamp();
    let paid = json!([{"tag": "101", "msg_id": "m-101-1",
        "data": json!({"p_id": 4837328765348566675u64, "shop_id": 77977, "pay_amount": 19900, "pay_time": now, "pay_type": 1}).to_string()}]);
    let (headers, body) = dd(paid.to_string());
    let (r, text) = api
        .post_raw("/webhooks/doudian", &headers, body)
        .await
        .unwrap();
    assert_eq!(
        (r.status, text.as_str()),
        (200, r#"{"code":0,"msg":"success"}"#)
    );
    let list = held(&api).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["reason"], "awaiting_detail",
        "the push has no lines"
    );
    // A wrong signature is refused; an unknown shop is not this app's.
    let (mut headers, body) = dd(paid.to_string());
    headers[1].1 = "0".repeat(32);
    let (r, _) = api
        .post_raw("/webhooks/doudian", &headers, body)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, "invalid_signature"));
    let other = paid.to_string().replace("77977", "88888");
    let (headers, body) = dd(other);
    let (r, _) = api
        .post_raw("/webhooks/doudian", &headers, body)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, "unknown_store"));

    // 有赞: the app by the body's client_id, the shop by kdt_id; `msg` is
    // URL-encoded JSON with + for spaces, times local to the brand.
    let (client_id, yz_secret) = ("c346b8b39599aaa677", "yz-secret-0123456789abcdef");
    let r = api
        .put(
            "platform-apps/youzan/yz-app",
            &json!({"app_key": client_id, "secret": yz_secret}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            "stores/youzan/13027865",
            &json!({"distributor": "d-hangzhou", "app": "yz-app"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let local = (Utc::now() + Duration::hours(8))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let msg = json!({"full_order_info": {
        "address_info": {"delivery_province": "浙江省"},
        "pay_info": {"post_fee": "10.00", "payment": "408.00"},
        "buyer_info": {"yz_open_id": "yz-buyer-1", "buyer_id": 0, "fans_id": 0},
        "orders": [{"oid": "2796923531611602955", "outer_sku_id": "TEE-W-M", "sku_id": 37196971,
                    "num": 2, "price": "199.00", "payment": "398.00"}],
        "order_info": {"tid": "E20261201172726094804181", "created": local, "pay_time": local,
                       "update_time": local, "status": "TRADE_PAID"}}})
    .to_string();
    let encoded = percent_encoding::utf8_percent_encode(&msg, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%20", "+");
    let push = json!({"client_id": client_id, "id": "E20261201172726094804181", "kdt_id": 13027865,
        "type": "trade_TradePaid", "version": Utc::now().timestamp(), "status": "TRADE_PAID",
        "test": false, "mode": 1, "sendCount": 0, "sign": "", "msg": encoded})
    .to_string();
    let sign = md5_hex(&[client_id.as_bytes(), push.as_bytes(), yz_secret.as_bytes()]);
    let (r, text) = api
        .post_raw(
            "/webhooks/youzan",
            &[("event-sign", sign)],
            push.clone().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, text.as_str()),
        (200, r#"{"code":0,"msg":"success"}"#)
    );
    // Unmapped until the brand publishes the store's mapping: held, then
    // released by it.
    assert_eq!(held(&api).await.len(), 2);
    let r = api
        .put_csv(
            "stores/youzan/13027865/sku-mapping",
            "platform_sku,sku\nTEE-W-M,TEE-WHITE\n",
        )
        .await
        .unwrap();
    assert_eq!(r.body["released"]["queued"], 1, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        sales(&api, "d-hangzhou").await,
        d("398.00"),
        "goods only, not the 10.00 shipping"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_stores_and_mappings_refuse_what_is_wrong() {
    let (stack, api) = clothing_stack().await;
    let put = |path: &'static str, body: Value| {
        let api = api.clone();
        async move { api.put(path, &body).await.unwrap() }
    };
    let r = put(
        "platform-apps/jd/x",
        json!({"secret": "0123456789abcdef0123"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "unknown_platform"));
    let r = put("platform-apps/shopify/x", json!({"secret": "short"})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_secret"));
    let r = put(
        "platform-apps/doudian/x",
        json!({"secret": "0123456789abcdef0123"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_app"),
        "a 抖店 app needs its key"
    );
    let r = put(
        "platform-apps/doudian/a",
        json!({"app_key": "k1", "secret": "0123456789abcdef0123"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = put(
        "platform-apps/doudian/b",
        json!({"app_key": "k1", "secret": "0123456789abcdef0123"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "app_key_taken"));
    let r = api.get("platform-apps/doudian/a").await.unwrap();
    assert_eq!(r.body["app_key"], "k1");
    assert!(!r.body.to_string().contains("0123456789abcdef0123"));
    let r = put("stores/doudian/1", json!({"distributor": "d-shanghai"})).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_store"),
        "a 抖店 store names its app"
    );
    let r = put(
        "stores/shopify/not-a-shop",
        json!({"distributor": "d-shanghai", "app": "a"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "invalid_store"));
    let r = put(
        "stores/doudian/1",
        json!({"distributor": "d-shanghai", "app": "nope"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "unknown_app"));
    let r = put(
        "stores/doudian/1",
        json!({"distributor": "d-shanghai", "app": "a"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put_csv(
            "stores/doudian/1/sku-mapping",
            "platform_sku,sku\nA,TEE-WHITE\nA,HOODIE-GREY\nB,NOT-IN-BOOK\n",
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_sku_mapping"),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["line"], 3);
    let r = api
        .put_csv(
            "stores/doudian/1/sku-mapping",
            "platform_sku,sku\nB,NOT-IN-BOOK\n",
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_sku_mapping"));
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("price book")
    );
    let r = api
        .put_csv("stores/doudian/404/sku-mapping", "platform_sku,sku\n")
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, "store_not_found"));
    let r = api.get("orders?status=open").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
    let r = api.get("orders?status=held&cursor=zz").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));
    stack.stop().await;
}

/// What one Shopify delivery costs intake in DynamoDB, counted by the SDK
/// interceptor on every request of an intake of its own (so the consumers'
/// requests are not mixed in), once the app's secrets are cached. Run with
/// `-- --nocapture` to see the figures.
#[tokio::test(flavor = "multi_thread")]
async fn a_shopify_delivery_costs_intake_a_bounded_number_of_requests() {
    let (stack, api) = shopify_stack().await;
    let counter = tier_runtime::cost::DynamoCounter::default();
    let aws = tier_runtime::AwsClients::local_counted(
        local_stack::moto::Moto::shared(),
        Some(counter.clone()),
    );
    let params = [("WebhookSecrets".to_owned(), stack.webhook_secret.clone())].into();
    let env = stack
        .resources
        .function_env(&stack.template, "OrderIntakeFunction", &params)
        .unwrap();
    let intake =
        order_intake::OrderIntake::from_env(&tier_runtime::Env::from_map(env), &aws).unwrap();
    let deliver = |event: &str, id: &str| {
        let body = serde_json::to_vec(&shopify_order(
            id,
            &[("TEE-W-M", "4001", 1, "199.00", "0.00")],
            "CNY",
        ))
        .unwrap();
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("/webhooks/shopify")
            .header("x-shopify-topic", "orders/paid")
            .header("x-shopify-shop-domain", SHOP)
            .header("x-shopify-event-id", event)
            .header("x-shopify-hmac-sha256", shopify_hmac(SHOPIFY_SECRET, &body))
            .body(lambda_http::Body::from(body))
            .unwrap()
    };
    // The first delivery reads the app's secrets into intake's cache.
    assert_eq!(
        intake.handle(deliver("evt-warm", "3000")).await.status(),
        200
    );
    let mut report = Vec::new();
    for (label, event, id) in [
        ("new order", "evt-3001", "3001"),
        ("duplicate", "evt-3001", "3001"),
    ] {
        counter.reset();
        assert_eq!(intake.handle(deliver(event, id)).await.status(), 200);
        let usage = counter.snapshot();
        report.push(format!(
            "{label:<10} requests {}  read units {}  write units {}  {:?}",
            usage.total_requests(),
            usage.read_units,
            usage.write_units,
            usage.requests
        ));
        // The store and its app, then the view's two batched reads (one
        // for a duplicate); one write. Regression guards, not targets.
        let reads = usage.requests.get("GetItem").copied().unwrap_or(0)
            + usage.requests.get("BatchGetItem").copied().unwrap_or(0);
        assert!(reads <= 4, "{label}: {usage:?}");
        assert!(
            usage.requests.get("PutItem").copied().unwrap_or(0) <= 1,
            "{label}: {usage:?}"
        );
    }
    println!(
        "DynamoDB cost of one Shopify delivery to intake:\n  {}",
        report.join("\n  ")
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        sales(&api, "d-shanghai").await,
        d("398.00"),
        "both orders counted once"
    );
    stack.stop().await;
}
