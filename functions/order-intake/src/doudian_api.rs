//! The 抖店 open API, as far as order intake needs it: a shop's access
//! token and an order's detail, which the paid push leaves out.
//!
//! [`OrderDetails`] is the port the detail consumer takes; [`DoudianApi`]
//! its adapter over HTTPS.
//!
//! # Requests
//! Every call is a POST to `{base}/{method, its dots as slashes}`
//! (`/token/create`, `/order/orderDetail`) with the business parameters as
//! the body, in the form they are signed in ([`doudian::param_json`]:
//! compact, keys sorted), and the common parameters in the query:
//! `app_key`, `method`, `v=2`, `timestamp` (unix seconds), `sign_method`
//! (`hmac-sha256`), `sign` ([`doudian::sign_request`]) and, on every call
//! but `token.create`, `access_token`. This is how the platform's own SDKs
//! send them.
//!
//! # Tokens
//! A self-use app (自用型应用) gets a shop's token from `token.create` with
//! `grant_type=authorization_self` and the shop's id, no code. It is valid
//! for `expires_in` seconds (seven days), and kept in memory per app and
//! shop until [`TOKEN_MARGIN`] before then. A call the platform refuses
//! for its token (`isv.access-token-*`: expired, unknown) drops it and is
//! made once more with a new one.
//!
//! # Failures
//! Every answer carries `code`, 10000 on success, and otherwise `msg`,
//! `sub_code` and `sub_msg` (the platform's basic error codes,
//! `guide-docs/212/1427`). A [`FetchError`] says whether asking again may
//! help:
//!
//! | what | kind |
//! |---|---|
//! | no connection, a timeout, HTTP 408, 429 or 5xx | retryable |
//! | `20000` service unavailable, `20001` internal timeout, `50000` server error, `60000` rate limit, `90000` unknown | retryable |
//! | HTTP 401 or 403; `30001` no permission or authorization closed, `30002` IP not allowed, `50001` no token made; `40001`/`40003` for the signature, app key or authorization; a new token refused | [`Refusal::Auth`] |
//! | HTTP 4xx otherwise; any other code (`40004` 订单不存在, `50002`, `70000`, ...) | [`Refusal::Order`] |
//! | an answer that is not JSON with a `code`, or a detail [`doudian::parse_order_detail`] cannot read | [`Refusal::Unreadable`] |

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tier_platforms::OrderDetail;
use tier_platforms::doudian::{self, SignMethod};
use tier_runtime::tls::ClientConfig;
use tier_runtime::{ConfigError, Env};

/// Where the platform serves the open API.
pub const DEFAULT_BASE: &str = "https://openapi-fxg.jinritemai.com";
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole request, connection to last byte: two of them (a token and the
/// detail) fit a consumer's invocation several times over.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long before its expiry a token is replaced: a call made with it
/// just before then still finds it valid.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(600);

const API_VERSION: &str = "2";
const SIGN_METHOD: SignMethod = SignMethod::HmacSha256;
/// The `code` of an answer that succeeded.
const SUCCESS: i64 = 10000;
/// Above this, `expires_in` is a unix time rather than seconds left: some
/// SDKs describe it so, and a lifetime of 30 years is no lifetime.
const UNIX_TIME_FLOOR: i64 = 1_000_000_000;

/// An order's detail, from the platform that sold it.
pub trait OrderDetails: Send + Sync {
    /// The detail of order `order_id` of shop `shop_id`, asked as app
    /// `app_key` signing with `app_secret`.
    fn order_detail(
        &self,
        app_key: &str,
        app_secret: &str,
        shop_id: &str,
        order_id: &str,
    ) -> impl Future<Output = Result<OrderDetail, FetchError>> + Send;
}

/// Why a detail could not be fetched, and whether asking again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The network, the platform's load or its own failure: may pass.
    #[error("{0}")]
    Retryable(String),
    /// The same request would be answered the same way.
    #[error("{reason}")]
    Permanent { refusal: Refusal, reason: String },
}

/// What a permanent failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The app, or its access to the shop: a wrong key or secret, an
    /// authorization the merchant closed, a caller not on the app's list.
    Auth,
    /// The order as asked: it does not exist, or the request is one the
    /// platform refuses as such.
    Order,
    /// An answer not in the documented shape.
    Unreadable,
}

impl Refusal {
    /// The failure code a dead-lettered fetch carries.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Auth => "auth_refused",
            Refusal::Order => "order_refused",
            Refusal::Unreadable => "unreadable_answer",
        }
    }
}

impl FetchError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Retryable(_))
    }

    fn permanent(refusal: Refusal, reason: impl Into<String>) -> Self {
        FetchError::Permanent {
            refusal,
            reason: reason.into(),
        }
    }

    fn is_auth(&self) -> bool {
        matches!(
            self,
            FetchError::Permanent {
                refusal: Refusal::Auth,
                ..
            }
        )
    }
}

/// How a call failed, before the caller decides what a refused token means.
enum CallError {
    /// The platform refused the call's access token (expired, unknown).
    StaleToken(String),
    Fetch(FetchError),
}

impl From<FetchError> for CallError {
    fn from(e: FetchError) -> Self {
        CallError::Fetch(e)
    }
}

/// An answer's `code` and what the platform says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    code: i64,
    msg: String,
    sub_code: String,
    sub_msg: String,
}

impl Status {
    /// For an operator: the method, the code and every message the
    /// platform gave.
    fn describe(&self, method: &str) -> String {
        let said: Vec<&str> = [&self.sub_code, &self.msg, &self.sub_msg]
            .into_iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if said.is_empty() {
            format!("{method} answered code {}", self.code)
        } else {
            format!("{method} answered code {}: {}", self.code, said.join(" / "))
        }
    }
}

/// What a failing code means for asking again (see the module's table).
fn classify(status: &Status, method: &str) -> CallError {
    let reason = status.describe(method);
    let sub = status.sub_code.as_str();
    match status.code {
        20000 | 20001 | 50000 | 60000 | 90000 => FetchError::Retryable(reason).into(),
        40001 | 40003 if sub.starts_with("isv.access-token") => CallError::StaleToken(reason),
        30001 | 30002 | 50001 => FetchError::permanent(Refusal::Auth, reason).into(),
        40001 | 40003
            if ["signature", "app-id", "app-key", "authorization"]
                .iter()
                .any(|m| sub.contains(m)) =>
        {
            FetchError::permanent(Refusal::Auth, reason).into()
        }
        _ => FetchError::permanent(Refusal::Order, reason).into(),
    }
}

/// The status of an answer's body; an error where it has none.
fn read_status(body: &[u8], method: &str) -> Result<(Status, Value), FetchError> {
    let unreadable = |why: String| {
        FetchError::permanent(Refusal::Unreadable, format!("{method} answered {why}"))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body).chars().take(120).collect();
        unreadable(format!("what is not JSON ({e}): {start:?}"))
    })?;
    let code = match value.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| unreadable("JSON without a numeric code".into()))?;
    let text = |key: &str| match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let status = Status {
        code,
        msg: text("msg"),
        sub_code: text("sub_code"),
        sub_msg: text("sub_msg"),
    };
    Ok((status, value))
}

/// The token of a `token.create` answer, and how long it may be used.
fn read_token(data: &Value, now_unix: i64) -> Result<(String, Duration), FetchError> {
    let unreadable = |why: &str| {
        FetchError::permanent(Refusal::Unreadable, format!("token.create answered {why}"))
    };
    let token = data
        .get("data")
        .and_then(|d| d.get("access_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| unreadable("no data.access_token"))?;
    let expires = data.get("data").and_then(|d| d.get("expires_in"));
    let expires = match expires {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    // Without a lifetime the token serves this call only.
    let seconds = match expires {
        Some(t) if t > UNIX_TIME_FLOOR => t.saturating_sub(now_unix),
        Some(t) => t,
        None => 0,
    };
    Ok((
        token.to_owned(),
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
    ))
}

/// An error of the HTTP client with its causes, without the URL: the
/// query holds the access token and the signature.
fn describe_http(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

struct Token {
    value: String,
    replace_at: Instant,
}

/// A token, and whether it came from the cache (so may have gone stale).
struct TokenUse {
    value: String,
    cached: bool,
}

/// The open API over HTTPS, with each shop's token kept in memory.
pub struct DoudianApi {
    http: reqwest::Client,
    base: String,
    /// By app key and shop id.
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl DoudianApi {
    /// `DOUDIAN_API_BASE`, by default the platform's own endpoint, over
    /// `tls` (the AWS clients' choice of roots, [`AwsClients::tls`]).
    ///
    /// [`AwsClients::tls`]: tier_runtime::AwsClients::tls
    pub fn from_env(env: &Env, tls: Option<Arc<ClientConfig>>) -> Result<Self, ConfigError> {
        let base = env.get("DOUDIAN_API_BASE").unwrap_or(DEFAULT_BASE);
        Self::with_tls(base, CONNECT_TIMEOUT, REQUEST_TIMEOUT, tls).map_err(|reason| {
            ConfigError::Invalid {
                name: "DOUDIAN_API_BASE",
                reason,
            }
        })
    }

    /// Over the compiled-in roots.
    pub fn new(base: &str, connect: Duration, request: Duration) -> Result<Self, String> {
        Self::with_tls(
            base,
            connect,
            request,
            Some(tier_runtime::tls::compiled_roots()),
        )
    }

    /// `tls` `None`: reqwest's own loading of the system's roots, which
    /// follows `SSL_CERT_FILE` and `SSL_CERT_DIR`.
    pub fn with_tls(
        base: &str,
        connect: Duration,
        request: Duration,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Self, String> {
        let base = base.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("{base:?} is not an http(s) URL"));
        }
        tier_runtime::tls::install_crypto_provider();
        let mut http = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(request);
        if let Some(tls) = tls {
            // reqwest takes the configuration by value; cloning it shares
            // its root store, which is behind an `Arc`.
            http = http.use_preconfigured_tls(ClientConfig::clone(&tls));
        }
        let http = http
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        Ok(Self {
            http,
            base: base.to_owned(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// One signed call; an answer that succeeded, as sent and as read.
    async fn call(
        &self,
        method: &str,
        app_key: &str,
        app_secret: &str,
        access_token: Option<&str>,
        params: &Value,
    ) -> Result<(Vec<u8>, Value), CallError> {
        let param_json = doudian::param_json(params);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let sign = doudian::sign_request(
            app_key,
            app_secret,
            method,
            &param_json,
            &timestamp,
            API_VERSION,
            SIGN_METHOD,
        );
        let mut query = vec![
            ("app_key", app_key),
            ("method", method),
            ("v", API_VERSION),
            ("timestamp", timestamp.as_str()),
            ("sign_method", SIGN_METHOD.as_param()),
            ("sign", sign.as_str()),
        ];
        if let Some(token) = access_token {
            query.push(("access_token", token));
        }
        let url = format!("{}/{}", self.base, method.replace('.', "/"));
        let response = self
            .http
            .post(url)
            .query(&query)
            .header("content-type", "application/json")
            .body(param_json)
            .send()
            .await
            .map_err(|e| FetchError::Retryable(format!("{method}: {}", describe_http(e))))?;
        let http_status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Retryable(format!("{method}: {}", describe_http(e))))?;
        let code = http_status.as_u16();
        if code == 408 || code == 429 || http_status.is_server_error() {
            return Err(FetchError::Retryable(format!("{method}: HTTP {http_status}")).into());
        }
        if !http_status.is_success() {
            let refusal = if code == 401 || code == 403 {
                Refusal::Auth
            } else {
                Refusal::Order
            };
            return Err(
                FetchError::permanent(refusal, format!("{method}: HTTP {http_status}")).into(),
            );
        }
        let (status, answer) = read_status(&body, method)?;
        if status.code == SUCCESS {
            Ok((body.to_vec(), answer))
        } else {
            Err(classify(&status, method))
        }
    }

    /// The shop's token: the one kept, unless it is due to be replaced.
    async fn token(
        &self,
        app_key: &str,
        app_secret: &str,
        shop_id: &str,
    ) -> Result<TokenUse, FetchError> {
        let key = (app_key.to_owned(), shop_id.to_owned());
        if let Some(t) = self.tokens.lock().expect("token cache lock").get(&key)
            && Instant::now() < t.replace_at
        {
            return Ok(TokenUse {
                value: t.value.clone(),
                cached: true,
            });
        }
        let params = json!({"code": "", "grant_type": "authorization_self", "shop_id": shop_id});
        let answer = match self
            .call("token.create", app_key, app_secret, None, &params)
            .await
        {
            Ok((_, answer)) => answer,
            // No token was sent: a token refusal here is the app's.
            Err(CallError::StaleToken(reason)) => {
                return Err(FetchError::permanent(Refusal::Auth, reason));
            }
            Err(CallError::Fetch(e)) => return Err(e),
        };
        let (value, lifetime) = read_token(&answer, chrono::Utc::now().timestamp())?;
        self.tokens.lock().expect("token cache lock").insert(
            key,
            Token {
                value: value.clone(),
                replace_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
            },
        );
        Ok(TokenUse {
            value,
            cached: false,
        })
    }

    fn forget(&self, app_key: &str, shop_id: &str) {
        self.tokens
            .lock()
            .expect("token cache lock")
            .remove(&(app_key.to_owned(), shop_id.to_owned()));
    }

    async fn fetch(
        &self,
        app_key: &str,
        app_secret: &str,
        shop_id: &str,
        order_id: &str,
    ) -> Result<OrderDetail, FetchError> {
        const METHOD: &str = "order.orderDetail";
        let params = json!({"shop_order_id": order_id});
        let mut token = self.token(app_key, app_secret, shop_id).await?;
        loop {
            match self
                .call(METHOD, app_key, app_secret, Some(&token.value), &params)
                .await
            {
                Ok((body, _)) => {
                    return doudian::parse_order_detail(&body).map_err(|e| {
                        FetchError::permanent(Refusal::Unreadable, format!("{METHOD} answered {e}"))
                    });
                }
                // A kept token the platform no longer takes: once more with
                // a new one. A new one refused is the app's problem.
                Err(CallError::StaleToken(reason)) => {
                    self.forget(app_key, shop_id);
                    if !token.cached {
                        return Err(FetchError::permanent(
                            Refusal::Auth,
                            format!("{reason} (for a token just created)"),
                        ));
                    }
                    token = self.token(app_key, app_secret, shop_id).await?;
                }
                Err(CallError::Fetch(e)) => {
                    if e.is_auth() {
                        self.forget(app_key, shop_id);
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl OrderDetails for DoudianApi {
    fn order_detail(
        &self,
        app_key: &str,
        app_secret: &str,
        shop_id: &str,
        order_id: &str,
    ) -> impl Future<Output = Result<OrderDetail, FetchError>> + Send {
        self.fetch(app_key, app_secret, shop_id, order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Arc;

    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    const APP_KEY: &str = "7031234567890123456";
    const SECRET: &str = "dd-secret-0123456789abcdef";
    const SHOP: &str = "77977";
    const ORDER: &str = "4837328765348566675";

    fn token_answer(token: &str, expires_in: i64) -> String {
        json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "2026",
            "data": {"access_token": token, "expires_in": expires_in, "refresh_token": "r-1",
                     "scope": "SCOPE", "shop_id": 77977, "shop_name": "旗舰店", "authority_id": ""}})
        .to_string()
    }

    fn detail_answer() -> String {
        json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "2026",
            "data": {"shop_order_detail": {
                "order_id": ORDER, "shop_id": 77977, "pay_amount": 40800, "post_amount": 1000,
                "doudian_open_id": "1@#buyer==",
                "post_addr": {"province": {"name": "浙江省", "id": "33"}},
                "sku_order_list": [{"order_id": "4837328765348566676", "sku_id": 1736602913154052u64,
                    "code": "TEE-W-M", "item_num": 2, "origin_amount": 19900, "pay_amount": 39800,
                    "post_amount": 0}]}}})
        .to_string()
    }

    fn failure(code: i64, sub_code: &str, sub_msg: &str) -> String {
        json!({"code": code, "msg": "失败", "sub_code": sub_code, "sub_msg": sub_msg, "data": {}})
            .to_string()
    }

    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        query: HashMap<String, String>,
        body: String,
    }

    enum Answer {
        Json(u16, String),
        /// Answers only after the client has given up.
        Hang,
    }

    /// A 抖店 API on 127.0.0.1 that answers from a script, in order, and
    /// keeps what it was sent.
    struct Fake {
        base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Fake {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn api(&self) -> DoudianApi {
            DoudianApi::new(&self.base, CONNECT_TIMEOUT, Duration::from_millis(500)).unwrap()
        }
    }

    fn query_of(raw: &str) -> HashMap<String, String> {
        raw.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8()
                        .unwrap()
                        .into_owned()
                };
                (decode(k), decode(v))
            })
            .collect()
    }

    async fn fake(script: Vec<Answer>) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (seen_by_server, script) = (seen.clone(), script.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, script) = (seen_by_server.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (seen, script) = (seen.clone(), script.clone());
                            async move {
                                let path = req.uri().path().to_owned();
                                let query = query_of(req.uri().query().unwrap_or(""));
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                seen.lock().unwrap().push(Seen {
                                    path,
                                    query,
                                    body: String::from_utf8(body.to_vec()).unwrap(),
                                });
                                let next = script.lock().unwrap().pop_front();
                                let (status, text) = match next {
                                    Some(Answer::Json(status, text)) => (status, text),
                                    Some(Answer::Hang) => {
                                        tokio::time::sleep(Duration::from_secs(5)).await;
                                        (200, detail_answer())
                                    }
                                    None => (500, "the script ran out".to_owned()),
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(text)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { base, seen }
    }

    fn assert_signed(seen: &Seen, method: &str) {
        let q = &seen.query;
        assert_eq!(q["app_key"], APP_KEY);
        assert_eq!(q["method"], method);
        assert_eq!(q["v"], "2");
        assert_eq!(q["sign_method"], "hmac-sha256");
        let timestamp: i64 = q["timestamp"].parse().expect("unix seconds");
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
        assert_eq!(
            q["sign"],
            doudian::sign_request(
                APP_KEY,
                SECRET,
                method,
                &seen.body,
                &q["timestamp"],
                "2",
                SignMethod::HmacSha256
            ),
            "the body is signed as sent"
        );
    }

    #[tokio::test]
    async fn a_self_use_app_gets_a_token_then_the_detail_every_request_signed() {
        let fake = fake(vec![
            Answer::Json(200, token_answer("tok-1", 604800)),
            Answer::Json(200, detail_answer()),
        ])
        .await;
        let detail = fake
            .api()
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap();
        assert_eq!(
            detail,
            doudian::parse_order_detail(detail_answer().as_bytes()).unwrap()
        );
        assert_eq!(detail.total, "398.00".parse().unwrap());
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);

        assert_eq!(seen[0].path, "/token/create");
        assert_signed(&seen[0], "token.create");
        assert!(!seen[0].query.contains_key("access_token"));
        assert_eq!(
            seen[0].body,
            r#"{"code":"","grant_type":"authorization_self","shop_id":"77977"}"#
        );

        assert_eq!(seen[1].path, "/order/orderDetail");
        assert_signed(&seen[1], "order.orderDetail");
        assert_eq!(seen[1].query["access_token"], "tok-1");
        assert_eq!(seen[1].body, r#"{"shop_order_id":"4837328765348566675"}"#);
    }

    #[tokio::test]
    async fn a_token_is_kept_until_shortly_before_it_expires() {
        let fake = fake(vec![
            Answer::Json(200, token_answer("tok-1", 604800)),
            Answer::Json(200, detail_answer()),
            Answer::Json(200, detail_answer()),
        ])
        .await;
        let api = fake.api();
        for _ in 0..2 {
            api.order_detail(APP_KEY, SECRET, SHOP, ORDER)
                .await
                .unwrap();
        }
        let paths: Vec<_> = fake.seen().iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            ["/token/create", "/order/orderDetail", "/order/orderDetail"]
        );

        // One that expires within the margin is used once; so is one
        // whose `expires_in` is a time already past.
        let fake = self::fake(vec![
            Answer::Json(200, token_answer("tok-short", 300)),
            Answer::Json(200, detail_answer()),
            Answer::Json(200, token_answer("tok-past", 1_600_000_000)),
            Answer::Json(200, detail_answer()),
        ])
        .await;
        let api = fake.api();
        for _ in 0..2 {
            api.order_detail(APP_KEY, SECRET, SHOP, ORDER)
                .await
                .unwrap();
        }
        let tokens: Vec<_> = fake
            .seen()
            .iter()
            .filter_map(|s| s.query.get("access_token").cloned())
            .collect();
        assert_eq!(tokens, ["tok-short", "tok-past"]);
    }

    #[tokio::test]
    async fn a_kept_token_the_platform_refuses_is_replaced_once() {
        let fake = fake(vec![
            Answer::Json(200, token_answer("tok-1", 604800)),
            Answer::Json(200, detail_answer()),
            Answer::Json(
                200,
                failure(40003, "isv.access-token-expired", "access_token已过期"),
            ),
            Answer::Json(200, token_answer("tok-2", 604800)),
            Answer::Json(200, detail_answer()),
        ])
        .await;
        let api = fake.api();
        api.order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap();
        api.order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap();
        let tokens: Vec<_> = fake
            .seen()
            .iter()
            .filter_map(|s| s.query.get("access_token").cloned())
            .collect();
        assert_eq!(tokens, ["tok-1", "tok-1", "tok-2"]);

        // A token just made and refused is not asked for a third time.
        let fake = self::fake(vec![
            Answer::Json(200, token_answer("tok-1", 604800)),
            Answer::Json(
                200,
                failure(40003, "isv.access-token-no-existed", "access_token不存在"),
            ),
        ])
        .await;
        let e = fake
            .api()
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, FetchError::Permanent { refusal: Refusal::Auth, reason } if reason.contains("access-token-no-existed")),
            "{e:?}"
        );
        assert_eq!(fake.seen().len(), 2);
    }

    /// What the platform answers the detail call with, and what that is.
    #[tokio::test]
    async fn failures_are_retryable_or_permanent() {
        let cases: Vec<(Answer, Option<Refusal>, &str)> = vec![
            (
                Answer::Json(503, "<html>busy</html>".into()),
                None,
                "HTTP 503",
            ),
            (Answer::Json(429, String::new()), None, "HTTP 429"),
            (
                Answer::Json(200, failure(60000, "", "触发限流，请稍后重试")),
                None,
                "60000",
            ),
            (
                Answer::Json(200, failure(20000, "dop.service-error", "内部错误")),
                None,
                "dop.service-error",
            ),
            (
                Answer::Json(200, failure(50000, "", "")),
                None,
                "code 50000",
            ),
            (Answer::Hang, None, "timed out"),
            (
                Answer::Json(
                    200,
                    failure(40004, "isv.business-failed:10005", "订单不存在"),
                ),
                Some(Refusal::Order),
                "订单不存在",
            ),
            (
                Answer::Json(
                    200,
                    failure(30001, "dop.authorization-closed", "店铺授权已被关闭"),
                ),
                Some(Refusal::Auth),
                "authorization-closed",
            ),
            (
                Answer::Json(200, failure(40003, "isv.signature-invalid", "签名校验失败")),
                Some(Refusal::Auth),
                "signature-invalid",
            ),
            (
                Answer::Json(404, String::new()),
                Some(Refusal::Order),
                "HTTP 404",
            ),
            (
                Answer::Json(403, String::new()),
                Some(Refusal::Auth),
                "HTTP 403",
            ),
            (
                Answer::Json(200, "not json".into()),
                Some(Refusal::Unreadable),
                "not JSON",
            ),
            (
                Answer::Json(200, r#"{"msg":"success"}"#.into()),
                Some(Refusal::Unreadable),
                "numeric code",
            ),
            (
                Answer::Json(
                    200,
                    r#"{"code":10000,"data":{"shop_order_detail":{}}}"#.into(),
                ),
                Some(Refusal::Unreadable),
                "pay_amount",
            ),
        ];
        for (answer, want, says) in cases {
            let fake = fake(vec![
                Answer::Json(200, token_answer("tok-1", 604800)),
                answer,
            ])
            .await;
            let e = fake
                .api()
                .order_detail(APP_KEY, SECRET, SHOP, ORDER)
                .await
                .unwrap_err();
            match (&e, want) {
                (FetchError::Retryable(reason), None) => assert!(reason.contains(says), "{reason}"),
                (FetchError::Permanent { refusal, reason }, Some(want)) => {
                    assert_eq!(*refusal, want, "{reason}");
                    assert!(reason.contains(says), "{reason}");
                }
                (e, want) => panic!("{says}: got {e:?}, want {want:?}"),
            }
            assert!(!e.to_string().contains("tok-1"), "no token in {e}");
        }
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_made_is_the_apps_problem_or_the_platforms() {
        let fake = fake(vec![Answer::Json(
            200,
            failure(
                50001,
                "dop.token-generate-failed:app-secret-invalid",
                "app_key不存在或者与app_secret不匹配",
            ),
        )])
        .await;
        let e = fake
            .api()
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                FetchError::Permanent {
                    refusal: Refusal::Auth,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "token.create answered code 50001: dop.token-generate-failed:app-secret-invalid / 失败 / app_key不存在或者与app_secret不匹配"
        );

        let fake = self::fake(vec![Answer::Json(502, String::new())]).await;
        let e = fake
            .api()
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");

        let fake = self::fake(vec![Answer::Json(
            200,
            json!({"code": 10000, "data": {}}).to_string(),
        )])
        .await;
        let e = fake
            .api()
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                FetchError::Permanent {
                    refusal: Refusal::Unreadable,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_retryable() {
        // A port just bound and closed again: nothing answers there.
        let addr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let api =
            DoudianApi::new(&format!("http://{addr}/"), CONNECT_TIMEOUT, REQUEST_TIMEOUT).unwrap();
        let e = api
            .order_detail(APP_KEY, SECRET, SHOP, ORDER)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(
            e.to_string().starts_with("token.create: could not connect"),
            "{e}"
        );
    }

    #[test]
    fn the_base_is_an_http_url() {
        assert!(
            DoudianApi::new(
                "openapi-fxg.jinritemai.com",
                CONNECT_TIMEOUT,
                REQUEST_TIMEOUT
            )
            .is_err()
        );
        assert!(DoudianApi::new("ftp://example.com", CONNECT_TIMEOUT, REQUEST_TIMEOUT).is_err());
        let api = DoudianApi::new(
            "https://openapi-fxg.jinritemai.com/",
            CONNECT_TIMEOUT,
            REQUEST_TIMEOUT,
        )
        .unwrap();
        assert_eq!(api.base, DEFAULT_BASE);
        assert!(DoudianApi::from_env(&Env::default(), None).is_ok());
    }

    #[test]
    fn codes_are_classified_by_the_platforms_table() {
        let status = |code: i64, sub_code: &str| Status {
            code,
            msg: String::new(),
            sub_code: sub_code.into(),
            sub_msg: String::new(),
        };
        let kind = |s: Status| match classify(&s, "m") {
            CallError::StaleToken(_) => "stale",
            CallError::Fetch(FetchError::Retryable(_)) => "retry",
            CallError::Fetch(FetchError::Permanent { refusal, .. }) => refusal.code(),
        };
        for code in [20000, 20001, 50000, 60000, 90000] {
            assert_eq!(kind(status(code, "")), "retry", "{code}");
        }
        assert_eq!(kind(status(40003, "isv.access-token-expired")), "stale");
        assert_eq!(kind(status(40001, "isv.access-token-missing")), "stale");
        for (code, sub) in [
            (30001, "dop.authorization-no-existed"),
            (30002, ""),
            (50001, "dop.token-generate-failed:no-authorization"),
            (40003, "isv.app-id-invalid"),
            (40001, "isv.signature-missing"),
        ] {
            assert_eq!(kind(status(code, sub)), "auth_refused", "{code} {sub}");
        }
        for (code, sub) in [
            (40004, "isv.business-failed:10005"),
            (40002, ""),
            (40003, "isv.parameter-format-invalid"),
            (50002, ""),
            (70000, "isp.api-service-off"),
            (12345, ""),
        ] {
            assert_eq!(kind(status(code, sub)), "order_refused", "{code} {sub}");
        }
    }
}
