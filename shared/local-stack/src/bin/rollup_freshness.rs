//! `rollup-freshness`: how long an order takes to reach each ancestor's
//! all-level network metrics, end to end (webhook, tier queue, the
//! roll-up queue's pulls), and what one order costs at the bottom of a
//! six-level network beside one by a distributor directly under the top,
//! measured in the same run.
//!
//! The upline's metrics move in the order's own transaction: its lag is
//! the baseline, and each level above adds about one roll-up window
//! (`NetworkRollupSeconds`, 1 s locally) plus a pull. Figures are ratios
//! to that window and differences from the baseline: the emulator is
//! slow and the machines noisy.
//!
//! ```text
//! make bench-rollup                       # 10 orders
//! ITERATIONS=30 cargo run -p local-stack --bin rollup-freshness
//! ```
//!
//! Starts its own moto server and kills it, by its pid, when done. Prints
//! a table, then one line of JSON starting with `{"bench":"rollup-freshness"`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use local_stack::bench;
use local_stack::client::{ApiClient, docs};
use local_stack::stack::{DEFAULT_IDLE_TIMEOUT, LocalStack};
use serde_json::json;
use tier_domain::ids::DistributorId;
use tier_domain::money::Money;

const DEFAULT_ITERATIONS: usize = 10;
/// The top, then one distributor a level down to the seller, six below it.
const LEVELS: usize = 7;
const WINDOW_SECONDS: f64 = 1.0;

fn level(i: usize) -> String {
    format!("d-l{i}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::quiet_logs();
    let n = bench::iterations("rollup-freshness", DEFAULT_ITERATIONS)?;
    println!(
        "rollup-freshness: {n} orders at depth {}, {} build",
        LEVELS - 1,
        bench::build()
    );
    bench::with_stack(|_| {}, async |stack, _| measure(stack, n).await).await
}

async fn measure(stack: &LocalStack, n: usize) -> anyhow::Result<()> {
    let api = ApiClient::for_stack(stack);
    let r = api
        .put("rule-set", &local_stack::demo::clothing_rule_set())
        .await?;
    ensure!(r.status == 201, "rule set: {}", r.body);
    let r = api
        .put_csv("price-book", local_stack::demo::PRICE_BOOK_CSV)
        .await?;
    ensure!(r.status < 300, "price book: {}", r.body);
    let chain: Vec<String> = (0..LEVELS).map(level).collect();
    bench::register_chain(&api, None, &chain).await?;
    bench::connect_store(&api, "deep-shop", &level(LEVELS - 1)).await?;
    bench::connect_store(&api, "top-shop", &level(1)).await?;
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let ids: Vec<DistributorId> = (0..LEVELS - 1)
        .map(|i| DistributorId::parse(&level(i)).expect("valid id"))
        .collect();

    // Freshness: each ancestor polled until the order shows in its network.
    let mut lags: Vec<Vec<Duration>> = vec![Vec::new(); LEVELS - 1];
    for i in 0..n {
        let doc = docs::paid(
            &format!("f{i}"),
            &format!("F{i}"),
            &format!("b{i}"),
            &[("TEE-WHITE", 1, "100.00")],
            chrono::Utc::now(),
        );
        let r = api.webhook("tmall", "deep-shop", &doc).await?;
        ensure!(r.status == 202, "webhook: {}", r.body);
        let sent = Instant::now();
        let expect = Money::cents(10_000 * (i as i64 + 1));
        let mut pending: Vec<usize> = (0..LEVELS - 1).collect();
        while !pending.is_empty() {
            ensure!(
                sent.elapsed() < Duration::from_secs(60),
                "order {i} not at levels {pending:?} after 60 s"
            );
            let mut still = Vec::new();
            for l in pending {
                let (_, m) = table
                    .distributor_with_metrics(&ids[l])
                    .await?
                    .context("the ancestor exists")?;
                if m.downline_sales_all.lifetime == expect {
                    lags[l].push(sent.elapsed());
                } else {
                    still.push(l);
                }
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    }

    // Cost: one order at the bottom, then one directly under the top, each
    // counted to the end of its last pull, with nothing else running.
    let mut cost = Vec::new();
    for (store, label) in [("deep-shop", "depth 6"), ("top-shop", "depth 1")] {
        stack.dynamo_usage.reset();
        let doc = docs::paid(
            &format!("c-{store}"),
            &format!("C-{store}"),
            "bc",
            &[("TEE-WHITE", 1, "100.00")],
            chrono::Utc::now(),
        );
        ensure!(api.webhook("tmall", store, &doc).await?.status == 202);
        stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
        let usage = stack.dynamo_usage.snapshot();
        cost.push((label, usage));
    }

    println!("{}", bench::header());
    let mut levels_json = Vec::new();
    let baseline = bench::stats(&lags[LEVELS - 2]).p50;
    for l in (0..LEVELS - 1).rev() {
        let s = bench::stats(&lags[l]);
        let above = LEVELS - 2 - l;
        println!(
            "{}   ({} above the upline: +{:.2} windows)",
            bench::row(&level(l), &s),
            above,
            (s.p50 - baseline) / (WINDOW_SECONDS * 1e3)
        );
        levels_json.push(json!({
            "distributor": level(l), "levels_above_upline": above,
            "p50_ms": bench::r2(s.p50), "p90_ms": bench::r2(s.p90),
            "windows_after_upline": bench::r2((s.p50 - baseline) / (WINDOW_SECONDS * 1e3)),
        }));
    }
    for (label, u) in &cost {
        println!(
            "  one order at {label}: {} requests, {} write units, {} read units, {:?}",
            u.total_requests(),
            u.write_units,
            u.read_units,
            u.requests
        );
    }
    println!(
        "{}",
        json!({
            "bench": "rollup-freshness", "build": bench::build(), "orders": n,
            "window_seconds": WINDOW_SECONDS, "levels": levels_json,
            "cost": cost.iter().map(|(label, u)| json!({
                "order": label, "requests": u.total_requests(),
                "write_units": u.write_units, "read_units": u.read_units,
            })).collect::<Vec<_>>(),
        })
    );
    Ok(())
}
