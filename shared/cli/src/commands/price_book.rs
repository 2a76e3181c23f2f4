//! `tiers price-book import FILE`: a whole book, CSV or JSON, as the next
//! version. The API refuses a book with any bad row and lists every one;
//! they are printed as a table (exit 1).

use std::path::PathBuf;

use clap::Subcommand;

use super::media_type;
use crate::Ctx;
use crate::client::Payload;
use crate::error::{CliError, read_file};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Publish a price book file (`.csv` is sent as CSV, anything else as
    /// JSON) as the next version.
    Import { file: PathBuf },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let Cmd::Import { file } = cmd;
    let client = ctx.client()?;
    let bytes = read_file(&file)?;
    // A 50,000-row book is megabytes: the bar follows the upload, then a
    // spinner the API's validation and writes.
    let bar = ctx
        .out
        .bar(0, "uploading {bar:40} {bytes}/{total_bytes} ({eta})");
    let content_type = media_type(&file);
    let upload = client.call(
        reqwest::Method::PUT,
        "price-book",
        Payload::Upload {
            content_type,
            bytes,
            progress: bar.clone(),
        },
    );
    // Once the whole body is read out, the API is validating and writing:
    // the bar gives way to a spinner until it answers.
    let answer = {
        tokio::pin!(upload);
        let mut spinner = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        let answer = loop {
            tokio::select! {
                r = &mut upload => break r,
                _ = tick.tick() => {
                    let sent = bar.length().is_some_and(|l| l > 0 && bar.position() >= l);
                    if spinner.is_none() && sent {
                        bar.finish_and_clear();
                        spinner = Some(ctx.out.spinner("the API validates and publishes the book"));
                    }
                }
            }
        };
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        answer
    };
    bar.finish_and_clear();
    let answer = answer?;
    ctx.out.emit(&answer, || {
        format!(
            "published price book version {}: {} SKU(s), {} promotion(s) (from {})",
            output::field(&answer, "version"),
            output::field(&answer, "skus"),
            output::field(&answer, "promotions"),
            file.display()
        )
    });
    Ok(())
}
