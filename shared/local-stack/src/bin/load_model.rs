//! `load-model`: what a brand's peak does to DynamoDB, from real write sets
//! (see [`local_stack::load_model`]).
//!
//! First it records: one order of every shape (sellers 1 to 6 levels under
//! the top, 1 to 3 lines of SKUs of different popularity) goes through the
//! real handlers against the emulator, alone, to the end of its last pull,
//! and the interceptor records which items each request wrote and whether
//! in a transaction. Then it models: a synthetic brand of 100,000
//! distributors 6 levels deep under one root, sellers and SKUs drawn from
//! power laws, at 500, 5,000 and 20,000 orders a second, for the network
//! roll-up ("now") and for the build before it ("before"), from the same
//! recordings in the same run.
//!
//! ```text
//! make bench-load
//! cargo run -p local-stack --bin load-model
//! ```
//!
//! Starts its own moto server and kills it, by its pid, when done. Prints
//! a table, then one line of JSON starting with `{"bench":"load-model"`.

use std::collections::BTreeMap;

use anyhow::ensure;
use local_stack::bench;
use local_stack::client::{ApiClient, docs};
use local_stack::load_model::{self, Brand, Design, Load, Recorded, Rng, Template};
use local_stack::stack::{DEFAULT_IDLE_TIMEOUT, LocalStack};
use serde_json::json;

const SKUS: [&str; 3] = ["TEE-WHITE", "HOODIE-GREY", "JACKET-DOWN"];
/// Their base prices: above every floor, so no order is price disorder
/// (which only the few orders below a floor write).
const PRICES: [&str; 3] = ["199.00", "459.00", "1299.00"];
const TOP: &str = "d-hangzhou";
/// Distributors at levels 1 to 6: 100,000 with the root.
const LEVEL_SIZES: [usize; 6] = [20, 200, 1_800, 8_000, 25_000, 64_979];
const WINDOW_SECONDS: f64 = 2.0;
/// The 20 most popular SKUs (of 1,000) spread over 32 buckets each.
const SPREAD: (usize, u32) = (20, 32);
/// The 50 distributors (of 100,000) whose metrics orders write most, as
/// sellers or receivers, spread over 16 shards each.
const SPREAD_SELLERS: (usize, u8) = (50, 16);
const TRANSACTION_SECONDS: f64 = 0.025;

fn level(i: usize) -> String {
    format!("lm-{i}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::quiet_logs();
    println!("load-model: recording, {} build", bench::build());
    let mut templates = BTreeMap::new();
    bench::with_stack(
        |_| {},
        async |stack, _| {
            templates = record(stack).await?;
            Ok(())
        },
    )
    .await?;
    report(&templates);
    Ok(())
}

/// One order of each (depth, lines), alone, abstracted into a template.
async fn record(stack: &LocalStack) -> anyhow::Result<BTreeMap<(u8, usize), Template>> {
    let mut api = ApiClient::for_stack(stack);
    local_stack::demo::load(&mut api).await?;
    // Level-2 commission, so the level-2 receiver is written as it is at
    // brands that pay it.
    let mut rules = local_stack::demo::clothing_rule_set();
    for t in rules["tiers"].as_array_mut().into_iter().flatten() {
        t["benefits"]["commission_l2_pct"] = json!("2");
    }
    ensure!(api.put("rule-set", &rules).await?.status == 201);
    let chain: Vec<String> = (1..=6).map(level).collect();
    bench::register_chain(&api, Some(TOP), &chain).await?;
    for (i, id) in chain.iter().enumerate() {
        bench::connect_store(&api, &format!("lm-shop-{}", i + 1), id).await?;
    }
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let mut templates = BTreeMap::new();
    for depth in 1..=6usize {
        let mut ancestors: Vec<String> = (1..depth).rev().map(level).collect();
        ancestors.push(TOP.to_owned());
        for lines in 1..=3usize {
            let (event, order, buyer) = (
                format!("lme-{depth}-{lines}"),
                format!("LMO-{depth}-{lines}"),
                format!("lmb-{depth}-{lines}"),
            );
            let items: Vec<(&str, u32, &str)> = SKUS[..lines]
                .iter()
                .zip(PRICES)
                .map(|(s, p)| (*s, 1, p))
                .collect();
            stack.dynamo_usage.reset();
            let doc = docs::paid(&event, &order, &buyer, &items, chrono::Utc::now());
            let r = api
                .webhook("tmall", &format!("lm-shop-{depth}"), &doc)
                .await?;
            ensure!(r.status == 202, "webhook: {}", r.body);
            stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
            let usage = stack.dynamo_usage.snapshot();
            let template = load_model::abstract_order(
                &usage.writes,
                &Recorded {
                    seller: &level(depth),
                    ancestors: &ancestors,
                    skus: &SKUS[..lines],
                    unique: &[event, order, buyer],
                    rollup_source: "RollupQueue",
                },
            );
            let units: f64 = template.order.iter().map(|w| w.units).sum();
            let pulled: f64 = template.pulls.iter().map(|w| w.units).sum();
            println!(
                "  recorded depth {depth}, {lines} line(s): {units} units by the order, {pulled} by {} pull(s)",
                template.pull_count
            );
            templates.insert((depth as u8, lines), template);
        }
    }
    Ok(templates)
}

fn report(templates: &BTreeMap<(u8, usize), Template>) {
    let mut rng = Rng::new(0x5EED);
    let brand = Brand::generate(&LEVEL_SIZES, &mut rng);
    println!(
        "synthetic brand: {} distributors, {} levels under one root; window {WINDOW_SECONDS} s, transactions {TRANSACTION_SECONDS} s in flight",
        brand.len(),
        LEVEL_SIZES.len()
    );
    let mut rows = Vec::new();
    for (rate, seconds) in [(500.0, 20.0), (5_000.0, 10.0), (20_000.0, 5.0)] {
        for (design, spread, spread_sellers, level2) in [
            (Design::Before, None, None, true),
            (Design::Now, None, None, true),
            (Design::Now, Some(SPREAD), None, true),
            (Design::Now, Some(SPREAD), Some(SPREAD_SELLERS), true),
            (Design::Now, Some(SPREAD), Some(SPREAD_SELLERS), false),
        ] {
            let f = load_model::model(
                &Load {
                    brand: &brand,
                    templates,
                    orders_per_second: rate,
                    seconds,
                    window_seconds: WINDOW_SECONDS,
                    skus: 1_000,
                    transaction_seconds: TRANSACTION_SECONDS,
                    seed: 42,
                    spread,
                    spread_sellers,
                    level2,
                },
                design,
            );
            let name = match (design, spread, spread_sellers, level2) {
                (Design::Before, ..) => "before",
                (Design::Now, None, ..) => "now",
                (Design::Now, Some(_), None, _) => "now, hot SKUs spread",
                (Design::Now, Some(_), Some(_), true) => "now, hot SKUs and distributors spread",
                (Design::Now, Some(_), Some(_), false) => {
                    "the same, at a brand without level-2 commission"
                }
            };
            println!("\n{rate} orders/s, {name}:");
            for (label, (wcu, what), note) in [
                ("hottest item", &f.hottest_item, ""),
                ("hottest non-stock", &f.hottest_non_stock, ""),
                ("hottest stock item", &f.hottest_stock, ""),
                ("hottest partition", &f.hottest_partition, ""),
                (
                    "hottest upline's",
                    &f.hottest_network,
                    ": written for orders below it",
                ),
            ] {
                println!("  {label:<18} {wcu:>9.0} WCU/s ({what}{note})");
            }
            let by_depth: Vec<String> = f
                .units_by_depth
                .iter()
                .map(|(d, u)| format!("{d}: {u:.2}"))
                .collect();
            println!(
                "  units an order by depth  {}   (orders {:?})",
                by_depth.join("  "),
                f.orders_by_depth
            );
            let one_line: Vec<String> = f
                .units_by_depth_one_line
                .iter()
                .map(|(d, u)| format!("{d}: {u:.2}"))
                .collect();
            println!("  units a 1-line order     {}", one_line.join("  "));
            println!(
                "  chance a transaction meets another on an item: {:.4} (stock left out: {:.4})",
                f.conflict_chance, f.conflict_chance_non_stock
            );
            rows.push(json!({
                "orders_per_second": rate, "design": name,
                "hottest_item_wcu": bench::r2(f.hottest_item.0), "hottest_item": f.hottest_item.1,
                "hottest_non_stock_wcu": bench::r2(f.hottest_non_stock.0),
                "hottest_non_stock": f.hottest_non_stock.1,
                "hottest_stock_wcu": bench::r2(f.hottest_stock.0),
                "hottest_partition_wcu": bench::r2(f.hottest_partition.0),
                "hottest_upline_wcu": bench::r2(f.hottest_network.0),
                "units_by_depth": f.units_by_depth.iter()
                    .map(|(d, u)| (d.to_string(), json!(bench::r2(*u))))
                    .collect::<serde_json::Map<_, _>>(),
                "units_by_depth_one_line": f.units_by_depth_one_line.iter()
                    .map(|(d, u)| (d.to_string(), json!(bench::r2(*u))))
                    .collect::<serde_json::Map<_, _>>(),
                "conflict_chance": f.conflict_chance,
                "conflict_chance_non_stock": f.conflict_chance_non_stock,
            }));
        }
    }
    println!(
        "{}",
        json!({"bench": "load-model", "build": bench::build(), "window_seconds": WINDOW_SECONDS,
               "distributors": brand.len(), "rows": rows})
    );
}
