//! Faults between the functions and the emulator: throttling as DynamoDB
//! and SQS answer it, 500s, and responses lost after the write happened,
//! on a quarter of the functions' requests. A known stream of orders,
//! refunds and registrations, delivered as a platform delivers (retrying
//! what is not answered), must come out exactly as it does without faults:
//! sales, orders, downline users, commission, tiers and stock, with nothing
//! left on a dead-letter queue once what was parked is redriven. A third of
//! the orders come from two levels below the top, so the top's network
//! metrics go through the roll-up's pulls, faulted too; their seller and
//! its upline are spread over shards.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use local_stack::faults::FaultPlan;
use serde_json::{Value, json};
use system_tests::*;

const DISTRIBUTORS: [&str; 4] = ["d-shanghai", "d-suzhou", "d-hangzhou", "d-kunshan"];
const SKUS: [&str; 2] = ["TEE-WHITE", "HOODIE-GREY"];

/// The stream: (platform, store, document), in the order it is sent.
fn stream(now: DateTime<Utc>) -> Vec<(&'static str, &'static str, Value)> {
    let mut out = Vec::new();
    for i in 0..10u32 {
        let (platform, store, prefix) = match i % 3 {
            0 => ("jd", "sh-outlet", "SH"),
            1 => ("douyin", "sz-live", "SZ"),
            _ => ("tmall", "ks-shop", "KS"),
        };
        let order = format!("{prefix}-{i}");
        let buyer = format!("buyer-{i}");
        let mut lines = vec![("TEE-WHITE", 1 + i % 3, "199.00")];
        if i % 3 == 0 {
            lines.push(("HOODIE-GREY", 2, "459.00"));
        }
        out.push((
            platform,
            store,
            docs::paid(&format!("f-paid-{i}"), &order, &buyer, &lines, now),
        ));
        if i % 4 == 1 {
            // The whole order back, with its goods.
            let total: u32 = lines
                .iter()
                .map(|(_, q, p)| q * p.trim_end_matches(".00").parse::<u32>().unwrap())
                .sum();
            let returned: Vec<(String, u32)> = lines
                .iter()
                .enumerate()
                .map(|(n, (_, q, _))| ((n + 1).to_string(), *q))
                .collect();
            let returned: Vec<(&str, u32)> =
                returned.iter().map(|(l, q)| (l.as_str(), *q)).collect();
            out.push((
                platform,
                store,
                docs::refunded(
                    &format!("f-refund-{i}"),
                    &order,
                    &format!("RF-{i}"),
                    &format!("{total}.00"),
                    &returned,
                    now,
                ),
            ));
        }
        if i % 3 == 2 {
            out.push((
                platform,
                store,
                docs::registered(&format!("f-signup-{i}"), &format!("user-{i}"), now),
            ));
        }
    }
    out
}

/// d-kunshan under d-suzhou, with a store: the top is two levels above it.
async fn extend(api: &ApiClient) {
    let r = api
        .put(
            "distributors/d-kunshan",
            &json!({"name": "昆山 Kunshan", "upline": "d-suzhou"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .put("stores/tmall/ks-shop", &json!({"distributor": "d-kunshan"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // A seller and its upline spread over shards: their counters and
    // commission go through the faults on shards.
    for id in ["d-kunshan", "d-suzhou"] {
        let r = api
            .put(&format!("distributors/{id}/shards"), &json!({"shards": 4}))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// The brand loaded and extended under a prefix of its own, with no stack
/// left running on it.
async fn loaded_and_extended() -> (String, Option<String>) {
    let (prefix, key) = loaded_prefix().await;
    let stack = LocalStack::start(stack_options_on(&prefix)).await.unwrap();
    extend(&client_with_key(&stack, &key)).await;
    stack.wait_idle(IDLE).await.unwrap();
    stack.stop().await;
    (prefix, key)
}

/// Delivers as a platform does: again after a 5xx, until it is answered.
async fn deliver(api: &ApiClient, platform: &str, store: &str, doc: &Value) {
    for _ in 0..40 {
        let r = api.webhook(platform, store, doc).await.unwrap();
        match r.status {
            200 | 202 => return,
            s if s >= 500 => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("{doc}: refused {} {}", r.status, r.body),
        }
    }
    panic!("{doc}: never accepted");
}

/// An admin call, again after a 5xx (the admin API is faulted too).
async fn admin(
    api: &ApiClient,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Value {
    for _ in 0..40 {
        let r = api.admin(method.clone(), path, body).await.unwrap();
        if r.status < 500 {
            assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path}: never answered");
}

/// What the brand would check: every distributor's metrics and tier, and
/// the stock of every SKU.
async fn totals(api: &ApiClient) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for id in DISTRIBUTORS {
        let d = admin(
            api,
            reqwest::Method::GET,
            &format!("distributors/{id}"),
            None,
        )
        .await;
        out.insert(format!("{id} metrics"), d["metrics"].clone());
        out.insert(format!("{id} tier"), d["distributor"]["tier"].clone());
    }
    for sku in SKUS {
        let s = admin(
            api,
            reqwest::Method::GET,
            &format!("skus/{sku}/stock"),
            None,
        )
        .await;
        out.insert(format!("{sku} available"), s["available"].clone());
    }
    out
}

/// The totals the stream must come to: delivered on a clean stack of its
/// own, without faults.
async fn clean_totals(now: DateTime<Utc>) -> BTreeMap<String, Value> {
    let (clean, api) = clothing_stack().await;
    extend(&api).await;
    for (platform, store, doc) in stream(now) {
        deliver(&api, platform, store, &doc).await;
    }
    clean.wait_idle(IDLE).await.unwrap();
    let totals = totals(&api).await;
    clean.stop().await;
    totals
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quarter_of_requests_faulted_changes_no_total() {
    let now = Utc::now();

    // Without faults: what the totals must be.
    let expected = clean_totals(now).await;

    // The same brand loaded without faults, then the stream through them.
    let (prefix, key) = loaded_and_extended().await;
    let plan = FaultPlan {
        rate: 0.25,
        seed: 11,
    };
    let mut opts = stack_options_on(&prefix);
    opts.faults = Some(plan);
    let stack = LocalStack::start(opts).await.unwrap();
    let faulted = client_with_key(&stack, &key);
    for (platform, store, doc) in stream(now) {
        deliver(&faulted, platform, store, &doc).await;
    }
    stack.wait_idle(IDLE).await.unwrap();

    // What was parked carries its reason, and comes back exactly once.
    for _ in 0..3 {
        let mut parked = 0;
        for (queue, dlq) in [
            ("tier-events", "TierEventsDLQ"),
            ("stock-events", "StockEventsDLQ"),
        ] {
            let depth = depth(&stack, dlq).await;
            parked += depth;
            if depth == 0 {
                continue;
            }
            let listed = admin(
                &faulted,
                reqwest::Method::GET,
                &format!("dead-letters?queue={queue}&limit=50"),
                None,
            )
            .await;
            for letter in listed["dead_letters"].as_array().unwrap() {
                assert!(
                    letter["failure_code"].is_string(),
                    "parked without a reason: {letter}"
                );
            }
            let redrive = json!({"queue": queue});
            admin(
                &faulted,
                reqwest::Method::POST,
                "dead-letters:redrive",
                Some(&redrive),
            )
            .await;
        }
        eprintln!("parked: {parked}");
        if parked == 0 {
            break;
        }
        stack.wait_idle(IDLE).await.unwrap();
    }
    assert_eq!(depth(&stack, "TierEventsDLQ").await, 0);
    assert_eq!(depth(&stack, "StockEventsDLQ").await, 0);

    let counts = stack.faults.clone().unwrap();
    let injected = counts.throttled.load(Ordering::Relaxed)
        + counts.failed.load(Ordering::Relaxed)
        + counts.dropped.load(Ordering::Relaxed);
    assert!(injected > 20, "faults were injected: {counts:?}");
    eprintln!("faults: {counts:?}");
    let got = totals(&faulted).await;
    assert_eq!(got, expected, "with {counts:?}");
    stack.stop().await;
}

/// Consumers cut off part-way through their batches, again and again, then
/// stopped mid-batch and started afresh: every message is processed after
/// its visibility timeout, and nothing is counted twice.
#[tokio::test(flavor = "multi_thread")]
async fn consumers_killed_mid_batch_count_everything_once() {
    let now = Utc::now();
    let expected = clean_totals(now).await;

    let (prefix, key) = loaded_and_extended().await;

    // Each consumer invocation ends after 30 ms, wherever it is.
    let mut opts = stack_options_on(&prefix);
    opts.consumer_timeout = Some(Duration::from_millis(30));
    let crashing = LocalStack::start(opts).await.unwrap();
    let client = client_with_key(&crashing, &key);
    for (platform, store, doc) in stream(now) {
        deliver(&client, platform, store, &doc).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cut = crashing.timed_out_batches.load(Ordering::Relaxed);
    assert!(cut > 0, "no consumer invocation was cut off");
    // Stopped with batches in flight.
    crashing.stop().await;
    eprintln!("consumer invocations cut off: {cut}");

    let restarted = LocalStack::start(stack_options_on(&prefix)).await.unwrap();
    let client = client_with_key(&restarted, &key);
    restarted.wait_idle(IDLE).await.unwrap();
    assert_eq!(depth(&restarted, "TierEventsDLQ").await, 0);
    assert_eq!(depth(&restarted, "StockEventsDLQ").await, 0);
    assert_eq!(totals(&client).await, expected);
    restarted.stop().await;
}
