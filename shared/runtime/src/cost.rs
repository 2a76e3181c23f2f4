//! Counting DynamoDB requests and write units: they are most of what the
//! product costs to run. An SDK interceptor sees every operation the
//! functions make, so the count cannot drift from the code.
//!
//! Write units are counted by DynamoDB's pricing rule for items under 1 KB
//! (every item this product writes is; the end-to-end test checks it):
//! 1 per PutItem, UpdateItem or DeleteItem, 1 per item of a BatchWriteItem,
//! 2 per action of a TransactWriteItems (condition checks included).
//! Read units: 1 per strongly consistent item read, 0.5 per eventually
//! consistent one; transactional and Query reads are not modelled.
//!
//! Each write is also recorded with its item's key and whether it was part
//! of a transaction, labelled with the work it was done for ([`within`]):
//! the write sets the load model computes hot items and partitions from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Operations by name (`GetItem`, `TransactWriteItems`, ...).
    pub requests: BTreeMap<String, u64>,
    pub write_units: f64,
    pub read_units: f64,
    /// Every item written (or condition-checked in a transaction), in order.
    pub writes: Vec<Write>,
    /// The IAM actions the requests need (`dynamodb:PutItem` for a put in a
    /// transaction too), a query of an index marked `dynamodb:Query (index)`:
    /// what a function's role must allow.
    pub actions: BTreeSet<String>,
}

/// One item a request wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Write {
    pub pk: String,
    pub sk: String,
    /// Units by the rule above: 2 in a transaction, else 1.
    pub units: f64,
    /// Part of a TransactWriteItems: two such in flight on one item conflict.
    pub in_transaction: bool,
    /// A transaction's condition check: billed, but nothing written.
    pub check_only: bool,
    /// The label of the work it was done for ([`within`]), if any.
    pub source: Option<String>,
    /// Which request of the count it was in (from 0): the items of one
    /// transaction share it.
    pub request: u64,
}

tokio::task_local! {
    static SOURCE: String;
}

/// Runs `work` with its DynamoDB writes labelled `source` (the queue a
/// batch came from, say), so a write set can be split by what caused it.
pub async fn within<F: std::future::Future>(source: String, work: F) -> F::Output {
    SOURCE.scope(source, work).await
}

fn key_of(
    item: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> (String, String) {
    let part = |name: &str| {
        item.and_then(|i| i.get(name))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (part("PK"), part("SK"))
}

/// The items `input` writes: (key, check only).
/// The IAM actions `op` needs: a transaction is authorised action by
/// action, and a query of an index needs the index's resource.
fn actions(op: &str, input: &Input) -> Vec<String> {
    use aws_sdk_dynamodb::operation::query::QueryInput;
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        return i
            .transact_items()
            .iter()
            .map(|a| {
                let action = if a.put().is_some() {
                    "PutItem"
                } else if a.update().is_some() {
                    "UpdateItem"
                } else if a.delete().is_some() {
                    "DeleteItem"
                } else {
                    "ConditionCheckItem"
                };
                format!("dynamodb:{action}")
            })
            .collect();
    }
    if let Some(q) = input.downcast_ref::<QueryInput>()
        && q.index_name().is_some()
    {
        return vec!["dynamodb:Query (index)".into()];
    }
    vec![format!("dynamodb:{op}")]
}

fn written(input: &Input) -> Vec<((String, String), bool)> {
    use aws_sdk_dynamodb::operation::{delete_item, put_item, update_item};
    if let Some(i) = input.downcast_ref::<put_item::PutItemInput>() {
        return vec![(key_of(i.item()), false)];
    }
    if let Some(i) = input.downcast_ref::<update_item::UpdateItemInput>() {
        return vec![(key_of(i.key()), false)];
    }
    if let Some(i) = input.downcast_ref::<delete_item::DeleteItemInput>() {
        return vec![(key_of(i.key()), false)];
    }
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        return i
            .transact_items()
            .iter()
            .map(|a| {
                if let Some(p) = a.put() {
                    (key_of(Some(p.item())), false)
                } else if let Some(u) = a.update() {
                    (key_of(Some(u.key())), false)
                } else if let Some(d) = a.delete() {
                    (key_of(Some(d.key())), false)
                } else {
                    (key_of(a.condition_check().map(|c| c.key())), true)
                }
            })
            .collect();
    }
    if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        return i
            .request_items()
            .into_iter()
            .flat_map(|r| r.values().flatten())
            .map(|w| {
                let key = match (w.put_request(), w.delete_request()) {
                    (Some(p), _) => key_of(Some(p.item())),
                    (_, Some(d)) => key_of(Some(d.key())),
                    _ => (String::new(), String::new()),
                };
                (key, false)
            })
            .collect();
    }
    Vec::new()
}

impl Usage {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct DynamoCounter(Arc<Mutex<Usage>>);

impl DynamoCounter {
    pub fn snapshot(&self) -> Usage {
        self.0.lock().expect("counter lock").clone()
    }

    pub fn reset(&self) {
        *self.0.lock().expect("counter lock") = Usage::default();
    }
}

/// The operation, told by its input type (the operation metadata is not in
/// the config bag yet when execution starts).
fn operation_name(input: &Input) -> &'static str {
    use aws_sdk_dynamodb::operation::*;
    macro_rules! by_input {
        ($($module:ident :: $ty:ident => $name:literal),* $(,)?) => {
            $(if input.downcast_ref::<$module::$ty>().is_some() { return $name; })*
        };
    }
    by_input!(
        get_item::GetItemInput => "GetItem",
        put_item::PutItemInput => "PutItem",
        update_item::UpdateItemInput => "UpdateItem",
        delete_item::DeleteItemInput => "DeleteItem",
        query::QueryInput => "Query",
        scan::ScanInput => "Scan",
        batch_get_item::BatchGetItemInput => "BatchGetItem",
        batch_write_item::BatchWriteItemInput => "BatchWriteItem",
        transact_write_items::TransactWriteItemsInput => "TransactWriteItems",
        transact_get_items::TransactGetItemsInput => "TransactGetItems",
    );
    "Other"
}

impl Intercept for DynamoCounter {
    fn name(&self) -> &'static str {
        "DynamoCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let op = operation_name(input).to_owned();
        let (writes, reads) = match op.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => (1.0, 0.0),
            "TransactWriteItems" => (
                input
                    .downcast_ref::<TransactWriteItemsInput>()
                    .map_or(0.0, |i| 2.0 * i.transact_items().len() as f64),
                0.0,
            ),
            "BatchWriteItem" => (
                input
                    .downcast_ref::<BatchWriteItemInput>()
                    .map_or(0.0, |i| {
                        i.request_items()
                            .map_or(0, |r| r.values().map(Vec::len).sum::<usize>())
                            as f64
                    }),
                0.0,
            ),
            "GetItem" => (
                0.0,
                input.downcast_ref::<GetItemInput>().map_or(0.5, |i| {
                    if i.consistent_read() == Some(true) {
                        1.0
                    } else {
                        0.5
                    }
                }),
            ),
            "BatchGetItem" => (
                0.0,
                input.downcast_ref::<BatchGetItemInput>().map_or(0.0, |i| {
                    i.request_items()
                        .map(|r| {
                            r.values()
                                .map(|k| {
                                    k.keys().len() as f64
                                        * if k.consistent_read() == Some(true) {
                                            1.0
                                        } else {
                                            0.5
                                        }
                                })
                                .sum()
                        })
                        .unwrap_or(0.0)
                }),
            ),
            _ => (0.0, 0.0),
        };
        let in_transaction = op == "TransactWriteItems";
        let source = SOURCE.try_with(Clone::clone).ok();
        let items = written(input);
        let mut usage = self.0.lock().expect("counter lock");
        let request = usage.total_requests();
        usage
            .writes
            .extend(items.into_iter().map(|((pk, sk), check_only)| Write {
                pk,
                sk,
                units: if in_transaction { 2.0 } else { 1.0 },
                in_transaction,
                check_only,
                source: source.clone(),
                request,
            }));
        usage.actions.extend(actions(&op, input));
        *usage.requests.entry(op).or_default() += 1;
        usage.write_units += writes;
        usage.read_units += reads;
        Ok(())
    }
}

/// Counting SQS sends by queue, for the tests that bound what one request
/// costs: every message is a request, and the queues bill by request.
#[derive(Debug, Clone, Default)]
pub struct SqsCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl SqsCounter {
    /// Messages sent, by the queue's name (the last segment of its URL).
    pub fn sends(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("counter lock").clone()
    }

    pub fn reset(&self) {
        self.0.lock().expect("counter lock").clear();
    }
}

impl Intercept for SqsCounter {
    fn name(&self) -> &'static str {
        "SqsCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_sqs::operation::send_message::SendMessageInput;
        use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
        let input = context.input();
        let (url, messages) = if let Some(i) = input.downcast_ref::<SendMessageInput>() {
            (i.queue_url(), 1)
        } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
            (i.queue_url(), i.entries().len() as u64)
        } else {
            return Ok(());
        };
        let queue = url
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        *self
            .0
            .lock()
            .expect("counter lock")
            .entry(queue)
            .or_default() += messages;
        Ok(())
    }
}
