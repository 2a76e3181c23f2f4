//! API keys: created, listed, revoked; looked up by id.

use chrono::{DateTime, Utc};
use tier_domain::access::ApiKey;

use crate::error::StoreError;
use crate::item::{self, Item, new_item, s};
use crate::keys;
use crate::table::Table;

pub fn parse_api_key(item: &Item) -> Result<ApiKey, StoreError> {
    let mut key: ApiKey = item::get_json(item, "key")?;
    key.secret_sha256 = item::get_s(item, "secret_sha256")?.to_owned();
    if let Some(at) = item::opt_s(item, "revoked_at") {
        key.revoked_at = Some(
            at.parse()
                .map_err(|_| StoreError::corrupt(&item::key_of(item), "revoked_at"))?,
        );
    }
    Ok(key)
}

impl Table {
    /// A key's stored record, to authenticate a presented key against.
    pub async fn api_key_record(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get(&keys::api_key(id), true).await
    }

    pub async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let item = new_item(
            &keys::api_key(&key.id),
            "api_key",
            [
                ("key", item::json(key)),
                ("secret_sha256", s(&key.secret_sha256)),
                (keys::GSI1PK, s(keys::API_KEYS_INDEX)),
                (
                    keys::GSI1SK,
                    s(format!("{}#{}", key.created_at.to_rfc3339(), key.id)),
                ),
            ],
        );
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// Every key, oldest first (revoked ones included, marked).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :g")
                .expression_attribute_values(":g", s(keys::API_KEYS_INDEX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("Query", e))?;
            for i in page.items.unwrap_or_default() {
                out.push(parse_api_key(&i)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Marks a key revoked. `false` if there is no such key. Revoking twice
    /// keeps the first time.
    pub async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_if(
            &keys::api_key(id),
            "SET revoked_at = if_not_exists(revoked_at, :at)",
            "attribute_exists(PK)",
            [(":at", s(at.to_rfc3339()))],
        )
        .await
    }
}
