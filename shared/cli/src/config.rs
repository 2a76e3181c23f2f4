//! Where the admin API is and which key opens it: `--endpoint` or
//! `TIERS_ENDPOINT`, `TIERS_API_KEY`, else a profile of the profiles file.
//!
//! The key is never a command-line flag: arguments are visible to every
//! user of the machine (`ps`), the environment and a file only to the owner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;

/// One profile of `profiles.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub endpoint: Option<String>,
    /// The admin key (`X-Admin-Key`).
    pub key: Option<String>,
    /// Who manual tier changes are recorded as (`X-Actor`).
    pub actor: Option<String>,
}

/// What the global options and the environment say.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub endpoint: Option<String>,
    pub api_key: Option<String>,
    pub profile: Option<String>,
    pub profiles_file: Option<PathBuf>,
    pub actor: Option<String>,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
}

/// A resolved connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub endpoint: String,
    pub api_key: String,
    pub actor: Option<String>,
}

/// The profiles file: `TIERS_PROFILES`, else
/// `$XDG_CONFIG_HOME/tiers/profiles.toml`, else
/// `~/.config/tiers/profiles.toml`.
pub fn profiles_path(s: &Sources) -> Option<PathBuf> {
    if let Some(p) = &s.profiles_file {
        return Some(p.clone());
    }
    let base = s
        .xdg_config_home
        .clone()
        .filter(|p| p.is_absolute())
        .or_else(|| s.home.as_ref().map(|h| h.join(".config")))?;
    Some(base.join("tiers").join("profiles.toml"))
}

fn read_profiles(path: &Path) -> Result<BTreeMap<String, Profile>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: not a profiles file: {e}", path.display())))
}

/// Flags and variables win over the profile, field by field, so that
/// `TIERS_ENDPOINT` can point a profile's key at another stack. A profile
/// named with `--profile` must exist; without one, `default` is used if
/// the file has it.
pub fn resolve(s: &Sources) -> Result<Connection, CliError> {
    let path = profiles_path(s);
    let profile = match (&s.profile, &path) {
        (Some(name), Some(path)) => {
            let profiles = read_profiles(path)?;
            Some(profiles.get(name).cloned().ok_or_else(|| {
                CliError::usage(format!(
                    "no profile {name:?} in {} (it has: {})",
                    path.display(),
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?)
        }
        (Some(name), None) => {
            return Err(CliError::usage(format!(
                "profile {name:?} asked for, but there is no profiles file (set TIERS_PROFILES)"
            )));
        }
        (None, Some(path)) if path.exists() => read_profiles(path)?.get("default").cloned(),
        (None, _) => None,
    }
    .unwrap_or_default();
    let endpoint = s.endpoint.clone().or(profile.endpoint).ok_or_else(|| {
        CliError::usage("no endpoint: pass --endpoint, set TIERS_ENDPOINT, or use a profile")
    })?;
    let api_key = s.api_key.clone().or(profile.key).ok_or_else(|| {
        CliError::usage("no admin key: set TIERS_API_KEY, or use a profile with a key")
    })?;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(CliError::usage(format!(
            "endpoint {endpoint:?} is not an http:// or https:// URL"
        )));
    }
    Ok(Connection {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        api_key,
        actor: s.actor.clone().or(profile.actor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "tiers-profiles-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_win_over_the_profile_field_by_field() {
        let path = file(
            "[default]\nendpoint = \"http://a\"\nkey = \"k-default\"\n\n[prod]\nendpoint = \"https://p/\"\nkey = \"k-prod\"\n",
        );
        let mut s = Sources {
            profiles_file: Some(path.clone()),
            ..Sources::default()
        };
        let c = resolve(&s).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.api_key.as_str()),
            ("http://a", "k-default")
        );
        s.profile = Some("prod".into());
        let c = resolve(&s).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.api_key.as_str()),
            ("https://p", "k-prod")
        );
        s.endpoint = Some("http://other".into());
        let c = resolve(&s).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.api_key.as_str()),
            ("http://other", "k-prod")
        );
        s.profile = Some("nope".into());
        let e = resolve(&s).unwrap_err();
        assert!(e.to_string().contains("default, prod"), "{e}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_default_file_is_under_the_config_home() {
        let s = Sources {
            home: Some("/home/op".into()),
            ..Sources::default()
        };
        assert_eq!(
            profiles_path(&s).unwrap(),
            PathBuf::from("/home/op/.config/tiers/profiles.toml")
        );
        let s = Sources {
            home: Some("/home/op".into()),
            xdg_config_home: Some("/cfg".into()),
            ..Sources::default()
        };
        assert_eq!(
            profiles_path(&s).unwrap(),
            PathBuf::from("/cfg/tiers/profiles.toml")
        );
    }

    #[test]
    fn nothing_configured_is_a_usage_error() {
        let e = resolve(&Sources::default()).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
    }
}
