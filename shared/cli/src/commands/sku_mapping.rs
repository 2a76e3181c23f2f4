//! `tiers sku-mapping import PLATFORM STORE FILE`: a store's mapping of
//! platform SKU codes to the brand's SKUs (CSV `platform_sku,sku` or JSON),
//! published whole; a mapping with bad rows is refused with each listed.

use std::path::PathBuf;

use clap::Subcommand;

use super::media_type;
use crate::Ctx;
use crate::client::{Payload, seg};
use crate::error::{CliError, read_file};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Publish a store's SKU mapping (`.csv` as CSV, else JSON).
    Import {
        /// shopify, doudian or youzan.
        platform: String,
        store: String,
        file: PathBuf,
    },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let Cmd::Import {
        platform,
        store,
        file,
    } = cmd;
    let client = ctx.client()?;
    let bytes = read_file(&file)?;
    let bar = ctx.out.bar(0, "uploading {bar:40} {bytes}/{total_bytes}");
    let answer = client
        .call(
            reqwest::Method::PUT,
            &format!("stores/{}/{}/sku-mapping", seg(&platform), seg(&store)),
            Payload::Upload {
                content_type: media_type(&file),
                bytes,
                progress: bar.clone(),
            },
        )
        .await;
    bar.finish_and_clear();
    let answer = answer?;
    ctx.out.emit(&answer, || {
        format!(
            "published the SKU mapping of {platform} store {store}: {} entries; {} held order(s) released",
            output::field(&answer, "entries"),
            output::field(&answer, "released"),
        )
    });
    Ok(())
}
