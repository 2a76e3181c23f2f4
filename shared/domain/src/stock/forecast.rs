//! Demand forecasts for reserve plans: how many units a tier will order of
//! a SKU over the coming days, from its daily demand so far (oldest first).
//! Each is a named method with its parameters. The result is a tier's
//! [`super::levels::Claim`] demand, which caps its share of a short supply.
//!
//! - **Simple exponential smoothing** (Hyndman & Athanasopoulos, *Forecasting:
//!   Principles and Practice*, 3rd ed., §8.1): `ℓₜ = α·yₜ + (1−α)·ℓₜ₋₁`, with
//!   `ℓ₁ = y₁`. Every future day is forecast at `ℓ_T`.
//! - **Holt's linear method** (the same, §8.2): `ℓₜ = α·yₜ + (1−α)·(ℓₜ₋₁ + bₜ₋₁)`,
//!   `bₜ = β·(ℓₜ − ℓₜ₋₁) + (1−β)·bₜ₋₁`, with `ℓ₂ = y₂` and `b₂ = y₂ − y₁`. Day `h`
//!   ahead is `ℓ_T + h·b_T`, and never below zero.
//! - **Croston's method with the Syntetos–Boylan approximation** (SBA; Syntetos &
//!   Boylan, "The accuracy of intermittent demand estimates", *International
//!   Journal of Forecasting* 21, 2005), for demand that most days is zero.
//!   On a day with demand `y` after `q` days since the last one:
//!   `z ← α·y + (1−α)·z` and `p ← α·q + (1−α)·p`, starting from the first
//!   demand and its interval. Every future day is `(1 − α/2)·z/p`.
//!
//! Arithmetic is decimal, so a plan is reproduced exactly from its inputs.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// A forecast method and its smoothing parameters, each in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Forecast {
    Ses { alpha: Decimal },
    Holt { alpha: Decimal, beta: Decimal },
    CrostonSba { alpha: Decimal },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} must be above 0 and at most 1, got {value}")]
pub struct ForecastError {
    pub parameter: &'static str,
    pub value: Decimal,
}

fn smoothing(parameter: &'static str, value: Decimal) -> Result<(), ForecastError> {
    if value > Decimal::ZERO && value <= Decimal::ONE {
        Ok(())
    } else {
        Err(ForecastError { parameter, value })
    }
}

impl Forecast {
    pub fn validate(&self) -> Result<(), ForecastError> {
        match *self {
            Forecast::Ses { alpha } | Forecast::CrostonSba { alpha } => smoothing("alpha", alpha),
            Forecast::Holt { alpha, beta } => {
                smoothing("alpha", alpha)?;
                smoothing("beta", beta)
            }
        }
    }

    /// Units expected over the next `days` days after `history` (one count
    /// a day, oldest first), rounded up to whole units: a reserve that
    /// falls a fraction short still leaves an order unfilled. No history
    /// forecasts nothing.
    pub fn demand(&self, history: &[u64], days: u32) -> u64 {
        let total = match *self {
            Forecast::Ses { alpha } => ses(history, alpha) * Decimal::from(days),
            Forecast::Holt { alpha, beta } => holt(history, alpha, beta, days),
            Forecast::CrostonSba { alpha } => croston_sba(history, alpha) * Decimal::from(days),
        };
        total.max(Decimal::ZERO).ceil().to_u64().unwrap_or(u64::MAX)
    }
}

fn ses(history: &[u64], alpha: Decimal) -> Decimal {
    let mut values = history.iter().map(|&y| Decimal::from(y));
    let Some(mut level) = values.next() else {
        return Decimal::ZERO;
    };
    for y in values {
        level = alpha * y + (Decimal::ONE - alpha) * level;
    }
    level
}

fn holt(history: &[u64], alpha: Decimal, beta: Decimal, days: u32) -> Decimal {
    let ys: Vec<Decimal> = history.iter().map(|&y| Decimal::from(y)).collect();
    let (level, trend) = match ys.as_slice() {
        [] => return Decimal::ZERO,
        [only] => (*only, Decimal::ZERO),
        [first, second, rest @ ..] => {
            let (mut level, mut trend) = (*second, *second - *first);
            for &y in rest {
                let previous = level;
                level = alpha * y + (Decimal::ONE - alpha) * (level + trend);
                trend = beta * (level - previous) + (Decimal::ONE - beta) * trend;
            }
            (level, trend)
        }
    };
    (1..=days)
        .map(|h| (level + Decimal::from(h) * trend).max(Decimal::ZERO))
        .sum()
}

fn croston_sba(history: &[u64], alpha: Decimal) -> Decimal {
    let mut size: Option<Decimal> = None;
    let mut interval = Decimal::ZERO;
    let mut since = 0u64;
    for &y in history {
        since += 1;
        if y == 0 {
            continue;
        }
        let (y, q) = (Decimal::from(y), Decimal::from(since));
        match size {
            None => {
                size = Some(y);
                interval = q;
            }
            Some(z) => {
                size = Some(alpha * y + (Decimal::ONE - alpha) * z);
                interval = alpha * q + (Decimal::ONE - alpha) * interval;
            }
        }
        since = 0;
    }
    match size {
        Some(z) => (Decimal::ONE - alpha / Decimal::TWO) * z / interval,
        None => Decimal::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn each_method_forecasts_what_its_formula_says() {
        let ses = Forecast::Ses { alpha: d("0.5") };
        // Levels 10, 15, 12.5: 7 days of 12.5.
        assert_eq!(ses.demand(&[10, 20, 10], 7), 88);
        assert_eq!(ses.demand(&[], 7), 0);

        // A straight line is carried on exactly.
        let holt = Forecast::Holt {
            alpha: d("0.8"),
            beta: d("0.2"),
        };
        assert_eq!(holt.demand(&[2, 4, 6, 8], 3), 10 + 12 + 14);
        // A falling line stops at zero.
        assert_eq!(holt.demand(&[9, 6, 3], 5), 0);

        // Demand every third day, 6 units: z = 6, p = 3; SBA (1 − 0.05)·2.
        let croston = Forecast::CrostonSba { alpha: d("0.1") };
        assert_eq!(croston.demand(&[0, 0, 6, 0, 0, 6, 0, 0, 6], 10), 19);
        assert_eq!(croston.demand(&[0, 0, 0], 10), 0);

        assert!(Forecast::Ses { alpha: d("0") }.validate().is_err());
        assert!(
            Forecast::Holt {
                alpha: d("0.5"),
                beta: d("1.5")
            }
            .validate()
            .is_err()
        );
        assert!(croston.validate().is_ok());
        let parsed: Forecast =
            serde_json::from_str(r#"{"method": "croston_sba", "alpha": "0.1"}"#).unwrap();
        assert_eq!(parsed, croston);
    }

    proptest! {
        /// Smoothing never forecasts a day above the busiest day seen nor
        /// below the quietest; a constant history forecasts itself.
        #[test]
        fn smoothed_days_stay_within_what_was_seen(
            history in prop::collection::vec(0u64..500, 1..60),
            alpha in 1u32..=100,
        ) {
            let alpha = Decimal::new(i64::from(alpha), 2);
            let (lo, hi) = (*history.iter().min().unwrap(), *history.iter().max().unwrap());
            let day = ses(&history, alpha);
            prop_assert!(day >= Decimal::from(lo) && day <= Decimal::from(hi));
            let f = Forecast::Ses { alpha };
            prop_assert_eq!(f.demand(&vec![hi; history.len()], 10), 10 * hi);
            let sba = croston_sba(&history, alpha);
            prop_assert!(sba >= Decimal::ZERO && sba <= Decimal::from(hi));
        }
    }
}
