//! `tiers what-if start FILE | show ID`: a draft rule set evaluated against
//! every distributor as a review would, changing nothing; who would move.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use super::wait::{WaitArgs, Waiter};
use crate::Ctx;
use crate::chart;
use crate::client::{Client, Payload, seg};
use crate::error::{CliError, read_file};
use crate::output::{self, field};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate a draft rule set offline, then start evaluating it.
    Start {
        file: PathBuf,
        /// The what-if's id; by default `wi-` and the time.
        #[arg(long)]
        id: Option<String>,
    },
    /// A what-if's result, waiting until it is complete.
    Show {
        id: String,
        /// Also draw the tier-to-tier moves as an SVG bar chart.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Answer at once, complete or not.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    match cmd {
        Cmd::Start { file, id } => {
            super::rule_set::validate(&file)?;
            let id =
                id.unwrap_or_else(|| format!("wi-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")));
            let answer = ctx
                .client()?
                .call(
                    reqwest::Method::PUT,
                    &format!("what-ifs/{}", seg(&id)),
                    Payload::Raw {
                        content_type: "application/json",
                        bytes: read_file(&file)?,
                    },
                )
                .await?;
            ctx.out.emit(&answer, || {
                format!(
                    "what-if {id} is {}; follow it with `tiers what-if show {id}`",
                    field(&answer, "status")
                )
            });
        }
        Cmd::Show {
            id,
            chart: chart_path,
            no_wait,
            wait,
        } => {
            let client = ctx.client()?;
            let answer = if no_wait {
                fetch(&client, &id).await?
            } else {
                follow(ctx, &client, &id, &wait).await?
            };
            if let Some(path) = &chart_path {
                chart::write_bars(
                    path,
                    &format!("What-if {id}: tier-to-tier moves"),
                    "distributors",
                    &move_bars(&answer),
                )?;
            }
            ctx.out.emit(&answer, || {
                let mut text = summary(&answer);
                if let Some(p) = &chart_path {
                    text.push_str(&format!("\nchart written to {}", p.display()));
                }
                text
            });
        }
    }
    Ok(())
}

async fn fetch(client: &Client, id: &str) -> Result<Value, CliError> {
    client.get(&format!("what-ifs/{}", seg(id))).await
}

async fn follow(ctx: &Ctx, client: &Client, id: &str, wait: &WaitArgs) -> Result<Value, CliError> {
    let waiter = Waiter::new(wait);
    let spinner = ctx.out.spinner(format!("what-if {id} is running"));
    let result = loop {
        let answer = match fetch(client, id).await {
            Ok(a) => a,
            Err(e) => break Err(e),
        };
        if answer["status"] == "complete" {
            break Ok(answer);
        }
        spinner.set_message(format!(
            "what-if {id}: {} of {} page(s), {} evaluated",
            field(&answer, "pages_done"),
            field(&answer, "pages"),
            field(&answer, "evaluated")
        ));
        if let Err(e) = waiter.next(&format!("what-if {id}")).await {
            break Err(e);
        }
    };
    spinner.finish_and_clear();
    result
}

/// One bar per move, `from → to`, in the order the API lists them.
fn move_bars(answer: &Value) -> Vec<chart::Bar> {
    answer["moves"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        format!("{} → {}", field(m, "from"), field(m, "to")),
                        m["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn summary(answer: &Value) -> String {
    let mut t = output::table(["from", "to", "distributors", "some of them"]);
    for m in answer["moves"].as_array().into_iter().flatten() {
        let some: Vec<String> = m["distributors"]
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
            .map(output::cell)
            .collect();
        t.add_row([
            field(m, "from"),
            field(m, "to"),
            field(m, "count"),
            some.join(", "),
        ]);
    }
    format!(
        "what-if {} ({}, as of {}): {} evaluated, {} unchanged, {} changed during the run\n{t}",
        field(answer, "id"),
        field(answer, "status"),
        field(answer, "as_of"),
        field(answer, "evaluated"),
        field(answer, "unchanged"),
        field(answer, "changed_during_run"),
    )
}
