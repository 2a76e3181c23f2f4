//! `review-timing`: how long the month-end review of a brand of N
//! distributors (default 1,000) takes on the local stack, end to end
//! through the tier queue, beside N raw GetItems of a profile measured in
//! the same run: the ratio is what to compare between runs on these noisy
//! machines.
//!
//! The brand is the demo's rule set with N distributors registered (through
//! the store, as the admin API does), a tenth of them in Senior, which the
//! review (of next month, when nobody has sold anything yet) moves down.
//! The review is started as the schedule starts it and timed until the
//! queues are idle; its DynamoDB requests and units are counted by the
//! stack's interceptor.
//!
//! ```text
//! make bench-review                                        # 1,000 distributors
//! cargo run --release -p local-stack --bin review-timing -- --iterations 5000
//! ```
//!
//! (`--iterations` is the number of distributors.) Starts its own moto
//! server and kills it, by its pid, when done. Prints a summary, then one
//! line of JSON starting with `{"bench":"review-timing"`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::bench;
use local_stack::client::ApiClient;
use local_stack::stack::LocalStack;
use serde_json::json;
use tier_domain::tier::{Cause, Direction, TierChange};

const DEFAULT_DISTRIBUTORS: usize = 1000;
const IDLE: Duration = Duration::from_secs(1800);
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tier_runtime::tls::install_crypto_provider();
    // The functions' warnings and errors, on stderr.
    tier_runtime::logging::init_text("warn");
    let n = bench::iterations("review-timing", DEFAULT_DISTRIBUTORS)?;
    let build = bench::build();
    println!("review-timing: {n} distributors, {build} build");
    bench::with_stack(
        |opts| {
            // The emulator's transactions slow as its table grows, so a
            // tier change takes longer the more distributors there are:
            // past about 800, a batch of ten review pages outlasts the
            // template's 10 s on it, and would be retried until
            // dead-lettered. The bench gives the functions the time the
            // emulator needs (and the queues 6 times that, as the template
            // does); on DynamoDB a page takes milliseconds.
            opts.function_timeout = Some(FUNCTION_TIMEOUT);
            opts.visibility_timeout = Some(6 * FUNCTION_TIMEOUT.as_secs() as u32);
        },
        async |stack, _| measure(stack, n, build).await,
    )
    .await
}

async fn measure(stack: &LocalStack, n: usize, build: &str) -> anyhow::Result<()> {
    let mut api = ApiClient::for_stack(stack);
    local_stack::demo::load(&mut api).await?;
    // Seeded through the store, as the admin API registers (one
    // transaction each), not through the function: on the emulator a
    // transaction's time grows with the table, and past about 800
    // distributors a registration outlasts the function's timeout.
    let table = tier_store::Table::new(stack.clients.dynamodb.clone(), stack.table_name());
    let rules = table
        .current_rule_set()
        .await?
        .context("the demo publishes a rule set")?;
    let calendar = tier_domain::calendar::BrandCalendar::default();
    let entry = rules.rules.entry_tier().id.clone();
    let senior = tier_domain::ids::TierId::parse("senior")?;
    let loading = Instant::now();
    for i in 0..n {
        let id = tier_domain::ids::DistributorId::parse(&format!("d-bench-{i:05}"))?;
        let now = chrono::Utc::now();
        // A tenth start in Senior, which the review moves down.
        let change = TierChange {
            from: None,
            to: if i % 10 == 0 {
                senior.clone()
            } else {
                entry.clone()
            },
            direction: Direction::Up,
            rule_set_version: rules.version,
            reasons: Vec::new(),
            cause: Cause::Assignment,
            at: now,
        };
        let d = tier_store::distributors::Distributor {
            id: id.clone(),
            name: format!("Bench {i}"),
            upline: None,
            region: Some("Zhejiang".into()),
            tier: Some(change.to.clone()),
            tier_version: 1,
            created_at: now,
            upgraded_at: None,
            tier_locked: false,
            last_review: None,
            backfilled: None,
            metric_shards: Default::default(),
            ancestors: Vec::new(),
        };
        let _turn = stack.turns.lock().await;
        table
            .register_distributor(&d, Some(&change), &calendar)
            .await
            .with_context(|| format!("registering {id}"))?;
        if i % 100 == 99 {
            println!(
                "  {} registered, {:.1} s",
                i + 1,
                loading.elapsed().as_secs_f64()
            );
        }
    }
    stack.wait_idle(IDLE).await?;
    println!(
        "  {n} distributors registered in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    // The baseline: one raw GetItem of a profile per distributor, in turn.
    let started = Instant::now();
    for i in 0..n {
        let _turn = stack.turns.lock().await;
        stack
            .clients
            .dynamodb
            .get_item()
            .table_name(stack.table_name())
            .key("PK", AttributeValue::S(format!("DIST#d-bench-{i:05}")))
            .key("SK", AttributeValue::S("PROFILE".into()))
            .send()
            .await
            .context("GetItem")?;
    }
    let baseline = started.elapsed();

    let next_month = chrono::Utc::now() + chrono::Duration::days(40);
    stack.dynamo_usage.reset();
    let started = Instant::now();
    let run = {
        let _turn = stack.turns.lock().await;
        stack.tier_evaluation.start_review(next_month).await?
    };
    stack.wait_idle(IDLE).await?;
    let took = started.elapsed();
    let usage = stack.dynamo_usage.snapshot();
    let record = table
        .review(run.period)
        .await?
        .context("the review's record")?;
    let total = n + local_stack::demo::DISTRIBUTORS.len();
    ensure!(
        record.evaluated as usize >= total,
        "the review evaluated {} of {total}",
        record.evaluated
    );
    let per = |d: Duration| d.as_secs_f64() * 1e3 / total as f64;
    println!(
        "  review of {}: {} evaluated, {} moved, {} pages, in {:.2} s ({:.2} ms a distributor)",
        run.period,
        record.evaluated,
        record.changed,
        record.pages_done,
        took.as_secs_f64(),
        per(took)
    );
    println!(
        "  {n} raw GetItems: {:.2} s ({:.2} ms each); review / GetItems: {:.2}",
        baseline.as_secs_f64(),
        baseline.as_secs_f64() * 1e3 / n as f64,
        took.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "  DynamoDB: {} requests ({:.2} a distributor), {:.0} read units ({:.2} a distributor), {:.0} write units {:?}",
        usage.total_requests(),
        usage.total_requests() as f64 / total as f64,
        usage.read_units,
        usage.read_units / total as f64,
        usage.write_units,
        usage.requests
    );
    println!(
        "{}",
        json!({
            "bench": "review-timing",
            "build": build,
            "distributors": total,
            "evaluated": record.evaluated,
            "moved": record.changed,
            "review_s": bench::r2(took.as_secs_f64()),
            "review_ms_per_distributor": bench::r2(per(took)),
            "getitem_ms": bench::r2(baseline.as_secs_f64() * 1e3 / n as f64),
            "ratio": bench::r2(took.as_secs_f64() / baseline.as_secs_f64()),
            "requests": usage.total_requests(),
            "read_units": bench::r2(usage.read_units),
            "write_units": bench::r2(usage.write_units),
        })
    );
    Ok(())
}
