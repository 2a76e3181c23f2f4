//! A buyer's province, as one code whatever platform sent it.
//!
//! The code is the ISO 3166-2 subdivision code (`CN-ZJ` for 浙江), so that
//! 抖店's `浙江省`, 有赞's `浙江省` and Shopify's `province_code: "ZJ"` with
//! `country_code: "CN"` all count toward one region.

use serde::{Deserialize, Serialize};

/// An ISO 3166-2 subdivision code: `CN-ZJ`, `US-KY`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Region(String);

impl Region {
    pub fn code(&self) -> &str {
        &self.0
    }
}
