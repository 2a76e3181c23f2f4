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
use tier_store::ledger::LedgerOutcome;
use tier_store::rules::PublishedRuleSet;
use tier_store::{Queue, StoreError, Table};

/// How often a tier write may lose a race before the message is retried.
const MAX_TIER_ATTEMPTS: u32 = 5;

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

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        // One rule set read per batch, not per message.
        let rules = tokio::sync::OnceCell::new();
        self.batches
            .process(event, |message| async {
                let rules = rules.get_or_try_init(|| self.table.current_rule_set()).await.map_err(Failure::from)?;
                match message {
                    Message::OrderEventV1(e) => self.on_order_event(&e, rules.as_ref()).await,
                }
            })
            .await
    }

    async fn on_order_event(&self, event: &OrderEvent, rules: Option<&PublishedRuleSet>) -> Result<(), Failure> {
        let outcome = self.table.apply_order_event(event, &self.calendar).await?;
        if let LedgerOutcome::Recorded { delta } = &outcome {
            tracing::info!(event_id = %event.event_id, distributor = %event.distributor, ?delta, "metrics updated");
        }
        let Some(rules) = rules else {
            tracing::warn!("no rule set published yet; tiers are not evaluated");
            return Ok(());
        };
        let cause = Cause::OrderEvent { event_id: event.event_id.clone() };
        match self.evaluate(&event.distributor, rules, cause, Utc::now(), Trigger::Event).await {
            Err(EvalError::UnknownDistributor(id)) => Err(Failure::permanent("unknown_distributor", format!("distributor {id} does not exist"))),
            Err(EvalError::Store(e)) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Re-evaluates one distributor and applies a change, if any, with a
    /// write conditional on the tier version it read.
    pub async fn evaluate(&self, id: &DistributorId, rules: &PublishedRuleSet, cause: Cause, now: DateTime<Utc>, trigger: Trigger) -> Result<Option<TierChange>, EvalError> {
        let month = self.calendar.month_of(now);
        for _ in 0..MAX_TIER_ATTEMPTS {
            let (profile, metrics) = self.table.distributor_with_metrics(id).await?.ok_or_else(|| EvalError::UnknownDistributor(id.clone()))?;
            let standing = Standing { tier: profile.tier.as_ref(), since: profile.upgraded_at, locked: profile.tier_locked };
            let Some(change) = tier::decide(&rules.rules, rules.version, standing, &metrics, now, month, trigger, cause.clone()) else {
                return Ok(None);
            };
            if self.table.change_tier(id, profile.tier_version, &change).await? {
                tracing::info!(distributor = %id, from = ?change.from, to = %change.to, direction = ?change.direction, "tier changed");
                return Ok(Some(change));
            }
        }
        Err(StoreError::Contention { what: format!("tier of {id}"), attempts: MAX_TIER_ATTEMPTS }.into())
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
                    match self.evaluate(&id, &rules, Cause::Review { month: self.calendar.month_of(now) }, now, Trigger::Review).await {
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
