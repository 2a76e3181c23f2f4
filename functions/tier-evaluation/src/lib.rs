//! Tier evaluation: consumes order events from SQS, records each one in the
//! ledger exactly once, re-evaluates the distributor's tier and writes any
//! change with its reason. Also runs the scheduled review, which moves
//! tiers when calendar windows roll over (a new month empties "this month").
//!
//! Every step is idempotent, so a redelivered message re-runs safely: the
//! ledger recognises the event, and the evaluation, which always runs,
//! finishes a tier change that a crash may have interrupted.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tier_domain::calendar::BrandCalendar;
use tier_domain::ids::{DistributorId, TierId};
use tier_domain::order::OrderEvent;
use tier_domain::tier::{self, Cause, Standing, TierChange, Trigger};
use tier_messages::Message;
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
        })
    }

    /// One batch: the order events grouped by distributor, each group
    /// applied with one metrics write and at most one tier change, however
    /// many orders of that distributor the batch holds.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.batches
            .process_grouped(
                event,
                |m| match m {
                    Message::OrderEventV1(e) => e.distributor.clone(),
                },
                |messages| async move {
                    let events: Vec<OrderEvent> = messages.into_iter().map(|Message::OrderEventV1(e)| e).collect();
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
            let decide = self.decider(now, Trigger::Event, cause);
            match self.table.apply_group(distributor, chunk, &self.calendar, &decide).await {
                Ok(outcome) => {
                    tracing::info!(%distributor, recorded = outcome.recorded, duplicates = outcome.duplicates, delta = ?outcome.delta, "metrics updated");
                    if let Some(c) = &outcome.change {
                        tracing::info!(%distributor, from = ?c.from, to = %c.to, direction = ?c.direction, "tier changed");
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
    fn decider(&self, now: DateTime<Utc>, trigger: Trigger, cause: Cause) -> impl Fn(&Distributor, &Metrics, Option<&PublishedRuleSet>) -> Option<TierChange> + Send + Sync {
        let month = self.calendar.month_of(now);
        move |profile, metrics, rules| {
            let rules = rules?;
            let standing = Standing { tier: profile.tier.as_ref(), since: profile.upgraded_at, locked: profile.tier_locked };
            tier::decide(&rules.rules, rules.version, standing, metrics, now, month, trigger, cause.clone())
        }
    }

    /// Re-evaluates one distributor and applies a change, if any, guarded by
    /// the versions of its tier and its metrics.
    pub async fn evaluate(&self, id: &DistributorId, cause: Cause, now: DateTime<Utc>, trigger: Trigger) -> Result<Option<TierChange>, EvalError> {
        let decide = self.decider(now, trigger, cause);
        match self.table.apply_group(id, &[], &self.calendar, &decide).await {
            Ok(outcome) => Ok(outcome.change),
            Err(GroupError::UnknownDistributor(id)) => Err(EvalError::UnknownDistributor(id)),
            Err(GroupError::Store(e)) => Err(e.into()),
        }
    }

    /// The scheduled review: every distributor, tier by tier, re-evaluated
    /// as of `now`. Idempotent: a rerun finds nothing left to change.
    pub async fn review(&self, now: DateTime<Utc>) -> Result<ReviewReport, StoreError> {
        let mut report = ReviewReport::default();
        let Some(rules) = self.table.current_rule_set().await? else { return Ok(report) };
        let mut partitions: Vec<Option<TierId>> = rules.rules.tiers().iter().map(|t| Some(t.id.clone())).collect();
        partitions.push(None);
        for tier in partitions {
            let mut start = None;
            loop {
                let (ids, next) = self.table.tier_members(tier.as_ref(), start).await?;
                for id in ids {
                    report.reviewed += 1;
                    match self.evaluate(&id, Cause::Review { month: self.calendar.month_of(now) }, now, Trigger::Review).await {
                        Ok(Some(_)) => report.changed += 1,
                        Ok(None) => {}
                        Err(EvalError::UnknownDistributor(_)) => {}
                        Err(EvalError::Store(e)) => return Err(e),
                    }
                }
                match next {
                    Some(n) => start = Some(n),
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
