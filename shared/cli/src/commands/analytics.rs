//! `tiers analytics regions | price-disorder | tiers`: what the brand sees
//! of its network, as tables and SVG charts, from
//! `GET /v1/admin/analytics/...`.

use std::path::PathBuf;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};

use crate::Ctx;
use crate::chart;
use crate::client::query;
use crate::error::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Sales by the buyers' region against the previous period and a year
    /// before, with the declining regions.
    Regions {
        /// A month (2026-11) or a quarter (2026-Q4); this month by default.
        #[arg(long)]
        period: Option<String>,
        /// The fall, in percent, beyond which a region is declining.
        #[arg(long)]
        threshold_pct: Option<String>,
        /// The smallest base sales a decline is judged on.
        #[arg(long)]
        min_base: Option<String>,
        /// Draw one region's monthly sales over the last `--months` months
        /// (ending with `--period`) as an SVG bar chart.
        #[arg(long, requires = "region")]
        chart: Option<PathBuf>,
        /// The region the chart follows (`CN-ZJ`; `-` for orders without one).
        #[arg(long)]
        region: Option<String>,
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=36))]
        months: u32,
    },
    /// Distributors reselling below the floor price (乱价), ranked, with the evidence.
    PriceDisorder {
        /// First day (YYYY-MM-DD); 29 days before `--to` by default.
        #[arg(long)]
        from: Option<String>,
        /// Last day; today by default.
        #[arg(long)]
        to: Option<String>,
        /// Only this distributor's violations.
        #[arg(long)]
        distributor: Option<String>,
        /// How many lines of evidence to show.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Each tier's members, moves and sales in a period.
    Tiers {
        /// A month or a quarter; this month by default.
        #[arg(long)]
        period: Option<String>,
        /// Draw the members per tier as an SVG bar chart.
        #[arg(long)]
        chart: Option<PathBuf>,
    },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    match cmd {
        Cmd::Regions {
            period,
            threshold_pct,
            min_base,
            chart,
            region,
            months,
        } => {
            regions(
                ctx,
                period,
                threshold_pct,
                min_base,
                chart.zip(region),
                months,
            )
            .await
        }
        Cmd::PriceDisorder {
            from,
            to,
            distributor,
            limit,
        } => price_disorder(ctx, from, to, distributor, limit).await,
        Cmd::Tiers { period, chart } => tiers(ctx, period, chart).await,
    }
}

/// A money string as a whole number for a chart's bar (negative as 0).
fn whole(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse::<Decimal>().ok())
        .and_then(|d| d.round().to_u64())
        .unwrap_or(0)
}

fn region_name(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_owned()
}

/// The month before `month` (`YYYY-MM`).
fn previous_month(month: &str) -> Result<String, CliError> {
    let m = tier_domain::calendar::Month::parse(month)
        .map_err(|e| CliError::usage(format!("--period: {e}")))?;
    Ok(m.previous().to_string())
}

async fn regions(
    ctx: &Ctx,
    period: Option<String>,
    threshold_pct: Option<String>,
    min_base: Option<String>,
    chart: Option<(PathBuf, String)>,
    months: u32,
) -> Result<(), CliError> {
    let client = ctx.client()?;
    let answer = client
        .get(&format!(
            "analytics/regions{}",
            query(&[
                ("period", period.clone()),
                ("threshold_pct", threshold_pct.clone()),
                ("min_base", min_base.clone()),
            ])
        ))
        .await?;
    let mut series: Vec<(String, Value)> = Vec::new();
    if let Some((path, region)) = &chart {
        // One call a month, oldest first, ending with the answered period.
        let last = answer["period"].as_str().unwrap_or_default().to_owned();
        if last.contains('Q') {
            return Err(CliError::usage(
                "--chart follows months: give --period as YYYY-MM",
            ));
        }
        let mut month = last;
        let bar = ctx
            .out
            .bar(u64::from(months), "{bar:30} {pos}/{len} months");
        for _ in 0..months {
            let m = client
                .get(&format!(
                    "analytics/regions{}",
                    query(&[("period", Some(month.clone()))])
                ))
                .await?;
            let sales = m["regions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| region_name(&r["region"]) == *region)
                .map(|r| r["current"]["sales"].clone())
                .unwrap_or_else(|| json!("0.00"));
            series.push((month.clone(), sales));
            bar.inc(1);
            month = previous_month(&month)?;
        }
        bar.finish_and_clear();
        series.reverse();
        let bars: Vec<chart::Bar> = series.iter().map(|(m, s)| (m.clone(), whole(s))).collect();
        chart::write_bars(path, &format!("Sales in {region} by month"), "sales", &bars)?;
    }
    let mut value = answer.clone();
    if !series.is_empty() {
        value["series"] = json!(
            series
                .iter()
                .map(|(m, s)| json!({"period": m, "sales": s}))
                .collect::<Vec<_>>()
        );
    }
    ctx.out.emit(&value, || {
        let mut t = output::table([
            "region",
            "sales",
            "orders",
            "previous",
            "change",
            "year before",
            "change",
            "declining",
        ]);
        for r in answer["regions"].as_array().into_iter().flatten() {
            t.add_row([
                region_name(&r["region"]),
                output::cell(&r["current"]["sales"]),
                output::cell(&r["current"]["orders"]),
                output::cell(&r["previous"]["sales"]),
                pct(&r["change_vs_previous_pct"]),
                output::cell(&r["year_ago"]["sales"]),
                pct(&r["change_vs_year_ago_pct"]),
                if r["declining"] == true {
                    "DECLINING"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        let mut text = format!(
            "{} (previous {}, a year before {}){}\n{t}",
            output::cell(&answer["period"]),
            output::cell(&answer["previous_period"]),
            output::cell(&answer["year_ago_period"]),
            if answer["complete"] == true {
                ""
            } else {
                ", under way: declines are judged once it ends"
            }
        );
        if let Some((p, _)) = &chart {
            text.push_str(&format!("\nchart written to {}", p.display()));
        }
        text
    });
    Ok(())
}

fn pct(v: &Value) -> String {
    match v.as_str() {
        Some(p) => format!("{p}%"),
        None => "-".into(),
    }
}

async fn price_disorder(
    ctx: &Ctx,
    from: Option<String>,
    to: Option<String>,
    distributor: Option<String>,
    limit: Option<u32>,
) -> Result<(), CliError> {
    let answer = ctx
        .client()?
        .get(&format!(
            "analytics/price-disorder{}",
            query(&[
                ("from", from),
                ("to", to),
                ("distributor", distributor),
                ("limit", limit.map(|l| l.to_string())),
            ])
        ))
        .await?;
    ctx.out.emit(&answer, || {
        let mut ranked = output::table([
            "distributor",
            "violations",
            "orders",
            "units",
            "below floor by",
            "deepest gap",
            "last",
        ]);
        for r in answer["distributors"].as_array().into_iter().flatten() {
            ranked.add_row([
                output::field(r, "distributor"),
                output::field(r, "violations"),
                output::field(r, "orders"),
                output::field(r, "units"),
                output::field(r, "gap_amount"),
                pct(&r["max_gap_pct"]),
                output::field(r, "last_at"),
            ]);
        }
        let mut evidence = output::table([
            "distributor",
            "order",
            "sku",
            "qty",
            "resold at",
            "floor",
            "gap",
            "at",
        ]);
        for e in answer["evidence"].as_array().into_iter().flatten() {
            evidence.add_row([
                output::field(e, "distributor"),
                output::field(e, "order"),
                output::field(e, "sku"),
                output::field(e, "quantity"),
                output::field(e, "resale_unit_price"),
                output::field(e, "floor_price"),
                pct(&e["gap_pct"]),
                output::field(e, "at"),
            ]);
        }
        format!(
            "{} to {}: {} line(s) below the floor in {} order(s)\n{ranked}\n{evidence}{}",
            output::cell(&answer["from"]),
            output::cell(&answer["to"]),
            output::cell(&answer["violations"]),
            output::cell(&answer["orders"]),
            if answer["evidence_truncated"] == true {
                "\n(more evidence: raise --limit)"
            } else {
                ""
            }
        )
    });
    Ok(())
}

async fn tiers(ctx: &Ctx, period: Option<String>, chart: Option<PathBuf>) -> Result<(), CliError> {
    let answer = ctx
        .client()?
        .get(&format!("analytics/tiers{}", query(&[("period", period)])))
        .await?;
    let rows: Vec<&Value> = answer["tiers"].as_array().into_iter().flatten().collect();
    if let Some(path) = &chart {
        let bars: Vec<chart::Bar> = rows
            .iter()
            .filter(|r| !r["tier"].is_null())
            .map(|r| (output::field(r, "tier"), r["members"].as_u64().unwrap_or(0)))
            .collect();
        chart::write_bars(
            path,
            &format!("Members per tier, {}", output::cell(&answer["period"])),
            "members",
            &bars,
        )?;
    }
    ctx.out.emit(&answer, || {
        let mut t = output::table([
            "tier",
            "members",
            "joined",
            "up in",
            "down in",
            "up out",
            "down out",
            "sales",
            "per member",
        ]);
        for r in &rows {
            t.add_row([
                output::field(r, "tier"),
                output::field(r, "members"),
                output::field(r, "joined"),
                output::field(r, "moved_up_in"),
                output::field(r, "moved_down_in"),
                output::field(r, "moved_up_out"),
                output::field(r, "moved_down_out"),
                output::field(r, "sales"),
                output::field(r, "sales_per_member"),
            ]);
        }
        let mut text = format!(
            "{}: {} up, {} down\n{t}",
            output::cell(&answer["period"]),
            output::cell(&answer["upgrades"]),
            output::cell(&answer["downgrades"])
        );
        if let Some(p) = &chart {
            text.push_str(&format!("\nchart written to {}", p.display()));
        }
        text
    });
    Ok(())
}
