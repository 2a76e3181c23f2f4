//! Single-table layout. Every item has `PK`, `SK` and `entity_type`; each
//! key builder names the access patterns it serves.
//!
//! | item | PK | SK | access patterns |
//! |---|---|---|---|
//! | distributor | `DIST#{id}` | `PROFILE` | get by id; GSI1 `TIER#{tier}` / `DIST#{id}` lists a tier's members; `ByRegion` (`region` / `PK`) and `ByUpline` (`upline` / `PK`) list a region's and an upline's, only profiles carrying those attributes; `ByTierChange` (`rc_key` `CHANGED#{shard:02}` / `rc_rank`) ranks by the latest tier change (see [`crate::ranking`]) |
//! | metrics | `DIST#{id}` | `METRICS` | get with the profile (one BatchGetItem); `ByMonthSales` (`rm_key` `SALES#{YYYY-MM}#{shard:02}` / `rm_rank`) and `ByQuarterSales` (`rq_key` `SALES#{YYYY}-Q{n}#{shard:02}` / `rq_rank`) rank by own sales (see [`crate::ranking`]) |
//! | daily metrics | `DIST#{id}` | `DAILY#{YYYY-MM}` | a month of daily buckets, kept only for the metrics rules read over rolling windows; batch get with the metrics; TTL |
//! | tier history | `DIST#{id}` | `HIST#{version:010}` | query a distributor's history in order |
//! | order ledger | `DIST#{id}` | `ORDER#{platform}#{store}#{order}` | get by order |
//! | downline user | `DIST#{id}` | `BUYER#{buyer}` | get by buyer |
//! | network edge | `DIST#{upline}` | `NET#{downline}` | what the upline last pulled from a direct downline's network (see [`tier_domain::network`]); batch get with the downline's metrics; written only by the upline's pulls |
//! | commission | `DIST#{receiver}` | `COMM#{platform}#{store}#{order}` | a receiver's page of entries (projections of the terms the order's ledger entry keeps) |
//! | withdrawal | `DIST#{id}` | `WITHDRAWAL#{request id}` | one per request: a retried request pays once |
//! | store | `STORE#{platform}#{store}` | `STORE` | resolve a webhook's store to its distributor |
//! | price book version | `PRICEBOOK` | `CURRENT` / `V#{version:06}` | the current version; a version's metadata (claimed before its items are written) |
//! | price book entry | `BOOK#{version:06}` | `SKU#{sku}` | batch get a version's SKUs: one consistent version per lookup |
//! | price book promotion | `BOOK#{version:06}` | `PROMO#{index:06}#{part:04}` | query a version's promotions (for operators), in order; a promotion's SKUs split over parts of at most 4,000 |
//! | API key | `APIKEY#{id}` | `APIKEY` | get by the id in the presented key; GSI1 `APIKEYS` / `{created}#{id}` lists them |
//! | stock | `SKU#{sku}` | `STOCK` | get, conditional decrement |
//! | SKU demand | `SKU#{sku}` | `DEMAND#{YYYY-MM-DD}` | units each tier's payments asked for that day (`d:<tier>`), added with the payment's stock; read with the plan and the stock in one Query of the partition; TTL |
//! | reserve plan | `SKU#{sku}` | `PLAN` | the SKU's last reserve plan and the inputs that gave it |
//! | order stock | `ORDER#{platform}#{store}#{order}` | `STOCK` | one per order: its lines' reservations, releases applied, a cancellation or returns that came before the payment |
//! | webhook receipt | `WEBHOOK#{platform}#{store}#{event}` | `WEBHOOK` | de-duplicate retried webhooks; TTL |
//! | rule set | `RULESET` | `CURRENT` / `V#{version:06}` | current version; every version kept |
//! | review run | `REVIEW#{YYYY-MM}` or `REVIEW#{YYYY-MM-DD}` | `RUN` | one per period (a month; a day for rules with rolling windows): its instant and progress counters |
//! | what-if run | `WHATIF#{id}` | `RUN`, `COUNTS`, `LIST#{instant}#{tier}#{cursor hash}`, `PAGE#{instant}#{listing}#{n}`, `TALLY#{instant}#{shard:02}` | the draft, its instant and partitions; one item per listing message (its pages, its continuation; recorded once, its pages added to `COUNTS`) and a marker per page, named by what they cover so a redelivery meets the first; each page's tally summed into one of 16 shards with its marker; batch get the counters and shards for the results; TTL a week |
//! | sales cell | `STATS#{YYYY-MM}#{shard:02}` | `SALES#{region}#{tier}` | a month's sales and live orders by buyer's region and seller's tier, one shard of 16 (by order, so a busy seller's orders spread); query the 16 partitions of a month |
//! | tier moves | `STATS#{YYYY-MM}#{shard:02}` | `MOVES` | a month's moves into and out of every tier (`up_in#gold`), one shard (by distributor); read with the sales cells |
//! | tier members | `STATS#MEMBERS#{shard:02}` | `MEMBERS` | members of every tier now (`m#gold`), one shard (by distributor); batch get the 16 |
//! | price disorder | `DISORDER#{YYYY-MM-DD}` | `{seller}#{platform}#{store}#{order}` | one per order resold below a floor: its violating lines; query a day, or a seller's by prefix |
//! | alert | `ALERT#{finding}` | `ALERT` | one per finding the alerts job claimed: `claimed` or `sent`, so it is published once |
//! | backfill run | `BACKFILL#{version:06}` | `RUN` | one per rule set version whose backfill started: its progress counters |

use tier_domain::ids::{BuyerId, DistributorId, EventId, OrderRef, Platform, Sku, StoreId, TierId};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// Distributor profiles by their `region` (as registered), then `PK`;
/// projects `id` and `tier`.
pub const REGION_INDEX: &str = "ByRegion";
/// Distributor profiles by their `upline`, then `PK`; projects `id` and `tier`.
pub const UPLINE_INDEX: &str = "ByUpline";
pub const ENTITY: &str = "entity_type";
pub const TTL: &str = "expires_at";

pub type Key = (String, String);

pub fn distributor(id: &DistributorId) -> Key {
    (format!("DIST#{id}"), "PROFILE".into())
}

pub fn metrics(id: &DistributorId) -> Key {
    (format!("DIST#{id}"), "METRICS".into())
}

/// One shard of a spread distributor's counters
/// ([`tier_domain::metrics::MetricShards`]): a partition of its own, since
/// DynamoDB's write limit holds per partition as well as per item.
pub fn metrics_shard(id: &DistributorId, shard: u8) -> Key {
    (format!("DIST#{id}#M{shard:02}"), "METRICS".into())
}

/// A shard's daily item: a spread distributor's days, as its shard's
/// counters (see [`metrics_shard`]).
pub fn daily_shard(id: &DistributorId, shard: u8, month: tier_domain::calendar::Month) -> Key {
    (metrics_shard(id, shard).0, format!("DAILY#{month}"))
}

pub fn daily(id: &DistributorId, month: tier_domain::calendar::Month) -> Key {
    (format!("DIST#{id}"), format!("DAILY#{month}"))
}

pub fn history(id: &DistributorId, version: u64) -> Key {
    (format!("DIST#{id}"), format!("HIST#{version:010}"))
}

pub const HISTORY_PREFIX: &str = "HIST#";

pub fn order_ledger(id: &DistributorId, order: &OrderRef) -> Key {
    (
        format!("DIST#{id}"),
        format!(
            "ORDER#{}#{}#{}",
            order.platform, order.store, order.order_id
        ),
    )
}

pub const ORDER_LEDGER_PREFIX: &str = "ORDER#";

pub fn commission(receiver: &DistributorId, order: &OrderRef) -> Key {
    (
        format!("DIST#{receiver}"),
        format!("COMM#{}#{}#{}", order.platform, order.store, order.order_id),
    )
}

pub const COMMISSION_PREFIX: &str = "COMM#";

pub fn withdrawal(id: &DistributorId, request: &str) -> Key {
    (format!("DIST#{id}"), format!("WITHDRAWAL#{request}"))
}

pub fn network_edge(upline: &DistributorId, downline: &DistributorId) -> Key {
    (format!("DIST#{upline}"), format!("NET#{downline}"))
}

pub fn buyer(id: &DistributorId, buyer: &BuyerId) -> Key {
    (format!("DIST#{id}"), format!("BUYER#{buyer}"))
}

pub fn store(platform: &Platform, store: &StoreId) -> Key {
    (format!("STORE#{platform}#{store}"), "STORE".into())
}

pub fn book_pointer() -> Key {
    ("PRICEBOOK".into(), "CURRENT".into())
}

pub fn book_version(version: u64) -> Key {
    ("PRICEBOOK".into(), format!("V#{version:06}"))
}

/// The partition holding a book version's entries and promotions.
pub fn book_partition(version: u64) -> String {
    format!("BOOK#{version:06}")
}

pub fn book_entry(version: u64, sku: &Sku) -> Key {
    (book_partition(version), format!("SKU#{sku}"))
}

/// Part `part` of the `index`th promotion of a book version.
pub fn book_promotion(version: u64, index: usize, part: usize) -> Key {
    (
        book_partition(version),
        format!("PROMO#{index:06}#{part:04}"),
    )
}

pub const BOOK_PROMOTION_PREFIX: &str = "PROMO#";

pub fn api_key(id: &str) -> Key {
    (format!("APIKEY#{id}"), "APIKEY".into())
}

pub const API_KEYS_INDEX: &str = "APIKEYS";

pub fn stock(sku: &Sku) -> Key {
    (format!("SKU#{sku}"), "STOCK".into())
}

/// Bucket `b` of a SKU whose pool is spread (see [`crate::stock`]): a
/// partition of its own, since DynamoDB serves about 1,000 write units a
/// second per partition as per item, and the point of the buckets is to
/// take the SKU past that. (A SKU holds no `#`, so no SKU's own partition
/// is named so.)
pub fn stock_bucket(sku: &Sku, b: u8) -> Key {
    (format!("SKU#{sku}#B{b:02}"), "STOCK".into())
}

/// The sort keys of a SKU's past days of demand start with this.
pub const SKU_DEMAND_PREFIX: &str = "DEMAND#";

pub fn sku_demand(sku: &Sku, day: tier_domain::calendar::Day) -> Key {
    (stock(sku).0, format!("{SKU_DEMAND_PREFIX}{day}"))
}

pub fn reserve_plan(sku: &Sku) -> Key {
    (stock(sku).0, "PLAN".into())
}

pub fn order_stock(order: &OrderRef) -> Key {
    (
        format!(
            "ORDER#{}#{}#{}",
            order.platform, order.store, order.order_id
        ),
        "STOCK".into(),
    )
}

pub fn webhook(platform: &Platform, store: &StoreId, event: &EventId) -> Key {
    (
        format!("WEBHOOK#{platform}#{store}#{event}"),
        "WEBHOOK".into(),
    )
}

pub fn rule_set_current() -> Key {
    ("RULESET".into(), "CURRENT".into())
}

pub fn rule_set_version(version: u64) -> Key {
    ("RULESET".into(), format!("V#{version:06}"))
}

/// GSI1 partition of a tier's members; distributors without a tier yet sit
/// in `TIER#-`.
pub fn tier_members(tier: Option<&TierId>) -> String {
    format!("TIER#{}", TierId::name_or_none(tier))
}

/// Partition of one shard of a month's analytics: its sales cells
/// (`SALES#…`) and its tier moves (`MOVES#…`). A shard per partition key,
/// so that the brand's order rate is spread over
/// [`tier_domain::analytics::SHARDS`] keys.
pub fn stats_partition(month: tier_domain::calendar::Month, shard: u32) -> String {
    format!("STATS#{month}#{shard:02}")
}

/// A sales cell: region (`-` unknown) and the seller's tier when paid
/// (`-` none). Region codes hold no `#`, so the two parts split back.
pub fn sales_cell(
    month: tier_domain::calendar::Month,
    shard: u32,
    cell: &tier_domain::analytics::Cell,
) -> Key {
    (
        stats_partition(month, shard),
        format!(
            "{SALES_PREFIX}{}#{}",
            cell.region.as_ref().map_or("-", |r| r.code()),
            TierId::name_or_none(cell.tier.as_ref())
        ),
    )
}

pub const SALES_PREFIX: &str = "SALES#";

/// One shard of a month's tier moves, a counter per tier and kind.
pub fn tier_moves(month: tier_domain::calendar::Month, shard: u32) -> Key {
    (stats_partition(month, shard), MOVES_SK.into())
}

pub const MOVES_SK: &str = "MOVES";

/// One shard of the members of every tier now, a counter per tier.
pub fn tier_member_counts(shard: u32) -> Key {
    (format!("STATS#MEMBERS#{shard:02}"), "MEMBERS".into())
}

/// Partition of a day's price disorder (乱价) records.
pub fn disorder_partition(day: tier_domain::calendar::Day) -> String {
    format!("DISORDER#{day}")
}

/// One order's price disorder record, under its day and seller, so that a
/// query of a day can take one distributor's by prefix.
pub fn disorder(day: tier_domain::calendar::Day, seller: &DistributorId, order: &OrderRef) -> Key {
    (
        disorder_partition(day),
        format!(
            "{seller}#{}#{}#{}",
            order.platform, order.store, order.order_id
        ),
    )
}

/// One finding the alerts job published (or is publishing).
pub fn alert(finding: &str) -> Key {
    (format!("ALERT#{finding}"), "ALERT".into())
}
