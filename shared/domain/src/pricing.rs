//! Tier prices (等级价).
//!
//! # Precedence
//! For a distributor in tier T buying SKU S:
//! 1. a fixed price for (T, S) in the SKU's price book, if there is one;
//! 2. otherwise T's discount off the base price, if T has one;
//! 3. otherwise the base price.
//!
//! A discounted price is rounded once by the rule in [`crate::money`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{Sku, TierId};
use crate::money::{Money, Percent};
use crate::rules::Tier;

/// A SKU's price book entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuPrices {
    pub sku: Sku,
    pub base_price: Money,
    /// Fixed prices by tier id; a tier not listed gets its discount.
    #[serde(default)]
    pub tier_prices: BTreeMap<TierId, Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceBookError {
    #[error("base price {0} must be positive")]
    NonPositiveBase(Money),
    #[error("tier price for {tier} is {price}; prices must be positive")]
    NonPositiveTierPrice { tier: TierId, price: Money },
}

impl SkuPrices {
    pub fn validate(&self) -> Result<(), PriceBookError> {
        if self.base_price.is_negative() || self.base_price.is_zero() {
            return Err(PriceBookError::NonPositiveBase(self.base_price));
        }
        for (tier, price) in &self.tier_prices {
            if price.is_negative() || price.is_zero() {
                return Err(PriceBookError::NonPositiveTierPrice { tier: tier.clone(), price: *price });
            }
        }
        Ok(())
    }
}

/// Which rule produced a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceRule {
    TierFixedPrice,
    TierDiscount,
    BasePrice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub sku: Sku,
    pub unit_price: Money,
    pub base_price: Money,
    pub rule: PriceRule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount_pct: Option<Percent>,
}

/// The price `tier` pays for `prices.sku` (see the module docs).
pub fn quote(prices: &SkuPrices, tier: &Tier) -> Quote {
    let (unit_price, rule, discount_pct) = if let Some(fixed) = prices.tier_prices.get(&tier.id) {
        (*fixed, PriceRule::TierFixedPrice, None)
    } else if !tier.benefits.discount_pct.is_zero() {
        let pct = tier.benefits.discount_pct;
        (pct.off(prices.base_price), PriceRule::TierDiscount, Some(pct))
    } else {
        (prices.base_price, PriceRule::BasePrice, None)
    };
    Quote { sku: prices.sku.clone(), unit_price, base_price: prices.base_price, rule, discount_pct }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Benefits;

    fn tier(id: &str, pct: &str) -> Tier {
        Tier {
            id: TierId::parse(id).unwrap(),
            name: id.into(),
            rank: 0,
            benefits: Benefits { discount_pct: Percent::parse(pct).unwrap(), ..Default::default() },
            upgrade: None,
        }
    }

    #[test]
    fn precedence_fixed_then_discount_then_base() {
        let prices = SkuPrices {
            sku: Sku::parse("TEE").unwrap(),
            base_price: Money::parse("199.00").unwrap(),
            tier_prices: [(TierId::parse("gold").unwrap(), Money::parse("150.00").unwrap())].into(),
        };
        let q = quote(&prices, &tier("gold", "15"));
        assert_eq!((q.unit_price, q.rule), (Money::parse("150.00").unwrap(), PriceRule::TierFixedPrice));
        let q = quote(&prices, &tier("senior", "10"));
        assert_eq!((q.unit_price, q.rule), (Money::parse("179.10").unwrap(), PriceRule::TierDiscount));
        let q = quote(&prices, &tier("junior", "0"));
        assert_eq!((q.unit_price, q.rule), (Money::parse("199.00").unwrap(), PriceRule::BasePrice));
    }

    #[test]
    fn discount_rounds_half_up() {
        let prices = SkuPrices { sku: Sku::parse("X").unwrap(), base_price: Money::parse("0.10").unwrap(), tier_prices: BTreeMap::new() };
        // 0.10 × 0.95 = 0.095 → 0.10
        assert_eq!(quote(&prices, &tier("t", "5")).unit_price, Money::parse("0.10").unwrap());
    }

    #[test]
    fn non_positive_prices_are_refused() {
        let mut prices = SkuPrices { sku: Sku::parse("X").unwrap(), base_price: Money::ZERO, tier_prices: BTreeMap::new() };
        assert!(prices.validate().is_err());
        prices.base_price = Money::cents(100);
        prices.tier_prices.insert(TierId::parse("t").unwrap(), Money::cents(-1));
        assert!(prices.validate().is_err());
    }
}
