//! Identifiers that cross the boundary. Each is parsed once; past the
//! boundary an invalid one cannot exist.
//!
//! The character set is deliberately narrow: identifiers become parts of
//! DynamoDB keys (`DIST#{id}`), so `#` and whitespace are refused.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub reason: String,
}

fn check(kind: &'static str, raw: &str, max: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError {
            kind,
            reason: "must not be empty".into(),
        });
    }
    // Every id is a URL path segment somewhere, and clients resolve these
    // two away before the request is sent: such an id could not be read.
    if raw == "." || raw == ".." {
        return Err(IdError {
            kind,
            reason: format!("{raw:?} is a relative path segment, which URLs resolve away"),
        });
    }
    if raw.len() > max {
        return Err(IdError {
            kind,
            reason: format!("longer than {max} characters"),
        });
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(IdError {
            kind,
            reason: format!(
                "{raw:?} contains {c:?}; allowed are ASCII letters, digits and - _ . : @"
            ),
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check($kind, raw, $max)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A distributor (分销商).
    DistributorId, "distributor id", 64);
id_type!(
    /// A stock-keeping unit.
    Sku, "sku", 64);
id_type!(
    /// A tier (等级), as named in the brand's rule set.
    TierId, "tier id", 32);

/// Where tiers are named in lists and keys (the tier members index,
/// fan-out partitions, what-if moves), `-` stands for "no tier yet"; a rule
/// set may not name a tier so.
pub const NO_TIER: &str = "-";

impl TierId {
    /// The tier's name in such lists, `-` for none.
    pub fn name_or_none(tier: Option<&TierId>) -> &str {
        tier.map_or(NO_TIER, TierId::as_str)
    }

    /// The tier such a name stands for, `None` for `-`.
    pub fn parse_or_none(name: &str) -> Result<Option<TierId>, IdError> {
        (name != NO_TIER).then(|| TierId::parse(name)).transpose()
    }
}
id_type!(
    /// An e-commerce platform, as it appears in the webhook URL.
    Platform, "platform", 32);
id_type!(
    /// A store on a platform.
    StoreId, "store id", 64);
id_type!(
    /// A platform app (a Shopify app, a 抖店 or 有赞 open-platform app), as
    /// the brand names it: what signs the deliveries of its stores.
    AppId, "app id", 64);
id_type!(
    /// An order id, unique per platform and store.
    OrderId, "order id", 128);
id_type!(
    /// A platform event id, unique per platform and store.
    EventId, "event id", 128);
id_type!(
    /// A buyer (a downline user of the selling distributor).
    BuyerId, "buyer id", 128);
id_type!(
    /// One line of an order.
    LineId, "line id", 64);
id_type!(
    /// A refund, unique within its order.
    RefundId, "refund id", 128);
id_type!(
    /// A rule inside a rule set (an upgrade rule or a step-up rule).
    RuleId, "rule id", 64);

id_type!(
    /// A what-if run, named by whoever starts it (so a retried start is
    /// the same run).
    WhatIfId, "what-if id", 64);

/// An order is identified by where it came from: ids are only unique per
/// platform and store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderRef {
    pub platform: Platform,
    pub store: StoreId,
    pub order_id: OrderId,
}

impl OrderRef {
    /// Parses `platform/store/order`, as [`fmt::Display`] writes it. Ids may
    /// not contain `/`, so the split is unambiguous.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let mut parts = raw.splitn(3, '/');
        let (Some(p), Some(s), Some(o)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(IdError {
                kind: "order reference",
                reason: format!("{raw:?} is not platform/store/order"),
            });
        };
        Ok(OrderRef {
            platform: Platform::parse(p)?,
            store: StoreId::parse(s)?,
            order_id: OrderId::parse(o)?,
        })
    }
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.platform, self.store, self.order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_segments_are_not_ids() {
        assert!(DistributorId::parse(".").is_err());
        assert!(DistributorId::parse("..").is_err());
        assert!(DistributorId::parse("...").is_ok());
        assert!(DistributorId::parse("d.1").is_ok());
    }

    #[test]
    fn order_refs_read_back_what_they_write() {
        let o = OrderRef::parse("jd/sh-outlet/TM-1").unwrap();
        assert_eq!(o.to_string(), "jd/sh-outlet/TM-1");
        assert!(OrderRef::parse("jd/sh-outlet").is_err());
        assert!(OrderRef::parse("jd/sh-outlet/a/b").is_err());
    }

    #[test]
    fn accepts_ordinary_ids_and_refuses_key_separators() {
        assert!(DistributorId::parse("d-001").is_ok());
        assert!(Sku::parse("TSHIRT-RED.L").is_ok());
        assert!(DistributorId::parse("").is_err());
        assert!(DistributorId::parse("a#b").is_err());
        assert!(DistributorId::parse("a b").is_err());
        assert!(TierId::parse(&"x".repeat(33)).is_err());
        let err = Sku::parse("红").unwrap_err();
        assert!(err.to_string().contains("sku"), "{err}");
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<Sku>("\"A#1\"").is_err());
        assert_eq!(
            serde_json::from_str::<Sku>("\"A1\"").unwrap().as_str(),
            "A1"
        );
    }
}
