//! The metrics item: counters updated with `ADD`, versioned so that a tier
//! decided from a read is written only if the metrics are still what was
//! read, and pruned of monthly buckets no window reads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::Update;
use tier_domain::calendar::Month;
use tier_domain::ids::DistributorId;
use rust_decimal::Decimal;
use tier_domain::metrics::{Buckets, Metrics, MetricsDelta};
use tier_domain::money::Money;

use crate::error::StoreError;
use crate::item::{self, Item, n, s};
use crate::keys;
use crate::table::Table;

/// Monthly buckets and their lifetime total: `{kind}#{YYYY-MM}` and
/// `{kind}#life`, money kinds first. One `ADD` updates them all.
const MONEY_BUCKETS: [&str; 3] = ["sales", "dsales", "dsalesA"];
const COUNT_BUCKETS: [&str; 3] = ["orders", "dorders", "dordersA"];

/// Plain counters, named as the attribute, in the order of [`counters`]
/// and [`delta_counters`].
const COUNTERS: [&str; 6] =
    ["downline_users", "valid_downline_users", "downline_users_all", "valid_downline_users_all", "downline_distributors", "downline_distributors_all"];

fn counters(m: &mut Metrics) -> [&mut i64; 6] {
    [
        &mut m.downline_users,
        &mut m.valid_downline_users,
        &mut m.downline_users_all,
        &mut m.valid_downline_users_all,
        &mut m.downline_distributors,
        &mut m.downline_distributors_all,
    ]
}

fn delta_counters(d: &MetricsDelta) -> [i64; 6] {
    [d.downline_users, d.valid_downline_users, d.downline_users_all, d.valid_downline_users_all, d.downline_distributors, d.downline_distributors_all]
}

fn money_buckets<'a>(m: &'a mut Metrics, kind: &str) -> Option<&'a mut Buckets<Money>> {
    match kind {
        "sales" => Some(&mut m.sales),
        "dsales" => Some(&mut m.downline_sales),
        "dsalesA" => Some(&mut m.downline_sales_all),
        _ => None,
    }
}

fn count_buckets<'a>(m: &'a mut Metrics, kind: &str) -> Option<&'a mut Buckets<i64>> {
    match kind {
        "orders" => Some(&mut m.orders),
        "dorders" => Some(&mut m.downline_orders),
        "dordersA" => Some(&mut m.downline_orders_all),
        _ => None,
    }
}

/// `None` for the lifetime bucket.
fn bucket_month(item: &Item, period: &str) -> Result<Option<Month>, StoreError> {
    match period {
        "life" => Ok(None),
        p => Month::parse(p).map(Some).map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string())),
    }
}

pub(crate) fn parse_metrics(item: &Item) -> Result<Metrics, StoreError> {
    let mut m = Metrics::default();
    for name in item.keys() {
        let Some((kind, period)) = name.split_once('#') else { continue };
        match (kind, period) {
            ("commission", "life") => m.cumulative_commission = money(item, name)?,
            ("withdrawn", "life") => m.withdrawn_commission = money(item, name)?,
            ("bought", sku) => {
                let sku = tier_domain::ids::Sku::parse(sku).map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string()))?;
                m.purchased.insert(sku, item::get_i64(item, name)?);
            }
            _ => {
                if let Some(b) = money_buckets(&mut m, kind) {
                    let value = money(item, name)?;
                    match bucket_month(item, period)? {
                        None => b.lifetime = value,
                        Some(mo) => {
                            b.by_month.insert(mo, value);
                        }
                    }
                } else if let Some(b) = count_buckets(&mut m, kind) {
                    let value = item::get_i64(item, name)?;
                    match bucket_month(item, period)? {
                        None => b.lifetime = value,
                        Some(mo) => {
                            b.by_month.insert(mo, value);
                        }
                    }
                }
            }
        }
    }
    for (name, slot) in COUNTERS.into_iter().zip(counters(&mut m)) {
        if item.contains_key(name) {
            *slot = item::get_i64(item, name)?;
        }
    }
    Ok(m)
}

fn money(item: &Item, name: &str) -> Result<Money, StoreError> {
    Money::from_decimal(item::get_decimal(item, name)?).map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string()))
}

/// The `ADD` update that applies `delta` to the metrics item.
/// `expected` guards the metrics item's version (`mversion`): the tier
/// decided from the metrics read is written only if nobody changed them
/// meanwhile. `Some(0)` means the item had no version yet.
pub(crate) fn metrics_update(table: &Table, id: &DistributorId, delta: &MetricsDelta, expected: Option<u64>) -> Update {
    metrics_update_pruning(table, id, delta, expected, &[])
}

/// Monthly buckets of a metrics item older than `keep_since`: no window
/// reads them any more, and the item's size is what every write of it costs.
pub(crate) fn stale_buckets(item: &Item, keep_since: Month) -> Vec<String> {
    item.keys()
        .filter(|name| {
            name.split_once('#').is_some_and(|(kind, period)| {
                (MONEY_BUCKETS.contains(&kind) || COUNT_BUCKETS.contains(&kind)) && Month::parse(period).is_ok_and(|m| m < keep_since)
            })
        })
        .cloned()
        .collect()
}

/// As [`metrics_update`], also removing the attributes in `remove`.
pub(crate) fn metrics_update_pruning(table: &Table, id: &DistributorId, delta: &MetricsDelta, expected: Option<u64>, remove: &[String]) -> Update {
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut adds = Vec::new();
    let mut push = |attr: String, value: String| {
        let i = adds.len();
        names.insert(format!("#a{i}"), attr);
        values.insert(format!(":v{i}"), n(value));
        adds.push(format!("#a{i} :v{i}"));
    };
    // Each monthly bucket moved, and the lifetime total by their sum.
    let mut push_buckets = |kind: &str, moves: Vec<(Month, Decimal)>| {
        if moves.is_empty() {
            return;
        }
        let total: Decimal = moves.iter().map(|(_, v)| v).sum();
        for (month, v) in moves {
            push(format!("{kind}#{month}"), v.to_string());
        }
        push(format!("{kind}#life"), total.to_string());
    };
    let money = |v: &[(Month, Money)]| v.iter().map(|(m, a)| (*m, a.amount())).collect::<Vec<_>>();
    let count = |v: &[(Month, i64)]| v.iter().map(|(m, c)| (*m, Decimal::from(*c))).collect::<Vec<_>>();
    for (kind, moves) in MONEY_BUCKETS.into_iter().zip([money(&delta.sales), money(&delta.downline_sales), money(&delta.downline_sales_all)]) {
        push_buckets(kind, moves);
    }
    for (kind, moves) in COUNT_BUCKETS.into_iter().zip([count(&delta.orders), count(&delta.downline_orders), count(&delta.downline_orders_all)]) {
        push_buckets(kind, moves);
    }
    for (name, change) in COUNTERS.into_iter().zip(delta_counters(delta)).filter(|(_, c)| *c != 0) {
        push(name.into(), change.to_string());
    }
    if !delta.cumulative_commission.is_zero() {
        push("commission#life".into(), delta.cumulative_commission.amount().to_string());
    }
    for (sku, q) in &delta.purchased {
        push(format!("bought#{sku}"), q.to_string());
    }
    if !delta.withdrawn_commission.is_zero() {
        push("withdrawn#life".into(), delta.withdrawn_commission.amount().to_string());
    }
    names.insert("#e".into(), keys::ENTITY.into());
    values.insert(":e".into(), s("metrics"));
    let (pk, sk) = keys::metrics(id);
    let mut sets = vec!["#e = :e"];
    let mut update = Update::builder().table_name(&table.name).key(keys::PK, s(pk)).key(keys::SK, s(sk));
    // Every change bumps the version, so a tier decided from a read of the
    // metrics is written only if they are still what was read.
    match expected {
        Some(v) => {
            sets.push("mversion = :mnext");
            values.insert(":mnext".into(), n(v + 1));
            if v == 0 {
                update = update.condition_expression("attribute_not_exists(mversion)");
            } else {
                values.insert(":mv".into(), n(v));
                update = update.condition_expression("mversion = :mv");
            }
        }
        None => {
            sets.push("mversion = if_not_exists(mversion, :zero) + :one");
            values.insert(":zero".into(), n(0));
            values.insert(":one".into(), n(1));
        }
    }
    let adds = if adds.is_empty() { String::new() } else { format!(" ADD {}", adds.join(", ")) };
    // An ADD and a REMOVE of the same attribute in one expression is refused
    // (a refund of an order from a pruned month): the ADD wins, the bucket
    // goes with a later write.
    let added: std::collections::HashSet<&String> = names.values().collect();
    let remove: Vec<&String> = remove.iter().filter(|a| !added.contains(a)).collect();
    let mut removes = Vec::new();
    for (i, attr) in remove.iter().enumerate() {
        names.insert(format!("#r{i}"), (*attr).clone());
        removes.push(format!("#r{i}"));
    }
    let removes = if removes.is_empty() { String::new() } else { format!(" REMOVE {}", removes.join(", ")) };
    update
        .update_expression(format!("SET {}{adds}{removes}", sets.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .expect("update has key and expression")
}

