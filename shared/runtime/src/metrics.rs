//! Operational metrics in CloudWatch embedded metric format (EMF): one JSON
//! line per event on stdout, which Lambda ships to CloudWatch Logs and
//! CloudWatch turns into metrics of the `DistributorTiers` namespace. No
//! API call, so no latency and no failure mode of its own.
//!
//! The local stack points the sink elsewhere (a file, or memory in tests),
//! so that the lines do not land in the demo's output.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "DistributorTiers";

/// Where metric lines go.
#[derive(Clone, Debug)]
pub enum Sink {
    Stdout,
    File(Arc<Mutex<std::fs::File>>),
    /// Kept in memory, for tests to read.
    Memory(Arc<Mutex<Vec<Value>>>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets where metric lines go, once per process; later calls keep the
/// first. Without a call they go to stdout, as Lambda wants them.
pub fn set_sink(sink: Sink) -> Sink {
    SINK.get_or_init(|| sink).clone()
}

/// The metric lines written so far, when the sink is memory.
pub fn captured() -> Vec<Value> {
    match SINK.get() {
        Some(Sink::Memory(lines)) => lines.lock().expect("metrics lock").clone(),
        _ => Vec::new(),
    }
}

/// How a value is measured, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    None,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

/// Emits `values` under one set of `dimensions`.
pub fn emit(dimensions: &[(&str, &str)], values: &[(&str, f64, Unit)]) {
    if values.is_empty() {
        return;
    }
    let line = document(chrono::Utc::now().timestamp_millis(), dimensions, values);
    match SINK.get_or_init(|| Sink::Stdout) {
        Sink::Stdout => {
            // One write per line, so lines of concurrent tasks never mix.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        Sink::File(f) => {
            let _ = writeln!(f.lock().expect("metrics lock"), "{line}");
        }
        Sink::Memory(lines) => lines.lock().expect("metrics lock").push(line),
    }
}

/// Emits one count.
pub fn count(name: &str, dimensions: &[(&str, &str)], n: u64) {
    emit(dimensions, &[(name, n as f64, Unit::Count)]);
}

/// The EMF document: the `_aws` metadata naming the metrics and their
/// dimension set, and each dimension and value as a top-level member.
fn document(timestamp_ms: i64, dimensions: &[(&str, &str)], values: &[(&str, f64, Unit)]) -> Value {
    let mut doc = Map::new();
    let names: BTreeMap<&str, &str> = dimensions.iter().copied().collect();
    for (k, v) in &names {
        doc.insert((*k).to_owned(), json!(v));
    }
    for (name, value, _) in values {
        doc.insert((*name).to_owned(), json!(value));
    }
    let metrics: Vec<Value> = values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.name()}))
        .collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names.keys().collect::<Vec<_>>()],
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_names_its_metrics_and_dimensions() {
        let doc = document(
            1_800_000_000_000,
            &[("Platform", "jd"), ("Code", "invalid_order")],
            &[("WebhooksRefused", 1.0, Unit::Count)],
        );
        assert_eq!(doc["Platform"], "jd");
        assert_eq!(doc["Code"], "invalid_order");
        assert_eq!(doc["WebhooksRefused"], 1.0);
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(meta["Namespace"], NAMESPACE);
        assert_eq!(meta["Dimensions"], json!([["Code", "Platform"]]));
        assert_eq!(
            meta["Metrics"],
            json!([{"Name": "WebhooksRefused", "Unit": "Count"}])
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_000i64);
    }
}
