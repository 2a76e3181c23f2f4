//! Tier evaluation: consumes order events from SQS, a batch's events grouped
//! by distributor. Each group is one transaction: the events recorded in
//! their orders' ledger entries exactly once, the metrics (one write), the
//! uplines' network metrics and commission, and the tier change the new
//! metrics call for, with its reason. Uplines whose metrics moved are then
//! re-evaluated. Also counts users who sign up through a store as downline
//! users, and runs the scheduled reviews, which move tiers when windows roll
//! over (a new month empties "this month"; rolling windows move every day,
//! so rule sets that read them are reviewed daily), a new rule set's
//! backfill of the ledger, and what-ifs (a draft rule set evaluated against
//! every distributor, writing only tallies), all fanned out through this
//! function's own queue.
//!
//! Every step is idempotent, so a redelivered message re-runs safely: the
//! ledger recognises the event, and the evaluation, which always runs,
//! finishes a tier change that a crash may have interrupted.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tier_domain::calendar::{BrandCalendar, Period};
use tier_domain::ids::{DistributorId, TierId};
use tier_domain::order::OrderEvent;
use tier_domain::tier::{self, Cause, Standing, TierChange, Trigger};
use std::sync::Arc;

use tier_domain::what_if::Tally;
use tier_store::what_if::Listing;
use tier_messages::{Backfill, BackfillPage, WhatIfPage, WhatIfPartition, BackfillPartition, Message, NetworkChanged, ReviewPage, ReviewPartition, ReviewRun, UserRegistered};
use tier_store::reviews::ReviewRecord;
use tier_runtime::sqs::{BatchProcessor, Failure};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_domain::metrics::Metrics;
use tier_store::distributors::Distributor;
use tier_store::ledger::{GroupError, MAX_GROUP};
use tier_store::rules::PublishedRuleSet;
use tier_store::{Queue, StoreError, Table};

pub struct TierEvaluation {
    table: Table,
    batches: BatchProcessor,
    calendar: BrandCalendar,
    /// This function's own queue: the review fans out through it.
    queue: Queue,
    /// The what-if draft last read: (id, instant, draft).
    drafts: std::sync::Mutex<Option<CachedDraft>>,
}

/// Members per review page message: a batch of ten pages (250 evaluations)
/// stays well inside the function's 10-second timeout.
pub const REVIEW_PAGE_SIZE: usize = 25;
/// Members per what-if page message: one evaluation each and no writes
/// but the page's tally (two parallel batch reads and one write a page), so
/// a batch of ten pages, 1,000 evaluations, stays well inside the timeout.
pub const WHAT_IF_PAGE_SIZE: usize = 100;
/// Members listed per query while fanning out: several pages' worth, so
/// that listing, which runs in sequence for a tier, keeps ahead of the
/// evaluations, which run in parallel.
pub const REVIEW_QUERY_SIZE: i32 = 100;
/// Queries one partition message makes before handing on to a
/// continuation of itself, so no invocation runs long.
pub const QUERIES_PER_PARTITION_MESSAGE: usize = 10;
/// Ledger entries a backfill message counts (a transaction each) before it
/// hands on to a continuation: well inside the function's timeout.
pub const BACKFILL_ENTRIES_PER_MESSAGE: usize = 100;

/// A what-if's draft as last read: its run's id and instant, and the draft.
type CachedDraft = (String, DateTime<Utc>, Arc<tier_domain::rules::RuleSet>);

/// Where the decider notes a downgrade it held for a backfill, with the
/// rule set it was held under.
type Held = std::sync::Mutex<Option<PublishedRuleSet>>;

/// What one partition message listed.
#[derive(Debug, Default)]
struct Listed {
    distributors: u64,
    pages: u64,
    finished: bool,
    /// Where the continuation carries on from, if one was sent.
    next: Option<String>,
}

/// What one backfill page message did, for the run's progress.
#[derive(Debug, Default, PartialEq, Eq)]
struct PageWork {
    read: u64,
    counted: u64,
    /// Distributors whose ledger it finished counting.
    distributors: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ReviewReport {
    pub reviewed: u64,
    pub changed: u64,
}

impl TierEvaluation {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        let calendar = BrandCalendar::parse(env.get("BRAND_TIMEZONE").unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE))
            .map_err(|e| ConfigError::Invalid { name: "BRAND_TIMEZONE", reason: e.to_string() })?;
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            batches: BatchProcessor::new(Queue::new(aws.sqs.clone(), env.require("DLQ_URL")?), env.parse_or("MAX_RECEIVE_COUNT", 5u32)?),
            calendar,
            queue: Queue::new(aws.sqs.clone(), env.require("TIER_EVENTS_QUEUE_URL")?),
            drafts: std::sync::Mutex::new(None),
        })
    }

    /// One batch: the order events grouped by distributor, each group
    /// applied with one metrics write and at most one tier change, however
    /// many orders of that distributor the batch holds.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process_grouped(
                event,
                // Order events group by distributor; review messages go alone.
                |m| match m {
                    Message::OrderEventV1(e) => (0, e.distributor.to_string()),
                    other => (1, other.id()),
                },
                |messages| async move {
                    let mut events = Vec::new();
                    for m in messages {
                        match m {
                            Message::OrderEventV1(e) => events.push(e),
                            Message::ReviewPartitionV1(p) => self.on_review_partition(&p).await?,
                            Message::ReviewPageV1(p) => self.on_review_page(&p).await?,
                            Message::NetworkChangedV1(n) => self.on_network_changed(&n).await?,
                            Message::UserRegisteredV1(u) => self.on_user_registered(&u).await?,
                            Message::BackfillPartitionV1(p) => self.on_backfill_partition(&p).await?,
                            Message::BackfillPageV1(p) => self.on_backfill_page(&p).await?,
                            Message::WhatIfPartitionV1(p) => self.on_what_if_partition(&p).await?,
                            Message::WhatIfPageV1(p) => self.on_what_if_page(&p).await?,
                        }
                    }
                    self.on_order_events(&events).await
                },
            )
            .await
    }

    async fn on_order_events(&self, events: &[OrderEvent]) -> Result<(), Failure> {
        let Some(first) = events.first() else { return Ok(()) };
        let distributor = &first.distributor;
        let now = Utc::now();
        for chunk in events.chunks(MAX_GROUP) {
            // The last event of the group is the cause a change is recorded with.
            let cause = Cause::OrderEvent { event_id: chunk[chunk.len() - 1].event_id.clone() };
            let held = Arc::new(Held::default());
            let decide = self.decider(now, Trigger::Event, cause, held.clone());
            match self.table.apply_group(distributor, chunk, &self.calendar, self.calendar.day_of(now), None, &decide).await {
                Ok(outcome) => {
                    self.count_if_missed(distributor, &held, now).await?;
                    tracing::info!(%distributor, recorded = outcome.recorded, duplicates = outcome.duplicates, delta = ?outcome.delta, "metrics updated");
                    if let Some(c) = &outcome.change {
                        tracing::info!(%distributor, from = ?c.from, to = %c.to, direction = ?c.direction, "tier changed");
                    }
                    // Uplines' metrics moved: their tiers may move with them. A
                    // redelivery re-evaluates every upline, in case the first
                    // delivery committed and then failed before doing so.
                    let uplines = if outcome.duplicates > 0 { &outcome.ancestors } else { &outcome.commission_receivers };
                    for receiver in uplines {
                        let cause = Cause::Commission { event_id: chunk[chunk.len() - 1].event_id.clone() };
                        match self.evaluate(receiver, cause, now, Trigger::Event).await {
                            Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                            Err(EvalError::Store(e)) => return Err(e.into()),
                        }
                    }
                }
                Err(GroupError::UnknownDistributor(id)) => return Err(Failure::permanent("unknown_distributor", format!("distributor {id} does not exist"))),
                Err(GroupError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The tier decision, as the store applies it atomically with the metrics
    /// it is drawn from.
    fn decider(&self, now: DateTime<Utc>, trigger: Trigger, cause: Cause, held: Arc<Held>) -> impl Fn(&Distributor, &Metrics, Option<&PublishedRuleSet>) -> Option<TierChange> + Send + Sync {
        let today = self.calendar.day_of(now);
        move |profile, metrics, rules| {
            let rules = rules?;
            // One change per review period: a redelivered page, or a
            // distributor met again in another tier's pages, is left alone.
            // Nor a page delayed past a later period's review.
            if let Cause::Review { period } = &cause
                && profile.last_review.is_some_and(|last| last.first_day() >= period.first_day())
            {
                return None;
            }
            let standing = Standing { tier: profile.tier.as_ref(), since: profile.upgraded_at, locked: profile.tier_locked };
            let change = tier::decide(&rules.rules, rules.version, standing, metrics, now, today, trigger, cause.clone())?;
            // While a new rule set's backfill has not yet counted this
            // distributor's ledger, its new windows may read short: it may
            // move up, never down.
            let counting = rules.backfill && profile.created_at < rules.published_at && profile.backfilled.is_none_or(|v| v < rules.version);
            if counting && change.direction == tier::Direction::Down {
                tracing::info!(distributor = %profile.id, to = %change.to, "downgrade held until the backfill has counted the ledger");
                *held.lock().expect("not poisoned") = Some(rules.clone());
                return None;
            }
            Some(change)
        }
    }

    /// A downgrade held once the rule set's backfill has listed every
    /// partition (or when it never started) means the backfill missed the
    /// distributor (its tier moved under the listing in both passes): its
    /// own ledger is counted now, through the queue, which ends the hold.
    async fn count_if_missed(&self, id: &DistributorId, held: &Held, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(rules) = held.lock().expect("not poisoned").take() else { return Ok(()) };
        if self.table.backfill_progress(rules.version).await?.is_some_and(|p| p.partitions_listed < p.partitions) {
            return Ok(()); // still under way: it will come to this distributor
        }
        let Some(b) = rules.rules.backfill_from(None) else { return Ok(()) };
        // Once per distributor and version, however many evaluations hold
        // its downgrades until the page has counted its ledger.
        if !self.table.claim_ledger_count(id, rules.version).await? {
            return Ok(());
        }
        tracing::warn!(distributor = %id, rule_set = rules.version, "the backfill missed this distributor; counting its ledger");
        let page = BackfillPage { backfill: Backfill::new(rules.version, b, self.calendar.day_of(now)), distributors: vec![id.clone()], cursor: None };
        if let Err(e) = self.queue.send(&Message::BackfillPageV1(page)).await {
            // Not sent: the next held downgrade may claim it again.
            self.table.release_ledger_count(id, rules.version).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Re-evaluates one distributor and applies a change, if any, guarded by
    /// the versions of its tier and its metrics.
    pub async fn evaluate(&self, id: &DistributorId, cause: Cause, now: DateTime<Utc>, trigger: Trigger) -> Result<Option<TierChange>, EvalError> {
        self.evaluate_with(id, None, cause, now, trigger).await
    }

    /// As [`TierEvaluation::evaluate`], with the current rule set when the
    /// caller already holds it.
    async fn evaluate_with(
        &self,
        id: &DistributorId,
        rules: Option<&PublishedRuleSet>,
        cause: Cause,
        now: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Option<TierChange>, EvalError> {
        let held = Arc::new(Held::default());
        let decide = self.decider(now, trigger, cause, held.clone());
        match self.table.apply_group(id, &[], &self.calendar, self.calendar.day_of(now), rules, &decide).await {
            Ok(outcome) => {
                self.count_if_missed(id, &held, now).await?;
                Ok(outcome.change)
            }
            Err(GroupError::UnknownDistributor(id)) => Err(EvalError::UnknownDistributor(id)),
            Err(GroupError::Store(e)) => Err(e.into()),
        }
    }

    /// What the schedule calls: starts the review of the current period
    /// (or finds the run already started, and its instant) and fans it out,
    /// one partition message per tier. Safe to call again: pages are
    /// evaluated at the run's instant, and evaluating twice changes nothing.
    pub async fn start_review(&self, now: DateTime<Utc>) -> Result<ReviewRecord, StoreError> {
        let published = self.table.current_rule_set().await?.is_some();
        self.start_review_of(Period::Month(self.calendar.month_of(now)), now, published).await
    }

    /// What the daily schedule calls: where the rule set reads rolling
    /// windows, which move every day without any event, the day's review
    /// (as [`TierEvaluation::start_review`], one change per day at most).
    /// `None` without rolling windows, and on the 1st, which the month's
    /// review covers.
    pub async fn start_daily_review(&self, now: DateTime<Utc>) -> Result<Option<ReviewRecord>, StoreError> {
        let today = self.calendar.day_of(now);
        let rolling = self.table.current_rule_set().await?.is_some_and(|r| !r.rules.daily_spans().is_empty());
        if !rolling || today.day_of_month() == 1 {
            return Ok(None);
        }
        self.start_review_of(Period::Day(today), now, true).await.map(Some)
    }

    /// Starts (or finds) the run of `period` and, if a rule set is
    /// `published`, fans it out.
    async fn start_review_of(&self, period: Period, now: DateTime<Utc>, published: bool) -> Result<ReviewRecord, StoreError> {
        let run = self.table.start_review(period, now).await?;
        if !published {
            return Ok(run);
        }
        let review = ReviewRun { period: run.period, at: run.at };
        // Every tier any version has had: members of a dropped tier too.
        for tier in self.table.all_tier_ids().await?.into_iter().map(Some).chain([None]) {
            self.queue.send(&Message::ReviewPartitionV1(ReviewPartition { run: review.clone(), tier, cursor: None })).await?;
        }
        tracing::info!(period = %run.period, at = %run.at, created = run.created, "review fanned out");
        Ok(run)
    }

    async fn on_review_partition(&self, p: &ReviewPartition) -> Result<(), Failure> {
        self.fan_out(
            p.tier.as_ref(),
            p.cursor.clone(),
            REVIEW_PAGE_SIZE,
            |page| Message::ReviewPageV1(ReviewPage { run: p.run.clone(), distributors: page }),
            |cursor| Message::ReviewPartitionV1(ReviewPartition { run: p.run.clone(), tier: p.tier.clone(), cursor: Some(cursor) }),
        )
        .await
        .map(|_| ())
    }

    /// Lists a tier's members from `cursor` into page messages, and hands
    /// on to a continuation (`more`) before the function runs out of time.
    /// Says how many it listed and whether it reached the partition's end.
    async fn fan_out(
        &self,
        tier: Option<&TierId>,
        mut cursor: Option<String>,
        page_size: usize,
        page: impl Fn(Vec<DistributorId>) -> Message,
        more: impl Fn(String) -> Message,
    ) -> Result<Listed, Failure> {
        let mut listed = Listed::default();
        for _ in 0..QUERIES_PER_PARTITION_MESSAGE {
            let (ids, next) = self.table.tier_members_page(tier, cursor.as_deref(), REVIEW_QUERY_SIZE).await?;
            listed.distributors += ids.len() as u64;
            for chunk in ids.chunks(page_size) {
                self.queue.send(&page(chunk.to_vec())).await?;
                listed.pages += 1;
            }
            match next {
                Some(n) => cursor = Some(n),
                None => {
                    listed.finished = true;
                    return Ok(listed);
                }
            }
        }
        // More members: a continuation carries on from here.
        if let Some(c) = cursor {
            self.queue.send(&more(c.clone())).await?;
            listed.next = Some(c);
        }
        Ok(listed)
    }

    async fn on_backfill_partition(&self, p: &BackfillPartition) -> Result<(), Failure> {
        let listed = self
            .fan_out(
                p.tier.as_ref(),
                p.cursor.clone(),
                REVIEW_PAGE_SIZE,
                |page| Message::BackfillPageV1(BackfillPage { backfill: p.backfill.clone(), distributors: page, cursor: None }),
                |cursor| Message::BackfillPartitionV1(BackfillPartition { cursor: Some(cursor), ..p.clone() }),
            )
            .await?;
        let finished = listed.finished.then(|| p.partition_id());
        self.table.record_backfill_listing(p.backfill.rule_set_version, p.start, listed.distributors, finished.as_deref()).await?;
        Ok(())
    }

    /// Counts each distributor's ledger into what the rule set reads, at
    /// most [`BACKFILL_ENTRIES_PER_MESSAGE`] ledger entries a message (each
    /// is a transaction), handing on to a continuation from where it
    /// stopped. Tiers follow at the next event or review, as for any new
    /// rule set.
    async fn on_backfill_page(&self, page: &BackfillPage) -> Result<(), Failure> {
        let mut work = PageWork::default();
        let result = self.backfill_page(page, &mut work).await;
        // What ran is recorded even when the page is to be retried.
        if work != PageWork::default() {
            self.table.record_backfill_page(page.backfill.rule_set_version, Utc::now(), work.read, work.counted, work.distributors).await?;
        }
        result
    }

    async fn backfill_page(&self, page: &BackfillPage, work: &mut PageWork) -> Result<(), Failure> {
        let b = &page.backfill;
        let mut budget = BACKFILL_ENTRIES_PER_MESSAGE;
        let mut cursor = page.cursor.clone();
        for (i, id) in page.distributors.iter().enumerate() {
            loop {
                let Some((done, next)) = self.table.backfill_distributor(id, &b.daily, &b.skus, b.since, cursor.as_deref(), budget as i32).await? else { break };
                tracing::info!(distributor = %id, orders = done.orders, counted = done.counted, rule_set = b.rule_set_version, "ledger backfilled");
                work.read += done.orders as u64;
                work.counted += done.counted as u64;
                budget = budget.saturating_sub(done.orders.max(1));
                cursor = next;
                match (&cursor, budget) {
                    (None, _) => {
                        // Its ledger is counted: its new windows read whole.
                        work.distributors += u64::from(self.table.mark_backfilled(id, b.rule_set_version).await?);
                        break;
                    }
                    (Some(_), 0) => {
                        let rest = BackfillPage { backfill: b.clone(), distributors: page.distributors[i..].to_vec(), cursor: cursor.clone() };
                        self.queue.send(&Message::BackfillPageV1(rest)).await?;
                        return Ok(());
                    }
                    (Some(_), _) => {}
                }
            }
            cursor = None;
            if budget == 0 && i + 1 < page.distributors.len() {
                let rest = BackfillPage { backfill: b.clone(), distributors: page.distributors[i + 1..].to_vec(), cursor: None };
                self.queue.send(&Message::BackfillPageV1(rest)).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn on_what_if_partition(&self, p: &WhatIfPartition) -> Result<(), Failure> {
        let listing = p.listing_id();
        let next_page = std::sync::atomic::AtomicUsize::new(0);
        let listed = self
            .fan_out(
                p.tier.as_ref(),
                p.cursor.clone(),
                WHAT_IF_PAGE_SIZE,
                |page| {
                    let n = next_page.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Message::WhatIfPageV1(WhatIfPage { run: p.run.clone(), page: format!("{listing}#{n}"), tier: p.tier.clone(), distributors: page })
                },
                |cursor| Message::WhatIfPartitionV1(WhatIfPartition { cursor: Some(cursor), ..p.clone() }),
            )
            .await?;
        let next = listed.next.map(|c| WhatIfPartition { cursor: Some(c), ..p.clone() }.listing_id());
        self.table.record_what_if_listing(&p.run.id, p.run.at, &listing, &Listing { pages: listed.pages, next }).await?;
        Ok(())
    }

    /// A page of a what-if: its distributors evaluated against the draft
    /// at the run's instant, as a review would; the tally is all it writes.
    /// A distributor whose tier changed since it was listed is left to the
    /// partition it is in now.
    async fn on_what_if_page(&self, p: &WhatIfPage) -> Result<(), Failure> {
        // Expired (a week on), never started, or an older run of the id.
        let Some(draft) = self.what_if_draft(&p.run).await? else { return Ok(()) };
        let today = self.calendar.day_of(p.run.at);
        let mut tally = Tally::default();
        for (d, metrics) in self.table.distributors_with_metrics(&p.distributors, today, &draft.daily_spans()).await? {
            if d.tier != p.tier {
                tally.skipped += 1;
                continue;
            }
            let standing = Standing { tier: d.tier.as_ref(), since: d.upgraded_at, locked: d.tier_locked };
            tally.evaluate(&draft, standing, &d.id, &metrics, p.run.at, today);
        }
        self.table.record_what_if_page(&p.run.id, p.run.at, &p.page, &tally).await?;
        Ok(())
    }

    /// A what-if's draft, read once per warm function: its thousands of
    /// pages would otherwise all read the same item.
    async fn what_if_draft(&self, run: &tier_messages::WhatIfRun) -> Result<Option<Arc<tier_domain::rules::RuleSet>>, Failure> {
        if let Some((id, at, draft)) = self.drafts.lock().expect("not poisoned").as_ref()
            && id == &run.id
            && *at == run.at
        {
            return Ok(Some(draft.clone()));
        }
        let Some(stored) = self.table.what_if_run(&run.id).await?.filter(|r| r.at == run.at) else { return Ok(None) };
        let invalid = |e: String| Failure::permanent("invalid_what_if", format!("what-if {}: {e}", run.id));
        let doc = serde_json::from_value(stored.draft).map_err(|e| invalid(e.to_string()))?;
        let draft = Arc::new(tier_domain::rules::RuleSet::new(doc).map_err(|e| invalid(format!("{e:?}")))?);
        *self.drafts.lock().expect("not poisoned") = Some((run.id.clone(), run.at, draft.clone()));
        Ok(Some(draft))
    }

    async fn on_network_changed(&self, n: &NetworkChanged) -> Result<(), Failure> {
        let now = Utc::now();
        for ancestor in &n.ancestors {
            match self.evaluate(ancestor, Cause::Network { downline: n.downline.clone() }, now, Trigger::Event).await {
                Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                Err(EvalError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A user signed up: counted once under the store's distributor and in
    /// its uplines' networks, then each of them re-evaluated (also on a
    /// redelivery, in case the first delivery stopped after counting).
    async fn on_user_registered(&self, u: &UserRegistered) -> Result<(), Failure> {
        let registered = match self.table.register_downline_user(&u.distributor, &u.user).await {
            Ok(r) => r,
            Err(GroupError::UnknownDistributor(id)) => return Err(Failure::permanent("unknown_distributor", format!("distributor {id} does not exist"))),
            Err(GroupError::Store(e)) => return Err(e.into()),
        };
        tracing::info!(distributor = %u.distributor, user = %u.user, created = registered.created, "downline user registered");
        let now = Utc::now();
        let cause = Cause::UserRegistered { event_id: u.event_id.clone(), distributor: u.distributor.clone() };
        for id in std::iter::once(&u.distributor).chain(&registered.ancestors) {
            match self.evaluate(id, cause.clone(), now, Trigger::Event).await {
                Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                Err(EvalError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn on_review_page(&self, page: &ReviewPage) -> Result<(), Failure> {
        let report = self.review_distributors(&page.distributors, &page.run).await?;
        self.table.record_review_page(page.run.period, report.reviewed, report.changed).await?;
        Ok(())
    }

    /// A page of a review: the rule set read once for the page, not once
    /// per distributor.
    async fn review_distributors(&self, ids: &[DistributorId], run: &ReviewRun) -> Result<ReviewReport, StoreError> {
        let mut report = ReviewReport::default();
        let Some(rules) = self.table.current_rule_set().await? else { return Ok(report) };
        for id in ids {
            report.reviewed += 1;
            match self.evaluate_with(id, Some(&rules), Cause::Review { period: run.period }, run.at, Trigger::Review).await {
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
        self.review_in_process(Period::Month(self.calendar.month_of(now)), now).await
    }

    /// The day's review in-process (rule sets with rolling windows).
    pub async fn review_day(&self, now: DateTime<Utc>) -> Result<ReviewReport, StoreError> {
        self.review_in_process(Period::Day(self.calendar.day_of(now)), now).await
    }

    async fn review_in_process(&self, period: Period, now: DateTime<Utc>) -> Result<ReviewReport, StoreError> {
        let mut report = ReviewReport::default();
        if self.table.current_rule_set().await?.is_none() {
            return Ok(report);
        }
        let run = ReviewRun { period, at: now };
        for tier in self.table.all_tier_ids().await?.into_iter().map(Some).chain([None]) {
            let mut cursor = None;
            loop {
                let (ids, next) = self.table.tier_members_page(tier.as_ref(), cursor.as_deref(), REVIEW_QUERY_SIZE).await?;
                let page = self.review_distributors(&ids, &run).await?;
                report.reviewed += page.reviewed;
                report.changed += page.changed;
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        tracing::info!(reviewed = report.reviewed, changed = report.changed, "review finished");
        Ok(report)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error(transparent)]
    Store(#[from] StoreError),
}
