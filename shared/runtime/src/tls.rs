//! The crypto under the HTTPS clients built here with reqwest (a
//! platform's API): rustls with the aws-lc-rs provider that the AWS SDK's
//! clients already link, so that a binary carries one crypto stack.
//!
//! reqwest is built without a provider of its own
//! (`rustls-tls-native-roots-no-provider`) and takes the process's default.
//! Until one is installed, building any reqwest client panics ("No provider
//! set") in every binary that links reqwest with TLS, its plain-HTTP
//! clients too, since Cargo turns the feature on for all of them. So
//! [`install_crypto_provider`] runs before any client is built: in the
//! adapter that needs HTTPS, and in the local stack and its clients.

/// Makes aws-lc-rs the process's rustls provider, unless one is already.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is then used.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn installing_twice_keeps_the_first() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
