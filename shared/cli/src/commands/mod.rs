//! The command groups, one module each. A group has a clap `Cmd` and an
//! async `run(cmd, ctx)`; this module only dispatches.

use clap::Subcommand;
use serde_json::Value;

use crate::Ctx;
use crate::error::CliError;
use crate::output;

pub mod analytics;
pub mod api_keys;
pub mod dead_letters;
pub mod distribution;
pub mod distributors;
pub mod price_book;
pub mod reviews;
pub mod rule_set;
pub mod rules_text;
pub mod sku_mapping;
pub mod stock;
pub mod wait;
pub mod what_if;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate offline, publish, show and compare rule sets.
    #[command(subcommand)]
    RuleSet(rule_set::Cmd),
    /// Publish a price book from CSV or JSON.
    #[command(subcommand)]
    PriceBook(price_book::Cmd),
    /// Publish a platform store's SKU mapping.
    #[command(subcommand)]
    SkuMapping(sku_mapping::Cmd),
    /// Set stock on hand for many SKUs from a CSV file.
    #[command(subcommand)]
    Stock(stock::Cmd),
    /// List, inspect and override distributors.
    #[command(subcommand)]
    Distributors(distributors::Cmd),
    /// Evaluate a draft rule set against everyone, changing nothing.
    #[command(subcommand)]
    WhatIf(what_if::Cmd),
    /// Start a review as the schedule does, and follow it.
    #[command(subcommand)]
    Reviews(reviews::Cmd),
    /// Create, list and revoke the API keys of integrations.
    #[command(subcommand)]
    ApiKeys(api_keys::Cmd),
    /// What the queue consumers parked, and moving it back.
    #[command(subcommand)]
    DeadLetters(dead_letters::Cmd),
    /// Members per tier, as a table and optionally an SVG bar chart.
    Distribution(distribution::Args),
    /// Regions, price disorder and tiers, as tables and charts.
    #[command(subcommand)]
    Analytics(analytics::Cmd),
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<(), CliError> {
    match command {
        Command::RuleSet(c) => rule_set::run(c, ctx).await,
        Command::PriceBook(c) => price_book::run(c, ctx).await,
        Command::SkuMapping(c) => sku_mapping::run(c, ctx).await,
        Command::Stock(c) => stock::run(c, ctx).await,
        Command::Distributors(c) => distributors::run(c, ctx).await,
        Command::WhatIf(c) => what_if::run(c, ctx).await,
        Command::Reviews(c) => reviews::run(c, ctx).await,
        Command::ApiKeys(c) => api_keys::run(c, ctx).await,
        Command::DeadLetters(c) => dead_letters::run(c, ctx).await,
        Command::Distribution(a) => distribution::run(a, ctx).await,
        Command::Analytics(c) => analytics::run(c, ctx).await,
    }
}

/// The itemised problems a refusal lists (a price book's or a mapping's
/// bad rows: `line`, `field`, `message`), as a table.
pub fn bad_lines(errors: &[Value]) -> String {
    let mut t = output::table(["line", "field", "problem"]);
    for e in errors {
        t.add_row([
            output::field(e, "line"),
            output::field(e, "field"),
            output::field(e, "message"),
        ]);
    }
    format!("{} bad line(s):\n{t}", errors.len())
}

/// Media type by file name: `.csv` is CSV, everything else JSON.
pub fn media_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => "text/csv",
        _ => "application/json",
    }
}
