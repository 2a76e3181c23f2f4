//! What-if runs: the draft rule set, the instant its evaluations use and
//! the partitions it lists, then one item per listing message and one per
//! page of distributors, each written whole under a name its message
//! fixes (a listing is named by its partition and the cursor it starts
//! from, which a redelivery repeats), so a redelivered message writes the
//! same item again. The results follow each partition's chain of listings
//! from its start, and add up the pages those listings sent: each page
//! once, whatever was delivered twice. Everything expires after a week;
//! the names carry the run's instant, so an id used again after that
//! never meets the old run's items.

use chrono::{DateTime, Utc};
use tier_domain::what_if::Tally;

use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::table::{Table, TxOutcome};

const TTL_DAYS: i64 = 7;

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

    /// One listing message's share of its partition, named `listing`.
    pub async fn record_what_if_listing(
        &self,
        id: &str,
        at: DateTime<Utc>,
        listing: &str,
        share: &Listing,
    ) -> Result<(), StoreError> {
        let key = (run_key(id).0, format!("{}{listing}", prefix("LIST", at)));
        let attrs = [("pages", n(share.pages)), expires(at)]
            .into_iter()
            .chain(share.next.as_ref().map(|next| ("next", s(next))));
        self.put_whole(new_item(&key, "what_if_listing", attrs))
            .await
    }

    /// One page's tally; `page` is `{listing}#{n}`.
    pub async fn record_what_if_page(
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

    /// The run and its results so far. Read eventually consistent: a GET
    /// may lag its pages by a moment, at half the read cost.
    pub async fn what_if_results(&self, id: &str) -> Result<Option<WhatIfResults>, StoreError> {
        let Some(run) = self.what_if_run(id).await? else {
            return Ok(None);
        };
        let pk = run_key(id).0;
        let (list_prefix, page_prefix) = (prefix("LIST", run.at), prefix("PAGE", run.at));
        let (listings, pages) = futures::future::try_join(
            self.query_prefix(&pk, &list_prefix, false),
            self.query_prefix(&pk, &page_prefix, false),
        )
        .await?;
        let mut shares = std::collections::HashMap::new();
        for i in &listings {
            let name = item::key_of(i).1[list_prefix.len()..].to_owned();
            shares.insert(
                name,
                Listing {
                    pages: item::get_u64_or_zero(i, "pages")?,
                    next: item::opt_s(i, "next").map(str::to_owned),
                },
            );
        }
        let mut tallies = std::collections::HashMap::new();
        for i in &pages {
            tallies.insert(item::key_of(i).1[page_prefix.len()..].to_owned(), i);
        }
        let mut results = WhatIfResults {
            partitions_listed: 0,
            pages: 0,
            pages_done: 0,
            tally: Tally::default(),
            run,
        };
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
        Ok(Some(results))
    }
}
