//! TLS of the functions' HTTPS clients: the AWS SDK's ([`crate::aws`]) and
//! the 抖店 open API's (reqwest). One crypto stack, rustls with the aws-lc-rs
//! provider that the AWS SDK links, and one choice of roots for both:
//!
//! - By default the roots compiled into the binary (Mozilla's list, as the
//!   `webpki-roots` crate carries it, already parsed): nothing is read or
//!   decoded at a cold start. AWS's endpoints and the platforms' APIs chain
//!   to these public roots.
//! - `TLS_ROOTS_FILE` (the template's `TlsRootsFile`): exactly the roots of
//!   that PEM bundle instead, read once per process. For a brand whose
//!   traffic passes a TLS-inspecting proxy or firewall with a CA of its own.
//! - `SSL_CERT_FILE`, `SSL_CERT_DIR` or a proxy variable, which the template
//!   never sets: the AWS SDK's own client, which follows them all, and
//!   reqwest's own loading of the system roots (see [`Roots::from_env`]).
//!
//! reqwest is built without a provider of its own
//! (`rustls-tls-native-roots-no-provider`) and takes the process's default.
//! Until one is installed, building any reqwest client panics ("No provider
//! set") in every binary that links reqwest with TLS, its plain-HTTP
//! clients too, since Cargo turns the feature on for all of them. So
//! [`install_crypto_provider`] runs before any client is built: in the
//! adapter that needs HTTPS, and in the local stack and its clients.

use std::sync::{Arc, OnceLock};

use crate::env::{ConfigError, Env};

pub use rustls::ClientConfig;

/// Makes aws-lc-rs the process's rustls provider, unless one is already.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is then used.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Where a process's HTTPS clients take their roots from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The roots compiled into the binary.
    Compiled,
    /// The roots of this PEM bundle (`TLS_ROOTS_FILE`).
    File(String),
    /// Whatever the clients' own loading finds: `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, else the system's certificate directory. The AWS SDK
    /// keeps its own client then, for the proxy variables too.
    System,
}

/// Variables that only the AWS SDK's own client and reqwest's own root
/// loading follow: the certificate locations of OpenSSL's convention, and
/// the proxies that hyper-util's matcher reads (for either case).
const SYSTEM_VARIABLES: [&str; 8] = [
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Roots {
    /// The choice `env` asks for. Anything set that our clients would not
    /// follow hands TLS back to the clients' own loading: ignoring a
    /// certificate file or a proxy someone set on a function would break its
    /// calls in a way much harder to see than a slower start. A roots file
    /// as well would be ignored then, so that is refused.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let system = SYSTEM_VARIABLES.iter().find(|name| env.get(name).is_some());
        match (system, env.get("TLS_ROOTS_FILE")) {
            (Some(name), Some(_)) => Err(ConfigError::Invalid {
                name: "TLS_ROOTS_FILE",
                reason: format!(
                    "cannot be combined with {name}, which leaves TLS to the AWS SDK's own \
                     client; give that client its roots with SSL_CERT_FILE instead"
                ),
            }),
            (Some(_), None) => Ok(Self::System),
            (None, Some(file)) => Ok(Self::File(file.to_owned())),
            (None, None) => Ok(Self::Compiled),
        }
    }

    /// The rustls configuration of our own clients, or `None` for
    /// [`Roots::System`]. The compiled-in one is built once per process;
    /// a file is read each call, so call this once.
    pub fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
        match self {
            Self::Compiled => Ok(Some(compiled_roots())),
            Self::File(path) => roots_from_file(path).map(|roots| Some(Arc::new(config(roots)))),
            Self::System => Ok(None),
        }
    }
}

/// The compiled-in roots' configuration, shared by every client.
pub fn compiled_roots() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // Trust anchors as the crate stores them (subject, key, name
            // constraints): a copy of borrowed slices, no certificate parsed.
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(config(roots))
        })
        .clone()
}

fn roots_from_file(path: &str) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid = |reason: String| ConfigError::Invalid {
        name: "TLS_ROOTS_FILE",
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("{path}: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        // Every HTTPS call would fail with an unknown issuer: better to say
        // why at the start.
        return Err(invalid(format!("{path} holds no usable certificate")));
    }
    if unusable > 0 {
        tracing::warn!(path, unusable, "certificates of TLS_ROOTS_FILE skipped");
    }
    Ok(roots)
}

/// TLS 1.2 and 1.3 over aws-lc-rs (the provider the SDK's client uses, so
/// the binaries carry one crypto library), trusting `roots`.
fn config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
pub(crate) fn config_trusting(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    Arc::new(config(roots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_map(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn installing_twice_keeps_the_first() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn compiled_roots_unless_asked_otherwise() {
        let roots = |vars: &[(&str, &str)]| Roots::from_env(&env(vars));
        assert_eq!(roots(&[]).unwrap(), Roots::Compiled);
        // The template's default: the parameter left empty.
        assert_eq!(roots(&[("TLS_ROOTS_FILE", "")]).unwrap(), Roots::Compiled);
        assert_eq!(
            roots(&[("TLS_ROOTS_FILE", "/opt/roots.pem")]).unwrap(),
            Roots::File("/opt/roots.pem".into())
        );
        for name in SYSTEM_VARIABLES {
            assert_eq!(roots(&[(name, "x")]).unwrap(), Roots::System, "{name}");
            assert_eq!(roots(&[(name, "")]).unwrap(), Roots::Compiled, "{name}");
            let err = roots(&[(name, "x"), ("TLS_ROOTS_FILE", "/opt/roots.pem")]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_compiled_roots_are_the_public_ones() {
        let config = compiled_roots();
        assert!(Arc::ptr_eq(&config, &compiled_roots()), "built once");
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert!(Roots::Compiled.client_config().unwrap().is_some());
        assert!(Roots::System.client_config().unwrap().is_none());
    }

    #[test]
    fn a_roots_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("tls-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, crate::aws_http::tests::TEST_CA).unwrap();
        let missing = dir.join("missing.pem");

        for bad in [&empty, &missing] {
            let err = Roots::File(bad.display().to_string())
                .client_config()
                .unwrap_err();
            assert!(err.to_string().contains("TLS_ROOTS_FILE"), "{err}");
        }
        assert!(
            Roots::File(good.display().to_string())
                .client_config()
                .unwrap()
                .is_some()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
