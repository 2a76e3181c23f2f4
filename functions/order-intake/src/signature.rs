//! The generic signed webhook format:
//! `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.raw_body">`.
//!
//! During a secret rotation the sender signs with both secrets and sends two
//! `v1` values; we accept a match of any of ours against any of theirs. The
//! timestamp bounds replays to the tolerance window.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature header is missing")]
    Missing,
    #[error("the X-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature timestamp is {0} s away from now; the tolerance is {TOLERANCE_SECS} s")]
    Stale(i64),
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` over the raw body bytes at time `now` (unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                // One timestamp: with two, which one the HMAC covers is
                // ambiguous, and a stale signature could ride a fresh `t`.
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("t appears more than once"));
                }
                let t = t
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not a unix time"))?;
                // Seconds, not milliseconds: 10^11 s is the year 5138.
                if !(0..100_000_000_000).contains(&t) {
                    return Err(SignatureError::Malformed(
                        "t is not a unix time in seconds (milliseconds?)",
                    ));
                }
                timestamp = Some(t)
            }
            Some(("v1", sig)) => candidates
                .push(hex::decode(sig).map_err(|_| SignatureError::Malformed("v1 is not hex"))?),
            // Other schemes (v0, future versions) are ignored, as senders expect.
            Some(_) => {}
            None => return Err(SignatureError::Malformed("expected key=value pairs")),
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed("t is missing"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    let skew = now - t;
    if skew.abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale(skew));
    }
    for secret in secrets {
        for candidate in &candidates {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // verify_slice compares in constant time.
            if mac.verify_slice(candidate).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// The header a sender computes; used by the demo and the tests.
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secrets() -> Vec<String> {
        vec!["new-secret".into(), "old-secret".into()]
    }

    #[test]
    fn accepts_a_fresh_signature_by_any_current_secret() {
        let body = br#"{"a":1}"#;
        assert_eq!(
            verify(
                Some(&sign(body, "new-secret", NOW)),
                body,
                &secrets(),
                NOW + 10
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                Some(&sign(body, "old-secret", NOW)),
                body,
                &secrets(),
                NOW - 10
            ),
            Ok(())
        );
    }

    #[test]
    fn accepts_several_v1_values_during_rotation() {
        let body = b"x";
        let other = sign(body, "retired", NOW);
        let ours = sign(body, "new-secret", NOW);
        let header = format!("{},{}", other, ours.split_once(',').unwrap().1);
        assert_eq!(verify(Some(&header), body, &secrets(), NOW), Ok(()));
    }

    #[test]
    fn refuses_tampering_staleness_and_garbage() {
        let body = b"payload";
        let header = sign(body, "new-secret", NOW);
        assert_eq!(
            verify(Some(&header), b"payloaD", &secrets(), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), body, &secrets(), NOW + 301),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            verify(Some(&header), body, &secrets(), NOW - 301),
            Err(SignatureError::Stale(-301))
        );
        assert_eq!(
            verify(None, body, &secrets(), NOW),
            Err(SignatureError::Missing)
        );
        assert!(matches!(
            verify(Some("t=x,v1=00"), body, &secrets(), NOW),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(Some(&format!("t={NOW}")), body, &secrets(), NOW),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(Some(&format!("t={NOW},v1=zz")), body, &secrets(), NOW),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify(Some(&sign(body, "wrong", NOW)), body, &secrets(), NOW),
            Err(SignatureError::Mismatch)
        );
        // A second `t`, before or after, is refused, not chosen from.
        let v1 = header.split_once(',').unwrap().1;
        for twice in [
            format!("t=1,{header}"),
            format!("{header},t=1"),
            format!("t={NOW},t={NOW},{v1}"),
        ] {
            assert_eq!(
                verify(Some(&twice), body, &secrets(), NOW),
                Err(SignatureError::Malformed("t appears more than once")),
                "{twice}"
            );
        }
        // Milliseconds are malformed, not stale.
        let millis = format!("t={},{v1}", NOW * 1000);
        assert!(matches!(
            verify(Some(&millis), body, &secrets(), NOW),
            Err(SignatureError::Malformed(_))
        ));
    }
}
