//! Scheduled review runs: one record per period, so that a rerun or an
//! overlapping run evaluates at the same instant as the first, and pages of
//! a tier's members to fan the work out.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use tier_domain::calendar::Period;
use tier_domain::ids::{DistributorId, TierId};

use tier_messages::{Message, ReviewPartition, ReviewRun};

use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::queue::Queue;
use crate::table::Table;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewRecord {
    pub period: Period,
    pub at: DateTime<Utc>,
    /// Whether this call created the run (`false`: it already existed).
    pub created: bool,
    /// Partition messages sent (one per tier, and one for distributors
    /// without a tier); `None` until the run is fanned out, and for a run
    /// with no published rule set, which has nothing to evaluate.
    pub partitions: Option<u64>,
    /// Partitions whose listing reached their end.
    pub partitions_listed: u64,
    /// Page messages sent, and the distributors on them.
    pub pages_listed: u64,
    pub distributors_listed: u64,
    pub pages_done: u64,
    pub evaluated: u64,
    pub changed: u64,
}

/// Where a run is, from its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Recorded, not fanned out yet (or nothing to evaluate: no rule set).
    Started,
    /// Some partition is still listing its members into pages.
    Listing,
    /// Every partition is listed; pages are being evaluated.
    Evaluating,
    /// Every listed page has been evaluated.
    Done,
}

impl ReviewRecord {
    /// The counters are added to by each message, and a redelivered
    /// message adds again, so they say how much work ran: `Done` once at
    /// least as many pages were evaluated as were listed.
    pub fn state(&self) -> ReviewState {
        match self.partitions {
            None => ReviewState::Started,
            Some(p) if self.partitions_listed < p => ReviewState::Listing,
            Some(_) if self.pages_done < self.pages_listed => ReviewState::Evaluating,
            Some(_) => ReviewState::Done,
        }
    }
}

fn review_key(period: Period) -> keys::Key {
    (format!("REVIEW#{period}"), "RUN".into())
}

/// Which attribute index lists members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberIndex {
    Region,
    Upline,
}

impl Table {
    /// Starts the review of `period` at `at`, or returns the run that
    /// already exists (with its own `at`).
    pub async fn start_review(
        &self,
        period: Period,
        at: DateTime<Utc>,
    ) -> Result<ReviewRecord, StoreError> {
        let key = review_key(period);
        let put = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(new_item(
                &key,
                "review_run",
                [
                    ("period", s(period.to_string())),
                    ("at", s(at.to_rfc3339())),
                    ("pages_done", n(0)),
                ],
            )))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        let created = match put {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(e) => return Err(StoreError::aws("PutItem", e)),
        };
        let mut record = self
            .review(period)
            .await?
            .ok_or_else(|| StoreError::corrupt(&key, "vanished after being written"))?;
        record.created = created;
        Ok(record)
    }

    pub async fn review(&self, period: Period) -> Result<Option<ReviewRecord>, StoreError> {
        let key = review_key(period);
        let Some(i) = self.get(&key, true).await? else {
            return Ok(None);
        };
        let count = |name: &str| item::get_u64_or_zero(&i, name);
        Ok(Some(ReviewRecord {
            period,
            at: item::get_s(&i, "at")?
                .parse()
                .map_err(|_| StoreError::corrupt(&key, "at"))?,
            created: false,
            partitions: i
                .contains_key("partitions")
                .then(|| count("partitions"))
                .transpose()?,
            partitions_listed: count("partitions_listed")?,
            pages_listed: count("pages_listed")?,
            distributors_listed: count("distributors_listed")?,
            pages_done: count("pages_done")?,
            evaluated: count("evaluated")?,
            changed: count("changed")?,
        }))
    }

    /// Starts the review of `period` at `at` (or finds its run, which keeps
    /// its own instant) and, if a rule set is `published`, fans it out
    /// through `queue`: one partition message per tier any version has had
    /// (members of a dropped tier too) and one for distributors without a
    /// tier. What the schedules and an operator's request both do; safe to
    /// do again, since every page is evaluated at the run's instant and
    /// evaluating twice changes nothing.
    pub async fn begin_review(
        &self,
        queue: &Queue,
        period: Period,
        at: DateTime<Utc>,
        published: bool,
    ) -> Result<ReviewRecord, StoreError> {
        let mut record = self.start_review(period, at).await?;
        if !published {
            return Ok(record);
        }
        let run = ReviewRun {
            period,
            at: record.at,
        };
        let tiers: Vec<Option<TierId>> = self
            .all_tier_ids()
            .await?
            .into_iter()
            .map(Some)
            .chain([None])
            .collect();
        for tier in &tiers {
            queue
                .send(&Message::ReviewPartitionV1(ReviewPartition {
                    run: run.clone(),
                    tier: tier.clone(),
                    cursor: None,
                }))
                .await?;
        }
        // PARTITIONS is a reserved word in DynamoDB's expressions.
        self.update_run(
            period,
            "SET #parts = :p",
            Some(("#parts", "partitions")),
            [(":p", n(tiers.len() as u64))],
        )
        .await?;
        record.partitions = Some(tiers.len() as u64);
        Ok(record)
    }

    /// One unconditional update of `period`'s run item: its counters and
    /// its partition count.
    async fn update_run<const N: usize>(
        &self,
        period: Period,
        expression: &str,
        name: Option<(&str, &str)>,
        values: [(&str, AttributeValue); N],
    ) -> Result<(), StoreError> {
        let (pk, sk) = review_key(period);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(expression);
        if let Some((placeholder, attribute)) = name {
            update = update.expression_attribute_names(placeholder, attribute);
        }
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        update
            .send()
            .await
            .map_err(|e| StoreError::aws("UpdateItem", e))?;
        Ok(())
    }

    /// What one partition message listed: `pages` page messages of
    /// `distributors`, and whether it reached the partition's end.
    pub async fn record_review_listing(
        &self,
        period: Period,
        pages: u64,
        distributors: u64,
        finished: bool,
    ) -> Result<(), StoreError> {
        self.update_run(
            period,
            "ADD pages_listed :p, distributors_listed :d, partitions_listed :f",
            None,
            [
                (":p", n(pages)),
                (":d", n(distributors)),
                (":f", n(u64::from(finished))),
            ],
        )
        .await
    }

    /// Progress counters, for operators. A redelivered page counts twice:
    /// they say how much work ran, not how many distributors exist.
    pub async fn record_review_page(
        &self,
        period: Period,
        evaluated: u64,
        changed: u64,
    ) -> Result<(), StoreError> {
        self.update_run(
            period,
            "ADD pages_done :one, evaluated :e, changed :c",
            None,
            [(":one", n(1)), (":e", n(evaluated)), (":c", n(changed))],
        )
        .await
    }

    /// One page of the distributors whose `region` or `upline` (as `by`
    /// says) is `value`, in id order, through its index; with `tier`,
    /// only that tier's (`Some(None)`: those without one), filtered on the
    /// index page, so a page may hold fewer than `limit`. The cursor is
    /// the index's own key, as JSON.
    pub async fn indexed_members_page(
        &self,
        by: MemberIndex,
        value: &str,
        tier: Option<Option<&TierId>>,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<DistributorId>, Option<String>), StoreError> {
        let (index, attr) = match by {
            MemberIndex::Region => (keys::REGION_INDEX, "region"),
            MemberIndex::Upline => (keys::UPLINE_INDEX, "upline"),
        };
        let start = start_key(cursor)?;
        let query = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", s(value));
        let query = match tier {
            None => query,
            Some(None) => query.filter_expression("attribute_not_exists(tier)"),
            Some(Some(t)) => query
                .filter_expression("tier = :t")
                .expression_attribute_values(":t", s(t.as_str())),
        };
        let out = query
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?;
        members_page(out)
    }

    /// One page of a tier's members (GSI1), from `cursor`; returns the ids
    /// and the cursor of the next page, if any.
    pub async fn tier_members_page(
        &self,
        tier: Option<&TierId>,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<DistributorId>, Option<String>), StoreError> {
        let start = start_key(cursor)?;
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :g")
            .expression_attribute_values(":g", s(keys::tier_members(tier)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?;
        members_page(out)
    }
}

/// An index page's start key from the cursor a previous page gave (its
/// last key, as JSON).
fn start_key(cursor: Option<&str>) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
    Ok(cursor
        .map(|c| {
            serde_json::from_str::<HashMap<String, String>>(c)
                .map_err(|e| StoreError::corrupt(&("cursor".into(), c.into()), e.to_string()))
        })
        .transpose()?
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, AttributeValue::S(v)))
                .collect()
        }))
}

/// The distributor ids of an index page (each item's `id`), and the cursor
/// to the next: its last key as JSON, in key order, so the same page always
/// gives the same cursor (a what-if names its continuations by it).
fn members_page(
    out: aws_sdk_dynamodb::operation::query::QueryOutput,
) -> Result<(Vec<DistributorId>, Option<String>), StoreError> {
    let ids = out
        .items
        .unwrap_or_default()
        .iter()
        .map(|i| {
            item::get_s(i, "id").and_then(|raw| {
                DistributorId::parse(raw)
                    .map_err(|e| StoreError::corrupt(&item::key_of(i), e.to_string()))
            })
        })
        .collect::<Result<_, _>>()?;
    let next = out.last_evaluated_key.map(|k| {
        let m: std::collections::BTreeMap<String, String> = k
            .into_iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
            .collect();
        serde_json::to_string(&m).expect("strings serialise")
    });
    Ok((ids, next))
}
