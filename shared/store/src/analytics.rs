//! The analytics aggregates: written in the transactions of the events that
//! move them, so they are exactly the sum of what those transactions
//! committed, and read by summing their shards.
//!
//! | aggregate | written by | per write |
//! |---|---|---|
//! | sales cell (month, region, tier) | the seller's ledger transaction | one update per month and cell a batch moves: usually 1 |
//! | tier moves (month) and members | every tier change's transaction | 2 updates, whatever the tiers |
//! | price disorder record (day, seller, order) | the ledger transaction that first counts the payment | 1 put, only for an order with a line below its floor |

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use futures::StreamExt;
use tier_domain::analytics::{self, Cell, DisorderRecord, MoveKind, SalesMoves, Tally};
use tier_domain::calendar::{BrandCalendar, Day, Month};
use tier_domain::ids::{DistributorId, OrderRef, TierId};
use tier_domain::money::Money;
use tier_domain::region::Region;
use tier_domain::tier::TierChange;

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::table::Table;

/// How many of a read's shard queries run at once.
const READ_CONCURRENCY: usize = 8;

/// One month of the aggregates, summed over its shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthStats {
    pub sales: BTreeMap<Cell, Tally>,
    pub moves: BTreeMap<(TierId, MoveKind), i64>,
}

impl MonthStats {
    /// Sales by region, whatever the tier.
    pub fn by_region(&self) -> BTreeMap<Option<Region>, Tally> {
        let mut out: BTreeMap<Option<Region>, Tally> = BTreeMap::new();
        for (cell, t) in &self.sales {
            out.entry(cell.region.clone()).or_default().add(*t);
        }
        out
    }

    /// Sales by the seller's tier, whatever the region.
    pub fn by_tier(&self) -> BTreeMap<Option<TierId>, Tally> {
        let mut out: BTreeMap<Option<TierId>, Tally> = BTreeMap::new();
        for (cell, t) in &self.sales {
            out.entry(cell.tier.clone()).or_default().add(*t);
        }
        out
    }

    /// Adds `other` (another month of a quarter).
    pub fn add(&mut self, other: &MonthStats) {
        for (c, t) in &other.sales {
            self.sales.entry(c.clone()).or_default().add(*t);
        }
        for (k, v) in &other.moves {
            *self.moves.entry(k.clone()).or_default() += v;
        }
    }
}

impl Table {
    /// The updates that move the sales cells by `moves`, in `shard`.
    pub(crate) fn sales_updates(&self, moves: &SalesMoves) -> Vec<TransactWriteItem> {
        moves
            .iter()
            .map(|((month, shard, cell), t)| {
                let (pk, sk) = keys::sales_cell(*month, *shard, cell);
                let mut sets = vec!["entity_type = :e", "tier = :t"];
                let mut update = Update::builder()
                    .table_name(&self.name)
                    .key(keys::PK, s(pk))
                    .key(keys::SK, s(sk))
                    .expression_attribute_values(":e", s("sales_cell"))
                    .expression_attribute_values(":t", s(TierId::name_or_none(cell.tier.as_ref())))
                    .expression_attribute_values(":s", n(t.sales))
                    .expression_attribute_values(":o", n(t.orders));
                // Not `region`: that attribute keys the distributors' region
                // index, which only profiles belong in.
                if let Some(r) = &cell.region {
                    sets.push("cell_region = :r");
                    update = update.expression_attribute_values(":r", s(r.code()));
                }
                let update = update
                    .update_expression(format!("SET {} ADD sales :s, orders :o", sets.join(", ")))
                    .build()
                    .expect("update has key and expression");
                TransactWriteItem::builder().update(update).build()
            })
            .collect()
    }

    /// The updates a tier change makes to the members and moves counters:
    /// they ride in the change's own transaction, so each change counts
    /// once. Two items whatever the tiers (each tier an attribute): the
    /// members of the distributor's shard, and its shard's moves in the
    /// brand-calendar month of the change.
    pub(crate) fn tier_move_updates(
        &self,
        id: &DistributorId,
        change: &TierChange,
        calendar: &BrandCalendar,
    ) -> Vec<TransactWriteItem> {
        let moves = analytics::tier_moves(change);
        if moves.members.is_empty() {
            return Vec::new();
        }
        let shard = analytics::shard_of(id.as_str());
        let month = calendar.month_of(change.at);
        let adds =
            |key: keys::Key, entity: &str, counters: Vec<(String, i64)>| -> TransactWriteItem {
                let mut update = Update::builder()
                    .table_name(&self.name)
                    .key(keys::PK, s(key.0))
                    .key(keys::SK, s(key.1))
                    .expression_attribute_values(":e", s(entity));
                let mut terms = Vec::new();
                // Tier ids may hold `-`, `.`, `:` and `@`: every name is a
                // placeholder.
                for (i, (name, by)) in counters.into_iter().enumerate() {
                    terms.push(format!("#c{i} :c{i}"));
                    update = update
                        .expression_attribute_names(format!("#c{i}"), name)
                        .expression_attribute_values(format!(":c{i}"), n(by));
                }
                let update = update
                    .update_expression(format!("SET entity_type = :e ADD {}", terms.join(", ")))
                    .build()
                    .expect("update has key and expression");
                TransactWriteItem::builder().update(update).build()
            };
        vec![
            adds(
                keys::tier_member_counts(shard),
                "tier_members",
                moves
                    .members
                    .iter()
                    .map(|(t, by)| (member_attr(t), *by))
                    .collect(),
            ),
            adds(
                keys::tier_moves(month, shard),
                "tier_moves",
                moves
                    .counts
                    .iter()
                    .map(|((t, k), by)| (move_attr(t, *k), *by))
                    .collect(),
            ),
        ]
    }

    /// The put of an order's price disorder record: named by day, seller
    /// and order, so a second write of it writes the same item.
    pub(crate) fn disorder_put(&self, day: Day, record: &DisorderRecord) -> TransactWriteItem {
        let key = keys::disorder(day, &record.distributor, &record.order);
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.name)
                    .set_item(Some(new_item(
                        &key,
                        "price_disorder",
                        [
                            ("record", item::json(record)),
                            ("distributor", s(record.distributor.as_str())),
                        ],
                    )))
                    .build()
                    .expect("put has item"),
            )
            .build()
    }

    /// The aggregates of each of `months`, each summed over its shards:
    /// one query per month and shard (16 a month), eventually consistent.
    pub async fn month_stats(
        &self,
        months: &[Month],
    ) -> Result<BTreeMap<Month, MonthStats>, StoreError> {
        // Owned pairs: a stream of futures borrowing from a closure's
        // argument would not be `Send` for every lifetime.
        let parts: Vec<(Month, u32)> = months
            .iter()
            .flat_map(|m| (0..analytics::SHARDS).map(move |shard| (*m, shard)))
            .collect();
        let queries = parts.into_iter().map(|(m, shard)| async move {
            let items = self
                .query_prefix(&keys::stats_partition(m, shard), "", false)
                .await?;
            Ok::<_, StoreError>((m, items))
        });
        let mut pending = futures::stream::iter(queries).buffer_unordered(READ_CONCURRENCY);
        let mut out: BTreeMap<Month, MonthStats> =
            months.iter().map(|m| (*m, MonthStats::default())).collect();
        while let Some(result) = pending.next().await {
            let (month, items) = result?;
            let stats = out.get_mut(&month).expect("every month was asked for");
            for i in &items {
                read_stats_item(i, stats)?;
            }
        }
        Ok(out)
    }

    /// Members of each tier now, summed over the shards (one
    /// BatchGetItem of 16 items).
    pub async fn tier_members_count(&self) -> Result<BTreeMap<TierId, i64>, StoreError> {
        let wanted: Vec<keys::Key> = (0..analytics::SHARDS)
            .map(keys::tier_member_counts)
            .collect();
        let items = self.batch_get(&wanted, false).await?;
        let mut out: BTreeMap<TierId, i64> = BTreeMap::new();
        for i in items.values() {
            for (name, _) in i.iter() {
                let Some(raw) = name.strip_prefix(MEMBER_PREFIX) else {
                    continue;
                };
                let tier = TierId::parse(raw)
                    .map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))?;
                *out.entry(tier).or_default() += item::get_i64(i, name)?;
            }
        }
        out.retain(|_, m| *m != 0);
        Ok(out)
    }

    /// The price disorder records of the days `from..=to`, of one seller or
    /// all: one query a day (more for a day of over 1 MB of them).
    pub async fn disorder_records(
        &self,
        from: Day,
        to: Day,
        seller: Option<&DistributorId>,
    ) -> Result<Vec<DisorderRecord>, StoreError> {
        let mut days = Vec::new();
        let mut d = from;
        while d <= to {
            days.push(d);
            d = d.plus_days(1);
        }
        let prefix = seller.map(|s| format!("{s}#")).unwrap_or_default();
        let queries = days.into_iter().map(|day| {
            let prefix = prefix.clone();
            async move {
                self.query_prefix(&keys::disorder_partition(day), &prefix, false)
                    .await
            }
        });
        let mut pending = futures::stream::iter(queries).buffer_unordered(READ_CONCURRENCY);
        let mut out = Vec::new();
        while let Some(items) = pending.next().await {
            for i in items? {
                out.push(item::get_json::<DisorderRecord>(&i, "record")?);
            }
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.order.cmp(&b.order)));
        Ok(out)
    }

    /// An order's price disorder record, if it has one.
    pub async fn disorder_record(
        &self,
        day: Day,
        seller: &DistributorId,
        order: &OrderRef,
    ) -> Result<Option<DisorderRecord>, StoreError> {
        self.get(&keys::disorder(day, seller, order), false)
            .await?
            .map(|i| item::get_json(&i, "record"))
            .transpose()
    }
}

/// A members counter's attribute: `m#{tier}`.
const MEMBER_PREFIX: &str = "m#";

fn member_attr(tier: &TierId) -> String {
    format!("{MEMBER_PREFIX}{tier}")
}

/// A move counter's attribute: `{kind}#{tier}` (`up_in#gold`).
fn move_attr(tier: &TierId, kind: MoveKind) -> String {
    format!("{}#{tier}", kind.name())
}

fn read_stats_item(i: &Item, stats: &mut MonthStats) -> Result<(), StoreError> {
    let key = item::key_of(i);
    let corrupt = |e: String| StoreError::corrupt(&key, e);
    if key.1.starts_with(keys::SALES_PREFIX) {
        let tier =
            TierId::parse_or_none(item::get_s(i, "tier")?).map_err(|e| corrupt(e.to_string()))?;
        let region = item::opt_s(i, "cell_region")
            .map(Region::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let sales = Money::from_decimal(item::get_decimal(i, "sales")?)
            .map_err(|e| corrupt(e.to_string()))?;
        let orders = item::get_i64(i, "orders")?;
        stats
            .sales
            .entry(Cell { region, tier })
            .or_default()
            .add(Tally { sales, orders });
    } else if key.1 == keys::MOVES_SK {
        for (name, _) in i.iter() {
            let Some((kind, tier)) = name
                .split_once('#')
                .and_then(|(k, t)| Some((MoveKind::parse(k)?, t)))
            else {
                continue;
            };
            let tier = TierId::parse(tier).map_err(|e| corrupt(e.to_string()))?;
            *stats.moves.entry((tier, kind)).or_default() += item::get_i64(i, name)?;
        }
    }
    Ok(())
}

/// Sales per month add up exactly; a quarter is three of them.
pub fn sum_months<'a>(months: impl IntoIterator<Item = &'a MonthStats>) -> MonthStats {
    let mut out = MonthStats::default();
    for m in months {
        out.add(m);
    }
    out
}
