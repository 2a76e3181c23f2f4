//! The metrics item: counters updated with `ADD`, versioned so that a tier
//! decided from a read is written only if the metrics are still what was
//! read, and pruned of monthly buckets no window reads.
//!
//! Daily buckets, for rolling windows, live beside it in one item per month
//! (`{kind}#{DD}`), written and read only for the metrics the current rule
//! set reads over rolling windows: a brand without rolling windows pays
//! nothing for them, and the metrics item stays small whatever the window.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::Update;
use rust_decimal::Decimal;
use tier_domain::calendar::{Day, Month};
use tier_domain::ids::DistributorId;
use tier_domain::metrics::{Buckets, Metric, MetricShards, Metrics, MetricsDelta};
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
const COUNTERS: [&str; 6] = [
    "downline_users",
    "valid_downline_users",
    "downline_users_all",
    "valid_downline_users_all",
    "downline_distributors",
    "downline_distributors_all",
];

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
    [
        d.downline_users,
        d.valid_downline_users,
        d.downline_users_all,
        d.valid_downline_users_all,
        d.downline_distributors,
        d.downline_distributors_all,
    ]
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

/// Which bucket of its kind `period` names.
enum Bucket {
    Lifetime,
    Month(Month),
    /// A period no read can place (a month past 9999 that an older build
    /// wrote, say): skipped by reads, so that one bad bucket does not stop
    /// the distributor's processing, and removed by the next write.
    Unreadable,
}

fn bucket_of(item: &Item, name: &str, period: &str) -> Bucket {
    match period {
        "life" => Bucket::Lifetime,
        p => match Month::parse(p) {
            Ok(m) => Bucket::Month(m),
            Err(e) => {
                unreadable(item, name, &e.to_string());
                Bucket::Unreadable
            }
        },
    }
}

fn unreadable(item: &Item, name: &str, reason: &str) {
    let (pk, sk) = item::key_of(item);
    tracing::warn!(
        pk,
        sk,
        attribute = name,
        reason,
        "skipping an unreadable metrics bucket; the next write removes it"
    );
}

/// Whether a bucket's name is one no read can place.
fn is_unreadable(name: &str) -> bool {
    let Some((kind, period)) = name.split_once('#') else {
        return false;
    };
    match kind {
        "frozen" => Day::parse(period).is_err(),
        "bought" => tier_domain::ids::Sku::parse(period).is_err(),
        _ if MONEY_BUCKETS.contains(&kind) || COUNT_BUCKETS.contains(&kind) => {
            period != "life" && Month::parse(period).is_err()
        }
        _ => false,
    }
}

/// Refuses a delta that would write a bucket no read can place: every day
/// it moves must print as a day, and its month as a month, that parse back.
pub(crate) fn check_writable(id: &DistributorId, delta: &MetricsDelta) -> Result<(), StoreError> {
    let days = bucket_moves(delta)
        .into_iter()
        .flat_map(|(_, moves)| moves.into_iter().map(|(d, _)| d))
        .chain(delta.frozen_commission.iter().map(|(d, _)| *d));
    for day in days {
        if Day::parse(&day.to_string()).is_err() || Month::parse(&day.month().to_string()).is_err()
        {
            return Err(StoreError::unwritable(
                &keys::metrics(id),
                format!("day {day} is outside the calendar's years 1970 to 9999"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn parse_metrics(item: &Item) -> Result<Metrics, StoreError> {
    let mut m = Metrics::default();
    for name in item.keys() {
        let Some((kind, period)) = name.split_once('#') else {
            continue;
        };
        match (kind, period) {
            ("commission", "life") => m.cumulative_commission = money(item, name)?,
            ("withdrawn", "life") => m.withdrawn_commission = money(item, name)?,
            ("frozen", day) => match Day::parse(day) {
                Ok(day) => {
                    m.frozen_commission.insert(day, money(item, name)?);
                }
                Err(e) => unreadable(item, name, &e.to_string()),
            },
            ("bought", sku) => match tier_domain::ids::Sku::parse(sku) {
                Ok(sku) => {
                    m.purchased.insert(sku, item::get_i64(item, name)?);
                }
                Err(e) => unreadable(item, name, &e.to_string()),
            },
            _ => {
                if let Some(b) = money_buckets(&mut m, kind) {
                    let value = money(item, name)?;
                    match bucket_of(item, name, period) {
                        Bucket::Lifetime => b.lifetime = value,
                        Bucket::Month(mo) => {
                            b.by_month.insert(mo, value);
                        }
                        Bucket::Unreadable => {}
                    }
                } else if let Some(b) = count_buckets(&mut m, kind) {
                    let value = item::get_i64(item, name)?;
                    match bucket_of(item, name, period) {
                        Bucket::Lifetime => b.lifetime = value,
                        Bucket::Month(mo) => {
                            b.by_month.insert(mo, value);
                        }
                        Bucket::Unreadable => {}
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
    Money::from_decimal(item::get_decimal(item, name)?)
        .map_err(|e| StoreError::corrupt(&item::key_of(item), e.to_string()))
}

/// The `ADD` update that applies `delta` to the metrics item.
/// `expected` guards the metrics item's version (`mversion`): the tier
/// decided from the metrics read is written only if nobody changed them
/// meanwhile. `Some(0)` means the item had no version yet.
pub(crate) fn metrics_update(
    table: &Table,
    id: &DistributorId,
    delta: &MetricsDelta,
    expected: Option<u64>,
) -> Update {
    metrics_update_pruning(table, id, delta, expected, &[], &[])
}

/// Monthly buckets kept besides the current month, by what reads them:
/// calendar windows reach back 2 (the quarter so far); own sales also feed
/// growth, which reaches back 5 (quarter growth in a quarter's last month
/// compares with the previous quarter's first month).
const KEEP_MONTHS: usize = 2;
const KEEP_MONTHS_SALES: usize = 5;

fn months_back(today: Day, n: usize) -> Month {
    (0..n).fold(today.month(), |m: Month, _| m.previous())
}

/// The oldest month whose buckets other than own sales are kept as of
/// `today`: older ones no window reads, and the next write removes them.
pub(crate) fn oldest_kept(today: Day) -> Month {
    months_back(today, KEEP_MONTHS)
}

/// Buckets of a metrics item nothing reads any more, as of `today`:
/// monthly buckets older than their windows reach, frozen commission that
/// has settled, and buckets no read can place. The item's size is what
/// every write of it costs.
pub(crate) fn stale_buckets(item: &Item, today: Day) -> Vec<String> {
    let (keep, keep_sales) = (oldest_kept(today), months_back(today, KEEP_MONTHS_SALES));
    item.keys()
        .filter(|name| {
            is_unreadable(name)
                || name
                    .split_once('#')
                    .is_some_and(|(kind, period)| match kind {
                        "frozen" => Day::parse(period).is_ok_and(|d| d <= today),
                        "sales" => Month::parse(period).is_ok_and(|m| m < keep_sales),
                        _ => {
                            (MONEY_BUCKETS.contains(&kind) || COUNT_BUCKETS.contains(&kind))
                                && Month::parse(period).is_ok_and(|m| m < keep)
                        }
                    })
        })
        .cloned()
        .collect()
}

/// An update's `ADD` clause as it is built: each attribute and value by a
/// placeholder of its own.
#[derive(Default)]
struct Adds {
    names: HashMap<String, String>,
    values: HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    adds: Vec<String>,
}

impl Adds {
    fn push(&mut self, attr: String, value: String) {
        let i = self.adds.len();
        self.names.insert(format!("#a{i}"), attr);
        self.values.insert(format!(":v{i}"), n(value));
        self.adds.push(format!("#a{i} :v{i}"));
    }

    /// ` ADD …`, or nothing when nothing is added.
    fn clause(&self) -> String {
        if self.adds.is_empty() {
            String::new()
        } else {
            format!(" ADD {}", self.adds.join(", "))
        }
    }
}

/// Bumps the metrics item's version unconditionally: a tier decided from
/// an earlier read is then not written over the change.
const BUMP_VERSION: &str = "mversion = if_not_exists(mversion, :zero) + :one";

/// As [`metrics_update`], also removing the attributes in `remove` and
/// setting those in `set` (the ranks the sorted lists read).
pub(crate) fn metrics_update_pruning(
    table: &Table,
    id: &DistributorId,
    delta: &MetricsDelta,
    expected: Option<u64>,
    remove: &[String],
    set: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Update {
    metrics_update_at(table, keys::metrics(id), delta, expected, remove, set)
}

/// The `ADD` update of `delta` to one shard of a spread distributor's
/// counters: unconditional, as a receiver's is, since the ledger entry's
/// version in the same transaction is what makes it count once; the shard's
/// own version moves, so a tier decided from a read is written over it
/// only as [`crate::shards`] says.
pub(crate) fn shard_update(
    table: &Table,
    id: &DistributorId,
    shard: u8,
    delta: &MetricsDelta,
) -> Update {
    metrics_update_at(table, keys::metrics_shard(id, shard), delta, None, &[], &[])
}

fn metrics_update_at(
    table: &Table,
    (pk, sk): keys::Key,
    delta: &MetricsDelta,
    expected: Option<u64>,
    remove: &[String],
    set: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Update {
    let mut a = Adds::default();
    let mut push = |attr: String, value: String| a.push(attr, value);
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
    for (kind, moves) in bucket_moves(delta) {
        push_buckets(kind, by_month(moves.into_iter()));
    }
    for (name, change) in COUNTERS
        .into_iter()
        .zip(delta_counters(delta))
        .filter(|(_, c)| *c != 0)
    {
        push(name.into(), change.to_string());
    }
    if !delta.cumulative_commission.is_zero() {
        push(
            "commission#life".into(),
            delta.cumulative_commission.amount().to_string(),
        );
    }
    for (sku, q) in &delta.purchased {
        push(format!("bought#{sku}"), q.to_string());
    }
    if !delta.withdrawn_commission.is_zero() {
        push(
            "withdrawn#life".into(),
            delta.withdrawn_commission.amount().to_string(),
        );
    }
    for (day, amount) in delta.frozen_commission.iter().filter(|(_, a)| !a.is_zero()) {
        push(format!("frozen#{day}"), amount.amount().to_string());
    }
    let adds = a.clause();
    let Adds {
        mut names,
        mut values,
        ..
    } = a;
    names.insert("#e".into(), keys::ENTITY.into());
    values.insert(":e".into(), s("metrics"));
    let mut sets = vec!["#e = :e".to_owned()];
    for (i, (attr, value)) in set.iter().enumerate() {
        names.insert(format!("#s{i}"), (*attr).to_owned());
        values.insert(format!(":s{i}"), value.clone());
        sets.push(format!("#s{i} = :s{i}"));
    }
    let mut update = Update::builder()
        .table_name(&table.name)
        .key(keys::PK, s(pk))
        .key(keys::SK, s(sk));
    // Every change bumps the version, so a tier decided from a read of the
    // metrics is written only if they are still what was read.
    match expected {
        Some(v) => {
            sets.push("mversion = :mnext".into());
            values.insert(":mnext".into(), n(v + 1));
            if v == 0 {
                update = update.condition_expression("attribute_not_exists(mversion)");
            } else {
                values.insert(":mv".into(), n(v));
                update = update.condition_expression("mversion = :mv");
            }
        }
        None => {
            sets.push(BUMP_VERSION.into());
            values.insert(":zero".into(), n(0));
            values.insert(":one".into(), n(1));
        }
    }
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
    let removes = if removes.is_empty() {
        String::new()
    } else {
        format!(" REMOVE {}", removes.join(", "))
    };
    update
        .update_expression(format!("SET {}{adds}{removes}", sets.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .expect("update has key and expression")
}

/// The `ADD` update that applies a pulled network difference to an
/// upline's metrics item (see [`tier_domain::network`]): its all-level
/// buckets by month and in all, its all-level counters, and the version,
/// so a tier decided from an earlier read is not written over it.
pub(crate) fn network_update(
    table: &Table,
    id: &DistributorId,
    moved: &tier_domain::network::NetworkTotals,
) -> Update {
    let mut a = Adds::default();
    let mut push = |attr: String, value: String| a.push(attr, value);
    let sales = &moved.sales;
    for (month, v) in sales.by_month.iter().filter(|(_, v)| !v.is_zero()) {
        push(format!("dsalesA#{month}"), v.amount().to_string());
    }
    if !sales.lifetime.is_zero() {
        push("dsalesA#life".into(), sales.lifetime.amount().to_string());
    }
    let orders = &moved.orders;
    for (month, v) in orders.by_month.iter().filter(|(_, v)| **v != 0) {
        push(format!("dordersA#{month}"), v.to_string());
    }
    if orders.lifetime != 0 {
        push("dordersA#life".into(), orders.lifetime.to_string());
    }
    for (name, change) in [
        ("downline_users_all", moved.users),
        ("valid_downline_users_all", moved.valid_users),
        ("downline_distributors_all", moved.distributors),
    ] {
        if change != 0 {
            push(name.into(), change.to_string());
        }
    }
    let adds = a.clause();
    let Adds {
        mut names,
        mut values,
        ..
    } = a;
    names.insert("#e".into(), keys::ENTITY.into());
    values.extend([
        (":e".to_owned(), s("metrics")),
        (":zero".to_owned(), n(0)),
        (":one".to_owned(), n(1)),
    ]);
    let (pk, sk) = keys::metrics(id);
    Update::builder()
        .table_name(&table.name)
        .key(keys::PK, s(pk))
        .key(keys::SK, s(sk))
        .update_expression(format!("SET #e = :e, {BUMP_VERSION}{adds}"))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .expect("update has key and expression")
}

/// The day-by-day moves of each bucket kind in `delta`, in the order of
/// [`MONEY_BUCKETS`] then [`COUNT_BUCKETS`].
fn bucket_moves(delta: &MetricsDelta) -> [(&'static str, Vec<(Day, Decimal)>); 6] {
    let money = |v: &[(Day, Money)]| v.iter().map(|(d, a)| (*d, a.amount())).collect::<Vec<_>>();
    let count = |v: &[(Day, i64)]| {
        v.iter()
            .map(|(d, c)| (*d, Decimal::from(*c)))
            .collect::<Vec<_>>()
    };
    let [s, ds, dsa] = MONEY_BUCKETS;
    let [o, dor, dora] = COUNT_BUCKETS;
    [
        (s, money(&delta.sales)),
        (ds, money(&delta.downline_sales)),
        (dsa, money(&delta.downline_sales_all)),
        (o, count(&delta.orders)),
        (dor, count(&delta.downline_orders)),
        (dora, count(&delta.downline_orders_all)),
    ]
}

/// Daily moves summed by month: an update expression may name an attribute
/// once.
fn by_month(moves: impl Iterator<Item = (Day, Decimal)>) -> Vec<(Month, Decimal)> {
    let mut out: BTreeMap<Month, Decimal> = BTreeMap::new();
    for (day, v) in moves {
        *out.entry(day.month()).or_default() += v;
    }
    out.into_iter().collect()
}

/// Daily items are kept two years: longer than any rolling window, or
/// growth comparison, can read back.
const DAILY_TTL_DAYS: i64 = 2 * tier_domain::metrics::MAX_ROLLING_DAYS as i64 + 62;

/// The bucket kind a metric is kept under, day by day.
fn daily_kind(metric: Metric) -> Option<&'static str> {
    Some(match metric {
        Metric::SalesAmount | Metric::SalesGrowthPct => "sales",
        Metric::OrderCount => "orders",
        Metric::DownlineSalesAmount => "dsales",
        Metric::DownlineOrderCount => "dorders",
        Metric::DownlineSalesAmountAll => "dsalesA",
        Metric::DownlineOrderCountAll => "dordersA",
        _ => return None,
    })
}

/// The daily bucket kinds the metrics in `spans` are kept under.
pub(crate) fn daily_kinds(spans: &BTreeMap<Metric, u32>) -> BTreeSet<String> {
    spans
        .keys()
        .filter_map(|m| daily_kind(*m))
        .map(str::to_owned)
        .collect()
}

/// The `ADD` updates that record the sales and order moves of `delta` day
/// by day, one per month touched (callers pass only the kinds kept by day,
/// see [`tier_domain::metrics::only_kinds`]). Unconditional: they ride in
/// the transaction whose ledger version guard makes the whole write happen
/// once.
pub(crate) fn daily_updates(
    table: &Table,
    id: &DistributorId,
    delta: &MetricsDelta,
) -> Vec<Update> {
    daily_updates_in(table, id, None, delta)
}

/// As [`daily_updates`], into one shard's daily items for a spread
/// distributor (`Some(shard)`).
pub(crate) fn daily_updates_in(
    table: &Table,
    id: &DistributorId,
    shard: Option<u8>,
    delta: &MetricsDelta,
) -> Vec<Update> {
    let mut by_month: BTreeMap<Month, BTreeMap<String, Decimal>> = BTreeMap::new();
    for (kind, moves) in bucket_moves(delta) {
        for (day, v) in moves.into_iter().filter(|(_, v)| !v.is_zero()) {
            *by_month
                .entry(day.month())
                .or_default()
                .entry(format!("{kind}#{:02}", day.day_of_month()))
                .or_default() += v;
        }
    }
    by_month
        .into_iter()
        .filter(|(_, adds)| adds.values().any(|v| !v.is_zero()))
        .map(|(month, adds)| {
            let (pk, sk) = match shard {
                Some(b) => keys::daily_shard(id, b, month),
                None => keys::daily(id, month),
            };
            let mut names = HashMap::from([
                ("#e".to_owned(), keys::ENTITY.to_owned()),
                ("#t".to_owned(), keys::TTL.to_owned()),
            ]);
            let first = month.day(1).expect("every month has a first day");
            let mut values = HashMap::from([
                (":e".to_owned(), s("daily_metrics")),
                (
                    ":t".to_owned(),
                    n(first.midnight_utc_timestamp() + DAILY_TTL_DAYS * 86_400),
                ),
            ]);
            let mut parts = Vec::new();
            for (i, (attr, v)) in adds.into_iter().enumerate() {
                names.insert(format!("#a{i}"), attr);
                values.insert(format!(":v{i}"), n(v));
                parts.push(format!("#a{i} :v{i}"));
            }
            Update::builder()
                .table_name(&table.name)
                .key(keys::PK, s(pk))
                .key(keys::SK, s(sk))
                .update_expression(format!("SET #e = :e, #t = :t ADD {}", parts.join(", ")))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .expect("update has key and expression")
        })
        .collect()
}

/// The daily items the rolling windows in `spans` read as of `today`: the
/// distributor's own and, spread, each shard's.
pub(crate) fn daily_keys(
    id: &DistributorId,
    shards: MetricShards,
    today: Day,
    spans: &BTreeMap<Metric, u32>,
) -> Vec<keys::Key> {
    let Some(longest) = spans.values().max().filter(|d| **d > 0) else {
        return Vec::new();
    };
    let first = today.minus_days(longest - 1).month();
    let months = today.month().since(first);
    let mut out: Vec<keys::Key> = months.iter().map(|m| keys::daily(id, *m)).collect();
    for b in 0..shards.cells {
        out.extend(months.iter().map(|m| keys::daily_shard(id, b, *m)));
    }
    out
}

/// Adds a daily item's buckets to `metrics` (the monthly and lifetime
/// totals already hold them); a spread distributor's shards add to the
/// same days.
pub(crate) fn merge_daily(metrics: &mut Metrics, item: &Item) -> Result<(), StoreError> {
    let key = item::key_of(item);
    let corrupt = |why: String| StoreError::corrupt(&key, why);
    let month = match key
        .1
        .strip_prefix("DAILY#")
        .map(Month::parse)
        .ok_or_else(|| corrupt("not a daily item".into()))?
    {
        Ok(month) => month,
        // As with a metrics item's buckets: skipped, not fatal.
        Err(e) => {
            tracing::warn!(pk = key.0, sk = key.1, reason = %e, "skipping an unreadable daily item");
            return Ok(());
        }
    };
    for name in item.keys() {
        let Some((kind, dd)) = name.split_once('#') else {
            continue;
        };
        let Some(day) = dd.parse::<u8>().ok().and_then(|d| month.day(d)) else {
            continue;
        };
        if let Some(b) = money_buckets(metrics, kind) {
            let slot = b.by_day.entry(day).or_default();
            *slot = *slot + money(item, name)?;
        } else if let Some(b) = count_buckets(metrics, kind) {
            *b.by_day.entry(day).or_default() += item::get_i64(item, name)?;
        }
    }
    Ok(())
}

impl Table {
    /// Loads the daily buckets the rolling windows in `spans` read into each
    /// of `rows`' metrics, in one batch.
    pub(crate) async fn load_daily(
        &self,
        rows: &mut [(&DistributorId, MetricShards, &mut Metrics)],
        today: Day,
        spans: &BTreeMap<Metric, u32>,
        consistent: bool,
    ) -> Result<(), StoreError> {
        let wanted: Vec<keys::Key> = rows
            .iter()
            .flat_map(|(id, shards, _)| daily_keys(id, *shards, today, spans))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let items = self.batch_get(&wanted, consistent).await?;
        for (id, shards, metrics) in rows.iter_mut() {
            for key in daily_keys(id, *shards, today, spans) {
                if let Some(item) = items.get(&key) {
                    merge_daily(metrics, item)?;
                }
            }
        }
        Ok(())
    }
}
