//! A fault-injecting proxy between the functions and the emulator, for the
//! tests: a share of DynamoDB and SQS requests is throttled as the services
//! throttle, answered with a 500, or forwarded and then answered with a 500
//! as if the response were lost, so that the write happened but the caller
//! saw a failure. Whatever the functions do about it (the SDK's retries,
//! ours, the queues' redelivery) must still come out exact.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How often to fault, and with which seed.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    /// The share of requests faulted, 0 to 1, split evenly between the
    /// three kinds.
    pub rate: f64,
    pub seed: u64,
}

/// What the proxy did, for the tests to report.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Refused as the service refuses a request over its rate.
    Throttle,
    /// A 500 without forwarding.
    Fail,
    /// Forwarded, then a 500: the write happened.
    Drop,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    plan: FaultPlan,
    rng: Mutex<fastrand::Rng>,
    counts: Arc<FaultCounts>,
}

impl Proxy {
    fn pick(&self) -> Fault {
        let mut rng = self.rng.lock().expect("rng lock");
        if rng.f64() >= self.plan.rate {
            return Fault::None;
        }
        match rng.u8(0..3) {
            0 => Fault::Throttle,
            1 => Fault::Fail,
            _ => Fault::Drop,
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let fault = self.pick();
        match fault {
            Fault::Throttle => {
                self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                return throttled(&target);
            }
            Fault::Fail => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                return internal();
            }
            Fault::None | Fault::Drop => {}
        }
        let forwarded = self.forward(req).await;
        if fault == Fault::Drop {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return internal();
        }
        self.counts.forwarded.fetch_add(1, Ordering::Relaxed);
        forwarded.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "fault proxy: forwarding failed");
            internal()
        })
    }

    async fn forward(&self, req: Request<Incoming>) -> anyhow::Result<Response<Full<Bytes>>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
                out = out.header(name, value);
            }
        }
        let answer = out.body(body).send().await?;
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
                response = response.header(name, value);
            }
        }
        Ok(response.body(Full::new(answer.bytes().await?))?)
    }
}

/// DynamoDB's and SQS's answer to a request over the rate, which the SDK
/// retries with backoff.
fn throttled(target: &str) -> Response<Full<Bytes>> {
    let (kind, body) = if target.starts_with("DynamoDB") {
        (
            "ProvisionedThroughputExceededException",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
        )
    } else {
        (
            "ThrottlingException",
            r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}"#,
        )
    };
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}

fn internal() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", "InternalServerError")
        .body(Full::new(Bytes::from_static(
            br#"{"__type":"InternalServerError","message":"injected fault"}"#,
        )))
        .expect("static response")
}

/// Starts the proxy on a free loopback port in front of `upstream`;
/// returns its endpoint, what it counts, and its task (aborted to stop it).
pub async fn start(
    upstream: &str,
    plan: FaultPlan,
) -> anyhow::Result<(String, Arc<FaultCounts>, JoinHandle<()>)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("binding the fault proxy")?;
    let addr = listener.local_addr()?;
    let counts = Arc::new(FaultCounts::default());
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        client: reqwest::Client::new(),
        plan,
        rng: Mutex::new(fastrand::Rng::with_seed(plan.seed)),
        counts: counts.clone(),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}"), counts, task))
}
