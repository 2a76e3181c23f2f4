//! What-if runs: the draft rule set, the instant its evaluations use and
//! the partitions it lists; then one item per listing message, recorded
//! once (the first delivery's share stands, and only its continuation is
//! sent on, so each partition has one chain of listings), and one marker
//! per page of distributors. A page's tally is added to one of
//! [`TALLY_SHARDS`] shard items in the same transaction as its marker, and a
//! listing's pages to the run's counters with its record, so each counts
//! once whatever is delivered twice, and the answer reads the run, its
//! counters and the shards: the same few items at any brand's size.
//! Everything expires after a week; the names carry the run's instant, so
//! an id used again after that never meets the old run's items.
//!
//! Runs started before the tallies were sharded keep a page's tally on
//! its item, and their answer follows each partition's chain of listings
//! from its start, adding up the pages those listings sent.

use chrono::{DateTime, Utc};
use tier_domain::what_if::Tally;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

const TTL_DAYS: i64 = 7;
/// The shards a run's page tallies are summed into: enough that pages
/// finishing at once rarely meet on one, few enough that the answer reads
/// them all in one request.
pub const TALLY_SHARDS: u64 = 16;
const MAX_ATTEMPTS: u32 = 16;

/// A what-if as started.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIfRun {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The draft rule set document, validated.
    pub draft: serde_json::Value,
    /// The partitions it lists: tier ids, and `-` for distributors without one.
    pub partitions: Vec<String>,
    /// Whether every partition message was sent.
    pub sent: bool,
    /// Whether page tallies are summed into shards (runs started before
    /// were not).
    pub sharded: bool,
}

/// How starting a what-if went.
#[derive(Debug)]
pub enum WhatIfStart {
    Created(WhatIfRun),
    /// The id was started before with the same draft.
    Existing(WhatIfRun),
    /// The id was started before with another draft.
    OtherDraft,
}

/// One listing message's share of its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Pages it sent, named `{listing}#{0..pages}`.
    pub pages: u64,
    /// The listing that carries on from where it stopped; `None`: it
    /// reached the end of its partition.
    pub next: Option<String>,
    /// Where that listing starts (its message's cursor).
    pub next_cursor: Option<String>,
}

/// Where a what-if stands, and what it has found so far.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIfResults {
    pub run: WhatIfRun,
    /// Partitions listed to their end.
    pub partitions_listed: u64,
    /// Pages the listings found so far have sent, and those evaluated.
    pub pages: u64,
    pub pages_done: u64,
    /// The evaluated pages of those listings, added up.
    pub tally: Tally,
}

impl WhatIfResults {
    fn nothing_yet(run: WhatIfRun) -> Self {
        Self {
            partitions_listed: 0,
            pages: 0,
            pages_done: 0,
            tally: Tally::default(),
            run,
        }
    }

    /// Every partition listed to its end and every page evaluated.
    pub fn complete(&self) -> bool {
        self.run.sent
            && self.partitions_listed == self.run.partitions.len() as u64
            && self.pages_done == self.pages
    }
}

fn run_key(id: &str) -> keys::Key {
    (format!("WHATIF#{id}"), "RUN".into())
}

/// The names of a run's listing and page items start with its instant.
fn prefix(kind: &str, at: DateTime<Utc>) -> String {
    format!("{kind}#{}#", at.timestamp_micros())
}

fn expires(at: DateTime<Utc>) -> (&'static str, aws_sdk_dynamodb::types::AttributeValue) {
    ("expires_at", n(at.timestamp() + TTL_DAYS * 86_400))
}

fn parse_run(id: &str, i: &Item) -> Result<WhatIfRun, StoreError> {
    Ok(WhatIfRun {
        id: id.to_owned(),
        at: item::get_s(i, "at")?
            .parse()
            .map_err(|_| StoreError::corrupt(&item::key_of(i), "at"))?,
        draft: item::get_json(i, "draft")?,
        partitions: item::get_json(i, "partitions")?,
        sent: i
            .get("sent")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        sharded: i
            .get("sharded")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

fn counts_key(id: &str) -> keys::Key {
    (run_key(id).0, "COUNTS".into())
}

fn shard_key(id: &str, at: DateTime<Utc>, shard: u64) -> keys::Key {
    (run_key(id).0, format!("{}{shard:02}", prefix("TALLY", at)))
}

/// The shard a page's tally goes to: by its name, so a redelivery meets
/// its first delivery's.
fn shard_of(page: &str) -> u64 {
    tier_messages::fnv1a(page) % TALLY_SHARDS
}

fn parse_listing(i: &Item) -> Result<Listing, StoreError> {
    Ok(Listing {
        pages: item::get_u64_or_zero(i, "pages")?,
        next: item::opt_s(i, "next").map(str::to_owned),
        next_cursor: item::opt_s(i, "next_cursor").map(str::to_owned),
    })
}

impl Table {
    /// Starts what-if `id` for `draft` at `at`, listing `partitions`; or
    /// finds it started (an expired run's id starts afresh).
    pub async fn start_what_if(
        &self,
        id: &str,
        draft: &serde_json::Value,
        at: DateTime<Utc>,
        partitions: &[String],
    ) -> Result<WhatIfStart, StoreError> {
        let key = run_key(id);
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(new_item(
                &key,
                "what_if_run",
                [
                    ("at", s(at.to_rfc3339())),
                    ("draft", item::json(draft)),
                    ("partitions", item::json(&partitions)),
                    ("sharded", AttributeValue::Bool(true)),
                    expires(at),
                ],
            )))
            // TTL deletes late: an expired run is gone, whatever is still stored.
            .condition_expression("attribute_not_exists(PK) OR expires_at < :now")
            .expression_attribute_values(":now", n(at.timestamp()))
            .build()
            .expect("put has item");
        match self
            .transact(vec![
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build(),
            ])
            .await?
        {
            TxOutcome::Committed => Ok(WhatIfStart::Created(WhatIfRun {
                id: id.to_owned(),
                at,
                draft: draft.clone(),
                partitions: partitions.to_vec(),
                sent: false,
                sharded: true,
            })),
            TxOutcome::ConditionFailed { .. } => {
                let existing = self
                    .what_if_run(id)
                    .await?
                    .ok_or_else(|| StoreError::corrupt(&key, "vanished after being written"))?;
                Ok(if &existing.draft == draft {
                    WhatIfStart::Existing(existing)
                } else {
                    WhatIfStart::OtherDraft
                })
            }
        }
    }

    pub async fn what_if_run(&self, id: &str) -> Result<Option<WhatIfRun>, StoreError> {
        self.get(&run_key(id), true)
            .await?
            .map(|i| parse_run(id, &i))
            .transpose()
    }

    /// Records that every partition message of the run was sent.
    pub async fn mark_what_if_sent(&self, id: &str) -> Result<(), StoreError> {
        self.update_if(
            &run_key(id),
            "SET sent = :t",
            "attribute_exists(PK)",
            [(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))],
        )
        .await
        .map(|_| ())
    }

    /// One listing message's share of its partition, named `listing`,
    /// recorded once: the share recorded first stands, and is returned, so
    /// that a redelivery sends on what the first delivery recorded. Its
    /// pages, and whether it ends its partition, are added to the run's
    /// counters with it.
    pub async fn record_what_if_listing(
        &self,
        id: &str,
        at: DateTime<Utc>,
        listing: &str,
        share: &Listing,
    ) -> Result<Listing, StoreError> {
        let key = (run_key(id).0, format!("{}{listing}", prefix("LIST", at)));
        let attrs = [("pages", n(share.pages)), expires(at)]
            .into_iter()
            .chain(share.next.as_ref().map(|next| ("next", s(next))))
            .chain(share.next_cursor.as_ref().map(|c| ("next_cursor", s(c))));
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(new_item(&key, "what_if_listing", attrs)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has item");
        let (pk, sk) = counts_key(id);
        let counts = Update::builder()
            .table_name(&self.name)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("ADD pages :p, listed :l SET entity_type = :e, expires_at = :x")
            .expression_attribute_values(":p", n(share.pages))
            .expression_attribute_values(":l", n(u64::from(share.next.is_none())))
            .expression_attribute_values(":e", s("what_if_counts"))
            .expression_attribute_values(":x", expires(at).1)
            .build()
            .expect("an update has its key and expression");
        let tx = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(counts).build(),
        ];
        let mut attempt = 0;
        loop {
            match self.transact(tx.clone()).await {
                Ok(TxOutcome::Committed) => return Ok(share.clone()),
                Ok(TxOutcome::ConditionFailed { .. }) => {
                    let recorded = self.get(&key, true).await?.ok_or_else(|| {
                        StoreError::corrupt(&key, "refused as recorded, yet absent")
                    })?;
                    return parse_listing(&recorded);
                }
                // Listings of other partitions recording at once meet on
                // the counters.
                Err(StoreError::Contention { .. }) if attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    crate::table::backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One page's tally, `page` being `{listing}#{n}`: added to its shard
    /// once, with the page's marker in the same transaction; a page
    /// delivered again finds its marker and adds nothing. A shard written
    /// by another page since it was read is read and added to again.
    pub async fn record_what_if_page(
        &self,
        id: &str,
        at: DateTime<Utc>,
        page: &str,
        tally: &Tally,
    ) -> Result<(), StoreError> {
        let marker = (run_key(id).0, format!("{}{page}", prefix("PAGE", at)));
        let shard = shard_key(id, at, shard_of(page));
        for attempt in 0..MAX_ATTEMPTS {
            let read = self.get(&shard, true).await?;
            let version = read
                .as_ref()
                .map(|i| item::get_u64_or_zero(i, "version"))
                .transpose()?;
            let (mut sum, done) = match &read {
                Some(i) => (
                    item::get_json::<Tally>(i, "tally")?,
                    item::get_u64_or_zero(i, "pages_done")?,
                ),
                None => (Tally::default(), 0),
            };
            // Each shard keeps up to the names a move shows, so a run of a
            // few pages names as many as one tally would; the answer's
            // merge keeps the first 100 of all of them.
            sum.merge(tally);
            let put_marker = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(&marker, "what_if_page", [expires(at)])))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .expect("put has item");
            let put_shard = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &shard,
                    "what_if_tally",
                    [
                        ("tally", item::json(&sum)),
                        ("pages_done", n(done + 1)),
                        ("version", n(version.map_or(1, |v| v + 1))),
                        expires(at),
                    ],
                )));
            let put_shard = match version {
                None => put_shard.condition_expression("attribute_not_exists(PK)"),
                Some(v) => put_shard
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v)),
            }
            .build()
            .expect("put has item");
            let tx = vec![
                TransactWriteItem::builder().put(put_marker).build(),
                TransactWriteItem::builder().put(put_shard).build(),
            ];
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => return Ok(()),
                Ok(TxOutcome::ConditionFailed { reasons }) => {
                    if reasons
                        .first()
                        .is_some_and(|r| r == "ConditionalCheckFailed")
                    {
                        return Ok(()); // counted by an earlier delivery
                    }
                    crate::table::backoff(attempt + 1).await;
                }
                // Pages finishing at once on one shard.
                Err(StoreError::Contention { .. }) => crate::table::backoff(attempt + 1).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention {
            what: format!("what-if {id}'s tally shard for page {page}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// A page's tally on its own item, as runs started before the tallies
    /// were sharded keep it.
    pub async fn record_what_if_page_unsharded(
        &self,
        id: &str,
        at: DateTime<Utc>,
        page: &str,
        tally: &Tally,
    ) -> Result<(), StoreError> {
        let key = (run_key(id).0, format!("{}{page}", prefix("PAGE", at)));
        self.put_whole(new_item(
            &key,
            "what_if_page",
            [("tally", item::json(tally)), expires(at)],
        ))
        .await
    }

    async fn put_whole(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// The run and its results so far: the run, its counters and its
    /// shards, one BatchGetItem after the run's read, whatever the brand's
    /// size. Eventually consistent: a GET may lag its pages by a moment, at
    /// half the read cost.
    pub async fn what_if_results(&self, id: &str) -> Result<Option<WhatIfResults>, StoreError> {
        let Some(run) = self.what_if_run(id).await? else {
            return Ok(None);
        };
        if !run.sharded {
            return self.unsharded_results(run).await.map(Some);
        }
        let mut wanted = vec![counts_key(id)];
        wanted.extend((0..TALLY_SHARDS).map(|shard| shard_key(id, run.at, shard)));
        let items = self.batch_get(&wanted, false).await?;
        let mut results = WhatIfResults::nothing_yet(run);
        if let Some(c) = items.get(&counts_key(id)) {
            results.pages = item::get_u64_or_zero(c, "pages")?;
            results.partitions_listed = item::get_u64_or_zero(c, "listed")?;
        }
        for shard in 0..TALLY_SHARDS {
            if let Some(i) = items.get(&shard_key(id, results.run.at, shard)) {
                results.pages_done += item::get_u64_or_zero(i, "pages_done")?;
                results.tally.merge(&item::get_json(i, "tally")?);
            }
        }
        Ok(Some(results))
    }

    /// A run from before the tallies were sharded: each partition's chain
    /// of listings from its first, and the pages those listings sent.
    async fn unsharded_results(&self, run: WhatIfRun) -> Result<WhatIfResults, StoreError> {
        let id = run.id.clone();
        let pk = run_key(&id).0;
        let (list_prefix, page_prefix) = (prefix("LIST", run.at), prefix("PAGE", run.at));
        let (listings, pages) = futures::future::try_join(
            self.query_prefix(&pk, &list_prefix, false),
            self.query_prefix(&pk, &page_prefix, false),
        )
        .await?;
        let mut shares = std::collections::HashMap::new();
        for i in &listings {
            let name = item::key_of(i).1[list_prefix.len()..].to_owned();
            shares.insert(name, parse_listing(i)?);
        }
        let mut tallies = std::collections::HashMap::new();
        for i in &pages {
            tallies.insert(item::key_of(i).1[page_prefix.len()..].to_owned(), i);
        }
        let mut results = WhatIfResults::nothing_yet(run);
        // Each partition's chain of listings, from its first: only the
        // pages of those count, each once.
        for partition in &results.run.partitions {
            let mut listing = tier_messages::what_if_listing_id(partition, None);
            let mut hops = 0;
            while let Some(share) = shares.get(&listing) {
                results.pages += share.pages;
                for page in 0..share.pages {
                    if let Some(i) = tallies.get(&format!("{listing}#{page}")) {
                        results.pages_done += 1;
                        results.tally.merge(&item::get_json(i, "tally")?);
                    }
                }
                hops += 1;
                match &share.next {
                    Some(next) if hops <= shares.len() => listing = next.clone(),
                    Some(_) => break,
                    None => {
                        results.partitions_listed += 1;
                        break;
                    }
                }
            }
        }
        Ok(results)
    }
}
