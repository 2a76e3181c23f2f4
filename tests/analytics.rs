//! What the brand sees of its network: sales by region against the
//! previous period and a year before, price disorder (乱价) ranked with its
//! evidence, and each tier's members, moves and sales. Orders go through
//! signed webhooks and the real queues; the answers come from aggregates
//! the events keep.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use system_tests::*;

fn shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

/// Noon on `day` of the brand month `back` months before this one.
fn in_month(back: u32, day: u32) -> DateTime<Utc> {
    let now = Utc::now().with_timezone(&shanghai());
    let mut y = now.year();
    let mut m = now.month() as i32 - back as i32;
    while m < 1 {
        m += 12;
        y -= 1;
    }
    shanghai()
        .with_ymd_and_hms(y, m as u32, day, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn month_name(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai()).format("%Y-%m").to_string()
}

fn with_region(mut doc: Value, region: &str) -> Value {
    doc["region"] = json!(region);
    doc
}

fn region<'a>(body: &'a Value, code: &str) -> &'a Value {
    body["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == code)
        .unwrap_or_else(|| panic!("no {code} in {body}"))
}

fn tier<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tier"] == id)
        .unwrap_or_else(|| panic!("no {id} in {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn regions_are_compared_with_the_previous_period_and_a_year_before() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // This month: Zhejiang buys from two sellers, Jiangsu from one; one
    // Zhejiang order is half refunded, and one delivery comes twice.
    let paid = [
        (
            "jd",
            "sh-outlet",
            with_region(
                docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 2, "199.00")], now),
                "CN-ZJ",
            ),
        ),
        (
            "douyin",
            "sz-live",
            with_region(
                docs::paid("e2", "O2", "b2", &[("HOODIE-GREY", 1, "459.00")], now),
                "CN-ZJ",
            ),
        ),
        (
            "jd",
            "sh-outlet",
            with_region(
                docs::paid("e3", "O3", "b3", &[("TEE-WHITE", 1, "199.00")], now),
                "CN-JS",
            ),
        ),
        (
            "jd",
            "sh-outlet",
            docs::paid("e4", "O4", "b4", &[("TEE-WHITE", 1, "199.00")], now),
        ),
    ];
    for (platform, store, doc) in &paid {
        let r = api.webhook(platform, store, doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let again = api.webhook("jd", "sh-outlet", &paid[0].2).await.unwrap();
    assert!(again.status < 300, "{}", again.body);
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::refunded("e1r", "O1", "r1", "199.00", &[], now),
    )
    .await
    .unwrap();
    // Guangdong: 3,000 two months ago, 1,000 last month (a fall of two
    // thirds), 2,000 in last month's month a year before.
    for (id, at, qty) in [
        ("g1", in_month(2, 10), 15u32),
        ("g2", in_month(1, 10), 5),
        ("g3", in_month(13, 10), 10),
    ] {
        let r = api
            .webhook(
                "jd",
                "sh-outlet",
                &with_region(
                    docs::paid(
                        id,
                        &format!("G-{id}"),
                        "bg",
                        &[("TEE-WHITE", qty, "200.00")],
                        at,
                    ),
                    "CN-GD",
                ),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();

    let r = api.get("analytics/regions").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let body = &r.body;
    assert_eq!(body["period"], month_name(now));
    assert_eq!(body["complete"], false);
    let zj = region(body, "CN-ZJ");
    // 398 - 199 + 459.
    assert_eq!(dec(&zj["current"]["sales"]), d("658"));
    assert_eq!(zj["current"]["orders"], 2);
    assert_eq!(dec(&region(body, "CN-JS")["current"]["sales"]), d("199"));
    let unknown = body["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"].is_null())
        .expect("orders without a province have a row");
    assert_eq!(dec(&unknown["current"]["sales"]), d("199"));
    assert_eq!(dec(&body["total"]["current"]["sales"]), d("1056"));
    // Last month's 1,000 in Guangdong, but this month is under way: not judged.
    let gd = region(body, "CN-GD");
    assert_eq!(dec(&gd["previous"]["sales"]), d("1000"));
    assert_eq!(gd["declining"], false);

    let last = month_name(in_month(1, 10));
    let r = api
        .get(&format!("analytics/regions?period={last}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["complete"], true);
    let gd = region(&r.body, "CN-GD");
    assert_eq!(dec(&gd["current"]["sales"]), d("1000"));
    assert_eq!(dec(&gd["previous"]["sales"]), d("3000"));
    assert_eq!(dec(&gd["year_ago"]["sales"]), d("2000"));
    assert_eq!(dec(&gd["change_vs_previous_pct"]), d("-66.67"));
    assert_eq!(dec(&gd["change_vs_year_ago_pct"]), d("-50"));
    assert_eq!(gd["declining_vs_previous"], true);
    assert_eq!(r.body["declining"], json!(["CN-GD"]));
    // A higher threshold and base: no longer a decline.
    let r = api
        .get(&format!(
            "analytics/regions?period={last}&threshold_pct=70&min_base=500"
        ))
        .await
        .unwrap();
    assert_eq!(r.body["declining"], json!([]), "{}", r.body);

    // The quarter sums its months.
    let q = now.with_timezone(&shanghai());
    let quarter = format!("{}-Q{}", q.year(), (q.month() - 1) / 3 + 1);
    let r = api
        .get(&format!("analytics/regions?period={quarter}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["period"], quarter);
    assert!(dec(&r.body["total"]["current"]["sales"]) >= d("1056"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn price_disorder_is_ranked_with_its_evidence() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Floors: T-shirt 129.00, hoodie 299.00.
    for (platform, store, doc) in [
        (
            "jd",
            "sh-outlet",
            docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 3, "99.00")], now),
        ),
        (
            "jd",
            "sh-outlet",
            docs::paid(
                "e2",
                "O2",
                "b2",
                &[("TEE-WHITE", 1, "129.00"), ("HOODIE-GREY", 1, "289.00")],
                now,
            ),
        ),
        (
            "douyin",
            "sz-live",
            docs::paid("e3", "O3", "b3", &[("HOODIE-GREY", 2, "250.00")], now),
        ),
        (
            "douyin",
            "sz-live",
            docs::paid("e4", "O4", "b4", &[("HOODIE-GREY", 1, "459.00")], now),
        ),
    ] {
        let r = api.webhook(platform, store, &doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // Delivered again: still one violation.
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("e3", "O3", "b3", &[("HOODIE-GREY", 2, "250.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let r = api.get("analytics/price-disorder").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["violations"], 3);
    assert_eq!(r.body["orders"], 3);
    let ranked = r.body["distributors"].as_array().unwrap();
    assert_eq!(ranked.len(), 2, "{}", r.body);
    // d-shanghai: two lines, 90.00 + 10.00 below the floors.
    assert_eq!(ranked[0]["distributor"], "d-shanghai");
    assert_eq!(ranked[0]["violations"], 2);
    assert_eq!(dec(&ranked[0]["gap_amount"]), d("100"));
    assert_eq!(ranked[1]["distributor"], "d-suzhou");
    assert_eq!(dec(&ranked[1]["gap_amount"]), d("98"));
    let evidence = r.body["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 3);
    // Deepest first: 99 against 129 is 23.26 % below.
    assert_eq!(evidence[0]["order"], "jd/sh-outlet/O1");
    assert_eq!(evidence[0]["sku"], "TEE-WHITE");
    assert_eq!(evidence[0]["resale_unit_price"], "99.00");
    assert_eq!(evidence[0]["floor_price"], "129.00");
    assert_eq!(dec(&evidence[0]["gap_pct"]), d("23.26"));

    let r = api
        .get("analytics/price-disorder?distributor=d-suzhou&limit=10")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["violations"], 1);
    assert_eq!(r.body["evidence"][0]["order"], "douyin/sz-live/O3");
    assert_eq!(r.body["evidence"][0]["quantity"], 2);

    // A range before the orders has none.
    let r = api
        .get("analytics/price-disorder?from=2026-01-01&to=2026-01-31")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["violations"], 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tier_shows_its_members_moves_and_sales() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // 40 jackets: d-shanghai moves up from Junior to Intermediate.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e1", "O1", "b1", &[("JACKET-DOWN", 40, "1299.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");
    // Its next order counts for Intermediate.
    api.webhook(
        "jd",
        "sh-outlet",
        &docs::paid("e2", "O2", "b2", &[("TEE-WHITE", 1, "199.00")], now),
    )
    .await
    .unwrap();
    api.webhook(
        "douyin",
        "sz-live",
        &docs::paid("e3", "O3", "b3", &[("TEE-WHITE", 2, "199.00")], now),
    )
    .await
    .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let r = api.get("analytics/tiers").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let junior = tier(&r.body, "junior");
    assert_eq!(junior["members"], 2, "{}", r.body);
    assert_eq!(junior["joined"], 3);
    assert_eq!(junior["moved_up_out"], 1);
    // The jackets were sold as Junior, and so was Suzhou's order.
    assert_eq!(dec(&junior["sales"]), d("52358"));
    assert_eq!(dec(&junior["sales_per_member"]), d("26179"));
    let intermediate = tier(&r.body, "intermediate");
    assert_eq!(intermediate["members"], 1);
    assert_eq!(intermediate["moved_up_in"], 1);
    assert_eq!(dec(&intermediate["sales"]), d("199"));
    assert_eq!(r.body["upgrades"], 1);
    assert_eq!(r.body["downgrades"], 0);

    // Last month, before any of it: no members yet at its end.
    let last = month_name(in_month(1, 10));
    let r = api
        .get(&format!("analytics/tiers?period={last}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(tier(&r.body, "junior")["members"], 0, "{}", r.body);
    assert_eq!(tier(&r.body, "intermediate")["members"], 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_analytics_queries_name_the_parameter() {
    let (stack, api) = spawn_stack().await;
    for (path, code) in [
        ("analytics/regions?period=2026-13", "invalid_period"),
        ("analytics/regions?period=2026-Q5", "invalid_period"),
        ("analytics/regions?period=2999-01", "future_period"),
        ("analytics/regions?region=CN-ZJ", "unknown_parameter"),
        (
            "analytics/regions?period=2026-01&period=2026-02",
            "invalid_query",
        ),
        (
            "analytics/regions?threshold_pct=120",
            "invalid_threshold_pct",
        ),
        ("analytics/regions?min_base=-5", "invalid_min_base"),
        ("analytics/tiers?period=2001-01", "period_too_old"),
        ("analytics/tiers?sort=members", "unknown_parameter"),
        (
            "analytics/price-disorder?from=2026-02-01&to=2026-01-01",
            "invalid_range",
        ),
        (
            "analytics/price-disorder?from=2026-01-01&to=2026-06-01",
            "range_too_long",
        ),
        ("analytics/price-disorder?from=yesterday", "invalid_range"),
        (
            "analytics/price-disorder?distributor=a%2Fb",
            "invalid_distributor",
        ),
        ("analytics/price-disorder?limit=0", "invalid_limit"),
    ] {
        let r = api.get(path).await.unwrap();
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.body["code"], code, "{path}: {}", r.body);
        assert!(r.body["message"].is_string(), "{path}");
    }
    // A range of exactly 92 days is allowed.
    let to = Utc::now().date_naive();
    let from = to - Duration::days(91);
    let r = api
        .get(&format!("analytics/price-disorder?from={from}&to={to}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.stop().await;
}

/// The alerts topic's deliveries to a queue subscribed to it: each
/// finding's key, as many times as it was delivered.
async fn delivered(stack: &LocalStack, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let r = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = r.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let message: Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            assert_eq!(envelope["Subject"], message["summary"], "{message}");
            out.push(message["finding"].as_str().unwrap().to_owned());
            stack
                .clients
                .sqs
                .delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_alerts_publish_each_finding_once() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // A queue subscribed to the topic stands for the brand's mail and robots.
    let topic = stack.resources.topics["AlertsTopic"].clone();
    let sns = aws_sdk_sns::Client::new(&stack.clients.sdk);
    let queue = stack
        .clients
        .sqs
        .create_queue()
        .queue_name(format!("{}-alerts-inbox", stack.resources.prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    // Guangdong falls from 3,000 to 1,000 into last month; today a T-shirt
    // is resold at 99.00 against its 129.00 floor; d-shanghai reaches
    // Senior this month and sells nothing next month.
    for (id, at, qty) in [("g1", in_month(2, 10), 15u32), ("g2", in_month(1, 10), 5)] {
        api.webhook(
            "jd",
            "sh-outlet",
            &with_region(
                docs::paid(
                    id,
                    &format!("G-{id}"),
                    "bg",
                    &[("TEE-WHITE", qty, "200.00")],
                    at,
                ),
                "CN-GD",
            ),
        )
        .await
        .unwrap();
    }
    for doc in [
        docs::paid("low", "O-LOW", "b1", &[("TEE-WHITE", 1, "99.00")], now),
        docs::paid("big", "O-BIG", "b2", &[("HOODIE-GREY", 240, "459.00")], now),
    ] {
        api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    }
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "senior");

    let run = |at| {
        let stack = &stack;
        async move {
            let _turn = stack.turns.lock().await;
            stack.tier_evaluation.run_alerts(at).await.unwrap()
        }
    };
    let first = run(now).await;
    let last = month_name(in_month(1, 10));
    assert!(
        first
            .published
            .contains(&format!("region_declining#{last}#CN-GD")),
        "{first:?}"
    );
    assert!(
        first
            .published
            .contains(&"price_disorder#d-shanghai#jd#sh-outlet#O-LOW".to_owned()),
        "{first:?}"
    );
    // However often it runs, nothing is published twice.
    let again = run(now).await;
    assert!(again.published.is_empty(), "{again:?}");
    assert_eq!(again.already_published, first.published.len());

    // Next month's review moves d-shanghai down: one alert for it, once.
    let later = now + Duration::days(40);
    let review = stack.tier_evaluation.start_review(later).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "junior");
    let next = run(later).await;
    let downgrades = format!("review_downgrades#{}", review.period);
    assert!(next.published.contains(&downgrades), "{next:?}");
    assert!(run(later).await.published.is_empty());

    // The subscriber got every published finding exactly once.
    let mut got = delivered(&stack, &queue).await;
    got.sort();
    let mut want: Vec<String> = first.published.into_iter().chain(next.published).collect();
    want.sort();
    assert_eq!(got, want);
    stack.stop().await;
}
