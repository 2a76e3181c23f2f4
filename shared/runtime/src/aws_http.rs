//! The AWS SDK's HTTP client in Lambda: hyper's pooled client over rustls
//! (aws-lc-rs), trusting the roots it is given: those compiled into the
//! binary, or a roots file's ([`crate::tls::Roots`]).
//!
//! Why not the SDK's own client: it takes TLS roots only from the system or
//! as PEM, and it builds a rustls configuration, decoding and parsing every
//! root again, for each connector it makes: once per SDK client at init (to
//! load the roots early) and again at the first request. With the runtime's
//! bundle of about 140 roots that was about 2 ms of every cold start. Here
//! the compiled-in roots come already parsed, and one configuration is
//! shared by every connector.
//!
//! What the SDK's client does that matters to the SDK is kept: connect and
//! read timeouts from its settings, errors classified the same way (so the
//! same failures are retried), and connection poisoning, so that a retried
//! request does not reuse a connection that just failed. What is left out:
//! proxies (a process given a proxy keeps the SDK's client, see
//! [`crate::tls::Roots::System`]) and HTTP/2 (DynamoDB, SQS and Secrets
//! Manager answer over HTTP/1.1, which is all this client offers).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{
    CaptureConnection, HttpConnector as TcpConnector, HttpInfo, capture_connection,
};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// An HTTP client for the SDK's configuration (`http_client`), with `tls`
/// for its HTTPS connections. Plain `http://` endpoints (a local emulator)
/// work too.
pub fn http_client(tls: Arc<rustls::ClientConfig>) -> SharedHttpClient {
    SharedHttpClient::new(RustlsClient {
        tls,
        connectors: Mutex::default(),
    })
}

/// A connector's connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The SDK asks for a connector per timeout settings; each keeps its own
/// pool of connections, as the SDK's client does.
struct RustlsClient {
    tls: Arc<rustls::ClientConfig>,
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl fmt::Debug for RustlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsClient").finish_non_exhaustive()
    }
}

impl HttpClient for RustlsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(self.tls.clone(), key)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // What the SDK's user agent reports of its own client, which is
        // hyper 1 too.
        Some(ConnectorMetadata::new(
            "hyper",
            Some(std::borrow::Cow::Borrowed("1.x")),
        ))
    }
}

struct Connector {
    client: Client<Connect, SdkBody>,
    read_timeout: Option<Duration>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    fn new(tls: Arc<rustls::ClientConfig>, (connect_timeout, read_timeout): Timeouts) -> Self {
        let mut tcp = TcpConnector::new();
        // https:// is for the TLS layer above to check, not this one.
        tcp.enforce_http(false);
        // The SDK's default: a request's few small writes are not held
        // back waiting for an acknowledgement.
        tcp.set_nodelay(true);
        let connect = Connect {
            https: hyper_rustls::HttpsConnector::from((tcp, tls)),
            timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            // Without a timer the pool never expires idle connections.
            .pool_timer(TokioTimer::new())
            .build(connect);
        Self {
            client,
            read_timeout,
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        // The SDK poisons the connection of an attempt that failed in a way
        // that may be the connection's fault, through this handle.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || connection_metadata(&captured));
        }
        let responding = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, responding).await {
                    Ok(response) => response,
                    Err(_) => return Err(ConnectorError::timeout(Box::new(TimedOut::Read(limit)))),
                },
                None => responding.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e)),
            }
        })
    }
}

fn connection_metadata(captured: &CaptureConnection) -> Option<ConnectionMetadata> {
    let (local, remote) = {
        let connected = captured.connection_metadata();
        let connected = connected.as_ref()?;
        let mut extras = http::Extensions::new();
        connected.get_extras(&mut extras);
        let info = extras.get::<HttpInfo>();
        (
            info.map(HttpInfo::local_addr),
            info.map(HttpInfo::remote_addr),
        )
    };
    let captured = captured.clone();
    let mut metadata = ConnectionMetadata::builder()
        .proxied(false)
        .poison_fn(move || {
            if let Some(connected) = captured.connection_metadata().as_ref() {
                connected.poison();
            }
        });
    metadata.set_local_addr(local).set_remote_addr(remote);
    Some(metadata.build())
}

/// The SDK's own classification of a failed attempt, which decides what is
/// retried: timeouts and I/O errors are, a request it could not send is not.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let chain = || std::iter::successors(Some(&error as &(dyn Error + 'static)), |&e| e.source());
    if chain().any(|e| e.is::<TimedOut>()) {
        return ConnectorError::timeout(error.into());
    }
    if error.is_connect() {
        return ConnectorError::io(error.into());
    }
    if let Some(hyper) = chain().find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if hyper.is_timeout() {
            return ConnectorError::timeout(error.into());
        }
        if hyper.is_user() {
            return ConnectorError::user(error.into());
        }
        if hyper.is_closed() || hyper.is_canceled() || chain().any(|e| e.is::<std::io::Error>()) {
            return ConnectorError::io(error.into());
        }
        // A response cut short: the SDK retries it.
        if hyper.is_incomplete_message() {
            return ConnectorError::other(error.into(), Some(ErrorKind::TransientError));
        }
    }
    if chain().any(|e| e.is::<std::io::Error>()) {
        return ConnectorError::io(error.into());
    }
    ConnectorError::other(error.into(), None)
}

#[derive(Debug)]
enum TimedOut {
    Connect(Duration),
    Read(Duration),
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(limit) => write!(f, "no connection within {limit:?}"),
            Self::Read(limit) => write!(f, "no response within {limit:?}"),
        }
    }
}

impl Error for TimedOut {}

/// TCP then TLS, within the connect timeout, as the SDK's connector counts
/// it.
#[derive(Clone)]
struct Connect {
    https: hyper_rustls::HttpsConnector<TcpConnector>,
    timeout: Option<Duration>,
}

type Stream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

impl tower_service::Service<http::Uri> for Connect {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.https.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, connecting)
                    .await
                    .map_err(|_| Box::new(TimedOut::Connect(limit)) as BoxError)?,
                None => connecting.await,
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_types::error::display::DisplayErrorContext;
    use aws_smithy_types::retry::RetryConfig;
    use aws_smithy_types::timeout::TimeoutConfig;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A CA and a server certificate it signed for `localhost` and
    /// 127.0.0.1, valid 2000 to 2100: made for these tests only.
    pub(crate) const TEST_CA: &str = include_str!("../testdata/ca.pem");
    const SERVER_CERT: &str = include_str!("../testdata/server.pem");
    const SERVER_KEY: &str = include_str!("../testdata/server.key");

    const LIST_TABLES: &str = r#"{"TableNames":["orders"]}"#;

    /// A server on 127.0.0.1 that answers every request with `body`, over
    /// `tls` when given.
    async fn serve(
        tls: Option<tokio_rustls::TlsAcceptor>,
        body: Option<&'static str>,
    ) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                answer(stream, body).await;
                            }
                        }
                        None => answer(tcp, body).await,
                    }
                });
            }
        });
        (addr, connections)
    }

    /// Answers each request of the connection with `body`, or reads the
    /// first and never answers when `body` is `None`.
    async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, body: Option<&str>) {
        let mut buf = Vec::new();
        loop {
            // One request: its head, then as many bytes as its length says.
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().unwrap());
            while buf.len() < head_end + length {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..head_end + length);
            let Some(body) = body else {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn acceptor() -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = vec![CertificateDer::from_pem_slice(SERVER_CERT.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    fn test_ca_config() -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(TEST_CA.as_bytes()).unwrap())
            .unwrap();
        crate::tls::config_trusting(roots)
    }

    fn dynamodb(endpoint: &str, tls: Arc<rustls::ClientConfig>) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::from_keys("test", "test", None))
            .http_client(http_client(tls))
            // One attempt: each test is about what one attempt meets.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .read_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn dispatch_failure<E: fmt::Debug, R: fmt::Debug>(
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> &aws_smithy_runtime_api::client::result::DispatchFailure {
        match err {
            aws_smithy_runtime_api::client::result::SdkError::DispatchFailure(failure) => failure,
            other => panic!("not a dispatch failure: {other:?}"),
        }
    }

    #[tokio::test]
    async fn plain_http_to_a_local_endpoint() {
        let (addr, connections) = serve(None, Some(LIST_TABLES)).await;
        let client = dynamodb(&format!("http://{addr}"), crate::tls::compiled_roots());
        let out = client.list_tables().send().await.unwrap();
        assert_eq!(out.table_names(), ["orders"]);
        // Again, on the connection the pool kept.
        let out = client.list_tables().send().await.unwrap();
        assert_eq!(out.table_names(), ["orders"]);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn https_with_the_roots_given() {
        let (addr, _) = serve(Some(acceptor()), Some(LIST_TABLES)).await;
        let endpoint = format!("https://localhost:{}", addr.port());
        let out = dynamodb(&endpoint, test_ca_config())
            .list_tables()
            .send()
            .await
            .unwrap();
        assert_eq!(out.table_names(), ["orders"]);
    }

    #[tokio::test]
    async fn the_compiled_roots_refuse_an_unknown_issuer() {
        let (addr, _) = serve(Some(acceptor()), Some(LIST_TABLES)).await;
        let endpoint = format!("https://localhost:{}", addr.port());
        let err = dynamodb(&endpoint, crate::tls::compiled_roots())
            .list_tables()
            .send()
            .await
            .unwrap_err();
        let text = DisplayErrorContext(&err).to_string();
        assert!(text.contains("UnknownIssuer"), "{text}");
        // Classified as the SDK's client would: an I/O failure of the
        // connection, which its retry policy retries.
        let dispatch = dispatch_failure(&err);
        assert!(dispatch.is_io(), "{text}");
    }

    #[tokio::test]
    async fn no_answer_is_a_read_timeout() {
        let (addr, _) = serve(None, None).await;
        let err = dynamodb(&format!("http://{addr}"), crate::tls::compiled_roots())
            .list_tables()
            .send()
            .await
            .unwrap_err();
        let dispatch = dispatch_failure(&err);
        assert!(dispatch.is_timeout(), "{}", DisplayErrorContext(&err));
    }

    #[tokio::test]
    async fn no_listener_is_an_io_error() {
        // A port just freed: nothing listens there.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let err = dynamodb(&format!("http://{addr}"), crate::tls::compiled_roots())
            .list_tables()
            .send()
            .await
            .unwrap_err();
        let dispatch = dispatch_failure(&err);
        assert!(dispatch.is_io(), "{}", DisplayErrorContext(&err));
    }
}
