//! `lookup-latency`: how long a 100-SKU price lookup takes through the real
//! HTTP path and the DynamoDB wire protocol, as a ratio against one raw
//! strongly consistent `GetItem` measured in the same run.
//!
//! The machines this runs on are shared and noisy, so absolute figures
//! mean little; the ratio is what to compare between runs. Both series are
//! interleaved (lookup, GetItem, lookup, GetItem, ...) so drift in load
//! hits them equally.
//!
//! ```text
//! make bench-lookup                                   # release build, 300 iterations
//! cargo run --release -p local-stack --bin lookup-latency -- --iterations 1000
//! ITERATIONS=50 cargo run -p local-stack --bin lookup-latency
//! ```
//!
//! Starts its own moto server (`scripts/venv.sh moto` installs it) and
//! kills it, by its pid, when done. Prints a table, then one line of JSON
//! starting with `{"bench":"lookup-latency"`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::bench;
use local_stack::client::ApiClient;
use local_stack::stack::{DEFAULT_IDLE_TIMEOUT, LocalStack};
use serde_json::json;

const DEFAULT_ITERATIONS: usize = 300;
const WARMUP: usize = 20;
const SKUS: usize = 100;
const DISTRIBUTOR: &str = "d-shanghai";
const QTY: &str = "5";

/// 100 SKUs: a base price each, a floor on every other one, tier prices on
/// every fifth, a distributor override on every tenth (some for the
/// distributor measured) and a volume break on every third (some of which
/// the lookup's qty=5 reaches), so quoting has real work to do.
fn price_book_csv() -> String {
    let mut csv = String::from("type,sku,tier,distributor,min_qty,price,discount_pct\n");
    for i in 0..SKUS {
        let sku = format!("SKU-{i:03}");
        let base = 100 + i * 7;
        let _ = writeln!(csv, "base,{sku},,,,{base}.00,");
        if i % 2 == 0 {
            let _ = writeln!(csv, "floor,{sku},,,,{}.00,", base * 6 / 10);
        }
        if i % 5 == 0 {
            let _ = writeln!(
                csv,
                "tier_price,{sku},intermediate,,,{}.00,",
                base * 95 / 100
            );
            let _ = writeln!(csv, "tier_price,{sku},gold,,,{}.00,", base * 80 / 100);
        }
        if i % 10 == 0 {
            let who = if i % 20 == 0 { DISTRIBUTOR } else { "d-suzhou" };
            let _ = writeln!(csv, "override,{sku},,{who},,{}.00,", base * 90 / 100);
        }
        if i % 3 == 0 {
            let _ = writeln!(
                csv,
                "volume_break,{sku},,,{},,{}",
                if i % 2 == 0 { 5 } else { 50 },
                2 + i % 4
            );
        }
    }
    csv
}

struct Bench<'a> {
    api: &'a ApiClient,
    stack: &'a LocalStack,
    table: String,
    skus: Vec<String>,
}

impl Bench<'_> {
    async fn lookup(&self) -> anyhow::Result<Duration> {
        let skus: Vec<&str> = self.skus.iter().map(String::as_str).collect();
        let started = Instant::now();
        let r = self
            .api
            .prices_query(DISTRIBUTOR, &skus, &[("qty", QTY)])
            .await?;
        let elapsed = started.elapsed();
        ensure!(r.status == 200, "lookup: {} {}", r.status, r.body);
        let n = r.body["prices"].as_array().map_or(0, Vec::len);
        ensure!(
            n == SKUS,
            "lookup priced {n} SKUs, not {SKUS}: {}",
            r.body["unknown_skus"]
        );
        Ok(elapsed)
    }

    async fn get_item(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self
            .stack
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(format!("DIST#{DISTRIBUTOR}")))
            .key("SK", AttributeValue::S("PROFILE".into()))
            .consistent_read(true)
            .send()
            .await
            .context("GetItem of the distributor profile")?;
        let elapsed = started.elapsed();
        ensure!(
            out.item.is_some(),
            "GetItem found no profile for {DISTRIBUTOR}"
        );
        Ok(elapsed)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tier_runtime::logging::init_text("warn");
    let n = bench::iterations("lookup-latency", DEFAULT_ITERATIONS)?;
    let build = bench::build();
    println!(
        "lookup-latency: {n} iterations, {WARMUP} warm-up, {SKUS} SKUs per lookup, {build} build"
    );
    bench::with_stack(|_| {}, async |stack, _| measure(stack, n, build).await).await
}

async fn measure(stack: &LocalStack, n: usize, build: &str) -> anyhow::Result<()> {
    let mut api = ApiClient::for_stack(stack);
    local_stack::demo::load(&mut api)
        .await
        .context("loading the demo brand")?;
    let r = api.put_csv("price-book", &price_book_csv()).await?;
    ensure!(
        r.status == 201,
        "publishing the {SKUS}-SKU price book: {} {}",
        r.status,
        r.body
    );
    // Whatever the load queued (tier evaluations) runs before measuring.
    stack
        .wait_idle(DEFAULT_IDLE_TIMEOUT)
        .await
        .context("waiting for the stack to go idle")?;
    println!(
        "  stack {}, table {}, {SKUS}-SKU price book published",
        stack.base_url,
        stack.table_name()
    );

    let bench = Bench {
        api: &api,
        stack,
        table: stack.table_name(),
        skus: (0..SKUS).map(|i| format!("SKU-{i:03}")).collect(),
    };

    for _ in 0..WARMUP {
        bench.lookup().await?;
        bench.get_item().await?;
    }

    let mut lookups = Vec::with_capacity(n);
    let mut gets = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            lookups.push(bench.lookup().await?);
            gets.push(bench.get_item().await?);
        } else {
            gets.push(bench.get_item().await?);
            lookups.push(bench.lookup().await?);
        }
    }
    let wall = started.elapsed();

    // DynamoDB requests of one lookup, counted by the SDK interceptor.
    stack.dynamo_usage.reset();
    bench.lookup().await?;
    let usage = stack.dynamo_usage.snapshot();

    let l = bench::stats(&lookups);
    let g = bench::stats(&gets);
    let ratio_p50 = l.p50 / g.p50;
    let ratio_p99 = l.p99 / g.p99;
    let ratio_mean = l.mean / g.mean;
    let breakdown: Vec<String> = usage
        .requests
        .iter()
        .map(|(op, c)| format!("{op} x{c}"))
        .collect();

    println!();
    println!("{}", bench::header());
    println!("{}", bench::row(&format!("lookup ({SKUS} SKUs)"), &l));
    println!("{}", bench::row("GetItem (consistent)", &g));
    println!();
    println!("  lookup / GetItem: p50 {ratio_p50:.2}x, p99 {ratio_p99:.2}x, mean {ratio_mean:.2}x");
    println!(
        "  DynamoDB per lookup: {} requests ({}), {} read units",
        usage.total_requests(),
        breakdown.join(", "),
        usage.read_units
    );
    println!("  {n} pairs in {:.1} s", wall.as_secs_f64());
    if usage.total_requests() != 2 {
        println!("  NOTE: expected 2 round trips per lookup (BatchGetItem x2)");
    }

    let r2 = bench::r2;
    let summary = json!({
        "bench": "lookup-latency",
        "build": build,
        "iterations": n,
        "skus": SKUS,
        "lookup_ms": {"p50": r2(l.p50), "p90": r2(l.p90), "p99": r2(l.p99), "mean": r2(l.mean)},
        "get_item_ms": {"p50": r2(g.p50), "p90": r2(g.p90), "p99": r2(g.p99), "mean": r2(g.mean)},
        "ratio": {"p50": r2(ratio_p50), "p99": r2(ratio_p99), "mean": r2(ratio_mean)},
        "dynamodb_requests_per_lookup": usage.total_requests(),
        "dynamodb_requests": usage.requests,
        "read_units_per_lookup": usage.read_units,
    });
    println!();
    println!("{summary}");
    Ok(())
}
