//! Commission (返佣) through the real queues: the seller's level-1 and
//! level-2 uplines earn at their tiers' rates, a refund reverses it exactly,
//! commission feeds the rules, and withdrawals pay out once.

use chrono::Utc;
use serde_json::json;
use system_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn uplines_earn_commission_that_refunds_reverse_and_withdrawals_pay_out_once() {
    let (stack, mut api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["benefits"]["commission_l2_pct"] = json!("2");
    rules["tiers"][0]["permissions"] = json!(["request_withdrawals"]);
    rules["commission"] = json!({"settlement_days": 0, "min_withdrawal": "10.00"});
    rules["step_ups"] =
        json!([{"id": "earner", "when": {"metric": "cumulative_commission", "gte": "25"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    // d-ningbo sells under d-shanghai, which sells under d-hangzhou.
    assert_eq!(
        api.put(
            "distributors/d-ningbo",
            &json!({"name": "宁波 Ningbo", "upline": "d-shanghai"})
        )
        .await
        .unwrap()
        .status,
        201
    );
    assert_eq!(
        api.put("stores/tmall/nb-shop", &json!({"distributor": "d-ningbo"}))
            .await
            .unwrap()
            .status,
        200
    );
    stack.wait_idle(IDLE).await.unwrap();

    let now = Utc::now();
    api.webhook(
        "tmall",
        "nb-shop",
        &docs::paid("n1", "N1", "b1", &[("HOODIE-GREY", 2, "500.00")], now),
    )
    .await
    .unwrap(); // 1,000.00
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&shanghai["metrics"]["cumulative_commission"]), d("50")); // 5 % at level 1
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("20")
    ); // 2 % at level 2
    // Commission feeds the rules: d-shanghai moved up on it.
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "commission");

    // A partial refund reverses exactly, at the rate the order was counted at.
    api.webhook(
        "tmall",
        "nb-shop",
        &docs::refunded("n1r", "N1", "RF1", "400.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&shanghai["metrics"]["cumulative_commission"]), d("30"));
    // Its level-1 downline's sales are its downline sales, net of the refund.
    assert_eq!(
        dec(&shanghai["metrics"]["downline_sales"]["lifetime"]),
        d("600")
    );
    assert_eq!(shanghai["metrics"]["downline_orders"]["lifetime"], 1);
    assert_eq!(
        dec(&shanghai["metrics"]["downline_sales_all"]["lifetime"]),
        d("600")
    );
    assert_eq!(shanghai["metrics"]["downline_users_all"], 1);
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        dec(&hangzhou["metrics"]["downline_sales"]["lifetime"]),
        d("0"),
        "d-ningbo is not its level 1"
    );
    assert_eq!(
        dec(&hangzhou["metrics"]["downline_sales_all"]["lifetime"]),
        d("600"),
        "but it is in its network"
    );
    assert_eq!(
        (
            hangzhou["metrics"]["downline_users_all"].as_i64(),
            hangzhou["metrics"]["valid_downline_users_all"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let ningbo = distributor(&api, "d-ningbo").await;
    assert_eq!(
        (
            ningbo["metrics"]["downline_users"].as_i64(),
            ningbo["metrics"]["downline_users_all"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("12")
    );

    // The balance, by API key.
    let http = reqwest::Client::new();
    let balance = http
        .get(format!(
            "{}/v1/distributors/d-hangzhou/commission",
            api.base_url
        ))
        .bearer_auth(api.api_key.clone().unwrap())
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(dec(&balance["balance"]["earned"]), d("12"));
    assert_eq!(dec(&balance["balance"]["withdrawable"]), d("12"));
    assert_eq!(balance["entries"][0]["level"], 2);
    assert_eq!(balance["entries"][0]["source"], "d-ningbo");

    // Withdrawals: d-hangzhou (Junior, allowed) takes 10, once per request.
    let pay = |amount: &str, request: &str| json!({"request_id": request, "amount": amount});
    let post = |path: String, body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.admin(reqwest::Method::POST, &path, Some(&body))
                .await
                .unwrap()
        }
    };
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("10.00", "W-1"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("10.00", "W-1"),
    )
    .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("duplicate"))
    );
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("11.00", "W-1"),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "request_id_reused"));
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("10.00", "W-2"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "insufficient_balance"),
        "2.00 left: {}",
        r.body
    );
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("5.00", "W-3"),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "below_minimum"));
    let r = post(
        "distributors/d-hangzhou/withdrawals".into(),
        pay("-5.00", "W-4"),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "invalid_amount"));
    // Intermediate has no withdrawal permission in this rule set.
    let r = post(
        "distributors/d-shanghai/withdrawals".into(),
        pay("20.00", "W-5"),
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"));
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(dec(&hangzhou["metrics"]["withdrawn_commission"]), d("10"));
    api.api_key = None;
    stack.stop().await;
}

/// A tier's fixed amount per unit for a SKU replaces the rate on that SKU's
/// lines; returned units take it back, and the entry keeps its terms.
#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_amount_per_sku_replaces_the_rate_on_its_lines() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["benefits"]["commission_fixed"] = json!({"JACKET-DOWN": "50.00"});
    assert_eq!(
        api.put("rule-set", &rules).await.unwrap().status,
        201,
        "d-hangzhou (Junior, 5 %) is d-shanghai's upline"
    );

    let now = Utc::now();
    // 3 jackets (3,897.00) and 2 hoodies (918.00).
    let order = docs::paid(
        "x1",
        "X1",
        "b1",
        &[("JACKET-DOWN", 3, "1299.00"), ("HOODIE-GREY", 2, "459.00")],
        now,
    );
    api.webhook("jd", "sh-outlet", &order).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    // 3 × 50 + 5 % of 918.
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("195.90")
    );

    // Later the tier's amount changes; the order keeps the terms it was counted on.
    rules["tiers"][0]["benefits"]["commission_fixed"] = json!({"JACKET-DOWN": "80.00"});
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    // One jacket comes back with its 1,299.00: 2 × 50 + 45.90.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("x1r", "X1", "RX1", "1299.00", &[("1", 1)], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("145.90")
    );
    let balance = api
        .read("/v1/distributors/d-hangzhou/commission")
        .await
        .unwrap();
    assert_eq!(balance.status, 200, "{}", balance.body);
    let entry = &balance.body["entries"][0];
    assert_eq!(dec(&entry["amount"]), d("145.90"), "{}", balance.body);
    assert_eq!(entry["fixed"]["JACKET-DOWN"], "50.00");

    // A negative amount is refused with its field.
    rules["tiers"][0]["benefits"]["commission_fixed"] = json!({"JACKET-DOWN": "-1.00"});
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_rule_set"));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("tiers[0].benefits.commission_fixed.JACKET-DOWN"),
        "{}",
        r.body
    );
    stack.stop().await;
}

/// Frozen commission settles by whole days in the brand's calendar, kept as
/// counters (no read lists the entries); refunds take it back from frozen;
/// entries come a page at a time.
#[tokio::test(flavor = "multi_thread")]
async fn commission_settles_by_day_from_counters_and_entries_come_in_pages() {
    use chrono::Duration;
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["permissions"] = serde_json::json!(["request_withdrawals"]);
    rules["commission"] = serde_json::json!({"settlement_days": 7});
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    for i in 0..3 {
        // 1,000.00 each: 50.00 for d-hangzhou (Junior, 5 %).
        api.webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                &format!("c{i}"),
                &format!("C{i}"),
                "b1",
                &[("HOODIE-GREY", 2, "500.00")],
                now,
            ),
        )
        .await
        .unwrap();
    }
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("c0r", "C0", "RC0", "400.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let page = api
        .read("/v1/distributors/d-hangzhou/commission?limit=2")
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        dec(&page.body["balance"]["earned"]),
        d("130"),
        "50 + 50 + 30"
    );
    assert_eq!(dec(&page.body["balance"]["frozen"]), d("130"));
    assert_eq!(dec(&page.body["balance"]["withdrawable"]), d("0"));
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = api
        .read(&format!(
            "/v1/distributors/d-hangzhou/commission?limit=2&cursor={cursor}"
        ))
        .await
        .unwrap();
    assert_eq!(
        rest.body["entries"].as_array().unwrap().len(),
        1,
        "{}",
        rest.body
    );
    assert!(rest.body["next_cursor"].is_null());
    let r = api
        .read("/v1/distributors/d-hangzhou/commission?cursor=nope")
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));

    // Nothing is withdrawable yet; on the seventh day in Shanghai all of it is.
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let calendar = tier_domain::BrandCalendar::default();
    let hangzhou = tier_domain::DistributorId::parse("d-hangzhou").unwrap();
    let amount = tier_domain::Money::parse("130.00").unwrap();
    let early = table
        .withdraw(
            &hangzhou,
            "W-early",
            amount,
            now,
            calendar.day_of(now).plus_days(6),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            early,
            tier_store::commission::WithdrawOutcome::Insufficient { .. }
        ),
        "{early:?}"
    );
    let day7 = calendar.day_of(now).plus_days(7);
    let paid = table
        .withdraw(&hangzhou, "W-1", amount, now + Duration::days(7), day7)
        .await
        .unwrap();
    assert!(
        matches!(paid, tier_store::commission::WithdrawOutcome::Paid(_)),
        "{paid:?}"
    );
    let after = api
        .read("/v1/distributors/d-hangzhou/commission")
        .await
        .unwrap();
    assert_eq!(dec(&after.body["balance"]["withdrawn"]), d("130"));
    stack.stop().await;
}

/// An order keeps the terms it was first counted on, also when they earned
/// a receiver nothing: a rate set later never pays on its refunds.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_set_after_the_order_never_pays_on_its_refund() {
    let (stack, api) = clothing_stack().await;
    // d-ningbo sells under d-shanghai, under d-hangzhou; no level-2 rate yet.
    assert_eq!(
        api.put(
            "distributors/d-ningbo",
            &json!({"name": "宁波 Ningbo", "upline": "d-shanghai"})
        )
        .await
        .unwrap()
        .status,
        201
    );
    assert_eq!(
        api.put("stores/tmall/nb-shop", &json!({"distributor": "d-ningbo"}))
            .await
            .unwrap()
            .status,
        200
    );
    let now = Utc::now();
    api.webhook(
        "tmall",
        "nb-shop",
        &docs::paid("z1", "Z1", "b1", &[("HOODIE-GREY", 2, "500.00")], now),
    )
    .await
    .unwrap(); // 1,000.00
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("0")
    );

    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["benefits"]["commission_l2_pct"] = json!("2");
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    api.webhook(
        "tmall",
        "nb-shop",
        &docs::refunded("z1r", "Z1", "RZ1", "400.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        dec(&hangzhou["metrics"]["cumulative_commission"]),
        d("0"),
        "the refund of an order that earned nothing pays nothing"
    );
    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["cumulative_commission"]),
        d("30"),
        "5 % of 600.00 at level 1"
    );
    stack.stop().await;
}

/// A fully refunded order shows on the upline's commission page at 0.00
/// whichever arrived first, the payment or the refund.
#[tokio::test(flavor = "multi_thread")]
async fn a_refunded_order_shows_the_same_whichever_event_came_first() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let paid = |event: &str, order: &str| {
        docs::paid(event, order, "b1", &[("TEE-WHITE", 1, "199.00")], now)
    };
    let refund = |event: &str, order: &str| {
        docs::refunded(event, order, &format!("RF-{order}"), "199.00", &[], now)
    };
    // Paid, then refunded.
    for doc in [paid("p1", "IN-ORDER"), refund("r1", "IN-ORDER")] {
        assert_eq!(
            api.webhook("jd", "sh-outlet", &doc).await.unwrap().status,
            202
        );
        stack.wait_idle(IDLE).await.unwrap();
    }
    // The refund overtakes the payment.
    for doc in [refund("r2", "OVERTAKEN"), paid("p2", "OVERTAKEN")] {
        assert_eq!(
            api.webhook("jd", "sh-outlet", &doc).await.unwrap().status,
            202
        );
        stack.wait_idle(IDLE).await.unwrap();
    }
    let page = api
        .read("/v1/distributors/d-hangzhou/commission")
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let amount_of = |order: &str| {
        page.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["order"] == format!("jd/sh-outlet/{order}"))
            .map(|e| dec(&e["amount"]))
    };
    assert_eq!(amount_of("IN-ORDER"), Some(d("0")), "{}", page.body);
    assert_eq!(amount_of("OVERTAKEN"), Some(d("0")), "{}", page.body);
    assert_eq!(dec(&page.body["balance"]["earned"]), d("0"));
    stack.stop().await;
}
