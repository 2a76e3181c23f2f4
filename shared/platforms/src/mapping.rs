//! A store's SKU mapping, as the brand publishes it: which of our SKUs each
//! platform SKU code or variant id is.
//!
//! CSV with a header `platform_sku,sku`, or JSON
//! `{"mappings": [{"platform_sku": "...", "sku": "..."}]}`. Every row is
//! checked and every problem reported with its line (CSV) or row number
//! (JSON, from 1); a mapping with any problem is refused whole, as a price
//! book is, so a store never runs on half of one.

use std::collections::BTreeMap;

use serde::Deserialize;
use tier_domain::ids::Sku;
use tier_domain::pricing::RowError;

/// Keys of DynamoDB items stay far below 1 KiB.
pub const MAX_PLATFORM_SKU_BYTES: usize = 255;
/// Far above a real store's catalogue; one publication stays bounded.
pub const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    pub line: usize,
    pub platform_sku: String,
    pub sku: Sku,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    platform_sku: Option<String>,
    sku: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDoc {
    mappings: Vec<RawRow>,
}

fn problem(line: usize, field: &str, message: impl Into<String>) -> RowError {
    RowError {
        line,
        field: field.into(),
        message: message.into(),
    }
}

fn check_row(line: usize, raw: RawRow, errors: &mut Vec<RowError>) -> Option<MappingRow> {
    let platform_sku = raw
        .platform_sku
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut ok = true;
    if platform_sku.is_empty() {
        errors.push(problem(line, "platform_sku", "required"));
        ok = false;
    } else if platform_sku.len() > MAX_PLATFORM_SKU_BYTES {
        errors.push(problem(
            line,
            "platform_sku",
            format!("longer than {MAX_PLATFORM_SKU_BYTES} bytes"),
        ));
        ok = false;
    }
    let sku = match Sku::parse(raw.sku.as_deref().map(str::trim).unwrap_or_default()) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(problem(line, "sku", e.to_string()));
            None
        }
    };
    match (ok, sku) {
        (true, Some(sku)) => Some(MappingRow {
            line,
            platform_sku,
            sku,
        }),
        _ => None,
    }
}

/// The rows of a CSV mapping (line numbers count the header as 1).
pub fn parse_csv(text: &str) -> Result<Vec<MappingRow>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![problem(1, "header", e.to_string())])?
        .clone();
    for h in &headers {
        if !matches!(h, "platform_sku" | "sku") {
            return Err(vec![problem(
                1,
                "header",
                format!("unknown column {h:?}; the columns are platform_sku,sku"),
            )]);
        }
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.deserialize::<RawRow>().enumerate() {
        let line = i + 2;
        match record {
            Ok(raw) => rows.extend(check_row(line, raw, &mut errors)),
            Err(e) => errors.push(problem(line, "row", e.to_string())),
        }
        if rows.len() + errors.len() > MAX_ENTRIES {
            return Err(vec![problem(
                0,
                "mappings",
                format!("more than {MAX_ENTRIES} rows"),
            )]);
        }
    }
    finish(rows, errors)
}

/// The rows of a JSON mapping.
pub fn parse_json(text: &str) -> Result<Vec<MappingRow>, Vec<RowError>> {
    let doc: JsonDoc =
        serde_json::from_str(text).map_err(|e| vec![problem(0, "document", e.to_string())])?;
    if doc.mappings.len() > MAX_ENTRIES {
        return Err(vec![problem(
            0,
            "mappings",
            format!("more than {MAX_ENTRIES} rows"),
        )]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in doc.mappings.into_iter().enumerate() {
        rows.extend(check_row(i + 1, raw, &mut errors));
    }
    finish(rows, errors)
}

fn finish(
    rows: Vec<MappingRow>,
    mut errors: Vec<RowError>,
) -> Result<Vec<MappingRow>, Vec<RowError>> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        if let Some(earlier) = first.insert(&r.platform_sku, r.line) {
            errors.push(problem(
                r.line,
                "platform_sku",
                format!("{:?} is mapped on line {earlier} already", r.platform_sku),
            ));
            first.insert(&r.platform_sku, earlier);
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// The mapping, once every SKU it names is in the current price book
/// (`in_book`): an entry for a SKU no one can price would hold every order
/// of it anyway.
pub fn check_against_book(
    rows: Vec<MappingRow>,
    in_book: impl Fn(&Sku) -> bool,
) -> Result<BTreeMap<String, Sku>, Vec<RowError>> {
    let errors: Vec<RowError> = rows
        .iter()
        .filter(|r| !in_book(&r.sku))
        .map(|r| {
            problem(
                r.line,
                "sku",
                format!("{} is not in the current price book", r.sku),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(rows.into_iter().map(|r| (r.platform_sku, r.sku)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_give_the_same_mapping() {
        let csv = "platform_sku,sku\nTEE-W-M,TEE-WHITE\n 808950810 , JACKET-DOWN\n";
        let json = r#"{"mappings": [{"platform_sku": "TEE-W-M", "sku": "TEE-WHITE"},
                                     {"platform_sku": "808950810", "sku": "JACKET-DOWN"}]}"#;
        let a = check_against_book(parse_csv(csv).unwrap(), |_| true).unwrap();
        let b = check_against_book(parse_json(json).unwrap(), |_| true).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["808950810"].as_str(), "JACKET-DOWN");
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let csv = "platform_sku,sku\n,TEE\nA,not a sku\nB,TEE\nB,TEE2\n";
        let errors = parse_csv(csv).unwrap_err();
        let lines: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            lines,
            [(2, "platform_sku"), (3, "sku"), (5, "platform_sku")]
        );
        assert_eq!(parse_csv("code,sku\nA,B\n").unwrap_err()[0].field, "header");
        assert!(
            parse_json(r#"{"mappings": [{"platform_sku": "A", "sku": "B", "x": 1}]}"#).is_err()
        );
        let long = "x".repeat(MAX_PLATFORM_SKU_BYTES + 1);
        assert!(parse_csv(&format!("platform_sku,sku\n{long},TEE\n")).is_err());
    }

    #[test]
    fn a_sku_missing_from_the_book_refuses_the_mapping() {
        let rows = parse_csv("platform_sku,sku\nA,TEE\nB,GONE\n").unwrap();
        let errors = check_against_book(rows, |s| s.as_str() == "TEE").unwrap_err();
        assert_eq!((errors[0].line, errors[0].field.as_str()), (3, "sku"));
    }
}
