//! At-least-once delivery: webhook retries and SQS redeliveries change
//! nothing the second time; an unreadable message goes to the dead-letter
//! queue with its reason without holding up its batch.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use system_tests::*;
use tier_domain::ids::*;
use tier_domain::money::Money;
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_messages::Message;

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_delivered_twice_changes_nothing_the_second_time() {
    let (stack, api) = clothing_stack().await;
    let doc = docs::paid(
        "evt-1",
        "O1",
        "b1",
        &[("JACKET-DOWN", 3, "1299.00")],
        Utc::now(),
    );
    let first = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    assert_eq!(first.status, 202, "{}", first.body);
    stack.wait_idle(IDLE).await.unwrap();
    let before = distributor(&api, "d-shanghai").await;
    let stock_before = stock(&api, "JACKET-DOWN").await;
    assert_eq!(stock_before, 37);

    let again = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(
        depth(&stack, "TierEventsQueue").await,
        0,
        "a duplicate is not enqueued"
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(distributor(&api, "d-shanghai").await, before);
    assert_eq!(stock(&api, "JACKET-DOWN").await, stock_before);

    // The same event id with another body is not a retry: refused.
    let other = docs::paid(
        "evt-1",
        "O1",
        "b1",
        &[("JACKET-DOWN", 4, "1299.00")],
        Utc::now(),
    );
    let reused = api.webhook("jd", "sh-outlet", &other).await.unwrap();
    assert_eq!(reused.status, 409, "{}", reused.body);
    assert_eq!(reused.code(), "event_id_reused");
    stack.stop().await;
}

async fn send_raw(stack: &LocalStack, queue: &str, body: &str) {
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(stack.queue_url(queue))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqs_message_delivered_many_times_is_applied_once() {
    let (stack, api) = clothing_stack().await;
    let message =
        paid_event("evt-dup", "O-dup", "d-shanghai", "HOODIE-GREY", 2, "459.00").to_json();
    // Five copies on each queue, as SQS may deliver under at-least-once.
    for _ in 0..5 {
        send_raw(&stack, "TierEventsQueue", &message).await;
        send_raw(&stack, "StockEventsQueue", &message).await;
    }
    stack.wait_idle(IDLE).await.unwrap();
    let d1 = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&d1["metrics"]["sales"]["lifetime"]), d("918"));
    assert_eq!(d1["metrics"]["orders"]["lifetime"], 1);
    assert_eq!(d1["metrics"]["downline_users"], 1);
    assert_eq!(stock(&api, "HOODIE-GREY").await, 1998);
    assert!(
        dead_letters(&stack, "TierEventsDLQ", 1, Duration::from_secs(1))
            .await
            .is_empty()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_message_is_dead_lettered_with_its_reason_and_its_batch_goes_on() {
    let (stack, api) = clothing_stack().await;
    let good = paid_event("evt-good", "O-good", "d-shanghai", "TEE-WHITE", 1, "199.00").to_json();
    send_raw(&stack, "TierEventsQueue", "{not json").await;
    send_raw(&stack, "TierEventsQueue", &good).await;
    send_raw(
        &stack,
        "TierEventsQueue",
        &json!({"type": "order_event.v7", "payload": {}}).to_string(),
    )
    .await;
    // A readable message about a distributor that does not exist can never succeed either.
    send_raw(
        &stack,
        "TierEventsQueue",
        &paid_event("evt-ghost", "O-ghost", "d-nobody", "TEE-WHITE", 1, "199.00").to_json(),
    )
    .await;
    stack.wait_idle(IDLE).await.unwrap();

    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["sales"]["lifetime"]),
        d("199")
    );
    let mut dead = dead_letters(&stack, "TierEventsDLQ", 3, Duration::from_secs(10)).await;
    dead.sort_by(|a, b| a.body.cmp(&b.body));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let codes: Vec<_> = dead
        .iter()
        .map(|m| m.code.clone().unwrap_or_default())
        .collect();
    assert!(codes.contains(&"malformed_message".to_owned()), "{codes:?}");
    assert!(
        codes.contains(&"unknown_distributor".to_owned()),
        "{codes:?}"
    );
    let v7 = dead
        .iter()
        .find(|m| m.body.contains("order_event.v7"))
        .unwrap();
    assert!(
        v7.reason
            .as_deref()
            .unwrap_or("")
            .contains("order_event.v7"),
        "{v7:?}"
    );
    assert!(
        dead.iter().any(|m| m.body == "{not json"),
        "the body is kept as it was"
    );
    stack.stop().await;
}

/// A registration for a distributor that does not exist can never succeed:
/// dead-lettered with its reason; one redelivered counts the user once; a
/// registration through an unregistered store is refused at intake.
#[tokio::test(flavor = "multi_thread")]
async fn registrations_are_applied_once_and_impossible_ones_are_dead_lettered() {
    let (stack, api) = clothing_stack().await;
    let registration = |distributor: &str, user: &str| {
        json!({"type": "user_registered.v1", "payload": {"event_id": format!("reg-{user}"), "platform": "jd", "store": "sh-outlet",
               "distributor": distributor, "user": user, "occurred_at": "2026-11-27T02:15:00Z"}})
        .to_string()
    };
    for _ in 0..3 {
        send_raw(
            &stack,
            "TierEventsQueue",
            &registration("d-shanghai", "u-1"),
        )
        .await;
    }
    send_raw(&stack, "TierEventsQueue", &registration("d-nobody", "u-2")).await;
    stack.wait_idle(IDLE).await.unwrap();
    let shanghai = distributor(&api, "d-shanghai").await;
    assert_eq!(shanghai["metrics"]["downline_users"], 1);
    assert_eq!(
        distributor(&api, "d-hangzhou").await["metrics"]["downline_users_all"],
        1
    );
    let dead = dead_letters(&stack, "TierEventsDLQ", 1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].code.as_deref(), Some("unknown_distributor"));

    let r = api
        .webhook(
            "jd",
            "no-such-store",
            &docs::registered("reg-x", "u-3", chrono::Utc::now()),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "unknown_store"));
    stack.stop().await;
}

/// The receivers' commission entries are written after the transaction that
/// counts the order (a plain write costs half a transactional one). When a
/// delivery commits and fails before writing them, its redelivery writes
/// them, and counts nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_writes_the_commission_entry_a_failed_delivery_left_out() {
    let (stack, api) = clothing_stack().await;
    let message = paid_event("evt-c", "O-c", "d-shanghai", "HOODIE-GREY", 2, "459.00").to_json();
    send_raw(&stack, "TierEventsQueue", &message).await;
    stack.wait_idle(IDLE).await.unwrap();
    let db = &stack.clients.dynamodb;
    let key = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            (
                "PK".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(pk.into()),
            ),
            (
                "SK".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(sk.into()),
            ),
        ])
    };
    let entry_key = key("DIST#d-hangzhou", "COMM#jd#sh-outlet#O-c");
    let entry = db
        .get_item()
        .table_name(stack.table_name())
        .set_key(Some(entry_key.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    let entry = entry.expect("the upline's entry is written");
    let earned = dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]);
    assert!(earned > d("0"), "d-hangzhou earns on d-shanghai's order");

    // The first delivery "failed" after its transaction: no entry.
    db.delete_item()
        .table_name(stack.table_name())
        .set_key(Some(entry_key.clone()))
        .send()
        .await
        .unwrap();
    send_raw(&stack, "TierEventsQueue", &message).await;
    stack.wait_idle(IDLE).await.unwrap();
    let again = db
        .get_item()
        .table_name(stack.table_name())
        .set_key(Some(entry_key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    let again = again.expect("the redelivery writes the missing entry");
    assert_eq!(again.get("entry"), entry.get("entry"));
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        earned,
        "counted once"
    );
    assert_eq!(
        dec(&distributor(&api, "d-shanghai").await["metrics"]["sales"]["lifetime"]),
        d("918")
    );
    stack.stop().await;
}

/// Ledger entries written before they kept the commission terms: the
/// receivers' entries hold them, and the order's next change moves the
/// terms into its ledger entry, reversing exactly what was earned.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_from_before_the_ledger_kept_commission_terms_reverses_exactly() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (stack, api) = clothing_stack().await;
    send_raw(
        &stack,
        "TierEventsQueue",
        &paid_event("evt-l", "O-l", "d-shanghai", "HOODIE-GREY", 2, "500.00").to_json(),
    )
    .await;
    stack.wait_idle(IDLE).await.unwrap();
    let earned = dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]);
    assert_eq!(earned, d("50"), "5 % of 1,000.00");

    // Rewrite both items as an earlier build left them.
    let db = &stack.clients.dynamodb;
    let table = stack.table_name();
    let key = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            ("PK".to_owned(), AttributeValue::S(pk.into())),
            ("SK".to_owned(), AttributeValue::S(sk.into())),
        ])
    };
    let ledger_key = key("DIST#d-shanghai", "ORDER#jd#sh-outlet#O-l");
    let entry_key = key("DIST#d-hangzhou", "COMM#jd#sh-outlet#O-l");
    db.update_item()
        .table_name(&table)
        .set_key(Some(ledger_key.clone()))
        .update_expression("REMOVE commission SET terms = :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    db.update_item()
        .table_name(&table)
        .set_key(Some(entry_key.clone()))
        .update_expression("REMOVE lversion SET version = :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();

    let refund = Message::OrderEventV1(OrderEvent {
        event_id: EventId::parse("evt-l-r").unwrap(),
        order: OrderRef {
            platform: Platform::parse("jd").unwrap(),
            store: StoreId::parse("sh-outlet").unwrap(),
            order_id: OrderId::parse("O-l").unwrap(),
        },
        distributor: DistributorId::parse("d-shanghai").unwrap(),
        occurred_at: Utc::now(),
        kind: OrderEventKind::Refunded {
            refund_id: RefundId::parse("R1").unwrap(),
            amount: Money::parse("400.00").unwrap(),
            lines: vec![],
        },
    });
    send_raw(&stack, "TierEventsQueue", &refund.to_json()).await;
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        dec(&distributor(&api, "d-hangzhou").await["metrics"]["cumulative_commission"]),
        d("30"),
        "5 % of 600.00"
    );
    let ledger = db
        .get_item()
        .table_name(&table)
        .set_key(Some(ledger_key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let terms: serde_json::Value =
        serde_json::from_str(ledger["commission"].as_s().unwrap()).unwrap();
    assert_eq!(dec(&terms["d-hangzhou"]["a"]), d("30"), "{terms}");
    assert_eq!(
        ledger["terms"].as_n().ok().map(String::as_str),
        Some("2"),
        "the entry keeps the terms now"
    );
    let entry = db
        .get_item()
        .table_name(&table)
        .set_key(Some(entry_key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(entry["entry"].as_s().unwrap()).unwrap();
    assert_eq!(dec(&entry["amount"]), d("30"));
    assert!(
        dead_letters(&stack, "TierEventsDLQ", 1, Duration::from_secs(1))
            .await
            .is_empty()
    );
    stack.stop().await;
}
