//! `tiers reviews start | watch`: the review the schedule runs, on demand,
//! and its progress until done.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::wait::{WaitArgs, Waiter};
use crate::Ctx;
use crate::client::{Client, seg};
use crate::error::CliError;
use crate::output::field;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Monthly,
    Daily,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start (or resume) the current period's review, as the schedule does.
    Start {
        #[arg(long, value_enum, default_value = "monthly")]
        kind: Kind,
        /// The period meant (YYYY-MM, or YYYY-MM-DD for a daily review),
        /// so that a request that arrives after the period turned is refused.
        #[arg(long)]
        period: Option<String>,
        /// Then follow it until done.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Follow a review with a progress bar until it is done.
    Watch {
        period: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        Cmd::Start {
            kind,
            period,
            watch,
            wait,
        } => {
            let mut body =
                json!({"kind": match kind { Kind::Monthly => "monthly", Kind::Daily => "daily" }});
            if let Some(p) = &period {
                body["period"] = json!(p);
            }
            let answer = client.post("reviews", body).await?;
            let period = field(&answer["review"], "period");
            if watch {
                let done = follow(ctx, &client, &period, &wait).await?;
                ctx.out.emit(&done, || summary(&done["review"]));
            } else {
                ctx.out.emit(&answer, || {
                    format!(
                        "review of {period} {} ({}); follow it with `tiers reviews watch {period}`",
                        if answer["created"] == true {
                            "started"
                        } else {
                            "resumed"
                        },
                        field(&answer["review"], "state"),
                    )
                });
            }
        }
        Cmd::Watch { period, wait } => {
            let done = follow(ctx, &client, &period, &wait).await?;
            ctx.out.emit(&done, || summary(&done["review"]));
        }
    }
    Ok(())
}

/// Polls until `state` is `done`. The bar's length is the pages listed so
/// far: it grows while the review still lists members.
async fn follow(
    ctx: &Ctx,
    client: &Client,
    period: &str,
    wait: &WaitArgs,
) -> Result<Value, CliError> {
    let waiter = Waiter::new(wait);
    let bar = ctx
        .out
        .bar(0, "review {msg} {bar:40} {pos}/{len} pages ({elapsed})");
    bar.set_message(period.to_owned());
    let result = loop {
        let answer = match client.get(&format!("reviews/{}", seg(period))).await {
            Ok(a) => a,
            Err(e) => break Err(e),
        };
        let r = &answer["review"];
        bar.set_length(r["pages_listed"].as_u64().unwrap_or(0));
        bar.set_position(r["pages_done"].as_u64().unwrap_or(0));
        bar.set_message(format!("{period} {}", field(r, "state")));
        if r["state"] == "done" {
            break Ok(answer);
        }
        if let Err(e) = waiter.next(&format!("the review of {period}")).await {
            break Err(e);
        }
    };
    bar.finish_and_clear();
    result
}

fn summary(r: &Value) -> String {
    format!(
        "review of {} (at {}): {}; {} evaluated, {} changed tier, {} page(s) of {} distributor(s)",
        field(r, "period"),
        field(r, "at"),
        field(r, "state"),
        field(r, "evaluated"),
        field(r, "changed"),
        field(r, "pages_done"),
        field(r, "distributors_listed"),
    )
}
