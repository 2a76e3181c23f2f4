//! `tiers distribution [--chart out.svg]`: members per tier now, from the
//! tier analytics' members counters (distributors who have a tier: those
//! registered before any rule set was published are counted once one
//! places them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tier_domain::rules::RuleSetDoc;

use crate::Ctx;
use crate::chart;
use crate::error::CliError;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also draw the distribution as an SVG bar chart.
    #[arg(long)]
    chart: Option<PathBuf>,
}

/// The label of distributors without a tier, as the list's filter names them.
const NO_TIER: &str = "-";

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.client()?;
    let rules: Option<RuleSetDoc> = match client.get("rule-set").await {
        Ok(r) => serde_json::from_value(r["rule_set"].clone()).ok(),
        Err(CliError::Refused { code, .. }) if code == "no_rule_set" => None,
        Err(e) => return Err(e),
    };
    // The members counters every tier change keeps: one call, whatever
    // the brand's size.
    let answer = client.get("analytics/tiers").await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for t in answer["tiers"].as_array().into_iter().flatten() {
        if let (Some(tier), Some(n)) = (t["tier"].as_str(), t["members"].as_u64()) {
            counts.insert(tier.to_owned(), n);
        }
    }
    let total: u64 = counts.values().sum();
    // The current tiers by rank, empty ones too; then tiers only earlier
    // versions had; then no tier.
    let mut rows: Vec<(String, String, u64)> = Vec::new();
    if let Some(doc) = &rules {
        let mut tiers: Vec<_> = doc.tiers.iter().collect();
        tiers.sort_by_key(|t| t.rank);
        for t in tiers {
            let n = counts.remove(t.id.as_str()).unwrap_or(0);
            rows.push((t.id.to_string(), t.name.clone(), n));
        }
    }
    let none = counts.remove(NO_TIER);
    for (id, n) in counts {
        rows.push((id.clone(), format!("{id} (no longer a tier)"), n));
    }
    if let Some(n) = none {
        rows.push((NO_TIER.into(), "(no tier)".into(), n));
    }
    if let Some(path) = &args.chart {
        let bars: Vec<chart::Bar> = rows.iter().map(|(_, name, n)| (name.clone(), *n)).collect();
        chart::write_bars(path, "Distributors per tier", "members", &bars)?;
    }
    let tiers: Vec<Value> = rows
        .iter()
        .map(|(id, name, n)| json!({"tier": id, "name": name, "members": n}))
        .collect();
    let answer = json!({"total": total, "tiers": tiers});
    ctx.out.emit(&answer, || {
        let mut t = output::table(["tier", "name", "members", "share"]);
        for (id, name, n) in &rows {
            let share = if total == 0 {
                0.0
            } else {
                *n as f64 / total as f64
            };
            t.add_row([
                id.clone(),
                name.clone(),
                n.to_string(),
                format!("{} {:.1}%", output::text_bar(share, 20), share * 100.0),
            ]);
        }
        let mut text = format!("{t}\n{total} distributor(s)");
        if let Some(p) = &args.chart {
            text.push_str(&format!("\nchart written to {}", p.display()));
        }
        text
    });
    Ok(())
}
