//! The seed's clothing brand, end to end: monthly sales of 50,000 CNY make a
//! distributor Intermediate, 100,000 make it Senior, and 5 valid downline
//! users move it up one tier. All data goes in through the admin API and
//! every order through signed webhooks.

use std::fmt::Write as _;

use anyhow::{Context, ensure};
use chrono::Utc;
use serde_json::{Value, json};

use crate::client::{ApiClient, docs};
use crate::stack::{DEFAULT_IDLE_TIMEOUT, LocalStack};

/// The brand's rule set, as an operator would publish it.
pub fn clothing_rule_set() -> Value {
    json!({
      "tiers": [
        {"id": "junior", "name": "初级 Junior", "rank": 0,
         "benefits": {"discount_pct": "0", "commission_pct": "5", "priority": 0}},
        {"id": "intermediate", "name": "中级 Intermediate", "rank": 1,
         "benefits": {"discount_pct": "5", "commission_pct": "8", "priority": 1},
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "50000"}},
        {"id": "senior", "name": "高级 Senior", "rank": 2,
         "benefits": {"discount_pct": "10", "commission_pct": "10", "priority": 2},
         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "100000"},
         "permissions": ["see_promotions"]},
        {"id": "gold", "name": "金牌 Gold", "rank": 3,
         "benefits": {"discount_pct": "15", "commission_pct": "12", "priority": 3},
         "upgrade": {"all": [{"metric": "sales_amount", "window": "month", "gte": "300000"},
                             {"metric": "valid_downline_users", "gte": "20"}]},
         "permissions": ["see_promotions", "see_stock", "place_pre_orders", "request_withdrawals"]}
      ],
      "step_ups": [{"id": "five-valid-downline-users", "when": {"metric": "valid_downline_users", "gte": "5"}}]
    })
}

pub struct DemoDistributor {
    pub id: &'static str,
    pub name: &'static str,
    pub upline: Option<&'static str>,
    pub region: &'static str,
    /// The one store it sells through: (platform, store).
    pub store: (&'static str, &'static str),
}

pub const DISTRIBUTORS: &[DemoDistributor] = &[
    DemoDistributor {
        id: "d-hangzhou",
        name: "杭州 Hangzhou Studio",
        upline: None,
        region: "Zhejiang",
        store: ("tmall", "hz-flagship"),
    },
    DemoDistributor {
        id: "d-shanghai",
        name: "上海 Shanghai Outlet",
        upline: Some("d-hangzhou"),
        region: "Shanghai",
        store: ("jd", "sh-outlet"),
    },
    DemoDistributor {
        id: "d-suzhou",
        name: "苏州 Suzhou Live",
        upline: Some("d-hangzhou"),
        region: "Jiangsu",
        store: ("douyin", "sz-live"),
    },
];

/// The price book, as a brand's ERP would export it.
pub const PRICE_BOOK_CSV: &str = "\
type,sku,tier,distributor,min_qty,price,discount_pct
base,TEE-WHITE,,,,199.00,
floor,TEE-WHITE,,,,129.00,
tier_price,TEE-WHITE,gold,,,150.00,
volume_break,TEE-WHITE,,,100,,3
base,HOODIE-GREY,,,,459.00,
floor,HOODIE-GREY,,,,299.00,
base,JACKET-DOWN,,,,1299.00,
floor,JACKET-DOWN,,,,999.00,
tier_price,JACKET-DOWN,senior,,,1099.00,
";

/// The same book in JSON, with a winter promotion for Senior and Gold open
/// around `now` (promotions are published in JSON).
pub fn price_book_with_promotion(now: chrono::DateTime<Utc>) -> Value {
    let mut rows = Vec::new();
    for line in PRICE_BOOK_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let mut row = serde_json::Map::new();
        for (k, v) in [
            "type",
            "sku",
            "tier",
            "distributor",
            "min_qty",
            "price",
            "discount_pct",
        ]
        .iter()
        .zip(f)
        {
            if !v.is_empty() {
                row.insert((*k).into(), json!(v));
            }
        }
        rows.push(Value::Object(row));
    }
    json!({
        "rows": rows,
        "promotions": [{"id": "winter-jackets", "name": "冬季羽绒 Winter jackets", "skus": ["JACKET-DOWN"], "tiers": ["senior", "gold"],
                        "starts_at": now - chrono::Duration::days(1), "ends_at": now + chrono::Duration::days(7),
                        "price": "1049.00", "subsidy_pct": "2"}]
    })
}

/// (SKU, stock on hand)
pub const STOCK: &[(&str, u64)] = &[
    ("TEE-WHITE", 5000),
    ("HOODIE-GREY", 2000),
    ("JACKET-DOWN", 40),
];

/// Loads the brand: rule set, distributors with uplines, stores, price
/// book, stock, and an API key for the ERP integration, which `api` then
/// uses for price lookups.
pub async fn load(api: &mut ApiClient) -> anyhow::Result<()> {
    let r = api.put("rule-set", &clothing_rule_set()).await?;
    ensure!(
        r.status == 201,
        "publishing the rule set: {} {}",
        r.status,
        r.body
    );
    for d in DISTRIBUTORS {
        let r = api
            .put(
                &format!("distributors/{}", d.id),
                &json!({"name": d.name, "upline": d.upline, "region": d.region}),
            )
            .await?;
        ensure!(
            r.status == 201,
            "registering {}: {} {}",
            d.id,
            r.status,
            r.body
        );
        let (platform, store) = d.store;
        let r = api
            .put(
                &format!("stores/{platform}/{store}"),
                &json!({"distributor": d.id}),
            )
            .await?;
        ensure!(
            r.status == 200,
            "registering store {store}: {} {}",
            r.status,
            r.body
        );
    }
    let r = api.put_csv("price-book", PRICE_BOOK_CSV).await?;
    ensure!(
        r.status == 201,
        "publishing the CSV price book: {} {}",
        r.status,
        r.body
    );
    let r = api
        .put("price-book", &price_book_with_promotion(Utc::now()))
        .await?;
    ensure!(
        r.status == 201,
        "publishing the price book with its promotion: {} {}",
        r.status,
        r.body
    );
    for (sku, available) in STOCK {
        let r = api
            .put(
                &format!("skus/{sku}/stock"),
                &json!({"available": available}),
            )
            .await?;
        ensure!(r.status == 200, "stocking {sku}: {} {}", r.status, r.body);
    }
    api.api_key = Some(
        api.create_api_key("ERP integration", json!({"type": "erp"}))
            .await?,
    );
    Ok(())
}

fn price_table(reply: &Value) -> String {
    let mut out = String::new();
    let tier = reply["tier"]["name"].as_str().unwrap_or("?");
    for p in reply["prices"].as_array().into_iter().flatten() {
        let beaten: Vec<String> = p["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .skip(1)
            .map(|c| {
                format!(
                    "{} {}",
                    c["rule"].as_str().unwrap_or(""),
                    c["unit_price"].as_str().unwrap_or("")
                )
            })
            .collect();
        let promo = p
            .get("promotion")
            .and_then(|x| x.get("name"))
            .and_then(Value::as_str)
            .map(|n| {
                format!(
                    " «{n}», subsidy {}%",
                    p["promotion"]["subsidy_pct"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:<12} {:>9} CNY  by {}{promo}  (tier {tier}; beat: {})",
            p["sku"].as_str().unwrap_or(""),
            p["unit_price"].as_str().unwrap_or(""),
            p["rule"].as_str().unwrap_or(""),
            if beaten.is_empty() {
                "-".into()
            } else {
                beaten.join(", ")
            },
        );
    }
    out
}

/// One line per tier change, with the rule and values that decided it.
pub fn describe_history(id: &str, history: &Value) -> String {
    let mut entries: Vec<&Value> = history.as_array().into_iter().flatten().collect();
    entries.reverse(); // oldest first
    let mut out = String::new();
    for h in entries {
        let from = h["from"].as_str().unwrap_or("(none)");
        let to = h["to"].as_str().unwrap_or("?");
        let cause = match h["cause"]["type"].as_str() {
            Some("order_event") => format!(
                "order event {}",
                h["cause"]["event_id"].as_str().unwrap_or("")
            ),
            Some("review") => format!("review of {}", h["cause"]["month"].as_str().unwrap_or("")),
            Some(other) => other.to_owned(),
            None => "?".into(),
        };
        let _ = writeln!(
            out,
            "  {id}: {from} → {to} ({}) caused by {cause}",
            h["direction"].as_str().unwrap_or("")
        );
        for r in h["reasons"].as_array().into_iter().flatten() {
            let values: Vec<String> = r["observed"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    format!(
                        "{}({}) = {} {} {}",
                        o["metric"].as_str().unwrap_or(""),
                        o["window"].as_str().unwrap_or(""),
                        o["value"].as_str().unwrap_or(""),
                        if o["met"].as_bool() == Some(true) {
                            "≥"
                        } else {
                            "<"
                        },
                        o["threshold"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "      {} {}: {}",
                if r["met"].as_bool() == Some(true) {
                    "met"
                } else {
                    "not met"
                },
                r["rule"].as_str().unwrap_or(""),
                values.join(", ")
            );
        }
    }
    out
}

/// Drives the scenario and prints what happened. Returns the ERP API key it
/// created, for the reader to try the API with.
pub async fn run(stack: &LocalStack) -> anyhow::Result<String> {
    let mut api = ApiClient::for_stack(stack);
    println!("Loading the clothing brand through the admin API ...");
    load(&mut api).await?;
    let skus = ["TEE-WHITE", "HOODIE-GREY", "JACKET-DOWN"];
    let before = api.prices("d-shanghai", &skus).await?;
    println!(
        "\nPrices for d-shanghai before any order:\n{}",
        price_table(&before.body)
    );

    let now = Utc::now();
    let mut sent = 0;
    let mut send = |platform: &'static str, store: &'static str, doc: Value| {
        sent += 1;
        let api = api.clone();
        async move {
            let r = api.webhook(platform, store, &doc).await?;
            println!(
                "  webhook {:<22} {:<16} → {} {}",
                doc["event_id"].as_str().unwrap_or(""),
                doc["type"].as_str().unwrap_or(""),
                r.status,
                r.body["status"].as_str().unwrap_or(r.code())
            );
            anyhow::Ok(r)
        }
    };
    // The buyers' provinces, as a platform's shipping address gives them.
    let region = |mut doc: Value, code: &str| {
        doc["region"] = json!(code);
        doc
    };
    println!("Driving signed webhooks through order intake:");
    // d-shanghai sells 40 down jackets (51,960 CNY this month): Intermediate.
    send(
        "jd",
        "sh-outlet",
        region(
            docs::paid(
                "jd-evt-1",
                "JD-1001",
                "buyer-001",
                &[("JACKET-DOWN", 30, "1299.00")],
                now,
            ),
            "CN-SH",
        ),
    )
    .await?;
    send(
        "jd",
        "sh-outlet",
        region(
            docs::paid(
                "jd-evt-2",
                "JD-1002",
                "buyer-002",
                &[("JACKET-DOWN", 10, "1299.00")],
                now,
            ),
            "CN-SH",
        ),
    )
    .await?;
    // The platform retries a webhook: nothing changes the second time.
    send(
        "jd",
        "sh-outlet",
        region(
            docs::paid(
                "jd-evt-2",
                "JD-1002",
                "buyer-002",
                &[("JACKET-DOWN", 10, "1299.00")],
                now,
            ),
            "CN-SH",
        ),
    )
    .await?;
    // Jackets are sold out now: this one is backordered, not dropped.
    send(
        "jd",
        "sh-outlet",
        region(
            docs::paid(
                "jd-evt-3",
                "JD-1003",
                "buyer-003",
                &[("JACKET-DOWN", 2, "1299.00")],
                now,
            ),
            "CN-SH",
        ),
    )
    .await?;
    // 110 hoodies (50,490 CNY): 105,048 this month with the backordered order, Senior.
    send(
        "jd",
        "sh-outlet",
        region(
            docs::paid(
                "jd-evt-4",
                "JD-1004",
                "buyer-004",
                &[("HOODIE-GREY", 110, "459.00")],
                now,
            ),
            "CN-SH",
        ),
    )
    .await?;
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let mid = api.prices("d-shanghai", &skus).await?;
    println!(
        "\nPrices for d-shanghai after its sales passed 100,000 CNY:\n{}",
        price_table(&mid.body)
    );

    // The hoodie order is refunded in full, goods returned: back to Intermediate.
    send(
        "jd",
        "sh-outlet",
        docs::refunded(
            "jd-evt-5",
            "JD-1004",
            "RF-1004",
            "50490.00",
            &[("1", 110)],
            now,
        ),
    )
    .await?;
    // The backordered order is cancelled.
    send(
        "jd",
        "sh-outlet",
        docs::cancelled("jd-evt-6", "JD-1003", now),
    )
    .await?;
    // d-suzhou: five different buyers, one T-shirt each: five valid downline users, up one tier.
    for i in 1..=5 {
        let (evt, order, buyer) = (format!("dy-evt-{i}"), format!("DY-{i}"), format!("fan-{i}"));
        send(
            "douyin",
            "sz-live",
            region(
                docs::paid(&evt, &order, &buyer, &[("TEE-WHITE", 1, "199.00")], now),
                "CN-JS",
            ),
        )
        .await?;
    }
    // A live-stream flash deal resells two hoodies at 259.00, under their 299.00 floor: 乱价.
    send(
        "douyin",
        "sz-live",
        region(
            docs::paid(
                "dy-evt-7",
                "DY-7",
                "fan-7",
                &[("HOODIE-GREY", 2, "259.00")],
                now,
            ),
            "CN-ZJ",
        ),
    )
    .await?;
    // A sixth fan signs up through the store without ordering yet: a downline user, not a valid one.
    send(
        "douyin",
        "sz-live",
        docs::registered("dy-signup-6", "fan-6", now),
    )
    .await?;
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    println!("\n{sent} webhooks delivered; queues drained.");

    println!("\nTier changes, with the rule and metric values that decided each:");
    for d in DISTRIBUTORS {
        let r = api.get(&format!("distributors/{}", d.id)).await?;
        print!("{}", describe_history(d.id, &r.body["tier_history"]));
    }
    let after = api.prices("d-shanghai", &skus).await?;
    println!("\nPrices for d-shanghai now:\n{}", price_table(&after.body));
    let suzhou = api.prices("d-suzhou", &skus).await?;
    println!("Prices for d-suzhou now:\n{}", price_table(&suzhou.body));

    let suzhou = api.get("distributors/d-suzhou").await?;
    println!(
        "d-suzhou: {} downline users, {} of them valid (a paid order not refunded)",
        suzhou.body["metrics"]["downline_users"], suzhou.body["metrics"]["valid_downline_users"]
    );
    let hangzhou = api.get("distributors/d-hangzhou").await?;
    let m = &hangzhou.body["metrics"];
    println!(
        "d-hangzhou, upline of both: downline sales {} CNY (level 1), {} downline distributors, commission earned {} CNY\n",
        m["downline_sales"]["lifetime"].as_str().unwrap_or("0"),
        m["downline_distributors"],
        m["cumulative_commission"].as_str().unwrap_or("0.00"),
    );

    // What if the thresholds were halved (Intermediate at 25,000 CNY a
    // month, Senior at 50,000)? Evaluated against everyone through the
    // tier queue; only the what-if's tallies are written.
    let mut draft = clothing_rule_set();
    draft["tiers"][1]["upgrade"]["gte"] = json!("25000");
    draft["tiers"][2]["upgrade"]["gte"] = json!("50000");
    let r = api.put("what-ifs/halved-thresholds", &draft).await?;
    ensure!(
        (200..300).contains(&r.status),
        "what-if refused: {}",
        r.body
    );
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let w = api.get("what-ifs/halved-thresholds").await?;
    println!(
        "What-if the monthly thresholds were halved ({}, {} evaluated, nothing written):",
        w.body["status"].as_str().unwrap_or(""),
        w.body["evaluated"]
    );
    for m in w.body["moves"].as_array().into_iter().flatten() {
        println!(
            "    {} → {}: {} ({})",
            m["from"].as_str().unwrap_or(""),
            m["to"].as_str().unwrap_or(""),
            m["count"],
            m["distributors"]
        );
    }
    println!();

    // A hundred hoodies kept for Gold: the pool gives the rest to any tier.
    let r = api
        .put(
            "skus/HOODIE-GREY/reserves",
            &json!({"reserves": {"gold": 100}}),
        )
        .await?;
    ensure!(
        r.status == 200,
        "reserving for Gold: {} {}",
        r.status,
        r.body
    );
    println!("Stock by tier (after keeping 100 hoodies for Gold):");
    for sku in skus {
        let s = api.get(&format!("skus/{sku}/stock")).await?.body;
        println!(
            "    {sku:<12} on hand {:>5}  pool {:>5}  reserves {}  allocated {}  backordered {}",
            s["on_hand"], s["pool"], s["reserves"], s["allocated"], s["backordered"]
        );
    }
    let r = api
        .get("orders/jd/sh-outlet/JD-1004/reservations")
        .await
        .context("reading reservations")?;
    println!(
        "    order JD-1004 (hoodies, refunded and returned): {}",
        r.body["lines"]
    );
    let r = api
        .get("orders/jd/sh-outlet/JD-1003/reservations")
        .await
        .context("reading reservations")?;
    println!(
        "    order JD-1003 (backordered, then cancelled): {}",
        r.body["lines"]
    );

    // The warehouse ships from the queue: highest priority first, then oldest.
    let mut wms = api.clone();
    wms.api_key = Some(
        api.create_api_key("warehouse", json!({"type": "fulfilment"}))
            .await?,
    );
    let queue = wms
        .read("/v1/fulfilment/orders?status=ready&limit=3")
        .await?;
    ensure!(queue.status == 200, "the shipping queue: {}", queue.body);
    println!("\nThe shipping queue, first three (GET /v1/fulfilment/orders?status=ready):");
    for o in queue.body["orders"].as_array().into_iter().flatten() {
        println!(
            "    {}/{}/{}  priority {}  tier {}  paid {}",
            o["order"]["platform"].as_str().unwrap_or(""),
            o["order"]["store"].as_str().unwrap_or(""),
            o["order"]["order_id"].as_str().unwrap_or(""),
            o["priority"],
            o["tier"].as_str().unwrap_or("-"),
            o["paid_at"].as_str().unwrap_or("")
        );
    }

    println!("\nThis month's sales by the buyers' region (GET /v1/admin/analytics/regions):");
    let r = api.get("analytics/regions").await?;
    for row in r.body["regions"].as_array().into_iter().flatten() {
        println!(
            "    {:<6} {:>10} CNY in {} order(s)",
            row["region"].as_str().unwrap_or("-"),
            row["current"]["sales"].as_str().unwrap_or(""),
            row["current"]["orders"]
        );
    }
    println!("Price disorder (GET /v1/admin/analytics/price-disorder):");
    let r = api.get("analytics/price-disorder").await?;
    for e in r.body["evidence"].as_array().into_iter().flatten() {
        println!(
            "    {} sold {} × {} at {} against a floor of {} ({}% below) in {}",
            e["distributor"].as_str().unwrap_or(""),
            e["quantity"],
            e["sku"].as_str().unwrap_or(""),
            e["resale_unit_price"].as_str().unwrap_or(""),
            e["floor_price"].as_str().unwrap_or(""),
            e["gap_pct"].as_str().unwrap_or(""),
            e["order"].as_str().unwrap_or("")
        );
    }

    // Last, so that nothing above moves: reserves planned rather than set
    // by hand. d-suzhou's (Intermediate) hoodie orders of the last three
    // days, forecast by
    // exponential smoothing; the rule set gains a `reserves` section, and
    // publishing it plans every SKU.
    println!(
        "\nReserve plans (the rule set's reserves section, GET /v1/admin/skus/HOODIE-GREY/stock):"
    );
    for days in 1..=3 {
        let doc = docs::paid(
            &format!("dy-week-{days}"),
            &format!("DY-W{days}"),
            "dy-b9",
            &[("HOODIE-GREY", 4, "459.00")],
            now - chrono::Duration::days(days),
        );
        let r = api.webhook("douyin", "sz-live", &doc).await?;
        ensure!(
            r.status == 202,
            "a past hoodie order: {} {}",
            r.status,
            r.body
        );
    }
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let mut rules = clothing_rule_set();
    rules["reserves"] = json!({
        "history_days": 7, "horizon_days": 7,
        "forecast": {"method": "ses", "alpha": "0.5"},
        "tiers": ["gold", "senior", "intermediate"]
    });
    let r = api.put("rule-set", &rules).await?;
    ensure!(
        r.status == 201,
        "publishing the reserves section: {} {}",
        r.status,
        r.body
    );
    stack.wait_idle(DEFAULT_IDLE_TIMEOUT).await?;
    let s = api.get("skus/HOODIE-GREY/stock").await?.body;
    println!(
        "    HOODIE-GREY: {} free shared, pool {}, reserves {}",
        s["plan"]["free"], s["pool"], s["reserves"]
    );
    for line in s["plan"]["tiers"].as_array().into_iter().flatten() {
        println!(
            "    {:<12} seniority {}  ordered {:>3} over {}..{}  forecast {:>3}  claim {:>3}  reserve {:>3}",
            line["tier"].as_str().unwrap_or(""),
            line["seniority"],
            line["ordered"],
            s["plan"]["history_from"].as_str().unwrap_or(""),
            s["plan"]["history_to"].as_str().unwrap_or(""),
            line["forecast"],
            line["claim"],
            line["reserve"]
        );
    }
    Ok(api.api_key.clone().unwrap_or_default())
}
