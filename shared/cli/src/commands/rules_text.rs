//! Rule sets as people read them: conditions as one line of text, and the
//! difference between two rule sets tier by tier.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use tier_domain::rules::{Condition, RuleSetDoc, Tier};

/// A serde enum's wire name (`sales_amount`, `month`, `{"rolling_days": 30}`).
fn wire<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(m)) if m.len() == 1 => {
            let (k, v) = m.into_iter().next().expect("one entry");
            match k.as_str() {
                "rolling_days" => format!("last {v} days"),
                _ => format!("{k} {v}"),
            }
        }
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// `sales_amount(month) >= 50000`, `all(a, b)`, `at least 2 of (a, b, c)`.
pub fn condition(c: &Condition) -> String {
    let list = |cs: &[Condition]| cs.iter().map(condition).collect::<Vec<_>>().join(", ");
    match c {
        Condition::Threshold {
            metric,
            window,
            gte,
            skus,
        } => {
            let skus = if skus.is_empty() {
                String::new()
            } else {
                format!(
                    "[{}]",
                    skus.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            format!("{}{skus}({}) >= {gte}", wire(metric), wire(window))
        }
        Condition::All(cs) => format!("all({})", list(cs)),
        Condition::Any(cs) => format!("any({})", list(cs)),
        Condition::AtLeast { n, of } => format!("at least {n} of ({})", list(of)),
    }
}

/// A metric's name and window, for a progress line.
pub fn measure<M: Serialize, W: Serialize>(metric: &M, window: &W) -> String {
    format!("{}({})", wire(metric), wire(window))
}

/// One difference: `from` absent means added, `to` absent removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Change {
    pub fn line(&self) -> String {
        match (&self.from, &self.to) {
            (None, Some(to)) => format!("+ {}: {to}", self.path),
            (Some(from), None) => format!("- {}: {from}", self.path),
            (Some(from), Some(to)) => format!("~ {}: {from} -> {to}", self.path),
            (None, None) => format!("  {}", self.path),
        }
    }
}

/// Leaf values of a JSON document by dotted path.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

fn compare_maps(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>, out: &mut Vec<Change>) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            out.push(Change {
                path: k.clone(),
                from: x.cloned(),
                to: y.cloned(),
            });
        }
    }
}

fn flat<T: Serialize>(prefix: &str, v: &T) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    flatten(
        prefix,
        &serde_json::to_value(v).expect("rule sets serialise"),
        &mut m,
    );
    m
}

fn tier_summary(t: &Tier) -> String {
    let mut s = format!("{} (rank {})", t.name, t.rank);
    if let Some(u) = &t.upgrade {
        s.push_str(&format!(", upgrade {}", condition(u)));
    }
    s
}

fn opt_condition(c: &Option<Condition>) -> Option<String> {
    c.as_ref().map(condition)
}

/// What changed from `a` to `b`: tiers and step-ups matched by id, their
/// names, ranks, benefits, conditions and permissions; then downgrades
/// and commission field by field.
pub fn diff(a: &RuleSetDoc, b: &RuleSetDoc) -> Vec<Change> {
    let mut out = Vec::new();
    let by_id = |d: &RuleSetDoc| -> BTreeMap<String, Tier> {
        d.tiers
            .iter()
            .map(|t| (t.id.to_string(), t.clone()))
            .collect()
    };
    let (ta, tb) = (by_id(a), by_id(b));
    // In rank order of the newer set, then the removed ones.
    let mut ids: Vec<(u32, String)> = b.tiers.iter().map(|t| (t.rank, t.id.to_string())).collect();
    ids.sort();
    let mut ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    for t in &a.tiers {
        if !tb.contains_key(t.id.as_str()) {
            ids.push(t.id.to_string());
        }
    }
    for id in ids {
        let path = format!("tiers.{id}");
        match (ta.get(&id), tb.get(&id)) {
            (None, Some(t)) => out.push(Change {
                path,
                from: None,
                to: Some(tier_summary(t)),
            }),
            (Some(t), None) => out.push(Change {
                path,
                from: Some(tier_summary(t)),
                to: None,
            }),
            (Some(x), Some(y)) => {
                let mut field = |name: &str, from: Option<String>, to: Option<String>| {
                    if from != to {
                        out.push(Change {
                            path: format!("{path}.{name}"),
                            from,
                            to,
                        });
                    }
                };
                field("name", Some(x.name.clone()), Some(y.name.clone()));
                field("rank", Some(x.rank.to_string()), Some(y.rank.to_string()));
                field(
                    "upgrade",
                    opt_condition(&x.upgrade),
                    opt_condition(&y.upgrade),
                );
                field(
                    "retention",
                    opt_condition(&x.retention),
                    opt_condition(&y.retention),
                );
                for p in x.permissions.union(&y.permissions) {
                    let name = wire(p);
                    field(
                        "permissions",
                        x.permissions.contains(p).then(|| name.clone()),
                        y.permissions.contains(p).then(|| name.clone()),
                    );
                }
                compare_maps(
                    &flat(&format!("{path}.benefits"), &x.benefits),
                    &flat(&format!("{path}.benefits"), &y.benefits),
                    &mut out,
                );
            }
            (None, None) => {}
        }
    }
    let steps = |d: &RuleSetDoc| -> BTreeMap<String, String> {
        d.step_ups
            .iter()
            .map(|s| (format!("step_ups.{}", s.id), condition(&s.when)))
            .collect()
    };
    compare_maps(&steps(a), &steps(b), &mut out);
    compare_maps(
        &flat("downgrades", &a.downgrades),
        &flat("downgrades", &b.downgrades),
        &mut out,
    );
    compare_maps(
        &flat("commission", &a.commission),
        &flat("commission", &b.commission),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tier_domain::rules::RuleSet;

    fn rules(senior_gte: &str, extra: &str) -> RuleSetDoc {
        let json = format!(
            r#"{{"tiers": [
              {{"id": "junior", "name": "Junior", "rank": 0, "benefits": {{"discount_pct": "0"}}}},
              {{"id": "senior", "name": "Senior", "rank": 1,
                "benefits": {{"discount_pct": "10"}},
                "upgrade": {{"all": [{{"metric": "sales_amount", "window": "month", "gte": "{senior_gte}"}},
                                    {{"metric": "valid_downline_users", "gte": "5"}}]}}}}{extra}]}}"#
        );
        RuleSet::from_json(&json).unwrap().doc().clone()
    }

    #[test]
    fn conditions_read_as_one_line() {
        let d = rules("100000", "");
        assert_eq!(
            condition(d.tiers[1].upgrade.as_ref().unwrap()),
            "all(sales_amount(month) >= 100000, valid_downline_users(lifetime) >= 5)"
        );
    }

    #[test]
    fn a_diff_names_each_changed_field() {
        let gold = r#", {"id": "gold", "name": "Gold", "rank": 2, "benefits": {"discount_pct": "15"},
                         "upgrade": {"metric": "sales_amount", "window": "month", "gte": "300000"},
                         "permissions": ["see_promotions"]}"#;
        let a = rules("100000", "");
        let b = rules("60000", gold);
        let lines: Vec<String> = diff(&a, &b).iter().map(Change::line).collect();
        assert!(
            lines.contains(&"~ tiers.senior.upgrade: all(sales_amount(month) >= 100000, valid_downline_users(lifetime) >= 5) -> all(sales_amount(month) >= 60000, valid_downline_users(lifetime) >= 5)".to_owned()),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("+ tiers.gold: Gold (rank 2)")),
            "{lines:#?}"
        );
        let back: Vec<String> = diff(&b, &a).iter().map(Change::line).collect();
        assert!(
            back.iter().any(|l| l.starts_with("- tiers.gold:")),
            "{back:#?}"
        );
        assert!(diff(&a, &a).is_empty());
    }
}
