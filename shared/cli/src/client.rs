//! The admin API over HTTP, and the one place its answers become
//! [`CliError`]s: 2xx is the answer's JSON, 4xx a refusal with the API's
//! `code` and `message`, 5xx and transport failures are "unavailable".

use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::Method;
use serde_json::Value;

use crate::config::Connection;
use crate::error::CliError;

/// What a path segment must escape: everything a URL would read as
/// structure. Ids are ASCII (`A-Za-z0-9-_.:@`), but a typo should reach the
/// API as the typo, not as another path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// One path segment, escaped.
pub fn seg(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

/// A query string from pairs, escaped.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!(
                    "{k}={}",
                    utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A request body.
pub enum Payload {
    None,
    Json(Value),
    /// Bytes of a file as they are, with their media type.
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
    /// As `Raw`, read out in chunks that tick `progress` as they are sent.
    Upload {
        content_type: &'static str,
        bytes: Vec<u8>,
        progress: indicatif::ProgressBar,
    },
}

/// Uploads go out in chunks of this size: small enough that the bar
/// moves smoothly over a slow link, large enough not to matter on a fast one.
const CHUNK: usize = 64 * 1024;

pub struct Client {
    http: reqwest::Client,
    conn: Connection,
}

impl Client {
    pub fn new(conn: Connection, timeout: Duration) -> Result<Self, CliError> {
        // reqwest's rustls takes the process's default provider and panics
        // without one: the same aws-lc-rs provider the functions install
        // (tier_runtime::tls), here without the AWS SDK the CLI never uses.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .user_agent(concat!("tiers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, conn })
    }

    pub fn endpoint(&self) -> &str {
        &self.conn.endpoint
    }

    /// `path` is under `/v1/admin/`, its segments already escaped.
    pub async fn call(&self, method: Method, path: &str, body: Payload) -> Result<Value, CliError> {
        let url = format!("{}/v1/admin/{}", self.conn.endpoint, path);
        let mut req = self
            .http
            .request(method, &url)
            .header("x-admin-key", &self.conn.api_key);
        if let Some(actor) = &self.conn.actor {
            req = req.header("x-actor", actor);
        }
        req = match body {
            Payload::None => req,
            Payload::Json(v) => req.json(&v),
            Payload::Raw {
                content_type,
                bytes,
            } => req.header("content-type", content_type).body(bytes),
            Payload::Upload {
                content_type,
                bytes,
                progress,
            } => {
                let len = bytes.len() as u64;
                progress.set_length(len);
                let chunks: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
                let stream = futures::stream::iter(chunks.into_iter().map(move |c| {
                    progress.inc(c.len() as u64);
                    Ok::<_, std::io::Error>(c)
                }));
                req.header("content-type", content_type)
                    .header("content-length", len)
                    .body(reqwest::Body::wrap_stream(stream))
            }
        };
        let resp = req.send().await.map_err(|source| CliError::Unreachable {
            endpoint: self.conn.endpoint.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|source| CliError::Unreachable {
            endpoint: self.conn.endpoint.clone(),
            source,
        })?;
        interpret(&url, status, &bytes)
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, Payload::None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::PUT, path, Payload::Json(body)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Payload::Json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, Payload::None).await
    }
}

/// An answer as the CLI sees it. API Gateway's own answers (its `429`,
/// `413`, `{"message": "Not Found"}`) carry no `code`: they are named by
/// their status.
pub fn interpret(url: &str, status: u16, bytes: &[u8]) -> Result<Value, CliError> {
    let body: Option<Value> = if bytes.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice(bytes).ok()
    };
    let snippet = || String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    let field = |b: &Option<Value>, name: &str| {
        b.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match status {
        200..=299 => body.ok_or_else(|| CliError::NotJson {
            url: url.to_owned(),
            status,
            snippet: snippet(),
        }),
        400..=499 => Err(CliError::Refused {
            status,
            code: field(&body, "code").unwrap_or_else(|| format!("http_{status}")),
            message: field(&body, "message").unwrap_or_else(snippet),
            errors: body.as_ref().and_then(|b| b.get("errors")).cloned(),
            body: body.unwrap_or(Value::Null),
        }),
        _ => Err(CliError::Server {
            status,
            code: field(&body, "code").unwrap_or_else(|| format!("http_{status}")),
            message: field(&body, "message").unwrap_or_else(snippet),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[test]
    fn statuses_map_to_exit_codes() {
        let ok = interpret("u", 200, br#"{"a": 1}"#).unwrap();
        assert_eq!(ok["a"], 1);
        assert_eq!(interpret("u", 204, b"").unwrap(), Value::Null);
        let e = interpret(
            "u",
            404,
            br#"{"code": "distributor_not_found", "message": "no"}"#,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), exit::REFUSED);
        assert!(e.to_string().contains("404 distributor_not_found"), "{e}");
        let e = interpret("u", 429, br#"{"message": "Too Many Requests"}"#).unwrap_err();
        assert!(e.to_string().contains("http_429"), "{e}");
        assert_eq!(e.exit_code(), exit::REFUSED);
        let e = interpret("u", 503, br#"{"code": "unavailable", "message": "later"}"#).unwrap_err();
        assert_eq!(e.exit_code(), exit::UNAVAILABLE);
        let e = interpret("u", 200, b"<html>").unwrap_err();
        assert_eq!(e.exit_code(), exit::UNAVAILABLE);
    }

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(seg("a:b@c"), "a:b@c");
        assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(
            query(&[("tier", Some("gold".into())), ("cursor", None)]),
            "?tier=gold"
        );
        assert_eq!(query(&[("x", None)]), "");
    }
}
