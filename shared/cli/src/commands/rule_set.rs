//! `tiers rule-set validate | publish | show | diff`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};
use tier_domain::rules::{RuleSet, RuleSetDoc};

use super::rules_text::{self, condition};
use crate::Ctx;
use crate::client::{Client, Payload};
use crate::error::{CliError, Problem, read_text};
use crate::output::{self, Out};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Parse and validate a rule set file offline, as the API would; every
    /// problem is listed (exit 4 if there are any).
    Validate { file: PathBuf },
    /// Validate, then publish a rule set file as the next version.
    Publish { file: PathBuf },
    /// The published rule set.
    Show {
        /// Only if it is this version (the API serves the current one).
        #[arg(long)]
        version: Option<u64>,
    },
    /// What changed between two rule sets, each a file or a published
    /// version (`current`, or the current version's number).
    Diff { a: String, b: String },
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    match cmd {
        Cmd::Validate { file } => {
            let rules = validate(&file)?;
            let ids: Vec<&str> = rules.tiers().iter().map(|t| t.id.as_str()).collect();
            ctx.out.emit(
                &json!({"file": file.display().to_string(), "valid": true, "tiers": ids}),
                || {
                    format!(
                        "{}: valid, {} tier(s): {}",
                        file.display(),
                        ids.len(),
                        ids.join(", ")
                    )
                },
            );
            Ok(())
        }
        Cmd::Publish { file } => {
            // Checked here first, so that a bad file is refused with every
            // problem listed and nothing sent.
            validate(&file)?;
            let bytes = crate::error::read_file(&file)?;
            let answer = ctx
                .client()?
                .call(
                    reqwest::Method::PUT,
                    "rule-set",
                    Payload::Raw {
                        content_type: "application/json",
                        bytes,
                    },
                )
                .await?;
            ctx.out.emit(&answer, || {
                format!(
                    "published rule set version {} ({} tiers); backfill: {}",
                    output::field(&answer, "version"),
                    output::field(&answer, "tiers"),
                    output::field(&answer, "backfill"),
                )
            });
            Ok(())
        }
        Cmd::Show { version } => {
            let answer = published(&ctx.client()?, version).await?;
            let doc = doc_of(&answer)?;
            ctx.out.emit(&answer, || show(&answer, &doc));
            Ok(())
        }
        Cmd::Diff { a, b } => {
            let (la, da) = side(ctx, &a).await?;
            let (lb, db) = side(ctx, &b).await?;
            let changes = rules_text::diff(&da, &db);
            print_diff(ctx.out, &la, &lb, &changes);
            Ok(())
        }
    }
}

/// The rule set in `file`, validated by the domain's own rules.
pub fn validate(file: &Path) -> Result<RuleSet, CliError> {
    let text = read_text(file)?;
    RuleSet::from_json(&text).map_err(|e| CliError::Invalid {
        file: file.display().to_string(),
        problems: e
            .0
            .into_iter()
            .map(|p| Problem {
                at: if p.path.is_empty() || p.path == "." {
                    "(document)".into()
                } else {
                    p.path
                },
                message: p.message,
            })
            .collect(),
    })
}

/// `GET /v1/admin/rule-set`, checked against the version asked for.
async fn published(client: &Client, version: Option<u64>) -> Result<Value, CliError> {
    let answer = client.get("rule-set").await?;
    let current = answer["version"].as_u64();
    if let Some(v) = version
        && current != Some(v)
    {
        return Err(CliError::usage(format!(
            "version {v} is not the current one ({}): the admin API serves only the current rule set; keep earlier versions' files to compare them",
            current.map_or("none".into(), |c| c.to_string())
        )));
    }
    Ok(answer)
}

fn doc_of(answer: &Value) -> Result<RuleSetDoc, CliError> {
    serde_json::from_value(answer["rule_set"].clone()).map_err(|e| CliError::NotJson {
        url: "/v1/admin/rule-set".into(),
        status: 200,
        snippet: format!("the rule set does not read as one: {e}"),
    })
}

/// One side of a diff: a file if one is there, else a published version.
async fn side(ctx: &Ctx, raw: &str) -> Result<(String, RuleSetDoc), CliError> {
    let path = Path::new(raw);
    if path.exists() {
        return Ok((raw.to_owned(), validate(path)?.doc().clone()));
    }
    let version = match raw {
        "current" => None,
        v => Some(v.parse::<u64>().map_err(|_| {
            CliError::usage(format!(
                "{raw:?} is neither a file nor a version (a number, or `current`)"
            ))
        })?),
    };
    let answer = published(&ctx.client()?, version).await?;
    Ok((
        format!("version {}", output::field(&answer, "version")),
        doc_of(&answer)?,
    ))
}

fn print_diff(out: Out, a: &str, b: &str, changes: &[rules_text::Change]) {
    out.emit(&json!({"a": a, "b": b, "changes": changes}), || {
        if changes.is_empty() {
            return format!("{a} and {b} are the same rule set");
        }
        let mut text = format!("--- {a}\n+++ {b}\n");
        for c in changes {
            text.push_str(&c.line());
            text.push('\n');
        }
        text
    });
}

fn show(answer: &Value, doc: &RuleSetDoc) -> String {
    let mut text = format!(
        "rule set version {}, published {}\n",
        output::field(answer, "version"),
        output::field(answer, "published_at")
    );
    let mut t = output::table([
        "rank",
        "tier",
        "name",
        "discount %",
        "commission %",
        "priority",
        "upgrade",
        "retention",
        "permissions",
    ]);
    for tier in &doc.tiers {
        t.add_row([
            tier.rank.to_string(),
            tier.id.to_string(),
            tier.name.clone(),
            tier.benefits.discount_pct.to_string(),
            tier.benefits.commission_pct.to_string(),
            tier.benefits.priority.to_string(),
            tier.upgrade.as_ref().map_or("-".into(), condition),
            tier.retention.as_ref().map_or("-".into(), condition),
            tier.permissions
                .iter()
                .map(|p| output::cell(&serde_json::to_value(p).unwrap_or(Value::Null)))
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    text.push_str(&format!("{t}\n"));
    for s in &doc.step_ups {
        text.push_str(&format!("step-up {}: {}\n", s.id, condition(&s.when)));
    }
    text.push_str(&format!(
        "downgrades: {}\ncommission: {}\n",
        serde_json::to_string(&doc.downgrades).unwrap_or_default(),
        serde_json::to_string(&doc.commission).unwrap_or_default(),
    ));
    if let Some(b) = answer.get("backfill").filter(|b| !b.is_null()) {
        text.push_str(&format!("backfill: {b}\n"));
    }
    text
}
