//! The metrics item: counters updated with `ADD`, versioned so that a tier
//! decided from a read is written only if the metrics are still what was
//! read, and pruned of monthly buckets no window reads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::Update;
use tier_domain::calendar::Month;
use tier_domain::ids::DistributorId;
use tier_domain::metrics::{Metrics, MetricsDelta};
use tier_domain::money::Money;

use crate::error::StoreError;
use crate::item::{self, Item, n, s};
use crate::keys;
use crate::table::Table;

/// Metrics are counters named `sales#{YYYY-MM}`, `sales#life`,
/// `orders#{YYYY-MM}`, `orders#life`, so that one `ADD` updates them.
pub(crate) fn parse_metrics(item: &Item) -> Result<Metrics, StoreError> {
    let mut m = Metrics::default();
    for name in item.keys() {
        let Some((kind, period)) = name.split_once('#') else { continue };
        match (kind, period) {
            ("commission", "life") => {
                m.cumulative_commission = money(item, name)?;
                continue;
            }
            ("withdrawn", "life") => {
                m.withdrawn_commission = money(item, name)?;
                continue;
            }
            ("bought", sku) => {
                let sku = tier_domain::ids::Sku::parse(sku).map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string()))?;
                m.purchased.insert(sku, item::get_i64(item, name)?);
                continue;
            }
            ("sales" | "orders" | "dsales" | "dorders" | "dsalesA" | "dordersA", _) => {}
            _ => continue,
        }
        let month = match period {
            "life" => None,
            p => Some(Month::parse(p).map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string()))?),
        };
        match (kind, month) {
            ("dsalesA", None) => m.downline_sales_all.lifetime = money(item, name)?,
            ("dsalesA", Some(mo)) => {
                m.downline_sales_all.by_month.insert(mo, money(item, name)?);
            }
            ("dordersA", None) => m.downline_orders_all.lifetime = item::get_i64(item, name)?,
            ("dordersA", Some(mo)) => {
                m.downline_orders_all.by_month.insert(mo, item::get_i64(item, name)?);
            }
            ("dsales", None) => m.downline_sales.lifetime = money(item, name)?,
            ("dsales", Some(mo)) => {
                m.downline_sales.by_month.insert(mo, money(item, name)?);
            }
            ("dorders", None) => m.downline_orders.lifetime = item::get_i64(item, name)?,
            ("dorders", Some(mo)) => {
                m.downline_orders.by_month.insert(mo, item::get_i64(item, name)?);
            }
            ("sales", None) => m.sales.lifetime = money(item, name)?,
            ("sales", Some(mo)) => {
                m.sales.by_month.insert(mo, money(item, name)?);
            }
            ("orders", None) => m.orders.lifetime = item::get_i64(item, name)?,
            ("orders", Some(mo)) => {
                m.orders.by_month.insert(mo, item::get_i64(item, name)?);
            }
            _ => {}
        }
    }
    if item.contains_key("downline_users") {
        m.downline_users = item::get_i64(item, "downline_users")?;
    }
    if item.contains_key("valid_downline_users") {
        m.valid_downline_users = item::get_i64(item, "valid_downline_users")?;
    }
    if item.contains_key("downline_users_all") {
        m.downline_users_all = item::get_i64(item, "downline_users_all")?;
    }
    if item.contains_key("valid_downline_users_all") {
        m.valid_downline_users_all = item::get_i64(item, "valid_downline_users_all")?;
    }
    if item.contains_key("downline_distributors") {
        m.downline_distributors = item::get_i64(item, "downline_distributors")?;
    }
    if item.contains_key("downline_distributors_all") {
        m.downline_distributors_all = item::get_i64(item, "downline_distributors_all")?;
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
                matches!(kind, "sales" | "orders" | "dsales" | "dorders" | "dsalesA" | "dordersA")
                    && Month::parse(period).is_ok_and(|m| m < keep_since)
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
    let sales_total: Money = delta.sales.iter().map(|(_, a)| *a).sum();
    for (month, amount) in &delta.sales {
        push(format!("sales#{month}"), amount.amount().to_string());
    }
    if !delta.sales.is_empty() {
        push("sales#life".into(), sales_total.amount().to_string());
    }
    let dsales_total: Money = delta.downline_sales.iter().map(|(_, a)| *a).sum();
    for (month, amount) in &delta.downline_sales {
        push(format!("dsales#{month}"), amount.amount().to_string());
    }
    if !delta.downline_sales.is_empty() {
        push("dsales#life".into(), dsales_total.amount().to_string());
    }
    let dorders_total: i64 = delta.downline_orders.iter().map(|(_, c)| c).sum();
    for (month, count) in &delta.downline_orders {
        push(format!("dorders#{month}"), count.to_string());
    }
    if !delta.downline_orders.is_empty() {
        push("dorders#life".into(), dorders_total.to_string());
    }
    let all_sales: Money = delta.downline_sales_all.iter().map(|(_, a)| *a).sum();
    for (month, amount) in &delta.downline_sales_all {
        push(format!("dsalesA#{month}"), amount.amount().to_string());
    }
    if !delta.downline_sales_all.is_empty() {
        push("dsalesA#life".into(), all_sales.amount().to_string());
    }
    let all_orders: i64 = delta.downline_orders_all.iter().map(|(_, c)| c).sum();
    for (month, count) in &delta.downline_orders_all {
        push(format!("dordersA#{month}"), count.to_string());
    }
    if !delta.downline_orders_all.is_empty() {
        push("dordersA#life".into(), all_orders.to_string());
    }
    if delta.downline_users_all != 0 {
        push("downline_users_all".into(), delta.downline_users_all.to_string());
    }
    if delta.valid_downline_users_all != 0 {
        push("valid_downline_users_all".into(), delta.valid_downline_users_all.to_string());
    }
    let orders_total: i64 = delta.orders.iter().map(|(_, c)| c).sum();
    for (month, count) in &delta.orders {
        push(format!("orders#{month}"), count.to_string());
    }
    if !delta.orders.is_empty() {
        push("orders#life".into(), orders_total.to_string());
    }
    if delta.downline_users != 0 {
        push("downline_users".into(), delta.downline_users.to_string());
    }
    if delta.valid_downline_users != 0 {
        push("valid_downline_users".into(), delta.valid_downline_users.to_string());
    }
    if delta.downline_distributors != 0 {
        push("downline_distributors".into(), delta.downline_distributors.to_string());
    }
    if delta.downline_distributors_all != 0 {
        push("downline_distributors_all".into(), delta.downline_distributors_all.to_string());
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

