//! A JSON object read field by field, for the 抖店 and 有赞 parsers: every
//! value kept as the text the platform sent (so numbers are read exactly),
//! every error naming the field's path (`[0].data.p_id`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::{DeliveryError, exact};

pub(crate) fn utf8(body: &[u8]) -> Result<&str, DeliveryError> {
    std::str::from_utf8(body).map_err(|e| DeliveryError::shape("", format!("not UTF-8: {e}")))
}

pub(crate) fn md5_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Md5::new();
    for part in parts {
        Digest::update(&mut hasher, part);
    }
    hasher.finalize().to_vec()
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// One JSON object's fields, each kept as the text the platform sent (so
/// that numbers are read exactly), with the path that names them in errors.
pub(crate) struct Fields<'a> {
    pub(crate) path: String,
    map: HashMap<String, &'a RawValue>,
}

impl<'a> Fields<'a> {
    pub(crate) fn parse(text: &'a str, path: String) -> Result<Fields<'a>, DeliveryError> {
        let map = serde_json::from_str(text).map_err(|e| {
            DeliveryError::shape(path.clone(), format!("expected a JSON object: {e}"))
        })?;
        Ok(Fields { path, map })
    }

    pub(crate) fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub(crate) fn error(&self, key: &str, reason: impl Into<String>) -> DeliveryError {
        DeliveryError::shape(self.field(key), reason)
    }

    pub(crate) fn missing(&self, key: &str) -> DeliveryError {
        self.error(key, "missing")
    }

    /// The field's JSON text; `null` counts as absent.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a str> {
        self.map
            .get(key)
            .map(|raw| raw.get().trim())
            .filter(|text| *text != "null")
    }

    pub(crate) fn id(&self, key: &str) -> Result<String, DeliveryError> {
        let raw = self.raw(key).ok_or_else(|| self.missing(key))?;
        exact::id_from_raw(raw).map_err(|e| self.error(key, e))
    }

    /// An optional reference to another record: empty and `0` mean none.
    pub(crate) fn reference(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        match self.raw(key) {
            None | Some("\"\"") | Some("0") | Some("\"0\"") => Ok(None),
            Some(raw) => exact::id_from_raw(raw)
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    pub(crate) fn text(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) if raw.starts_with('"') => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| self.error(key, e.to_string())),
            Some(_) => Err(self.error(key, "expected a string")),
        }
    }

    /// A string, or an integer written as a number, as text; empty is none.
    pub(crate) fn text_or_int(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        match self.raw(key) {
            Some(raw) if !raw.starts_with('"') => exact::id_from_raw(raw)
                .map(Some)
                .map_err(|e| self.error(key, e)),
            _ => Ok(self.text(key)?.filter(|text| !text.is_empty())),
        }
    }

    /// An integer, written as a number or as a string of digits.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, DeliveryError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let digits = if raw.starts_with('"') {
            self.text(key)?.unwrap_or_default()
        } else {
            raw.to_owned()
        };
        digits
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| self.error(key, format!("{raw} is not an integer")))
    }

    /// An amount in fen.
    pub(crate) fn fen(&self, key: &str) -> Result<Option<i64>, DeliveryError> {
        self.int(key)
    }

    /// Unix seconds; `0` is the platform's "not set".
    pub(crate) fn unix(&self, key: &str) -> Result<Option<i64>, DeliveryError> {
        Ok(self.int(key)?.filter(|seconds| *seconds != 0))
    }

    /// `update_time` as unix seconds: an RFC 3339 string in the refund
    /// messages, unix seconds in the trade messages.
    pub(crate) fn update_time(&self) -> Result<Option<i64>, DeliveryError> {
        const KEY: &str = "update_time";
        match self.raw(KEY) {
            Some(raw) if raw.starts_with('"') => {
                let text = self.text(KEY)?.unwrap_or_default();
                let text = text.trim();
                if text.is_empty() {
                    return Ok(None);
                }
                if text.bytes().all(|b| b.is_ascii_digit()) {
                    return self.unix(KEY);
                }
                DateTime::parse_from_rfc3339(text)
                    .map(|time| Some(time.timestamp()))
                    .map_err(|e| self.error(KEY, format!("{text}: {e}")))
            }
            _ => self.unix(KEY),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, DeliveryError> {
        match self.raw(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(self.error(key, "expected true or false")),
        }
    }

    pub(crate) fn decimal(&self, key: &str) -> Result<Option<Decimal>, DeliveryError> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => exact::decimal_from_raw(raw)
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    /// `true`, `1` or `"true"`; anything else, absence included, is false.
    pub(crate) fn truthy(&self, key: &str) -> bool {
        matches!(self.raw(key), Some("true" | "1" | "\"true\""))
    }

    /// A local time read in `tz`; empty is not set.
    pub(crate) fn local_time(
        &self,
        key: &str,
        tz: Tz,
    ) -> Result<Option<DateTime<Utc>>, DeliveryError> {
        match self.text(key)? {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => crate::youzan::local_instant(text.trim(), tz)
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    pub(crate) fn object(&self, key: &str) -> Result<Option<Fields<'a>>, DeliveryError> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => Fields::parse(raw, self.field(key)).map(Some),
        }
    }

    pub(crate) fn required_object(&self, key: &str) -> Result<Fields<'a>, DeliveryError> {
        self.object(key)?.ok_or_else(|| self.missing(key))
    }

    /// An array of objects; absent is empty.
    pub(crate) fn array(&self, key: &str) -> Result<Vec<Fields<'a>>, DeliveryError> {
        let Some(raw) = self.raw(key) else {
            return Ok(Vec::new());
        };
        let field = self.field(key);
        let items: Vec<&'a RawValue> = serde_json::from_str(raw)
            .map_err(|e| DeliveryError::shape(field.clone(), format!("expected an array: {e}")))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Fields::parse(item.get(), format!("{field}[{i}]")))
            .collect()
    }
}
