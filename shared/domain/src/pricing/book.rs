//! The price book: what a brand publishes, as CSV rows or JSON, validated
//! whole. A book with any bad row is refused whole, with every problem
//! reported by its line.
//!
//! # CSV
//! One header line, then one row per fact:
//!
//! ```text
//! type,sku,tier,distributor,min_qty,price,discount_pct
//! base,TEE-WHITE,,,,199.00,
//! floor,TEE-WHITE,,,,120.00,
//! tier_price,TEE-WHITE,gold,,,150.00,
//! override,TEE-WHITE,,d-shanghai,,140.00,
//! volume_break,TEE-WHITE,,,50,,3
//! ```
//!
//! # JSON
//! `{"rows": [{"type": "base", "sku": "TEE-WHITE", "price": "199.00"}, ...],
//!   "promotions": [{"id": "...", "name": "...", "skus": [..], "tiers": [..],
//!   "starts_at": "...", "ends_at": "...", "price" | "discount_pct": "...",
//!   "subsidy_pct": "2"}]}`. Rows are numbered from 1 in errors. Promotions
//! are published in JSON only.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DistributorId, RuleId, Sku, TierId};
use crate::money::{Money, Percent};

/// A bigger book is split: one row per fact keeps the limit generous.
pub const MAX_ROWS: usize = 50_000;
/// Overrides live in their SKU's item, which DynamoDB caps at 400 KB.
pub const MAX_OVERRIDES_PER_SKU: usize = 2_000;

/// A lower unit price from a quantity up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeBreak {
    pub min_qty: u32,
    pub discount_pct: Percent,
}

/// A dated promotion, exclusive to some tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    pub id: RuleId,
    pub name: String,
    /// Empty in the copy each SKU's entry keeps (see [`SkuBook::promotions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<Sku>,
    pub tiers: Vec<TierId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// A fixed promotional unit price ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    /// ... or a discount off the base price. Exactly one of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_pct: Option<Percent>,
    /// The marketing subsidy rate the brand grants with it, shown alongside.
    #[serde(default)]
    pub subsidy_pct: Percent,
}

impl Promotion {
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
}

/// Everything the book says about one SKU: what a lookup reads, in one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuBook {
    pub sku: Sku,
    pub base_price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_price: Option<Money>,
    #[serde(default)]
    pub tier_prices: BTreeMap<TierId, Money>,
    #[serde(default)]
    pub overrides: BTreeMap<DistributorId, Money>,
    /// Sorted by `min_qty`.
    #[serde(default)]
    pub volume_breaks: Vec<VolumeBreak>,
    /// The promotions that include this SKU, without their SKU lists: a
    /// store-wide promotion would otherwise put every SKU in every entry,
    /// making what a publication writes and a lookup reads grow with the
    /// square of the catalogue, and break the item size limit.
    #[serde(default)]
    pub promotions: Vec<Promotion>,
}

/// A validated book, before it gets its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceBookDraft {
    pub skus: BTreeMap<Sku, SkuBook>,
    pub promotions: Vec<Promotion>,
}

/// One problem, by row (CSV line number, or JSON row number from 1; 0 for
/// the document as a whole) and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RowType {
    Base,
    Floor,
    TierPrice,
    Override,
    VolumeBreak,
}

/// A row as written, every field optional until checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    distributor: String,
    #[serde(default)]
    min_qty: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    discount_pct: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBook {
    rows: Vec<RawRow>,
    #[serde(default)]
    promotions: Vec<Promotion>,
}

/// What the book may refer to: the tiers of the current rule set.
pub trait KnownTiers {
    fn has_tier(&self, tier: &TierId) -> bool;
}

impl KnownTiers for crate::rules::RuleSet {
    fn has_tier(&self, tier: &TierId) -> bool {
        self.tier_by_id(tier.as_str()).is_some()
    }
}

impl PriceBookDraft {
    pub fn from_csv(text: &str, tiers: &dyn KnownTiers) -> Result<Self, Vec<RowError>> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| {
                vec![RowError {
                    line: 1,
                    field: "header".into(),
                    message: e.to_string(),
                }]
            })?
            .clone();
        let expected = [
            "type",
            "sku",
            "tier",
            "distributor",
            "min_qty",
            "price",
            "discount_pct",
        ];
        if headers.iter().collect::<Vec<_>>() != expected {
            return Err(vec![RowError {
                line: 1,
                field: "header".into(),
                message: format!("the header must be {}", expected.join(",")),
            }]);
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for record in reader.records() {
            match record {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| p.line() as usize);
                    let get = |i: usize| r.get(i).unwrap_or("").to_owned();
                    rows.push((
                        line,
                        RawRow {
                            kind: get(0),
                            sku: get(1),
                            tier: get(2),
                            distributor: get(3),
                            min_qty: get(4),
                            price: get(5),
                            discount_pct: get(6),
                        },
                    ));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    errors.push(RowError {
                        line,
                        field: "row".into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        build(rows, Vec::new(), tiers)
    }

    pub fn from_json(text: &str, tiers: &dyn KnownTiers) -> Result<Self, Vec<RowError>> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let doc: JsonBook = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            // rows[3].price → row 4
            let line = path
                .strip_prefix("rows[")
                .and_then(|r| r.split(']').next())
                .and_then(|n| n.parse::<usize>().ok())
                .map_or(0, |n| n + 1);
            vec![RowError {
                line,
                field: path,
                message: e.into_inner().to_string(),
            }]
        })?;
        let rows = doc
            .rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect();
        build(rows, doc.promotions, tiers)
    }
}

fn build(
    rows: Vec<(usize, RawRow)>,
    promotions: Vec<Promotion>,
    tiers: &dyn KnownTiers,
) -> Result<PriceBookDraft, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut err = |line: usize, field: &str, message: String| {
        errors.push(RowError {
            line,
            field: field.into(),
            message,
        })
    };
    if rows.is_empty() {
        err(0, "rows", "a price book needs at least one base row".into());
    }
    if rows.len() > MAX_ROWS {
        err(
            0,
            "rows",
            format!("{} rows; at most {MAX_ROWS} per book", rows.len()),
        );
    }

    // First pass: parse each row on its own.
    struct Row {
        line: usize,
        kind: RowType,
        sku: Sku,
        tier: Option<TierId>,
        distributor: Option<DistributorId>,
        min_qty: Option<u32>,
        price: Option<Money>,
        discount: Option<Percent>,
    }
    let mut parsed = Vec::new();
    for (line, raw) in rows {
        let kind = match raw.kind.as_str() {
            "base" => RowType::Base,
            "floor" => RowType::Floor,
            "tier_price" => RowType::TierPrice,
            "override" => RowType::Override,
            "volume_break" => RowType::VolumeBreak,
            other => {
                err(
                    line,
                    "type",
                    format!(
                        "unknown row type {other:?}; use base, floor, tier_price, override or volume_break"
                    ),
                );
                continue;
            }
        };
        let sku = match Sku::parse(&raw.sku) {
            Ok(s) => s,
            Err(e) => {
                err(line, "sku", e.to_string());
                continue;
            }
        };
        let mut ok = true;
        let mut need = |field: &str, value: &str, wanted: bool| {
            if wanted && value.is_empty() {
                err(line, field, format!("a {} row needs {field}", raw.kind));
                ok = false;
            } else if !wanted && !value.is_empty() {
                err(line, field, format!("a {} row takes no {field}", raw.kind));
                ok = false;
            }
        };
        need("tier", &raw.tier, kind == RowType::TierPrice);
        need("distributor", &raw.distributor, kind == RowType::Override);
        need("min_qty", &raw.min_qty, kind == RowType::VolumeBreak);
        need("price", &raw.price, kind != RowType::VolumeBreak);
        need(
            "discount_pct",
            &raw.discount_pct,
            kind == RowType::VolumeBreak,
        );
        if !ok {
            continue;
        }
        let tier = (!raw.tier.is_empty()).then(|| TierId::parse(&raw.tier));
        let tier = match tier.transpose() {
            Ok(Some(t)) if !tiers.has_tier(&t) => {
                err(
                    line,
                    "tier",
                    format!("tier {t} is not in the current rule set"),
                );
                continue;
            }
            Ok(t) => t,
            Err(e) => {
                err(line, "tier", e.to_string());
                continue;
            }
        };
        let distributor = match (!raw.distributor.is_empty())
            .then(|| DistributorId::parse(&raw.distributor))
            .transpose()
        {
            Ok(d) => d,
            Err(e) => {
                err(line, "distributor", e.to_string());
                continue;
            }
        };
        let price = match (!raw.price.is_empty())
            .then(|| Money::parse(&raw.price))
            .transpose()
        {
            Ok(Some(p)) if p.is_negative() || p.is_zero() => {
                err(line, "price", format!("price {p} must be positive"));
                continue;
            }
            Ok(p) => p,
            Err(e) => {
                err(line, "price", e.to_string());
                continue;
            }
        };
        let min_qty = match (!raw.min_qty.is_empty())
            .then(|| raw.min_qty.parse::<u32>())
            .transpose()
        {
            Ok(Some(q)) if q < 2 => {
                err(line, "min_qty", "a volume break starts at 2 or more".into());
                continue;
            }
            Ok(q) => q,
            Err(_) => {
                err(
                    line,
                    "min_qty",
                    format!("{:?} is not a whole number", raw.min_qty),
                );
                continue;
            }
        };
        let discount = match (!raw.discount_pct.is_empty())
            .then(|| Percent::parse(&raw.discount_pct))
            .transpose()
        {
            Ok(Some(d)) if d.is_zero() || d.value() >= rust_decimal::Decimal::ONE_HUNDRED => {
                err(
                    line,
                    "discount_pct",
                    "a discount is above 0 and below 100".into(),
                );
                continue;
            }
            Ok(d) => d,
            Err(e) => {
                err(line, "discount_pct", e.to_string());
                continue;
            }
        };
        parsed.push(Row {
            line,
            kind,
            sku,
            tier,
            distributor,
            min_qty,
            price,
            discount,
        });
    }

    // Second pass: duplicates, and assembly per SKU from the base rows.
    let mut seen: HashMap<(RowType, Sku, String), usize> = HashMap::new();
    let mut books: BTreeMap<Sku, SkuBook> = BTreeMap::new();
    for r in parsed.iter().filter(|r| r.kind == RowType::Base) {
        books.insert(
            r.sku.clone(),
            SkuBook {
                sku: r.sku.clone(),
                base_price: r.price.expect("checked"),
                floor_price: None,
                tier_prices: BTreeMap::new(),
                overrides: BTreeMap::new(),
                volume_breaks: Vec::new(),
                promotions: Vec::new(),
            },
        );
    }
    for r in &parsed {
        let slot = match r.kind {
            RowType::TierPrice => r.tier.as_ref().map(ToString::to_string),
            RowType::Override => r.distributor.as_ref().map(ToString::to_string),
            RowType::VolumeBreak => r.min_qty.map(|q| q.to_string()),
            RowType::Base | RowType::Floor => None,
        }
        .unwrap_or_default();
        if let Some(first) = seen.insert((r.kind, r.sku.clone(), slot), r.line) {
            err(r.line, "row", format!("duplicate of line {first}"));
            continue;
        }
        let Some(book) = books.get_mut(&r.sku) else {
            err(
                r.line,
                "sku",
                format!("unknown SKU {}: the book has no base row for it", r.sku),
            );
            continue;
        };
        match r.kind {
            RowType::Base => {}
            RowType::Floor => book.floor_price = r.price,
            RowType::TierPrice => {
                book.tier_prices
                    .insert(r.tier.clone().expect("checked"), r.price.expect("checked"));
            }
            RowType::Override => {
                book.overrides.insert(
                    r.distributor.clone().expect("checked"),
                    r.price.expect("checked"),
                );
            }
            RowType::VolumeBreak => book.volume_breaks.push(VolumeBreak {
                min_qty: r.min_qty.expect("checked"),
                discount_pct: r.discount.expect("checked"),
            }),
        }
    }

    // Third pass: nothing fixed below the floor. Reported on the row that
    // sets the low price.
    for r in &parsed {
        let Some(book) = books.get(&r.sku) else {
            continue;
        };
        let (Some(floor), Some(price)) = (book.floor_price, r.price) else {
            continue;
        };
        if matches!(
            r.kind,
            RowType::Base | RowType::TierPrice | RowType::Override
        ) && price < floor
        {
            err(
                r.line,
                "price",
                format!("{price} is below the floor price {floor} of {}", r.sku),
            );
        }
    }
    for book in books.values_mut() {
        book.volume_breaks.sort_by_key(|b| b.min_qty);
        if book.overrides.len() > MAX_OVERRIDES_PER_SKU {
            err(
                0,
                "override",
                format!(
                    "{} has {} overrides; at most {MAX_OVERRIDES_PER_SKU}",
                    book.sku,
                    book.overrides.len()
                ),
            );
        }
    }

    // Promotions: well formed, about known things, never two at once for
    // the same SKU and tier.
    for (i, p) in promotions.iter().enumerate() {
        let field = |f: &str| format!("promotions[{i}].{f}");
        let mut perr = |f: &str, m: String| err(0, &field(f), m);
        if p.ends_at <= p.starts_at {
            perr(
                "ends_at",
                format!("promotion {} ends before it starts", p.id),
            );
        }
        if p.skus.is_empty() || p.tiers.is_empty() {
            perr(
                "skus",
                format!("promotion {} needs at least one SKU and one tier", p.id),
            );
        }
        match (p.price, p.discount_pct) {
            (Some(_), Some(_)) | (None, None) => perr(
                "price",
                format!(
                    "promotion {} needs exactly one of price and discount_pct",
                    p.id
                ),
            ),
            (Some(price), None) if price.is_negative() || price.is_zero() => perr(
                "price",
                format!("promotion {} price must be positive", p.id),
            ),
            _ => {}
        }
        for t in &p.tiers {
            if !tiers.has_tier(t) {
                perr("tiers", format!("tier {t} is not in the current rule set"));
            }
        }
        for s in &p.skus {
            match books.get(s) {
                None => perr(
                    "skus",
                    format!("unknown SKU {s}: the book has no base row for it"),
                ),
                Some(b) => {
                    if let (Some(floor), Some(price)) = (b.floor_price, p.price)
                        && price < floor
                    {
                        perr(
                            "price",
                            format!(
                                "promotion {} price {price} is below the floor price {floor} of {s}",
                                p.id
                            ),
                        );
                    }
                }
            }
        }
        for (j, q) in promotions.iter().enumerate().take(i) {
            let overlap_time = p.starts_at < q.ends_at && q.starts_at < p.ends_at;
            let shared_sku = p.skus.iter().find(|s| q.skus.contains(s));
            let shared_tier = p.tiers.iter().find(|t| q.tiers.contains(t));
            if let (true, Some(s), Some(t)) = (overlap_time, shared_sku, shared_tier) {
                perr(
                    "starts_at",
                    format!(
                        "promotion {} overlaps promotion {} (promotions[{j}]) for SKU {s} and tier {t}: one would have to win by chance",
                        p.id, q.id
                    ),
                );
            }
        }
        if promotions.iter().take(i).any(|q| q.id == p.id) {
            perr("id", format!("promotion id {} is used twice", p.id));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    for p in &promotions {
        let entry = Promotion {
            skus: Vec::new(),
            ..p.clone()
        };
        for s in &p.skus {
            books
                .get_mut(s)
                .expect("checked")
                .promotions
                .push(entry.clone());
        }
    }
    Ok(PriceBookDraft {
        skus: books,
        promotions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tiers;
    impl KnownTiers for Tiers {
        fn has_tier(&self, t: &TierId) -> bool {
            ["junior", "senior", "gold"].contains(&t.as_str())
        }
    }

    const HEADER: &str = "type,sku,tier,distributor,min_qty,price,discount_pct\n";

    #[test]
    fn a_good_csv_book() {
        let csv = format!(
            "{HEADER}base,TEE,,,,199.00,\nfloor,TEE,,,,120.00,\ntier_price,TEE,gold,,,150.00,\noverride,TEE,,d-1,,140.00,\nvolume_break,TEE,,,50,,3\nvolume_break,TEE,,,10,,1.5\nbase,CAP,,,,59.00,\n"
        );
        let book = PriceBookDraft::from_csv(&csv, &Tiers).unwrap();
        let tee = &book.skus[&Sku::parse("TEE").unwrap()];
        assert_eq!(tee.floor_price, Some(Money::parse("120").unwrap()));
        assert_eq!(
            tee.volume_breaks
                .iter()
                .map(|b| b.min_qty)
                .collect::<Vec<_>>(),
            [10, 50]
        );
        assert_eq!(book.skus.len(), 2);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = format!(
            "{HEADER}base,TEE,,,,199.00,\nbase,TEE,,,,189.00,\nbase,NEG,,,,-1.00,\ntier_price,TEE,platinum,,,150.00,\ntier_price,GHOST,gold,,,150.00,\nfloor,TEE,,,,160.00,\ntier_price,TEE,gold,,,150.00,\nweird,TEE,,,,1,\nvolume_break,TEE,,,1,,5\n"
        );
        let errors = PriceBookDraft::from_csv(&csv, &Tiers).unwrap_err();
        let by_line: Vec<(usize, &str)> =
            errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert!(by_line.contains(&(3, "row")), "duplicate base: {errors:?}");
        assert!(by_line.contains(&(4, "price")), "negative: {errors:?}");
        assert!(by_line.contains(&(5, "tier")), "unknown tier: {errors:?}");
        assert!(by_line.contains(&(6, "sku")), "unknown sku: {errors:?}");
        assert!(
            by_line.contains(&(8, "price")),
            "below the floor: {errors:?}"
        );
        assert!(by_line.contains(&(9, "type")), "unknown type: {errors:?}");
        assert!(by_line.contains(&(10, "min_qty")), "break at 1: {errors:?}");
        assert!(
            errors
                .iter()
                .find(|e| e.line == 8)
                .unwrap()
                .message
                .contains("floor")
        );
    }

    #[test]
    fn the_header_is_checked() {
        let errors = PriceBookDraft::from_csv("sku,price\nTEE,1\n", &Tiers).unwrap_err();
        assert_eq!(errors[0].line, 1);
    }

    #[test]
    fn json_rows_are_numbered_and_overlapping_promotions_refused() {
        let json = r#"{"rows": [{"type": "base", "sku": "TEE", "price": "199.00"}, {"type": "base", "sku": "CAP", "price": "x"}]}"#;
        let errors = PriceBookDraft::from_json(json, &Tiers).unwrap_err();
        assert_eq!((errors[0].line, errors[0].field.as_str()), (2, "price"));

        let json = r#"{"rows": [{"type": "base", "sku": "TEE", "price": "199.00"}],
          "promotions": [
            {"id": "p1", "name": "Double 11", "skus": ["TEE"], "tiers": ["gold"], "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-11-12T00:00:00Z", "price": "129.00"},
            {"id": "p2", "name": "Black Friday", "skus": ["TEE"], "tiers": ["gold", "senior"], "starts_at": "2026-11-11T00:00:00Z", "ends_at": "2026-11-30T00:00:00Z", "discount_pct": "20"}]}"#;
        let errors = PriceBookDraft::from_json(json, &Tiers).unwrap_err();
        assert!(errors[0].message.contains("overlaps"), "{errors:?}");
        // Back to back is fine: ends_at is exclusive.
        let ok = json.replace("2026-11-11T00:00:00Z", "2026-11-12T00:00:00Z");
        let book = PriceBookDraft::from_json(&ok, &Tiers).unwrap();
        assert_eq!(book.skus[&Sku::parse("TEE").unwrap()].promotions.len(), 2);
    }
}
