//! Money and ids read from JSON exactly.
//!
//! The platforms mix strings and numbers for the same field (Shopify's
//! `refund_line_items[].subtotal` is `195.66` in a webhook and `"195.67"`
//! in the REST client; 有赞 sends `"0.01"` beside `1`). Both are read from
//! the text the platform sent: a number goes through
//! [`serde_json::value::RawValue`], never through `f64`.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::value::RawValue;
use std::str::FromStr;

/// A decimal written as a JSON string or number: `"19.90"`, `19.9`, `199`,
/// `1.5e2`. Refuses `null`, booleans, empty strings and values no
/// [`Decimal`] holds.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let raw: &RawValue = Deserialize::deserialize(d)?;
    decimal_from_raw(raw.get()).map_err(de::Error::custom)
}

/// As [`decimal`], but `null` or an absent field is `None`.
pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let raw: Option<&RawValue> = Deserialize::deserialize(d)?;
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) => decimal_from_raw(text).map(Some).map_err(de::Error::custom),
    }
}

/// The decimal a JSON value's text denotes: a number's digits, or a
/// string's content in the same notation (surrounding spaces allowed, as
/// 有赞 sometimes pads).
pub fn decimal_from_raw(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    let content: String;
    let digits = if text.starts_with('"') {
        content = serde_json::from_str(text).map_err(|e| format!("{text}: {e}"))?;
        content.trim()
    } else {
        text
    };
    let well_formed = digits
        .strip_prefix('-')
        .unwrap_or(digits)
        .starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    if !well_formed {
        return Err(format!("{text} is not a decimal"));
    }
    let parsed = if digits.contains(['e', 'E']) {
        Decimal::from_scientific(digits).ok()
    } else {
        Decimal::from_str(digits).ok()
    };
    parsed.ok_or_else(|| format!("{text} does not fit a decimal"))
}

/// An id written as a JSON string or an integer, kept as its text: an
/// integer past 2^53 keeps every digit. A number in any other notation
/// (`8.9e17`, `1.5`) is refused: it is not an id the platform issued.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw: &RawValue = Deserialize::deserialize(d)?;
    id_from_raw(raw.get()).map_err(de::Error::custom)
}

/// As [`id`], but `null` or an absent field is `None`.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<&RawValue> = Deserialize::deserialize(d)?;
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some(text) => id_from_raw(text).map(Some).map_err(de::Error::custom),
    }
}

pub fn id_from_raw(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| format!("{text}: {e}"))?;
        if s.is_empty() {
            return Err("an id may not be empty".into());
        }
        Ok(s)
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text} is not an id (a string or an integer)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn numbers_and_strings_read_exactly() {
        assert_eq!(decimal_from_raw("195.66"), Ok(dec("195.66")));
        assert_eq!(decimal_from_raw("199"), Ok(dec("199")));
        assert_eq!(decimal_from_raw("\"195.67\""), Ok(dec("195.67")));
        assert_eq!(decimal_from_raw("\" 0.01 \""), Ok(dec("0.01")));
        assert_eq!(decimal_from_raw("1.5e2"), Ok(dec("150")));
        assert_eq!(decimal_from_raw("-3.98"), Ok(dec("-3.98")));
        // 0.1 + 0.2 through f64 is 0.30000000000000004: not here.
        assert_eq!(decimal_from_raw("0.30"), Ok(dec("0.30")));
    }

    #[test]
    fn what_is_not_a_decimal_is_refused() {
        for bad in [
            "null",
            "true",
            "\"\"",
            "\"abc\"",
            "[1]",
            "{}",
            "\"1_000\"",
            "\".5\"",
            "1e400",
            "99999999999999999999999999999999",
        ] {
            assert!(decimal_from_raw(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_keep_every_digit() {
        assert_eq!(
            id_from_raw("820982911946154508").unwrap(),
            "820982911946154508"
        );
        assert_eq!(
            id_from_raw("18446744073709551616999").unwrap(),
            "18446744073709551616999"
        );
        assert_eq!(id_from_raw("\"E20201231\"").unwrap(), "E20201231");
        for bad in ["8.9e17", "1.5", "-1", "\"\"", "null", "true"] {
            assert!(id_from_raw(bad).is_err(), "{bad}");
        }
    }
}
