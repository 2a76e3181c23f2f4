//! The SQS event source mapping emulation against moto: partial batch
//! failures, retries with ApproximateReceiveCount, redrive to the DLQ,
//! whole-batch failures and waiting for quiescence.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use local_stack::poller::{InFlight, SqsError, queue_depth, spawn_poller, sqs_handler, wait_idle};
use local_stack::resources::{self, LocalOptions, Resources};
use tier_runtime::AwsClients;
use tokio::sync::oneshot;

async fn stack() -> (AwsClients, Resources) {
    let clients = common::clients();
    let res = resources::create(
        &common::fixture(),
        &clients,
        &common::prefix(),
        &LocalOptions {
            visibility_timeout: Some(1),
        },
    )
    .await
    .unwrap();
    (clients, res)
}

async fn send(clients: &AwsClients, url: &str, body: &str) {
    clients
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(body)
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("test")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

fn receive_count(m: &SqsMessage) -> u32 {
    m.attributes["ApproximateReceiveCount"]
        .trim()
        .parse()
        .unwrap()
}

/// Every record any invocation got, in order.
type Seen = Arc<Mutex<Vec<SqsMessage>>>;

async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn partial_failure_retries_then_dead_letters() {
    let (clients, res) = stack().await;
    let queue = res.queue("TierEventsQueue").unwrap().clone(); // maxReceiveCount 3
    let dlq = res.queue("TierEventsDLQ").unwrap().clone();

    let seen: Seen = Arc::default();
    let handler = {
        let seen = seen.clone();
        sqs_handler(move |event: SqsEvent| {
            let seen = seen.clone();
            async move {
                let mut response = SqsBatchResponse::default();
                for record in event.records {
                    if record.body.as_deref() == Some("poison") {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = record.message_id.clone().unwrap();
                        response.batch_item_failures.push(failure);
                    }
                    seen.lock().unwrap().push(record);
                }
                Ok::<_, SqsError>(response)
            }
        })
    };

    for body in ["ok-1", "poison", "ok-2"] {
        send(&clients, &queue.url, body).await;
    }
    let in_flight = InFlight::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let poller = spawn_poller(
        clients.clone(),
        queue.url.clone(),
        queue.arn.clone(),
        10,
        handler,
        in_flight.clone(),
        async {
            let _ = stopped.await;
        },
    );

    // The poison message ends up in the DLQ after 3 receives.
    until(
        "the poison message in the DLQ",
        Duration::from_secs(30),
        async || queue_depth(&clients, &dlq.url).await.unwrap().visible == 1,
    )
    .await;
    wait_idle(
        &clients,
        std::slice::from_ref(&queue.url),
        &in_flight,
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    let seen = seen.lock().unwrap().clone();
    let bodies = |b: &str| {
        seen.iter()
            .filter(|m| m.body.as_deref() == Some(b))
            .collect::<Vec<_>>()
    };
    // The successful ones were deleted after their first delivery.
    for ok in ["ok-1", "ok-2"] {
        let got = bodies(ok);
        assert_eq!(got.len(), 1, "{ok} delivered once: {got:?}");
        assert_eq!(receive_count(got[0]), 1);
    }
    // The failed one came back with a growing receive count, 3 times.
    let poison = bodies("poison");
    let counts: Vec<u32> = poison.iter().map(|m| receive_count(m)).collect();
    assert_eq!(counts, [1, 2, 3]);
    // Each delivery has the same message id and the fields Lambda fills in.
    let first = poison[0];
    assert!(poison.iter().all(|m| m.message_id == first.message_id));
    assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(first.event_source_arn.as_deref(), Some(queue.arn.as_str()));
    assert_eq!(first.aws_region.as_deref(), Some("us-east-1"));
    for attr in [
        "SentTimestamp",
        "ApproximateFirstReceiveTimestamp",
        "SenderId",
        "ApproximateReceiveCount",
    ] {
        assert!(
            first.attributes.contains_key(attr),
            "{attr} in {:?}",
            first.attributes
        );
    }
    assert_eq!(
        first.message_attributes["kind"].string_value.as_deref(),
        Some("test")
    );
    assert_eq!(
        first.message_attributes["kind"].data_type.as_deref(),
        Some("String")
    );
    assert!(first.md5_of_body.is_some());
    assert!(first.receipt_handle.is_some());

    // The DLQ holds the original message.
    let out = clients
        .sqs
        .receive_message()
        .queue_url(&dlq.url)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let msgs = out.messages.unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body(), Some("poison"));
    assert_eq!(
        msgs[0].message_id, first.message_id,
        "same message id in the DLQ"
    );
    eprintln!(
        "DLQ message attributes as moto reports them: {:?}",
        msgs[0].attributes
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .expect("poller stops")
        .unwrap();
    res.destroy(&clients).await.unwrap();
}

#[tokio::test]
async fn handler_error_retries_the_whole_batch() {
    let (clients, res) = stack().await;
    let queue = res.queue("TierEventsQueue").unwrap().clone();

    // Per invocation: (body, receive count) of each record.
    type Batches = Arc<Mutex<Vec<Vec<(String, u32)>>>>;
    let seen: Batches = Arc::default();
    let handler = {
        let seen = seen.clone();
        sqs_handler(move |event: SqsEvent| {
            let seen = seen.clone();
            async move {
                let batch: Vec<(String, u32)> = event
                    .records
                    .iter()
                    .map(|m| (m.body.clone().unwrap(), receive_count(m)))
                    .collect();
                let invocation = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(batch);
                    seen.len()
                };
                match invocation {
                    1 => Err::<SqsBatchResponse, SqsError>("transient failure".into()),
                    2 => panic!("a crash counts as a failed invocation too"),
                    _ => Ok(SqsBatchResponse::default()),
                }
            }
        })
    };

    // Both messages must be in the first batch, so send them before polling.
    send(&clients, &queue.url, "a").await;
    send(&clients, &queue.url, "b").await;
    let in_flight = InFlight::new();
    let _poller = spawn_poller(
        clients.clone(),
        queue.url.clone(),
        queue.arn.clone(),
        10,
        handler,
        in_flight.clone(),
        std::future::pending(),
    );
    wait_idle(
        &clients,
        std::slice::from_ref(&queue.url),
        &in_flight,
        Duration::from_secs(20),
    )
    .await
    .unwrap();

    let seen = seen.lock().unwrap().clone();
    let all: Vec<(String, u32)> = seen.iter().flatten().cloned().collect();
    for body in ["a", "b"] {
        let counts: Vec<u32> = all
            .iter()
            .filter(|(b, _)| b == body)
            .map(|(_, c)| *c)
            .collect();
        assert_eq!(
            counts,
            [1, 2, 3],
            "{body} redelivered after the error and the panic: {seen:?}"
        );
    }
    assert_eq!(
        queue_depth(&clients, res.queue_url("TierEventsDLQ"))
            .await
            .unwrap()
            .visible,
        0
    );
    res.destroy(&clients).await.unwrap();
}

#[tokio::test]
async fn unknown_item_identifier_fails_the_whole_batch() {
    let (clients, res) = stack().await;
    let queue = res.queue("StockEventsQueue").unwrap().clone(); // maxReceiveCount 2
    let calls: Arc<Mutex<Vec<u32>>> = Arc::default();
    let handler = {
        let calls = calls.clone();
        sqs_handler(move |event: SqsEvent| {
            let calls = calls.clone();
            async move {
                let mut response = SqsBatchResponse::default();
                let count = receive_count(&event.records[0]);
                calls.lock().unwrap().push(count);
                if count == 1 {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = "not-a-message-id".to_owned();
                    response.batch_item_failures.push(failure);
                }
                Ok::<_, SqsError>(response)
            }
        })
    };
    send(&clients, &queue.url, "x").await;
    let in_flight = InFlight::new();
    let _poller = spawn_poller(
        clients.clone(),
        queue.url.clone(),
        queue.arn.clone(),
        5,
        handler,
        in_flight.clone(),
        std::future::pending(),
    );
    wait_idle(
        &clients,
        std::slice::from_ref(&queue.url),
        &in_flight,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(*calls.lock().unwrap(), [1, 2]);
    res.destroy(&clients).await.unwrap();
}

#[tokio::test]
async fn wait_idle_times_out_with_the_queue_state() {
    let (clients, res) = stack().await;
    let url = res.queue_url("StockEventsDLQ").to_owned();
    send(&clients, &url, "stuck").await;
    let err = wait_idle(
        &clients,
        std::slice::from_ref(&url),
        &InFlight::new(),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains(&url) && err.contains("1 visible"), "{err}");
    res.destroy(&clients).await.unwrap();
}

/// Documents the moto behaviour the poller relies on (and that handlers may
/// use for back-off): per-message visibility changes and queue-level
/// visibility changes take effect, and the receive count grows per receive.
#[tokio::test]
async fn moto_visibility_semantics() {
    let (clients, res) = stack().await;
    let url = res.queue_url("StockEventsDLQ").to_owned(); // no redrive policy
    send(&clients, &url, "v").await;
    let receive = async || {
        clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    let count = |m: &aws_sdk_sqs::types::Message| {
        m.attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount].clone()
    };
    let first = receive().await;
    assert_eq!(count(&first[0]), "1");
    assert!(receive().await.is_empty(), "invisible while in flight");
    clients
        .sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(first[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let second = receive().await;
    assert_eq!(
        count(&second[0]),
        "2",
        "visible again at once after ChangeMessageVisibility(0)"
    );

    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "3",
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s of the second receive runs out
    let third = receive().await;
    assert_eq!(count(&third[0]), "3");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receive().await.is_empty(),
        "the new 3 s queue timeout applies"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(count(&receive().await[0]), "4");
    res.destroy(&clients).await.unwrap();
}
