//! The local API Gateway: routing, request conversion, error responses.

use std::collections::HashMap;
use std::net::SocketAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, Response};
use local_stack::http::{HttpHandler, MAX_BODY_BYTES, Route, handler, serve};
use serde_json::{Value, json};

/// A handler that describes the request it got.
fn echo(name: &'static str) -> HttpHandler {
    handler(move |req: lambda_http::Request| async move {
        let query = req.query_string_parameters();
        let query_json: HashMap<String, Vec<String>> = query
            .iter()
            .map(|(k, _)| {
                (
                    k.to_owned(),
                    query
                        .all(k)
                        .unwrap()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                )
            })
            .collect();
        let path_params: HashMap<String, String> = req
            .path_parameters()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let route_key = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
            _ => None,
        };
        let (body_kind, body): (&str, &[u8]) = match req.body() {
            Body::Empty => ("empty", &[]),
            Body::Text(t) => ("text", t.as_bytes()),
            Body::Binary(b) => ("binary", b),
            _ => ("other", &[]),
        };
        let out = json!({
            "handler": name,
            "method": req.method().as_str(),
            "uri": req.uri().to_string(),
            "raw_path": req.raw_http_path(),
            "path": path_params,
            "query": query_json,
            "route_key": route_key,
            "body_kind": body_kind,
            "body_hex": hex::encode(body),
            "x_test": req.headers().get("x-test").and_then(|v| v.to_str().ok()),
            "forwarded_for": req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            "request_id": req.lambda_context().request_id,
        });
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-handler", name)
            .body(Body::Text(out.to_string()))
            .unwrap()
    })
}

async fn start() -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let routes = vec![
        (
            Route::new("POST", "/webhooks/{platform}/{store}"),
            echo("webhook"),
        ),
        (Route::new("GET", "/v1/prices/{sku}"), echo("price")),
        (Route::new("ANY", "/v1/admin/{proxy+}"), echo("admin-any")),
        (Route::new("GET", "/v1/admin/{proxy+}"), echo("admin-get")),
        (Route::new("GET", "/v1/admin/health"), echo("admin-health")),
        (
            Route::new("GET", "/v1/admin/{resource}/export"),
            echo("admin-export"),
        ),
        (
            Route::new("GET", "/panic"),
            handler(|_req| async move {
                if true {
                    panic!("handler bug");
                }
                Response::new(Body::Empty)
            }),
        ),
        (
            Route::new("GET", "/binary"),
            handler(|_req| async move {
                Response::builder()
                    .status(201)
                    .header("set-cookie", "a=1")
                    .header("set-cookie", "b=2")
                    .body(Body::Binary(vec![0, 159, 146, 150, 255]))
                    .unwrap()
            }),
        ),
    ];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), routes, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    assert_ne!(addr.port(), 0);
    (addr, tx, task)
}

/// A reqwest client, once the process has the TLS provider every reqwest
/// client of this workspace is built with.
fn client() -> reqwest::Client {
    tier_runtime::tls::install_crypto_provider();
    reqwest::Client::new()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn routes_like_an_http_api() {
    let (addr, stop, task) = start().await;
    let base = format!("http://{addr}");
    let http = client();

    // Path parameters, raw body bytes (not valid UTF-8 on purpose), headers, query.
    let raw = vec![b'{', 0xff, 0x00, b'}'];
    let resp = http
        .post(format!("{base}/webhooks/shopify/store%201?a=1&a=2&b=x%20y"))
        .header("x-test", "yes")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-handler"], "webhook");
    let v = json_of(resp).await;
    assert_eq!(
        v["path"],
        json!({"platform": "shopify", "store": "store 1"})
    );
    assert_eq!(v["query"]["a"], json!(["1", "2"]));
    assert_eq!(v["query"]["b"], json!(["x y"]));
    assert_eq!(v["body_kind"], "binary");
    assert_eq!(v["body_hex"], hex::encode(&raw));
    assert_eq!(v["x_test"], "yes");
    assert_eq!(v["forwarded_for"], "127.0.0.1");
    assert_eq!(v["route_key"], "POST /webhooks/{platform}/{store}");
    assert_eq!(v["raw_path"], "/webhooks/shopify/store%201");
    assert_eq!(
        v["uri"],
        format!("http://{addr}/webhooks/shopify/store%201?a=1&a=2&b=x%20y")
    );
    assert!(!v["request_id"].as_str().unwrap().is_empty());

    // Empty body → Body::Empty.
    let v = json_of(
        http.get(format!("{base}/v1/prices/SKU-1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "price");
    assert_eq!(v["path"], json!({"sku": "SKU-1"}));
    assert_eq!(v["body_kind"], "empty");
    assert_eq!(v["query"], json!({}));

    // Greedy path, ANY, and the most specific route winning.
    let v = json_of(
        http.delete(format!("{base}/v1/admin/tiers/gold"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "admin-any");
    assert_eq!(v["method"], "DELETE");
    assert_eq!(v["path"], json!({"proxy": "tiers/gold"}));
    let v = json_of(
        http.get(format!("{base}/v1/admin/tiers/gold"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "admin-get", "an explicit method beats ANY");
    let v = json_of(
        http.get(format!("{base}/v1/admin/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["handler"], "admin-health",
        "a literal path beats a greedy one"
    );
    assert_eq!(v["path"], json!({}));
    let v = json_of(
        http.get(format!("{base}/v1/admin/tiers/export"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "admin-export");
    assert_eq!(v["path"], json!({"resource": "tiers"}));
    let v = json_of(
        http.post(format!("{base}/v1/admin/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["handler"], "admin-any",
        "POST falls back to ANY /v1/admin/{{proxy+}}"
    );

    // No route, or the path's routes are for other methods: API Gateway's
    // own uncoded 404 (HTTP APIs have no 405), as there is no `$default`.
    for path in [
        "/nope",
        "/v1/admin",
        "/v1/prices",
        "/v1/prices/a/b",
        "/webhooks/a/b/c",
        "/webhooks/shopify/s1",
    ] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(
            json_of(resp).await,
            json!({"message": "Not Found"}),
            "{path}"
        );
    }

    // Payload limit: exactly 10 MiB passes, one byte more does not.
    let resp = http
        .post(format!("{base}/webhooks/a/b"))
        .body(vec![b'x'; MAX_BODY_BYTES])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = json_of(resp).await;
    assert_eq!(v["body_hex"].as_str().unwrap().len(), 2 * MAX_BODY_BYTES);
    let resp = http
        .post(format!("{base}/webhooks/a/b"))
        .body(vec![b'x'; MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(json_of(resp).await["code"], "payload_too_large");

    // A panicking handler is a 500, and the server keeps serving.
    let resp = http.get(format!("{base}/panic")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = http.get(format!("{base}/binary")).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let cookies: Vec<_> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &[0, 159, 146, 150, 255]
    );

    // Shutdown ends the server task, even with a keep-alive connection open.
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("server stops")
        .unwrap();
    assert!(
        client()
            .get(format!("{base}/v1/prices/x"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn default_route_catches_the_rest() {
    let routes = vec![
        (Route::new("GET", "/a/{id}"), echo("a")),
        (Route::new("ANY", "$default"), echo("default")),
    ];
    let (addr, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        routes,
        std::future::pending(),
    )
    .await
    .unwrap();
    let http = client();
    let v = json_of(http.get(format!("http://{addr}/a/1")).send().await.unwrap()).await;
    assert_eq!(v["handler"], "a");
    let v = json_of(
        http.post(format!("http://{addr}/a/1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "default");
    assert_eq!(v["route_key"], "$default");
    let v = json_of(
        http.get(format!("http://{addr}/x/y/z"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["handler"], "default");
}

#[tokio::test]
async fn rejects_duplicate_routes() {
    let routes = vec![
        (Route::new("GET", "/a"), echo("1")),
        (Route::new("get", "/a"), echo("2")),
    ];
    let err = serve(
        "127.0.0.1:0".parse().unwrap(),
        routes,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("duplicate route GET /a"), "{err}");
}
