//! The seed's clothing brand through signed webhooks: tiers move up and down
//! as its rules say, every change is recorded with its reason, and the price
//! lookup follows the tier.

use chrono::{Duration, Utc};
use serde_json::Value;
use system_tests::*;

const SKUS: [&str; 3] = ["TEE-WHITE", "HOODIE-GREY", "JACKET-DOWN"];

fn price_of<'a>(reply: &'a Value, sku: &str) -> &'a Value {
    reply["prices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == sku)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn monthly_sales_thresholds_move_the_tier_and_the_price_follows() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let before = api.prices("d-shanghai", &SKUS).await.unwrap();
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["tier"]["id"], "junior");
    assert_eq!(
        price_of(&before.body, "HOODIE-GREY")["unit_price"],
        "459.00"
    );
    assert_eq!(price_of(&before.body, "HOODIE-GREY")["rule"], "base_price");

    // 38 × 1299 = 49,362: just under 50,000.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e1", "O1", "b1", &[("JACKET-DOWN", 38, "1299.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "junior");

    // + 2 × 459 = 50,280: Intermediate, and the next lookup shows 5 % off.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e2", "O2", "b2", &[("HOODIE-GREY", 2, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    let mid = api.prices("d-shanghai", &SKUS).await.unwrap();
    assert_eq!(mid.body["tier"]["id"], "intermediate");
    assert_eq!(price_of(&mid.body, "HOODIE-GREY")["unit_price"], "436.05");
    assert_eq!(price_of(&mid.body, "HOODIE-GREY")["rule"], "tier_discount");

    // Intermediate does not see the Senior/Gold jacket promotion.
    assert_eq!(price_of(&mid.body, "JACKET-DOWN")["rule"], "tier_discount");
    assert!(
        price_of(&mid.body, "JACKET-DOWN")
            .get("promotion")
            .is_none()
    );

    // + 110 × 459 = 50,490 → 100,770: Senior, with its promotion on jackets,
    // which beats its fixed jacket price while open.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e3", "O3", "b3", &[("HOODIE-GREY", 110, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let after = api.prices("d-shanghai", &SKUS).await.unwrap();
    assert_eq!(after.body["tier"]["id"], "senior");
    let jacket = price_of(&after.body, "JACKET-DOWN");
    assert_eq!(jacket["unit_price"], "1049.00");
    assert_eq!(jacket["rule"], "promotion");
    assert_eq!(jacket["candidates"][1]["rule"], "tier_fixed_price");
    assert_eq!(jacket["candidates"][1]["unit_price"], "1099.00");
    assert_eq!(jacket["promotion"]["subsidy_pct"], "2");
    assert!(
        jacket["valid_until"].is_string(),
        "the promotion's end bounds the answer"
    );
    assert_eq!(price_of(&after.body, "TEE-WHITE")["unit_price"], "179.10");

    // The history says what moved it, with the values.
    let shanghai = distributor(&api, "d-shanghai").await;
    let history = shanghai["tier_history"].as_array().unwrap();
    let latest = &history[0];
    assert_eq!(latest["from"], "intermediate");
    assert_eq!(latest["to"], "senior");
    assert_eq!(latest["direction"], "up");
    assert_eq!(latest["cause"]["event_id"], "e3");
    let reason = &latest["reasons"][0];
    assert_eq!(reason["rule"], "upgrade:senior");
    assert_eq!(dec(&reason["observed"][0]["value"]), d("100770"));
    assert_eq!(dec(&reason["observed"][0]["threshold"]), d("100000"));
    assert_eq!(
        history.len(),
        3,
        "assignment, up to intermediate, up to senior: {history:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_valid_downline_users_move_up_one_tier_and_a_refund_moves_it_back() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    for i in 1..=4 {
        api.webhook(
            "douyin",
            "sz-live",
            &docs::paid(
                &format!("p{i}"),
                &format!("O{i}"),
                &format!("fan-{i}"),
                &[("TEE-WHITE", 1, "199.00")],
                now,
            ),
        )
        .await
        .unwrap();
    }
    // A repeat buyer is still one user.
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("p4b", "O4b", "fan-4", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let d4 = distributor(&api, "d-suzhou").await;
    assert_eq!(d4["metrics"]["valid_downline_users"], 4);
    assert_eq!(d4["distributor"]["tier"], "junior");

    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("p5", "O5", "fan-5", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let d5 = distributor(&api, "d-suzhou").await;
    assert_eq!(d5["metrics"]["valid_downline_users"], 5);
    assert_eq!(d5["metrics"]["downline_users"], 5);
    assert_eq!(d5["distributor"]["tier"], "intermediate");
    assert_eq!(
        d5["tier_history"][0]["reasons"][0]["rule"],
        "step_up:five-valid-downline-users"
    );

    // fan-5's only order is refunded in full: no longer a valid user.
    api.webhook(
        "douyin",
        "sz-live",
        &docs::refunded("r5", "O5", "RF5", "199.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let after = distributor(&api, "d-suzhou").await;
    assert_eq!(after["metrics"]["valid_downline_users"], 4);
    assert_eq!(after["metrics"]["downline_users"], 5);
    assert_eq!(after["distributor"]["tier"], "junior");
    assert_eq!(after["tier_history"][0]["direction"], "down");
    let reasons = after["tier_history"][0]["reasons"].as_array().unwrap();
    let step = reasons
        .iter()
        .find(|r| r["rule"] == "step_up:five-valid-downline-users")
        .expect("the lost step-up explains the move");
    assert_eq!(step["met"], false);
    assert_eq!(step["observed"][0]["value"], "4");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_move_metrics_back_exactly_and_can_move_the_tier_down() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("a", "OA", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap(); // 55,080
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "b",
            "OB",
            "b2",
            &[("HOODIE-GREY", 100, "459.00"), ("TEE-WHITE", 3, "199.99")],
            now,
        ),
    )
    .await
    .unwrap(); // 45,900 + 599.97
    stack.wait_idle(IDLE).await.unwrap();
    let d1 = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&d1["metrics"]["sales"]["lifetime"]), d("101579.97"));
    assert_eq!(d1["distributor"]["tier"], "senior");

    // A partial refund of 0.99, then a full refund of the rest of order B.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("rb1", "OB", "RB1", "0.99", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let d2 = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&d2["metrics"]["sales"]["lifetime"]), d("101578.98"));
    assert_eq!(d2["metrics"]["orders"]["lifetime"], 2);
    assert_eq!(d2["distributor"]["tier"], "senior");

    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("rb2", "OB", "RB2", "46498.98", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let d3 = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&d3["metrics"]["sales"]["lifetime"]), d("55080"));
    let month = now
        .with_timezone(&chrono_tz_shanghai())
        .format("%Y-%m")
        .to_string();
    assert_eq!(dec(&d3["metrics"]["sales"]["by_month"][&month]), d("55080"));
    assert_eq!(
        d3["metrics"]["orders"]["lifetime"], 1,
        "a fully refunded order no longer counts"
    );
    assert_eq!(d3["metrics"]["valid_downline_users"], 1);
    assert_eq!(d3["distributor"]["tier"], "intermediate");
    let down = &d3["tier_history"][0];
    assert_eq!(down["direction"], "down");
    assert_eq!(down["cause"]["event_id"], "rb2");
    assert_eq!(down["reasons"][0]["rule"], "upgrade:senior");
    assert_eq!(dec(&down["reasons"][0]["observed"][0]["value"]), d("55080"));
    stack.stop().await;
}

fn chrono_tz_shanghai() -> chrono::FixedOffset {
    // Asia/Shanghai has had no daylight saving since 1991.
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_that_overtakes_its_order_ends_in_the_same_metrics() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("r-early", "OX", "RFX", "100.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["sales"]["lifetime"]),
        d("0")
    );
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p-late", "OX", "b1", &[("HOODIE-GREY", 1, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["sales"]["lifetime"]),
        d("359")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_month_end_review_applies_the_rules_to_the_new_month() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e1", "O1", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    // The review at the start of next month: this month's sales are zero.
    let next_month = now + Duration::days(40);
    let report = stack.tier_evaluation.review(next_month).await.unwrap();
    // A distributor moved into a tier whose members are listed later is met
    // again, harmlessly: at least everyone once.
    assert!(report.reviewed >= 3, "{report:?}");
    assert_eq!(report.changed, 1);
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "junior");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "review");
    // A rerun of the same review changes nothing.
    let again = stack.tier_evaluation.review(next_month).await.unwrap();
    assert_eq!(again.changed, 0);
    assert_eq!(
        distributor(&api, "d-shanghai").await["tier_history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    stack.stop().await;
}

/// The food brand: quarterly sales past the Senior threshold make a
/// distributor Senior at once.
#[tokio::test(flavor = "multi_thread")]
async fn food_brand_quarterly_sales_cross_senior_at_once() {
    let (stack, api) = clothing_stack().await;
    let food = serde_json::json!({
    "tiers": [
      {"id": "junior", "name": "Junior", "rank": 0},
      {"id": "intermediate", "name": "Intermediate", "rank": 1, "upgrade": {"metric": "sales_amount", "window": "quarter", "gte": "100000"}},
      {"id": "senior", "name": "Senior", "rank": 2, "upgrade": {"metric": "sales_amount", "window": "quarter", "gte": "300000"}}
    ]});
    assert_eq!(api.put("rule-set", &food).await.unwrap().status, 201);
    let now = Utc::now();
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("f1", "F1", "b1", &[("JACKET-DOWN", 100, "1299.00")], now),
    )
    .await
    .unwrap(); // 129,900
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-suzhou").await, "intermediate");
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("f2", "F2", "b2", &[("JACKET-DOWN", 140, "1299.00")], now),
    )
    .await
    .unwrap(); // 311,760
    stack.wait_idle(IDLE).await.unwrap();
    let suzhou = distributor(&api, "d-suzhou").await;
    assert_eq!(suzhou["distributor"]["tier"], "senior");
    let reason = &suzhou["tier_history"][0]["reasons"][0];
    assert_eq!(reason["rule"], "upgrade:senior");
    assert_eq!(reason["observed"][0]["window"], "quarter");
    assert_eq!(dec(&reason["observed"][0]["value"]), d("311760"));
    stack.stop().await;
}

fn protected_rules(extra: serde_json::Value) -> serde_json::Value {
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["downgrades"] = extra;
    rules
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downgrade_waits_for_the_protection_period_and_the_review() {
    let (stack, api) = clothing_stack().await;
    let rules =
        protected_rules(serde_json::json!({"protection_days": 30, "strategy": "review_only"}));
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("u1", "U1", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    // Review only: a full refund does not downgrade on the spot.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("u1r", "U1", "RF1", "55080.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    // A review inside the 30-day protection period keeps the tier ...
    let inside = stack
        .tier_evaluation
        .review(now + Duration::days(20))
        .await
        .unwrap();
    assert_eq!(inside.changed, 0);
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    // ... the first review after it applies the rules.
    let after = stack
        .tier_evaluation
        .review(now + Duration::days(31))
        .await
        .unwrap();
    assert_eq!(after.changed, 1);
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "junior");
    assert_eq!(shanghai["tier_history"][0]["direction"], "down");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "review");
    stack.stop().await;
}

/// A brand rehearses what its reviews will do, through the local stack's
/// own command (`local-stack review --at`): upgraded today with a 30-day
/// protection period, its sales collapse; the review inside the period
/// keeps the tier, the one after it moves the distributor down to the
/// highest tier it still qualifies for, not one step, not to the bottom.
#[tokio::test(flavor = "multi_thread")]
async fn a_rehearsed_review_keeps_the_protected_tier_then_moves_it_down() {
    use local_stack::rehearse::{Kind, request};
    let (stack, api) = clothing_stack().await;
    let lifetime =
        |gte: &str| serde_json::json!({"metric": "sales_amount", "window": "lifetime", "gte": gte});
    let rules = serde_json::json!({
        "tiers": [
            {"id": "junior", "name": "Junior", "rank": 0},
            {"id": "intermediate", "name": "Intermediate", "rank": 1, "upgrade": lifetime("50000")},
            {"id": "senior", "name": "Senior", "rank": 2, "upgrade": lifetime("100000")},
            {"id": "gold", "name": "Gold", "rank": 3, "upgrade": lifetime("200000")}
        ],
        "downgrades": {"protection_days": 30, "strategy": "review_only"}
    });
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let now = Utc::now();
    // 460 hoodies: 211,140.00, Gold today.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p1", "P1", "b1", &[("HOODIE-GREY", 460, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "gold");
    // Sales collapse: 150,000.00 refunded leaves 61,140.00, Intermediate's.
    // Only reviews move tiers down under these rules.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("p1r", "P1", "RF1", "150000.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "gold");

    let shanghai_tz = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let inside = (now + Duration::days(20)).with_timezone(&shanghai_tz);
    let answer = request(&stack.base_url, Kind::Monthly, inside)
        .await
        .unwrap();
    assert_eq!(answer["created"], true, "{answer}");
    assert_eq!(answer["review"]["state"], "done", "{answer}");
    assert_eq!(answer["review"]["changed"], 0, "protected: {answer}");
    assert_eq!(tier_of(&api, "d-shanghai").await, "gold");

    let after = (now + Duration::days(31)).with_timezone(&shanghai_tz);
    let answer = request(&stack.base_url, Kind::Monthly, after)
        .await
        .unwrap();
    assert_eq!(answer["review"]["changed"], 1, "{answer}");
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    assert_eq!(shanghai["tier_history"][0]["direction"], "down");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "review");
    // The same period again: the run that exists, at its own instant.
    let again = request(&stack.base_url, Kind::Monthly, after + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(again["review"]["at"], answer["review"]["at"], "{again}");
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    // No rolling windows in these rules: no daily review to rehearse.
    let e = request(&stack.base_url, Kind::Daily, after)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no_daily_review"), "{e:#}");
    stack.stop().await;
}

/// `POST /v1/admin/reviews` starts the current period's review as the
/// schedule would, idempotently, and `GET /v1/admin/reviews/{period}` shows
/// its progress; what cannot be reviewed is refused with its reason.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_starts_the_current_review_and_follows_it() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // The demo brand's calendar: Asia/Shanghai.
    let calendar = tier_domain::calendar::BrandCalendar::parse("Asia/Shanghai").unwrap();
    let month = calendar.month_of(now).to_string();
    let r = api
        .post("reviews", &serde_json::json!({"kind": "monthly"}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["review"]["period"], month.as_str());
    assert_eq!(
        r.body["review"]["partitions"], 5,
        "4 tiers and the tierless: {}",
        r.body
    );
    stack.wait_idle(IDLE).await.unwrap();
    let r = api.get(&format!("reviews/{month}")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let review = &r.body["review"];
    assert_eq!(review["state"], "done", "{review}");
    assert_eq!(review["partitions_listed"], 5, "{review}");
    assert_eq!(review["distributors_listed"], 3, "{review}");
    assert!(review["evaluated"].as_u64().unwrap() >= 3, "{review}");
    // Again: the same run, resumed at its own instant.
    let again = api
        .post(
            "reviews",
            &serde_json::json!({"kind": "monthly", "period": month}),
        )
        .await
        .unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["review"]["at"], review["at"]);
    stack.wait_idle(IDLE).await.unwrap();

    let next = calendar.month_of(now + Duration::days(40)).to_string();
    for (body, status, code) in [
        (
            serde_json::json!({"kind": "monthly", "period": next}),
            422,
            "future_period",
        ),
        (
            serde_json::json!({"kind": "monthly", "period": "2001-01"}),
            422,
            "period_over",
        ),
        (
            serde_json::json!({"kind": "monthly", "period": "2026-11-05"}),
            422,
            "invalid_period",
        ),
        (serde_json::json!({"kind": "daily"}), 422, "no_daily_review"),
        (
            serde_json::json!({"kind": "weekly"}),
            422,
            "invalid_document",
        ),
        (
            serde_json::json!({"kind": "monthly", "when": "now"}),
            422,
            "invalid_document",
        ),
    ] {
        let r = api.post("reviews", &body).await.unwrap();
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.body);
    }
    for (path, status, code) in [
        ("reviews/2001-01", 404, "review_not_found"),
        ("reviews/2026-13", 400, "invalid_period"),
        ("reviews/yesterday", 400, "invalid_period"),
    ] {
        let r = api.get(path).await.unwrap();
        assert_eq!((r.status, r.code()), (status, code), "{path}: {}", r.body);
    }
    stack.stop().await;
}

/// `GET /v1/admin/distributors`: every distributor a page at a time, the
/// senior tiers first, or one tier's; each with its sales and progress.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_distributors_by_tier_a_page_at_a_time() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("l1", "L1", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let r = api.get("distributors").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body["distributors"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", r.body);
    assert!(r.body["next_cursor"].is_null());
    let shanghai = &rows[0];
    assert_eq!(
        shanghai["id"], "d-shanghai",
        "the senior tier first: {}",
        r.body
    );
    assert_eq!(shanghai["tier"], "intermediate");
    assert_eq!(dec(&shanghai["sales_month"]), d("55080.00"));
    assert_eq!(dec(&shanghai["sales_quarter"]), d("55080.00"));
    assert_eq!(shanghai["next_tier"], "senior");
    assert_eq!(shanghai["progress_pct"], "55.0", "55,080 of 100,000");
    assert_eq!(shanghai["region"], "Shanghai");
    assert_eq!(rows[1]["progress_pct"], "0.0");

    let r = api.get("distributors?tier=junior").await.unwrap();
    let ids: Vec<&str> = r.body["distributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{}", r.body);
    assert!(!ids.contains(&"d-shanghai"));
    let r = api.get("distributors?tier=-").await.unwrap();
    assert_eq!(
        r.body["distributors"],
        serde_json::json!([]),
        "everyone has a tier"
    );

    // A page of one at a time reaches everyone once, then ends.
    let (mut seen, _) = walk(&api, "distributors?limit=1").await;
    seen.sort();
    assert_eq!(seen, ["d-hangzhou", "d-shanghai", "d-suzhou"]);

    let forged = hex::encode(
        serde_json::json!({"t": "gold", "k": {"PK": "DIST#d-x", "SK": "PROFILE",
            "GSI1PK": "TIER#junior", "GSI1SK": "d-x"}})
        .to_string(),
    );
    // By the region they were registered with, and by upline, through
    // their indexes; with a tier too, filtered on the index page.
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["distributors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = api.get("distributors?region=Jiangsu").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.body), ["d-suzhou"]);
    let r = api.get("distributors?upline=d-hangzhou").await.unwrap();
    assert_eq!(ids(&r.body), ["d-shanghai", "d-suzhou"], "{}", r.body);
    let r = api
        .get("distributors?upline=d-hangzhou&tier=junior")
        .await
        .unwrap();
    assert_eq!(ids(&r.body), ["d-suzhou"], "{}", r.body);
    let r = api.get("distributors?upline=d-suzhou").await.unwrap();
    assert_eq!(ids(&r.body), Vec::<String>::new());
    // An upline's members a page of one at a time, then the end.
    let (seen, _) = walk(&api, "distributors?upline=d-hangzhou&limit=1").await;
    assert_eq!(seen, ["d-shanghai", "d-suzhou"]);
    // A tier walk's cursor does not continue an upline's list.
    let tier_cursor = api.get("distributors?limit=1").await.unwrap().body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for (query, code) in [
        (
            &format!("upline=d-hangzhou&cursor={tier_cursor}") as &str,
            "invalid_cursor",
        ),
        ("region=Jiangsu&upline=d-hangzhou", "conflicting_filters"),
        ("upline=a%2Fb", "invalid_upline"),
        ("region=", "invalid_region"),
        ("sort=sales", "invalid_sort"),
        ("colour=red", "unknown_parameter"),
        ("tier=platinum", "unknown_tier"),
        ("tier=junior&tier=gold", "invalid_query"),
        ("limit=0", "invalid_limit"),
        ("limit=51", "invalid_limit"),
        ("cursor=zz", "invalid_cursor"),
        (&format!("cursor={forged}") as &str, "invalid_cursor"),
    ] {
        let r = api.get(&format!("distributors?{query}")).await.unwrap();
        assert_eq!((r.status, r.code()), (400, code), "{query}: {}", r.body);
    }
    stack.stop().await;
}

/// Every page of `path` (which takes `&cursor=`), the ids in order, and
/// the last page's body.
async fn walk(api: &ApiClient, path: &str) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let page = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let r = api.get(&page).await.unwrap();
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        seen.extend(
            r.body["distributors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (seen, r.body),
        }
    }
    panic!("{path} did not end in 20 pages: {seen:?}");
}

/// `?sort=`: the whole brand by this month's or quarter's sales, or by the
/// latest tier change, most first, each distributor once; those without
/// sales in the period follow the ranking.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_distributors_by_sales_and_by_tier_change() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Shanghai sells 55,080 (up to Intermediate), Suzhou 918; Hangzhou
    // nothing.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("s1", "S1", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("s2", "S2", "b2", &[("HOODIE-GREY", 2, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let month = now
        .with_timezone(&chrono_tz_shanghai())
        .format("%Y-%m")
        .to_string();
    for limit in [1, 2, 3, 50] {
        let (ids, last) = walk(
            &api,
            &format!("distributors?sort=sales_month&limit={limit}"),
        )
        .await;
        assert_eq!(
            ids,
            ["d-shanghai", "d-suzhou", "d-hangzhou"],
            "limit {limit}"
        );
        assert_eq!(last["period"], month.as_str());
    }
    let r = api
        .get("distributors?sort=sales_quarter&limit=2")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body["distributors"].as_array().unwrap();
    assert_eq!(rows[0]["id"], "d-shanghai");
    assert_eq!(dec(&rows[0]["sales_quarter"]), d("55080.00"));
    assert_eq!(rows[1]["id"], "d-suzhou");
    assert!(r.body["period"].as_str().unwrap().contains("-Q"));
    let (ids, _) = walk(&api, "distributors?sort=sales_quarter&limit=2").await;
    assert_eq!(ids, ["d-shanghai", "d-suzhou", "d-hangzhou"]);

    // The latest tier change first: Shanghai's upgrade, then the entry
    // tiers joined at registration.
    let (ids, _) = walk(&api, "distributors?sort=tier_changed_at&limit=1").await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0], "d-shanghai");

    // A refund moves the rank: Shanghai's month falls to nothing, below
    // Suzhou, and it is still listed once.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("s1r", "S1", "RS1", "55080.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    for limit in [1, 3] {
        let (ids, _) = walk(
            &api,
            &format!("distributors?sort=sales_month&limit={limit}"),
        )
        .await;
        assert_eq!(ids[0], "d-suzhou", "limit {limit}: {ids:?}");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ["d-hangzhou", "d-shanghai", "d-suzhou"]);
    }

    // Cursors continue only the walk that gave them.
    let cursor_of = |body: &Value| body["next_cursor"].as_str().unwrap().to_owned();
    let month_cursor = cursor_of(
        &api.get("distributors?sort=sales_month&limit=1")
            .await
            .unwrap()
            .body,
    );
    let plain_cursor = cursor_of(&api.get("distributors?limit=1").await.unwrap().body);
    let forged = hex::encode(
        serde_json::json!({"t": "", "s": "sales_month", "p": "2026-Q4", "r": "1#d"}).to_string(),
    );
    for (query, code) in [
        ("sort=sales", "invalid_sort"),
        ("sort=sales_month&sort=sales_quarter", "invalid_query"),
        ("sort=sales_month&tier=junior", "conflicting_filters"),
        ("sort=sales_month&region=Shanghai", "conflicting_filters"),
        (
            "sort=tier_changed_at&upline=d-hangzhou",
            "conflicting_filters",
        ),
        (
            &format!("sort=sales_quarter&cursor={month_cursor}") as &str,
            "invalid_cursor",
        ),
        (&format!("cursor={month_cursor}") as &str, "invalid_cursor"),
        (
            &format!("sort=sales_month&cursor={plain_cursor}") as &str,
            "invalid_cursor",
        ),
        (
            &format!("sort=sales_month&cursor={forged}") as &str,
            "invalid_cursor",
        ),
    ] {
        let r = api.get(&format!("distributors?{query}")).await.unwrap();
        assert_eq!((r.status, r.code()), (400, code), "{query}: {}", r.body);
    }
    stack.stop().await;
}

/// `GET /v1/admin/distributors:about-to-move`: who is within reach of the
/// next tier, and who a review will move down once its protection ends.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_manager_sees_who_is_about_to_move() {
    let (stack, api) = clothing_stack().await;
    let rules = protected_rules(serde_json::json!({"protection_days": 30}));
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    // Suzhou: 100 hoodies, 45,900.00 of Intermediate's 50,000 (91.8%).
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("a1", "A1", "b1", &[("HOODIE-GREY", 100, "459.00")], now),
    )
    .await
    .unwrap();
    // Shanghai: up to Intermediate today, then a refund takes it below;
    // the protection period holds it there until a review after it.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("a2", "A2", "b2", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("a2r", "A2", "RF1", "20000.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    let r = api.get("distributors:about-to-move").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scanned"], 3, "{}", r.body);
    let rows = r.body["distributors"].as_array().unwrap();
    let row = |id: &str| {
        rows.iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("{id} is listed: {}", r.body))
    };
    let suzhou = row("d-suzhou");
    assert_eq!(suzhou["direction"], "up");
    assert_eq!(suzhou["to"], "intermediate");
    assert_eq!(suzhou["progress_pct"], "91.8");
    assert_eq!(dec(&suzhou["rule"]["observed"][0]["value"]), d("45900.00"));
    let shanghai = row("d-shanghai");
    assert_eq!(shanghai["direction"], "down", "{shanghai}");
    assert_eq!(shanghai["to"], "junior");
    assert_eq!(shanghai["rule"]["rule"], "upgrade:intermediate");
    let effect: chrono::DateTime<Utc> = shanghai["takes_effect"].as_str().unwrap().parse().unwrap();
    assert!(
        effect >= now + Duration::days(30),
        "after the protection: {effect}"
    );
    assert!(
        effect <= now + Duration::days(62),
        "at the first review after it: {effect}"
    );
    assert!(rows.iter().all(|d| d["id"] != "d-hangzhou"), "{}", r.body);

    // Within 5%, Suzhou is not yet close enough.
    let r = api
        .get("distributors:about-to-move?within=5")
        .await
        .unwrap();
    assert!(
        r.body["distributors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != "d-suzhou"),
        "{}",
        r.body
    );
    for (query, code) in [
        ("within=0", "invalid_within"),
        ("within=101", "invalid_within"),
        ("within=lots", "invalid_within"),
        ("sort=sales", "invalid_sort"),
        ("near=1", "unknown_parameter"),
    ] {
        let r = api
            .get(&format!("distributors:about-to-move?{query}"))
            .await
            .unwrap();
        assert_eq!((r.status, r.code()), (400, code), "{query}: {}", r.body);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_override_with_a_lock_holds_until_unlocked() {
    let (stack, api) = clothing_stack().await;
    let r = api.put("distributors/d-shanghai/tier", &serde_json::json!({"tier": "gold", "reason": "flagship partner, contract 2026-17", "lock": true})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "gold");
    assert_eq!(shanghai["distributor"]["tier_locked"], true);
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "manual");
    assert_eq!(
        shanghai["tier_history"][0]["cause"]["reason"],
        "flagship partner, contract 2026-17"
    );

    // Locked: an order that would re-evaluate to Junior changes nothing.
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("m1", "M1", "b1", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "gold");
    assert_eq!(stack.tier_evaluation.review(now).await.unwrap().changed, 0);

    // Unlocked: the next evaluation applies the rules again.
    let r = api
        .admin(
            reqwest::Method::DELETE,
            "distributors/d-shanghai/tier-lock",
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("m2", "M2", "b1", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "junior");

    for (body, code) in [
        (
            serde_json::json!({"tier": "gold", "reason": " "}),
            "missing_reason",
        ),
        (
            serde_json::json!({"tier": "platinum", "reason": "x"}),
            "unknown_tier",
        ),
        (serde_json::json!({"tier": "gold"}), "invalid_document"),
    ] {
        let r = api
            .put("distributors/d-shanghai/tier", &body)
            .await
            .unwrap();
        assert_eq!((r.status, r.code()), (422, code), "{}", r.body);
    }
    let r = api
        .put(
            "distributors/d-ghost/tier",
            &serde_json::json!({"tier": "gold", "reason": "x"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, "distributor_not_found"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_to_the_next_tier_and_the_history_are_readable_by_api_key() {
    let (stack, mut api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("g1", "G1", "b1", &[("HOODIE-GREY", 66, "459.00")], now),
    )
    .await
    .unwrap(); // 30,294
    stack.wait_idle(IDLE).await.unwrap();
    let key = api.api_key.clone().unwrap();
    let http = reqwest::Client::new();
    let get = |path: String, key: String| {
        let http = http.clone();
        let base = api.base_url.clone();
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, tier) = get("/v1/distributors/d-shanghai/tier".into(), key.clone()).await;
    assert_eq!(status, 200, "{tier}");
    assert_eq!(tier["tier"]["id"], "junior");
    assert_eq!(tier["next"]["tier"]["id"], "intermediate");
    assert_eq!(tier["next"]["met"], false);
    let c = &tier["next"]["conditions"][0];
    assert_eq!(
        (dec(&c["value"]), dec(&c["threshold"]), dec(&c["remaining"])),
        (d("30294"), d("50000"), d("19706"))
    );

    let (status, history) = get(
        "/v1/distributors/d-shanghai/tier-history".into(),
        key.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(history["history"].as_array().unwrap().len(), 1);
    // A distributor's own key reads only its own tier.
    let own = api
        .create_api_key(
            "own",
            serde_json::json!({"type": "distributor", "distributor_id": "d-suzhou"}),
        )
        .await
        .unwrap();
    let (status, body) = get("/v1/distributors/d-shanghai/tier".into(), own.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden_distributor"))
    );
    assert_eq!(
        get("/v1/distributors/d-suzhou/tier-history".into(), own)
            .await
            .0,
        200
    );
    api.api_key = None;
    stack.stop().await;
}

/// A what-if fans out through the tier queue like a review, a page at a
/// time, and changes nothing; its results add every page once.
#[tokio::test(flavor = "multi_thread")]
async fn what_if_reports_who_would_move_and_writes_nothing() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("w1", "W1", "b1", &[("HOODIE-GREY", 66, "459.00")], now),
    )
    .await
    .unwrap(); // 30,294
    // 120 more Juniors under d-suzhou: the Junior partition takes two pages.
    for i in 0..120 {
        let r = api
            .put(
                &format!("distributors/d-extra-{i:03}"),
                &serde_json::json!({"name": format!("Extra {i}"), "upline": "d-suzhou"}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    // A listing's continuation is named by its cursor: the same page of a
    // partition gives the same cursor every time.
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let junior = tier_domain::ids::TierId::parse("junior").unwrap();
    let mut cursors = Vec::new();
    for _ in 0..5 {
        cursors.push(
            table
                .tier_members_page(Some(&junior), None, 50)
                .await
                .unwrap()
                .1,
        );
    }
    assert!(
        cursors[0].is_some() && cursors.iter().all(|c| c == &cursors[0]),
        "{cursors:?}"
    );
    let mut draft = local_stack::demo::clothing_rule_set();
    draft["tiers"][1]["upgrade"]["gte"] = serde_json::json!("30000");
    stack.dynamo_usage.reset();
    let r = api
        .put("what-ifs/lower-intermediate", &draft)
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["id"], "lower-intermediate");
    stack.wait_idle(IDLE).await.unwrap();
    // What it costs: about a read unit a distributor (its profile and
    // metrics, eventually consistent), and per page and per listing a
    // transaction of two small items (its marker or record, and its tally
    // shard or the run's counters): 5 listings and 2 pages here.
    let usage = stack.dynamo_usage.snapshot();
    println!(
        "a what-if of 123 distributors: {} read units, {} write units, {:?}",
        usage.read_units, usage.write_units, usage.requests
    );
    assert!(
        usage.read_units <= 2.0 * 123.0 && usage.write_units <= 4.0 * (5.0 + 2.0) + 2.0,
        "{usage:?}"
    );
    let r = api.get("what-ifs/lower-intermediate").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "complete", "{}", r.body);
    assert_eq!(r.body["evaluated"], 123);
    assert_eq!(r.body["unchanged"], 122);
    assert_eq!(
        r.body["moves"],
        serde_json::json!([{"from": "junior", "to": "intermediate", "count": 1, "distributors": ["d-shanghai"]}])
    );
    assert_eq!(r.body["pages"], r.body["pages_done"]);
    assert!(r.body["pages"].as_u64().unwrap() >= 2, "{}", r.body);

    // A page delivered again counts once: its tally is written under its name.
    let mut juniors: Vec<String> = (0..120)
        .map(|i| format!("d-extra-{i:03}"))
        .chain(["d-hangzhou", "d-shanghai", "d-suzhou"].map(String::from))
        .collect();
    juniors.sort();
    let page = serde_json::json!({"type": "what_if_page.v1", "payload": {"run": {"id": "lower-intermediate", "at": r.body["as_of"]}, "page": "junior#0#0", "tier": "junior", "distributors": &juniors[..100]}});
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(stack.queue_url("TierEventsQueue"))
        .message_body(page.to_string())
        .send()
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let redelivered = api.get("what-ifs/lower-intermediate").await.unwrap();
    assert_eq!(
        (
            redelivered.body["evaluated"].clone(),
            redelivered.body["pages_done"].clone()
        ),
        (r.body["evaluated"].clone(), r.body["pages_done"].clone()),
        "{}",
        redelivered.body
    );
    assert_eq!(r.body["partitions"], r.body["partitions_listed"]);
    assert_eq!(
        tier_of(&api, "d-shanghai").await,
        "junior",
        "nothing written"
    );
    assert_eq!(api.get("rule-set").await.unwrap().body["version"], 1);

    // Started again with the same draft: the same run, each page still
    // counted once.
    let again = api
        .put("what-ifs/lower-intermediate", &draft)
        .await
        .unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    stack.wait_idle(IDLE).await.unwrap();
    let r2 = api.get("what-ifs/lower-intermediate").await.unwrap();
    assert_eq!(
        (
            r2.body["evaluated"].clone(),
            r2.body["moves"].clone(),
            r2.body["as_of"].clone()
        ),
        (
            r.body["evaluated"].clone(),
            r.body["moves"].clone(),
            r.body["as_of"].clone()
        )
    );

    // Another draft under the same id, a bad draft, an unknown id.
    let mut other = draft.clone();
    other["tiers"][1]["upgrade"]["gte"] = serde_json::json!("20000");
    let r = api
        .put("what-ifs/lower-intermediate", &other)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (409, "what_if_exists"));
    let mut bad = draft.clone();
    bad["tiers"][1]["upgrade"]["window"] = serde_json::json!("decade");
    let r = api.put("what-ifs/bad", &bad).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_rule_set"));
    let r = api.get("what-ifs/never-started").await.unwrap();
    assert_eq!((r.status, r.code()), (404, "what_if_not_found"));
    stack.stop().await;
}

/// The schedule's path: the review of a period fans out through the queue
/// (partition messages, then pages of members), evaluates everyone at the
/// run's instant, and a second start in the same period changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_review_fans_out_through_the_queue_once_per_period() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("s1", "S1", "b1", &[("HOODIE-GREY", 120, "459.00")], now),
    )
    .await
    .unwrap();
    // Enough members for several pages of the entry tier.
    for i in 0..130 {
        let r = api
            .put(
                &format!("distributors/d-bulk-{i:03}"),
                &serde_json::json!({"name": format!("Bulk {i}"), "upline": "d-hangzhou"}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    let next_month = now + Duration::days(40);
    stack.dynamo_usage.reset();
    let run = stack
        .tier_evaluation
        .start_review(next_month)
        .await
        .unwrap();
    assert!(run.created);
    stack.wait_idle(IDLE).await.unwrap();
    let usage = stack.dynamo_usage.snapshot();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "junior");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "review");
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let record = table.review(run.period).await.unwrap().unwrap();
    assert!(
        record.evaluated >= 133,
        "everyone at least once: {record:?}"
    );
    assert_eq!(record.changed, 1);
    assert!(record.pages_done >= 2, "{record:?}");
    println!(
        "review of {} distributors: {:?}; per distributor {:.2} read units, {:.3} requests",
        record.evaluated,
        usage,
        usage.read_units / record.evaluated as f64,
        usage.total_requests() as f64 / record.evaluated as f64
    );

    // The schedule fires again in the same period (a retry, an overlap):
    // same run, same instant, nothing more changes.
    let again = stack
        .tier_evaluation
        .start_review(next_month + Duration::hours(1))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.at, run.at);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        distributor(&api, "d-shanghai").await["tier_history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(table.review(run.period).await.unwrap().unwrap().changed, 1);
    stack.stop().await;
}

/// Registering distributors moves their uplines' network metrics, at level
/// 1 and all levels, and re-evaluates the uplines' tiers.
#[tokio::test(flavor = "multi_thread")]
async fn registering_downline_distributors_moves_the_uplines() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] = serde_json::json!([{"id": "three-downline-distributors", "when": {"metric": "downline_distributors", "gte": "3"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        (
            hangzhou["metrics"]["downline_distributors"].as_i64(),
            hangzhou["metrics"]["downline_distributors_all"].as_i64()
        ),
        (Some(2), Some(2))
    );

    for i in 0..3 {
        let r = api
            .put(
                &format!("distributors/d-sz-{i}"),
                &serde_json::json!({"name": format!("Suzhou {i}"), "upline": "d-suzhou"}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            r.body["ancestors"],
            serde_json::json!(["d-suzhou", "d-hangzhou"])
        );
    }
    stack.wait_idle(IDLE).await.unwrap();
    let suzhou = distributor(&api, "d-suzhou").await;
    assert_eq!(
        (
            suzhou["metrics"]["downline_distributors"].as_i64(),
            suzhou["metrics"]["downline_distributors_all"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(suzhou["distributor"]["tier"], "intermediate");
    assert_eq!(suzhou["tier_history"][0]["cause"]["type"], "network");
    // Whichever registration's re-evaluation ran after the third counted.
    assert!(
        suzhou["tier_history"][0]["cause"]["downline"]
            .as_str()
            .unwrap_or("")
            .starts_with("d-sz-"),
        "{suzhou}"
    );
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        (
            hangzhou["metrics"]["downline_distributors"].as_i64(),
            hangzhou["metrics"]["downline_distributors_all"].as_i64()
        ),
        (Some(2), Some(5))
    );
    assert_eq!(
        hangzhou["distributor"]["tier"], "junior",
        "two at level 1 is not three"
    );
    stack.stop().await;
}

/// Monthly buckets no window can read any more leave the metrics item (its
/// size is what each of its writes costs); lifetime totals stay.
#[tokio::test(flavor = "multi_thread")]
async fn old_monthly_buckets_are_pruned_and_lifetime_totals_kept() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("p1", "P1", "b1", &[("HOODIE-GREY", 2, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let before = distributor(&api, "d-shanghai").await;
    assert_eq!(
        before["metrics"]["sales"]["by_month"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    // Four and a half months on, quarter growth can still read it ...
    stack
        .tier_evaluation
        .review(now + Duration::days(140))
        .await
        .unwrap();
    let kept = distributor(&api, "d-shanghai").await;
    assert_eq!(
        kept["metrics"]["sales"]["by_month"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "{}",
        kept["metrics"]
    );
    // ... seven months on, no window can.
    stack
        .tier_evaluation
        .review(now + Duration::days(215))
        .await
        .unwrap();
    let after = distributor(&api, "d-shanghai").await;
    assert!(
        after["metrics"]["sales"]["by_month"]
            .as_object()
            .unwrap()
            .is_empty(),
        "{}",
        after["metrics"]
    );
    assert!(
        after["metrics"]["orders"]["by_month"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    assert_eq!(dec(&after["metrics"]["sales"]["lifetime"]), d("918"));
    assert_eq!(after["metrics"]["orders"]["lifetime"], 1);
    stack.stop().await;
}

/// 购买指定商品: a rule on the quantity of one SKU bought, net of returns.
#[tokio::test(flavor = "multi_thread")]
async fn buying_a_specified_sku_moves_the_tier_and_returns_take_it_back() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Jackets bought before any rule refers to them are not counted, and
    // returning them after takes nothing off.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("j0", "J0", "b0", &[("JACKET-DOWN", 3, "100.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] = serde_json::json!([{"id": "ten-jackets", "when": {"metric": "purchased_quantity", "sku": "JACKET-DOWN", "gte": "10"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("j0r", "J0", "RF-J0", "300.00", &[("1", 3)], now),
    )
    .await
    .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "j1",
            "J1",
            "b1",
            &[("JACKET-DOWN", 6, "100.00"), ("TEE-WHITE", 30, "10.00")],
            now,
        ),
    )
    .await
    .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("j2", "J2", "b2", &[("JACKET-DOWN", 4, "100.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["metrics"]["purchased"]["JACKET-DOWN"], 10);
    assert!(
        shanghai["metrics"]["purchased"].get("TEE-WHITE").is_none(),
        "only SKUs rules refer to are counted"
    );
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    assert_eq!(
        shanghai["tier_history"][0]["reasons"][0]["observed"][0]["sku"],
        "JACKET-DOWN"
    );

    // One jacket comes back.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("j2r", "J2", "RF-J2", "100.00", &[("1", 1)], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["metrics"]["purchased"]["JACKET-DOWN"], 9);
    assert_eq!(shanghai["distributor"]["tier"], "junior");

    let mut bad = rules.clone();
    bad["step_ups"][0]["when"]
        .as_object_mut()
        .unwrap()
        .remove("sku");
    let r = api.put("rule-set", &bad).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_rule_set"));
    assert!(
        r.body["message"].as_str().unwrap().contains("sku"),
        "{}",
        r.body
    );
    stack.stop().await;
}

/// With one-step downgrades, a review that runs twice for a period (a
/// redelivered page, a retried schedule) steps a distributor down once.
#[tokio::test(flavor = "multi_thread")]
async fn a_review_steps_down_once_per_period() {
    let (stack, api) = clothing_stack().await;
    let rules = protected_rules(serde_json::json!({"step": "one_step"}));
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("o1", "O1", "b1", &[("HOODIE-GREY", 240, "459.00")], now),
    )
    .await
    .unwrap(); // 110,160
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "senior");
    let later = now + Duration::days(40);
    assert_eq!(
        stack.tier_evaluation.review(later).await.unwrap().changed,
        1
    );
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    assert_eq!(
        stack
            .tier_evaluation
            .review(later + Duration::hours(2))
            .await
            .unwrap()
            .changed,
        0
    );
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    stack.stop().await;
}

/// 近30天: a rolling window counts the last 30 days, today included, and
/// the review moves a distributor down once a sale rolls out of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_window_counts_the_last_n_days_and_sales_roll_out_of_it() {
    let (stack, api) = clothing_stack().await;
    let rolling = serde_json::json!({
    "tiers": [
      {"id": "junior", "name": "Junior", "rank": 0},
      {"id": "intermediate", "name": "Intermediate", "rank": 1,
       "upgrade": {"metric": "sales_amount", "window": {"rolling_days": 30}, "gte": "50000"}}
    ]});
    let now = Utc::now();
    // An order today, under the monthly rules, before any rule reads days.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("r0", "R0", "b0", &[("HOODIE-GREY", 10, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(api.put("rule-set", &rolling).await.unwrap().status, 201);
    // Its refund, now that they do, takes nothing off days it never added to.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("r0r", "R0", "RF0", "4590.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    // 39,933 forty days ago: outside the window.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "r1",
            "R1",
            "b1",
            &[("HOODIE-GREY", 87, "459.00")],
            now - Duration::days(40),
        ),
    )
    .await
    .unwrap();
    // 30,294 ten days ago.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "r2",
            "R2",
            "b2",
            &[("HOODIE-GREY", 66, "459.00")],
            now - Duration::days(10),
        ),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        tier_of(&api, "d-shanghai").await,
        "junior",
        "70,227 in all, 30,294 in the last 30 days"
    );

    // The tier endpoint shows the rolling value against the threshold.
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(tier.status, 200, "{}", tier.body);
    let condition = &tier.body["next"]["conditions"][0];
    assert_eq!(condition["window"]["rolling_days"], 30);
    assert_eq!(dec(&condition["value"]), d("30294"));
    assert_eq!(dec(&condition["remaining"]), d("19706"));

    // 25,245 today: 55,539 in the last 30 days.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("r3", "R3", "b3", &[("HOODIE-GREY", 55, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    let observed = &shanghai["tier_history"][0]["reasons"][0]["observed"][0];
    assert_eq!(observed["window"]["rolling_days"], 30);
    assert_eq!(dec(&observed["value"]), d("55539"));

    // A refund of the oldest order moves its own day's bucket, outside the
    // window, not today's.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("r1r", "R1", "RF1", "39933.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    assert_eq!(dec(&shanghai["metrics"]["sales"]["lifetime"]), d("55539"));
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(tier.body["retention"]["rule"], "upgrade:intermediate");
    assert_eq!(
        dec(&tier.body["retention"]["conditions"][0]["value"]),
        d("55539"),
        "{}",
        tier.body
    );

    // Twenty-five days on, the sale of ten days ago has rolled out; nothing
    // else happened, and the day's review moves the tier down.
    let later = now + Duration::days(25);
    let review = stack.tier_evaluation.review_day(later).await.unwrap();
    assert_eq!(review.changed, 1);
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "junior");
    assert_eq!(shanghai["tier_history"][0]["cause"]["type"], "review");
    let calendar = tier_domain::BrandCalendar::default();
    assert_eq!(
        shanghai["tier_history"][0]["cause"]["day"],
        calendar.day_of(later).to_string()
    );
    assert_eq!(
        dec(&shanghai["tier_history"][0]["reasons"][0]["observed"][0]["value"]),
        d("25245")
    );

    // The daily schedule reviews a day, through the queue, where rules read
    // rolling windows; the month's review covers the 1st.
    let day = (26..33)
        .map(|d| now + Duration::days(d))
        .find(|t| calendar.day_of(*t).day_of_month() != 1)
        .unwrap();
    let run = stack
        .tier_evaluation
        .start_daily_review(day)
        .await
        .unwrap()
        .expect("rolling windows: a daily review");
    assert!(run.created);
    assert_eq!(run.period.to_string(), calendar.day_of(day).to_string());
    stack.wait_idle(IDLE).await.unwrap();
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    assert!(table.review(run.period).await.unwrap().unwrap().evaluated >= 3);
    let first = (0..40)
        .map(|d| now + Duration::days(d))
        .find(|t| calendar.day_of(*t).day_of_month() == 1)
        .unwrap();
    assert!(
        stack
            .tier_evaluation
            .start_daily_review(first)
            .await
            .unwrap()
            .is_none()
    );

    // Without rolling windows there is no daily review.
    assert_eq!(
        api.put("rule-set", &local_stack::demo::clothing_rule_set())
            .await
            .unwrap()
            .status,
        201
    );
    assert!(
        stack
            .tier_evaluation
            .start_daily_review(day + Duration::days(1))
            .await
            .unwrap()
            .is_none()
    );
    stack.stop().await;
}

/// 下线用户: users who sign up through a distributor's store count as its
/// downline users before they order, once each, in its uplines' networks
/// too; a first paid order makes one valid.
#[tokio::test(flavor = "multi_thread")]
async fn users_signing_up_count_as_downline_users_once_and_become_valid_with_an_order() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] =
        serde_json::json!([{"id": "recruiter", "when": {"metric": "downline_users", "gte": "3"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    for (event, user) in [("s1", "u-1"), ("s2", "u-2")] {
        assert_eq!(
            api.webhook("jd", "sh-outlet", &docs::registered(event, user, now))
                .await
                .unwrap()
                .status,
            202
        );
    }
    // A retried webhook, and the same user registering again under another event id.
    assert_eq!(
        api.webhook("jd", "sh-outlet", &docs::registered("s2", "u-2", now))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        api.webhook("jd", "sh-outlet", &docs::registered("s2-again", "u-2", now))
            .await
            .unwrap()
            .status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(
        (
            shanghai["metrics"]["downline_users"].as_i64(),
            shanghai["metrics"]["valid_downline_users"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(shanghai["distributor"]["tier"], "junior");

    // The third user moves d-shanghai up one tier; its upline counts the users in its network.
    api.webhook("jd", "sh-outlet", &docs::registered("s3", "u-3", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["metrics"]["downline_users"], 3);
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    assert_eq!(
        shanghai["tier_history"][0]["cause"]["type"],
        "user_registered"
    );
    assert_eq!(shanghai["tier_history"][0]["cause"]["event_id"], "s3");
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        (
            hangzhou["metrics"]["downline_users"].as_i64(),
            hangzhou["metrics"]["downline_users_all"].as_i64()
        ),
        (Some(0), Some(3))
    );

    // A registered user's first paid order makes it valid, not a fourth user.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("o1", "O1", "u-1", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(
        (
            shanghai["metrics"]["downline_users"].as_i64(),
            shanghai["metrics"]["valid_downline_users"].as_i64()
        ),
        (Some(3), Some(1))
    );
    let hangzhou = distributor(&api, "d-hangzhou").await;
    assert_eq!(
        (
            hangzhou["metrics"]["downline_users_all"].as_i64(),
            hangzhou["metrics"]["valid_downline_users_all"].as_i64()
        ),
        (Some(3), Some(1))
    );

    // A user who ordered first and registers after is not counted twice.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("o2", "O2", "u-9", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    api.webhook("jd", "sh-outlet", &docs::registered("s9", "u-9", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        distributor(&api, "d-shanghai").await["metrics"]["downline_users"],
        4
    );

    // Registrations name a user and nothing of an order.
    let mut bad = docs::registered("s10", "u-10", now);
    bad.as_object_mut().unwrap().remove("buyer_id");
    let r = api.webhook("jd", "sh-outlet", &bad).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_order"));
    let mut bad = docs::registered("s11", "u-11", now);
    bad["order_id"] = serde_json::json!("O-11");
    let r = api.webhook("jd", "sh-outlet", &bad).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_order"));
    stack.stop().await;
}

/// 购买指定商品 for a product: the quantities of its SKUs add up.
#[tokio::test(flavor = "multi_thread")]
async fn buying_a_products_skus_adds_up_across_them() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["step_ups"] = serde_json::json!([{"id": "outerwear", "when": {"metric": "purchased_quantity", "skus": ["JACKET-DOWN", "HOODIE-GREY"], "gte": "10"}}]);
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    let now = Utc::now();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid(
            "q1",
            "Q1",
            "b1",
            &[("JACKET-DOWN", 6, "10.00"), ("TEE-WHITE", 20, "1.00")],
            now,
        ),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        tier_of(&api, "d-shanghai").await,
        "junior",
        "6 of 10; T-shirts are not outerwear"
    );
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("q2", "Q2", "b2", &[("HOODIE-GREY", 4, "10.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    let observed = &shanghai["tier_history"][0]["reasons"][0]["observed"][0];
    assert_eq!(
        observed["skus"],
        serde_json::json!(["HOODIE-GREY", "JACKET-DOWN"])
    );
    assert_eq!(dec(&observed["value"]), d("10"));

    // "sku" and "skus" together are refused, with the field.
    rules["step_ups"][0]["when"]["sku"] = serde_json::json!("TEE-WHITE");
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_rule_set"));
    assert!(
        r.body["message"].as_str().unwrap().contains("not both"),
        "{}",
        r.body
    );
    stack.stop().await;
}

/// Publishing rules that read what the previous ones did not keep (sales by
/// day for a rolling window, purchases of a SKU) counts the orders already
/// in the ledger, so the new rules do not start from nothing; later refunds
/// and returns take those orders back out, and a second backfill changes
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn new_rules_count_the_orders_already_in_the_ledger() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    let paid = |event: &str, lines: &[(&str, u32, &str)], days_ago: i64| {
        docs::paid(
            event,
            &event.to_uppercase(),
            &format!("buyer-{event}"),
            lines,
            now - Duration::days(days_ago),
        )
    };
    api.webhook(
        "jd",
        "sh-outlet",
        &paid("b1", &[("HOODIE-GREY", 10, "459.00")], 5),
    )
    .await
    .unwrap(); // 4,590
    api.webhook(
        "jd",
        "sh-outlet",
        &paid("b2", &[("HOODIE-GREY", 87, "459.00")], 40),
    )
    .await
    .unwrap(); // outside 30 days
    api.webhook(
        "jd",
        "sh-outlet",
        &paid("b3", &[("HOODIE-GREY", 66, "459.00")], 0),
    )
    .await
    .unwrap(); // 30,294
    api.webhook(
        "jd",
        "sh-outlet",
        &paid("b4", &[("JACKET-DOWN", 3, "1299.00")], 1),
    )
    .await
    .unwrap(); // 3,897
    stack.wait_idle(IDLE).await.unwrap();

    let rules = serde_json::json!({
      "tiers": [
        {"id": "junior", "name": "Junior", "rank": 0},
        {"id": "intermediate", "name": "Intermediate", "rank": 1,
         "upgrade": {"metric": "sales_amount", "window": {"rolling_days": 30}, "gte": "30000"}},
        {"id": "senior", "name": "Senior", "rank": 2,
         "upgrade": {"metric": "sales_amount", "window": {"rolling_days": 30}, "gte": "100000"}}
      ],
      "step_ups": [{"id": "jackets", "when": {"metric": "purchased_quantity", "sku": "JACKET-DOWN", "gte": "3"}}]});
    let r = api.put("rule-set", &rules).await.unwrap();
    assert_eq!(
        (r.status, r.body["backfill"].as_str()),
        (201, Some("started")),
        "{}",
        r.body
    );
    stack.wait_idle(IDLE).await.unwrap();
    let rolling = |body: &serde_json::Value| dec(&body["next"]["conditions"][0]["value"]);
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(
        rolling(&tier.body),
        d("38781"),
        "4,590 + 30,294 + 3,897: {}",
        tier.body
    );
    assert_eq!(
        distributor(&api, "d-shanghai").await["metrics"]["purchased"]["JACKET-DOWN"],
        3
    );
    // Its progress, for operators: both passes listed, every distributor's
    // ledger counted, and 3 orders counted into something new (the one
    // outside 30 days and not a jacket: nothing).
    let progress = api.get("rule-set").await.unwrap().body["backfill"].clone();
    assert_eq!(progress["starts"], 1, "{progress}");
    assert_eq!(
        progress["partitions_listed"], progress["partitions"],
        "{progress}"
    );
    assert_eq!(progress["distributors_counted"], 3, "{progress}");
    assert_eq!(progress["entries_counted"], 3, "{progress}");
    assert!(
        progress["entries_read"].as_u64().unwrap() >= 4,
        "{progress}"
    );
    assert!(progress["last_progress_at"].is_string(), "{progress}");

    // Refunds and returns of backfilled orders come back out.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("b1r", "B1", "RF-B1", "4590.00", &[], now),
    )
    .await
    .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("b4r", "B4", "RF-B4", "1299.00", &[("1", 1)], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["metrics"]["purchased"]["JACKET-DOWN"], 2);
    // 32,892 over 30 days: Intermediate, and 2 jackets are no step up.
    assert_eq!(shanghai["distributor"]["tier"], "intermediate");
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(rolling(&tier.body), d("32892"), "{}", tier.body);

    // A ledger is counted a page at a time, each page carrying on from the last.
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let shanghai_id = tier_domain::DistributorId::parse("d-shanghai").unwrap();
    let daily = std::collections::BTreeSet::from([tier_domain::metrics::Metric::SalesAmount]);
    let (mut cursor, mut pages, mut seen) = (None::<String>, 0, 0);
    loop {
        let (done, next) = table
            .backfill_distributor(
                &shanghai_id,
                &daily,
                &Default::default(),
                tier_domain::BrandCalendar::default()
                    .day_of(now)
                    .minus_days(29),
                cursor.as_deref(),
                1,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.counted, 0, "everything was counted already");
        (pages, seen, cursor) = (pages + 1, seen + done.orders, next);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, 4, "four orders in {pages} pages");

    // Again, by hand: nothing is counted twice.
    let r = api
        .admin(reqwest::Method::POST, "rule-set:backfill", None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["backfill"].as_str()),
        (202, Some("started")),
        "{}",
        r.body
    );
    stack.wait_idle(IDLE).await.unwrap();
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(rolling(&tier.body), d("32892"));
    assert_eq!(
        distributor(&api, "d-shanghai").await["metrics"]["purchased"]["JACKET-DOWN"],
        2
    );
    let again = api.get("rule-set").await.unwrap().body["backfill"].clone();
    assert_eq!(again["starts"], 2, "{again}");
    assert_eq!(
        (&again["distributors_counted"], &again["entries_counted"]),
        (
            &progress["distributors_counted"],
            &progress["entries_counted"]
        ),
        "{again}"
    );
    assert_eq!(again["started_at"], progress["started_at"]);
    stack.stop().await;
}

/// Until a new rule set's backfill has counted a distributor's ledger, its
/// new windows may read short: automatic changes may move it up, never down.
/// A distributor the backfill's listing missed has its own ledger counted
/// at its first held downgrade after the listing.
#[tokio::test(flavor = "multi_thread")]
async fn no_downgrade_before_the_backfill_has_counted_the_ledger() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // 61,965 this month: Intermediate under the monthly rules.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("h1", "H1", "b1", &[("HOODIE-GREY", 135, "459.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    // The same threshold over 30 days, published as the admin API does, its
    // backfill not run yet.
    let mut doc = local_stack::demo::clothing_rule_set();
    doc["tiers"][1]["upgrade"]["window"] = serde_json::json!({"rolling_days": 30});
    let rules = tier_domain::rules::RuleSet::new(serde_json::from_value(doc).unwrap()).unwrap();
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let version = table
        .publish_rule_set(&rules, Utc::now(), true)
        .await
        .unwrap();
    // Its backfill is under way (one partition, not yet listed).
    let start = table
        .record_backfill_start(version, Utc::now(), 1)
        .await
        .unwrap();
    // An order now: the 30-day window reads only it, yet the tier holds.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("h2", "H2", "b2", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        tier_of(&api, "d-shanghai").await,
        "intermediate",
        "held until the ledger is counted"
    );
    assert!(
        distributor(&api, "d-shanghai").await["distributor"]["backfilled"].is_null(),
        "the backfill will come to it"
    );

    // The backfill lists its partition without d-shanghai (its tier moved
    // meanwhile, say): the next held downgrade has its own ledger counted,
    // and from then on the rules apply whole.
    table
        .record_backfill_listing(version, start, 0, Some("0/junior"))
        .await
        .unwrap();
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("h3", "H3", "b3", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        distributor(&api, "d-shanghai").await["distributor"]["backfilled"],
        version
    );
    // One request per distributor and version, however many evaluations
    // hold its downgrades before the page has run.
    let id = tier_domain::DistributorId::parse("d-shanghai").unwrap();
    assert!(
        !table.claim_ledger_count(&id, version).await.unwrap(),
        "claimed by the held downgrade"
    );
    table.release_ledger_count(&id, version).await.unwrap();
    assert!(table.claim_ledger_count(&id, version).await.unwrap());
    assert!(!table.claim_ledger_count(&id, version).await.unwrap());
    let progress = api.get("rule-set").await.unwrap().body["backfill"].clone();
    assert_eq!(
        (
            progress["distributors_counted"].as_u64(),
            progress["entries_counted"].as_u64()
        ),
        (Some(1), Some(1)),
        "H1 counted; H2 and H3 were when paid: {progress}"
    );
    let tier = api.read("/v1/distributors/d-shanghai/tier").await.unwrap();
    assert_eq!(
        dec(&tier.body["retention"]["conditions"][0]["value"]),
        d("62363"),
        "{}",
        tier.body
    );
    // A full refund of the big order now moves it down.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("h1r", "H1", "RF-H1", "61965.00", &[], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "junior");
    stack.stop().await;
}

/// A what-if's answer is its counters and tally shards: a listing recorded
/// twice keeps its first share (and only that share's continuation goes
/// on), a page delivered twice counts once, pages finishing at once on one
/// shard all count, and the run is complete only when every partition is
/// listed to its end and every page is in. The answer reads the same two
/// requests' worth of items however many pages there are.
#[tokio::test(flavor = "multi_thread")]
async fn what_if_results_count_each_listing_and_page_once_from_a_few_items() {
    use tier_domain::what_if::Tally;
    use tier_store::what_if::{Listing, WhatIfStart};
    let (stack, _api) = spawn_stack().await;
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let at = Utc::now();
    let draft = serde_json::json!({"tiers": []});
    let partitions = vec!["junior".to_owned(), "-".to_owned()];
    assert!(matches!(
        table
            .start_what_if("chain", &draft, at, &partitions)
            .await
            .unwrap(),
        WhatIfStart::Created(_)
    ));
    let tally = |evaluated: u64| Tally {
        evaluated,
        ..Default::default()
    };
    let listing = |pages: u64, next: Option<&str>| Listing {
        pages,
        next: next.map(str::to_owned),
        next_cursor: next.map(|n| format!("cursor-{n}")),
    };
    let state = || async { table.what_if_results("chain").await.unwrap().unwrap() };

    // Junior's first listing: two pages and a continuation; delivered
    // again with another share, it keeps the first.
    let first = listing(2, Some("junior#77"));
    let recorded = table
        .record_what_if_listing("chain", at, "junior#0", &first)
        .await
        .unwrap();
    assert_eq!(recorded, first);
    let again = table
        .record_what_if_listing("chain", at, "junior#0", &listing(3, Some("junior#88")))
        .await
        .unwrap();
    assert_eq!(again, first, "the first share stands");
    table
        .record_what_if_page("chain", at, "junior#0#0", &tally(100))
        .await
        .unwrap();
    table
        .record_what_if_page("chain", at, "junior#0#1", &tally(100))
        .await
        .unwrap();
    let s = state().await;
    assert_eq!(
        (
            s.pages,
            s.pages_done,
            s.partitions_listed,
            s.tally.evaluated,
            s.complete()
        ),
        (2, 2, 0, 200, false)
    );

    // The continuation lists one more page, to the partition's end.
    table
        .record_what_if_listing("chain", at, "junior#77", &listing(1, None))
        .await
        .unwrap();
    let s = state().await;
    assert_eq!(
        (s.pages, s.pages_done, s.partitions_listed, s.complete()),
        (3, 2, 1, false),
        "a page is missing"
    );
    table
        .record_what_if_page("chain", at, "junior#77#0", &tally(30))
        .await
        .unwrap();
    // A page delivered twice counts once.
    table
        .record_what_if_page("chain", at, "junior#0#0", &tally(100))
        .await
        .unwrap();
    let s = state().await;
    assert_eq!(
        (s.pages_done, s.tally.evaluated, s.complete()),
        (3, 230, false),
        "distributors without a tier not listed yet"
    );

    // Distributors without a tier: 24 pages over 16 shards, so some share
    // one. One after another: the emulator's transactions are not
    // isolated, so two at once could both pass a version condition there.
    // Two pages racing on one shard are forced in the races test.
    table
        .record_what_if_listing("chain", at, "-#0", &listing(24, None))
        .await
        .unwrap();
    for n in 0..24 {
        table
            .record_what_if_page("chain", at, &format!("-#0#{n}"), &tally(10))
            .await
            .unwrap();
    }
    assert!(
        !state().await.complete(),
        "not every partition message was sent"
    );
    table.mark_what_if_sent("chain").await.unwrap();
    stack.dynamo_usage.reset();
    let s = state().await;
    assert_eq!(
        (
            s.partitions_listed,
            s.pages,
            s.pages_done,
            s.tally.evaluated,
            s.complete()
        ),
        (2, 27, 27, 470, true)
    );
    let read = stack.dynamo_usage.snapshot();
    assert!(read.total_requests() <= 2, "{read:?}");
    stack.stop().await;
}
