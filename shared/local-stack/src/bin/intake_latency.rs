//! `intake-latency`: how long order intake takes to accept one Shopify
//! `orders/paid` delivery (signature, parse, the table's view, both queue
//! sends and the receipt), as a ratio against one raw `PutItem` of a
//! receipt-sized item measured in the same run.
//!
//! Intake runs in this process, warm, as one Lambda instance would after
//! its first delivery, against the local stack's emulator while the
//! stack's consumers drain what it queues. Each delivery and each PutItem
//! takes its turn among the stack's invocations (the emulator's
//! transactions are not isolated) and is timed from when it has it, so a
//! consumer's batch running before it is not counted, as on Lambda, where
//! they would not wait for each other. The HTTP front is left out.
//! Both series are interleaved so drift in load hits them equally; the
//! ratio is what to compare between runs on these noisy machines.
//!
//! ```text
//! make bench-intake                                   # release build, 300 iterations
//! cargo run --release -p local-stack --bin intake-latency -- --iterations 1000
//! ```
//!
//! Starts its own moto server (`scripts/venv.sh moto` installs it) and
//! kills it, by its pid, when done. Prints a table, then one line of JSON
//! starting with `{"bench":"intake-latency"`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use hmac::{Hmac, Mac};
use local_stack::bench;
use local_stack::client::ApiClient;
use local_stack::stack::{DEFAULT_IDLE_TIMEOUT, LocalStack};
use serde_json::json;
use sha2::Sha256;

const DEFAULT_ITERATIONS: usize = 300;
const WARMUP: usize = 20;
const SHOP: &str = "bench.myshopify.com";
const SECRET: &str = "shpss_bench_0123456789abcdef0123";

/// An `orders/paid` body in Shopify's REST shape: one line, mapped.
fn order(id: u64) -> Vec<u8> {
    let money = |amount: &str| {
        json!({"shop_money": {"amount": amount, "currency_code": "CNY"},
               "presentment_money": {"amount": amount, "currency_code": "CNY"}})
    };
    let now = chrono::Utc::now();
    serde_json::to_vec(&json!({
        "id": id,
        "created_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "processed_at": now.to_rfc3339(),
        "currency": "CNY",
        "financial_status": "paid",
        "subtotal_price": "199.00", "subtotal_price_set": money("199.00"),
        "total_price": "199.00",
        "customer": {"id": 115310627314723954u64},
        "shipping_address": {"province": "Zhejiang", "province_code": "ZJ", "country_code": "CN"},
        "line_items": [{
            "id": id * 10 + 1, "variant_id": 4001u64, "sku": "TEE-W-M", "quantity": 1,
            "price": "199.00", "price_set": money("199.00"), "discount_allocations": [],
        }],
    }))
    .expect("a JSON value serialises")
}

fn delivery(id: u64) -> lambda_http::Request {
    let body = order(id);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(&body);
    let hmac = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/webhooks/shopify")
        .header("x-shopify-topic", "orders/paid")
        .header("x-shopify-shop-domain", SHOP)
        .header("x-shopify-event-id", format!("bench-{id}"))
        .header("x-shopify-hmac-sha256", hmac)
        .body(lambda_http::Body::from(body))
        .expect("a valid request")
}

struct Bench<'a> {
    stack: &'a LocalStack,
    intake: order_intake::OrderIntake,
    table: String,
}

impl Bench<'_> {
    async fn deliver(&self, id: u64) -> anyhow::Result<Duration> {
        let req = delivery(id);
        // Its turn among the stack's invocations, not timed.
        let _turn = self.stack.turns.lock().await;
        let started = Instant::now();
        let r = self.intake.handle(req).await;
        let elapsed = started.elapsed();
        let status = r.status();
        let body = String::from_utf8_lossy(r.body().as_ref()).into_owned();
        ensure!(status == 200, "delivery {id}: {status} {body}");
        ensure!(
            body.contains("\"queued\""),
            "delivery {id} not queued: {body}"
        );
        Ok(elapsed)
    }

    /// A receipt-sized item: what intake's one write is.
    async fn put_item(&self, i: usize) -> anyhow::Result<Duration> {
        let _turn = self.stack.turns.lock().await;
        let started = Instant::now();
        self.stack
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(format!("BENCH#{}", i % 64)))
            .item("SK", AttributeValue::S(format!("RECEIPT#{i}")))
            .item("kind", AttributeValue::S("webhook_receipt".into()))
            .item(
                "received_at",
                AttributeValue::S(chrono::Utc::now().to_rfc3339()),
            )
            .send()
            .await
            .context("PutItem of a receipt-sized item")?;
        Ok(started.elapsed())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tier_runtime::logging::init_text("warn");
    let n = bench::iterations("intake-latency", DEFAULT_ITERATIONS)?;
    let build = bench::build();
    println!("intake-latency: {n} iterations, {WARMUP} warm-up, {build} build");
    bench::with_stack(
        |_| {},
        async |stack, endpoint| measure(stack, endpoint, n, build).await,
    )
    .await
}

async fn connect_store(api: &ApiClient) -> anyhow::Result<()> {
    let r = api
        .put(
            "platform-apps/shopify/bench-app",
            &json!({"secret": SECRET}),
        )
        .await?;
    ensure!(
        r.status == 200,
        "registering the app: {} {}",
        r.status,
        r.body
    );
    let r = api
        .put(
            &format!("stores/shopify/{SHOP}"),
            &json!({"distributor": "d-shanghai", "app": "bench-app"}),
        )
        .await?;
    ensure!(
        r.status == 200,
        "connecting the store: {} {}",
        r.status,
        r.body
    );
    let r = api
        .put_csv(
            &format!("stores/shopify/{SHOP}/sku-mapping"),
            "platform_sku,sku\nTEE-W-M,TEE-WHITE\n",
        )
        .await?;
    ensure!(r.status == 200, "the SKU mapping: {} {}", r.status, r.body);
    Ok(())
}

async fn measure(stack: &LocalStack, endpoint: &str, n: usize, build: &str) -> anyhow::Result<()> {
    let mut api = ApiClient::for_stack(stack);
    local_stack::demo::load(&mut api)
        .await
        .context("loading the demo brand")?;
    connect_store(&api).await?;
    stack
        .wait_idle(DEFAULT_IDLE_TIMEOUT)
        .await
        .context("waiting for the stack to go idle")?;

    let dynamo = tier_runtime::cost::DynamoCounter::default();
    let sends = tier_runtime::cost::SqsCounter::default();
    let aws = tier_runtime::AwsClients::local_counted(endpoint, Some(dynamo.clone()))
        .with_sqs_counter(sends.clone());
    let params = [("WebhookSecrets".to_owned(), stack.webhook_secret.clone())].into();
    let env = stack
        .resources
        .function_env(&stack.template, "OrderIntakeFunction", &params)?;
    let intake = order_intake::OrderIntake::from_env(&tier_runtime::Env::from_map(env), &aws)?;
    let bench = Bench {
        stack,
        intake,
        table: stack.table_name(),
    };
    // Order ids: distinct per run, so a rerun against a kept emulator
    // still delivers new orders.
    let base = 7_000_000_000u64 + u64::from(fastrand::u32(..));
    for i in 0..WARMUP {
        bench.deliver(base + i as u64).await?;
        bench.put_item(i).await?;
    }

    let mut deliveries = Vec::with_capacity(n);
    let mut puts = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let id = base + (WARMUP + i) as u64;
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            deliveries.push(bench.deliver(id).await?);
            puts.push(bench.put_item(WARMUP + i).await?);
        } else {
            puts.push(bench.put_item(WARMUP + i).await?);
            deliveries.push(bench.deliver(id).await?);
        }
    }
    let wall = started.elapsed();

    // What one warm delivery costs, counted by the SDK interceptors.
    dynamo.reset();
    sends.reset();
    bench.deliver(base + (WARMUP + n) as u64).await?;
    let usage = dynamo.snapshot();
    let sent = sends.sends();

    let d = bench::stats(&deliveries);
    let p = bench::stats(&puts);
    let (ratio_p50, ratio_p99, ratio_mean) = (d.p50 / p.p50, d.p99 / p.p99, d.mean / p.mean);
    println!();
    println!("{}", bench::header());
    println!("{}", bench::row("Shopify delivery", &d));
    println!("{}", bench::row("PutItem (raw)", &p));
    println!();
    println!(
        "  delivery / PutItem: p50 {ratio_p50:.2}x, p99 {ratio_p99:.2}x, mean {ratio_mean:.2}x"
    );
    println!(
        "  per delivery: DynamoDB {:?} ({} read units, {} write units), SQS sends {:?}",
        usage.requests, usage.read_units, usage.write_units, sent
    );
    println!("  {n} pairs in {:.1} s", wall.as_secs_f64());
    stack
        .wait_idle(DEFAULT_IDLE_TIMEOUT)
        .await
        .context("waiting for the consumers to drain")?;

    let r2 = bench::r2;
    let summary = json!({
        "bench": "intake-latency",
        "build": build,
        "iterations": n,
        "delivery_ms": {"p50": r2(d.p50), "p90": r2(d.p90), "p99": r2(d.p99), "mean": r2(d.mean)},
        "put_item_ms": {"p50": r2(p.p50), "p90": r2(p.p90), "p99": r2(p.p99), "mean": r2(p.mean)},
        "ratio": {"p50": r2(ratio_p50), "p99": r2(ratio_p99), "mean": r2(ratio_mean)},
        "dynamodb_requests_per_delivery": usage.requests,
        "read_units_per_delivery": usage.read_units,
        "write_units_per_delivery": usage.write_units,
        "sqs_sends_per_delivery": sent.values().sum::<u64>(),
    });
    println!();
    println!("{summary}");
    Ok(())
}
