//! `tiers distributors list | about-to-move | show | override | lock | unlock | spread`.

use clap::Subcommand;
use serde_json::{Value, json};
use tier_domain::calendar::{BrandCalendar, DEFAULT_TIMEZONE};
use tier_domain::metrics::Metrics;
use tier_domain::rules::{RuleOutcome, RuleSet, RuleSetDoc};

use super::rules_text::measure;
use crate::Ctx;
use crate::client::{Client, query, seg};
use crate::error::CliError;
use crate::output::{self, cell, field, text_bar};

/// The largest page the list serves.
const MAX_PAGE: usize = 50;

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PageArgs {
    /// Members asked for per request (the API serves at most 50).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=50))]
    page_size: u16,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Every distributor, senior tiers first, following the pages.
    List {
        #[command(flatten)]
        filters: Filters,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Those within reach of their next tier, and those a review would move
    /// down.
    AboutToMove {
        /// Within this many percent of the next tier's upgrade rule.
        #[arg(long)]
        within: Option<String>,
        #[command(flatten)]
        filters: Filters,
        /// Look at no more than this many members.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One distributor: tier, progress to the next as bars, tier history.
    Show {
        id: String,
        /// The brand's time zone, for the month and day progress is
        /// measured in.
        #[arg(long, env = "TIERS_TIMEZONE", default_value = DEFAULT_TIMEZONE)]
        timezone: String,
    },
    /// Set a distributor's tier by hand, with a reason; `--lock` keeps it
    /// there until unlocked.
    Override {
        id: String,
        tier: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        lock: bool,
    },
    /// Keep a distributor in its current tier: no automatic change until
    /// unlocked.
    Lock { id: String },
    /// Lift a lock: automatic changes resume.
    Unlock { id: String },
    /// Spread a hot seller's counters over SHARDS items (0 to 64; 0: one
    /// item again), so its orders, and the commission they pay it as a
    /// receiver, write different items. Spread its upline too.
    Spread { id: String, shards: u64 },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        Cmd::List {
            filters,
            limit,
            page,
        } => {
            let (rows, _) = pages(&client, "distributors", &filters, None, limit, page).await?;
            let answer = json!({"distributors": rows});
            ctx.out.emit(&answer, || list_table(&rows));
        }
        Cmd::AboutToMove {
            within,
            filters,
            limit,
            page,
        } => {
            let (rows, scanned) = pages(
                &client,
                "distributors:about-to-move",
                &filters,
                within,
                limit,
                page,
            )
            .await?;
            let answer = json!({"scanned": scanned, "distributors": rows});
            ctx.out.emit(&answer, || {
                format!(
                    "{}\n{scanned} distributor(s) looked at",
                    moving_table(&rows)
                )
            });
        }
        Cmd::Show { id, timezone } => {
            let calendar = BrandCalendar::parse(&timezone)
                .map_err(|e| CliError::usage(format!("--timezone {timezone}: {e}")))?;
            let mut answer = client.get(&format!("distributors/{}", seg(&id))).await?;
            let rules = match client.get("rule-set").await {
                Ok(r) => Some(r),
                Err(CliError::Refused { code, .. }) if code == "no_rule_set" => None,
                Err(e) => return Err(e),
            };
            let progress = rules.as_ref().and_then(|r| progress(&answer, r, &calendar));
            answer["progress"] = serde_json::to_value(&progress).unwrap_or(Value::Null);
            ctx.out.emit(&answer, || show(&answer, progress.as_ref()));
        }
        Cmd::Override {
            id,
            tier,
            reason,
            lock,
        } => {
            let answer = set_tier(&client, &id, &tier, &reason, lock).await?;
            ctx.out.emit(&answer, || {
                format!(
                    "{id} is {}{}",
                    field(&answer, "tier"),
                    if lock { ", locked" } else { "" }
                )
            });
        }
        Cmd::Lock { id } => {
            // The lock alone, written without reading the tier first: a
            // change landing meanwhile is kept, not undone.
            let answer = client
                .put(&format!("distributors/{}/tier-lock", seg(&id)), json!({}))
                .await?;
            let d = client.get(&format!("distributors/{}", seg(&id))).await?;
            let tier = d["distributor"]["tier"]
                .as_str()
                .unwrap_or("no tier")
                .to_owned();
            ctx.out
                .emit(&answer, || format!("{id} is locked in {tier}"));
        }
        Cmd::Spread { id, shards } => {
            let answer = client
                .put(
                    &format!("distributors/{}/shards", seg(&id)),
                    json!({"shards": shards}),
                )
                .await?;
            ctx.out.emit(&answer, || {
                let count = |k: &str| answer[k].as_u64().unwrap_or(0);
                match (count("shards"), count("cells")) {
                    (0, 0) => format!("{id}'s counters are in one item"),
                    (0, cells) => format!(
                        "{id}'s new orders go to one item; the {cells} shards keep what they hold"
                    ),
                    (k, _) => format!("{id}'s orders are spread over {k} shards"),
                }
            });
        }
        Cmd::Unlock { id } => {
            let answer = client
                .delete(&format!("distributors/{}/tier-lock", seg(&id)))
                .await?;
            ctx.out.emit(&answer, || {
                format!("{id} is unlocked: automatic changes resume")
            });
        }
    }
    Ok(())
}

async fn set_tier(
    client: &Client,
    id: &str,
    tier: &str,
    reason: &str,
    lock: bool,
) -> Result<Value, CliError> {
    client
        .put(
            &format!("distributors/{}/tier", seg(id)),
            json!({"tier": tier, "reason": reason, "lock": lock}),
        )
        .await
}

/// Which distributors a list walks: a tier's, a region's or an upline's
/// (a region or an upline, with a tier or not), or the whole brand in
/// rank order.
#[derive(Debug, Clone, clap::Args)]
pub struct Filters {
    /// Only this tier's members (`-`: those without a tier).
    #[arg(long)]
    tier: Option<String>,
    /// Only those registered with this region.
    #[arg(long, conflicts_with = "upline")]
    region: Option<String>,
    /// Only this distributor's direct downline.
    #[arg(long)]
    upline: Option<String>,
    /// The whole brand, most first: by this month's or quarter's sales, or
    /// by the latest tier change.
    #[arg(long, value_parser = ["sales_month", "sales_quarter", "tier_changed_at"],
          conflicts_with_all = ["tier", "region", "upline"])]
    sort: Option<String>,
}

/// Follows `next_cursor` until the end or `limit` members, and returns the
/// rows with how many members the pages covered (`scanned`, where the
/// endpoint says it).
async fn pages(
    client: &Client,
    path: &str,
    filters: &Filters,
    within: Option<String>,
    limit: Option<usize>,
    page_args: PageArgs,
) -> Result<(Vec<Value>, u64), CliError> {
    let size = usize::from(page_args.page_size).min(MAX_PAGE);
    let mut rows = Vec::new();
    let mut scanned = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let covered = if path == "distributors" {
            rows.len()
        } else {
            scanned as usize
        };
        let want = limit.map_or(size, |l| l.saturating_sub(covered).min(size));
        if want == 0 {
            break;
        }
        let q = query(&[
            ("tier", filters.tier.clone()),
            ("region", filters.region.clone()),
            ("upline", filters.upline.clone()),
            ("sort", filters.sort.clone()),
            ("within", within.clone()),
            ("limit", Some(want.to_string())),
            ("cursor", cursor.clone()),
        ]);
        let page = client.get(&format!("{path}{q}")).await?;
        let got = page["distributors"].as_array().cloned().unwrap_or_default();
        scanned += page["scanned"].as_u64().unwrap_or(got.len() as u64);
        rows.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok((rows, scanned))
}

/// `86.6%` as a bar and its number.
fn pct_bar(pct: &Value) -> String {
    let text = cell(pct);
    match text.parse::<f64>() {
        Ok(p) => format!("{} {text}%", text_bar(p / 100.0, 10)),
        Err(_) => "-".into(),
    }
}

fn list_table(rows: &[Value]) -> String {
    let mut t = output::table([
        "id",
        "name",
        "tier",
        "locked",
        "region",
        "upline",
        "sales (month)",
        "sales (quarter)",
        "next tier",
        "progress",
    ]);
    for r in rows {
        t.add_row([
            field(r, "id"),
            field(r, "name"),
            field(r, "tier"),
            field(r, "tier_locked"),
            field(r, "region"),
            field(r, "upline"),
            field(r, "sales_month"),
            field(r, "sales_quarter"),
            field(r, "next_tier"),
            pct_bar(&r["progress_pct"]),
        ]);
    }
    format!("{t}\n{} distributor(s)", rows.len())
}

/// An outcome's conditions: `sales_amount(month) 51960.00 / 60000 ✗`.
fn observed(rule: &Value) -> String {
    rule["observed"]
        .as_array()
        .map(|obs| {
            obs.iter()
                .map(|o| {
                    format!(
                        "{} {} / {}{}",
                        measure(&o["metric"], &o["window"]),
                        field(o, "value"),
                        field(o, "threshold"),
                        if o["met"].as_bool() == Some(true) {
                            " met"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn moving_table(rows: &[Value]) -> String {
    let mut t = output::table([
        "id",
        "name",
        "tier",
        "heading",
        "to",
        "progress / takes effect",
        "rule",
    ]);
    for r in rows {
        let when = if r["direction"] == "down" {
            field(r, "takes_effect")
        } else {
            pct_bar(&r["progress_pct"])
        };
        t.add_row([
            field(r, "id"),
            field(r, "name"),
            field(r, "tier"),
            field(r, "direction"),
            field(r, "to"),
            when,
            observed(&r["rule"]),
        ]);
    }
    format!("{t}\n{} about to move", rows.len())
}

/// Progress to the next tier, computed as the API computes the list's:
/// the domain's own rule over the metrics the API answered.
#[derive(Debug, serde::Serialize)]
pub struct Progress {
    pub next_tier: String,
    pub next_tier_name: String,
    pub progress_pct: rust_decimal::Decimal,
    pub rule: Option<RuleOutcome>,
}

fn progress(answer: &Value, rules: &Value, calendar: &BrandCalendar) -> Option<Progress> {
    let doc: RuleSetDoc = serde_json::from_value(rules["rule_set"].clone()).ok()?;
    let rules = RuleSet::new(doc).ok()?;
    let metrics: Metrics = serde_json::from_value(answer["metrics"].clone()).ok()?;
    let tier = answer["distributor"]["tier"]
        .as_str()
        .and_then(|t| rules.tier_by_id(t))
        .unwrap_or_else(|| rules.entry_tier());
    let today = calendar.day_of(chrono::Utc::now());
    let (next, pct) = rules.next_tier_progress(&metrics, today, tier.rank)?;
    Some(Progress {
        next_tier: next.id.to_string(),
        next_tier_name: next.name.clone(),
        progress_pct: pct,
        rule: rules.progress(&metrics, today, tier.rank),
    })
}

fn cause(c: &Value) -> String {
    let kind = field(c, "type");
    let detail: Vec<String> = c
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "type")
                .map(|(k, v)| format!("{k}={}", cell(v)))
                .collect()
        })
        .unwrap_or_default();
    if detail.is_empty() {
        kind
    } else {
        format!("{kind} ({})", detail.join(", "))
    }
}

fn show(answer: &Value, progress: Option<&Progress>) -> String {
    let d = &answer["distributor"];
    let mut text = format!(
        "{} {}\n  tier: {}{}\n  upline: {}   region: {}   since: {}\n",
        field(d, "id"),
        field(d, "name"),
        field(d, "tier"),
        if d["tier_locked"].as_bool() == Some(true) {
            " (locked)"
        } else {
            ""
        },
        field(d, "upline"),
        field(d, "region"),
        field(d, "created_at"),
    );
    match progress {
        None => text.push_str("  next tier: none (the top tier, or no rule set)\n"),
        Some(p) => {
            text.push_str(&format!(
                "  next tier: {} ({})  {} {}%\n",
                p.next_tier,
                p.next_tier_name,
                text_bar(
                    p.progress_pct.to_string().parse::<f64>().unwrap_or(0.0) / 100.0,
                    20
                ),
                p.progress_pct
            ));
            for o in p.rule.iter().flat_map(|r| &r.observed) {
                let share = if o.threshold.is_zero() {
                    1.0
                } else {
                    (o.value / o.threshold).to_string().parse().unwrap_or(0.0)
                };
                text.push_str(&format!(
                    "    {:<36} {} {} / {}{}\n",
                    measure(&o.metric, &o.window),
                    text_bar(share, 20),
                    o.value,
                    o.threshold,
                    if o.met { "  met" } else { "" }
                ));
            }
        }
    }
    let history = answer["tier_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut t = output::table(["at", "from", "to", "direction", "cause", "why"]);
    for h in &history {
        let why = h["reasons"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| format!("{}: {}", field(r, "rule"), observed(r)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        t.add_row([
            field(h, "at"),
            field(h, "from"),
            field(h, "to"),
            field(h, "direction"),
            cause(&h["cause"]),
            why,
        ]);
    }
    text.push_str(&format!("tier history (newest first):\n{t}"));
    text
}
