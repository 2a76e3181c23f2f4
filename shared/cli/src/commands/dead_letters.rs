//! `tiers dead-letters list | redrive`: what the queue consumers parked,
//! grouped by failure code, and moving it back once the cause is fixed.

use std::collections::BTreeMap;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::query;
use crate::error::CliError;
use crate::output::{self, field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Queue {
    TierEvents,
    StockEvents,
    OrderDetails,
}

impl Queue {
    fn name(self) -> &'static str {
        match self {
            Queue::TierEvents => "tier-events",
            Queue::StockEvents => "stock-events",
            Queue::OrderDetails => "order-details",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// A look at what is parked (nothing moves), grouped by failure code.
    List {
        /// One queue; by default all three.
        #[arg(long, value_enum)]
        queue: Option<Queue>,
        /// Only letters of this failure code.
        #[arg(long)]
        code: Option<String>,
        /// Letters read per queue (1 to 50).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=50))]
        limit: u16,
    },
    /// Move dead letters back to their work queue.
    Redrive {
        #[arg(long, value_enum)]
        queue: Queue,
        /// Only letters of this failure code.
        #[arg(long)]
        code: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=200))]
        limit: Option<u16>,
    },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        Cmd::List { queue, code, limit } => {
            let queues = match queue {
                Some(q) => vec![q],
                None => vec![Queue::TierEvents, Queue::StockEvents, Queue::OrderDetails],
            };
            let mut letters = Vec::new();
            for q in queues {
                let page = client
                    .get(&format!(
                        "dead-letters{}",
                        query(&[
                            ("queue", Some(q.name().to_owned())),
                            ("limit", Some(limit.to_string()))
                        ])
                    ))
                    .await?;
                for mut l in page["dead_letters"].as_array().cloned().unwrap_or_default() {
                    if code
                        .as_ref()
                        .is_none_or(|c| l["failure_code"] == c.as_str())
                    {
                        l["queue"] = json!(q.name());
                        letters.push(l);
                    }
                }
            }
            let answer = json!({"dead_letters": letters});
            ctx.out.emit(&answer, || grouped(&letters));
        }
        Cmd::Redrive { queue, code, limit } => {
            let mut body = json!({"queue": queue.name()});
            if let Some(c) = code {
                body["failure_code"] = json!(c);
            }
            if let Some(l) = limit {
                body["limit"] = json!(l);
            }
            let answer = client.post("dead-letters:redrive", body).await?;
            ctx.out.emit(&answer, || {
                format!(
                    "{}: moved {} back to the work queue, {} left parked",
                    queue.name(),
                    field(&answer, "moved"),
                    field(&answer, "skipped")
                )
            });
        }
    }
    Ok(())
}

/// One row per queue and failure code: how many, and the first reason.
fn grouped(letters: &[Value]) -> String {
    let mut groups: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for l in letters {
        let e = groups
            .entry((field(l, "queue"), field(l, "failure_code")))
            .or_insert_with(|| (0, field(l, "failure_reason")));
        e.0 += 1;
    }
    if groups.is_empty() {
        return "no dead letters".into();
    }
    let mut t = output::table(["queue", "failure code", "letters", "first reason"]);
    for ((queue, code), (n, reason)) in groups {
        t.add_row([queue, code, n.to_string(), reason]);
    }
    format!("{t}\n{} dead letter(s) seen", letters.len())
}
