//! Shopify, 抖店 and 有赞 deliveries in their own formats, through intake,
//! the queues and the tables: connected apps and stores, secrets in
//! Secrets Manager, SKU mappings, and orders held until they can be counted.
//!
//! The fixtures are written here in the shapes the platforms document.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use lambda_http::RequestExt;
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
    // The buyer's province, from the shipping address, stays with the sale.
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let order_ref = tier_domain::OrderRef {
        platform: tier_domain::ids::Platform::parse("shopify").unwrap(),
        store: tier_domain::ids::StoreId::parse(SHOP).unwrap(),
        order_id: tier_domain::ids::OrderId::parse("820982911946154508").unwrap(),
    };
    let record = table
        .order_record(
            &tier_domain::ids::DistributorId::parse("d-shanghai").unwrap(),
            &order_ref,
        )
        .await
        .unwrap()
        .expect("the order is in its seller's ledger");
    let paid = record.paid.expect("paid");
    assert_eq!(paid.region.as_ref().map(|r| r.code()), Some("CN-ZJ"));

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

    // orders/fulfilled: what is still held leaves on hand, once, and sales
    // do not move.
    let on_hand = |api: &ApiClient| {
        let api = api.clone();
        async move {
            let r = api.get("skus/TEE-WHITE/stock").await.unwrap();
            (
                r.body["on_hand"].as_u64().unwrap(),
                r.body["allocated"].as_u64().unwrap(),
            )
        }
    };
    let (before, held) = on_hand(&api).await;
    let mut fulfilled = order.clone();
    fulfilled["fulfillment_status"] = json!("fulfilled");
    for event in ["evt-fulfilled-1", "evt-fulfilled-2"] {
        let (r, _) = shopify.deliver("orders/fulfilled", event, &fulfilled).await;
        assert_eq!(r.body["notices"][0]["status"], "queued", "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(on_hand(&api).await, (before - 1, held - 1), "the tee left");
    let r = api
        .get(&format!(
            "orders/shopify/{SHOP}/820982911946154508/reservations"
        ))
        .await
        .unwrap();
    let lines = r.body["lines"].as_object().unwrap();
    assert!(
        !lines.is_empty() && lines.values().all(|l| l["status"] == "shipped"),
        "{}",
        r.body
    );
    assert_eq!(sales(&api, "d-shanghai").await, d("1488.00"));
    assert!(
        dead_letters(
            &stack,
            "StockEventsDLQ",
            1,
            std::time::Duration::from_millis(200)
        )
        .await
        .is_empty()
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
    // The same secret again changes nothing, not even when they changed.
    let rotated_at = r.body["secrets_updated_at"].clone();
    let r = api
        .put(
            "platform-apps/shopify/brand-app",
            &json!({"secret": rotated}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["secret_count"], 2, "{}", r.body);
    assert_eq!(r.body["secrets_updated_at"], rotated_at, "{}", r.body);
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

const DD_KEY: &str = "7031234567890123456";
const DD_SECRET: &str = "dd-secret-0123456789abcdef";
const DD_SHOP: &str = "77977";

/// What the fake 抖店 API is asked and answers.
#[derive(Default)]
struct FakeDoudianState {
    /// `order.orderDetail` answers the platform's rate limit.
    throttled: bool,
    /// Orders it says do not exist.
    missing: Vec<String>,
    /// Tees bought, by order id.
    orders: HashMap<String, u64>,
    token_calls: u32,
    detail_calls: u32,
    /// Requests whose signature, token or parameters were wrong.
    refused: Vec<String>,
}

/// The 抖店 open API on 127.0.0.1 for one self-use app and shop: a token
/// from `token.create`, an order's detail from `order.orderDetail`, in the
/// documented answer shapes. Every request's `sign` is checked against the
/// documented pattern (HMAC-SHA256 of secret + the parameters, name then
/// value, in order + secret); a wrong one is answered as the platform does.
#[derive(Clone)]
struct FakeDoudian {
    base: String,
    state: Arc<Mutex<FakeDoudianState>>,
}

impl FakeDoudian {
    async fn start() -> FakeDoudian {
        let state = Arc::new(Mutex::new(FakeDoudianState::default()));
        let route = |path: &str| local_stack::http::Route::new("POST", path);
        let answer = |state: Arc<Mutex<FakeDoudianState>>| {
            local_stack::http::handler(move |req: lambda_http::Request| {
                let state = state.clone();
                async move {
                    let body = Self::answer(&state, &req);
                    lambda_http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(lambda_http::Body::from(body.to_string()))
                        .unwrap()
                }
            })
        };
        let (addr, _) = local_stack::http::serve(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            vec![
                (route("/token/create"), answer(state.clone())),
                (route("/order/orderDetail"), answer(state.clone())),
            ],
            std::future::pending(),
        )
        .await
        .unwrap();
        FakeDoudian {
            base: format!("http://{addr}"),
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeDoudianState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn answer(state: &Mutex<FakeDoudianState>, req: &lambda_http::Request) -> Value {
        let query = req.query_string_parameters();
        let param = |k: &str| query.first(k).unwrap_or("").to_owned();
        let body = std::str::from_utf8(req.body().as_ref()).unwrap().to_owned();
        let refuse = |why: String, sub_code: &str| {
            state.lock().unwrap().refused.push(why.clone());
            json!({"code": 40003, "msg": "非法的参数", "sub_code": sub_code, "sub_msg": why, "data": {}})
        };
        let method = param("method");
        let pattern = format!(
            "{DD_SECRET}app_key{}method{method}param_json{body}timestamp{}v{}{DD_SECRET}",
            param("app_key"),
            param("timestamp"),
            param("v")
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(DD_SECRET.as_bytes()).unwrap();
        mac.update(pattern.as_bytes());
        if param("app_key") != DD_KEY
            || param("v") != "2"
            || param("sign_method") != "hmac-sha256"
            || param("sign") != hex::encode(mac.finalize().into_bytes())
        {
            return refuse(format!("{method}: signature"), "isv.signature-invalid");
        }
        let params: Value = serde_json::from_str(&body).unwrap();
        let mut state = state.lock().unwrap();
        match (req.uri().path(), method.as_str()) {
            ("/token/create", "token.create") => {
                state.token_calls += 1;
                if params
                    != json!({"code": "", "grant_type": "authorization_self", "shop_id": DD_SHOP})
                {
                    drop(state);
                    return refuse(format!("token.create: {params}"), "isv.parameter-invalid");
                }
                json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "202612011627",
                    "data": {"access_token": "dd-token-77977", "expires_in": 604800, "refresh_token": "dd-refresh",
                             "scope": "SCOPE", "shop_id": 77977, "shop_name": "沪上旗舰店", "authority_id": ""}})
            }
            ("/order/orderDetail", "order.orderDetail") => {
                state.detail_calls += 1;
                if param("access_token") != "dd-token-77977" {
                    drop(state);
                    return refuse(
                        "order.orderDetail: token".into(),
                        "isv.access-token-no-existed",
                    );
                }
                let order = params["shop_order_id"].as_str().unwrap_or("").to_owned();
                if state.throttled {
                    return json!({"code": 60000, "msg": "触发限流，请稍后重试", "sub_code": "", "sub_msg": "", "data": {}});
                }
                let tees = match state.orders.get(&order) {
                    Some(n) if !state.missing.contains(&order) => *n,
                    _ => {
                        return json!({"code": 40004, "msg": "业务处理失败", "sub_code": "isv.business-failed:10005",
                            "sub_msg": "订单不存在", "data": {}});
                    }
                };
                // Two 199.00 tees, say: 398.00 for the goods, 10.00 shipping.
                json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "202612011627",
                    "data": {"shop_order_detail": {
                        "order_id": order, "shop_id": 77977, "order_status": 2,
                        "order_amount": tees * 19900 + 1000, "pay_amount": tees * 19900 + 1000, "post_amount": 1000,
                        "doudian_open_id": "1@#dd-buyer==",
                        "post_addr": {"province": {"name": "上海市", "id": "31"}},
                        "sku_order_list": [{"order_id": format!("{order}1"), "sku_id": 1736602913154052u64,
                            "code": "TEE-W-M", "out_sku_id": "", "item_num": tees, "origin_amount": 19900,
                            "goods_price": 19900, "pay_amount": tees * 19900, "post_amount": 0}]}}})
            }
            (path, method) => {
                drop(state);
                refuse(format!("{method} at {path}"), "isv.method-invalid")
            }
        }
    }
}

/// The clothing brand with a 抖店 app (named by its app_key) and shop 77977
/// (by its shop_id) for d-shanghai, whose mapping knows the tee's code,
/// and the order detail function asking `fake` for what pushes leave out.
async fn doudian_stack(fake: &FakeDoudian) -> (LocalStack, ApiClient) {
    let mut opts = stack_options();
    opts.params
        .insert("DoudianApiBase".into(), fake.base.clone());
    let (stack, api) = clothing_stack_with(opts).await;
    let r = api
        .put(
            "platform-apps/doudian/dd-app",
            &json!({"app_key": DD_KEY, "secret": DD_SECRET}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            &format!("stores/doudian/{DD_SHOP}"),
            &json!({"distributor": "d-shanghai", "app": "dd-app"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put_csv(
            &format!("stores/doudian/{DD_SHOP}/sku-mapping"),
            "platform_sku,sku\nTEE-W-M,TEE-WHITE\n",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    (stack, api)
}

/// A push signed as 抖店 signs it (MD5 of app key + body + secret).
fn doudian_push(body: String) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let sign = md5_hex(&[DD_KEY.as_bytes(), body.as_bytes(), DD_SECRET.as_bytes()]);
    (
        vec![("app-id", DD_KEY.to_owned()), ("event-sign", sign)],
        body.into_bytes(),
    )
}

/// A paid push (tag 101) of order `order`: no lines, as the platform sends it.
fn doudian_paid(msg_id: &str, order: u64) -> String {
    json!([{"tag": "101", "msg_id": msg_id,
        "data": json!({"p_id": order, "shop_id": 77977, "pay_amount": 40800, "pay_time": Utc::now().timestamp(), "pay_type": 1}).to_string()}])
    .to_string()
}

async fn deliver_doudian(api: &ApiClient, body: String) {
    let (headers, body) = doudian_push(body);
    let (r, text) = api
        .post_raw("/webhooks/doudian", &headers, body)
        .await
        .unwrap();
    assert_eq!(
        (r.status, text.as_str()),
        (200, r#"{"code":0,"msg":"success"}"#)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doudian_and_youzan_pushes_are_acknowledged_as_they_expect() {
    let fake = FakeDoudian::start().await;
    fake.with(|s| s.orders.insert("4837328765348566675".into(), 2));
    let (stack, api) = doudian_stack(&fake).await;
    let dd = doudian_push;
    let before = sales(&api, "d-shanghai").await;
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
    // The paid push has no lines: the order detail function fetches them
    // (a token for the shop, then the detail) and the order is counted.
    let paid = doudian_paid("m-101-1", 4837328765348566675);
    deliver_doudian(&api, paid.clone()).await;
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        sales(&api, "d-shanghai").await - before,
        d("398.00"),
        "the fetched goods, not the 10.00 shipping"
    );
    assert!(held(&api).await.is_empty(), "released once fetched");
    fake.with(|s| {
        assert!(s.refused.is_empty(), "{:?}", s.refused);
        assert_eq!((s.token_calls, s.detail_calls), (1, 1));
    });
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
    assert_eq!(held(&api).await.len(), 1);
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

/// A fetch the platform keeps throttling, and one for an order it says does
/// not exist: both orders stay held, each with why its fetch failed, and
/// their messages are dead-lettered with the reason. Once the platform
/// answers again, a release fetches both and counts each once.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_doudian_fetch_stays_held_until_a_release_fetches_it_again() {
    let fake = FakeDoudian::start().await;
    let (throttled, missing) = ("4881995531871913482", "4881995531871913499");
    fake.with(|s| {
        s.throttled = true;
        s.orders.insert(throttled.into(), 2);
        s.orders.insert(missing.into(), 1);
        s.missing.push(missing.into());
    });
    let (stack, api) = doudian_stack(&fake).await;
    let before = sales(&api, "d-shanghai").await;
    deliver_doudian(
        &api,
        doudian_paid("m-throttled", throttled.parse().unwrap()),
    )
    .await;
    stack.wait_idle(IDLE).await.unwrap();
    fake.with(|s| s.throttled = false);
    deliver_doudian(&api, doudian_paid("m-missing", missing.parse().unwrap())).await;
    stack.wait_idle(IDLE).await.unwrap();

    let list = held(&api).await;
    let detail = |order: &str| {
        let h = list
            .iter()
            .find(|h| h["order_id"] == order)
            .unwrap_or_else(|| panic!("{order} is held: {list:?}"));
        assert_eq!(h["reason"], "awaiting_detail", "{h}");
        h["detail"].as_str().unwrap().to_owned()
    };
    let why = detail(throttled);
    assert!(
        why.starts_with("detail fetch failed (given up after 5 attempts)"),
        "{why}"
    );
    assert!(why.contains("60000"), "the platform's code: {why}");
    let why = detail(missing);
    assert!(
        why.starts_with("detail fetch failed: order_refused"),
        "{why}"
    );
    assert!(why.contains("订单不存在"), "{why}");
    assert_eq!(list.len(), 2);
    // The operator sees the parked fetches and their reasons.
    let r = api
        .get("dead-letters?queue=order-details&limit=10")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut listed: Vec<&str> = r.body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["failure_code"].as_str().unwrap_or(""))
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["order_refused", "retries_exhausted"], "{}", r.body);
    let mut parked = dead_letters(
        &stack,
        "OrderDetailDLQ",
        2,
        std::time::Duration::from_secs(10),
    )
    .await;
    parked.sort_by(|a, b| a.code.cmp(&b.code));
    let codes: Vec<_> = parked
        .iter()
        .map(|p| p.code.clone().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["order_refused", "retries_exhausted"], "{parked:?}");
    assert!(
        parked[1].reason.as_deref().unwrap_or("").contains("60000"),
        "{parked:?}"
    );
    assert_eq!(
        sales(&api, "d-shanghai").await,
        before,
        "nothing held is counted"
    );
    fake.with(|s| {
        assert_eq!(s.detail_calls, 6, "five tries, then one");
        assert_eq!(s.token_calls, 1, "the shop's token is kept");
    });

    // The platform answers again: a release asks for both details again.
    fake.with(|s| s.missing.clear());
    let r = api
        .admin(reqwest::Method::POST, "orders:release", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["queued"], 0, "{}", r.body);
    assert_eq!(r.body["still_held"]["awaiting_detail"], 2, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await - before, d("597.00"));
    assert!(held(&api).await.is_empty());

    // Releasing again, or a fetch message delivered once more, changes
    // nothing: nothing is held, nothing is asked of the platform.
    let r = api
        .admin(reqwest::Method::POST, "orders:release", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(
        r.body,
        json!({"queued": 0, "recorded": 0, "still_held": {}})
    );
    send_raw(&stack, "OrderDetailQueue", &parked[0].body).await;
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(sales(&api, "d-shanghai").await - before, d("597.00"));
    fake.with(|s| {
        assert_eq!(s.detail_calls, 8);
        assert!(s.refused.is_empty(), "{:?}", s.refused);
    });
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
    // A generic-format store's documents name our SKUs.
    let r = api
        .put_csv(
            "stores/jd/sh-outlet/sku-mapping",
            "platform_sku,sku\nX,TEE-WHITE\n",
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "not_native_store"),
        "{}",
        r.body
    );
    let r = api.get("orders?status=open").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
    let r = api.get("orders?status=held&cursor=zz").await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));
    stack.stop().await;
}

/// What one Shopify delivery costs intake in DynamoDB and SQS, counted by
/// SDK interceptors on every request of an intake of its own (so the
/// consumers' requests are not mixed in), once a first delivery has warmed
/// its memory of the app, the store and the table. Run with
/// `-- --nocapture` to see the figures.
#[tokio::test(flavor = "multi_thread")]
async fn a_shopify_delivery_costs_intake_one_read_one_write_and_one_send_per_queue() {
    let (stack, api) = shopify_stack().await;
    let counter = tier_runtime::cost::DynamoCounter::default();
    let sends = tier_runtime::cost::SqsCounter::default();
    let aws = tier_runtime::AwsClients::local_counted(
        local_stack::moto::Moto::shared(),
        Some(counter.clone()),
    )
    .with_sqs_counter(sends.clone());
    let params = [("WebhookSecrets".to_owned(), stack.webhook_secret.clone())].into();
    let env = stack
        .resources
        .function_env(&stack.template, "OrderIntakeFunction", &params)
        .unwrap();
    let intake =
        order_intake::OrderIntake::from_env(&tier_runtime::Env::from_map(env), &aws).unwrap();
    let deliver = |event: &str, id: &str, code: &str| {
        let body = serde_json::to_vec(&shopify_order(
            id,
            &[(code, "4001", 1, "199.00", "0.00")],
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
    // The first delivery reads the app, its secrets, the store and the rule
    // set into intake's memory.
    let turn = stack.turns.lock().await;
    counter.reset();
    assert_eq!(
        intake
            .handle(deliver("evt-warm", "3000", "TEE-W-M"))
            .await
            .status(),
        200
    );
    drop(turn);
    let cold = counter.snapshot();
    let mut report = vec![format!(
        "{:<12} requests {}  read units {}  write units {}  {:?}",
        "first",
        cold.total_requests(),
        cold.read_units,
        cold.write_units,
        cold.requests
    )];
    // (label, event, order, SKU code, reads, writes, sends per queue)
    for (label, event, id, code, reads, writes, per_queue) in [
        ("new order", "evt-3001", "3001", "TEE-W-M", 1, 1, 1),
        ("duplicate", "evt-3001", "3001", "TEE-W-M", 1, 0, 0),
        // A code this instance has not seen mapped: its book entry is read
        // once the mapping is.
        ("new SKU code", "evt-3002", "3002", "808950810", 2, 1, 1),
    ] {
        let turn = stack.turns.lock().await;
        counter.reset();
        sends.reset();
        assert_eq!(intake.handle(deliver(event, id, code)).await.status(), 200);
        drop(turn);
        let usage = counter.snapshot();
        let sent = sends.sends();
        report.push(format!(
            "{label:<12} requests {}  read units {}  write units {}  {:?}  sends {:?}",
            usage.total_requests(),
            usage.read_units,
            usage.write_units,
            usage.requests,
            sent
        ));
        let count = |op: &str| usage.requests.get(op).copied().unwrap_or(0);
        assert_eq!(
            count("GetItem") + count("BatchGetItem") + count("Query"),
            reads,
            "{label}: {usage:?}"
        );
        assert_eq!(count("PutItem"), writes, "{label}: {usage:?}");
        assert_eq!(
            usage.total_requests(),
            reads + writes,
            "{label}: nothing else: {usage:?}"
        );
        if per_queue == 0 {
            assert!(sent.is_empty(), "{label}: {sent:?}");
        } else {
            assert_eq!(sent.len(), 2, "{label}: both event queues: {sent:?}");
            assert!(sent.values().all(|n| *n == per_queue), "{label}: {sent:?}");
        }
    }
    println!(
        "What one Shopify delivery costs intake:\n  {}",
        report.join("\n  ")
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        sales(&api, "d-shanghai").await,
        d("597.00"),
        "each order counted once"
    );
    stack.stop().await;
}
