//! Messages that cross SQS between the functions.
//!
//! # Layout
//! Every message is an envelope `{"type": "<name>.v<N>", "payload": {...}}`.
//! A change that old consumers cannot read gets a new `vN` variant, and
//! consumers keep reading the old one until the queues have drained of it.
//! `fixtures/` holds one JSON file per variant and kind; the tests below
//! keep them and the types in step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use tier_domain::calendar::{Day, Period};
use tier_domain::ids::{AppId, BuyerId, DistributorId, EventId, Platform, Sku, StoreId, TierId};
use tier_domain::metrics::Metric;
use tier_domain::order::OrderEvent;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum Message {
    /// An order was paid, refunded or cancelled on a platform. Sent by order
    /// intake to tier evaluation and to stock allocation.
    #[serde(rename = "order_event.v1")]
    OrderEventV1(OrderEvent),
    /// One tier partition of a scheduled review, from a page on: the
    /// consumer enqueues a [`Message::ReviewPageV1`] per page of members and
    /// a continuation of itself before it runs out of time.
    #[serde(rename = "review_partition.v1")]
    ReviewPartitionV1(ReviewPartition),
    /// Distributors to re-evaluate in a scheduled review.
    #[serde(rename = "review_page.v1")]
    ReviewPageV1(ReviewPage),
    /// A distributor joined a network: its upline's network metrics moved,
    /// so its tier is re-evaluated, and the ancestors above are asked to
    /// pull the change. Sent by the admin API.
    #[serde(rename = "network_changed.v1")]
    NetworkChangedV1(NetworkChanged),
    /// A user signed up through a distributor's store (下线用户), before or
    /// without ordering. Sent by order intake to tier evaluation.
    #[serde(rename = "user_registered.v1")]
    UserRegisteredV1(UserRegistered),
    /// One tier partition of a backfill, from a page on: as a review
    /// partition, it enqueues a [`Message::BackfillPageV1`] per page of
    /// members. Sent by the admin API when a published rule set reads what
    /// its predecessor did not keep.
    #[serde(rename = "backfill_partition.v1")]
    BackfillPartitionV1(BackfillPartition),
    /// Distributors whose ledgers to count into what the rule set reads.
    #[serde(rename = "backfill_page.v1")]
    BackfillPageV1(BackfillPage),
    /// One tier partition of a what-if, from a page on: as a review
    /// partition, it enqueues a [`Message::WhatIfPageV1`] per page of
    /// members. Sent by the admin API, continuations by tier evaluation.
    #[serde(rename = "what_if_partition.v1")]
    WhatIfPartitionV1(WhatIfPartition),
    /// Distributors to evaluate against a what-if's draft rule set.
    #[serde(rename = "what_if_page.v1")]
    WhatIfPageV1(WhatIfPage),
    /// A held notice whose order came without its lines (抖店's paid push):
    /// the order's detail is fetched from the platform and the notice
    /// translated again. Sent by order intake as it holds such a notice,
    /// and by the admin API's release, to the order detail consumer.
    #[serde(rename = "detail_fetch.v1")]
    DetailFetchV1(DetailFetch),
    /// A direct downline's network moved: its upline is to pull the
    /// difference into its own network metrics ([`tier_domain::network`]).
    /// Sent by tier evaluation to the roll-up queue (FIFO, grouped by
    /// upline, one message per pair and window), and by itself after each
    /// pull, for the next upline up. A pull whose downline is the upline
    /// itself sets a spread seller's sales ranks from its shards.
    #[serde(rename = "network_pull.v1")]
    NetworkPullV1(NetworkPull),
    /// A SKU has stock to give its backorders: they are filled by priority,
    /// then age, a page at a time, each page sending the next. Sent by the
    /// admin API after a count or a plan frees units, and by stock
    /// allocation after a release does, to stock allocation.
    #[serde(rename = "backorder_fill.v1")]
    BackorderFillV1(BackorderFill),
    /// Reserve plans to compute ([`tier_domain::stock::plan`]): one SKU's,
    /// or every SKU of the current price book a page at a time, each page
    /// sending the next. Sent by the hourly schedule, by the admin API
    /// after a restock or when asked, and by stock allocation for the next
    /// page, to stock allocation.
    #[serde(rename = "reserve_plan.v1")]
    ReservePlanV1(ReservePlanRun),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservePlanRun {
    /// One SKU; none (and no `skus`) is every SKU of the current price book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// These SKUs (a stock sync's), a page at a time: each message plans
    /// the first page and sends the rest on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<Sku>,
    /// Where the previous page of the SKUs ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Sku>,
    /// The plans' instant: the schedule's time, so that a redelivered
    /// page plans what the first delivery did. None is when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackorderFill {
    pub sku: Sku,
    /// Where the previous page of the SKU's backorders ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPull {
    pub upline: DistributorId,
    pub downline: DistributorId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailFetch {
    pub platform: Platform,
    pub store: StoreId,
    /// The held notice's event id; with the order id, what names the held
    /// notice.
    pub event_id: EventId,
    /// The platform's order id, as the notice names it (抖店's ids pass
    /// 2^53, so text).
    pub order_id: String,
    /// The app the store is connected through: the request for the detail
    /// is signed with its secret.
    pub app: AppId,
}

/// What a backfill counts the ledger into: metrics kept by day (orders paid
/// on `since` or later), and SKUs whose purchases count (every order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    pub rule_set_version: u64,
    pub since: Day,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub daily: BTreeSet<Metric>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub skus: BTreeSet<Sku>,
}

impl Backfill {
    /// What rule set `rule_set_version`'s backfill `b` counts, started
    /// `today`: orders paid within its longest rolling window by day.
    pub fn new(rule_set_version: u64, b: tier_domain::rules::Backfill, today: Day) -> Self {
        let longest = b.daily.values().max().copied().unwrap_or(1).max(1);
        Self {
            rule_set_version,
            since: today.minus_days(longest - 1),
            daily: b.daily.keys().copied().collect(),
            skus: b.skus,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillPartition {
    pub backfill: Backfill,
    /// The tier whose members to backfill; `None`: distributors without a tier.
    pub tier: Option<TierId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Which start of the version's backfill sent it (its progress counts
    /// the latest start's partitions only), and which of its passes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pass: u64,
}

impl BackfillPartition {
    /// Names the partition within its start: its pass and tier.
    pub fn partition_id(&self) -> String {
        format!("{}/{}", self.pass, TierId::name_or_none(self.tier.as_ref()))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillPage {
    pub backfill: Backfill,
    pub distributors: Vec<DistributorId>,
    /// Where in the first distributor's ledger the previous message stopped
    /// (an opaque cursor), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub event_id: EventId,
    pub platform: Platform,
    pub store: StoreId,
    /// The store's distributor: the user's recruiter.
    pub distributor: DistributorId,
    /// The platform's id of the user, as orders name it (`buyer_id`).
    pub user: BuyerId,
    /// Bounded as an order event's is, for the same reason.
    #[serde(deserialize_with = "tier_domain::order::event_time::deserialize")]
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkChanged {
    pub downline: DistributorId,
    pub ancestors: Vec<DistributorId>,
}

/// Which review: its period and the instant every evaluation of it uses,
/// so that reruns and overlapping runs decide the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRun {
    /// A month, or a day for rule sets with rolling windows.
    pub period: Period,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPartition {
    pub run: ReviewRun,
    /// The tier whose members to review; `None`: distributors without a tier.
    pub tier: Option<TierId>,
    /// Where the previous message stopped (an opaque cursor), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPage {
    pub run: ReviewRun,
    pub distributors: Vec<DistributorId>,
}

/// Which what-if: its id (the draft is stored with it) and the instant
/// every evaluation of it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIfRun {
    pub id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIfPartition {
    pub run: WhatIfRun,
    /// The tier whose members to evaluate; `None`: distributors without a tier.
    pub tier: Option<TierId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl WhatIfPartition {
    /// Names this message's share of the listing: its tier (`-`: none) and
    /// where it started, the same on a redelivery (cursors are written in
    /// key order).
    pub fn listing_id(&self) -> String {
        what_if_listing_id(
            TierId::name_or_none(self.tier.as_ref()),
            self.cursor.as_deref(),
        )
    }
}

/// The name of the listing of partition `partition` (a tier's name, `-`
/// for none) that starts at `cursor` (`None`: the partition's first).
pub fn what_if_listing_id(partition: &str, cursor: Option<&str>) -> String {
    format!("{partition}#{}", cursor.map_or(0, fnv1a))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIfPage {
    pub run: WhatIfRun,
    /// Names the page, the same on a redelivery (its listing message's id
    /// and its place there), so that it is counted once.
    pub page: String,
    /// The tier its distributors were listed in (`None`: without one).
    pub tier: Option<TierId>,
    pub distributors: Vec<DistributorId>,
}

/// A short, stable hash (FNV-1a, 64 bits) for naming cursors in keys.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A message body that cannot be read. It will never become readable, so it
/// goes to the dead-letter queue with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable message: {reason}")]
pub struct MalformedMessage {
    pub reason: String,
}

impl Message {
    pub fn from_json(body: &str) -> Result<Message, MalformedMessage> {
        serde_json::from_str(body).map_err(|e| MalformedMessage {
            reason: e.to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages serialise: no maps with non-string keys")
    }

    /// A stable id for de-duplication and logs.
    pub fn id(&self) -> String {
        match self {
            Message::OrderEventV1(e) => {
                format!("{}/{}/{}", e.order.platform, e.order.store, e.event_id)
            }
            Message::ReviewPartitionV1(p) => format!(
                "review/{}/{}/{}",
                p.run.period,
                TierId::name_or_none(p.tier.as_ref()),
                p.cursor.as_deref().unwrap_or("")
            ),
            Message::ReviewPageV1(p) => format!(
                "review/{}/{}",
                p.run.period,
                p.distributors.first().map_or("", |d| d.as_str())
            ),
            Message::NetworkChangedV1(n) => format!("network/{}", n.downline),
            Message::UserRegisteredV1(u) => format!("{}/{}/{}", u.platform, u.store, u.event_id),
            Message::BackfillPartitionV1(p) => format!(
                "backfill/{}/{}/{}",
                p.backfill.rule_set_version,
                TierId::name_or_none(p.tier.as_ref()),
                p.cursor.as_deref().unwrap_or("")
            ),
            Message::BackfillPageV1(p) => format!(
                "backfill/{}/{}",
                p.backfill.rule_set_version,
                p.distributors.first().map_or("", |d| d.as_str())
            ),
            Message::WhatIfPartitionV1(p) => format!("what-if/{}/{}", p.run.id, p.listing_id()),
            Message::WhatIfPageV1(p) => format!("what-if/{}/{}", p.run.id, p.page),
            Message::DetailFetchV1(f) => {
                format!("detail/{}/{}/{}", f.platform, f.store, f.event_id)
            }
            Message::NetworkPullV1(p) => format!("pull/{}/{}", p.upline, p.downline),
            Message::BackorderFillV1(f) => {
                format!("fill/{}/{}", f.sku, f.after.as_deref().unwrap_or(""))
            }
            Message::ReservePlanV1(r) => format!(
                "plan/{}/{}/{}",
                r.sku
                    .as_ref()
                    .or(r.skus.first())
                    .map_or("*", |s| s.as_str()),
                r.after.as_ref().map_or("", |s| s.as_str()),
                r.at.map(|at| at.to_rfc3339()).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_fixture_parses_and_round_trips() {
        let all = fixtures();
        assert!(all.len() >= 3, "fixtures missing");
        for (path, body) in all {
            let msg = Message::from_json(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
            let again: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
            let original: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(again, original, "{path} does not round-trip");
        }
    }

    #[test]
    fn malformed_messages_say_why() {
        let e = Message::from_json("{\"type\": \"order_event.v9\", \"payload\": {}}").unwrap_err();
        assert!(e.reason.contains("order_event.v9"), "{e}");
        let e = Message::from_json("not json").unwrap_err();
        assert!(!e.reason.is_empty());
        let paid = include_str!("../fixtures/order_event.v1.paid.json")
            .replace("\"2\"", "\"-2\"")
            .replace("\"quantity\": 2", "\"quantity\": -2");
        assert!(Message::from_json(&paid).is_err());
    }
}
