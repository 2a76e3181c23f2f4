//! Scheduled reviews: a period's run started once (its instant kept, so a
//! rerun or an overlapping run decides the same), fanned out through this
//! function's own queue as one partition message per tier, which lists
//! its members into pages; each page is evaluated by whichever consumer
//! takes it. Also the listing that backfills and what-ifs fan out with.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tier_domain::calendar::Period;
use tier_domain::ids::{DistributorId, TierId};
use tier_domain::tier::{Cause, Trigger};
use tier_messages::{Message, ReviewPage, ReviewPartition, ReviewRun};
use tier_runtime::sqs::Failure;
use tier_store::StoreError;
use tier_store::reviews::ReviewRecord;

use crate::{EvalError, TierEvaluation};

/// Members per review page message: a batch of ten pages (250 evaluations)
/// stays well inside the function's 10-second timeout.
pub const REVIEW_PAGE_SIZE: usize = 25;

/// Members listed per query while fanning out: several pages' worth, so
/// that listing, which runs in sequence for a tier, keeps ahead of the
/// evaluations, which run in parallel.
pub const REVIEW_QUERY_SIZE: i32 = 100;

/// Queries one partition message makes before handing on to a
/// continuation of itself, so no invocation runs long.
pub const QUERIES_PER_PARTITION_MESSAGE: usize = 10;

/// What one partition message listed.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    pub(crate) distributors: u64,
    pub(crate) pages: u64,
    pub(crate) finished: bool,
    /// Where the continuation carries on from, if one was sent.
    pub(crate) next: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ReviewReport {
    pub reviewed: u64,
    pub changed: u64,
}

impl TierEvaluation {
    /// What the schedule calls: starts the review of the current period
    /// (or finds the run already started, and its instant) and fans it out,
    /// one partition message per tier. Safe to call again: pages are
    /// evaluated at the run's instant, and evaluating twice changes nothing.
    pub async fn start_review(&self, now: DateTime<Utc>) -> Result<ReviewRecord, StoreError> {
        let published = self.table.current_rule_set().await?.is_some();
        self.start_review_of(Period::Month(self.calendar.month_of(now)), now, published)
            .await
    }

    /// What the daily schedule calls: where the rule set reads rolling
    /// windows, which move every day without any event, the day's review
    /// (as [`TierEvaluation::start_review`], one change per day at most).
    /// `None` without rolling windows, and on the 1st, which the month's
    /// review covers.
    pub async fn start_daily_review(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let today = self.calendar.day_of(now);
        let rolling = self
            .table
            .current_rule_set()
            .await?
            .is_some_and(|r| !r.rules.daily_spans().is_empty());
        if !rolling || today.day_of_month() == 1 {
            return Ok(None);
        }
        self.start_review_of(Period::Day(today), now, true)
            .await
            .map(Some)
    }

    /// Starts (or finds) the run of `period` and, if a rule set is
    /// `published`, fans it out.
    async fn start_review_of(
        &self,
        period: Period,
        now: DateTime<Utc>,
        published: bool,
    ) -> Result<ReviewRecord, StoreError> {
        let run = self
            .table
            .begin_review(&self.queue, period, now, published)
            .await?;
        tracing::info!(period = %run.period, at = %run.at, created = run.created, partitions = ?run.partitions, "review fanned out");
        Ok(run)
    }

    pub(crate) async fn on_review_partition(&self, p: &ReviewPartition) -> Result<(), Failure> {
        let listed = self
            .fan_out(
                p.tier.as_ref(),
                p.cursor.clone(),
                REVIEW_PAGE_SIZE,
                |page| {
                    Message::ReviewPageV1(ReviewPage {
                        run: p.run.clone(),
                        distributors: page,
                    })
                },
                |cursor| {
                    Message::ReviewPartitionV1(ReviewPartition {
                        run: p.run.clone(),
                        tier: p.tier.clone(),
                        cursor: Some(cursor),
                    })
                },
            )
            .await?;
        // For the operator's view of the run's progress.
        self.table
            .record_review_listing(
                p.run.period,
                listed.pages,
                listed.distributors,
                listed.finished,
            )
            .await?;
        Ok(())
    }

    /// A share of a tier's members from `cursor`: as many as one
    /// partition message lists before it hands on, and where the next
    /// share starts (`None`: the partition's end).
    pub(crate) async fn list_members(
        &self,
        tier: Option<&TierId>,
        mut cursor: Option<String>,
    ) -> Result<(Vec<DistributorId>, Option<String>), Failure> {
        let mut members = Vec::new();
        for _ in 0..QUERIES_PER_PARTITION_MESSAGE {
            let (ids, next) = self
                .table
                .tier_members_page(tier, cursor.as_deref(), REVIEW_QUERY_SIZE)
                .await?;
            members.extend(ids);
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok((members, None)),
            }
        }
        Ok((members, cursor))
    }

    /// Lists a tier's members from `cursor` into page messages, and hands
    /// on to a continuation (`more`) before the function runs out of time.
    /// Says how many it listed and whether it reached the partition's end.
    pub(crate) async fn fan_out(
        &self,
        tier: Option<&TierId>,
        cursor: Option<String>,
        page_size: usize,
        page: impl Fn(Vec<DistributorId>) -> Message,
        more: impl Fn(String) -> Message,
    ) -> Result<Listed, Failure> {
        let (ids, next) = self.list_members(tier, cursor).await?;
        let mut listed = Listed {
            distributors: ids.len() as u64,
            finished: next.is_none(),
            ..Listed::default()
        };
        for chunk in ids.chunks(page_size) {
            self.queue.send(&page(chunk.to_vec())).await?;
            listed.pages += 1;
        }
        // More members: a continuation carries on from here.
        if let Some(c) = next {
            self.queue.send(&more(c.clone())).await?;
            listed.next = Some(c);
        }
        Ok(listed)
    }

    pub(crate) async fn on_review_page(&self, page: &ReviewPage) -> Result<(), Failure> {
        let report = self
            .review_distributors(&page.distributors, &page.run)
            .await?;
        self.table
            .record_review_page(page.run.period, report.reviewed, report.changed)
            .await?;
        Ok(())
    }

    /// A page of a review: the rule set read once for the page, not once
    /// per distributor.
    async fn review_distributors(
        &self,
        ids: &[DistributorId],
        run: &ReviewRun,
    ) -> Result<ReviewReport, StoreError> {
        let mut report = ReviewReport::default();
        let Some(rules) = self.table.current_rule_set().await? else {
            return Ok(report);
        };
        for id in ids {
            report.reviewed += 1;
            match self
                .evaluate_with(
                    id,
                    Some(&rules),
                    Cause::Review { period: run.period },
                    run.at,
                    Trigger::Review,
                )
                .await
            {
                Ok(Some(_)) => report.changed += 1,
                Ok(None) | Err(EvalError::UnknownDistributor(_)) => {}
                Err(EvalError::Store(e)) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The review run in-process, page by page, without the queue: for
    /// operators' scripts and tests. Same evaluation as the fanned-out one.
    pub async fn review(&self, now: DateTime<Utc>) -> Result<ReviewReport, StoreError> {
        self.review_in_process(Period::Month(self.calendar.month_of(now)), now)
            .await
    }

    /// The day's review in-process (rule sets with rolling windows).
    pub async fn review_day(&self, now: DateTime<Utc>) -> Result<ReviewReport, StoreError> {
        self.review_in_process(Period::Day(self.calendar.day_of(now)), now)
            .await
    }

    async fn review_in_process(
        &self,
        period: Period,
        now: DateTime<Utc>,
    ) -> Result<ReviewReport, StoreError> {
        let mut report = ReviewReport::default();
        if self.table.current_rule_set().await?.is_none() {
            return Ok(report);
        }
        let run = ReviewRun { period, at: now };
        for tier in self
            .table
            .all_tier_ids()
            .await?
            .into_iter()
            .map(Some)
            .chain([None])
        {
            let mut cursor = None;
            loop {
                let (ids, next) = self
                    .table
                    .tier_members_page(tier.as_ref(), cursor.as_deref(), REVIEW_QUERY_SIZE)
                    .await?;
                let page = self.review_distributors(&ids, &run).await?;
                report.reviewed += page.reviewed;
                report.changed += page.changed;
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        tracing::info!(
            reviewed = report.reviewed,
            changed = report.changed,
            "review finished"
        );
        Ok(report)
    }
}
