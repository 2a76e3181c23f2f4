//! Tier evaluation: consumes order events from SQS, a batch's events grouped
//! by distributor. Each group is one transaction: the events recorded in
//! their orders' ledger entries exactly once, the metrics (one write), the
//! upline's downline metrics, the receivers' commission, and the tier
//! change the new metrics call for, with its reason. Uplines whose metrics
//! moved are then re-evaluated, and the ancestors above the upline pull
//! the change into their network metrics through the roll-up queue, one
//! level a window ([`network`]). Also counts users who sign up through a
//! store as downline users, and runs the scheduled reviews, which move
//! tiers when windows roll over (a new month empties "this month"; rolling
//! windows move every day, so rule sets that read them are reviewed
//! daily), a new rule set's
//! backfill of the ledger, and what-ifs (a draft rule set evaluated against
//! every distributor, writing only tallies), all fanned out through this
//! function's own queue. A daily job publishes the brand's alerts (regions
//! turned declining, price disorder, a review's downgrades) to its topic.
//!
//! Every step is idempotent, so a redelivered message re-runs safely: the
//! ledger recognises the event, and the evaluation, which always runs,
//! finishes a tier change that a crash may have interrupted.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::DistributorId;
use tier_domain::metrics::Metrics;
use tier_domain::order::OrderEvent;
use tier_domain::tier::{self, Cause, Standing, TierChange, Trigger};
use tier_messages::{Backfill, BackfillPage, Message, NetworkChanged, UserRegistered};
use tier_runtime::sqs::{BatchProcessor, Failure};
use tier_runtime::{AwsClients, ConfigError, Env};
use tier_store::distributors::Distributor;
use tier_store::ledger::{GroupError, GroupOutcome, MAX_GROUP};
use tier_store::rules::PublishedRuleSet;
use tier_store::{Queue, StoreError, Table};

mod alerts;
mod backfill;
mod invocation;
mod network;
mod review;
mod what_if;

pub use alerts::{AlertsError, AlertsReport};
pub use backfill::BACKFILL_ENTRIES_PER_MESSAGE;
pub use invocation::{Invocation, InvocationError, Schedule};
pub use review::{
    QUERIES_PER_PARTITION_MESSAGE, REVIEW_PAGE_SIZE, REVIEW_QUERY_SIZE, ReviewReport,
};
pub use what_if::WHAT_IF_PAGE_SIZE;

/// What one group's write did, in the operators' metrics: events recorded,
/// a tier moved up or down, commission earned.
fn count_applied(outcome: &GroupOutcome) {
    use tier_runtime::metrics::{Unit, emit};
    let mut values = Vec::new();
    if outcome.recorded > 0 {
        values.push(("OrderEventsApplied", outcome.recorded as f64, Unit::Count));
    }
    match outcome.change.as_ref().map(|c| c.direction) {
        Some(tier::Direction::Up) => values.push(("TierChangesUp", 1.0, Unit::Count)),
        Some(tier::Direction::Down) => values.push(("TierChangesDown", 1.0, Unit::Count)),
        None => {}
    }
    if !outcome.commission_earned.is_zero() {
        // CNY, as a plain number: a metric is a float by CloudWatch's
        // definition, and this one is only watched, never summed into money.
        use rust_decimal::prelude::ToPrimitive;
        let earned = outcome
            .commission_earned
            .amount()
            .to_f64()
            .unwrap_or_default();
        values.push(("CommissionEarned", earned, Unit::None));
    }
    emit(&[("Function", "tier-evaluation")], &values);
}

pub struct TierEvaluation {
    table: Table,
    batches: BatchProcessor,
    calendar: BrandCalendar,
    /// This function's own queue: the review fans out through it.
    queue: Queue,
    /// The FIFO queue of network pulls (see [`tier_domain::network`]).
    rollup: Queue,
    /// The roll-up window: one pull per upline and downline in each.
    rollup_seconds: u32,
    /// The what-if draft last read: (id, instant, draft).
    drafts: std::sync::Mutex<Option<what_if::CachedDraft>>,
    /// Where the daily alerts job publishes; `None` without
    /// `ALERTS_TOPIC_ARN`, when the job refuses to run.
    alerts: Option<tier_store::alerts::Topic>,
    /// When a region counts as declining, for the alerts.
    decline: tier_domain::analytics::DeclineRule,
}

/// Where the decider notes a downgrade it held for a backfill, with the
/// rule set it was held under.
type Held = std::sync::Mutex<Option<PublishedRuleSet>>;

impl TierEvaluation {
    pub fn from_env(env: &Env, aws: &AwsClients) -> Result<Self, ConfigError> {
        let calendar = BrandCalendar::parse(
            env.get("BRAND_TIMEZONE")
                .unwrap_or(tier_domain::calendar::DEFAULT_TIMEZONE),
        )
        .map_err(|e| ConfigError::Invalid {
            name: "BRAND_TIMEZONE",
            reason: e.to_string(),
        })?;
        Ok(Self {
            table: Table::new(aws.dynamodb.clone(), env.require("TABLE_NAME")?),
            batches: BatchProcessor::new(
                Queue::new(aws.sqs.clone(), env.require("DLQ_URL")?),
                env.parse_or("MAX_RECEIVE_COUNT", 5u32)?,
                "tier-evaluation",
            ),
            calendar,
            queue: Queue::new(aws.sqs.clone(), env.require("TIER_EVENTS_QUEUE_URL")?),
            rollup: Queue::new(aws.sqs.clone(), env.require("ROLLUP_QUEUE_URL")?),
            rollup_seconds: env.parse_or("NETWORK_ROLLUP_SECONDS", 2u32)?,
            drafts: std::sync::Mutex::new(None),
            alerts: env
                .get("ALERTS_TOPIC_ARN")
                .filter(|arn| !arn.is_empty())
                .map(|arn| tier_store::alerts::Topic::new(aws_sdk_sns::Client::new(&aws.sdk), arn)),
            decline: tier_runtime::env::decline_rule(env)?,
        })
    }

    /// One batch: the order events grouped by distributor, each group
    /// applied with one metrics write and at most one tier change, however
    /// many orders of that distributor the batch holds.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process_grouped(
                event,
                // Order events group by distributor, pulls by upline; review
                // messages go alone.
                |m| match m {
                    Message::OrderEventV1(e) => (0, e.distributor.to_string()),
                    Message::NetworkPullV1(p) => (2, p.upline.to_string()),
                    other => (1, other.id()),
                },
                |messages, attempt| async move {
                    let mut events = Vec::new();
                    let mut pulls = Vec::new();
                    for m in messages {
                        match m {
                            Message::OrderEventV1(e) => events.push(e),
                            Message::NetworkPullV1(p) => pulls.push(p),
                            Message::ReviewPartitionV1(p) => self.on_review_partition(&p).await?,
                            Message::ReviewPageV1(p) => self.on_review_page(&p).await?,
                            Message::NetworkChangedV1(n) => self.on_network_changed(&n).await?,
                            Message::UserRegisteredV1(u) => self.on_user_registered(&u).await?,
                            Message::BackfillPartitionV1(p) => {
                                self.on_backfill_partition(&p).await?
                            }
                            Message::BackfillPageV1(p) => self.on_backfill_page(&p).await?,
                            Message::WhatIfPartitionV1(p) => self.on_what_if_partition(&p).await?,
                            Message::WhatIfPageV1(p) => self.on_what_if_page(&p).await?,
                            // The order detail consumer's, or stock allocation's:
                            // one here was misrouted.
                            other @ (Message::DetailFetchV1(_)
                            | Message::BackorderFillV1(_)
                            | Message::ReservePlanV1(_)) => {
                                return Err(Failure::permanent(
                                    "unexpected_message",
                                    format!("tier evaluation does not handle {}", other.id()),
                                ));
                            }
                        }
                    }
                    self.on_pulls(&pulls, attempt.receive > 1).await?;
                    self.on_order_events(&events).await
                },
            )
            .await
    }

    async fn on_order_events(&self, events: &[OrderEvent]) -> Result<(), Failure> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let distributor = &first.distributor;
        let now = Utc::now();
        for chunk in events.chunks(MAX_GROUP) {
            // The last event of the group is the cause a change is recorded with.
            let cause = Cause::OrderEvent {
                event_id: chunk[chunk.len() - 1].event_id.clone(),
            };
            let held = Arc::new(Held::default());
            let decide = self.decider(now, Trigger::Event, cause, held.clone());
            match self
                .table
                .apply_group(
                    distributor,
                    chunk,
                    &self.calendar,
                    self.calendar.day_of(now),
                    None,
                    &decide,
                )
                .await
            {
                Ok(outcome) => {
                    self.count_if_missed(distributor, &held, now).await?;
                    tracing::info!(%distributor, recorded = outcome.recorded, duplicates = outcome.duplicates, delta = ?outcome.delta, "metrics updated");
                    count_applied(&outcome);
                    if let Some(c) = &outcome.change {
                        tracing::info!(%distributor, from = ?c.from, to = %c.to, direction = ?c.direction, "tier changed");
                    }
                    // The ancestors above the upline take the seller's results
                    // from the upline's network, by pull.
                    self.signal_pull(&outcome.ancestors, now).await?;
                    if outcome.ranks_stale {
                        self.signal_ranks(distributor, now).await?;
                    }
                    // Uplines' metrics moved: their tiers may move with them. A
                    // redelivery re-evaluates both receivers, in case the first
                    // delivery committed and then failed before doing so.
                    let uplines = if outcome.duplicates > 0 {
                        &outcome.ancestors[..outcome.ancestors.len().min(2)]
                    } else {
                        &outcome.commission_receivers[..]
                    };
                    for receiver in uplines {
                        let cause = Cause::Commission {
                            event_id: chunk[chunk.len() - 1].event_id.clone(),
                        };
                        match self.evaluate(receiver, cause, now, Trigger::Event).await {
                            Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                            Err(EvalError::Store(e)) => return Err(e.into()),
                        }
                    }
                }
                Err(GroupError::UnknownDistributor(id)) => return Err(unknown_distributor(&id)),
                Err(GroupError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The tier decision, as the store applies it atomically with the metrics
    /// it is drawn from.
    fn decider(
        &self,
        now: DateTime<Utc>,
        trigger: Trigger,
        cause: Cause,
        held: Arc<Held>,
    ) -> impl Fn(&Distributor, &Metrics, Option<&PublishedRuleSet>) -> Option<TierChange> + Send + Sync
    {
        let today = self.calendar.day_of(now);
        move |profile, metrics, rules| {
            let rules = rules?;
            // One change per review period: a redelivered page, or a
            // distributor met again in another tier's pages, is left alone.
            // Nor a page delayed past a later period's review.
            if let Cause::Review { period } = &cause
                && profile
                    .last_review
                    .is_some_and(|last| last.first_day() >= period.first_day())
            {
                return None;
            }
            let standing = Standing {
                tier: profile.tier.as_ref(),
                since: profile.upgraded_at,
                locked: profile.tier_locked,
            };
            let change = tier::decide(
                &rules.rules,
                rules.version,
                standing,
                metrics,
                now,
                today,
                trigger,
                cause.clone(),
            )?;
            // While a new rule set's backfill has not yet counted this
            // distributor's ledger, its new windows may read short: it may
            // move up, never down.
            let counting = rules.backfill
                && profile.created_at < rules.published_at
                && profile.backfilled.is_none_or(|v| v < rules.version);
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
    async fn count_if_missed(
        &self,
        id: &DistributorId,
        held: &Held,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(rules) = held.lock().expect("not poisoned").take() else {
            return Ok(());
        };
        if self
            .table
            .backfill_progress(rules.version)
            .await?
            .is_some_and(|p| p.partitions_listed < p.partitions)
        {
            return Ok(()); // still under way: it will come to this distributor
        }
        let Some(b) = rules.rules.backfill_from(None) else {
            return Ok(());
        };
        // Once per distributor and version, however many evaluations hold
        // its downgrades until the page has counted its ledger.
        if !self.table.claim_ledger_count(id, rules.version).await? {
            return Ok(());
        }
        tracing::warn!(distributor = %id, rule_set = rules.version, "the backfill missed this distributor; counting its ledger");
        let page = BackfillPage {
            backfill: Backfill::new(rules.version, b, self.calendar.day_of(now)),
            distributors: vec![id.clone()],
            cursor: None,
        };
        if let Err(e) = self.queue.send(&Message::BackfillPageV1(page)).await {
            // Not sent: the next held downgrade may claim it again.
            self.table.release_ledger_count(id, rules.version).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Re-evaluates one distributor and applies a change, if any, guarded by
    /// the versions of its tier and its metrics.
    pub async fn evaluate(
        &self,
        id: &DistributorId,
        cause: Cause,
        now: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Option<TierChange>, EvalError> {
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
        match self
            .table
            .apply_group(
                id,
                &[],
                &self.calendar,
                self.calendar.day_of(now),
                rules,
                &decide,
            )
            .await
        {
            Ok(outcome) => {
                self.count_if_missed(id, &held, now).await?;
                count_applied(&outcome);
                Ok(outcome.change)
            }
            Err(GroupError::UnknownDistributor(id)) => Err(EvalError::UnknownDistributor(id)),
            Err(GroupError::Store(e)) => Err(e.into()),
        }
    }

    /// A distributor joined: its upline counted it in the registration's
    /// transaction and is re-evaluated; the ancestors above count it by
    /// pull, and are re-evaluated as they do.
    async fn on_network_changed(&self, n: &NetworkChanged) -> Result<(), Failure> {
        let now = Utc::now();
        self.signal_pull(&n.ancestors, now).await?;
        for ancestor in n.ancestors.iter().take(1) {
            match self
                .evaluate(
                    ancestor,
                    Cause::Network {
                        downline: n.downline.clone(),
                    },
                    now,
                    Trigger::Event,
                )
                .await
            {
                Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                Err(EvalError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A user signed up: counted once under the store's distributor and in
    /// its upline's network, then both re-evaluated (also on a redelivery,
    /// in case the first delivery stopped after counting). The ancestors
    /// above count it by pull.
    async fn on_user_registered(&self, u: &UserRegistered) -> Result<(), Failure> {
        let registered = match self
            .table
            .register_downline_user(&u.distributor, &u.user)
            .await
        {
            Ok(r) => r,
            Err(GroupError::UnknownDistributor(id)) => return Err(unknown_distributor(&id)),
            Err(GroupError::Store(e)) => return Err(e.into()),
        };
        tracing::info!(distributor = %u.distributor, user = %u.user, created = registered.created, "downline user registered");
        let now = Utc::now();
        let cause = Cause::UserRegistered {
            event_id: u.event_id.clone(),
            distributor: u.distributor.clone(),
        };
        self.signal_pull(&registered.ancestors, now).await?;
        for id in std::iter::once(&u.distributor).chain(registered.ancestors.iter().take(1)) {
            match self.evaluate(id, cause.clone(), now, Trigger::Event).await {
                Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
                Err(EvalError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A message about a distributor that does not exist: it never will by
/// retrying, so it is dead-lettered at once.
fn unknown_distributor(id: &DistributorId) -> Failure {
    Failure::permanent(
        "unknown_distributor",
        format!("distributor {id} does not exist"),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error(transparent)]
    Store(#[from] StoreError),
}
