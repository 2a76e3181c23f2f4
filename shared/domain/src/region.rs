//! Where an order's buyer is: the province of its shipping address, as one
//! code whatever platform sold it, so that regions can be compared.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 3166-2 subdivision code: `CN-ZJ` (浙江), `US-KY`. Two capital
/// letters for the country, a hyphen, one to three capital letters or
/// digits for the subdivision. What does not have that shape does not
/// parse, from an integrator or from a queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region {0:?} is not an ISO 3166-2 code such as CN-ZJ")]
pub struct RegionError(String);

impl Region {
    pub fn parse(code: &str) -> Result<Self, RegionError> {
        let shaped = code.split_once('-').is_some_and(|(country, part)| {
            country.len() == 2
                && country.bytes().all(|b| b.is_ascii_uppercase())
                && (1..=3).contains(&part.len())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        if shaped {
            Ok(Self(code.to_owned()))
        } else {
            Err(RegionError(code.chars().take(40).collect()))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Region {
    type Error = RegionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_iso_shaped_codes_parse() {
        for good in ["CN-ZJ", "CN-11", "US-KY", "GB-ENG"] {
            assert_eq!(Region::parse(good).unwrap().code(), good);
        }
        for bad in [
            "", "CN", "cn-zj", "CN-", "CN-ZJXX", "CHN-ZJ", "CN_ZJ", "浙江", "CN-ZJ ",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad:?}");
        }
        let r: Region = serde_json::from_str("\"CN-ZJ\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"CN-ZJ\"");
        assert!(serde_json::from_str::<Region>("\"zhejiang\"").is_err());
    }
}
