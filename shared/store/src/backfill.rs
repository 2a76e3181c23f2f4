//! Counting orders already in the ledger into what a newly published rule
//! set reads and its predecessor did not keep: metrics by day (for rolling
//! windows) and purchased quantities of SKUs. Without it, new rules would
//! start from nothing and the first review would move tiers down en masse.
//!
//! Each ledger entry records the daily kinds and SKUs it counts in (its
//! terms, see [`crate::ledger`]). The backfill adds the missing ones to an
//! entry and the entry's current contribution to the matching buckets, in
//! one transaction conditional on the entry's version: a live event on the
//! same order either comes before (and the backfill counts its result) or
//! after (and finds the terms, and moves the buckets with them). Running it
//! twice changes nothing the second time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use tier_domain::calendar::Day;
use tier_domain::ids::{DistributorId, Sku};
use tier_domain::ledger::OrderRecord;
use tier_domain::metrics::{Metric, MetricsDelta};
use tier_domain::plan;

use crate::error::StoreError;
use crate::item::{self, Item, n, s};
use crate::keys;
use crate::metrics::{check_writable, daily_kinds, daily_updates, metrics_update};
use crate::table::{Table, TxOutcome};

const MAX_ATTEMPTS: u32 = 8;

/// What a backfill of one distributor did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Ledger entries read.
    pub orders: usize,
    /// Entries counted into something new.
    pub counted: usize,
}

impl Table {
    /// Counts up to `limit` entries of `distributor`'s ledger, from `after`
    /// (the cursor a previous call returned), into the `daily` metrics
    /// (orders paid on `since` or later) and the `skus` (every order).
    /// Returns what it did and where to carry on (`None`: the ledger is
    /// done); `None` for an unknown distributor.
    pub async fn backfill_distributor(
        &self,
        distributor: &DistributorId,
        daily: &BTreeSet<Metric>,
        skus: &BTreeSet<Sku>,
        since: Day,
        after: Option<&str>,
        limit: i32,
    ) -> Result<Option<(Backfilled, Option<String>)>, StoreError> {
        let Some(profile) = self.distributor_consistent(distributor).await? else {
            return Ok(None);
        };
        let kinds = daily_kinds(&daily.iter().map(|m| (*m, 1)).collect());
        let (entries, next) = self
            .query_page(
                &keys::distributor(distributor).0,
                keys::ORDER_LEDGER_PREFIX,
                after,
                Some(limit),
                true,
            )
            .await?;
        let mut report = Backfilled::default();
        for entry in entries {
            report.orders += 1;
            let key = item::key_of(&entry);
            let mut current = entry;
            for attempt in 0..MAX_ATTEMPTS {
                match self
                    .backfill_entry(
                        distributor,
                        &profile.ancestors,
                        &current,
                        &kinds,
                        skus,
                        since,
                    )
                    .await?
                {
                    Some(counted) => {
                        report.counted += usize::from(counted);
                        break;
                    }
                    None if attempt + 1 == MAX_ATTEMPTS => {
                        return Err(StoreError::Contention {
                            what: format!("backfill of {}", key.1),
                            attempts: MAX_ATTEMPTS,
                        });
                    }
                    None => {
                        crate::table::backoff(attempt + 1).await;
                        match self.get(&key, true).await? {
                            Some(fresh) => current = fresh,
                            None => break,
                        }
                    }
                }
            }
        }
        Ok(Some((report, next)))
    }

    /// One entry: `Some(true)` counted, `Some(false)` nothing to add, `None`
    /// lost a race with a live event (read it again).
    async fn backfill_entry(
        &self,
        distributor: &DistributorId,
        ancestors: &[DistributorId],
        entry: &Item,
        kinds: &BTreeSet<String>,
        skus: &BTreeSet<Sku>,
        since: Day,
    ) -> Result<Option<bool>, StoreError> {
        let key = item::key_of(entry);
        let record: OrderRecord = item::get_json(entry, "record")?;
        let version = item::get_u64_or_zero(entry, "version")?;
        let legacy = !entry.contains_key("terms");
        let Some(plan::Backfill {
            add_kinds,
            add_skus,
            moves,
        }) = plan::backfill(
            &record,
            legacy,
            &item::get_string_set(entry, "daily"),
            &item::get_string_set(entry, "skus"),
            kinds,
            skus,
            since,
            distributor,
            ancestors,
        )
        else {
            return Ok(Some(false));
        };

        let mut names = HashMap::from([("#v".to_owned(), "version".to_owned())]);
        let mut values = HashMap::from([
            (":v".to_owned(), n(version)),
            (":next".to_owned(), n(version + 1)),
            (":one".to_owned(), n(1)),
        ]);
        let mut adds = Vec::new();
        if !add_kinds.is_empty() {
            names.insert("#d".into(), "daily".into());
            values.insert(
                ":d".into(),
                AttributeValue::Ss(add_kinds.iter().cloned().collect()),
            );
            adds.push("#d :d");
        }
        if !add_skus.is_empty() {
            names.insert("#s".into(), "skus".into());
            values.insert(
                ":s".into(),
                AttributeValue::Ss(add_skus.keys().map(|s| s.to_string()).collect()),
            );
            adds.push("#s :s");
        }
        // The version moves, so a live event's write, conditional on the
        // version it read, cannot overwrite the terms added here. A legacy
        // entry stays one (its purchases count as they always did).
        let sets = if legacy {
            "SET #v = :next"
        } else {
            "SET #v = :next, terms = if_not_exists(terms, :one)"
        };
        if legacy {
            values.remove(":one");
        }
        let update = Update::builder()
            .table_name(&self.name)
            .key(keys::PK, s(&key.0))
            .key(keys::SK, s(&key.1))
            .update_expression(format!("{sets} ADD {}", adds.join(", ")))
            .condition_expression("#v = :v")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("update has key and expression");
        let mut tx = vec![TransactWriteItem::builder().update(update).build()];

        // Every metrics item whose buckets move gets a new version, so a
        // tier decided meanwhile from what was read before is not written.
        let mut touched: BTreeMap<&DistributorId, MetricsDelta> = BTreeMap::new();
        for (id, delta) in &moves {
            check_writable(id, delta)?;
            let updates = daily_updates(self, id, delta);
            if !updates.is_empty() {
                touched.entry(id).or_default();
            }
            tx.extend(
                updates
                    .into_iter()
                    .map(|u| TransactWriteItem::builder().update(u).build()),
            );
        }
        if !add_skus.is_empty() {
            touched.entry(distributor).or_default().purchased = add_skus.into_iter().collect();
        }
        for (id, delta) in &touched {
            tx.push(
                TransactWriteItem::builder()
                    .update(metrics_update(self, id, delta, None))
                    .build(),
            );
        }
        match self.transact(tx).await {
            Ok(TxOutcome::Committed) => Ok(Some(true)),
            Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How far a rule set version's backfill has got, for operators. Its
/// latest start has listed every distributor once each of its partitions
/// (one per tier and pass) has (`partitions_listed` = `partitions`); it is
/// over when `last_progress_at` then stops moving. `partitions_listed`
/// counts each partition once, `distributors_counted` each distributor at
/// most once; the other counters say how much work ran, so a redelivered
/// message counts twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillProgress {
    pub rule_set_version: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Times it was started: by the publication, then by hand.
    pub starts: u64,
    /// Partitions the latest start lists (one per tier and pass).
    pub partitions: u64,
    /// Those of them whose listing is done.
    pub partitions_listed: u64,
    pub distributors_listed: u64,
    /// Distributors whose whole ledger is counted into this version's
    /// windows: their downgrades are no longer held.
    pub distributors_counted: u64,
    pub entries_read: u64,
    pub entries_counted: u64,
    pub last_progress_at: Option<chrono::DateTime<chrono::Utc>>,
}

const RUN_ENTITY: &str = "backfill_run";

fn progress_key(version: u64) -> keys::Key {
    (format!("BACKFILL#{version:06}"), "RUN".into())
}

impl Table {
    /// A start of `version`'s backfill that lists `partitions` partitions
    /// (the record is created by the first); returns the start's number,
    /// which its partition messages carry.
    pub async fn record_backfill_start(
        &self,
        version: u64,
        at: chrono::DateTime<chrono::Utc>,
        partitions: u64,
    ) -> Result<u64, StoreError> {
        let (pk, sk) = progress_key(version);
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("SET started_at = if_not_exists(started_at, :at), entity_type = :e, #partitions = :p ADD #starts :one REMOVE listed")
            .expression_attribute_names("#starts", "starts")
            .expression_attribute_names("#partitions", "partitions")
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":e", s(RUN_ENTITY))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":p", n(partitions))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::aws("UpdateItem", e))?;
        let attrs = out.attributes.unwrap_or_default();
        item::get_u64_or_zero(&attrs, "starts")
    }

    /// One partition message's listing: `listed` distributors and, if it
    /// reached the end of its partition (rather than handing on to a
    /// continuation), the partition's id, counted once and only for the
    /// latest start (`start`).
    pub async fn record_backfill_listing(
        &self,
        version: u64,
        start: u64,
        listed: u64,
        finished: Option<&str>,
    ) -> Result<(), StoreError> {
        self.add_progress(
            version,
            "SET entity_type = :e ADD distributors_listed :l",
            &[],
            [(":e", s(RUN_ENTITY)), (":l", n(listed))],
        )
        .await?;
        if let Some(id) = finished {
            // An earlier start's partition, listed late, is not this start's.
            let values = [
                (":id", AttributeValue::Ss(vec![id.to_owned()])),
                (":start", n(start)),
            ];
            self.update_if_named(
                &progress_key(version),
                "ADD listed :id",
                Some("#starts = :start"),
                &[("#starts", "starts")],
                values,
            )
            .await?;
        }
        Ok(())
    }

    /// One page message's work.
    pub async fn record_backfill_page(
        &self,
        version: u64,
        at: chrono::DateTime<chrono::Utc>,
        read: u64,
        counted: u64,
        distributors: u64,
    ) -> Result<(), StoreError> {
        self.add_progress(version, "SET last_progress_at = :at, entity_type = :e ADD entries_read :r, entries_counted :c, distributors_counted :d", &[], [
            (":at", s(at.to_rfc3339())),
            (":e", s(RUN_ENTITY)),
            (":r", n(read)),
            (":c", n(counted)),
            (":d", n(distributors)),
        ])
        .await
    }

    /// An unconditional update of the progress record: 1 write unit a
    /// message, beside the transactions it counts. `names` spell out
    /// attribute names that are reserved words (PARTITIONS).
    async fn add_progress<'a>(
        &self,
        version: u64,
        update: &str,
        names: &[(&str, &str)],
        values: impl IntoIterator<Item = (&'a str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        self.update_if_named(&progress_key(version), update, None, names, values)
            .await
            .map(|_| ())
    }

    /// `version`'s backfill progress; `None` if it was never started.
    pub async fn backfill_progress(
        &self,
        version: u64,
    ) -> Result<Option<BackfillProgress>, StoreError> {
        let key = progress_key(version);
        let Some(i) = self.get(&key, true).await? else {
            return Ok(None);
        };
        // Page messages can record before the start does.
        let Some(started) = item::opt_s(&i, "started_at") else {
            return Ok(None);
        };
        let time = |raw: &str| {
            raw.parse::<chrono::DateTime<chrono::Utc>>()
                .map_err(|_| StoreError::corrupt(&key, format!("bad time {raw}")))
        };
        let count = |name: &str| item::get_u64_or_zero(&i, name);
        Ok(Some(BackfillProgress {
            rule_set_version: version,
            started_at: time(started)?,
            starts: count("starts")?,
            partitions: count("partitions")?,
            partitions_listed: item::get_string_set(&i, "listed").len() as u64,
            distributors_listed: count("distributors_listed")?,
            distributors_counted: count("distributors_counted")?,
            entries_read: count("entries_read")?,
            entries_counted: count("entries_counted")?,
            last_progress_at: item::opt_s(&i, "last_progress_at").map(time).transpose()?,
        }))
    }
}
