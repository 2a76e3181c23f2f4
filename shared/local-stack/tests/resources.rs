//! Creating the template's tables and queues in moto, and resolving the
//! functions' environment.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{BillingMode, ProjectionType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use local_stack::resources::{self, LocalOptions};
use local_stack::template::Template;

async fn queue_attrs(
    clients: &tier_runtime::AwsClients,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}

#[tokio::test]
async fn creates_tables_and_queues_from_the_fixture() {
    let template = common::fixture();
    let clients = common::clients();
    let prefix = common::prefix();
    let opts = LocalOptions {
        visibility_timeout: Some(1),
    };
    let res = resources::create(&template, &clients, &prefix, &opts)
        .await
        .unwrap();

    // Table: on-demand, keys, GSI1 with its projection, TTL on expires_at.
    let table = res.table("TierTable").unwrap();
    assert_eq!(table.name, format!("{prefix}-TierTable"));
    let desc = clients
        .dynamodb
        .describe_table()
        .table_name(&table.name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(desc.table_arn.as_deref(), Some(table.arn.as_str()));
    assert_eq!(
        desc.billing_mode_summary
            .clone()
            .and_then(|b| b.billing_mode),
        Some(BillingMode::PayPerRequest)
    );
    let keys: Vec<_> = desc
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(keys, ["PK", "SK"]);
    let gsis = desc.global_secondary_indexes();
    assert_eq!(gsis.len(), 1);
    assert_eq!(gsis[0].index_name(), Some("GSI1"));
    let gsi_keys: Vec<_> = gsis[0]
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(gsi_keys, ["GSI1PK", "GSI1SK"]);
    assert_eq!(
        gsis[0].projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&table.name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    // Queues: the redrive policy points at the DLQ's ARN; the visibility
    // timeout is overridden; other attributes come from the template.
    let dlq = res.queue("TierEventsDLQ").unwrap();
    let q = res.queue("TierEventsQueue").unwrap();
    assert_eq!(q.name, format!("{prefix}-TierEventsQueue"));
    let attrs = queue_attrs(&clients, &q.url).await;
    assert_eq!(attrs[&QueueAttributeName::QueueArn], q.arn);
    let policy: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(policy["deadLetterTargetArn"], dlq.arn.as_str());
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "3");
    assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout].trim(), "1");
    assert_eq!(
        attrs[&QueueAttributeName::MessageRetentionPeriod].trim(),
        "345600"
    );
    let dlq_attrs = queue_attrs(&clients, &dlq.url).await;
    assert!(!dlq_attrs.contains_key(&QueueAttributeName::RedrivePolicy));
    assert_eq!(
        dlq_attrs[&QueueAttributeName::MessageRetentionPeriod].trim(),
        "1209600"
    );
    assert_eq!(res.queues.len(), 4);
    assert_eq!(res.queue_urls().len(), 4);

    // Creating again into the same prefix reuses what exists.
    let again = resources::create(&template, &clients, &prefix, &opts)
        .await
        .unwrap();
    assert_eq!(again.tables, res.tables);
    assert_eq!(again.queues, res.queues);

    res.destroy(&clients).await.unwrap();
}

#[tokio::test]
async fn resolves_function_environments() {
    let template = common::fixture();
    let clients = common::clients();
    let prefix = common::prefix();
    let res = resources::create(&template, &clients, &prefix, &LocalOptions::default())
        .await
        .unwrap();
    let attrs = queue_attrs(&clients, res.queue_url("TierEventsQueue")).await;
    assert_eq!(
        attrs[&QueueAttributeName::VisibilityTimeout].trim(),
        "60",
        "template value without override"
    );

    let params = HashMap::from([("WebhookSecret".to_owned(), "s3cret".to_owned())]);
    let env = res
        .function_env(&template, "OrderIntakeFunction", &params)
        .unwrap();
    assert_eq!(env["TABLE_NAME"], format!("{prefix}-TierTable"));
    assert_eq!(
        env["TIER_EVENTS_QUEUE_URL"],
        res.queue_url("TierEventsQueue")
    );
    assert_eq!(env["WEBHOOK_SECRET"], "s3cret");
    assert_eq!(env["STAGE"], "test", "parameter default");
    assert_eq!(env["RUST_LOG"], "info");
    assert_eq!(env.len(), 5);

    let params = HashMap::from([("Stage".to_owned(), "dev".to_owned())]);
    let env = res
        .function_env(&template, "AdminApiFunction", &params)
        .unwrap();
    assert_eq!(env["STAGE"], "admin-override");
    let dlq = res.queue("TierEventsDLQ").unwrap();
    assert_eq!(env["DLQ_ARN"], dlq.arn);
    assert_eq!(
        env["QUEUE_DESC"],
        format!("{prefix}-TierEventsQueue in us-east-1 ({})", dlq.arn)
    );
    let env = res
        .function_env(&template, "TierEvaluationFunction", &params)
        .unwrap();
    assert_eq!(
        env["STAGE"], "dev",
        "given parameter value wins over the default"
    );
    assert_eq!(
        env["STOCK_EVENTS_QUEUE_URL"],
        res.queue_url("StockEventsQueue")
    );

    // A parameter with neither a value nor a default: the error names the variable.
    let err = res
        .function_env(&template, "OrderIntakeFunction", &HashMap::new())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("WEBHOOK_SECRET") && msg.contains("WebhookSecret"),
        "{msg}"
    );

    let err = res
        .function_env(&template, "NoSuchFunction", &HashMap::new())
        .unwrap_err();
    assert!(format!("{err:#}").contains("NoSuchFunction"));

    // A Ref to something that is not there.
    let bad = Template::parse(
        r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          WHERE: {Ref: MissingQueue}
"#,
    )
    .unwrap();
    let err = res.function_env(&bad, "F", &HashMap::new()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("WHERE") && msg.contains("MissingQueue"),
        "{msg}"
    );

    res.destroy(&clients).await.unwrap();
}

#[tokio::test]
async fn creates_the_real_template() {
    let path = common::real_template_path().expect("infra/template.yaml exists");
    let template = Template::from_path(&path).unwrap();
    let clients = common::clients();
    let prefix = common::prefix();
    let res = resources::create(
        &template,
        &clients,
        &prefix,
        &LocalOptions {
            visibility_timeout: Some(1),
        },
    )
    .await
    .unwrap();
    for id in [
        "TierEventsQueue",
        "TierEventsDLQ",
        "StockEventsQueue",
        "StockEventsDLQ",
        "OrderDetailQueue",
        "OrderDetailDLQ",
    ] {
        assert!(res.queue(id).is_some(), "{id}");
    }
    for q in ["TierEventsQueue", "StockEventsQueue", "OrderDetailQueue"] {
        let attrs = queue_attrs(&clients, res.queue_url(q)).await;
        assert!(
            attrs.contains_key(&QueueAttributeName::RedrivePolicy),
            "{q}"
        );
    }
    assert!(res.table("TierTable").is_some());

    // Every function's environment resolves once the parameters without a
    // default are given.
    let params: HashMap<String, String> = template
        .parameters
        .iter()
        .filter(|(_, default)| default.is_none())
        .map(|(name, _)| {
            (
                name.clone(),
                format!("local-{name}-0123456789abcdef0123456789abcdef"),
            )
        })
        .collect();
    for f in &template.functions {
        let env = res.function_env(&template, &f.logical_id, &params).unwrap();
        assert_eq!(
            env["TABLE_NAME"],
            format!("{prefix}-TierTable"),
            "{}",
            f.logical_id
        );
    }
    res.destroy(&clients).await.unwrap();
}
