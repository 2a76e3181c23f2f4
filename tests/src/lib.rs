//! Helpers for the end-to-end tests: each test gets its own stack (fresh
//! table and queues under a unique prefix, its own API port) on the shared
//! emulator, so tests run in parallel.

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
pub use local_stack::client::{ApiClient, Reply, docs};
use local_stack::moto::Moto;
pub use local_stack::stack::LocalStack;
pub use local_stack::stack::StackOptions;
use serde_json::Value;

pub const IDLE: Duration = Duration::from_secs(60);

/// Where the stacks' order detail function finds the 抖店 open API unless a
/// test serves a fake one: a closed local port, so that no test reaches the
/// platform's own.
pub const NO_DOUDIAN_API: &str = "http://127.0.0.1:9";

/// The tests' stack options: the shared emulator, a fresh prefix, a free
/// port, failed messages back after 1 s instead of 60, and no 抖店 API.
pub fn stack_options() -> StackOptions {
    let mut opts = StackOptions::new(Moto::shared(), SocketAddr::from(([127, 0, 0, 1], 0)));
    opts.visibility_timeout = Some(1);
    opts.params
        .insert("DoudianApiBase".into(), NO_DOUDIAN_API.into());
    opts
}

/// As [`stack_options`], on the tables and queues under `prefix`.
pub fn stack_options_on(prefix: &str) -> StackOptions {
    let mut opts = stack_options();
    opts.prefix = prefix.to_owned();
    opts
}

/// The clothing brand loaded under a prefix of its own, with no stack left
/// running on it: for tests that start their own stacks on the same tables
/// and queues (restarts, faults). Returns the prefix and the brand's API key.
pub async fn loaded_prefix() -> (String, Option<String>) {
    let (loader, mut api) = spawn_stack().await;
    let prefix = loader.resources.prefix.clone();
    local_stack::demo::load(&mut api)
        .await
        .expect("the demo brand loads");
    loader.stop().await;
    (prefix, api.api_key)
}

/// A client of `stack` that reads with `api_key`.
pub fn client_with_key(stack: &LocalStack, api_key: &Option<String>) -> ApiClient {
    let mut api = ApiClient::for_stack(stack);
    api.api_key = api_key.clone();
    api
}

/// A stack whose failed messages come back after 1 s instead of 60.
pub async fn spawn_stack() -> (LocalStack, ApiClient) {
    let stack = LocalStack::start(stack_options())
        .await
        .expect("the local stack starts");
    let api = ApiClient::for_stack(&stack);
    (stack, api)
}

/// The stack with the clothing brand loaded.
pub async fn clothing_stack() -> (LocalStack, ApiClient) {
    clothing_stack_with(stack_options()).await
}

/// As [`clothing_stack`], started with `opts` (template parameters of the
/// test's own, say).
pub async fn clothing_stack_with(opts: StackOptions) -> (LocalStack, ApiClient) {
    let stack = LocalStack::start(opts)
        .await
        .expect("the local stack starts");
    let mut api = ApiClient::for_stack(&stack);
    local_stack::demo::load(&mut api)
        .await
        .expect("the demo brand loads");
    (stack, api)
}

pub async fn distributor(api: &ApiClient, id: &str) -> Value {
    let r = api.get(&format!("distributors/{id}")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

pub async fn tier_of(api: &ApiClient, id: &str) -> String {
    distributor(api, id).await["distributor"]["tier"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Places distributor `id` in `tier` by hand, locked so that no evaluation
/// moves it, and waits until it is.
pub async fn place_locked(stack: &LocalStack, api: &ApiClient, id: &str, tier: &str) {
    let r = api
        .put(
            &format!("distributors/{id}/tier"),
            &serde_json::json!({"tier": tier, "reason": "key account", "lock": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(api, id).await, tier);
}

/// A decimal from a JSON string, for comparing numbers as numbers.
pub fn dec(v: &Value) -> rust_decimal::Decimal {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a decimal: {s}")),
        Value::Number(n) => n.to_string().parse().unwrap(),
        Value::Null => rust_decimal::Decimal::ZERO,
        other => panic!("not a decimal: {other}"),
    }
}

pub fn d(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap()
}

pub async fn stock(api: &ApiClient, sku: &str) -> i64 {
    let r = api.get(&format!("skus/{sku}/stock")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["available"].as_i64().unwrap()
}

/// Approximate number of messages on a queue, visible or in flight.
pub async fn depth(stack: &LocalStack, logical_id: &str) -> i64 {
    let out = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(stack.queue_url(logical_id))
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// A message read off a dead-letter queue: body and failure attributes.
#[derive(Debug)]
pub struct DeadLetter {
    pub body: String,
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// Receives what is on `logical_id` (a DLQ), waiting up to `wait` for at
/// least `expect` messages.
pub async fn dead_letters(
    stack: &LocalStack,
    logical_id: &str,
    expect: usize,
    wait: Duration,
) -> Vec<DeadLetter> {
    let deadline = std::time::Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < expect && std::time::Instant::now() < deadline {
        let r = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(stack.queue_url(logical_id))
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in r.messages.unwrap_or_default() {
            let attr = |k: &str| {
                m.message_attributes
                    .as_ref()
                    .and_then(|a| a.get(k))
                    .and_then(|v| v.string_value.clone())
            };
            out.push(DeadLetter {
                body: m.body.clone().unwrap_or_default(),
                code: attr("failure_code"),
                reason: attr("failure_reason"),
            });
        }
    }
    out
}

/// Webhook receipts in the table: one per accepted event.
pub async fn receipts(stack: &LocalStack) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = stack
        .clients
        .dynamodb
        .scan()
        .table_name(stack.table_name())
        .filter_expression("entity_type = :e")
        .expression_attribute_values(":e", AttributeValue::S("webhook_receipt".into()))
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default().len()
}

/// Puts `body` on a queue as it is, as a message sent by an older build or
/// by hand would arrive.
pub async fn send_raw(stack: &LocalStack, logical_id: &str, body: &str) {
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(stack.queue_url(logical_id))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// A paid order event of one line, as intake queues it.
pub fn paid_event(
    event_id: &str,
    order: &str,
    distributor: &str,
    sku: &str,
    qty: u32,
    unit: &str,
) -> tier_messages::Message {
    let unit = Money::parse(unit).unwrap();
    use tier_domain::OrderRef;
    use tier_domain::ids::*;
    use tier_domain::money::Money;
    use tier_domain::order::{OrderEvent, OrderEventKind, OrderLine};
    tier_messages::Message::OrderEventV1(OrderEvent {
        event_id: EventId::parse(event_id).unwrap(),
        order: OrderRef {
            platform: Platform::parse("jd").unwrap(),
            store: StoreId::parse("sh-outlet").unwrap(),
            order_id: OrderId::parse(order).unwrap(),
        },
        distributor: DistributorId::parse(distributor).unwrap(),
        occurred_at: chrono::Utc::now(),
        kind: OrderEventKind::Paid {
            buyer: BuyerId::parse("b1").unwrap(),
            total: unit.times(qty),
            lines: vec![OrderLine {
                line_id: LineId::parse("1").unwrap(),
                sku: Sku::parse(sku).unwrap(),
                quantity: qty,
                unit_price: unit,
                amount: unit.times(qty),
                entitled_unit_price: None,
                floor_unit_price: None,
            }],
            urgent: false,
            region: None,
            tier: None,
            priority: 0,
        },
    })
}
