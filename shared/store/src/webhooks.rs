//! What order intake needs from the table: the store's owner, whether the
//! event was seen before, and which SKUs exist, all in one BatchGetItem.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tier_domain::ids::{DistributorId, EventId, Platform, Sku, StoreId};

use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::table::Table;

/// Platforms retry for up to a few days; receipts are kept for 30.
const RECEIPT_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// SHA-256 of the raw body, so a reused event id with a different body
    /// is told apart from a retry.
    pub body_sha256: String,
    pub received_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct IntakeView {
    pub owner: Option<DistributorId>,
    pub receipt: Option<Receipt>,
    pub known_skus: HashSet<Sku>,
}

impl Table {
    pub async fn intake_view(&self, platform: &Platform, store: &StoreId, event: &EventId, skus: &[Sku]) -> Result<IntakeView, StoreError> {
        let store_key = keys::store(platform, store);
        let receipt_key = keys::webhook(platform, store, event);
        let mut wanted = vec![store_key.clone(), receipt_key.clone()];
        wanted.extend(skus.iter().map(keys::prices));
        // Consistent: a retry that arrives right after the first delivery
        // must see its receipt.
        let items = self.batch_get(&wanted, true).await?;
        let owner = items
            .get(&store_key)
            .map(|i| item::get_s(i, "distributor").and_then(|d| DistributorId::parse(d).map_err(|e| StoreError::corrupt(&store_key, e.to_string()))))
            .transpose()?;
        let receipt = items
            .get(&receipt_key)
            .map(|i| Ok::<_, StoreError>(Receipt { body_sha256: item::get_s(i, "body_sha256")?.to_owned(), received_at: item::get_s(i, "received_at")?.to_owned() }))
            .transpose()?;
        let known_skus = skus.iter().filter(|sku| items.contains_key(&keys::prices(sku))).cloned().collect();
        Ok(IntakeView { owner, receipt, known_skus })
    }

    /// Written after the event is enqueued: a crash in between means the
    /// platform's retry enqueues it again, which the consumers de-duplicate.
    pub async fn put_receipt(&self, platform: &Platform, store: &StoreId, event: &EventId, body_sha256: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let expires = at.timestamp() + RECEIPT_TTL_DAYS * 86_400;
        let item = new_item(
            &keys::webhook(platform, store, event),
            "webhook_receipt",
            [("body_sha256", s(body_sha256)), ("received_at", s(at.to_rfc3339())), (keys::TTL, n(expires))],
        );
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }
}
