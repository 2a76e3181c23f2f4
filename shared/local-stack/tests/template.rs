//! Parsing the SAM template (no emulator needed).

mod common;

use local_stack::template::{Expr, KeyType, Route, Template};

#[test]
fn parses_the_fixture() {
    let t = common::fixture();

    assert_eq!(t.parameters["Stage"].as_deref(), Some("test"));
    assert_eq!(t.parameters["WebhookSecret"], None);
    assert_eq!(t.parameters["BatchSizeParam"].as_deref(), Some("5"));

    assert_eq!(t.tables.len(), 1);
    let table = t.table("TierTable").unwrap();
    assert_eq!(table.key_schema.len(), 2);
    assert_eq!(table.key_schema[0].attribute_name, "PK");
    assert_eq!(table.key_schema[0].key_type, KeyType::Hash);
    assert_eq!(table.key_schema[1].key_type, KeyType::Range);
    assert_eq!(table.attribute_definitions.len(), 4);
    assert_eq!(table.global_secondary_indexes.len(), 1);
    let gsi = &table.global_secondary_indexes[0];
    assert_eq!(gsi.index_name, "GSI1");
    assert_eq!(gsi.key_schema[0].attribute_name, "GSI1PK");
    assert_eq!(gsi.projection.projection_type, "ALL");
    assert_eq!(table.ttl_attribute.as_deref(), Some("expires_at"));
    assert!(matches!(table.table_name, Some(Expr::Sub { .. })));

    assert_eq!(t.queues.len(), 4);
    let q = t.queue("TierEventsQueue").unwrap();
    assert_eq!(q.visibility_timeout, Some(60));
    assert_eq!(q.message_retention_period, Some(345600));
    assert!(!q.fifo_queue);
    let r = q.redrive.as_ref().unwrap();
    assert_eq!(r.dlq_logical_id, "TierEventsDLQ");
    assert_eq!(r.max_receive_count, 3);
    // String-form GetAtt and a quoted maxReceiveCount.
    let r = t
        .queue("StockEventsQueue")
        .unwrap()
        .redrive
        .clone()
        .unwrap();
    assert_eq!(r.dlq_logical_id, "StockEventsDLQ");
    assert_eq!(r.max_receive_count, 2);
    assert!(t.queue("TierEventsDLQ").unwrap().redrive.is_none());

    assert_eq!(t.functions.len(), 5);
    let f = t.function("OrderIntakeFunction").unwrap();
    assert_eq!(
        f.http_routes,
        vec![Route::new("POST", "/webhooks/{platform}/{store}")]
    );
    assert_eq!(f.env["TABLE_NAME"], Expr::Ref("TierTable".into()));
    assert_eq!(f.env["RUST_LOG"], Expr::Literal("info".into()));
    assert_eq!(
        f.env["TIER_EVENTS_QUEUE_URL"],
        Expr::Ref("TierEventsQueue".into())
    );

    let admin = t.function("AdminApiFunction").unwrap();
    assert_eq!(
        admin.http_routes,
        vec![Route::new("ANY", "/v1/admin/{proxy+}")]
    );
    // A function's own variable overrides the global one.
    assert_eq!(admin.env["STAGE"], Expr::Literal("admin-override".into()));

    let eval = t.function("TierEvaluationFunction").unwrap();
    assert!(eval.http_routes.is_empty());
    assert_eq!(eval.sqs_events.len(), 1);
    let ev = &eval.sqs_events[0];
    assert_eq!(ev.queue_logical_id, "TierEventsQueue");
    assert_eq!(ev.batch_size, 10);
    assert!(ev.report_batch_item_failures);
    assert!(ev.enabled);

    // BatchSize from a parameter's default.
    let stock = t.function("StockAllocationFunction").unwrap();
    assert_eq!(stock.sqs_events[0].batch_size, 5);
    assert_eq!(stock.sqs_events[0].queue_logical_id, "StockEventsQueue");
}

#[test]
fn rejects_what_it_cannot_represent() {
    let bad = r#"
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: arn:aws:sqs:us-east-1:123456789012:elsewhere
        maxReceiveCount: 3
"#;
    let err = Template::parse(bad).unwrap_err();
    assert!(format!("{err:#}").contains("queue Q"), "{err:#}");

    let bad = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Api:
          Type: HttpApi
          Properties: {Path: "/a/{proxy+}/b", Method: GET}
"#;
    let err = Template::parse(bad).unwrap_err();
    assert!(format!("{err:#}").contains("greedy"), "{err:#}");

    assert!(Template::parse("Parameters: {}").is_err(), "no Resources");
}

#[test]
fn parses_the_real_template() {
    let path = common::real_template_path().expect("infra/template.yaml exists");
    let t = Template::from_path(&path).unwrap();

    // The month-end and daily reviews and the daily alerts: EventBridge
    // Scheduler in the brand's time zone, each input one the function reads.
    let review = t
        .function("TierEvaluationFunction")
        .expect("TierEvaluationFunction");
    assert_eq!(review.schedules.len(), 3);
    for s in &review.schedules {
        let input: serde_json::Value =
            serde_json::from_str(s.input.as_deref().expect("a schedule has an input")).unwrap();
        tier_evaluation::Invocation::parse(input)
            .unwrap_or_else(|e| panic!("schedule {}: {e}", s.event_name));
    }
    let by_input = |needle: &str| {
        review
            .schedules
            .iter()
            .find(|s| s.input.as_deref().unwrap_or("").contains(needle))
            .map(|s| s.schedule.as_str())
    };
    assert_eq!(by_input("scheduled"), Some("cron(5 0 1 * ? *)"));
    assert_eq!(by_input(r#""review":"daily""#), Some("cron(5 0 * * ? *)"));
    assert_eq!(by_input(r#""alerts":"daily""#), Some("cron(0 8 * * ? *)"));
    assert_eq!(t.topics, ["AlertsTopic"]);

    let table = t.table("TierTable").expect("TierTable");
    assert_eq!(
        table
            .key_schema
            .iter()
            .map(|k| k.attribute_name.as_str())
            .collect::<Vec<_>>(),
        ["PK", "SK"]
    );
    assert!(
        table
            .global_secondary_indexes
            .iter()
            .any(|g| g.index_name == "GSI1")
    );
    assert_eq!(table.ttl_attribute.as_deref(), Some("expires_at"));

    for (queue, dlq) in [
        ("TierEventsQueue", "TierEventsDLQ"),
        ("StockEventsQueue", "StockEventsDLQ"),
        ("OrderDetailQueue", "OrderDetailDLQ"),
    ] {
        let q = t.queue(queue).unwrap_or_else(|| panic!("{queue}"));
        assert_eq!(q.redrive.as_ref().expect("redrive").dlq_logical_id, dlq);
        assert!(t.queue(dlq).is_some(), "{dlq}");
    }

    let routes: Vec<(String, Route)> = t
        .functions
        .iter()
        .flat_map(|f| {
            f.http_routes
                .iter()
                .map(|r| (f.logical_id.clone(), r.clone()))
        })
        .collect();
    for id in [
        "OrderIntakeFunction",
        "PriceLookupFunction",
        "AdminApiFunction",
    ] {
        assert!(
            routes.iter().any(|(f, _)| f == id),
            "{id} has an HttpApi route: {routes:?}"
        );
    }
    for (id, queue) in [
        ("TierEvaluationFunction", "TierEventsQueue"),
        ("StockAllocationFunction", "StockEventsQueue"),
        ("OrderDetailFunction", "OrderDetailQueue"),
    ] {
        let f = t.function(id).unwrap_or_else(|| panic!("{id}"));
        let ev = f
            .sqs_events
            .first()
            .unwrap_or_else(|| panic!("{id} has an SQS event"));
        assert_eq!(ev.queue_logical_id, queue);
        assert!(ev.report_batch_item_failures, "{id}");
        assert!(ev.batch_size >= 1 && ev.batch_size <= 10, "{id}");
    }
    // One binary, two functions: which one it is comes from the environment.
    let detail = t
        .function("OrderDetailFunction")
        .expect("OrderDetailFunction");
    assert_eq!(detail.binary.as_deref(), Some("order-intake"));
    assert_eq!(
        detail.env["ORDER_INTAKE_MODE"],
        Expr::Literal("detail_fetch".into())
    );
    let intake = t
        .function("OrderIntakeFunction")
        .expect("OrderIntakeFunction");
    assert_eq!(intake.binary.as_deref(), Some("order-intake"));
    assert!(!intake.env.contains_key("ORDER_INTAKE_MODE"));
    for f in &t.functions {
        assert!(
            f.env.contains_key("TABLE_NAME"),
            "{} gets TABLE_NAME",
            f.logical_id
        );
        for (name, expr) in &f.env {
            assert!(
                !matches!(expr, Expr::Unsupported(_)),
                "{}: {name} = {expr:?}",
                f.logical_id
            );
        }
    }
}
