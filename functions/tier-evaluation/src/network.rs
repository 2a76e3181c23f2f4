//! The network roll-up's consumer side: pulls from the FIFO roll-up queue,
//! grouped by upline, each followed by the upline's evaluation and a
//! signal to the next upline up (see [`tier_domain::network`]).

use chrono::{DateTime, Utc};
use tier_domain::ids::DistributorId;
use tier_domain::tier::{Cause, Trigger};
use tier_messages::NetworkPull;
use tier_runtime::sqs::Failure;
use tier_store::network::PullError;

use crate::{EvalError, TierEvaluation, unknown_distributor};

impl TierEvaluation {
    /// Asks the second ancestor in `ancestors` (upline first) to pull the
    /// first's network: the way a change counted at the upline reaches
    /// everyone above it. Nothing to ask below two levels.
    pub(crate) async fn signal_pull(
        &self,
        ancestors: &[DistributorId],
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let [downline, upline, ..] = ancestors else {
            return Ok(());
        };
        self.send_pull(upline, downline, now).await
    }

    /// Asks for a spread seller's ranks to be set from its shards, once a
    /// window however many of its orders arrive: a pull of itself.
    pub(crate) async fn signal_ranks(
        &self,
        seller: &DistributorId,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        self.send_pull(seller, seller, now).await
    }

    async fn send_pull(
        &self,
        upline: &DistributorId,
        downline: &DistributorId,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let pull = NetworkPull {
            upline: upline.clone(),
            downline: downline.clone(),
        };
        self.rollup
            .send_pulls(&[pull], self.rollup_seconds, now)
            .await?;
        Ok(())
    }

    /// One upline's pulls of a batch, all in one transaction. When its
    /// network moved, the upline is evaluated (once, however many orders
    /// arrived below it) and the next upline asked to pull. A redelivery
    /// does both even when nothing moves now: its first delivery may have
    /// committed the pull and stopped before them.
    pub(crate) async fn on_pulls(
        &self,
        pulls: &[NetworkPull],
        redelivered: bool,
    ) -> Result<(), Failure> {
        let Some(first) = pulls.first() else {
            return Ok(());
        };
        let upline = &first.upline;
        // Its own name as the downline: a spread seller's shards, pulled
        // into the ranks on its metrics item once a window.
        if pulls.iter().any(|p| p.downline == *upline) {
            let refreshed = self.table.refresh_ranks(upline).await?;
            tracing::info!(distributor = %upline, refreshed, "ranks refreshed from shards");
        }
        let pulls: Vec<&NetworkPull> = pulls.iter().filter(|p| p.downline != *upline).collect();
        let Some(first) = pulls.first() else {
            return Ok(());
        };
        let mut downlines: Vec<DistributorId> = pulls.iter().map(|p| p.downline.clone()).collect();
        downlines.sort();
        downlines.dedup();
        let now = Utc::now();
        let pulled = match self
            .table
            .pull_network(upline, &downlines, self.calendar.day_of(now))
            .await
        {
            Ok(p) => p,
            Err(PullError::UnknownDistributor(id)) => return Err(unknown_distributor(&id)),
            Err(e @ PullError::NotADownline { .. }) => {
                return Err(Failure::permanent("not_a_downline", e.to_string()));
            }
            Err(PullError::Store(e)) => return Err(e.into()),
        };
        tracing::info!(%upline, downlines = downlines.len(), moved = pulled.moved, "network pulled");
        if !pulled.moved && !redelivered {
            return Ok(());
        }
        let cause = Cause::Network {
            downline: first.downline.clone(),
        };
        match self.evaluate(upline, cause, now, Trigger::Event).await {
            Ok(_) | Err(EvalError::UnknownDistributor(_)) => {}
            Err(EvalError::Store(e)) => return Err(e.into()),
        }
        if let Some(next) = pulled.upline {
            self.signal_pull(&[upline.clone(), next], now).await?;
        }
        Ok(())
    }
}
