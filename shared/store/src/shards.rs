//! A hot seller's counters spread over shards
//! ([`tier_domain::metrics::MetricShards`], docs/cost.md "Hot sellers").
//!
//! A spread distributor's orders add their contribution to one shard each,
//! chosen by the order, instead of to its metrics item; the commission they
//! pay a spread receiver goes to one of the receiver's shards the same way.
//! Exactly once still rests on the ledger entry: its version is in the same
//! transaction as the shard's `ADD`. Every read of the distributor's
//! metrics adds the shards up ([`Table::add_shards`]), so every caller sees
//! one total.
//!
//! What a spread distributor gives up is deciding its tier under a guard
//! on everything it read: at hundreds of orders a second the shards move
//! faster than a transaction that checked them all could commit. A tier
//! change is guarded by the tier version and the metrics item's version,
//! and a committed change is followed by one more evaluation
//! ([`crate::ledger`]), which sees whatever a concurrent order added
//! between the read and the change.

use std::collections::HashMap;

use tier_domain::ids::DistributorId;
use tier_domain::metrics::{MetricShards, Metrics};

use crate::distributors::{Distributor, parse_profile};
use crate::error::StoreError;
use crate::item::{self, Item};
use crate::keys;
use crate::metrics::parse_metrics;
use crate::table::Table;

/// The shard keys a read of these distributors must add up.
pub(crate) fn shard_keys<'a>(
    who: impl IntoIterator<Item = (&'a DistributorId, MetricShards)>,
) -> Vec<keys::Key> {
    who.into_iter()
        .flat_map(|(id, s)| (0..s.cells).map(move |b| keys::metrics_shard(id, b)))
        .collect()
}

/// Adds the shards of `id` found in `items` to `metrics`.
pub(crate) fn absorb_shards(
    id: &DistributorId,
    shards: MetricShards,
    items: &HashMap<keys::Key, Item>,
    metrics: &mut Metrics,
) -> Result<(), StoreError> {
    for b in 0..shards.cells {
        if let Some(i) = items.get(&keys::metrics_shard(id, b)) {
            metrics.absorb(&parse_metrics(i)?);
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ShardsError {
    #[error("distributor {0} does not exist")]
    UnknownDistributor(DistributorId),
    #[error(transparent)]
    Invalid(#[from] tier_domain::metrics::TooManyShards),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Table {
    /// Adds each spread distributor's shards to its metrics as read: one
    /// BatchGetItem for them all, none when nobody is spread.
    pub(crate) async fn add_shards(
        &self,
        rows: &mut [(&Distributor, &mut Metrics)],
        consistent: bool,
    ) -> Result<(), StoreError> {
        let wanted = shard_keys(rows.iter().map(|(d, _)| (&d.id, d.metric_shards)));
        if wanted.is_empty() {
            return Ok(());
        }
        let items = self.batch_get(&wanted, consistent).await?;
        for (d, m) in rows.iter_mut() {
            absorb_shards(&d.id, d.metric_shards, &items, m)?;
        }
        Ok(())
    }

    /// Sets a spread seller's sales ranks (what the sorted lists read, on
    /// its metrics item) from its metrics and shards as they stand: its
    /// orders leave the metrics item alone, so this runs once a window
    /// instead of once an order. `false`: the ranks were already right, or
    /// it has no sales to rank.
    pub async fn refresh_ranks(&self, id: &DistributorId) -> Result<bool, StoreError> {
        let (pkey, mkey) = (keys::distributor(id), keys::metrics(id));
        let items = self.batch_get(&[pkey.clone(), mkey.clone()], true).await?;
        let Some(profile) = items.get(&pkey).map(parse_profile).transpose()? else {
            return Ok(false);
        };
        let home = items.get(&mkey);
        let mut metrics = home.map(parse_metrics).transpose()?.unwrap_or_default();
        self.add_shards(&mut [(&profile, &mut metrics)], true)
            .await?;
        let Some(ranks) = tier_domain::ranking::sales_ranks(&metrics, id) else {
            return Ok(false);
        };
        let attrs = crate::ranking::sales_rank_attributes(id, &ranks);
        if home.is_some_and(|h| attrs.iter().all(|(a, v)| h.get(*a) == Some(v))) {
            return Ok(false);
        }
        // Not a change of the counters: the version stays, so no tier
        // decided meanwhile is made to read again.
        let update = (0..attrs.len())
            .map(|i| format!("#a{i} = :a{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let names: Vec<(String, &str)> = attrs
            .iter()
            .enumerate()
            .map(|(i, (a, _))| (format!("#a{i}"), *a))
            .collect();
        let names: Vec<(&str, &str)> = names.iter().map(|(p, a)| (p.as_str(), *a)).collect();
        let values: Vec<(String, _)> = attrs
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (format!(":a{i}"), v.clone()))
            .chain([(":e".to_owned(), item::s("metrics"))])
            .collect();
        self.update_if_named(
            &mkey,
            &format!("SET {update}, entity_type = :e"),
            None,
            &names,
            values.iter().map(|(k, v)| (k.as_str(), v.clone())),
        )
        .await?;
        Ok(true)
    }

    /// Spreads a distributor's counters over `shards` from its next order
    /// on (0: its metrics item again). What the shards hold stays counted.
    pub async fn set_metric_shards(
        &self,
        id: &DistributorId,
        shards: u64,
    ) -> Result<MetricShards, ShardsError> {
        for attempt in 0..8 {
            let Some(profile) = self.distributor_consistent(id).await? else {
                return Err(ShardsError::UnknownDistributor(id.clone()));
            };
            let now = profile.metric_shards;
            let next = now.spread(shards)?;
            // Conditional on the cells read: two settings at once never
            // leave fewer cells than either saw.
            let set = self
                .update_if(
                    &keys::distributor(id),
                    "SET metric_shards = :k, metric_cells = :c",
                    "attribute_exists(PK) AND (metric_cells = :was OR (attribute_not_exists(metric_cells) AND :was = :zero))",
                    [
                        (":k", item::n(u64::from(next.shards))),
                        (":c", item::n(u64::from(next.cells))),
                        (":was", item::n(u64::from(now.cells))),
                        (":zero", item::n(0)),
                    ],
                )
                .await?;
            if set {
                return Ok(next);
            }
            crate::table::backoff(attempt + 1).await;
        }
        Err(StoreError::Contention {
            what: format!("shards of {id}"),
            attempts: 8,
        }
        .into())
    }
}
