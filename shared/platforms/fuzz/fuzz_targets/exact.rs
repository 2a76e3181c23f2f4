//! The readers every platform module shares: `exact::decimal_from_raw` and
//! `exact::id_from_raw` on a JSON value's text, and
//! `Region::from_china_province` on a province as a buyer typed it. The
//! input is that text, any UTF-8.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use tier_platforms::Region;
use tier_platforms::exact::{decimal_from_raw, id_from_raw};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    decimal(text);
    id(text);
    province(text);
});

fn decimal(text: &str) {
    let read = decimal_from_raw(text);
    assert_eq!(read, decimal_from_raw(text));
    // Space around a value is not part of it.
    assert_eq!(
        read.as_ref().ok(),
        decimal_from_raw(&format!(" {text}\n")).as_ref().ok()
    );
    let Ok(value) = read else { return };

    // The value prints as a decimal that reads back as itself.
    assert_eq!(decimal_from_raw(&value.to_string()), Ok(value), "{text:?}");

    let trimmed = text.trim();
    let digits = match trimmed.strip_prefix('"') {
        Some(_) => serde_json::from_str::<String>(trimmed)
            .expect("a JSON string")
            .trim()
            .to_owned(),
        None => {
            // A number and the string of the same digits are one amount
            // (the platforms send both for one field).
            assert_eq!(
                decimal_from_raw(&format!("\"{trimmed}\"")),
                Ok(value),
                "{text:?}"
            );
            trimmed.to_owned()
        }
    };
    // The sign is the numeral's: `-` leads a negative one and nothing else.
    if digits.starts_with('-') {
        assert!(value <= Decimal::ZERO, "{text:?} read as {value}");
    } else {
        assert!(value >= Decimal::ZERO, "{text:?} read as {value}");
    }
}

fn id(text: &str) {
    let read = id_from_raw(text);
    assert_eq!(read, id_from_raw(text));
    let Ok(id) = read else { return };
    assert!(!id.is_empty(), "an id is never empty");
    let trimmed = text.trim();
    if !trimmed.starts_with('"') {
        // An integer id keeps every digit as sent.
        assert_eq!(id, trimmed);
    }
}

fn province(text: &str) {
    let region = Region::from_china_province(text);
    // Case and surrounding space do not matter. One rewriting per input,
    // each lookup reading the whole table: the fuzzer reaches all three.
    let rewritten = match text.len() % 3 {
        0 => format!("  {text}\t"),
        1 => text.to_ascii_uppercase(),
        _ => text.to_ascii_lowercase(),
    };
    assert_eq!(region, Region::from_china_province(&rewritten), "{text:?}");
    if let Some(region) = region {
        // An ISO 3166-2:CN code: `CN-` and two capitals.
        let code = region.code();
        let letters = code.strip_prefix("CN-").unwrap_or_else(|| panic!("{code}"));
        assert!(
            letters.len() == 2 && letters.bytes().all(|b| b.is_ascii_uppercase()),
            "{text:?} gave {code}"
        );
    }
}
