//! The SAM template, parsed into what the local stack needs: the tables and
//! queues to create, the functions with their environment (still unresolved)
//! and their event sources, and the parameters with their defaults.
//!
//! Only the long-form intrinsics are understood (`Ref:`, `Fn::GetAtt:`,
//! `Fn::Sub:`, `Fn::Join:`): the short `!Ref` tags are reported as
//! unsupported, so the template keeps to one spelling. Resource types the
//! local stack has no use for are ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_norway::Value as Yaml;

/// The parsed template.
#[derive(Clone, Debug, Default)]
pub struct Template {
    /// Parameter name → its `Default`, if any (numbers and booleans as text).
    pub parameters: BTreeMap<String, Option<String>>,
    pub tables: Vec<TableDef>,
    pub queues: Vec<QueueDef>,
    /// Logical ids of the `AWS::SNS::Topic`s (their subscriptions are the
    /// brand's, and not created locally).
    pub topics: Vec<String>,
    pub functions: Vec<FunctionDef>,
    /// `AWS::Scheduler::Schedule`s that send to one of the queues.
    pub queue_schedules: Vec<QueueSchedule>,
}

/// An EventBridge Scheduler schedule whose target is a queue: what it sends
/// on each run.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSchedule {
    pub logical_id: String,
    /// `cron(...)` or `rate(...)` as written.
    pub schedule: String,
    pub queue_logical_id: String,
    /// The message body, with the scheduler's context attributes
    /// (`<aws.scheduler.scheduled-time>`) as written.
    pub input: String,
}

impl QueueSchedule {
    /// The body one run at `at` sends.
    pub fn body_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.input.replace(
            "<aws.scheduler.scheduled-time>",
            &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }
}

/// An `AWS::DynamoDB::Table`.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDef {
    pub logical_id: String,
    /// `TableName` as written in the template (often a `Fn::Sub`); the local
    /// stack names tables `{prefix}-{logical_id}` instead.
    pub table_name: Option<Expr>,
    pub key_schema: Vec<KeyElement>,
    pub attribute_definitions: Vec<AttributeDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub local_secondary_indexes: Vec<IndexDef>,
    /// `TimeToLiveSpecification.AttributeName` when `Enabled` is true.
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType`, if the table has a stream.
    pub stream_view_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: KeyType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Hash,
    Range,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeDef {
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// A global or local secondary index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

/// An `AWS::SQS::Queue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDef {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    pub message_retention_period: Option<u32>,
    pub delay_seconds: Option<u32>,
    pub receive_message_wait_time_seconds: Option<u32>,
    pub fifo_queue: bool,
    pub content_based_deduplication: bool,
    pub redrive: Option<Redrive>,
}

/// `RedrivePolicy`: where messages go after `max_receive_count` receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redrive {
    /// Logical id of the dead-letter queue (from `deadLetterTargetArn`).
    pub dlq_logical_id: String,
    pub max_receive_count: u32,
}

/// An `AWS::Serverless::Function`.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// `Globals.Function.Environment.Variables` overlaid with the function's
    /// own `Environment.Variables`, unresolved.
    pub env: BTreeMap<String, Expr>,
    /// `HttpApi` events.
    pub http_routes: Vec<Route>,
    /// `SQS` events.
    pub sqs_events: Vec<SqsEventSource>,
    /// `Schedule` events.
    pub schedules: Vec<ScheduleEvent>,
    /// `Metadata.BuildProperties.Binary` (the cargo binary), if given.
    pub binary: Option<String>,
    /// `Timeout` (seconds), the function's own or `Globals.Function`'s.
    pub timeout: Option<u32>,
}

/// A `Schedule` event of a function (EventBridge rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleEvent {
    pub event_name: String,
    /// `cron(...)` or `rate(...)` as written.
    pub schedule: String,
    /// The constant JSON `Input`, if any.
    pub input: Option<String>,
    pub enabled: bool,
}

/// An HTTP API route: `method` is upper case (`GET`, `POST`, ... or `ANY`),
/// `path` is `/literal/{param}/{proxy+}` or `$default`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: String,
    pub path: String,
}

impl Route {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into().to_ascii_uppercase(),
            path: path.into(),
        }
    }

    /// API Gateway's route key, `GET /v1/things/{id}` or `$default`.
    pub fn route_key(&self) -> String {
        if self.path == "$default" {
            "$default".to_owned()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.route_key())
    }
}

/// An `SQS` event source of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqsEventSource {
    /// The event's name in the template's `Events` map.
    pub event_name: String,
    pub queue_logical_id: String,
    /// `BatchSize`, 10 when absent (Lambda's default for standard queues).
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
    pub maximum_batching_window_seconds: Option<u32>,
    pub enabled: bool,
}

/// An unresolved value: a literal or one of the intrinsics the local stack
/// understands. Resolved by [`crate::resources::Resources::resolve`].
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(String),
    Ref(String),
    GetAtt {
        logical_id: String,
        attribute: String,
    },
    /// `Fn::Sub` with its template string and its explicit variables.
    Sub {
        template: String,
        vars: BTreeMap<String, Expr>,
    },
    Join {
        separator: String,
        parts: Vec<Expr>,
    },
    /// Something the local stack cannot evaluate (for example `Fn::If`);
    /// resolving it is an error naming the variable.
    Unsupported(String),
}

impl Template {
    pub fn from_path(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading SAM template {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing SAM template {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: Yaml = serde_norway::from_str(text).context("template is not valid YAML")?;
        let mut template = Template::default();

        if let Some(params) = get(&doc, "Parameters").and_then(Yaml::as_mapping) {
            for (name, body) in params {
                let name = key_str(name)?;
                let default = match get(body, "Default") {
                    None | Some(Yaml::Null) => None,
                    Some(v) => {
                        Some(scalar(v).with_context(|| format!("parameter {name}: Default"))?)
                    }
                };
                template.parameters.insert(name, default);
            }
        }

        let global_env = match get(&doc, "Globals")
            .and_then(|g| get(g, "Function"))
            .and_then(|f| get(f, "Environment"))
            .and_then(|e| get(e, "Variables"))
        {
            Some(vars) => env_map(vars).context("Globals.Function.Environment.Variables")?,
            None => BTreeMap::new(),
        };

        let global_timeout = match get(&doc, "Globals").and_then(|g| get(g, "Function")) {
            Some(f) => opt_number(f, "Timeout", &template.parameters)
                .context("Globals.Function.Timeout")?,
            None => None,
        };

        let resources = get(&doc, "Resources")
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| anyhow!("template has no Resources map"))?;
        for (id, resource) in resources {
            let id = key_str(id)?;
            let kind = get(resource, "Type")
                .and_then(Yaml::as_str)
                .unwrap_or_default();
            let empty = Yaml::Mapping(Default::default());
            let props = get(resource, "Properties").unwrap_or(&empty);
            let params = &template.parameters;
            match kind {
                "AWS::DynamoDB::Table" => template
                    .tables
                    .push(parse_table(&id, props, params).with_context(|| format!("table {id}"))?),
                "AWS::SQS::Queue" => template
                    .queues
                    .push(parse_queue(&id, props, params).with_context(|| format!("queue {id}"))?),
                "AWS::SNS::Topic" => template.topics.push(id.clone()),
                "AWS::Scheduler::Schedule" => template.queue_schedules.push(
                    parse_queue_schedule(&id, props).with_context(|| format!("schedule {id}"))?,
                ),
                "AWS::Serverless::Function" => template.functions.push(
                    parse_function(&id, resource, props, &global_env, global_timeout, params)
                        .with_context(|| format!("function {id}"))?,
                ),
                _ => {}
            }
        }
        Ok(template)
    }

    pub fn queue_schedule(&self, logical_id: &str) -> Option<&QueueSchedule> {
        self.queue_schedules
            .iter()
            .find(|s| s.logical_id == logical_id)
    }

    pub fn table(&self, logical_id: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.logical_id == logical_id)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueDef> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

fn get<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn key_str(v: &Yaml) -> anyhow::Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("expected a string key, got {v:?}"))
}

/// A scalar as text: strings as is, numbers and booleans as YAML writes them.
fn scalar(v: &Yaml) -> anyhow::Result<String> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a scalar, got {other:?}"),
    }
}

fn string_prop(props: &Yaml, key: &str) -> anyhow::Result<String> {
    match get(props, key) {
        Some(v) => scalar(v).with_context(|| key.to_owned()),
        None => bail!("missing {key}"),
    }
}

/// A number that may be written as `5`, `"5"` or `{Ref: Param}` (resolved
/// to the parameter's default: resources are created before any parameter
/// override is known).
fn number(v: &Yaml, what: &str, params: &BTreeMap<String, Option<String>>) -> anyhow::Result<u32> {
    let text = match parse_expr(v)? {
        Expr::Literal(s) => s,
        Expr::Ref(name) => match params.get(&name) {
            Some(Some(default)) => default.clone(),
            Some(None) => bail!("{what}: parameter {name} has no Default"),
            None => bail!("{what}: Ref to unknown parameter {name}"),
        },
        other => bail!("{what}: expected a number, got {other:?}"),
    };
    text.trim()
        .parse::<u32>()
        .with_context(|| format!("{what}: {text:?} is not a non-negative integer"))
}

fn opt_number(
    props: &Yaml,
    key: &str,
    params: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<Option<u32>> {
    get(props, key).map(|v| number(v, key, params)).transpose()
}

fn boolean(props: &Yaml, key: &str) -> anyhow::Result<bool> {
    match get(props, key) {
        None | Some(Yaml::Null) => Ok(false),
        Some(Yaml::Bool(b)) => Ok(*b),
        Some(Yaml::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Yaml::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => bail!("{key}: expected a boolean, got {other:?}"),
    }
}

fn seq<'a>(props: &'a Yaml, key: &str) -> anyhow::Result<&'a [Yaml]> {
    match get(props, key) {
        None | Some(Yaml::Null) => Ok(&[]),
        Some(Yaml::Sequence(s)) => Ok(s),
        Some(other) => bail!("{key}: expected a list, got {other:?}"),
    }
}

fn parse_key_schema(props: &Yaml) -> anyhow::Result<Vec<KeyElement>> {
    seq(props, "KeySchema")?
        .iter()
        .map(|k| {
            let attribute_name = string_prop(k, "AttributeName")?;
            let key_type = match string_prop(k, "KeyType")?.as_str() {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => bail!("KeyType {other:?} is neither HASH nor RANGE"),
            };
            Ok(KeyElement {
                attribute_name,
                key_type,
            })
        })
        .collect::<anyhow::Result<_>>()
        .context("KeySchema")
}

fn parse_index(v: &Yaml) -> anyhow::Result<IndexDef> {
    let index_name = string_prop(v, "IndexName")?;
    let key_schema = parse_key_schema(v).with_context(|| format!("index {index_name}"))?;
    let projection = match get(v, "Projection") {
        None => Projection {
            projection_type: "ALL".to_owned(),
            non_key_attributes: vec![],
        },
        Some(p) => Projection {
            projection_type: get(p, "ProjectionType")
                .map(scalar)
                .transpose()?
                .unwrap_or_else(|| "ALL".to_owned()),
            non_key_attributes: seq(p, "NonKeyAttributes")?
                .iter()
                .map(scalar)
                .collect::<anyhow::Result<_>>()?,
        },
    };
    Ok(IndexDef {
        index_name,
        key_schema,
        projection,
    })
}

/// A schedule whose target is one of the template's queues; any other
/// target is not the local stack's to run.
fn parse_queue_schedule(id: &str, props: &Yaml) -> anyhow::Result<QueueSchedule> {
    let target = get(props, "Target").ok_or_else(|| anyhow!("schedule {id} has no Target"))?;
    let arn = get(target, "Arn").ok_or_else(|| anyhow!("Target has no Arn"))?;
    let queue_logical_id = match parse_expr(arn)? {
        Expr::GetAtt {
            logical_id,
            attribute,
        } if attribute == "Arn" => logical_id,
        other => bail!("Target.Arn must be {{Fn::GetAtt: [Queue, Arn]}}, got {other:?}"),
    };
    Ok(QueueSchedule {
        logical_id: id.to_owned(),
        schedule: string_prop(props, "ScheduleExpression")?,
        queue_logical_id,
        input: string_prop(target, "Input")?,
    })
}

fn parse_table(
    id: &str,
    props: &Yaml,
    _params: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<TableDef> {
    let attribute_definitions = seq(props, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            Ok(AttributeDef {
                attribute_name: string_prop(a, "AttributeName")?,
                attribute_type: string_prop(a, "AttributeType")?,
            })
        })
        .collect::<anyhow::Result<_>>()
        .context("AttributeDefinitions")?;
    let ttl_attribute = match get(props, "TimeToLiveSpecification") {
        Some(spec) if boolean(spec, "Enabled")? => Some(string_prop(spec, "AttributeName")?),
        _ => None,
    };
    let stream_view_type = get(props, "StreamSpecification")
        .and_then(|s| get(s, "StreamViewType"))
        .map(scalar)
        .transpose()?;
    let table = TableDef {
        logical_id: id.to_owned(),
        table_name: get(props, "TableName").map(parse_expr).transpose()?,
        key_schema: parse_key_schema(props)?,
        attribute_definitions,
        global_secondary_indexes: seq(props, "GlobalSecondaryIndexes")?
            .iter()
            .map(parse_index)
            .collect::<anyhow::Result<_>>()
            .context("GlobalSecondaryIndexes")?,
        local_secondary_indexes: seq(props, "LocalSecondaryIndexes")?
            .iter()
            .map(parse_index)
            .collect::<anyhow::Result<_>>()
            .context("LocalSecondaryIndexes")?,
        ttl_attribute,
        stream_view_type,
    };
    if table.key_schema.is_empty() {
        bail!("KeySchema is empty");
    }
    Ok(table)
}

fn parse_queue(
    id: &str,
    props: &Yaml,
    params: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<QueueDef> {
    let redrive = match get(props, "RedrivePolicy") {
        None | Some(Yaml::Null) => None,
        Some(policy) => {
            let target = get(policy, "deadLetterTargetArn")
                .ok_or_else(|| anyhow!("RedrivePolicy has no deadLetterTargetArn"))?;
            let dlq_logical_id = match parse_expr(target)? {
                Expr::GetAtt {
                    logical_id,
                    attribute,
                } if attribute == "Arn" => logical_id,
                other => bail!(
                    "RedrivePolicy.deadLetterTargetArn must be {{Fn::GetAtt: [Queue, Arn]}}, got {other:?}"
                ),
            };
            let max_receive_count = number(
                get(policy, "maxReceiveCount")
                    .ok_or_else(|| anyhow!("RedrivePolicy has no maxReceiveCount"))?,
                "RedrivePolicy.maxReceiveCount",
                params,
            )?;
            Some(Redrive {
                dlq_logical_id,
                max_receive_count,
            })
        }
    };
    Ok(QueueDef {
        logical_id: id.to_owned(),
        visibility_timeout: opt_number(props, "VisibilityTimeout", params)?,
        message_retention_period: opt_number(props, "MessageRetentionPeriod", params)?,
        delay_seconds: opt_number(props, "DelaySeconds", params)?,
        receive_message_wait_time_seconds: opt_number(
            props,
            "ReceiveMessageWaitTimeSeconds",
            params,
        )?,
        fifo_queue: boolean(props, "FifoQueue")?,
        content_based_deduplication: boolean(props, "ContentBasedDeduplication")?,
        redrive,
    })
}

fn env_map(vars: &Yaml) -> anyhow::Result<BTreeMap<String, Expr>> {
    let map = match vars {
        Yaml::Null => return Ok(BTreeMap::new()),
        Yaml::Mapping(m) => m,
        other => bail!("expected a map of variables, got {other:?}"),
    };
    map.iter()
        .map(|(k, v)| {
            let name = key_str(k)?;
            let expr = parse_expr(v).with_context(|| format!("variable {name}"))?;
            Ok((name, expr))
        })
        .collect()
}

fn parse_function(
    id: &str,
    resource: &Yaml,
    props: &Yaml,
    global_env: &BTreeMap<String, Expr>,
    global_timeout: Option<u32>,
    params: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<FunctionDef> {
    let mut env = global_env.clone();
    if let Some(vars) = get(props, "Environment").and_then(|e| get(e, "Variables")) {
        env.extend(env_map(vars).context("Environment.Variables")?);
    }
    let mut http_routes = Vec::new();
    let mut sqs_events = Vec::new();
    let mut schedules = Vec::new();
    if let Some(events) = get(props, "Events").and_then(Yaml::as_mapping) {
        for (name, event) in events {
            let name = key_str(name)?;
            let kind = get(event, "Type")
                .and_then(Yaml::as_str)
                .unwrap_or_default();
            let empty = Yaml::Mapping(Default::default());
            let eprops = get(event, "Properties").unwrap_or(&empty);
            match kind {
                "HttpApi" => {
                    // An HttpApi event without a Path is the `$default` route.
                    let path = get(eprops, "Path").map(scalar).transpose()?;
                    let method = get(eprops, "Method").map(scalar).transpose()?;
                    let route = match path {
                        None => Route::new("ANY", "$default"),
                        Some(path) => {
                            let method = method.unwrap_or_else(|| "ANY".to_owned());
                            let method = if method == "*" {
                                "ANY".to_owned()
                            } else {
                                method
                            };
                            validate_path(&path).with_context(|| format!("event {name}"))?;
                            Route::new(method, path)
                        }
                    };
                    http_routes.push(route);
                }
                "SQS" => {
                    let queue = get(eprops, "Queue")
                        .ok_or_else(|| anyhow!("SQS event {name} has no Queue"))?;
                    let queue_logical_id = match parse_expr(queue)? {
                        Expr::GetAtt {
                            logical_id,
                            attribute,
                        } if attribute == "Arn" => logical_id,
                        other => bail!(
                            "SQS event {name}: Queue must be {{Fn::GetAtt: [Queue, Arn]}}, got {other:?}"
                        ),
                    };
                    let report_batch_item_failures = seq(eprops, "FunctionResponseTypes")?
                        .iter()
                        .any(|t| t.as_str() == Some("ReportBatchItemFailures"));
                    let enabled = match get(eprops, "Enabled") {
                        None => true,
                        Some(_) => boolean(eprops, "Enabled")?,
                    };
                    sqs_events.push(SqsEventSource {
                        event_name: name.clone(),
                        queue_logical_id,
                        batch_size: opt_number(eprops, "BatchSize", params)?.unwrap_or(10),
                        report_batch_item_failures,
                        maximum_batching_window_seconds: opt_number(
                            eprops,
                            "MaximumBatchingWindowInSeconds",
                            params,
                        )?,
                        enabled,
                    });
                }
                // EventBridge rule (`Schedule`) or EventBridge Scheduler (`ScheduleV2`).
                "Schedule" | "ScheduleV2" => {
                    let key = if kind == "Schedule" {
                        "Schedule"
                    } else {
                        "ScheduleExpression"
                    };
                    let enabled = match get(eprops, "Enabled") {
                        None => true,
                        Some(_) => boolean(eprops, "Enabled")?,
                    };
                    schedules.push(ScheduleEvent {
                        event_name: name.clone(),
                        schedule: string_prop(eprops, key)
                            .with_context(|| format!("Schedule event {name}"))?,
                        input: get(eprops, "Input").map(scalar).transpose()?,
                        enabled,
                    });
                }
                _ => {}
            }
        }
    }
    let binary = get(resource, "Metadata")
        .and_then(|m| get(m, "BuildProperties"))
        .and_then(|b| get(b, "Binary"))
        .map(scalar)
        .transpose()?;
    Ok(FunctionDef {
        logical_id: id.to_owned(),
        env,
        http_routes,
        sqs_events,
        schedules,
        binary,
        timeout: opt_number(props, "Timeout", params)?.or(global_timeout),
    })
}

/// Checks a route path the way API Gateway does at deploy time: it starts
/// with `/`, and a greedy `{name+}` may only be the last segment.
fn validate_path(path: &str) -> anyhow::Result<()> {
    if !path.starts_with('/') {
        bail!("route path {path:?} must start with '/'");
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.starts_with('{') && seg.ends_with("+}") && i + 1 != segments.len() {
            bail!("route path {path:?}: greedy segment {seg} must be the last one");
        }
    }
    Ok(())
}

/// Parses a value that may be a scalar or a long-form intrinsic.
pub fn parse_expr(v: &Yaml) -> anyhow::Result<Expr> {
    match v {
        Yaml::String(_) | Yaml::Number(_) | Yaml::Bool(_) => Ok(Expr::Literal(scalar(v)?)),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one entry");
            let k = key_str(k)?;
            match k.as_str() {
                "Ref" => Ok(Expr::Ref(scalar(arg).context("Ref")?)),
                "Fn::GetAtt" => {
                    let (logical_id, attribute) = match arg {
                        Yaml::Sequence(s) if s.len() == 2 => (scalar(&s[0])?, scalar(&s[1])?),
                        Yaml::String(s) => match s.split_once('.') {
                            Some((a, b)) => (a.to_owned(), b.to_owned()),
                            None => bail!("Fn::GetAtt {s:?} is not Resource.Attribute"),
                        },
                        other => bail!("Fn::GetAtt: expected [Resource, Attribute], got {other:?}"),
                    };
                    Ok(Expr::GetAtt {
                        logical_id,
                        attribute,
                    })
                }
                "Fn::Sub" => match arg {
                    Yaml::String(s) => Ok(Expr::Sub {
                        template: s.clone(),
                        vars: BTreeMap::new(),
                    }),
                    Yaml::Sequence(s) if s.len() == 2 => {
                        let template = scalar(&s[0]).context("Fn::Sub template")?;
                        let vars = match &s[1] {
                            Yaml::Mapping(m) => m
                                .iter()
                                .map(|(k, v)| Ok((key_str(k)?, parse_expr(v)?)))
                                .collect::<anyhow::Result<_>>()?,
                            other => bail!("Fn::Sub variables: expected a map, got {other:?}"),
                        };
                        Ok(Expr::Sub { template, vars })
                    }
                    other => bail!("Fn::Sub: unexpected argument {other:?}"),
                },
                "Fn::Join" => match arg {
                    Yaml::Sequence(s) if s.len() == 2 => {
                        let separator = scalar(&s[0]).context("Fn::Join separator")?;
                        let parts = match &s[1] {
                            Yaml::Sequence(parts) => parts
                                .iter()
                                .map(parse_expr)
                                .collect::<anyhow::Result<_>>()?,
                            other => bail!("Fn::Join: expected a list of parts, got {other:?}"),
                        };
                        Ok(Expr::Join { separator, parts })
                    }
                    other => bail!("Fn::Join: unexpected argument {other:?}"),
                },
                other if other.starts_with("Fn::") || other == "Condition" => {
                    Ok(Expr::Unsupported(other.to_owned()))
                }
                other => bail!("unexpected map with key {other:?} where a value was expected"),
            }
        }
        Yaml::Tagged(t) => Ok(Expr::Unsupported(format!(
            "short-form tag {} (use the long form, e.g. Ref: / Fn::GetAtt:)",
            t.tag
        ))),
        other => bail!("unexpected value {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_intrinsics() {
        let y: Yaml = serde_norway::from_str("{Fn::GetAtt: [Q, Arn]}").unwrap();
        assert_eq!(
            parse_expr(&y).unwrap(),
            Expr::GetAtt {
                logical_id: "Q".into(),
                attribute: "Arn".into()
            }
        );
        let y: Yaml = serde_norway::from_str("{Fn::GetAtt: Q.Arn}").unwrap();
        assert!(matches!(parse_expr(&y).unwrap(), Expr::GetAtt { .. }));
        let y: Yaml = serde_norway::from_str("{Ref: X}").unwrap();
        assert_eq!(parse_expr(&y).unwrap(), Expr::Ref("X".into()));
        let y: Yaml = serde_norway::from_str("42").unwrap();
        assert_eq!(parse_expr(&y).unwrap(), Expr::Literal("42".into()));
        let y: Yaml = serde_norway::from_str("{Fn::If: [a, b, c]}").unwrap();
        assert!(matches!(parse_expr(&y).unwrap(), Expr::Unsupported(_)));
    }

    #[test]
    fn rejects_greedy_segment_in_the_middle() {
        assert!(validate_path("/a/{proxy+}/b").is_err());
        assert!(validate_path("/a/{proxy+}").is_ok());
        assert!(validate_path("a").is_err());
    }
}
