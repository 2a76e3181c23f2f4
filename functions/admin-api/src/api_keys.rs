//! API keys for integrations.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiKey {
    name: String,
    scope: Scope,
}

impl AdminApi {
    pub(crate) async fn create_api_key(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let new: NewApiKey = http::parse_json(body)?;
        if new.name.trim().is_empty() || new.name.chars().count() > 128 {
            return Err(ApiError::unprocessable(
                "invalid_document",
                "name: 1 to 128 characters",
            ));
        }
        if let Scope::Distributor { distributor_id } = &new.scope
            && self.table.distributor(distributor_id).await?.is_none()
        {
            return Err(ApiError::unprocessable(
                "unknown_distributor",
                format!("distributor {distributor_id} does not exist"),
            ));
        }
        // 16 + 64 hex characters from two v4 UUIDs: 244 random bits.
        let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let key = ApiKey {
            id: id.clone(),
            name: new.name,
            scope: new.scope,
            secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.table.create_api_key(&key).await?;
        let mut answer = serde_json::to_value(&key).expect("keys serialise");
        // The only time the key is shown: it is stored hashed.
        answer["key"] = json!(format!("{}{id}_{secret}", access::KEY_PREFIX));
        Ok(http::json(StatusCode::CREATED, &answer))
    }

    pub(crate) async fn revoke_api_key(&self, id: &str) -> Result<Response<Body>, ApiError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::not_found(
                "api_key_not_found",
                format!("no API key {id}"),
            ));
        }
        if !self.table.revoke_api_key(id, Utc::now()).await? {
            return Err(ApiError::not_found(
                "api_key_not_found",
                format!("no API key {id}"),
            ));
        }
        Ok(http::json(
            StatusCode::OK,
            &json!({"id": id, "revoked": true}),
        ))
    }
}
