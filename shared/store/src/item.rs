//! Reading and writing attribute values. Numbers come back from DynamoDB as
//! strings (untrimmed, from some servers), so they are parsed as decimals and
//! never compared as strings.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::keys::{self, Key};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key_item(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(&key.0)),
        (keys::SK.to_owned(), s(&key.1)),
    ])
}

/// A new item: its key, its entity type and the given attributes.
pub fn new_item(
    key: &Key,
    entity: &str,
    attrs: impl IntoIterator<Item = (&'static str, AttributeValue)>,
) -> Item {
    let mut item = key_item(key);
    item.insert(keys::ENTITY.into(), s(entity));
    item.extend(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    item
}

pub fn key_of(item: &Item) -> Key {
    let get = |k| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (get(keys::PK), get(keys::SK))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| {
            StoreError::corrupt(&key_of(item), format!("{name} is missing or not a string"))
        })
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_decimal(item: &Item, name: &str) -> Result<Decimal, StoreError> {
    let raw = item.get(name).and_then(|v| v.as_n().ok()).ok_or_else(|| {
        StoreError::corrupt(&key_of(item), format!("{name} is missing or not a number"))
    })?;
    Decimal::from_str(raw)
        .or_else(|_| Decimal::from_scientific(raw))
        .map_err(|e| StoreError::corrupt(&key_of(item), format!("{name}: {e}")))
}

pub fn get_i64(item: &Item, name: &str) -> Result<i64, StoreError> {
    let d = get_decimal(item, name)?;
    i64::try_from(d.normalize())
        .map_err(|_| StoreError::corrupt(&key_of(item), format!("{name} = {d} is not an integer")))
}

pub fn get_u64_or_zero(item: &Item, name: &str) -> Result<u64, StoreError> {
    if !item.contains_key(name) {
        return Ok(0);
    }
    let v = get_i64(item, name)?;
    u64::try_from(v)
        .map_err(|_| StoreError::corrupt(&key_of(item), format!("{name} = {v} is negative")))
}

/// Documents the domain owns (rule sets, ledger records, history entries)
/// are stored as JSON strings: exact (decimals are strings) and versioned by
/// their serde types.
/// A string set attribute; empty when absent.
pub fn get_string_set(item: &Item, name: &str) -> std::collections::BTreeSet<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

pub fn get_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let raw = get_s(item, name)?;
    serde_json::from_str(raw)
        .map_err(|e| StoreError::corrupt(&key_of(item), format!("{name}: {e}")))
}

pub fn json<T: Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).expect("domain documents serialise"))
}
