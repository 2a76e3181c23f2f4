//! Alerts: the brand's SNS topic, and the record of each finding published
//! so that it is published once however often the job runs.
//!
//! A finding is claimed before it is published and marked sent after. A job
//! that finds it claimed by a run that has not finished within
//! [`CLAIM_TTL_SECS`] takes it over: a run that died between publishing and
//! marking is then published again, the only case of a second publication.
//! SNS itself delivers at least once to each subscriber.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sns::types::MessageAttributeValue;
use chrono::{DateTime, Utc};
use tier_domain::alerts::Finding;

use crate::error::StoreError;
use crate::item::{n, s};
use crate::keys;
use crate::table::Table;

/// How long a claim holds before another run may take the finding over.
pub const CLAIM_TTL_SECS: i64 = 900;

/// The topic brands subscribe e-mail or HTTPS endpoints (钉钉, 企业微信
/// robots) to.
#[derive(Clone, Debug)]
pub struct Topic {
    client: aws_sdk_sns::Client,
    arn: String,
}

impl Topic {
    pub fn new(client: aws_sdk_sns::Client, arn: impl Into<String>) -> Self {
        Self {
            client,
            arn: arn.into(),
        }
    }

    /// Publishes `finding`: its subject, and as the message its JSON (the
    /// `summary` first, for mail readers), with `kind` and `finding` as
    /// message attributes for subscription filters.
    pub async fn publish(&self, finding: &Finding) -> Result<String, StoreError> {
        let mut body = serde_json::to_value(finding).expect("findings serialise");
        if let Some(map) = body.as_object_mut() {
            map.insert("summary".into(), finding.subject().into());
            map.insert("finding".into(), finding.key().into());
        }
        let attr = |v: String| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("type and value are set")
        };
        let out = self
            .client
            .publish()
            .topic_arn(&self.arn)
            .subject(finding.subject())
            .message(serde_json::to_string_pretty(&body).expect("JSON values serialise"))
            .message_attributes("kind", attr(finding.kind().to_owned()))
            .message_attributes("finding", attr(finding.key()))
            .send()
            .await
            .map_err(|e| StoreError::aws("Publish", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

impl Table {
    /// Claims `key` for publication at `now`: `true` when this run is to
    /// publish it (new, or a claim older than [`CLAIM_TTL_SECS`] that never
    /// got sent), `false` when it was sent or another run holds it.
    pub async fn claim_alert(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_if_named(
            &keys::alert(key),
            "SET entity_type = :e, #state = :claimed, claimed_at = :now ADD attempts :one",
            Some("attribute_not_exists(PK) OR (#state = :claimed AND claimed_at < :stale)"),
            &[("#state", "state")],
            [
                (":e", s("alert")),
                (":claimed", s("claimed")),
                (":now", n(now.timestamp())),
                (":stale", n(now.timestamp() - CLAIM_TTL_SECS)),
                (":one", n(1)),
            ],
        )
        .await
    }

    /// Records `key` as published, with the topic's message id.
    pub async fn alert_sent(
        &self,
        key: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_if_named(
            &keys::alert(key),
            "SET #state = :sent, sent_at = :now, message_id = :m",
            None,
            &[("#state", "state")],
            [
                (":sent", s("sent")),
                (":now", s(now.to_rfc3339())),
                (":m", AttributeValue::S(message_id.to_owned())),
            ],
        )
        .await?;
        Ok(())
    }

    /// Whether `key` was published.
    pub async fn alert_was_sent(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(&keys::alert(key), true)
            .await?
            .is_some_and(|i| crate::item::opt_s(&i, "state") == Some("sent")))
    }
}
