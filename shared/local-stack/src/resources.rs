//! Creates the template's tables and queues in the emulator and resolves the
//! functions' environment against what was created.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType as DdbKeyType, LocalSecondaryIndex, Projection as DdbProjection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use tier_runtime::AwsClients;

use crate::template::{Expr, IndexDef, KeyElement, KeyType, QueueDef, TableDef, Template};

/// The region and account the emulator reports (and that ARNs use).
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// An SDK error with its whole chain of causes (the SDK's own Display only
/// says "service error").
pub fn sdk_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e))
}

/// Local deviations from the template.
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// Overrides every queue's `VisibilityTimeout` (seconds), so that failed
    /// messages come back in about a second instead of a minute.
    pub visibility_timeout: Option<u32>,
}

/// A created table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    pub name: String,
    pub arn: String,
    pub stream_arn: Option<String>,
}

/// A created queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRef {
    pub name: String,
    pub url: String,
    pub arn: String,
}

/// What [`create`] made: logical id → physical resource.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// The prefix of every physical name; also what `AWS::StackName` resolves to.
    pub prefix: String,
    pub tables: BTreeMap<String, TableRef>,
    pub queues: BTreeMap<String, QueueRef>,
    /// Topic logical id → its ARN.
    pub topics: BTreeMap<String, String>,
}

/// Creates every table, queue and topic of the template, named
/// `{prefix}-{LogicalId}` (plus `.fifo` for FIFO queues). Tables are
/// on-demand, with their GSIs/LSIs, stream and TTL; dead-letter queues are
/// created before the queues whose `RedrivePolicy` points at them.
///
/// Creating into a prefix that already exists reuses what is there.
pub async fn create(
    template: &Template,
    clients: &AwsClients,
    prefix: &str,
    opts: &LocalOptions,
) -> anyhow::Result<Resources> {
    let mut resources = Resources {
        prefix: prefix.to_owned(),
        ..Default::default()
    };
    for table in &template.tables {
        let created = create_table(clients, prefix, table)
            .await
            .with_context(|| format!("creating table {}", table.logical_id))?;
        resources.tables.insert(table.logical_id.clone(), created);
    }

    // Queues in dependency order: a queue only after its dead-letter queue.
    let mut pending: Vec<&QueueDef> = template.queues.iter().collect();
    while !pending.is_empty() {
        let ready = pending.iter().position(|q| match &q.redrive {
            None => true,
            Some(r) => resources.queues.contains_key(&r.dlq_logical_id),
        });
        let Some(i) = ready else {
            let q = pending[0];
            let dlq = &q
                .redrive
                .as_ref()
                .expect("only redriven queues wait")
                .dlq_logical_id;
            if template.queue(dlq).is_none() {
                bail!(
                    "queue {}: RedrivePolicy points at {dlq}, which is not a queue in the template",
                    q.logical_id
                );
            }
            bail!("queues' RedrivePolicies form a cycle (at {})", q.logical_id);
        };
        let queue = pending.remove(i);
        let created = create_queue(clients, prefix, queue, &resources, opts)
            .await
            .with_context(|| format!("creating queue {}", queue.logical_id))?;
        resources.queues.insert(queue.logical_id.clone(), created);
    }
    let sns = aws_sdk_sns::Client::new(&clients.sdk);
    for topic in &template.topics {
        let arn = sns
            .create_topic()
            .name(format!("{prefix}-{topic}"))
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("creating topic {topic}"))?
            .topic_arn
            .ok_or_else(|| anyhow!("topic {topic}: CreateTopic answered no ARN"))?;
        resources.topics.insert(topic.clone(), arn);
    }
    Ok(resources)
}

fn key_schema(keys: &[KeyElement]) -> anyhow::Result<Vec<KeySchemaElement>> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(match k.key_type {
                    KeyType::Hash => DdbKeyType::Hash,
                    KeyType::Range => DdbKeyType::Range,
                })
                .build()
                .map_err(Into::into)
        })
        .collect()
}

fn projection(index: &IndexDef) -> DdbProjection {
    let p = &index.projection;
    let mut b =
        DdbProjection::builder().projection_type(ProjectionType::from(p.projection_type.as_str()));
    for a in &p.non_key_attributes {
        b = b.non_key_attributes(a);
    }
    b.build()
}

async fn create_table(
    clients: &AwsClients,
    prefix: &str,
    table: &TableDef,
) -> anyhow::Result<TableRef> {
    let name = format!("{prefix}-{}", table.logical_id);
    let ddb = &clients.dynamodb;
    let mut req = ddb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&table.key_schema)?));
    for a in &table.attribute_definitions {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()?,
        );
    }
    for gsi in &table.global_secondary_indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&gsi.index_name)
                .set_key_schema(Some(key_schema(&gsi.key_schema)?))
                .projection(projection(gsi))
                .build()?,
        );
    }
    for lsi in &table.local_secondary_indexes {
        req = req.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(&lsi.index_name)
                .set_key_schema(Some(key_schema(&lsi.key_schema)?))
                .projection(projection(lsi))
                .build()?,
        );
    }
    if let Some(view) = &table.stream_view_type {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_err(e)),
    }

    // Moto creates tables ACTIVE at once; real DynamoDB (or another
    // emulator) takes a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    let description = loop {
        let out = ddb
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .map_err(sdk_err)?;
        let t = out
            .table
            .ok_or_else(|| anyhow!("DescribeTable returned no table"))?;
        if t.table_status == Some(TableStatus::Active) {
            break t;
        }
        if Instant::now() > deadline {
            bail!("table {name} not ACTIVE after 30 s ({:?})", t.table_status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    if let Some(attr) = &table.ttl_attribute {
        let current = ddb
            .describe_time_to_live()
            .table_name(&name)
            .send()
            .await
            .map_err(sdk_err)?;
        let already = current
            .time_to_live_description
            .as_ref()
            .and_then(|d| d.attribute_name.as_deref())
            == Some(attr.as_str());
        if !already {
            ddb.update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attr)
                        .build()?,
                )
                .send()
                .await
                .map_err(sdk_err)?;
        }
    }
    Ok(TableRef {
        arn: description
            .table_arn
            .unwrap_or_else(|| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}")),
        stream_arn: description.latest_stream_arn,
        name,
    })
}

async fn create_queue(
    clients: &AwsClients,
    prefix: &str,
    queue: &QueueDef,
    created: &Resources,
    opts: &LocalOptions,
) -> anyhow::Result<QueueRef> {
    let mut name = format!("{prefix}-{}", queue.logical_id);
    if queue.fifo_queue {
        name.push_str(".fifo");
    }
    if name.len() > 80 {
        bail!("queue name {name:?} is longer than SQS's 80 characters: use a shorter prefix");
    }
    let mut attrs: Vec<(QueueAttributeName, String)> = Vec::new();
    if let Some(v) = opts.visibility_timeout.or(queue.visibility_timeout) {
        attrs.push((QueueAttributeName::VisibilityTimeout, v.to_string()));
    }
    if let Some(v) = queue.message_retention_period {
        attrs.push((QueueAttributeName::MessageRetentionPeriod, v.to_string()));
    }
    if let Some(v) = queue.delay_seconds {
        attrs.push((QueueAttributeName::DelaySeconds, v.to_string()));
    }
    if let Some(v) = queue.receive_message_wait_time_seconds {
        attrs.push((
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            v.to_string(),
        ));
    }
    if queue.fifo_queue {
        attrs.push((QueueAttributeName::FifoQueue, "true".to_owned()));
        if queue.content_based_deduplication {
            attrs.push((
                QueueAttributeName::ContentBasedDeduplication,
                "true".to_owned(),
            ));
        }
    }
    if let Some(redrive) = &queue.redrive {
        let dlq = created.queues.get(&redrive.dlq_logical_id).ok_or_else(|| {
            anyhow!(
                "dead-letter queue {} not created yet",
                redrive.dlq_logical_id
            )
        })?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": redrive.max_receive_count,
        });
        attrs.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
    }
    let mut req = clients.sqs.create_queue().queue_name(&name);
    for (k, v) in attrs {
        req = req.attributes(k, v);
    }
    let out = req.send().await.map_err(sdk_err)?;
    let url = out
        .queue_url
        .ok_or_else(|| anyhow!("CreateQueue returned no QueueUrl"))?;
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_err)?;
    let arn = attrs
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_else(|| format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"));
    Ok(QueueRef { name, url, arn })
}

impl Resources {
    pub fn table(&self, logical_id: &str) -> Option<&TableRef> {
        self.tables.get(logical_id)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueRef> {
        self.queues.get(logical_id)
    }

    /// The table's physical name; panics with the logical id if unknown
    /// (for tests and wiring code where a missing table is a bug).
    pub fn table_name(&self, logical_id: &str) -> &str {
        &self
            .tables
            .get(logical_id)
            .unwrap_or_else(|| panic!("no table {logical_id} in the local stack"))
            .name
    }

    /// The queue's URL; panics with the logical id if unknown.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        &self
            .queues
            .get(logical_id)
            .unwrap_or_else(|| panic!("no queue {logical_id} in the local stack"))
            .url
    }

    /// Every queue URL (for [`crate::poller::wait_idle`]).
    pub fn queue_urls(&self) -> Vec<String> {
        self.queues.values().map(|q| q.url.clone()).collect()
    }

    /// The function's environment, every variable resolved: literals as is,
    /// `Ref` to a parameter (the given value, else its `Default`), to a table
    /// (its name) or to a queue (its URL), `Fn::GetAtt` `Arn` /
    /// `QueueUrl` / `QueueName` / `StreamArn`, `Fn::Sub` and `Fn::Join` over
    /// those, and the pseudo parameters `AWS::Region`, `AWS::AccountId`,
    /// `AWS::StackName` (the prefix), `AWS::Partition`, `AWS::URLSuffix`.
    pub fn function_env(
        &self,
        template: &Template,
        function_logical_id: &str,
        params: &HashMap<String, String>,
    ) -> anyhow::Result<HashMap<String, String>> {
        let function = template
            .function(function_logical_id)
            .ok_or_else(|| anyhow!("no function {function_logical_id} in the template"))?;
        function
            .env
            .iter()
            .map(|(name, expr)| {
                let value = self.resolve(template, expr, params).with_context(|| {
                    format!("function {function_logical_id}: environment variable {name}")
                })?;
                Ok((name.clone(), value))
            })
            .collect()
    }

    /// Resolves one value of the template.
    pub fn resolve(
        &self,
        template: &Template,
        expr: &Expr,
        params: &HashMap<String, String>,
    ) -> anyhow::Result<String> {
        match expr {
            Expr::Literal(s) => Ok(s.clone()),
            Expr::Ref(name) => self.resolve_ref(template, name, params),
            Expr::GetAtt {
                logical_id,
                attribute,
            } => self.resolve_get_att(logical_id, attribute),
            Expr::Sub {
                template: text,
                vars,
            } => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    // `${!Literal}` is written out as `${Literal}`.
                    if let Some(lit) = after.strip_prefix('!') {
                        out.push_str("${");
                        rest = lit;
                        continue;
                    }
                    let end = after
                        .find('}')
                        .ok_or_else(|| anyhow!("Fn::Sub {text:?}: unterminated ${{"))?;
                    let var = &after[..end];
                    let value = if let Some(v) = vars.get(var) {
                        self.resolve(template, v, params)?
                    } else if let Some((res, attr)) = var.split_once('.') {
                        self.resolve_get_att(res, attr)?
                    } else {
                        self.resolve_ref(template, var, params)?
                    };
                    out.push_str(&value);
                    rest = &after[end + 1..];
                }
                out.push_str(rest);
                Ok(out)
            }
            Expr::Join { separator, parts } => Ok(parts
                .iter()
                .map(|p| self.resolve(template, p, params))
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(separator)),
            Expr::Unsupported(what) => bail!("{what} is not supported by the local stack"),
        }
    }

    fn resolve_ref(
        &self,
        template: &Template,
        name: &str,
        params: &HashMap<String, String>,
    ) -> anyhow::Result<String> {
        match name {
            "AWS::Region" => return Ok(REGION.to_owned()),
            "AWS::AccountId" => return Ok(ACCOUNT_ID.to_owned()),
            "AWS::StackName" => return Ok(self.prefix.clone()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            _ => {}
        }
        if let Some(default) = template.parameters.get(name) {
            return match (params.get(name), default) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => bail!("parameter {name} has no value and no Default"),
            };
        }
        if let Some(t) = self.tables.get(name) {
            return Ok(t.name.clone());
        }
        if let Some(q) = self.queues.get(name) {
            return Ok(q.url.clone());
        }
        if let Some(arn) = self.topics.get(name) {
            return Ok(arn.clone());
        }
        bail!("Ref {name}: not a parameter, table, queue or topic of the local stack")
    }

    fn resolve_get_att(&self, logical_id: &str, attribute: &str) -> anyhow::Result<String> {
        if let Some(t) = self.tables.get(logical_id) {
            return match attribute {
                "Arn" => Ok(t.arn.clone()),
                "StreamArn" => t.stream_arn.clone().ok_or_else(|| {
                    anyhow!("Fn::GetAtt {logical_id}.StreamArn: the table has no stream")
                }),
                other => bail!("Fn::GetAtt {logical_id}.{other}: unknown table attribute"),
            };
        }
        if let Some(q) = self.queues.get(logical_id) {
            return match attribute {
                "Arn" => Ok(q.arn.clone()),
                "QueueUrl" => Ok(q.url.clone()),
                "QueueName" => Ok(q.name.clone()),
                other => bail!("Fn::GetAtt {logical_id}.{other}: unknown queue attribute"),
            };
        }
        bail!(
            "Fn::GetAtt {logical_id}.{attribute}: {logical_id} is not a table or queue of the local stack"
        )
    }

    /// Deletes every table and queue (best effort; errors are returned after
    /// trying all of them).
    pub async fn destroy(&self, clients: &AwsClients) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for t in self.tables.values() {
            if let Err(e) = clients
                .dynamodb
                .delete_table()
                .table_name(&t.name)
                .send()
                .await
            {
                errors.push(format!(
                    "{}: {}",
                    t.name,
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ));
            }
        }
        for q in self.queues.values() {
            if let Err(e) = clients.sqs.delete_queue().queue_url(&q.url).send().await {
                errors.push(format!(
                    "{}: {}",
                    q.name,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ));
            }
        }
        let sns = aws_sdk_sns::Client::new(&clients.sdk);
        for arn in self.topics.values() {
            if let Err(e) = sns.delete_topic().topic_arn(arn).send().await {
                errors.push(format!(
                    "{arn}: {}",
                    aws_sdk_sns::error::DisplayErrorContext(e)
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("deleting local resources: {}", errors.join("; "))
        }
    }
}
