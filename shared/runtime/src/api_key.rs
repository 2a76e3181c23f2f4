//! Who is asking: `Authorization: Bearer tk_<id>_<secret>` (or
//! `X-Api-Key`). The key's record is read with the rest of the lookup's
//! first round trip; its secret is compared by hash in constant time.

use crate::http::{self, ApiError};
use lambda_http::Request;
use sha2::{Digest, Sha256};
use tier_domain::access::{self, ApiKey};
use tier_store::item::Item;

pub struct Presented<'a> {
    pub id: &'a str,
    secret: &'a str,
}

pub fn presented(req: &Request) -> Result<Presented<'_>, ApiError> {
    let raw = http::header(req.headers(), "authorization")
        .and_then(bearer_token)
        .or_else(|| http::header(req.headers(), "x-api-key"))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_api_key",
                "send an API key: Authorization: Bearer <key>",
            )
        })?;
    let (id, secret) = access::split_presented(raw.trim())
        .ok_or_else(|| ApiError::unauthorized("invalid_api_key", "the API key is not valid"))?;
    Ok(Presented { id, secret })
}

/// The token of a `Bearer` credential. The scheme is case-insensitive
/// (RFC 9110 section 11.1): `bearer` and `BEARER` are `Bearer`.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

pub fn authenticate(record: Option<&Item>, presented: &Presented<'_>) -> Result<ApiKey, ApiError> {
    let invalid = || ApiError::unauthorized("invalid_api_key", "the API key is not valid");
    let key = record
        .map(tier_store::api_keys::parse_api_key)
        .transpose()?
        .ok_or_else(invalid)?;
    let digest = hex::encode(Sha256::digest(presented.secret.as_bytes()));
    if !http::secret_matches(&digest, &key.secret_sha256) {
        return Err(invalid());
    }
    if key.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "revoked_api_key",
            "the API key has been revoked",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer tk_a", "bearer tk_a", "BEARER tk_a"] {
            assert_eq!(bearer_token(header), Some("tk_a"), "{header}");
        }
        assert_eq!(bearer_token("Basic tk_a"), None);
        assert_eq!(bearer_token("Bearertk_a"), None);
    }
}
