//! Configuration comes from environment variables in Lambda and from the
//! template's resolved `Environment` block in the local stack. Both become an
//! [`Env`], read once at start-up.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Clone, Debug, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_map(map: HashMap<String, String>) -> Self {
        Self(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }
}

/// The brand's decline rule, from `DECLINE_THRESHOLD_PCT` and
/// `DECLINE_MIN_BASE` (20 % on at least 1,000.00 by default): the admin
/// API's region analytics default to the same.
pub fn decline_rule(env: &Env) -> Result<tier_domain::analytics::DeclineRule, ConfigError> {
    use tier_domain::analytics::DeclineRule;
    let default = DeclineRule::default();
    let threshold = env
        .get("DECLINE_THRESHOLD_PCT")
        .map(str::to_owned)
        .unwrap_or_else(|| default.threshold_pct.to_string());
    let base = env
        .get("DECLINE_MIN_BASE")
        .map(str::to_owned)
        .unwrap_or_else(|| default.min_base.to_string());
    DeclineRule::parse(&threshold, &base).map_err(|reason| ConfigError::Invalid {
        name: "DECLINE_THRESHOLD_PCT",
        reason,
    })
}
