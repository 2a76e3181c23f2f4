//! A small client of the product's HTTP API: admin calls, signed webhooks
//! and price lookups. The demo and the tests speak to the local API only
//! through it, never to the tables.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::stack::LocalStack;

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    pub base_url: String,
    pub admin_key: String,
    pub webhook_secret: String,
    /// The API key price lookups are made with (`Authorization: Bearer`).
    pub api_key: Option<String>,
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The stable error code of an error response.
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
}

impl ApiClient {
    pub fn for_stack(stack: &LocalStack) -> Self {
        tier_runtime::tls::install_crypto_provider();
        Self {
            http: reqwest::Client::new(),
            base_url: stack.base_url.clone(),
            admin_key: stack.admin_key.clone(),
            webhook_secret: stack.webhook_secret.clone(),
            api_key: None,
        }
    }

    /// The same API and keys over connections of its own: for a caller on
    /// another runtime, whose pooled connections would die with it.
    pub fn fresh(&self) -> Self {
        Self {
            http: reqwest::Client::new(),
            ..self.clone()
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Reply> {
        let resp = req.send().await.context("calling the local API")?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).with_context(|| {
                format!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })?
        };
        Ok(Reply { status, body })
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut req = self
            .http
            .request(
                method,
                format!(
                    "{}/v1/admin/{}",
                    self.base_url,
                    path.trim_start_matches('/')
                ),
            )
            .header("x-admin-key", &self.admin_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.admin(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// Delivers a webhook signed with the stack's secret, as a platform would,
    /// naming the platform and store in the document unless it already does.
    pub async fn webhook(&self, platform: &str, store: &str, doc: &Value) -> anyhow::Result<Reply> {
        let mut doc = doc.clone();
        if let Some(fields) = doc.as_object_mut() {
            fields.entry("platform").or_insert_with(|| json!(platform));
            fields.entry("store").or_insert_with(|| json!(store));
        }
        let body = serde_json::to_vec(&doc)?;
        let signature =
            order_intake::signature::sign(&body, &self.webhook_secret, Utc::now().timestamp());
        self.webhook_raw(platform, store, body, Some(signature))
            .await
    }

    pub async fn webhook_raw(
        &self,
        platform: &str,
        store: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> anyhow::Result<Reply> {
        let mut req = self
            .http
            .post(format!("{}/webhooks/{platform}/{store}", self.base_url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("x-signature", s);
        }
        self.send(req).await
    }

    fn with_api_key(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    pub async fn prices(&self, distributor: &str, skus: &[&str]) -> anyhow::Result<Reply> {
        self.prices_query(distributor, skus, &[]).await
    }

    /// A lookup with extra query parameters (`qty`, `include`).
    pub async fn prices_query(
        &self,
        distributor: &str,
        skus: &[&str],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut query: Vec<(&str, &str)> = skus.iter().map(|s| ("sku", *s)).collect();
        query.extend_from_slice(extra);
        self.send(
            self.with_api_key(
                self.http
                    .get(format!(
                        "{}/v1/distributors/{distributor}/prices",
                        self.base_url
                    ))
                    .query(&query),
            ),
        )
        .await
    }

    /// A GET with the client's API key (`/v1/distributors/{id}/tier`, ...).
    pub async fn read(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(self.with_api_key(self.http.get(format!("{}{path}", self.base_url))))
            .await
    }

    pub async fn prices_batch(&self, body: &Value) -> anyhow::Result<Reply> {
        self.send(
            self.with_api_key(
                self.http
                    .post(format!("{}/v1/prices:batch", self.base_url))
                    .json(body),
            ),
        )
        .await
    }

    /// Publishes a price book as CSV.
    /// POSTs `body` to `path` (from the root) with exactly `headers`, as a
    /// platform delivers its own format; the answer's body as text too.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<(Reply, String)> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.context("calling the local API")?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Ok((Reply { status, body }, text))
    }

    pub async fn put_csv(&self, path: &str, csv: &str) -> anyhow::Result<Reply> {
        let req = self
            .http
            .put(format!(
                "{}/v1/admin/{}",
                self.base_url,
                path.trim_start_matches('/')
            ))
            .header("x-admin-key", &self.admin_key)
            .header("content-type", "text/csv")
            .body(csv.to_owned());
        self.send(req).await
    }

    /// Creates an API key through the admin API and returns it.
    pub async fn create_api_key(&self, name: &str, scope: Value) -> anyhow::Result<String> {
        let r = self
            .admin(
                reqwest::Method::POST,
                "api-keys",
                Some(&json!({"name": name, "scope": scope})),
            )
            .await?;
        anyhow::ensure!(
            r.status == 201,
            "creating an API key: {} {}",
            r.status,
            r.body
        );
        Ok(r.body["key"].as_str().unwrap_or_default().to_owned())
    }
}

/// Webhook documents in the generic format.
pub mod docs {
    use super::*;
    use rust_decimal::Decimal;

    /// `lines` are (sku, quantity, unit price); line amounts and the total
    /// are computed exactly.
    pub fn paid(
        event_id: &str,
        order_id: &str,
        buyer: &str,
        lines: &[(&str, u32, &str)],
        at: DateTime<Utc>,
    ) -> Value {
        let mut total = Decimal::ZERO;
        let lines: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (sku, qty, price))| {
                let amount = price.parse::<Decimal>().expect("demo prices are decimals") * Decimal::from(*qty);
                total += amount;
                json!({"line_id": (i + 1).to_string(), "sku": sku, "quantity": qty, "unit_price": price, "amount": format!("{amount:.2}")})
            })
            .collect();
        json!({"event_id": event_id, "type": "order.paid", "occurred_at": at, "order_id": order_id, "buyer_id": buyer, "total": format!("{total:.2}"), "lines": lines})
    }

    /// A refund; `returned` lists (line id, quantity) going back to stock.
    pub fn refunded(
        event_id: &str,
        order_id: &str,
        refund_id: &str,
        amount: &str,
        returned: &[(&str, u32)],
        at: DateTime<Utc>,
    ) -> Value {
        let lines: Vec<Value> = returned
            .iter()
            .map(|(l, q)| json!({"line_id": l, "quantity": q}))
            .collect();
        json!({"event_id": event_id, "type": "order.refunded", "occurred_at": at, "order_id": order_id,
               "refund": {"refund_id": refund_id, "amount": amount, "lines": lines}})
    }

    /// A user signing up through the store (a downline user).
    pub fn registered(event_id: &str, user: &str, at: DateTime<Utc>) -> Value {
        json!({"event_id": event_id, "type": "user.registered", "occurred_at": at, "buyer_id": user})
    }

    pub fn cancelled(event_id: &str, order_id: &str, at: DateTime<Utc>) -> Value {
        json!({"event_id": event_id, "type": "order.cancelled", "occurred_at": at, "order_id": order_id})
    }
}
