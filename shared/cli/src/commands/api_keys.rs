//! `tiers api-keys create | list | revoke`: the keys ERP integrations and
//! distributors read prices and tiers with, and the brand's warehouse ships
//! orders with.

use clap::{ArgGroup, Subcommand};
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::seg;
use crate::error::CliError;
use crate::output::{self, field};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a key; it is shown this once.
    #[command(group(ArgGroup::new("scope").required(true).args(["erp", "distributor", "fulfilment"])))]
    Create {
        #[arg(long)]
        name: String,
        /// Reads every distributor of the brand.
        #[arg(long)]
        erp: bool,
        /// Reads only this distributor.
        #[arg(long, value_name = "ID")]
        distributor: Option<String>,
        /// Reads the shipping queue and records shipments; no prices.
        #[arg(long)]
        fulfilment: bool,
    },
    /// Every key, without secrets; revoked ones marked.
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

fn scope(k: &Value) -> String {
    match k["scope"]["type"].as_str() {
        Some("distributor") => format!("distributor {}", field(&k["scope"], "distributor_id")),
        Some(other) => other.to_owned(),
        None => "-".into(),
    }
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        Cmd::Create {
            name,
            // The group makes the scopes exclusive and one of them
            // required: neither a distributor nor fulfilment, it is `--erp`.
            erp: _,
            distributor,
            fulfilment,
        } => {
            let scope_body = match (distributor, fulfilment) {
                (Some(d), _) => json!({"type": "distributor", "distributor_id": d}),
                (None, true) => json!({"type": "fulfilment"}),
                (None, false) => json!({"type": "erp"}),
            };
            let answer = client
                .post("api-keys", json!({"name": name, "scope": scope_body}))
                .await?;
            ctx.out.emit(&answer, || {
                format!(
                    "created API key {} ({}, {})\n{}\nThe key is shown this once: store it now.",
                    field(&answer, "id"),
                    field(&answer, "name"),
                    scope(&answer),
                    field(&answer, "key"),
                )
            });
        }
        Cmd::List => {
            let answer = client.get("api-keys").await?;
            ctx.out.emit(&answer, || {
                let keys = answer["keys"].as_array().cloned().unwrap_or_default();
                let mut t = output::table(["id", "name", "scope", "created", "revoked"]);
                for k in &keys {
                    t.add_row([
                        field(k, "id"),
                        field(k, "name"),
                        scope(k),
                        field(k, "created_at"),
                        field(k, "revoked_at"),
                    ]);
                }
                format!("{t}\n{} key(s)", keys.len())
            });
        }
        Cmd::Revoke { id } => {
            let answer = client.delete(&format!("api-keys/{}", seg(&id))).await?;
            ctx.out.emit(&answer, || format!("revoked API key {id}"));
        }
    }
    Ok(())
}
