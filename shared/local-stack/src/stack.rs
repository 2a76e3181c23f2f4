//! The whole product on one machine: the template's tables and queues in
//! the emulator, the HTTP functions behind one local API, and each SQS
//! consumer fed by a poller with Lambda's event-source semantics. Every
//! function is built from its own resolved `Environment` block, exactly as
//! in Lambda, and runs the same handler code as its Lambda binary.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tier_runtime::{AwsClients, Env};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::{self as local_http, HttpHandler, Route};
use crate::poller::{self, InFlight, PollerConfig, SqsHandler};
use crate::resources::{self, LocalOptions, Resources};
use crate::template::Template;

/// Development values of the template's secret parameters. Never deployed:
/// the template has no defaults for them.
pub const LOCAL_ADMIN_KEY: &str = "local-admin-key-0123456789abcdef0123";
pub const LOCAL_WEBHOOK_SECRET: &str = "local-webhook-secret-0123456789";

pub struct StackOptions {
    /// The emulator's endpoint.
    pub endpoint: String,
    /// Where the local API listens; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Prefix of every table and queue name, so stacks can share an emulator.
    pub prefix: String,
    pub visibility_timeout: Option<u32>,
    /// Overrides every function's `Timeout` from the template, which is
    /// otherwise enforced as Lambda does.
    pub function_timeout: Option<Duration>,
    /// As `function_timeout`, for the queue consumers only: a short one
    /// ends their invocations part-way, as a crash would.
    pub consumer_timeout: Option<Duration>,
    /// Faults injected between the functions and the emulator (the tests'
    /// fault runs); the pollers, like Lambda's event source mappings, and
    /// the stack's own clients talk to it directly.
    pub faults: Option<crate::faults::FaultPlan>,
    /// Template parameter values; the secret ones default to the local values above.
    pub params: HashMap<String, String>,
}

impl StackOptions {
    pub fn new(endpoint: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            endpoint: endpoint.into(),
            addr,
            prefix: format!("tiers-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            visibility_timeout: None,
            function_timeout: None,
            consumer_timeout: None,
            faults: None,
            params: HashMap::new(),
        }
    }
}

pub struct LocalStack {
    pub base_url: String,
    pub clients: AwsClients,
    pub template: Template,
    pub resources: Resources,
    pub in_flight: InFlight,
    pub admin_key: String,
    pub webhook_secret: String,
    pub tier_evaluation: Arc<tier_evaluation::TierEvaluation>,
    /// Every DynamoDB operation the stack's functions make.
    pub dynamo_usage: tier_runtime::cost::DynamoCounter,
    /// ... and each function's, by its logical id.
    pub function_usage: BTreeMap<String, tier_runtime::cost::DynamoCounter>,
    /// What the fault proxy did, when the stack runs with faults.
    pub faults: Option<Arc<crate::faults::FaultCounts>>,
    fault_proxy: Option<JoinHandle<()>>,
    /// Queue consumer invocations ended by their timeout.
    pub timed_out_batches: Arc<std::sync::atomic::AtomicU64>,
    /// Held by each function invocation while it runs (the emulator's
    /// transactions are not isolated). Code that invokes a function's app
    /// directly takes its turn here too.
    pub turns: Arc<tokio::sync::Mutex<()>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The queues functions consume (those with a dead-letter queue).
fn work_queue_urls(template: &Template, resources: &Resources) -> Vec<String> {
    template
        .queues
        .iter()
        .filter(|q| q.redrive.is_some())
        .filter_map(|q| resources.queue(&q.logical_id))
        .map(|q| q.url.clone())
        .collect()
}

/// A 500, as API Gateway answers when the function behind a route times
/// out (in our error shape: its own body has no code).
fn timed_out(function: &str, timeout: Duration) -> lambda_http::Response<lambda_http::Body> {
    tracing::error!(function, ?timeout, "invocation timed out");
    tier_runtime::http::ApiError::new(
        lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

enum Function {
    Http(HttpHandler),
    Sqs(SqsHandler),
}

impl LocalStack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<LocalStack> {
        // Before any HTTP client is built: the functions', the fault
        // proxy's, and the callers' that come after the stack.
        tier_runtime::tls::install_crypto_provider();
        // The functions' metric lines are kept in memory (tests read them
        // with `tier_runtime::metrics::captured`) unless the process chose
        // a sink already, as the local-stack binary does.
        tier_runtime::metrics::set_sink(tier_runtime::metrics::Sink::Memory(Default::default()));
        let template = Template::from_path(&crate::moto::repo_root().join("infra/template.yaml"))?;
        let dynamo_usage = tier_runtime::cost::DynamoCounter::default();
        let clients = AwsClients::local_counted(&opts.endpoint, Some(dynamo_usage.clone()));
        let mut tasks = Vec::new();
        let (function_clients, faults, fault_proxy) = match opts.faults {
            Some(plan) => {
                let (endpoint, counts, proxy) = crate::faults::start(&opts.endpoint, plan).await?;
                (
                    AwsClients::local_counted(&endpoint, Some(dynamo_usage.clone())),
                    Some(counts),
                    Some(proxy),
                )
            }
            None => (clients.clone(), None, None),
        };
        let resources = resources::create(
            &template,
            &clients,
            &opts.prefix,
            &LocalOptions {
                visibility_timeout: opts.visibility_timeout,
            },
        )
        .await
        .context("creating the template's tables and queues")?;
        let mut params = opts.params;
        params
            .entry("AdminApiKey".into())
            .or_insert_with(|| LOCAL_ADMIN_KEY.into());
        params
            .entry("WebhookSecrets".into())
            .or_insert_with(|| LOCAL_WEBHOOK_SECRET.into());
        // Locally a backfill's second pass follows a second after the first,
        // not a quarter of an hour.
        params
            .entry("BackfillRecheckSeconds".into())
            .or_insert_with(|| "1".into());
        // And a network pull follows its orders by a second, not two.
        params
            .entry("NetworkRollupSeconds".into())
            .or_insert_with(|| "1".into());
        let admin_key = params["AdminApiKey"].clone();
        let webhook_secret = params["WebhookSecrets"]
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned();

        let (shutdown, _) = watch::channel(false);
        let stopped = |tx: &watch::Sender<bool>| {
            let mut rx = tx.subscribe();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let in_flight = InFlight::new();
        // The emulator's transactions are not isolated: it snapshots the
        // whole table before a transaction and restores the snapshot when a
        // condition fails, undoing any write another request made meanwhile.
        // DynamoDB has no such behaviour, so locally one function invocation
        // runs at a time, which no test of ours depends on otherwise.
        let serial = Arc::new(tokio::sync::Mutex::new(()));
        let mut routes = Vec::new();
        let timed_out_batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tier_evaluation = None;
        let mut function_usage = BTreeMap::new();
        for f in &template.functions {
            let env = Env::from_map(resources.function_env(&template, &f.logical_id, &params)?);
            // Each function's own count too: what its role must allow.
            let observed = tier_runtime::cost::DynamoCounter::default();
            function_usage.insert(f.logical_id.clone(), observed.clone());
            let function_clients = function_clients.clone().with_dynamo_counter(observed);
            // Lambda ends an invocation at its timeout: the caller of an HTTP
            // function gets a 500, an SQS batch comes back after its
            // visibility timeout. Counted from when the invocation starts,
            // not while it waits its turn.
            let timeout = opts
                .function_timeout
                .unwrap_or(Duration::from_secs(u64::from(f.timeout.unwrap_or(3))));
            let name = f.logical_id.clone();
            // Each function's app is built once, as in a Lambda init, and
            // shared by every request or batch. Invocations take turns (see
            // `serial` above).
            macro_rules! http_app {
                ($app:expr) => {{
                    let app = Arc::new($app);
                    let serial = serial.clone();
                    let name = name.clone();
                    Function::Http(local_http::handler(move |req| {
                        let (app, serial, name) = (app.clone(), serial.clone(), name.clone());
                        async move {
                            let _turn = serial.lock().await;
                            match tokio::time::timeout(timeout, app.handle(req)).await {
                                Ok(response) => response,
                                Err(_) => timed_out(&name, timeout),
                            }
                        }
                    }))
                }};
            }
            macro_rules! sqs_app {
                ($app:expr) => {{
                    let app = $app;
                    let serial = serial.clone();
                    let name = name.clone();
                    let timeout = opts.consumer_timeout.unwrap_or(timeout);
                    let cut = timed_out_batches.clone();
                    Function::Sqs(poller::sqs_handler(move |event| {
                        let (app, serial, name) = (app.clone(), serial.clone(), name.clone());
                        let cut = cut.clone();
                        async move {
                            let _turn = serial.lock().await;
                            tokio::time::timeout(timeout, app.handle_batch(event))
                                .await
                                .map_err(|_| {
                                    cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    tracing::error!(function = %name, ?timeout, "invocation timed out");
                                    format!("{name} timed out after {timeout:?}").into()
                                })
                        }
                    }))
                }};
            }
            let function = match f.logical_id.as_str() {
                // One binary, two functions: as in Lambda, its environment
                // says which (ORDER_INTAKE_MODE).
                "OrderIntakeFunction" | "OrderDetailFunction" => {
                    match order_intake::Mode::from_env(&env)? {
                        order_intake::Mode::Webhooks => {
                            http_app!(order_intake::OrderIntake::from_env(
                                &env,
                                &function_clients
                            )?)
                        }
                        order_intake::Mode::DetailFetch => sqs_app!(Arc::new(
                            order_intake::detail::DetailFetcher::from_env(&env, &function_clients)?
                        )),
                    }
                }
                "PriceLookupFunction" => {
                    http_app!(price_lookup::PriceLookup::from_env(
                        &env,
                        &function_clients
                    )?)
                }
                "AdminApiFunction" => {
                    http_app!(admin_api::AdminApi::from_env(&env, &function_clients)?)
                }
                "TierEvaluationFunction" => {
                    let app = Arc::new(tier_evaluation::TierEvaluation::from_env(
                        &env,
                        &function_clients,
                    )?);
                    tier_evaluation = Some(app.clone());
                    sqs_app!(app)
                }
                "StockAllocationFunction" => sqs_app!(Arc::new(
                    stock_allocation::StockAllocation::from_env(&env, &function_clients)?
                )),
                other => bail!(
                    "the template declares function {other}, which the local stack does not know how to run"
                ),
            };
            match function {
                Function::Http(h) => {
                    if f.http_routes.is_empty() {
                        bail!(
                            "{} is an HTTP function without HttpApi routes",
                            f.logical_id
                        );
                    }
                    routes.extend(f.http_routes.iter().map(|r: &Route| (r.clone(), h.clone())));
                }
                Function::Sqs(h) => {
                    for source in f.sqs_events.iter().filter(|s| s.enabled) {
                        let queue = resources.queue(&source.queue_logical_id).ok_or_else(|| {
                            anyhow!("{}: no queue {}", f.logical_id, source.queue_logical_id)
                        })?;
                        let config = PollerConfig {
                            queue_url: queue.url.clone(),
                            queue_arn: queue.arn.clone(),
                            batch_size: source.batch_size,
                            report_batch_item_failures: source.report_batch_item_failures,
                            wait_time_seconds: 1,
                        };
                        tasks.push(poller::spawn_poller_with(
                            clients.clone(),
                            config,
                            h.clone(),
                            in_flight.clone(),
                            stopped(&shutdown),
                        ));
                    }
                }
            }
        }
        let tier_evaluation =
            tier_evaluation.ok_or_else(|| anyhow!("the template has no TierEvaluationFunction"))?;
        // A review at a chosen instant: a route of the local stack alone.
        let rehearsal = Arc::new(crate::rehearse::Rehearsal {
            tier_evaluation: tier_evaluation.clone(),
            turns: serial.clone(),
            clients: clients.clone(),
            work_queues: work_queue_urls(&template, &resources),
            in_flight: in_flight.clone(),
            table: tier_store::Table::new(
                clients.dynamodb.clone(),
                resources.table_name("TierTable").to_owned(),
            ),
        });
        routes.push((
            Route::new("POST", crate::rehearse::PATH),
            local_http::handler(move |req| {
                let rehearsal = rehearsal.clone();
                async move { rehearsal.handle(req).await }
            }),
        ));
        let (bound, server) = local_http::serve(opts.addr, routes, stopped(&shutdown)).await?;
        tasks.push(server);
        Ok(LocalStack {
            base_url: format!("http://{bound}"),
            clients,
            template,
            resources,
            in_flight,
            admin_key,
            webhook_secret,
            dynamo_usage,
            function_usage,
            faults,
            fault_proxy,
            timed_out_batches,
            turns: serial,
            tier_evaluation,
            shutdown,
            tasks,
        })
    }

    /// Stock allocation's handler on the stack's clients and queues, for
    /// code that hands it batches itself (taking its turn in `turns`).
    pub fn stock_allocation(&self) -> anyhow::Result<stock_allocation::StockAllocation> {
        let env = Env::from_map(
            [
                ("TABLE_NAME", self.table_name()),
                ("DLQ_URL", self.queue_url("StockEventsDLQ")),
                ("STOCK_EVENTS_QUEUE_URL", self.queue_url("StockEventsQueue")),
                (
                    "BRAND_TIMEZONE",
                    tier_domain::calendar::DEFAULT_TIMEZONE.to_owned(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        );
        Ok(stock_allocation::StockAllocation::from_env(
            &env,
            &self.clients,
        )?)
    }

    /// Runs the template's queue schedule `logical_id` once, as if at `at`:
    /// sends its input to its queue, the scheduler's time filled in.
    pub async fn fire_queue_schedule(
        &self,
        logical_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let schedule = self
            .template
            .queue_schedule(logical_id)
            .ok_or_else(|| anyhow::anyhow!("the template has no queue schedule {logical_id}"))?;
        self.clients
            .sqs
            .send_message()
            .queue_url(self.queue_url(&schedule.queue_logical_id))
            .message_body(schedule.body_at(at))
            .send()
            .await?;
        Ok(())
    }

    /// The work queues (not the dead-letter queues).
    pub fn work_queue_urls(&self) -> Vec<String> {
        work_queue_urls(&self.template, &self.resources)
    }

    pub fn queue_url(&self, logical_id: &str) -> String {
        self.resources.queue_url(logical_id).to_owned()
    }

    pub fn table_name(&self) -> String {
        self.resources.table_name("TierTable").to_owned()
    }

    /// Returns once every work queue is empty and no poller holds a message.
    pub async fn wait_idle(&self, timeout: Duration) -> anyhow::Result<()> {
        poller::wait_idle(
            &self.clients,
            &self.work_queue_urls(),
            &self.in_flight,
            timeout,
        )
        .await
    }

    /// Stops the pollers and the API, letting work in progress finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        // The proxy serves until aborted, after the functions have stopped.
        if let Some(proxy) = self.fault_proxy {
            proxy.abort();
            let _ = proxy.await;
        }
    }
}

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
