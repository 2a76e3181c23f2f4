//! Money and rates on `rust_decimal`, never floats.
//!
//! # Rounding rule
//! Amounts that arrive (webhooks, price books) must already be exact to the
//! cent: more than two decimal places is an error, not a silent rounding.
//! Amounts we compute (a discount off a base price, a commission) are rounded
//! once, at the end, to 0.01 with half away from zero ("half up" for the
//! positive amounts prices are): 12.345 → 12.35, 12.344 → 12.34.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount we accept anywhere: 10^12 CNY. Far above any order,
/// far below DynamoDB's 38 significant digits.
const MAX_ABS: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1_000_000_000_000

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    #[error("{0} has more than 2 decimal places")]
    TooPrecise(Decimal),
    #[error("{0} is out of range")]
    OutOfRange(Decimal),
    #[error("{0} is negative")]
    Negative(Decimal),
}

/// An amount of the brand's currency (CNY), exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

/// Parses plain decimal notation, `^-?[0-9]+(\.[0-9]+)?$`, as every decimal
/// the API documents is written: no exponent (`1E5`), no `_` or thousands
/// separators, no `+`, no blanks, and digits on both sides of the point.
/// `Decimal`'s own parser is more lenient than the documents.
pub fn parse_plain_decimal(raw: &str) -> Option<Decimal> {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = match body.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str(raw).ok()
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses an exact amount: at most two decimal places, may be negative.
    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let d = parse_plain_decimal(raw).ok_or_else(|| MoneyError::NotANumber(raw.to_owned()))?;
        Self::from_decimal(d)
    }

    /// Parses an exact amount that must not be negative.
    pub fn parse_non_negative(raw: &str) -> Result<Self, MoneyError> {
        let m = Self::parse(raw)?;
        if m.is_negative() {
            return Err(MoneyError::Negative(m.0));
        }
        Ok(m)
    }

    /// An exact decimal (at most two places after normalising).
    pub fn from_decimal(d: Decimal) -> Result<Self, MoneyError> {
        let d = d.normalize();
        if d.scale() > 2 {
            return Err(MoneyError::TooPrecise(d));
        }
        if d.abs() > MAX_ABS {
            return Err(MoneyError::OutOfRange(d));
        }
        Ok(Money(d))
    }

    /// A computed amount, rounded by the rule in the module docs.
    pub fn round(d: Decimal) -> Self {
        Money(d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn cents(cents: i64) -> Self {
        Money(Decimal::new(cents, 2))
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn max(self, other: Money) -> Money {
        if self >= other { self } else { other }
    }

    pub fn min(self, other: Money) -> Money {
        if self <= other { self } else { other }
    }

    /// `self × quantity`, exact.
    pub fn times(self, quantity: u32) -> Money {
        Money(self.0 * Decimal::from(quantity))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

/// Always two decimals on the wire: "12.30".
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Strings only: a JSON number would already have been through a float
        // in many senders.
        let raw = String::deserialize(d)?;
        Money::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A percentage in [0, 100], such as a tier discount ("5" means 5 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Percent(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentError {
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    #[error("{0} is outside 0..=100")]
    OutOfRange(Decimal),
    #[error("{0} has more than 4 decimal places")]
    TooPrecise(Decimal),
}

impl Percent {
    pub const ZERO: Percent = Percent(Decimal::ZERO);

    pub fn parse(raw: &str) -> Result<Self, PercentError> {
        let d = parse_plain_decimal(raw).ok_or_else(|| PercentError::NotANumber(raw.to_owned()))?;
        Self::from_decimal(d)
    }

    pub fn from_decimal(d: Decimal) -> Result<Self, PercentError> {
        let d = d.normalize();
        if d.is_sign_negative() && !d.is_zero() || d > Decimal::ONE_HUNDRED {
            return Err(PercentError::OutOfRange(d));
        }
        if d.scale() > 4 {
            return Err(PercentError::TooPrecise(d));
        }
        Ok(Percent(d))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `amount × (100 − self) / 100`, rounded once by the module's rule.
    pub fn off(self, amount: Money) -> Money {
        Money::round(amount.amount() * (Decimal::ONE_HUNDRED - self.0) / Decimal::ONE_HUNDRED)
    }

    /// `amount × self / 100`, rounded once by the module's rule.
    pub fn of(self, amount: Money) -> Money {
        Money::round(amount.amount() * self.0 / Decimal::ONE_HUNDRED)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Percent::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_decimal_notation_parses() {
        for ok in ["0", "5", "-5", "300000", "0.5", "12.50", "-0.01"] {
            assert!(parse_plain_decimal(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "1_000", "1E5", "1e5", "+300000", ".5e2 ", " 5", "5 ", ".5", "5.", "1.2.3",
            "0x10", "--1", "NaN",
        ] {
            assert!(parse_plain_decimal(bad).is_none(), "{bad:?}");
        }
        assert!(Percent::parse(" 5").is_err());
        assert!(Money::parse(".50").is_err());
    }

    #[test]
    fn parses_exact_amounts_and_rejects_fractions_of_a_cent() {
        assert_eq!(Money::parse("12.30").unwrap(), Money::cents(1230));
        assert_eq!(Money::parse("12.300").unwrap(), Money::cents(1230));
        assert_eq!(Money::parse("-0.01").unwrap(), Money::cents(-1));
        assert!(matches!(
            Money::parse("12.345"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("abc"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse("1e3"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse("1000000000000.01"),
            Err(MoneyError::OutOfRange(_))
        ));
        assert!(Money::parse("1000000000000").is_ok());
        assert!(matches!(
            Money::parse_non_negative("-1"),
            Err(MoneyError::Negative(_))
        ));
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Money::parse("5").unwrap().to_string(), "5.00");
        assert_eq!(Money::parse("5.1").unwrap().to_string(), "5.10");
        assert_eq!(
            serde_json::to_string(&Money::cents(-250)).unwrap(),
            "\"-2.50\""
        );
    }

    #[test]
    fn rounds_half_away_from_zero_once() {
        assert_eq!(Money::round(Decimal::new(12345, 3)), Money::cents(1235));
        assert_eq!(Money::round(Decimal::new(12344, 3)), Money::cents(1234));
        assert_eq!(Money::round(Decimal::new(-12345, 3)), Money::cents(-1235));
    }

    #[test]
    fn discounts_round_at_the_end() {
        // 5 % off 99.99 = 94.9905 → 94.99
        let pct = Percent::parse("5").unwrap();
        assert_eq!(
            pct.off(Money::parse("99.99").unwrap()),
            Money::parse("94.99").unwrap()
        );
        // 10 % off 0.05 = 0.045 → 0.05 (half up)
        let pct = Percent::parse("10").unwrap();
        assert_eq!(pct.off(Money::cents(5)), Money::cents(5));
        assert_eq!(
            Percent::parse("12.5").unwrap().of(Money::cents(100)),
            Money::cents(13)
        );
    }

    #[test]
    fn percent_is_bounded() {
        assert!(Percent::parse("100").is_ok());
        assert!(Percent::parse("100.01").is_err());
        assert!(Percent::parse("-1").is_err());
        assert!(Percent::parse("x").is_err());
    }

    #[test]
    fn json_numbers_are_refused() {
        assert!(serde_json::from_str::<Money>("12.3").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("\"12.3\"").unwrap(),
            Money::cents(1230)
        );
    }
}
