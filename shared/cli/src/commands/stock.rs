//! `tiers stock import FILE`: stock for many SKUs.
//!
//! - A file with the header `sku,on_hand` (a snapshot) or `sku,delta` (what
//!   changed, with `--sync-id`) is the ERP's sync: it goes to
//!   `POST /v1/admin/stock:sync`, which checks it whole against the book and
//!   what orders hold and changes nothing when a line is bad. A file above
//!   the endpoint's 2,000 lines goes in parts of 2,000, each checked whole
//!   by the API; a part refused stops the run, and the parts before it stay
//!   applied (a delta part resent with the same sync id applies nothing
//!   twice).
//! - A file with the header `sku,available` (free beside what orders hold,
//!   as integrations counted before stock was kept by tier) sets one SKU a
//!   request (`PUT /v1/admin/skus/{sku}/stock`), a few at once; rows the API
//!   refuses are listed at the end (exit 1).
//!
//! Either way the file is checked first (exit 4 with every bad line, nothing
//! sent).

use std::path::PathBuf;

use clap::Subcommand;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::seg;
use crate::error::{CliError, Problem, read_text};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Set stock from a CSV file with the header `sku,on_hand`, `sku,delta`
    /// or `sku,available`.
    Import {
        file: PathBuf,
        /// Requests in flight at once (`sku,available` files).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
        /// The ERP's id of a delta file: its deltas apply once.
        #[arg(long)]
        sync_id: Option<String>,
    },
}

/// Lines the sync endpoint takes in one request.
pub const SYNC_PART: usize = 2_000;

/// What a file's header says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sku,on_hand` or `sku,delta`: the ERP's sync.
    Sync { delta: bool },
    /// `sku,available`: one count a SKU.
    Available,
}

/// The kind of file `text` is, by its header.
pub fn kind(text: &str) -> Option<Kind> {
    let header = text.lines().next()?.trim_start_matches('\u{feff}');
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| columns.iter().any(|c| c == name);
    if !has("sku") {
        return None;
    }
    match (has("on_hand"), has("delta"), has("available")) {
        (true, false, false) => Some(Kind::Sync { delta: false }),
        (false, true, false) => Some(Kind::Sync { delta: true }),
        (false, false, true) => Some(Kind::Available),
        _ => None,
    }
}

/// A part of a sync file as sent: the file line of each of its rows, and
/// the body (the header as the API spells it, then `sku,value` a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub lines: Vec<usize>,
    pub body: String,
}

/// A sync file's rows, checked as the API will (a SKU, a whole number, no
/// SKU twice), so that a malformed file sends nothing; in parts the
/// endpoint takes.
pub fn sync_parts(text: &str, delta: bool) -> Result<Vec<Part>, Vec<Problem>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim_start_matches('\u{feff}');
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let value_name = if delta { "delta" } else { "on_hand" };
    let sku_col = columns.iter().position(|c| c == "sku");
    let value_col = columns.iter().position(|c| c == value_name);
    let (Some(sku_col), Some(value_col)) = (sku_col, value_col) else {
        return Err(vec![Problem {
            at: "line 1".into(),
            message: format!("the header must name the columns sku and {value_name}"),
        }]);
    };
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut rows: Vec<(usize, String)> = Vec::new();
    for (i, raw) in lines.enumerate() {
        let line = i + 2;
        if raw.trim().is_empty() {
            continue;
        }
        let at = format!("line {line}");
        let cells: Vec<&str> = raw.split(',').map(str::trim).collect();
        let sku = cells.get(sku_col).copied().unwrap_or("");
        let value = cells.get(value_col).copied().unwrap_or("");
        if sku.is_empty() {
            problems.push(Problem {
                at,
                message: "sku is empty".into(),
            });
            continue;
        }
        if let Some(first) = seen.insert(sku.to_owned(), line) {
            problems.push(Problem {
                at,
                message: format!("SKU {sku} is on line {first} too"),
            });
            continue;
        }
        let whole = if delta {
            value.parse::<i64>().is_ok()
        } else {
            value.parse::<u64>().is_ok()
        };
        if !whole {
            problems.push(Problem {
                at,
                message: format!("{value_name} {value:?} is not a whole number of units"),
            });
            continue;
        }
        rows.push((line, format!("{sku},{value}")));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(rows
        .chunks(SYNC_PART)
        .map(|part| {
            let mut body = format!("sku,{value_name}\n");
            for (_, row) in part {
                body.push_str(row);
                body.push('\n');
            }
            Part {
                lines: part.iter().map(|(line, _)| *line).collect(),
                body,
            }
        })
        .collect())
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
    let Cmd::Import {
        file,
        parallel,
        sync_id,
    } = cmd;
    let text = read_text(&file)?;
    let invalid = |problems| CliError::Invalid {
        file: file.display().to_string(),
        problems,
    };
    match kind(&text) {
        Some(Kind::Sync { delta }) => {
            if delta && sync_id.is_none() {
                return Err(CliError::usage(
                    "a delta file needs --sync-id: the ERP's id of the file, so that sending it again applies nothing twice",
                ));
            }
            let parts = sync_parts(&text, delta).map_err(invalid)?;
            return sync(ctx, parts, delta, sync_id).await;
        }
        Some(Kind::Available) => {}
        None => {
            return Err(invalid(vec![Problem {
                at: "line 1".into(),
                message: "the header must be sku,on_hand (a snapshot), sku,delta (deltas, with --sync-id) or sku,available".into(),
            }]));
        }
    }
    let rows = parse(&text).map_err(invalid)?;
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

/// Sends a sync file's parts in order; a refused part stops the run, its
/// bad lines renumbered as the file's.
async fn sync(
    ctx: &Ctx,
    parts: Vec<Part>,
    delta: bool,
    sync_id: Option<String>,
) -> Result<(), CliError> {
    let client = ctx.client()?;
    let mode = if delta { "delta" } else { "snapshot" };
    let path = format!(
        "stock:sync{}",
        crate::client::query(&[("mode", Some(mode.to_owned())), ("sync_id", sync_id)])
    );
    let (mut lines, mut changed, mut already) = (0u64, 0u64, 0u64);
    let total = parts.len();
    for (n, Part { lines: rows, body }) in parts.into_iter().enumerate() {
        let answer = client
            .call(
                reqwest::Method::POST,
                &path,
                crate::client::Payload::Raw {
                    content_type: "text/csv",
                    bytes: body.into_bytes(),
                },
            )
            .await;
        match answer {
            Ok(a) => {
                lines += a["lines"].as_u64().unwrap_or(0);
                changed += a["changed"].as_u64().unwrap_or(0);
                already += a["already_applied"].as_u64().unwrap_or(0);
            }
            Err(CliError::Refused {
                status,
                code,
                message,
                errors,
                body,
            }) => {
                // The API numbers a part's lines from its header (line 1):
                // its line l is the part's row l - 2, on the file line kept.
                let errors = errors.map(|e| {
                    let mut e = e;
                    for row in e.as_array_mut().into_iter().flatten() {
                        let at = row["line"].as_u64().and_then(|l| l.checked_sub(2));
                        if let Some(file_line) = at.and_then(|i| rows.get(i as usize)) {
                            row["line"] = (*file_line as u64).into();
                        }
                    }
                    e
                });
                let message = if n == 0 {
                    message
                } else {
                    format!(
                        "part {} of {total} refused, parts before it applied: {message}",
                        n + 1
                    )
                };
                return Err(CliError::Refused {
                    status,
                    code,
                    message,
                    errors,
                    body,
                });
            }
            Err(other) => return Err(other),
        }
    }
    let answer = json!({"lines": lines, "changed": changed, "already_applied": already});
    ctx.out.emit(&answer, || {
        format!("synced {lines} SKU(s): {changed} changed, {already} applied before")
    });
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

    #[test]
    fn the_header_says_what_a_file_is_and_sync_files_go_in_parts() {
        assert_eq!(kind("sku,on_hand\n"), Some(Kind::Sync { delta: false }));
        assert_eq!(
            kind("\u{feff}SKU, Delta\n"),
            Some(Kind::Sync { delta: true })
        );
        assert_eq!(kind("sku,available\n"), Some(Kind::Available));
        assert_eq!(kind("sku,on_hand,delta\n"), None);
        assert_eq!(kind("code,qty\n"), None);

        let problems = sync_parts("sku,delta\nTEE,-3\nTEE,1\nCAP,x\n,2\n", true).unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(at, ["line 3", "line 4", "line 5"], "{problems:?}");
        assert!(sync_parts("sku,on_hand\nTEE,-3\n", false).is_err());

        let mut file = String::from("sku,on_hand\n");
        for i in 0..(SYNC_PART + 5) {
            file.push_str(&format!("S{i},{i}\n"));
        }
        let parts = sync_parts(&file, false).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1].lines[0],
            SYNC_PART + 2,
            "the file line the second part starts on"
        );
        assert!(parts[1].body.starts_with("sku,on_hand\nS2000,2000\n"));
        assert_eq!(parts[1].body.lines().count(), 6);

        // Blank lines and a header in another case: each row keeps its file
        // line, and the body speaks the API's header.
        let parts = sync_parts("SKU, Delta\nTEE,1\n\nCAP, -2\n", true).unwrap();
        assert_eq!(parts[0].lines, vec![2, 4]);
        assert_eq!(parts[0].body, "sku,delta\nTEE,1\nCAP,-2\n");
    }
}
