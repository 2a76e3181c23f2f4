//! A stock sync from the brand's ERP: every SKU's count (a snapshot) or
//! what changed (deltas), as CSV or JSON. A file is read whole first, and
//! every bad line is named, so that a rejected file changes nothing.
//!
//! ```text
//! sku,on_hand            sku,delta
//! TEE-WHITE,5000         TEE-WHITE,-12
//! JACKET-DOWN,40         JACKET-DOWN,30
//! ```
//!
//! `{"mode": "snapshot", "lines": [{"sku": "TEE-WHITE", "on_hand": 5000}]}`;
//! deltas are `{"sku", "delta"}`, with a `sync_id`. A delta file is applied
//! once per `sync_id` and SKU, so that an ERP resending it changes nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::Sku;
use crate::pricing::RowError;

/// The most lines one file takes (applied 25 at a time, a file stays well
/// inside the function's 10 s), and the most units one line names.
pub const MAX_LINES: usize = 2_000;
pub const MAX_UNITS: i64 = 1_000_000_000;
const MAX_SYNC_ID_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Each line is the SKU's count on hand.
    Snapshot,
    /// Each line is added to what is on hand (negative: taken off).
    Delta,
}

impl SyncMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "snapshot" => Some(SyncMode::Snapshot),
            "delta" => Some(SyncMode::Delta),
            _ => None,
        }
    }

    /// The column (CSV) or field (JSON) a line's number is in.
    pub fn field(self) -> &'static str {
        match self {
            SyncMode::Snapshot => "on_hand",
            SyncMode::Delta => "delta",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLine {
    /// CSV line number, or JSON line number from 1.
    pub line: usize,
    pub sku: Sku,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFile {
    pub mode: SyncMode,
    pub sync_id: String,
    pub lines: Vec<SyncLine>,
}

fn problem(line: usize, field: &str, message: impl Into<String>) -> RowError {
    RowError {
        line,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A delta file needs its sync id (what makes a resent file change
/// nothing); a snapshot may name one.
fn check_id(mode: SyncMode, sync_id: &str) -> Option<RowError> {
    let missing = sync_id.trim().is_empty() && mode == SyncMode::Delta;
    (missing || sync_id.chars().count() > MAX_SYNC_ID_CHARS).then(|| {
        problem(
            0,
            "sync_id",
            format!("a delta sync needs a sync id of 1 to {MAX_SYNC_ID_CHARS} characters"),
        )
    })
}

/// Reads one line's SKU and number, and whether the SKU came before.
fn read_line(
    mode: SyncMode,
    line: usize,
    sku: &str,
    number: Result<i64, String>,
    seen: &mut BTreeSet<Sku>,
    problems: &mut Vec<RowError>,
) -> Option<SyncLine> {
    let sku = match Sku::parse(sku.trim()) {
        Ok(s) => s,
        Err(e) => {
            problems.push(problem(line, "sku", e.to_string()));
            return None;
        }
    };
    if !seen.insert(sku.clone()) {
        problems.push(problem(
            line,
            "sku",
            format!("SKU {sku} is on an earlier line too"),
        ));
        return None;
    }
    let field = mode.field();
    let value = match number {
        Ok(v) => v,
        Err(e) => {
            problems.push(problem(line, field, e));
            return None;
        }
    };
    let bad = match mode {
        SyncMode::Snapshot => !(0..=MAX_UNITS).contains(&value),
        SyncMode::Delta => value == 0 || value.abs() > MAX_UNITS,
    };
    if bad {
        let range = match mode {
            SyncMode::Snapshot => format!("a whole number from 0 to {MAX_UNITS}"),
            SyncMode::Delta => {
                format!("a whole number other than 0, at most {MAX_UNITS} either way")
            }
        };
        problems.push(problem(line, field, format!("{value}: must be {range}")));
        return None;
    }
    Some(SyncLine { line, sku, value })
}

fn whole(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| format!("{raw:?} is not a whole number"))
}

fn finish(
    mode: SyncMode,
    sync_id: String,
    lines: Vec<SyncLine>,
    mut problems: Vec<RowError>,
) -> Result<SyncFile, Vec<RowError>> {
    if lines.is_empty() && problems.is_empty() {
        problems.push(problem(0, "lines", "the file has no lines"));
    }
    if lines.len() > MAX_LINES {
        problems.push(problem(0, "lines", format!("at most {MAX_LINES} lines")));
    }
    if problems.is_empty() {
        Ok(SyncFile {
            mode,
            sync_id,
            lines,
        })
    } else {
        Err(problems)
    }
}

impl SyncFile {
    /// A CSV file with the header `sku,on_hand` (snapshot) or `sku,delta`:
    /// the header says which, unless `mode` does.
    pub fn from_csv(
        text: &str,
        mode: Option<SyncMode>,
        sync_id: &str,
    ) -> Result<Self, Vec<RowError>> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let says_delta = reader
            .headers()
            .ok()
            .is_some_and(|h| h.iter().any(|c| c == SyncMode::Delta.field()));
        let mode = mode.unwrap_or(if says_delta {
            SyncMode::Delta
        } else {
            SyncMode::Snapshot
        });
        let mut problems: Vec<RowError> = check_id(mode, sync_id).into_iter().collect();
        let field = mode.field();
        let columns = reader.headers().ok().and_then(|h| {
            Some((
                h.iter().position(|c| c == "sku")?,
                h.iter().position(|c| c == field)?,
            ))
        });
        let Some((sku_col, value_col)) = columns else {
            problems.push(problem(
                1,
                "header",
                format!("the header must name sku and {field}"),
            ));
            return Err(problems);
        };
        let (mut lines, mut seen) = (Vec::new(), BTreeSet::new());
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            match record {
                Ok(r) => {
                    let number = whole(r.get(value_col).unwrap_or(""));
                    let sku = r.get(sku_col).unwrap_or("");
                    lines.extend(read_line(mode, line, sku, number, &mut seen, &mut problems));
                }
                Err(e) => problems.push(problem(line, "line", e.to_string())),
            }
        }
        finish(mode, sync_id.to_owned(), lines, problems)
    }

    /// `{"mode", "sync_id", "lines": [{"sku", "on_hand" | "delta"}]}`.
    pub fn from_json(doc: &Value) -> Result<Self, Vec<RowError>> {
        let mut problems = Vec::new();
        let Some(obj) = doc.as_object() else {
            return Err(vec![problem(0, "document", "must be a JSON object")]);
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !["mode", "sync_id", "lines"].contains(&k.as_str()))
        {
            problems.push(problem(0, extra, "unknown field"));
        }
        let Some(mode) = obj
            .get("mode")
            .and_then(Value::as_str)
            .and_then(SyncMode::parse)
        else {
            problems.push(problem(0, "mode", "must be snapshot or delta"));
            return Err(problems);
        };
        let sync_id = obj.get("sync_id").and_then(Value::as_str).unwrap_or("");
        problems.extend(check_id(mode, sync_id));
        let Some(rows) = obj.get("lines").and_then(Value::as_array) else {
            problems.push(problem(0, "lines", "must be an array"));
            return Err(problems);
        };
        let field = mode.field();
        let (mut lines, mut seen) = (Vec::new(), BTreeSet::new());
        for (i, row) in rows.iter().enumerate() {
            let line = i + 1;
            let Some(row) = row.as_object() else {
                problems.push(problem(line, "line", "must be an object"));
                continue;
            };
            if let Some(extra) = row.keys().find(|k| *k != "sku" && *k != field) {
                problems.push(problem(
                    line,
                    extra,
                    format!("unknown field (a {mode:?} line has sku and {field})"),
                ));
                continue;
            }
            let number = match row.get(field) {
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| format!("{v} is not a whole number")),
                None => Err(format!("{field} is missing")),
            };
            let sku = row.get("sku").and_then(Value::as_str).unwrap_or("");
            lines.extend(read_line(mode, line, sku, number, &mut seen, &mut problems));
        }
        finish(mode, sync_id.to_owned(), lines, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_whole_and_every_bad_line_named() {
        let ok =
            SyncFile::from_csv("sku,on_hand\nTEE-WHITE,5000\nJACKET-DOWN, 40\n", None, "").unwrap();
        assert_eq!(ok.lines.len(), 2);
        assert_eq!(ok.lines[1].value, 40);
        let bad = SyncFile::from_csv(
            "sku,delta\nTEE-WHITE,-3\nTEE-WHITE,2\nA#B,1\nHOODIE-GREY,0\nJACKET-DOWN,1.5\n",
            None,
            "d1",
        )
        .unwrap_err();
        let named: Vec<(usize, &str)> = bad.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(named, [(3, "sku"), (4, "sku"), (5, "delta"), (6, "delta")]);
        assert!(SyncFile::from_csv("sku,on_hand\n", None, "s").is_err());
        assert!(SyncFile::from_csv("sku,count\nA,1\n", None, "s").is_err());
        assert!(
            SyncFile::from_csv("sku,delta\nA,1\n", None, " ").is_err(),
            "a delta needs its id"
        );
        assert!(SyncFile::from_csv("sku,delta\nA,1\n", Some(SyncMode::Snapshot), "s").is_err());

        let json = serde_json::json!({"mode": "delta", "sync_id": "d2", "lines": [
            {"sku": "TEE-WHITE", "delta": -2}, {"sku": "JACKET-DOWN", "on_hand": 3}, {"sku": "X", "delta": "4"}
        ]});
        let bad = SyncFile::from_json(&json).unwrap_err();
        let named: Vec<(usize, &str)> = bad.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(named, [(2, "on_hand"), (3, "delta")]);
        let ok = SyncFile::from_json(
            &serde_json::json!({"mode": "snapshot", "sync_id": "s", "lines": [{"sku": "A", "on_hand": 0}]}),
        );
        assert_eq!(ok.unwrap().lines[0].value, 0);
    }
}
