//! The table handle and the few generic operations the access patterns
//! build on.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};

use crate::error::StoreError;
use crate::item::{Item, key_item, key_of};
use crate::keys::Key;

/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;
/// BatchWriteItem takes at most 25 items.
const BATCH_WRITE_MAX: usize = 25;
/// Retries of what a batch request left unprocessed (throttling), backing
/// off from 50 ms to 1.6 s: about 3 seconds in all, inside a function's
/// 10-second timeout.
const UNPROCESSED_RETRIES: u32 = 6;
/// TransactWriteItems takes at most 100 actions.
pub const TRANSACT_MAX: usize = 100;

#[derive(Clone, Debug)]
pub struct Table {
    pub(crate) client: Client,
    pub(crate) name: String,
}

/// How a transaction ended.
pub(crate) enum TxOutcome {
    Committed,
    /// A condition failed; `reasons[i]` is the code for action `i`
    /// (`"ConditionalCheckFailed"`, `"None"`, ...).
    ConditionFailed {
        reasons: Vec<String>,
    },
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) async fn get(
        &self,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_item(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", e))?;
        Ok(out.item)
    }

    /// Reads many items, 100 keys per request, the requests in parallel
    /// (so up to 100 keys cost one round trip, 200 still one), retrying
    /// unprocessed keys. Missing items are simply absent from the map.
    pub(crate) async fn batch_get(
        &self,
        keys: &[Key],
        consistent: bool,
    ) -> Result<HashMap<Key, Item>, StoreError> {
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let chunks = unique
            .chunks(BATCH_GET_MAX)
            .map(|chunk| self.batch_get_chunk(chunk, consistent));
        let mut found = HashMap::with_capacity(unique.len());
        for part in futures::future::try_join_all(chunks).await? {
            found.extend(part);
        }
        Ok(found)
    }

    async fn batch_get_chunk(
        &self,
        chunk: &[&Key],
        consistent: bool,
    ) -> Result<HashMap<Key, Item>, StoreError> {
        let mut found = HashMap::with_capacity(chunk.len());
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| key_item(k)).collect()))
                .consistent_read(consistent)
                .build()
                .expect("keys are set"),
        );
        let mut attempt = 0u32;
        while let Some(req) = request.take() {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.name, req)
                .send()
                .await
                .map_err(|e| StoreError::aws("BatchGetItem", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.name))
                .unwrap_or_default()
            {
                found.insert(key_of(&item), item);
            }
            request = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.name))
                .filter(|k| !k.keys.is_empty());
            if request.is_some() {
                attempt += 1;
                // Unprocessed keys mean throttling: back off before asking
                // again, and past a few seconds hand the work back to the
                // queue rather than run into the function's timeout.
                if attempt > UNPROCESSED_RETRIES {
                    return Err(StoreError::Contention {
                        what: "BatchGetItem (keys left unprocessed: throttled)".into(),
                        attempts: attempt,
                    });
                }
                tokio_sleep_ms(25 * 2u64.pow(attempt.min(6))).await;
            }
        }
        Ok(found)
    }

    /// Writes items 25 per request (BatchWriteItem's limit, enforced here:
    /// some emulators accept more), retrying unprocessed items.
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        use futures::StreamExt;
        // Eight requests in flight: a 50,000-row price book is 2,000 of them.
        let requests: Vec<_> = items
            .chunks(BATCH_WRITE_MAX)
            .map(|chunk| Box::pin(self.batch_put_chunk(chunk)))
            .collect();
        let mut pending = futures::stream::iter(requests).buffer_unordered(8);
        while let Some(done) = pending.next().await {
            done?;
        }
        Ok(())
    }

    async fn batch_put_chunk(&self, chunk: &[Item]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let pending: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .expect("item set"),
                    )
                    .build()
            })
            .collect();
        self.write_chunk(pending).await
    }

    /// Deletes items 25 per request, as [`Table::batch_put`] writes them.
    pub(crate) async fn batch_delete(&self, keys: Vec<Key>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|k| {
                    WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key_item(k)))
                                .build()
                                .expect("key set"),
                        )
                        .build()
                })
                .collect();
            self.write_chunk(requests).await?;
        }
        Ok(())
    }

    pub(crate) async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_item(key)))
            .send()
            .await
            .map_err(|e| StoreError::aws("DeleteItem", e))?;
        Ok(())
    }

    /// One page of GSI1 partition `index_pk`, in sort-key order, after the
    /// item whose keys `after` holds (a cursor this returned).
    pub(crate) async fn index_page(
        &self,
        index_pk: &str,
        after: Option<&HashMap<String, String>>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<HashMap<String, String>>), StoreError> {
        let start = after.map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect()
        });
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(crate::keys::GSI1)
            .key_condition_expression("GSI1PK = :g")
            .expression_attribute_values(":g", AttributeValue::S(index_pk.to_owned()))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?;
        let next = out.last_evaluated_key.map(|k| {
            k.into_iter()
                .filter_map(|(name, v)| v.as_s().ok().map(|v| (name, v.clone())))
                .collect()
        });
        Ok((out.items.unwrap_or_default(), next))
    }

    async fn write_chunk(
        &self,
        mut pending: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.name, pending)
                .send()
                .await
                .map_err(|e| StoreError::aws("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.name))
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt > UNPROCESSED_RETRIES {
                    return Err(StoreError::Contention {
                        what: "BatchWriteItem (items left unprocessed: throttled)".into(),
                        attempts: attempt,
                    });
                }
                tokio_sleep_ms(25 * 2u64.pow(attempt.min(6))).await;
            }
        }
        Ok(())
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`,
    /// all pages.
    pub(crate) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self
                .query_page(pk, prefix, after.as_deref(), None, consistent)
                .await?;
            items.extend(page);
            match next {
                Some(sk) => after = Some(sk),
                None => return Ok(items),
            }
        }
    }

    /// A conditional UpdateItem of `key`: `update` where `condition` holds,
    /// with `values` (`:name` → value). `false` when it does not.
    pub(crate) async fn update_if(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        values: impl IntoIterator<Item = (&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        self.update_if_named(key, update, Some(condition), &[], values)
            .await
    }

    /// [`Table::update_if`] with `names` (`#name` → attribute) for
    /// attributes that are reserved words; without a condition, always.
    pub(crate) async fn update_if_named<'a>(
        &self,
        key: &Key,
        update: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: impl IntoIterator<Item = (&'a str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(crate::keys::PK, AttributeValue::S(key.0.clone()))
            .key(crate::keys::SK, AttributeValue::S(key.1.clone()))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            // DynamoDB refuses an empty map: none is sent as none.
            .set_expression_attribute_values(
                Some(
                    values
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<HashMap<_, _>>(),
                )
                .filter(|v| !v.is_empty()),
            );
        let result = names
            .iter()
            .fold(request, |r, (placeholder, name)| {
                r.expression_attribute_names(*placeholder, *name)
            })
            .send()
            .await;
        Ok(matches!(
            single_write("UpdateItem", result)?,
            TxOutcome::Committed
        ))
    }

    /// One page (at most `limit` items, or 1 MB) of partition `pk`'s items
    /// whose sort key starts with `prefix` (all of them for `""`), after the sort key `after`; and
    /// the sort key to carry on from, if the page was cut short.
    pub(crate) async fn query_page(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: Option<i32>,
        consistent: bool,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let start = after.map(|sk| {
            HashMap::from([
                (crate::keys::PK.to_owned(), AttributeValue::S(pk.to_owned())),
                (crate::keys::SK.to_owned(), AttributeValue::S(sk.to_owned())),
            ])
        });
        let query = self
            .client
            .query()
            .table_name(&self.name)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        // An empty prefix is the whole partition (DynamoDB refuses an empty
        // string in a key condition).
        let query = if prefix.is_empty() {
            query.key_condition_expression("PK = :pk")
        } else {
            query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        };
        let out = query
            .consistent_read(consistent)
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| k.get(crate::keys::SK))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Writes `items` atomically. One item is written as the plain
    /// conditional write it is (1 unit a KB instead of a transaction's 2).
    pub(crate) async fn transact(
        &self,
        mut items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        debug_assert!(items.len() <= TRANSACT_MAX);
        if items.len() == 1 {
            let item = items.pop().expect("one item");
            if let Some(outcome) = self.write_one(&item).await? {
                return Ok(outcome);
            }
            items.push(item);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(TxOutcome::Committed),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(c) = e.into_err() else {
                    unreachable!()
                };
                let reasons: Vec<String> = c
                    .cancellation_reasons
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.code.unwrap_or_else(|| "None".into()))
                    .collect();
                if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                    Ok(TxOutcome::ConditionFailed { reasons })
                } else {
                    // Conflicts with another transaction, throttling: retryable.
                    Err(StoreError::Contention {
                        what: format!("transaction ({})", reasons.join(", ")),
                        attempts: 1,
                    })
                }
            }
            Err(e) => Err(StoreError::aws("TransactWriteItems", e)),
        }
    }
}

impl Table {
    /// A lone Put or Update as itself; `None` for other actions (a lone
    /// condition check, a delete), which go through the transaction.
    async fn write_one(&self, item: &TransactWriteItem) -> Result<Option<TxOutcome>, StoreError> {
        if let Some(p) = &item.put {
            let result = self
                .client
                .put_item()
                .table_name(&p.table_name)
                .set_item(Some(p.item.clone()))
                .set_condition_expression(p.condition_expression.clone())
                .set_expression_attribute_names(p.expression_attribute_names.clone())
                .set_expression_attribute_values(p.expression_attribute_values.clone())
                .send()
                .await;
            return single_write("PutItem", result).map(Some);
        }
        if let Some(u) = &item.update {
            let result = self
                .client
                .update_item()
                .table_name(&u.table_name)
                .set_key(Some(u.key.clone()))
                .update_expression(&u.update_expression)
                .set_condition_expression(u.condition_expression.clone())
                .set_expression_attribute_names(u.expression_attribute_names.clone())
                .set_expression_attribute_values(u.expression_attribute_values.clone())
                .send()
                .await;
            return single_write("UpdateItem", result).map(Some);
        }
        Ok(None)
    }
}

/// What a single conditional write came to, told as a transaction's
/// outcome: a failed condition is `ConditionFailed`, and an item another
/// transaction holds is `Contention` (retryable), as inside a transaction.
fn single_write<O, E, R>(
    operation: &'static str,
    result: Result<O, SdkError<E, R>>,
) -> Result<TxOutcome, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let Err(e) = result else {
        return Ok(TxOutcome::Committed);
    };
    match e.as_service_error().and_then(ProvideErrorMetadata::code) {
        Some("ConditionalCheckFailedException") => Ok(TxOutcome::ConditionFailed {
            reasons: vec!["ConditionalCheckFailed".into()],
        }),
        Some("TransactionConflictException") => Err(StoreError::Contention {
            what: format!("{operation} (TransactionConflict)"),
            attempts: 1,
        }),
        _ => Err(StoreError::aws(operation, e)),
    }
}

/// A short wait before retrying a conflict: exponential, with jitter so
/// that the losers of a race do not meet again.
pub(crate) async fn backoff(attempt: u32) {
    let base = 10u64 * 2u64.pow(attempt.min(6));
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % base.max(1);
    tokio_sleep_ms(base / 2 + jitter).await
}

async fn tokio_sleep_ms(ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await
}
