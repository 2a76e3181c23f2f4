//! Platform apps' signing secrets, in AWS Secrets Manager.
//!
//! One secret per app, named `{prefix}/{platform}/{app}`, holding
//! `{"secrets": ["<current>", "<previous>"]}`: a platform signs with the new
//! secret some time after a rotation (Shopify: up to an hour), so both are
//! accepted until the previous one is retired. Written only by the admin
//! API, read only by order intake; never in the template, the environment,
//! an API answer or a log line.

use aws_sdk_secretsmanager::Client;
use serde::{Deserialize, Serialize};
use tier_domain::ids::{AppId, Platform};

use crate::error::StoreError;

/// At most the current secret and the one it replaced.
pub const MAX_SECRETS: usize = 2;

#[derive(Clone, Debug)]
pub struct SecretStore {
    client: Client,
    prefix: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    secrets: Vec<String>,
}

impl SecretStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    fn name(&self, platform: &Platform, app: &AppId) -> String {
        format!("{}/{platform}/{app}", self.prefix)
    }

    /// The app's secrets, newest first; empty when it has none.
    pub async fn get(&self, platform: &Platform, app: &AppId) -> Result<Vec<String>, StoreError> {
        let name = self.name(platform, app);
        match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => {
                let raw = out.secret_string.unwrap_or_default();
                let stored: Stored = serde_json::from_str(&raw).map_err(|e| {
                    StoreError::corrupt(
                        &(name.clone(), "SECRET".into()),
                        format!("not a list of secrets: {e}"),
                    )
                })?;
                Ok(stored.secrets)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(StoreError::aws("GetSecretValue", e)),
        }
    }

    /// Makes `secret` the app's current one. With `keep_previous`, the
    /// secret it replaces is still accepted (a rotation); without, only
    /// the new one is. Setting the current secret again changes nothing.
    /// Returns how many are kept, and whether they changed.
    pub async fn rotate(
        &self,
        platform: &Platform,
        app: &AppId,
        secret: &str,
        keep_previous: bool,
    ) -> Result<(usize, bool), StoreError> {
        let existing = self.get(platform, app).await?;
        let mut secrets = vec![secret.to_owned()];
        if keep_previous {
            secrets.extend(existing.iter().filter(|s| *s != secret).take(1).cloned());
        }
        secrets.truncate(MAX_SECRETS);
        if secrets == existing {
            return Ok((secrets.len(), false));
        }
        let body = serde_json::to_string(&Stored {
            secrets: secrets.clone(),
        })
        .expect("strings serialise");
        let name = self.name(platform, app);
        if existing.is_empty() {
            let created = self
                .client
                .create_secret()
                .name(&name)
                .secret_string(&body)
                .description("Signing secrets of a platform app (current first)")
                .send()
                .await;
            match created {
                Ok(_) => return Ok((secrets.len(), true)),
                // Created by a concurrent call, or deleted and still
                // scheduled: fall through to a new version.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_exists_exception()) => {}
                Err(e) => return Err(StoreError::aws("CreateSecret", e)),
            }
        }
        self.client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&body)
            .send()
            .await
            .map_err(|e| StoreError::aws("PutSecretValue", e))?;
        Ok((secrets.len(), true))
    }
}
