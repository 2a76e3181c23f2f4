//! One price, explained: the unit price, the rule that produced it, the
//! candidates it beat, and how long it holds.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{DistributorId, RuleId, Sku, TierId};
use crate::money::{Money, Percent};
use crate::pricing::book::{SkuBook, VolumeBreak};
use crate::rules::Tier;

/// The rules, in precedence order (see the module docs of
/// [`crate::pricing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceRule {
    DistributorOverride,
    Promotion,
    TierFixedPrice,
    TierDiscount,
    BasePrice,
}

/// A rule that applied, with the unit price it offered before volume breaks,
/// rounding and the floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub rule: PriceRule,
    pub unit_price: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<RuleId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionInfo {
    pub id: RuleId,
    pub name: String,
    pub subsidy_pct: Percent,
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceQuote {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
    pub currency: &'static str,
    pub tier: TierId,
    pub rule: PriceRule,
    pub base_price: Money,
    /// Every rule that applied, winner first.
    pub candidates: Vec<Candidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_break: Option<VolumeBreak>,
    /// Set when the floor price raised the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_price: Option<Money>,
    pub floor_applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionInfo>,
    /// The answer holds from `valid_from` until `valid_until` (exclusive;
    /// `None`: until the book or the tier changes).
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
}

pub struct QuoteRequest<'a> {
    pub book: &'a SkuBook,
    pub tier: &'a Tier,
    pub distributor: &'a DistributorId,
    pub quantity: u32,
    pub at: DateTime<Utc>,
    /// Whether the tier may see promotions (its permission).
    pub promotions_allowed: bool,
    /// When the book version was published: the earliest a price can hold from.
    pub book_published_at: DateTime<Utc>,
}

pub fn quote(req: &QuoteRequest<'_>) -> PriceQuote {
    let book = req.book;
    let tier = req.tier;
    let base = book.base_price.amount();
    let mut candidates: Vec<(PriceRule, Decimal, Option<&crate::pricing::Promotion>)> =
        Vec::with_capacity(5);

    if let Some(p) = book.overrides.get(req.distributor) {
        candidates.push((PriceRule::DistributorOverride, p.amount(), None));
    }
    // Promotions this tier may use: the only ones it ever sees.
    let usable =
        |p: &&crate::pricing::Promotion| req.promotions_allowed && p.tiers.contains(&tier.id);
    if let Some(p) = book
        .promotions
        .iter()
        .filter(usable)
        .find(|p| p.is_open(req.at))
    {
        let price = match (p.price, p.discount_pct) {
            (Some(fixed), _) => fixed.amount(),
            (None, Some(pct)) => base * (Decimal::ONE_HUNDRED - pct.value()) / Decimal::ONE_HUNDRED,
            (None, None) => base,
        };
        candidates.push((PriceRule::Promotion, price, Some(p)));
    }
    if let Some(p) = book.tier_prices.get(&tier.id) {
        candidates.push((PriceRule::TierFixedPrice, p.amount(), None));
    }
    let pct = tier.benefits.discount_pct;
    if !pct.is_zero() {
        candidates.push((
            PriceRule::TierDiscount,
            base * (Decimal::ONE_HUNDRED - pct.value()) / Decimal::ONE_HUNDRED,
            None,
        ));
    }
    candidates.push((PriceRule::BasePrice, base, None));

    let (rule, winner, promotion) = candidates[0];
    let volume_break = book
        .volume_breaks
        .iter()
        .rev()
        .find(|b| b.min_qty <= req.quantity)
        .cloned();
    let discounted = match &volume_break {
        Some(b) => winner * (Decimal::ONE_HUNDRED - b.discount_pct.value()) / Decimal::ONE_HUNDRED,
        None => winner,
    };
    // Rounded once, after the last discount; then the floor.
    let rounded = Money::round(discounted);
    let (unit_price, floor_applied) = match book.floor_price {
        Some(floor) if rounded < floor => (floor, true),
        _ => (rounded, false),
    };

    // The answer changes when a usable promotion of this SKU opens or closes.
    let mut valid_from = req.book_published_at;
    let mut valid_until: Option<DateTime<Utc>> = None;
    for p in book.promotions.iter().filter(usable) {
        for edge in [p.starts_at, p.ends_at] {
            if edge <= req.at {
                valid_from = valid_from.max(edge);
            } else {
                valid_until = Some(valid_until.map_or(edge, |u| u.min(edge)));
            }
        }
    }

    PriceQuote {
        sku: book.sku.clone(),
        quantity: req.quantity,
        unit_price,
        currency: "CNY",
        tier: tier.id.clone(),
        rule,
        base_price: book.base_price,
        candidates: candidates
            .iter()
            .map(|(rule, price, promo)| Candidate {
                rule: *rule,
                unit_price: Money::round(*price),
                promotion_id: promo.map(|p| p.id.clone()),
            })
            .collect(),
        volume_break,
        floor_price: book.floor_price,
        floor_applied,
        promotion: promotion.map(|p| PromotionInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            subsidy_pct: p.subsidy_pct,
            ends_at: p.ends_at,
        }),
        valid_from,
        valid_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::book::{KnownTiers, PriceBookDraft};
    use crate::rules::Benefits;
    use proptest::prelude::*;

    struct AnyTier;
    impl KnownTiers for AnyTier {
        fn has_tier(&self, _: &TierId) -> bool {
            true
        }
    }

    fn tier(id: &str, pct: &str) -> Tier {
        Tier {
            id: TierId::parse(id).unwrap(),
            name: id.into(),
            rank: 1,
            benefits: Benefits {
                discount_pct: Percent::parse(pct).unwrap(),
                ..Default::default()
            },
            upgrade: None,
            retention: None,
            permissions: Default::default(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const BOOK: &str = r#"{"rows": [
        {"type": "base", "sku": "TEE", "price": "199.00"},
        {"type": "floor", "sku": "TEE", "price": "100.00"},
        {"type": "tier_price", "sku": "TEE", "tier": "gold", "price": "150.00"},
        {"type": "override", "sku": "TEE", "distributor": "d-vip", "price": "140.00"},
        {"type": "volume_break", "sku": "TEE", "min_qty": "10", "discount_pct": "2"},
        {"type": "volume_break", "sku": "TEE", "min_qty": "100", "discount_pct": "50"}],
      "promotions": [{"id": "double-11", "name": "Double 11", "skus": ["TEE"], "tiers": ["gold"],
        "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-11-12T00:00:00Z", "price": "129.00", "subsidy_pct": "2"}]}"#;

    fn book() -> SkuBook {
        PriceBookDraft::from_json(BOOK, &AnyTier)
            .unwrap()
            .skus
            .into_values()
            .next()
            .unwrap()
    }

    fn q(
        t: &Tier,
        distributor: &str,
        quantity: u32,
        when: &str,
        promotions_allowed: bool,
    ) -> PriceQuote {
        let b = book();
        quote(&QuoteRequest {
            book: &b,
            tier: t,
            distributor: &DistributorId::parse(distributor).unwrap(),
            quantity,
            at: at(when),
            promotions_allowed,
            book_published_at: at("2026-10-01T00:00:00Z"),
        })
    }

    #[test]
    fn precedence_table() {
        let gold = tier("gold", "15");
        let senior = tier("senior", "10");
        let junior = tier("junior", "0");
        let outside = "2026-11-20T00:00:00Z";
        let during = "2026-11-05T00:00:00Z";
        // Override beats everything, the open promotion included.
        let r = q(&gold, "d-vip", 1, during, true);
        assert_eq!(
            (r.rule, r.unit_price.to_string()),
            (PriceRule::DistributorOverride, "140.00".into())
        );
        assert_eq!(
            r.candidates.iter().map(|c| c.rule).collect::<Vec<_>>(),
            [
                PriceRule::DistributorOverride,
                PriceRule::Promotion,
                PriceRule::TierFixedPrice,
                PriceRule::TierDiscount,
                PriceRule::BasePrice
            ]
        );
        // The promotion beats the fixed tier price while open ...
        let r = q(&gold, "d-1", 1, during, true);
        assert_eq!(
            (r.rule, r.unit_price.to_string()),
            (PriceRule::Promotion, "129.00".into())
        );
        assert_eq!(r.promotion.as_ref().unwrap().subsidy_pct.to_string(), "2");
        assert_eq!(r.valid_until, Some(at("2026-11-12T00:00:00Z")));
        assert_eq!(r.valid_from, at("2026-11-01T00:00:00Z"));
        // ... not when closed, and never for a tier without the permission.
        let r = q(&gold, "d-1", 1, outside, true);
        assert_eq!(
            (r.rule, r.unit_price.to_string()),
            (PriceRule::TierFixedPrice, "150.00".into())
        );
        assert_eq!(r.valid_until, None);
        let r = q(&gold, "d-1", 1, during, false);
        assert_eq!(r.rule, PriceRule::TierFixedPrice);
        assert!(r.candidates.iter().all(|c| c.rule != PriceRule::Promotion));
        // Not a tier the promotion lists: never sees it.
        let r = q(&senior, "d-1", 1, during, true);
        assert_eq!(
            (r.rule, r.unit_price.to_string()),
            (PriceRule::TierDiscount, "179.10".into())
        );
        assert!(r.promotion.is_none());
        let r = q(&junior, "d-1", 1, during, true);
        assert_eq!(
            (r.rule, r.unit_price.to_string()),
            (PriceRule::BasePrice, "199.00".into())
        );
    }

    #[test]
    fn promotion_window_edges() {
        let gold = tier("gold", "15");
        assert_eq!(
            q(&gold, "d-1", 1, "2026-10-31T23:59:59Z", true).rule,
            PriceRule::TierFixedPrice
        );
        assert_eq!(
            q(&gold, "d-1", 1, "2026-11-01T00:00:00Z", true).rule,
            PriceRule::Promotion
        );
        assert_eq!(
            q(&gold, "d-1", 1, "2026-11-11T23:59:59Z", true).rule,
            PriceRule::Promotion
        );
        assert_eq!(
            q(&gold, "d-1", 1, "2026-11-12T00:00:00Z", true).rule,
            PriceRule::TierFixedPrice
        );
        // Before it opens, the answer says when it will change.
        assert_eq!(
            q(&gold, "d-1", 1, "2026-10-15T00:00:00Z", true).valid_until,
            Some(at("2026-11-01T00:00:00Z"))
        );
    }

    #[test]
    fn volume_breaks_at_their_boundaries_and_the_floor() {
        let junior = tier("junior", "0");
        let at_time = "2026-12-01T00:00:00Z";
        assert_eq!(
            q(&junior, "d-1", 9, at_time, true).unit_price.to_string(),
            "199.00"
        );
        // 199 × 0.98 = 195.02
        let r = q(&junior, "d-1", 10, at_time, true);
        assert_eq!(
            (
                r.unit_price.to_string(),
                r.volume_break.as_ref().unwrap().min_qty
            ),
            ("195.02".into(), 10)
        );
        assert_eq!(
            q(&junior, "d-1", 99, at_time, true).unit_price.to_string(),
            "195.02"
        );
        // 199 × 0.5 = 99.50, under the floor of 100.
        let r = q(&junior, "d-1", 100, at_time, true);
        assert_eq!(
            (r.unit_price.to_string(), r.floor_applied),
            ("100.00".into(), true)
        );
    }

    #[test]
    fn rounding_is_half_up_once_after_the_last_discount() {
        let mut b = book();
        b.base_price = Money::parse("0.10").unwrap();
        b.floor_price = None;
        b.tier_prices.clear();
        b.promotions.clear();
        b.volume_breaks = vec![VolumeBreak {
            min_qty: 10,
            discount_pct: Percent::parse("10").unwrap(),
        }];
        let t = tier("junior", "5");
        let d = DistributorId::parse("d").unwrap();
        let req = |quantity| QuoteRequest {
            book: &b,
            tier: &t,
            distributor: &d,
            quantity,
            at: at("2026-12-01T00:00:00Z"),
            promotions_allowed: true,
            book_published_at: at("2026-10-01T00:00:00Z"),
        };
        // 0.10 × 0.95 = 0.095 → 0.10 (half up).
        assert_eq!(quote(&req(1)).unit_price.to_string(), "0.10");
        // 0.10 × 0.95 × 0.90 = 0.0855 → 0.09: rounded once, not 0.10 × 0.90 = 0.09 after an early round to 0.10.
        assert_eq!(quote(&req(10)).unit_price.to_string(), "0.09");
    }

    proptest! {
        /// The price is never below the floor, and above base only when an
        /// override, a promotion or a fixed tier price says so.
        #[test]
        fn floor_and_base_bounds(
            base in 100i64..100_000,
            floor_frac in 0i64..100,
            fixed in proptest::option::of(1i64..200_000),
            pct in 0u32..60,
            vb in 0u32..60,
            qty in 1u32..200,
        ) {
            let floor = base * floor_frac / 100;
            let mut b = book();
            b.base_price = Money::cents(base);
            b.floor_price = (floor > 0).then(|| Money::cents(floor));
            b.overrides.clear();
            b.promotions.clear();
            b.tier_prices = fixed.map(|f| (TierId::parse("t").unwrap(), Money::cents(f.max(floor)))).into_iter().collect();
            b.volume_breaks = if vb > 0 { vec![VolumeBreak { min_qty: 50, discount_pct: Percent::from_decimal(vb.into()).unwrap() }] } else { vec![] };
            let t = tier("t", &pct.to_string());
            let r = quote(&QuoteRequest {
                book: &b, tier: &t, distributor: &DistributorId::parse("d").unwrap(), quantity: qty,
                at: at("2026-12-01T00:00:00Z"), promotions_allowed: true, book_published_at: at("2026-10-01T00:00:00Z"),
            });
            if let Some(f) = b.floor_price { prop_assert!(r.unit_price >= f); }
            if r.rule != PriceRule::TierFixedPrice { prop_assert!(r.unit_price <= b.base_price); }
            prop_assert_eq!(r.unit_price.amount().scale() <= 2, true);
        }
    }
}
