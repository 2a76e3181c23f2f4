//! Price lookup for ERP integrations through the real API: API keys and
//! their scopes, per-tier permissions, versioned price books published
//! whole or not at all, freshness, the batch endpoint, and the cost in
//! DynamoDB round trips.

use chrono::Utc;
use serde_json::{Value, json};
use system_tests::*;

fn price_of<'a>(reply: &'a Value, sku: &str) -> &'a Value {
    reply["prices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == sku)
        .unwrap_or_else(|| panic!("no price for {sku}: {reply}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_required_scoped_and_revocable() {
    let (stack, api) = clothing_stack().await;
    let mut anonymous = api.clone();
    anonymous.api_key = None;
    let r = anonymous
        .prices("d-shanghai", &["TEE-WHITE"])
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, "missing_api_key"));
    let mut garbage = api.clone();
    garbage.api_key = Some("not-a-key".into());
    assert_eq!(
        garbage
            .prices("d-shanghai", &["TEE-WHITE"])
            .await
            .unwrap()
            .code(),
        "invalid_api_key"
    );
    // Well formed, unknown id; then a known id with the wrong secret.
    let mut forged = api.clone();
    forged.api_key = Some(format!("tk_{}_{}", "0".repeat(16), "0".repeat(64)));
    assert_eq!(
        forged
            .prices("d-shanghai", &["TEE-WHITE"])
            .await
            .unwrap()
            .code(),
        "invalid_api_key"
    );
    let real = api.api_key.clone().unwrap();
    let id = &real[3..19];
    forged.api_key = Some(format!("tk_{id}_{}", "0".repeat(64)));
    assert_eq!(
        forged
            .prices("d-shanghai", &["TEE-WHITE"])
            .await
            .unwrap()
            .code(),
        "invalid_api_key"
    );

    // A distributor's own key reads its own prices, not another's.
    let mut own = api.clone();
    own.api_key = Some(
        api.create_api_key(
            "Shanghai's shop system",
            json!({"type": "distributor", "distributor_id": "d-shanghai"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        own.prices("d-shanghai", &["TEE-WHITE"])
            .await
            .unwrap()
            .status,
        200
    );
    let r = own.prices("d-suzhou", &["TEE-WHITE"]).await.unwrap();
    assert_eq!((r.status, r.code()), (403, "forbidden_distributor"));
    let r = own.prices_batch(&json!({"items": [{"distributor_id": "d-shanghai", "sku": "TEE-WHITE"}, {"distributor_id": "d-suzhou", "sku": "TEE-WHITE"}]})).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body["results"][0]["price"].is_object());
    assert_eq!(
        r.body["results"][1]["error"]["code"],
        "forbidden_distributor"
    );
    // Unknown distributor for an ERP key, after the key check.
    let r = api.prices("d-ghost", &["TEE-WHITE"]).await.unwrap();
    assert_eq!((r.status, r.code()), (404, "distributor_not_found"));

    // Listed without secrets; revoked keys stop working at once.
    let keys = api.get("api-keys").await.unwrap();
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 2);
    assert!(!keys.body.to_string().contains("secret"), "{}", keys.body);
    let own_id = own.api_key.as_ref().unwrap()[3..19].to_owned();
    let r = api
        .admin(reqwest::Method::DELETE, &format!("api-keys/{own_id}"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = own.prices("d-shanghai", &["TEE-WHITE"]).await.unwrap();
    assert_eq!((r.status, r.code()), (401, "revoked_api_key"));
    let r = api
        .admin(reqwest::Method::DELETE, "api-keys/ffffffffffffffff", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, "api_key_not_found"));
    let r = api.admin(reqwest::Method::POST, "api-keys", Some(&json!({"name": "x", "scope": {"type": "distributor", "distributor_id": "d-ghost"}}))).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_distributor"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_price_book_is_refused_whole_with_every_row_named() {
    let (stack, api) = clothing_stack().await;
    let before = api.get("price-book").await.unwrap();
    let version = before.body["version"].as_u64().unwrap();
    let csv = "type,sku,tier,distributor,min_qty,price,discount_pct\n\
               base,TEE-WHITE,,,,189.00,\n\
               base,CAP,,,,-5.00,\n\
               tier_price,TEE-WHITE,platinum,,,150.00,\n\
               tier_price,GHOST,senior,,,10.00,\n\
               base,TEE-WHITE,,,,179.00,\n\
               floor,TEE-WHITE,,,,160.00,\n\
               tier_price,TEE-WHITE,senior,,,150.00,\n";
    let r = api.put_csv("price-book", csv).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_price_book"),
        "{}",
        r.body
    );
    let lines: Vec<u64> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    for line in [3, 4, 5, 6, 8] {
        assert!(
            lines.contains(&line),
            "line {line} should be reported: {}",
            r.body
        );
    }
    // Nothing changed: same version, same price.
    assert_eq!(
        api.get("price-book").await.unwrap().body["version"]
            .as_u64()
            .unwrap(),
        version
    );
    assert_eq!(
        price_of(
            &api.prices("d-shanghai", &["TEE-WHITE"]).await.unwrap().body,
            "TEE-WHITE"
        )["unit_price"],
        "199.00"
    );

    // A good book is the next version, visible on the very next lookup.
    let good = "type,sku,tier,distributor,min_qty,price,discount_pct\n\
                base,TEE-WHITE,,,,189.00,\n\
                override,TEE-WHITE,,d-shanghai,,170.00,\n\
                base,HOODIE-GREY,,,,459.00,\n\
                base,JACKET-DOWN,,,,1299.00,\n";
    let r = api.put_csv("price-book", good).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["version"].as_u64().unwrap(), version + 1);
    let lookup = api.prices("d-shanghai", &["TEE-WHITE"]).await.unwrap();
    assert_eq!(
        lookup.body["price_book_version"].as_u64().unwrap(),
        version + 1
    );
    let tee = price_of(&lookup.body, "TEE-WHITE");
    assert_eq!(
        (tee["unit_price"].as_str(), tee["rule"].as_str()),
        (Some("170.00"), Some("distributor_override"))
    );
    assert_eq!(
        price_of(
            &api.prices("d-suzhou", &["TEE-WHITE"]).await.unwrap().body,
            "TEE-WHITE"
        )["unit_price"],
        "189.00"
    );

    let r = api.put("price-book", &json!({"rows": []})).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_price_book"));
    let r = api
        .put_csv("price-book", "sku,price\nTEE,1\n")
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_price_book"));
    assert_eq!(r.body["errors"][0]["line"], 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quantities_volume_breaks_floors_and_the_batch_endpoint() {
    let (stack, api) = clothing_stack().await;
    // TEE-WHITE: base 199, floor 129, 3 % off from 100 pieces.
    let r = api
        .prices_query(
            "d-shanghai",
            &["TEE-WHITE", "HOODIE-GREY"],
            &[("qty", "100"), ("qty", "1")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let tee = price_of(&r.body, "TEE-WHITE");
    assert_eq!(tee["quantity"], 100);
    assert_eq!(tee["unit_price"], "193.03"); // 199 × 0.97 = 193.03
    assert_eq!(tee["volume_break"]["min_qty"], 100);
    assert_eq!(price_of(&r.body, "HOODIE-GREY")["unit_price"], "459.00");
    let r = api
        .prices_query("d-shanghai", &["TEE-WHITE"], &[("qty", "99")])
        .await
        .unwrap();
    assert_eq!(price_of(&r.body, "TEE-WHITE")["unit_price"], "199.00");

    let r = api
        .prices_batch(&json!({"items": [
            {"distributor_id": "d-shanghai", "sku": "TEE-WHITE", "quantity": 100},
            {"distributor_id": "d-suzhou", "sku": "JACKET-DOWN"},
            {"distributor_id": "d-ghost", "sku": "TEE-WHITE"},
            {"distributor_id": "d-shanghai", "sku": "NOPE"}]}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["price"]["unit_price"], "193.03");
    assert_eq!(results[1]["price"]["unit_price"], "1299.00");
    assert_eq!(results[2]["error"]["code"], "distributor_not_found");
    assert_eq!(results[3]["error"]["code"], "unknown_sku");
    let r = api.prices_batch(&json!({"items": []})).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_batch_size"));
    let r = api.prices_batch(&json!({"items": [{"distributor_id": "d-shanghai", "sku": "TEE-WHITE", "quantity": 0}]})).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_quantity"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_tier_permissions_are_enforced() {
    let (stack, api) = clothing_stack().await;
    // Junior may not see stock levels.
    let r = api
        .prices_query("d-shanghai", &["TEE-WHITE"], &[("include", "stock")])
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (403, "permission_denied"));
    // The brand grants it to Junior in a new rule set version.
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["permissions"] = json!(["see_stock"]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let r = api
        .prices_query(
            "d-shanghai",
            &["TEE-WHITE", "JACKET-DOWN"],
            &[("include", "stock")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["stock"]["TEE-WHITE"], 5000);
    assert_eq!(r.body["stock"]["JACKET-DOWN"], 40);
    // Spread over buckets, the SKU's pool is theirs: the lookup sums them.
    let r = api
        .put("skus/JACKET-DOWN/buckets", &json!({"buckets": 4}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .prices_query("d-shanghai", &["JACKET-DOWN"], &[("include", "stock")])
        .await
        .unwrap();
    assert_eq!(r.body["stock"]["JACKET-DOWN"], 40, "{}", r.body);
    // A tier without see_promotions never sees a promotion price, even one
    // that lists it.
    let mut book = local_stack::demo::price_book_with_promotion(Utc::now());
    book["promotions"][0]["tiers"] = json!(["junior", "senior"]);
    assert_eq!(api.put("price-book", &book).await.unwrap().status, 201);
    let jacket = api.prices("d-shanghai", &["JACKET-DOWN"]).await.unwrap();
    let jacket = price_of(&jacket.body, "JACKET-DOWN");
    assert_eq!(jacket["rule"], "base_price");
    assert!(
        jacket["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["rule"] != "promotion"),
        "{jacket}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_keep_the_price_the_distributor_was_entitled_to() {
    let (stack, api) = clothing_stack().await;
    // d-shanghai is Junior: entitled to 199.00 for a T-shirt it resells at 179.00.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 2, "179.00")], Utc::now()),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let r = api
        .get("orders/jd/sh-outlet/O1/reservations")
        .await
        .unwrap();
    let line = &r.body["lines"]["1"];
    assert_eq!(line["unit_price"], "179.00");
    assert_eq!(line["entitled_unit_price"], "199.00");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_skus_cost_two_round_trips() {
    let (stack, api) = clothing_stack().await;
    let mut csv = String::from("type,sku,tier,distributor,min_qty,price,discount_pct\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "base,SKU-{i:03},,,,{}.00,\ntier_price,SKU-{i:03},senior,,,{}.00,\n",
            100 + i,
            90 + i
        ));
    }
    assert_eq!(api.put_csv("price-book", &csv).await.unwrap().status, 201);
    let skus: Vec<String> = (0..100).map(|i| format!("SKU-{i:03}")).collect();
    let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
    stack.dynamo_usage.reset();
    let r = api.prices("d-shanghai", &skus).await.unwrap();
    let usage = stack.dynamo_usage.snapshot();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["prices"].as_array().unwrap().len(), 100);
    assert_eq!(usage.total_requests(), 2, "{usage:?}");
    assert_eq!(usage.requests.get("BatchGetItem"), Some(&2), "{usage:?}");
    stack.stop().await;
}

/// A store-wide promotion (双十一 over the whole catalogue): each SKU's entry
/// keeps the promotion without its SKU list, so what a publication writes
/// and a lookup reads do not grow with the square of the catalogue, and the
/// promotion, stored in parts, still reads back whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_wide_promotion_is_kept_once_not_in_every_entry() {
    const SKUS: usize = 9_000;
    let (stack, api) = clothing_stack().await;
    let skus: Vec<String> = (0..SKUS).map(|i| format!("SKU-{i:05}")).collect();
    let rows: Vec<serde_json::Value> = skus
        .iter()
        .map(|s| json!({"type": "base", "sku": s, "price": "100.00"}))
        .collect();
    let book = json!({"rows": rows, "promotions": [{"id": "double-11", "name": "双十一 Double 11", "skus": skus, "tiers": ["senior"],
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z", "discount_pct": "20", "subsidy_pct": "2"}]});
    let r = api.put("price-book", &book).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let version = r.body["version"].as_u64().unwrap();

    // An entry is small: no list of 9,000 SKUs in it.
    let entry = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(stack.table_name())
        .key(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("BOOK#{version:06}")),
        )
        .key(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("SKU#SKU-04321".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let book_json = entry["book"].as_s().unwrap();
    assert!(
        book_json.len() < 1024,
        "{} bytes: {book_json}",
        book_json.len()
    );
    // The lookup still applies it, for a tier that sees promotions.
    let r = api
        .put(
            "distributors/d-shanghai/tier",
            &json!({"tier": "senior", "reason": "promotion test"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.prices("d-shanghai", &["SKU-04321"]).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        dec(&r.body["prices"][0]["unit_price"]),
        d("80"),
        "{}",
        r.body
    );
    // And operators read it back whole, its SKUs in order.
    let r = api.get("price-book").await.unwrap();
    let listed: Vec<&str> = r.body["promotions"][0]["skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), SKUS);
    assert_eq!(listed, skus.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.body["promotions"].as_array().unwrap().len(), 1);
    stack.stop().await;
}
