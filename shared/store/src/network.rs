//! All-level network metrics, pulled by each upline from its direct
//! downline ([`tier_domain::network`]): one transaction per pull, whatever
//! the number of orders below.
//!
//! A pull of upline `P` from downlines `c…` reads, in one strongly
//! consistent BatchGetItem, each downline's profile (it must be `P`'s
//! direct downline), its metrics and `P`'s edge to it, plus `P`'s profile
//! (whose upline pulls next). It then writes, in one transaction, the
//! edges that moved (each conditional on the version read, so two pulls
//! of `P` that overlap cannot both add the same difference) and one `ADD`
//! of the summed difference to `P`'s metrics. Nothing moved, nothing is
//! written.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use tier_domain::calendar::Day;
use tier_domain::ids::DistributorId;
use tier_domain::network::NetworkTotals;

use crate::distributors::parse_profile;
use crate::error::StoreError;
use crate::item::{self, n, new_item};
use crate::keys;
use crate::metrics::{network_update, oldest_kept, parse_metrics};
use crate::table::{Table, TxOutcome};

/// Downlines per pull transaction: an edge each and the upline's metrics
/// (TransactWriteItems takes 100), and three keys each plus one in a
/// BatchGetItem of at most 100.
pub const MAX_PULL: usize = 32;
/// A pull that loses a race on an edge is read and tried again.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Whether the upline's network metrics moved.
    pub moved: bool,
    /// The upline's own upline: the next to pull.
    pub upline: Option<DistributorId>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error("{downline} is not a direct downline of {upline}")]
    NotADownline {
        upline: DistributorId,
        downline: DistributorId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Table {
    /// `upline` takes what moved in the networks of `downlines` since its
    /// last pull of each; `today` bounds the months written (older ones no
    /// window reads). Idempotent: a second pull of the same state writes
    /// nothing.
    pub async fn pull_network(
        &self,
        upline: &DistributorId,
        downlines: &[DistributorId],
        today: Day,
    ) -> Result<Pulled, PullError> {
        let mut moved = false;
        let mut next = None;
        for chunk in downlines.chunks(MAX_PULL) {
            let pulled = self.pull_chunk(upline, chunk, today).await?;
            moved |= pulled.moved;
            next = pulled.upline;
        }
        if downlines.is_empty() {
            next = self.upline_of(upline).await?;
        }
        Ok(Pulled {
            moved,
            upline: next,
        })
    }

    async fn upline_of(&self, id: &DistributorId) -> Result<Option<DistributorId>, PullError> {
        let profile = self
            .get(&keys::distributor(id), false)
            .await?
            .ok_or_else(|| PullError::UnknownDistributor(id.clone()))?;
        Ok(parse_profile(&profile)?.ancestors.first().cloned())
    }

    async fn pull_chunk(
        &self,
        upline: &DistributorId,
        downlines: &[DistributorId],
        today: Day,
    ) -> Result<Pulled, PullError> {
        let from = oldest_kept(today);
        let ukey = keys::distributor(upline);
        let mut keys_read = vec![ukey.clone()];
        for d in downlines {
            keys_read.push(keys::distributor(d));
            keys_read.push(keys::metrics(d));
            keys_read.push(keys::network_edge(upline, d));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let read = self.batch_get(&keys_read, true).await?;
            let profile = read
                .get(&ukey)
                .map(parse_profile)
                .transpose()?
                .ok_or_else(|| PullError::UnknownDistributor(upline.clone()))?;
            let mut children = Vec::with_capacity(downlines.len());
            for d in downlines {
                let child = read
                    .get(&keys::distributor(d))
                    .map(parse_profile)
                    .transpose()?
                    .ok_or_else(|| PullError::UnknownDistributor(d.clone()))?;
                if child.ancestors.first() != Some(upline) {
                    return Err(PullError::NotADownline {
                        upline: upline.clone(),
                        downline: d.clone(),
                    });
                }
                children.push(child);
            }
            // A spread downline's counters are its metrics item and its
            // shards: one more read, only when a downline is spread.
            let wanted =
                crate::shards::shard_keys(children.iter().map(|c| (&c.id, c.metric_shards)));
            let shard_items = if wanted.is_empty() {
                Default::default()
            } else {
                self.batch_get(&wanted, true).await?
            };
            let mut total = NetworkTotals::default();
            let mut tx = Vec::new();
            for child in &children {
                let d = &child.id;
                let mut metrics = read
                    .get(&keys::metrics(d))
                    .map(parse_metrics)
                    .transpose()?
                    .unwrap_or_default();
                crate::shards::absorb_shards(d, child.metric_shards, &shard_items, &mut metrics)?;
                let now = NetworkTotals::of(&metrics);
                let ekey = keys::network_edge(upline, d);
                let (seen, version) = match read.get(&ekey) {
                    Some(e) => (
                        item::get_json::<NetworkTotals>(e, "seen")?,
                        item::get_u64_or_zero(e, "v")?,
                    ),
                    None => (NetworkTotals::default(), 0),
                };
                if now == seen {
                    continue;
                }
                total.add(&now.since(&seen, from));
                tx.push(edge_put(self, &ekey, &now, version));
            }
            if tx.is_empty() {
                return Ok(Pulled {
                    moved: false,
                    upline: profile.ancestors.first().cloned(),
                });
            }
            let moved = !total.is_zero();
            if moved {
                tx.push(
                    TransactWriteItem::builder()
                        .update(network_update(self, upline, &total))
                        .build(),
                );
            }
            match self.transact(tx).await? {
                TxOutcome::Committed => {
                    return Ok(Pulled {
                        moved,
                        upline: profile.ancestors.first().cloned(),
                    });
                }
                TxOutcome::ConditionFailed { .. } if attempt < MAX_ATTEMPTS => {
                    crate::table::backoff(attempt).await;
                }
                TxOutcome::ConditionFailed { .. } => {
                    return Err(StoreError::Contention {
                        what: format!("network edges of {upline}"),
                        attempts: attempt,
                    }
                    .into());
                }
            }
        }
    }
}

/// The edge `key` at what was just pulled, if it is still at `version`.
fn edge_put(
    table: &Table,
    key: &keys::Key,
    seen: &NetworkTotals,
    version: u64,
) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(&table.name)
        .set_item(Some(new_item(
            key,
            "network_edge",
            [("seen", item::json(seen)), ("v", n(version + 1))],
        )));
    let put = if version == 0 {
        put.condition_expression("attribute_not_exists(PK)")
    } else {
        put.condition_expression("v = :v")
            .expression_attribute_values(":v", n(version))
    };
    TransactWriteItem::builder()
        .put(put.build().expect("put has item"))
        .build()
}
