//! Who is asking: `Authorization: Bearer tk_<id>_<secret>` (or
//! `X-Api-Key`). The key's record is read with the rest of the lookup's
//! first round trip; its secret is compared by hash in constant time.

use lambda_http::Request;
use sha2::{Digest, Sha256};
use tier_domain::access::{self, ApiKey};
use tier_runtime::http::{self, ApiError};
use tier_store::item::Item;

pub struct Presented<'a> {
    pub id: &'a str,
    secret: &'a str,
}

pub fn presented(req: &Request) -> Result<Presented<'_>, ApiError> {
    let raw = http::header(req.headers(), "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
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
