//! Who may read what: API keys for ERP integrations and distributors.
//!
//! A key is shown once, as `tk_<id>_<secret>`. Only the SHA-256 of the
//! secret is stored; the id finds the record in one read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::DistributorId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scope {
    /// An ERP integration: every distributor of the brand.
    Erp,
    /// One distributor's own integration: its own prices only.
    Distributor { distributor_id: DistributorId },
    /// The brand's warehouse (WMS) or ERP shipping orders: the shipping
    /// queue and shipments, no distributor's prices.
    Fulfilment,
}

impl Scope {
    pub fn may_read(&self, distributor: &DistributorId) -> bool {
        match self {
            Scope::Erp => true,
            Scope::Distributor { distributor_id } => distributor_id == distributor,
            Scope::Fulfilment => false,
        }
    }

    pub fn may_ship(&self) -> bool {
        matches!(self, Scope::Fulfilment)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Hex SHA-256 of the secret part. Never serialised to API answers.
    #[serde(skip_serializing, default)]
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

pub const KEY_PREFIX: &str = "tk_";

/// Splits a presented key into (id, secret); `None` if it is not shaped
/// like one of ours.
pub fn split_presented(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.len() == 16 && hex(id) && secret.len() == 64 && hex(secret)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_keys_are_parsed_strictly() {
        let key = format!("tk_{}_{}", "a".repeat(16), "0".repeat(64));
        assert_eq!(
            split_presented(&key),
            Some(("aaaaaaaaaaaaaaaa", &*"0".repeat(64)))
        );
        assert_eq!(split_presented("tk_short_00"), None);
        assert_eq!(split_presented(&key.replace("tk_", "xx_")), None);
        assert_eq!(
            split_presented(&format!("tk_{}_{}", "g".repeat(16), "0".repeat(64))),
            None
        );
    }

    #[test]
    fn scopes() {
        let d = DistributorId::parse("d-1").unwrap();
        let other = DistributorId::parse("d-2").unwrap();
        assert!(Scope::Erp.may_read(&other));
        let own = Scope::Distributor {
            distributor_id: d.clone(),
        };
        assert!(own.may_read(&d));
        assert!(!own.may_read(&other));
    }
}
