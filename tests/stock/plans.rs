//! Reserve plans through the real queues: demand counted once from paid
//! orders, plans from demand, forecast, stock and seniority, recomputed on
//! restock and by the hourly schedule, explained by the stock's `GET`; a
//! promotion's raised reserves returned to the pool once.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use system_tests::*;

fn parts(b: &Value) -> (u64, u64, Value, u64, u64) {
    (
        b["on_hand"].as_u64().unwrap(),
        b["pool"].as_u64().unwrap(),
        b["reserves"].clone(),
        b["allocated"].as_u64().unwrap(),
        b["backordered"].as_u64().unwrap(),
    )
}

async fn stock_of(api: &ApiClient, sku: &str) -> Value {
    let r = api.get(&format!("skus/{sku}/stock")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The demo's rule set with a `reserves` section.
fn rules_with(reserves: Value) -> Value {
    let mut doc = local_stack::demo::clothing_rule_set();
    doc["reserves"] = reserves;
    doc
}

async fn publish(stack: &LocalStack, api: &ApiClient, doc: &Value) -> Value {
    let r = api.put("rule-set", doc).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    r.body
}

/// Plans of one SKU (or all), computed as at `at`, as a message would ask.
async fn plan_at(stack: &LocalStack, sku: Option<&str>, at: DateTime<Utc>) {
    let mut payload = json!({"at": at});
    if let Some(sku) = sku {
        payload["sku"] = json!(sku);
    }
    send_raw(
        stack,
        "StockEventsQueue",
        &json!({"type": "reserve_plan.v1", "payload": payload}).to_string(),
    )
    .await;
    stack.wait_idle(IDLE).await.unwrap();
}

fn tier_line<'a>(plan: &'a Value, tier: &str) -> &'a Value {
    plan["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == tier)
        .unwrap_or_else(|| panic!("no {tier} in {plan}"))
}

/// Gold and senior pay jackets over two days; the plan forecasts each
/// tier's week from that history, gives gold its claim first, and says
/// which inputs gave which reserve. A recount re-plans on the spot, and a
/// short supply goes to gold in full first. Junior draws on the pool alone,
/// a plan computed again moves nothing, and reserves set by hand are
/// refused while the rule set plans them.
#[tokio::test(flavor = "multi_thread")]
async fn reserves_are_planned_from_each_tiers_demand_forecast_stock_and_seniority() {
    let (stack, api) = clothing_stack().await;
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    place_locked(&stack, &api, "d-shanghai", "senior").await;
    place_locked(&stack, &api, "d-hangzhou", "junior").await;
    let published = publish(
        &stack,
        &api,
        &rules_with(json!({
            "history_days": 7, "horizon_days": 7,
            "forecast": {"method": "ses", "alpha": "0.5"},
            "tiers": ["gold", "senior"]
        })),
    )
    .await;
    assert_eq!(published["reserve_plans"], "started");

    let base = Utc::now();
    let jacket = |event: &str, order: &str, q: u32, at: DateTime<Utc>| {
        docs::paid(event, order, "b1", &[("JACKET-DOWN", q, "1299.00")], at)
    };
    for (platform, store, doc) in [
        (
            "douyin",
            "sz-live",
            jacket("g1", "G1", 4, base - Duration::days(2)),
        ),
        (
            "douyin",
            "sz-live",
            jacket("g2", "G2", 2, base - Duration::days(1)),
        ),
        (
            "jd",
            "sh-outlet",
            jacket("s1", "S1", 3, base - Duration::days(1)),
        ),
    ] {
        let r = api.webhook(platform, store, &doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // A delivery the platform sent twice counts once.
    api.webhook(
        "douyin",
        "sz-live",
        &jacket("g2", "G2", 2, base - Duration::days(1)),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    plan_at(&stack, Some("JACKET-DOWN"), base).await;
    let s = stock_of(&api, "JACKET-DOWN").await;
    // Gold's week [0,0,0,0,0,4,2] smooths to 2 a day: 14 for 7 days;
    // senior's [0,0,0,0,0,0,3] to 1.5: 10.5, rounded up to 11.
    assert_eq!(
        parts(&s),
        (
            40,
            40 - 9 - 14 - 11,
            json!({"gold": 14, "senior": 11}),
            9,
            0
        ),
        "{s}"
    );
    let plan = &s["plan"];
    assert_eq!(plan["free"], 31);
    assert_eq!(plan["forecast"], json!({"method": "ses", "alpha": "0.5"}));
    assert_eq!(plan["horizon_days"], 7);
    let gold = tier_line(plan, "gold");
    assert_eq!(
        (
            &gold["seniority"],
            &gold["ordered"],
            &gold["forecast"],
            &gold["claim"],
            &gold["reserve"]
        ),
        (&json!(3), &json!(6), &json!(14), &json!(14), &json!(14)),
        "{plan}"
    );
    assert_eq!(tier_line(plan, "senior")["ordered"], 3);
    assert_eq!(plan["tiers"][0]["tier"], "gold", "most senior first");

    // The same plan again moves nothing and writes nothing.
    stack.dynamo_usage.reset();
    plan_at(&stack, Some("JACKET-DOWN"), base).await;
    let written: Vec<_> = stack
        .dynamo_usage
        .snapshot()
        .writes
        .into_iter()
        .filter(|w| w.pk == "SKU#JACKET-DOWN")
        .collect();
    assert!(written.is_empty(), "{written:?}");
    let again = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(parts(&again), parts(&s));
    assert_eq!(again["plan"], s["plan"]);

    // A recount to 19 plans again at once, now: 10 free, short of the
    // claims, gold's in full first. (Planned now, its history may have
    // moved on a day since `base`: the plan's own claims say.)
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 19}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(s["plan"]["free"], 10, "{s}");
    let claim = |tier: &str| tier_line(&s["plan"], tier)["claim"].as_u64().unwrap();
    let gold = claim("gold").min(10);
    let senior = claim("senior").min(10 - gold);
    assert!(gold + senior == 10, "the claims reach the supply: {s}");
    let mut reserves = json!({"gold": gold});
    if senior > 0 {
        reserves["senior"] = json!(senior);
    }
    assert_eq!(parts(&s), (19, 0, reserves.clone(), 9, 0), "{s}");

    // Junior finds the pool empty: its order waits, the reserves untouched.
    api.webhook("tmall", "hz-flagship", &jacket("j1", "J1", 1, Utc::now()))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(parts(&s), (19, 0, reserves, 9, 1), "{s}");

    // A payment of yesterday delivered after today's moved the SKU's
    // running day on: it counts on its own day, once.
    for _ in 0..2 {
        let r = api
            .webhook(
                "douyin",
                "sz-live",
                &jacket("g3", "G3", 1, base - Duration::days(1)),
            )
            .await
            .unwrap();
        assert!(r.status == 202 || r.status == 200, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();
    plan_at(&stack, Some("JACKET-DOWN"), Utc::now()).await;
    let s = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(tier_line(&s["plan"], "gold")["ordered"], 7, "{s}");
    assert_eq!(tier_line(&s["plan"], "senior")["ordered"], 3, "{s}");

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

    // Reserves by hand are the rule set's to plan now.
    let r = api
        .put(
            "skus/JACKET-DOWN/reserves",
            &json!({"reserves": {"gold": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (409, "reserves_planned"),
        "{}",
        r.body
    );
    stack.stop().await;
}

/// A promotion window triples gold's claim while it runs: gold's reserve
/// takes the jackets, a delayed plan of an earlier instant does not undo
/// that, and junior's order waits. The first plan after the window returns
/// what gold did not sell to the pool, and the fill that follows serves
/// junior's backorder from it. A sweep that stopped after one SKU, then run
/// whole, twice, returns each SKU's units once.
#[tokio::test(flavor = "multi_thread")]
async fn a_promotions_raised_reserves_return_to_the_pool_once_when_it_ends() {
    let (stack, api) = clothing_stack().await;
    place_locked(&stack, &api, "d-suzhou", "gold").await;
    place_locked(&stack, &api, "d-hangzhou", "junior").await;
    // Plans only move forward in time, so the window is around now. Gold
    // buys yesterday and today: whether or not midnight passes before the
    // window ends, its last full day is 2 units.
    let start = Utc::now();
    publish(
        &stack,
        &api,
        &rules_with(json!({
            "history_days": 7, "horizon_days": 7,
            "forecast": {"method": "ses", "alpha": "1"},
            "tiers": ["gold"],
            "promotions": [{
                "id": "double-11",
                "starts_at": start - Duration::hours(1),
                "ends_at": start + Duration::hours(3),
                "tiers": {"gold": "3"}
            }]
        })),
    )
    .await;
    for (event, order, at) in [("g1", "G1", start - Duration::days(1)), ("g0", "G0", start)] {
        let doc = docs::paid(
            event,
            order,
            "b1",
            &[("JACKET-DOWN", 2, "1299.00"), ("TEE-WHITE", 2, "199.00")],
            at,
        );
        let r = api.webhook("douyin", "sz-live", &doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();

    // In the window, by the template's own schedule: gold's week of 2 a day
    // is 14, tripled to 42; the jackets' 36 free all go to it.
    // A schedule's instant is whole seconds, as EventBridge Scheduler's
    // is: two seconds on, so it is never before the plan the publication
    // made a moment ago (a plan of an earlier instant writes nothing).
    let during = Utc::now() + Duration::seconds(2);
    stack
        .fire_queue_schedule("ReservePlanSchedule", during)
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let jackets = stock_of(&api, "JACKET-DOWN").await;
    assert_eq!(
        parts(&jackets),
        (40, 0, json!({"gold": 36}), 4, 0),
        "{jackets}"
    );
    assert_eq!(jackets["plan"]["promotions"], json!(["double-11"]));
    assert_eq!(tier_line(&jackets["plan"], "gold")["promotion_factor"], "3");
    let tees = stock_of(&api, "TEE-WHITE").await;
    assert_eq!(
        parts(&tees),
        (5000, 5000 - 4 - 42, json!({"gold": 42}), 4, 0),
        "{tees}"
    );
    // A delayed page of an earlier sweep does not undo a later plan.
    plan_at(&stack, Some("JACKET-DOWN"), start - Duration::hours(2)).await;
    assert_eq!(parts(&stock_of(&api, "JACKET-DOWN").await), parts(&jackets));

    // Lower tiers cannot draw on it during the window.
    api.webhook(
        "tmall",
        "hz-flagship",
        &docs::paid(
            "j1",
            "J1",
            "b9",
            &[("JACKET-DOWN", 1, "1299.00")],
            Utc::now(),
        ),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(stock_of(&api, "JACKET-DOWN").await["backordered"], 1);

    // After the window: a sweep that stopped after the jackets, then the
    // whole sweep, twice.
    let after = start + Duration::hours(4);
    plan_at(&stack, Some("JACKET-DOWN"), after).await;
    stack
        .fire_queue_schedule("ReservePlanSchedule", after)
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let once = (
        stock_of(&api, "JACKET-DOWN").await,
        stock_of(&api, "TEE-WHITE").await,
    );
    stack
        .fire_queue_schedule("ReservePlanSchedule", after)
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let twice = (
        stock_of(&api, "JACKET-DOWN").await,
        stock_of(&api, "TEE-WHITE").await,
    );
    // Jackets: gold back to 14, 22 to the pool, and junior's one filled from it.
    assert_eq!(
        parts(&once.0),
        (40, 21, json!({"gold": 14}), 5, 0),
        "{}",
        once.0
    );
    assert!(once.0["plan"].get("promotions").is_none(), "{}", once.0);
    assert_eq!(
        parts(&once.1),
        (5000, 5000 - 4 - 14, json!({"gold": 14}), 4, 0),
        "{}",
        once.1
    );
    assert_eq!(parts(&twice.0), parts(&once.0));
    assert_eq!(parts(&twice.1), parts(&once.1));
    let r = api
        .get("orders/tmall/hz-flagship/J1/reservations")
        .await
        .unwrap();
    assert_eq!(
        r.body["lines"]["1"]["draw"],
        json!({"pool": 1}),
        "{}",
        r.body
    );
    stack.stop().await;
}

/// Bad reserves sections are refused with every problem named; plans asked
/// without one, or of a SKU outside the book, are refused too.
#[tokio::test(flavor = "multi_thread")]
async fn bad_plans_and_plan_requests_are_refused_with_their_reasons() {
    let (stack, api) = clothing_stack().await;
    let r = api.post("stock:plan", &json!({})).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (409, "reserves_not_planned"),
        "{}",
        r.body
    );
    let bad = rules_with(json!({
        "history_days": 0,
        "forecast": {"method": "holt", "alpha": "0.5", "beta": "2"},
        "tiers": ["gold", "platinum"],
        "promotions": [{"id": "p", "starts_at": "2026-11-11T00:00:00Z",
                        "ends_at": "2026-11-10T00:00:00Z", "tiers": {"gold": "0.5"}}]
    }));
    let r = api.put("rule-set", &bad).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_rule_set"),
        "{}",
        r.body
    );
    let message = r.body["message"].as_str().unwrap();
    for path in [
        "reserves.history_days",
        "reserves.forecast.beta",
        "reserves.tiers.platinum",
        "reserves.promotions[0].ends_at",
        "reserves.promotions[0].tiers.gold",
    ] {
        assert!(message.contains(path), "{path} not named: {message}");
    }
    let r = api
        .put(
            "rule-set",
            &rules_with(json!({"forecast": {"method": "median"}, "tiers": ["gold"]})),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_rule_set"),
        "{}",
        r.body
    );

    publish(
        &stack,
        &api,
        &rules_with(
            json!({"forecast": {"method": "croston_sba", "alpha": "0.1"}, "tiers": ["gold"]}),
        ),
    )
    .await;
    let r = api
        .post("stock:plan", &json!({"sku": "NOT-SOLD"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_sku"), "{}", r.body);
    let r = api
        .post("stock:plan", &json!({"sku": "TEE-WHITE", "x": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    let r = api
        .post("stock:plan", &json!({"sku": "TEE-WHITE"}))
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    // No demand yet: nothing reserved, and the plan says why.
    let s = stock_of(&api, "TEE-WHITE").await;
    assert_eq!(s["reserves"], json!({}));
    assert_eq!(tier_line(&s["plan"], "gold")["forecast"], 0);

    // A stock sync asks for the plans of its SKUs together.
    let r = api
        .post(
            "stock:sync",
            &json!({"mode": "snapshot", "sync_id": "erp-1", "lines": [
                {"sku": "HOODIE-GREY", "on_hand": 1500}, {"sku": "JACKET-DOWN", "on_hand": 30}]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    for (sku, free) in [("HOODIE-GREY", 1500), ("JACKET-DOWN", 30)] {
        let s = stock_of(&api, sku).await;
        assert_eq!(s["plan"]["free"], free, "{s}");
    }
    stack.stop().await;
}
