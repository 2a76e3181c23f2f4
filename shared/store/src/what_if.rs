//! What-if runs: the draft rule set and the instant its evaluations use,
//! then one item per listing message and one per page of distributors.
//! Each is written whole under a name its message fixes, so a redelivery
//! writes the same item again and the results count every page once. The
//! items expire after a week.

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
    /// The draft rule set document, as given.
    pub draft: serde_json::Value,
    /// Partitions its listing goes through (one per tier, and one for
    /// distributors without a tier).
    pub partitions: u64,
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

/// Where a what-if stands, and what it has found so far.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIfResults {
    pub run: WhatIfRun,
    /// Partitions whose listing is done.
    pub partitions_listed: u64,
    /// Pages the listing has sent so far, and those evaluated.
    pub pages: u64,
    pub pages_done: u64,
    pub tally: Tally,
}

impl WhatIfResults {
    /// Every partition listed and every page evaluated.
    pub fn complete(&self) -> bool {
        self.partitions_listed >= self.run.partitions && self.pages_done >= self.pages
    }
}

fn run_key(id: &str) -> keys::Key {
    (format!("WHATIF#{id}"), "RUN".into())
}

fn expires(at: DateTime<Utc>) -> (&'static str, aws_sdk_dynamodb::types::AttributeValue) {
    ("expires_at", n(at.timestamp() + TTL_DAYS * 86_400))
}

fn parse_run(id: &str, i: &Item) -> Result<WhatIfRun, StoreError> {
    Ok(WhatIfRun {
        id: id.to_owned(),
        at: item::get_s(i, "at")?.parse().map_err(|_| StoreError::corrupt(&item::key_of(i), "at"))?,
        draft: item::get_json(i, "draft")?,
        partitions: item::get_u64_or_zero(i, "partitions")?,
    })
}

impl Table {
    /// Starts what-if `id` for `draft` at `at`, over `partitions`
    /// partitions; or finds it started.
    pub async fn start_what_if(&self, id: &str, draft: &serde_json::Value, at: DateTime<Utc>, partitions: u64) -> Result<WhatIfStart, StoreError> {
        let key = run_key(id);
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(new_item(&key, "what_if_run", [("at", s(at.to_rfc3339())), ("draft", item::json(draft)), ("partitions", n(partitions)), expires(at)])))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has item");
        match self.transact(vec![aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build()]).await? {
            TxOutcome::Committed => Ok(WhatIfStart::Created(WhatIfRun { id: id.to_owned(), at, draft: draft.clone(), partitions })),
            TxOutcome::ConditionFailed { .. } => {
                let existing = self.what_if_run(id).await?.ok_or_else(|| StoreError::corrupt(&key, "vanished after being written"))?;
                Ok(if &existing.draft == draft { WhatIfStart::Existing(existing) } else { WhatIfStart::OtherDraft })
            }
        }
    }

    pub async fn what_if_run(&self, id: &str) -> Result<Option<WhatIfRun>, StoreError> {
        self.get(&run_key(id), true).await?.map(|i| parse_run(id, &i)).transpose()
    }

    /// One listing message's share: the pages it sent, and whether it
    /// reached the end of its partition.
    pub async fn record_what_if_listing(&self, id: &str, at: DateTime<Utc>, listing: &str, pages: u64, finished: bool) -> Result<(), StoreError> {
        let key = (run_key(id).0, format!("LIST#{listing}"));
        let item = new_item(&key, "what_if_listing", [("pages", n(pages)), ("finished", aws_sdk_dynamodb::types::AttributeValue::Bool(finished)), expires(at)]);
        self.put_whole(item).await
    }

    /// One page's tally.
    pub async fn record_what_if_page(&self, id: &str, at: DateTime<Utc>, page: &str, tally: &Tally) -> Result<(), StoreError> {
        let key = (run_key(id).0, format!("PAGE#{page}"));
        self.put_whole(new_item(&key, "what_if_page", [("tally", item::json(tally)), expires(at)])).await
    }

    async fn put_whole(&self, item: Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.name).set_item(Some(item)).send().await.map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// The run and its results so far: its listing and page items added up.
    pub async fn what_if_results(&self, id: &str) -> Result<Option<WhatIfResults>, StoreError> {
        let Some(run) = self.what_if_run(id).await? else { return Ok(None) };
        let pk = run_key(id).0;
        let (listings, pages) = futures::future::try_join(self.query_prefix(&pk, "LIST#", true), self.query_prefix(&pk, "PAGE#", true)).await?;
        let mut results = WhatIfResults { run, partitions_listed: 0, pages: 0, pages_done: pages.len() as u64, tally: Tally::default() };
        for i in &listings {
            results.pages += item::get_u64_or_zero(i, "pages")?;
            results.partitions_listed += u64::from(i.get("finished").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false));
        }
        for i in &pages {
            results.tally.merge(&item::get_json(i, "tally")?);
        }
        Ok(Some(results))
    }
}
