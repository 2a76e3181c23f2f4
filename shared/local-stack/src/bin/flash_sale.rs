//! `flash-sale`: N buyers (default 10,000) for 100 units of one SKU.
//!
//! The stock allocation handler is given the N paid orders in batches of
//! 10, as the queue poller hands them over, against the emulator's table.
//! They do not go through an N-deep emulated queue, whose receives slow
//! with its depth. The buyers are of every tier, so the reserve plan is
//! exercised too: 40 of the 100 units are kept for Gold.
//!
//! Beside it, in the same run and on the same emulator, come N raw
//! conditional UpdateItems on one item (take a unit if one is left), and N
//! raw 2-item transactions (a record's put with that conditional update):
//! the write an allocation cannot avoid, alone and made exactly once with
//! its order's record. The ratios of the rates are the figures to compare
//! between runs on these noisy machines.
//!
//! It checks that exactly 100 units are allocated, that stock never goes
//! below zero, and that every buyer is answered, allocated or backordered,
//! with none dead-lettered.
//!
//! With `BUCKETS=K` the SKU's pool is spread over K buckets first (see
//! docs/stock.md, "Hot SKUs"), and the figures say how the writes spread:
//! the most any one item of the SKU took, against the orders.
//!
//! ```text
//! make bench-flash
//! cargo run -p local-stack --bin flash-sale -- --iterations 2000
//! BUCKETS=16 cargo run -p local-stack --bin flash-sale
//! ```
//!
//! It starts its own moto server and kills it, by its pid, when done. It
//! prints a summary, then one line of JSON starting with
//! `{"bench":"flash-sale"`.

use std::time::Instant;

use anyhow::ensure;
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::bench;
use local_stack::client::ApiClient;
use local_stack::stack::LocalStack;
use serde_json::json;
use tier_domain::OrderRef;
use tier_domain::ids::{
    BuyerId, DistributorId, EventId, LineId, OrderId, Platform, Sku, StoreId, TierId,
};
use tier_domain::money::Money;
use tier_domain::order::{OrderEvent, OrderEventKind, OrderLine};
use tier_messages::Message;

const DEFAULT_BUYERS: usize = 10_000;
const UNITS: u64 = 100;
const GOLD_RESERVE: u64 = 40;
/// SQS hands a Lambda up to 10 messages a batch.
const BATCH: usize = 10;
const SKU: &str = "JACKET-DOWN";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tier_runtime::tls::install_crypto_provider();
    tier_runtime::logging::init_text("warn");
    let n = bench::iterations("flash-sale", DEFAULT_BUYERS)?;
    // A quarter of the buyers are Gold: enough of them to take Gold's reserve.
    ensure!(
        n as u64 >= 4 * UNITS,
        "at least {} buyers: a quarter of them Gold, to take Gold's {GOLD_RESERVE}",
        4 * UNITS
    );
    let buckets: u8 = match std::env::var("BUCKETS") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| anyhow::anyhow!("BUCKETS={v} is not a number of buckets"))?,
        _ => 0,
    };
    let build = bench::build();
    println!("flash-sale: {n} buyers for {UNITS} units, {buckets} bucket(s), {build} build");
    bench::with_stack(
        |_| {},
        async |stack, endpoint| measure(stack, endpoint, n, buckets, build).await,
    )
    .await
}

/// Buyer `i`'s paid order: one unit, of a tier by turns (a quarter Gold).
fn paid(i: usize) -> Message {
    let tiers = [
        ("junior", 0),
        ("intermediate", 1),
        ("senior", 2),
        ("gold", 3),
    ];
    let (tier, priority) = tiers[i % tiers.len()];
    let price = Money::parse("1299.00").expect("a price");
    Message::OrderEventV1(OrderEvent {
        event_id: EventId::parse(&format!("flash-{i}")).expect("an id"),
        order: OrderRef {
            platform: Platform::parse("jd").expect("an id"),
            store: StoreId::parse("sh-outlet").expect("an id"),
            order_id: OrderId::parse(&format!("FLASH-{i}")).expect("an id"),
        },
        distributor: DistributorId::parse("d-shanghai").expect("an id"),
        occurred_at: chrono::Utc::now(),
        kind: OrderEventKind::Paid {
            buyer: BuyerId::parse(&format!("buyer-{i}")).expect("an id"),
            total: price,
            lines: vec![OrderLine {
                line_id: LineId::parse("1").expect("an id"),
                sku: Sku::parse(SKU).expect("a SKU"),
                quantity: 1,
                unit_price: price,
                amount: price,
                entitled_unit_price: None,
                floor_unit_price: None,
            }],
            urgent: false,
            region: None,
            tier: Some(TierId::parse(tier).expect("a tier")),
            priority,
        },
    })
}

async fn measure(
    stack: &LocalStack,
    endpoint: &str,
    n: usize,
    buckets: u8,
    build: &str,
) -> anyhow::Result<()> {
    let mut api = ApiClient::for_stack(stack);
    local_stack::demo::load(&mut api).await?;
    let r = api
        .put(&format!("skus/{SKU}/stock"), &json!({"on_hand": UNITS}))
        .await?;
    ensure!(r.status == 200, "setting the stock: {}", r.body);
    let r = api
        .put(
            &format!("skus/{SKU}/reserves"),
            &json!({"reserves": {"gold": GOLD_RESERVE}}),
        )
        .await?;
    ensure!(r.status == 200, "setting the reserve: {}", r.body);
    if buckets > 0 {
        let r = api
            .put(&format!("skus/{SKU}/buckets"), &json!({"buckets": buckets}))
            .await?;
        ensure!(r.status == 200, "spreading the stock: {}", r.body);
    }
    stack.wait_idle(std::time::Duration::from_secs(60)).await?;

    let handler = stack.stock_allocation()?;
    let messages: Vec<Message> = (0..n).map(paid).collect();

    // The emulator's TransactWriteItems copies its whole table (3 ms for an
    // UpdateItem at any size; 6 ms for a 2-item transaction on an empty
    // table, 340 ms at 10,000 items), so its cost grows with the table as
    // the sale writes it. The raw transaction the allocation cannot avoid,
    // a record's put and a conditional update of one item, is written a
    // batch at a time between the allocation's batches, on the same table
    // as it grows: what the allocation path adds to it.
    let table = stack.table_name();
    // Its own client: the stack's counts the allocation's requests alone.
    let raw_clients = tier_runtime::AwsClients::local(endpoint);
    let db = &raw_clients.dynamodb;
    let key = |k: &str| AttributeValue::S(k.to_owned());
    db.put_item()
        .table_name(&table)
        .item("PK", key("BENCH#flash"))
        .item("SK", key("TX"))
        .item("left", AttributeValue::N(UNITS.to_string()))
        .send()
        .await?;
    stack.dynamo_usage.reset();
    let mut allocation = std::time::Duration::ZERO;
    let mut raw_tx = std::time::Duration::ZERO;
    for (b, chunk) in messages.chunks(BATCH).enumerate() {
        let started = Instant::now();
        for i in 0..chunk.len() {
            raw_transaction(db, &table, b * BATCH + i).await?;
        }
        raw_tx += started.elapsed();
        let started = Instant::now();
        let _turn = stack.turns.lock().await;
        let response = handler
            .handle_batch(local_stack::poller::batch_of(chunk))
            .await;
        allocation += started.elapsed();
        ensure!(
            response.batch_item_failures.is_empty(),
            "batch {b}: {} message(s) handed back for retry",
            response.batch_item_failures.len()
        );
    }
    let usage = stack.dynamo_usage.snapshot();
    // Writes on each of the SKU's items: what one item's write rate is a
    // share of.
    let mut per_item = std::collections::BTreeMap::<&str, u64>::new();
    for w in usage
        .writes
        .iter()
        .filter(|w| w.pk.starts_with(&format!("SKU#{SKU}")) && !w.check_only)
    {
        *per_item.entry(w.pk.as_str()).or_default() += 1;
    }
    let (hottest, hottest_writes) = per_item
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, n)| ((*k).to_owned(), *n))
        .unwrap_or_default();

    let s = api.get(&format!("skus/{SKU}/stock")).await?.body;
    let part = |f: &str| s[f].as_u64().unwrap_or(u64::MAX);
    ensure!(
        part("allocated") == UNITS && part("pool") == 0 && part("on_hand") == UNITS,
        "exactly {UNITS} allocated, none left: {s}"
    );
    ensure!(
        part("backordered") == n as u64 - UNITS,
        "every other buyer backordered: {s}"
    );
    ensure!(
        s["reserves"] == json!({}),
        "Gold's reserve went to Gold: {s}"
    );
    let dead = bench_dead_letters(stack).await?;
    ensure!(dead == 0, "{dead} message(s) dead-lettered");

    // The raw write alone, on one item of the same table.
    db.put_item()
        .table_name(&table)
        .item("PK", key("BENCH#flash"))
        .item("SK", key("RAW"))
        .item("left", AttributeValue::N(UNITS.to_string()))
        .send()
        .await?;
    let started = Instant::now();
    let mut taken = 0u64;
    for _ in 0..n {
        let out = db
            .update_item()
            .table_name(&table)
            .key("PK", key("BENCH#flash"))
            .key("SK", key("RAW"))
            .update_expression("SET #l = #l - :one")
            .condition_expression("#l >= :one")
            .expression_attribute_names("#l", "left")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        match out {
            Ok(_) => taken += 1,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let raw = started.elapsed();
    ensure!(taken == UNITS, "the raw writes took {taken}");

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    let (alloc_rate, raw_rate, tx_rate) = (rate(allocation), rate(raw), rate(raw_tx));
    let requests = usage.total_requests() as f64 / n as f64;
    println!(
        "  allocation: {n} orders in {:.1} s, {alloc_rate:.0}/s; {requests:.2} requests, {:.2} write units, {:.2} read units an order ({:?})",
        allocation.as_secs_f64(),
        usage.write_units / n as f64,
        usage.read_units / n as f64,
        usage.requests
    );
    println!(
        "  raw conditional UpdateItem: {n} in {:.1} s, {raw_rate:.0}/s",
        raw.as_secs_f64()
    );
    println!(
        "  raw 2-item conditional TransactWriteItems: {n} in {:.1} s, {tx_rate:.0}/s",
        raw_tx.as_secs_f64()
    );
    println!(
        "  ratio: {:.2} of the raw UpdateItem rate, {:.2} of the raw transaction's; {UNITS} allocated ({GOLD_RESERVE} from Gold's reserve), {} backordered",
        alloc_rate / raw_rate,
        alloc_rate / tx_rate,
        n as u64 - UNITS
    );
    println!(
        "  hottest item of the SKU: {hottest}, written by {hottest_writes} of {n} orders ({:.3} an order); {} item(s) written",
        hottest_writes as f64 / n as f64,
        per_item.len()
    );
    println!(
        "{}",
        json!({
            "bench": "flash-sale", "build": build, "buyers": n, "units": UNITS, "buckets": buckets,
            "hottest_item": hottest, "hottest_item_writes": hottest_writes,
            "allocation_per_s": alloc_rate, "raw_per_s": raw_rate, "ratio": alloc_rate / raw_rate,
            "raw_transaction_per_s": tx_rate, "ratio_to_transaction": alloc_rate / tx_rate,
            "requests_per_order": requests,
            "write_units_per_order": usage.write_units / n as f64,
            "read_units_per_order": usage.read_units / n as f64,
            "requests": usage.requests,
        })
    );
    Ok(())
}

/// The raw 2-item transaction: record `i`'s put and a conditional
/// decrement of one item (refused once it is out).
async fn raw_transaction(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    i: usize,
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
    let key = |k: &str| AttributeValue::S(k.to_owned());
    let put = Put::builder()
        .table_name(table)
        .item("PK", key(&format!("BENCH#tx#{i}")))
        .item("SK", key("RECORD"))
        .item("record", key(&"x".repeat(400)))
        .build()?;
    let update = Update::builder()
        .table_name(table)
        .key("PK", key("BENCH#flash"))
        .key("SK", key("TX"))
        .update_expression("ADD #l :minus")
        .condition_expression("#l >= :one")
        .expression_attribute_names("#l", "left")
        .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()?;
    let out = db
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .transact_items(TransactWriteItem::builder().update(update).build())
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_transaction_canceled_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Messages on the stock queue's dead-letter queue.
async fn bench_dead_letters(stack: &LocalStack) -> anyhow::Result<i64> {
    let out = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(stack.queue_url("StockEventsDLQ"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
