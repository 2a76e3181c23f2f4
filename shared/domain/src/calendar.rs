//! Calendar windows are cut in the brand's time zone (default
//! Asia/Shanghai): an order paid at 2026-11-30T17:00Z belongs to December in
//! Shanghai, not November.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrandCalendar {
    tz: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?} (use an IANA name such as Asia/Shanghai)")]
pub struct UnknownTimeZone(pub String);

impl BrandCalendar {
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        Tz::from_str(name)
            .map(|tz| Self { tz })
            .map_err(|_| UnknownTimeZone(name.to_owned()))
    }

    pub fn month_of(&self, at: DateTime<Utc>) -> Month {
        let local = at.with_timezone(&self.tz);
        Month { year: local.year(), month: local.month() as u8 }
    }

    pub fn name(&self) -> &'static str {
        self.tz.name()
    }
}

impl Default for BrandCalendar {
    fn default() -> Self {
        Self { tz: chrono_tz::Asia::Shanghai }
    }
}

/// A natural month in the brand's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid month {0:?}, expected YYYY-MM")]
pub struct MonthError(String);

impl Month {
    pub fn new(year: i32, month: u8) -> Option<Self> {
        ((1..=12).contains(&month) && (1970..=9999).contains(&year)).then_some(Self { year, month })
    }

    pub fn parse(raw: &str) -> Result<Self, MonthError> {
        let err = || MonthError(raw.to_owned());
        let (y, m) = raw.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        Month::new(y.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?).ok_or_else(err)
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month { year: self.year - 1, month: 12 }
        } else {
            Month { year: self.year, month: self.month - 1 }
        }
    }

    /// The three months of this month's natural quarter, in order.
    pub fn quarter_months(self) -> [Month; 3] {
        let first = (self.month - 1) / 3 * 3 + 1;
        [0, 1, 2].map(|i| Month { year: self.year, month: first + i })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Month::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn months_are_cut_in_the_brand_zone() {
        let cal = BrandCalendar::default();
        assert_eq!(cal.month_of(at("2026-11-30T15:59:59Z")).to_string(), "2026-11");
        assert_eq!(cal.month_of(at("2026-11-30T16:00:00Z")).to_string(), "2026-12");
        let utc = BrandCalendar::parse("UTC").unwrap();
        assert_eq!(utc.month_of(at("2026-11-30T16:00:00Z")).to_string(), "2026-11");
        assert!(BrandCalendar::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn quarters_and_previous_months() {
        let m = Month::parse("2026-08").unwrap();
        assert_eq!(m.quarter_months().map(|m| m.to_string()), ["2026-07", "2026-08", "2026-09"]);
        assert_eq!(Month::parse("2026-01").unwrap().previous().to_string(), "2025-12");
        assert!(Month::parse("2026-13").is_err());
        assert!(Month::parse("26-01").is_err());
    }
}
