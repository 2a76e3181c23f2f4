//! A local API Gateway (HTTP API, payload format 2.0): serves the template's
//! `HttpApi` routes and hands each request to its function the way
//! `lambda_http` would present it inside Lambda: raw body bytes, headers,
//! full URI, path parameters, query string parameters, an API Gateway v2
//! request context and a Lambda context.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, BoxFuture, RequestExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use crate::template::Route;

/// A function behind the API: what `lambda_http::run(service_fn(..))` would
/// call in Lambda.
pub type HttpHandler = Arc<
    dyn Fn(lambda_http::Request) -> BoxFuture<'static, lambda_http::Response<Body>> + Send + Sync,
>;

/// Wraps an async fn as an [`HttpHandler`].
pub fn handler<F, Fut>(f: F) -> HttpHandler
where
    F: Fn(lambda_http::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lambda_http::Response<Body>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// How long [`serve`] lets open connections finish after shutdown.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// API Gateway's payload limit (10 MiB); larger requests get 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment<'a> {
    Greedy(&'a str),
    Param(&'a str),
    Literal(&'a str),
}

impl Segment<'_> {
    fn rank(&self) -> u8 {
        match self {
            Segment::Greedy(_) => 0,
            Segment::Param(_) => 1,
            Segment::Literal(_) => 2,
        }
    }
}

fn parse_segments(path: &str) -> Vec<Segment<'_>> {
    path.strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(|seg| {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Segment::Greedy(name)
            } else if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Segment::Param(name)
            } else {
                Segment::Literal(seg)
            }
        })
        .collect()
}

/// Matches a request path against a route path; returns the path
/// parameters (percent-decoded, as API Gateway passes them) on a match.
fn match_path(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    let pattern = parse_segments(pattern);
    let raw: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut params = HashMap::new();
    for (i, seg) in pattern.iter().enumerate() {
        match seg {
            Segment::Greedy(name) => {
                let rest = &raw[i.min(raw.len())..];
                if rest.is_empty() || rest.iter().all(|s| s.is_empty()) {
                    return None;
                }
                params.insert((*name).to_owned(), percent_decode(&rest.join("/")));
                return Some(params);
            }
            Segment::Param(name) => {
                let value = raw.get(i)?;
                if value.is_empty() {
                    return None;
                }
                params.insert((*name).to_owned(), percent_decode(value));
            }
            Segment::Literal(lit) => {
                let value = raw.get(i)?;
                if *value != *lit && percent_decode(value) != *lit {
                    return None;
                }
            }
        }
    }
    (raw.len() == pattern.len()).then_some(params)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The outcome of routing a request.
pub enum RouteMatch<'a> {
    Found {
        route: &'a Route,
        handler: &'a HttpHandler,
        path_parameters: HashMap<String, String>,
    },
    /// No route for this method and path, and no `$default` route (a path
    /// served for other methods only is not found either: HTTP APIs have
    /// no 405).
    NotFound,
}

/// The routing table, API Gateway HTTP API style: the most specific path
/// wins (literal segment over `{param}` over `{greedy+}`, segment by segment
/// from the left), then an explicit method over `ANY`; `$default` catches
/// what nothing else matches.
pub struct Router {
    routes: Vec<(Route, HttpHandler)>,
}

impl Router {
    pub fn new(routes: Vec<(Route, HttpHandler)>) -> anyhow::Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for (route, _) in &routes {
            if !seen.insert(route.route_key()) {
                bail!("duplicate route {route}");
            }
            if route.path != "$default" && !route.path.starts_with('/') {
                bail!("route {route}: path must start with '/' or be $default");
            }
        }
        Ok(Self { routes })
    }

    pub fn find(&self, method: &Method, path: &str) -> RouteMatch<'_> {
        // (specificity per segment, explicit method, route index, path parameters)
        type Candidate = (Vec<u8>, bool, usize, HashMap<String, String>);
        let mut best: Option<Candidate> = None;
        for (i, (route, _)) in self.routes.iter().enumerate() {
            if route.path == "$default" {
                continue;
            }
            let Some(params) = match_path(&route.path, path) else {
                continue;
            };
            let exact = route.method == method.as_str();
            if !exact && route.method != "ANY" {
                continue;
            }
            let rank: Vec<u8> = parse_segments(&route.path)
                .iter()
                .map(Segment::rank)
                .collect();
            let better = match &best {
                None => true,
                Some((best_rank, best_exact, _, _)) => (&rank, exact) > (best_rank, *best_exact),
            };
            if better {
                best = Some((rank, exact, i, params));
            }
        }
        if let Some((_, _, i, path_parameters)) = best {
            let (route, handler) = &self.routes[i];
            return RouteMatch::Found {
                route,
                handler,
                path_parameters,
            };
        }
        if let Some((route, handler)) = self.routes.iter().find(|(r, _)| r.path == "$default") {
            return RouteMatch::Found {
                route,
                handler,
                path_parameters: HashMap::new(),
            };
        }
        RouteMatch::NotFound
    }
}

type HyperResponse = http::Response<Full<Bytes>>;

fn json_error(status: StatusCode, code: &str, message: String) -> HyperResponse {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// Serves the routes on `addr` (port 0 picks a free port) until `shutdown`
/// completes; then stops accepting, lets open requests finish and the
/// returned task ends. Returns the bound address once listening.
pub async fn serve(
    addr: SocketAddr,
    routes: Vec<(Route, HttpHandler)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let router = Arc::new(Router::new(routes)?);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the local API on {addr}"))?;
    let bound = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "local API: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let router = router.clone();
                    let mut stop_rx = stop_rx.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let router = router.clone();
                            async move { Ok::<_, Infallible>(handle(&router, req, peer, bound).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        let stopped = async move {
                            let _ = stop_rx.wait_for(|stop| *stop).await;
                        };
                        tokio::select! {
                            res = conn.as_mut() => {
                                if let Err(e) = res {
                                    tracing::debug!(error = %e, "local API: connection error");
                                }
                            }
                            _ = stopped => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        // Open requests may finish; a client that stops reading must not
        // hold the server up forever.
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                "local API: aborting connections still open {SHUTDOWN_GRACE:?} after shutdown"
            );
            connections.shutdown().await;
        }
    });
    Ok((bound, task))
}

async fn handle(
    router: &Router,
    req: http::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> HyperResponse {
    let path = req.uri().path().to_owned();
    let (route, handler, path_parameters) = match router.find(req.method(), &path) {
        RouteMatch::Found {
            route,
            handler,
            path_parameters,
        } => (route.clone(), handler.clone(), path_parameters),
        // What API Gateway answers itself when no route (and no `$default`)
        // takes a request: 404 with its own uncoded body, for an unknown
        // path and for a known path's other methods alike (HTTP APIs have
        // no 405). The template's `$default` route is what gives it a code.
        RouteMatch::NotFound => {
            return http::Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(br#"{"message":"Not Found"}"#)))
                .expect("static response parts are valid");
        }
    };

    let (parts, body) = req.into_parts();
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return too_large();
            }
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("could not read the request body: {e}"),
            );
        }
    };

    let request = to_lambda_request(parts, bytes, &route, path_parameters, peer, local);
    // Run the handler in its own task so that a panic becomes a 500, as a
    // crashed invocation does behind API Gateway.
    let response = match tokio::spawn(handler(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(route = %route, error = %e, "local API: handler panicked");
            return http::Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(
                    b"{\"message\":\"Internal Server Error\"}",
                )))
                .expect("static response parts are valid");
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

/// Builds the request `lambda_http` hands to a function for an HTTP API
/// (payload 2.0) event.
fn to_lambda_request(
    parts: http::request::Parts,
    body: Bytes,
    route: &Route,
    path_parameters: HashMap<String, String>,
    peer: SocketAddr,
    local: SocketAddr,
) -> lambda_http::Request {
    // API Gateway joins repeated headers with commas (cookies with "; ")
    // and adds the X-Forwarded-* headers.
    let mut headers = HeaderMap::new();
    for name in parts.headers.keys() {
        let sep = if name == http::header::COOKIE {
            "; "
        } else {
            ", "
        };
        let joined: Vec<&[u8]> = parts
            .headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let value = joined.join(sep.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.insert(name.clone(), v);
        }
    }
    let forwarded = [
        ("x-forwarded-for", peer.ip().to_string()),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-forwarded-port", local.port().to_string()),
    ];
    for (name, value) in forwarded {
        if !headers.contains_key(name)
            && let Ok(v) = HeaderValue::from_str(&value)
        {
            headers.insert(name, v);
        }
    }

    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| local.to_string());
    let mut uri = format!("http://{host}{raw_path}");
    if !raw_query.is_empty() {
        uri.push('?');
        uri.push_str(&raw_query);
    }
    let uri: http::Uri = uri.parse().unwrap_or_else(|_| parts.uri.clone());
    let query: QueryMap = raw_query.parse().unwrap_or_default();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let request_id = uuid::Uuid::new_v4().to_string();

    let mut http_desc = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_desc.method = parts.method.clone();
    http_desc.path = Some(raw_path.clone());
    http_desc.protocol = Some("HTTP/1.1".to_owned());
    http_desc.source_ip = Some(peer.ip().to_string());
    http_desc.user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.route_key());
    context.account_id = Some(crate::resources::ACCOUNT_ID.to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(request_id.clone());
    context.apiid = Some("local".to_owned());
    context.domain_name = Some(host.clone());
    context.domain_prefix = Some(host.split('.').next().unwrap_or("").to_owned());
    context.time_epoch = now.as_millis() as i64;
    context.http = http_desc;

    let mut lambda_context = lambda_http::Context::default();
    lambda_context.request_id = request_id;
    // API Gateway's integration timeout is 30 s.
    lambda_context.deadline = (now.as_millis() + 30_000) as u64;

    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Binary(body.to_vec())
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
        .with_raw_http_path(raw_path)
        .with_path_parameters(path_parameters)
        .with_query_string_parameters(query)
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_lambda_context(lambda_context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_matching() {
        assert_eq!(
            match_path("/webhooks/{platform}/{store}", "/webhooks/shopify/s1")
                .unwrap()
                .get("platform")
                .map(String::as_str),
            Some("shopify")
        );
        assert!(match_path("/webhooks/{platform}/{store}", "/webhooks/shopify").is_none());
        assert!(match_path("/webhooks/{platform}/{store}", "/webhooks/shopify/s1/x").is_none());
        let p = match_path("/v1/admin/{proxy+}", "/v1/admin/a/b%20c").unwrap();
        assert_eq!(p["proxy"], "a/b c");
        assert!(match_path("/v1/admin/{proxy+}", "/v1/admin").is_none());
        assert!(match_path("/v1/admin/{proxy+}", "/v1/admin/").is_none());
        assert!(match_path("/a", "/a").unwrap().is_empty());
        assert!(match_path("/a", "/b").is_none());
        assert_eq!(percent_decode("%2Fx%zz%4"), "/x%zz%4");
    }
}
