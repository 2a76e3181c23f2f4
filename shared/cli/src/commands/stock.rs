//! `tiers stock import FILE`: stock on hand for many SKUs. The API sets one
//! SKU at a time (`PUT /v1/admin/skus/{sku}/stock`), so the file is checked
//! whole first (exit 4 with every bad line, nothing sent), then sent row by
//! row, a few at once; rows the API refuses are listed at the end (exit 1).

use std::path::PathBuf;

use clap::Subcommand;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::seg;
use crate::error::{CliError, Problem, read_text};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set stock from a CSV file with the header `sku,available`.
    Import {
        file: PathBuf,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
    },
}

/// A row: its line in the file (the header is line 1), SKU and quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub sku: String,
    pub available: u64,
}

/// Every row, or every problem: a file is sent only when all of it reads.
pub fn parse(text: &str) -> Result<Vec<Row>, Vec<Problem>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![Problem {
                at: "line 1".into(),
                message: e.to_string(),
            }]);
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(sku_col), Some(avail_col)) = (col("sku"), col("available")) else {
        return Err(vec![Problem {
            at: "line 1".into(),
            message: format!(
                "the header must name the columns sku and available, got {:?}",
                headers.iter().collect::<Vec<_>>()
            ),
        }]);
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let at = format!("line {line}");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem {
                    at,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let sku = record.get(sku_col).unwrap_or("").to_owned();
        if sku.is_empty() {
            problems.push(Problem {
                at,
                message: "sku is empty".into(),
            });
            continue;
        }
        if let Some(first) = seen.insert(sku.clone(), line) {
            problems.push(Problem {
                at,
                message: format!("SKU {sku} is on line {first} too"),
            });
            continue;
        }
        match record.get(avail_col).unwrap_or("").parse::<u64>() {
            Ok(available) => rows.push(Row {
                line,
                sku,
                available,
            }),
            Err(_) => problems.push(Problem {
                at,
                message: format!(
                    "available {:?} is not a whole number of units",
                    record.get(avail_col).unwrap_or("")
                ),
            }),
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

pub async fn run(cmd: Cmd, ctx: &Ctx) -> Result<(), CliError> {
    let Cmd::Import { file, parallel } = cmd;
    let rows = parse(&read_text(&file)?).map_err(|problems| CliError::Invalid {
        file: file.display().to_string(),
        problems,
    })?;
    let client = ctx.client()?;
    let bar = ctx.out.bar(
        rows.len() as u64,
        "setting stock {bar:40} {pos}/{len} SKUs ({eta})",
    );
    let results: Vec<(Row, Result<Value, CliError>)> = futures::stream::iter(rows)
        .map(|row| {
            let (client, bar) = (&client, bar.clone());
            async move {
                let r = client
                    .put(
                        &format!("skus/{}/stock", seg(&row.sku)),
                        json!({"available": row.available}),
                    )
                    .await;
                bar.inc(1);
                (row, r)
            }
        })
        .buffer_unordered(usize::from(parallel))
        .collect()
        .await;
    bar.finish_and_clear();
    let mut set = Vec::new();
    let mut refused = Vec::new();
    let mut first_refusal = None;
    for (row, r) in results {
        match r {
            Ok(_) => {
                set.push(json!({"line": row.line, "sku": row.sku, "available": row.available}))
            }
            Err(CliError::Refused {
                status,
                code,
                message,
                ..
            }) => {
                refused.push(json!({"line": row.line, "field": row.sku, "message": format!("{code}: {message}")}));
                first_refusal.get_or_insert((status, code));
            }
            // The stack is down or failing: what was set stays set, and a
            // second run sets the same values again.
            Err(other) => return Err(other),
        }
    }
    refused.sort_by_key(|r| r["line"].as_u64());
    if let Some((status, code)) = first_refusal {
        let message = format!(
            "{} of {} row(s) refused, {} set",
            refused.len(),
            refused.len() + set.len(),
            set.len()
        );
        return Err(CliError::Refused {
            status,
            code,
            message,
            body: json!({"set": set.len(), "errors": refused.clone()}),
            errors: Some(Value::Array(refused)),
        });
    }
    let answer = json!({"set": set.len()});
    ctx.out
        .emit(&answer, || format!("set the stock of {} SKU(s)", set.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_named() {
        let rows = parse("sku,available\nTEE,5\nJACKET, 12 \n").unwrap();
        assert_eq!(
            rows[1],
            Row {
                line: 3,
                sku: "JACKET".into(),
                available: 12
            }
        );
        let problems = parse("sku,available\nTEE,-1\n,3\nTEE,4\nCAP,2\nCAP,x\n").unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(at, ["line 2", "line 3", "line 4", "line 6"], "{problems:?}");
        assert!(parse("code,qty\n").is_err());
    }
}
