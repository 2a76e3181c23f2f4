//! Calendar windows are cut in the brand's time zone (default
//! Asia/Shanghai): an order paid at 2026-11-30T17:00Z belongs to December in
//! Shanghai, not November.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
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
        Month {
            year: local.year(),
            month: local.month() as u8,
        }
    }

    /// The instant `day` starts in the brand's time zone.
    pub fn start_of(&self, day: Day) -> DateTime<Utc> {
        use chrono::TimeZone;
        let midnight = day.0.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A zone that skips midnight (a daylight-saving jump) starts the day
        // at the first instant that exists.
        self.tz
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                self.tz
                    .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .expect("a day starts within its first hour")
            .with_timezone(&Utc)
    }

    /// The brand-calendar day `at` falls on.
    pub fn day_of(&self, at: DateTime<Utc>) -> Day {
        Day(at.with_timezone(&self.tz).date_naive())
    }

    pub fn name(&self) -> &'static str {
        self.tz.name()
    }
}

impl Default for BrandCalendar {
    fn default() -> Self {
        Self {
            tz: chrono_tz::Asia::Shanghai,
        }
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

    pub fn year(self) -> i32 {
        self.year
    }

    /// 1 for January.
    pub fn number(self) -> u8 {
        self.month
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The three months of this month's natural quarter, in order.
    pub fn quarter_months(self) -> [Month; 3] {
        let first = (self.month - 1) / 3 * 3 + 1;
        [0, 1, 2].map(|i| Month {
            year: self.year,
            month: first + i,
        })
    }
}

/// A day in the brand's calendar: what rolling windows are cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid day {0:?}, expected YYYY-MM-DD")]
pub struct DayError(String);

impl Day {
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        Month::new(year, month)?;
        NaiveDate::from_ymd_opt(year, u32::from(month), u32::from(day)).map(Day)
    }

    pub fn parse(raw: &str) -> Result<Self, DayError> {
        let err = || DayError(raw.to_owned());
        if raw.len() != 10 {
            return Err(err());
        }
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| err())?;
        Month::new(date.year(), date.month() as u8).ok_or_else(err)?;
        Ok(Day(date))
    }

    pub fn month(self) -> Month {
        Month {
            year: self.0.year(),
            month: self.0.month() as u8,
        }
    }

    /// The day of the month, 1 to 31.
    pub fn day_of_month(self) -> u8 {
        self.0.day() as u8
    }

    /// `days` days later.
    pub fn plus_days(self, days: u32) -> Day {
        Day(self.0 + chrono::Days::new(u64::from(days)))
    }

    /// `days` days earlier.
    pub fn minus_days(self, days: u32) -> Day {
        Day(self.0 - chrono::Days::new(u64::from(days)))
    }

    /// Unix seconds of the day's midnight in UTC (for expiry times, where an
    /// hour or so does not matter).
    pub fn midnight_utc_timestamp(self) -> i64 {
        self.0
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp()
    }
}

impl Month {
    /// The month's `day`th day, if it has one.
    pub fn day(self, day: u8) -> Option<Day> {
        Day::new(self.year, self.month, day)
    }

    /// The months from `first` to `self`, oldest first.
    pub fn since(self, first: Month) -> Vec<Month> {
        let mut out = Vec::new();
        let mut m = self;
        while m >= first {
            out.push(m);
            m = m.previous();
        }
        out.reverse();
        out
    }
}

/// A review period: the natural month, or, for rule sets that read rolling
/// windows, the day (those windows move every day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Month(Month),
    Day(Day),
}

impl Period {
    /// The period's first day: months and days compare by it.
    pub fn first_day(self) -> Day {
        match self {
            Period::Month(m) => m.day(1).expect("every month has a first day"),
            Period::Day(d) => d,
        }
    }

    /// `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse(raw: &str) -> Result<Self, DayError> {
        match raw.len() {
            7 => Month::parse(raw)
                .map(Period::Month)
                .map_err(|_| DayError(raw.to_owned())),
            _ => Day::parse(raw).map(Period::Day),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(m) => m.fmt(f),
            Period::Day(d) => d.fmt(f),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Period::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Day::parse(&raw).map_err(serde::de::Error::custom)
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
        assert_eq!(
            cal.month_of(at("2026-11-30T15:59:59Z")).to_string(),
            "2026-11"
        );
        assert_eq!(
            cal.month_of(at("2026-11-30T16:00:00Z")).to_string(),
            "2026-12"
        );
        let utc = BrandCalendar::parse("UTC").unwrap();
        assert_eq!(
            utc.month_of(at("2026-11-30T16:00:00Z")).to_string(),
            "2026-11"
        );
        assert!(BrandCalendar::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn days_are_cut_in_the_brand_zone() {
        let cal = BrandCalendar::default();
        assert_eq!(
            cal.day_of(at("2026-11-30T15:59:59Z")).to_string(),
            "2026-11-30"
        );
        assert_eq!(
            cal.day_of(at("2026-11-30T16:00:00Z")).to_string(),
            "2026-12-01"
        );
        let d = Day::parse("2026-03-01").unwrap();
        assert_eq!(d.minus_days(1).to_string(), "2026-02-28");
        assert_eq!(d.minus_days(1).month().to_string(), "2026-02");
        assert_eq!(Day::parse("2026-02-01").unwrap().plus_days(28), d);
        assert_eq!(d.minus_days(1).plus_days(1), d);
        assert_eq!(cal.start_of(d).to_rfc3339(), "2026-02-28T16:00:00+00:00");
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("2026-2-3").is_err());
        assert_eq!(
            Month::parse("2026-11")
                .unwrap()
                .since(Month::parse("2026-09").unwrap())
                .len(),
            3
        );
        assert_eq!(
            Period::parse("2026-11").unwrap(),
            Period::Month(Month::parse("2026-11").unwrap())
        );
        assert_eq!(
            Period::parse("2026-11-27").unwrap().to_string(),
            "2026-11-27"
        );
        assert!(Period::parse("2026-1").is_err());
    }

    #[test]
    fn quarters_and_previous_months() {
        let m = Month::parse("2026-08").unwrap();
        assert_eq!(
            m.quarter_months().map(|m| m.to_string()),
            ["2026-07", "2026-08", "2026-09"]
        );
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
        assert!(Month::parse("2026-13").is_err());
        assert!(Month::parse("26-01").is_err());
    }
}
