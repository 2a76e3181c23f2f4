//! What-ifs: a draft rule set evaluated against every distributor, a page
//! at a time, writing only each page's marker and tally shard and each
//! listing's share (see `tier_store::what_if`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tier_domain::tier::Standing;
use tier_domain::what_if::Tally;
use tier_messages::{Message, WhatIfPage, WhatIfPartition};
use tier_runtime::sqs::Failure;
use tier_store::what_if::Listing;

use crate::TierEvaluation;

/// Members per what-if page message: one evaluation each and no writes
/// but the page's tally (two parallel batch reads and one write a page), so
/// a batch of ten pages, 1,000 evaluations, stays well inside the timeout.
pub const WHAT_IF_PAGE_SIZE: usize = 100;

/// A what-if's draft as last read: its run's id and instant, the draft,
/// and whether its tallies are sharded.
pub(crate) type CachedDraft = (
    String,
    DateTime<Utc>,
    Arc<tier_domain::rules::RuleSet>,
    bool,
);

impl TierEvaluation {
    /// A listing message: a share of its partition's members listed, its
    /// pages and continuation recorded once, then sent as recorded. A
    /// redelivery lists again but sends what the first delivery recorded
    /// (the pages by their names, and its continuation), so each partition
    /// has one chain of listings whatever was delivered twice.
    pub(crate) async fn on_what_if_partition(&self, p: &WhatIfPartition) -> Result<(), Failure> {
        let listing = p.listing_id();
        let (members, ours) = self.list_members(p.tier.as_ref(), p.cursor.clone()).await?;
        let pages: Vec<&[tier_domain::ids::DistributorId]> =
            members.chunks(WHAT_IF_PAGE_SIZE).collect();
        let continuation = |cursor: String| WhatIfPartition {
            cursor: Some(cursor),
            ..p.clone()
        };
        let recorded = self
            .table
            .record_what_if_listing(
                &p.run.id,
                p.run.at,
                &listing,
                &Listing {
                    pages: pages.len() as u64,
                    next: ours.clone().map(|c| continuation(c).listing_id()),
                    next_cursor: ours.clone(),
                },
            )
            .await?;
        if recorded.pages > pages.len() as u64 {
            // The first delivery listed more than this one finds (members
            // left the tier since): its missing pages are empty ones, so
            // that the run still completes.
            tracing::warn!(%listing, recorded = recorded.pages, now = pages.len(), "what-if listing shrank since first listed");
        }
        for n in 0..recorded.pages as usize {
            let distributors = pages.get(n).map(|p| p.to_vec()).unwrap_or_default();
            self.queue
                .send(&Message::WhatIfPageV1(WhatIfPage {
                    run: p.run.clone(),
                    page: format!("{listing}#{n}"),
                    tier: p.tier.clone(),
                    distributors,
                }))
                .await?;
        }
        // A listing recorded before cursors were kept names its next
        // listing only: this delivery's cursor is where that one starts.
        if let Some(c) = recorded.next_cursor.or(recorded.next.and(ours)) {
            self.queue
                .send(&Message::WhatIfPartitionV1(continuation(c)))
                .await?;
        }
        Ok(())
    }

    /// A page of a what-if: its distributors evaluated against the draft
    /// at the run's instant, as a review would; the tally is all it writes.
    /// A distributor whose tier changed since it was listed is left to the
    /// partition it is in now.
    pub(crate) async fn on_what_if_page(&self, p: &WhatIfPage) -> Result<(), Failure> {
        // Expired (a week on), never started, or an older run of the id.
        let Some((draft, sharded)) = self.what_if_draft(&p.run).await? else {
            return Ok(());
        };
        let today = self.calendar.day_of(p.run.at);
        let mut tally = Tally::default();
        for (d, metrics) in self
            .table
            .distributors_with_metrics(&p.distributors, today, &draft.daily_spans())
            .await?
        {
            if d.tier != p.tier {
                tally.skipped += 1;
                continue;
            }
            let standing = Standing {
                tier: d.tier.as_ref(),
                since: d.upgraded_at,
                locked: d.tier_locked,
            };
            tally.evaluate(&draft, standing, &d.id, &metrics, p.run.at, today);
        }
        if !sharded {
            self.table
                .record_what_if_page_unsharded(&p.run.id, p.run.at, &p.page, &tally)
                .await?;
        } else {
            self.table
                .record_what_if_page(&p.run.id, p.run.at, &p.page, &tally)
                .await?;
        }
        Ok(())
    }

    /// A what-if's draft, read once per warm function: its thousands of
    /// pages would otherwise all read the same item.
    async fn what_if_draft(
        &self,
        run: &tier_messages::WhatIfRun,
    ) -> Result<Option<(Arc<tier_domain::rules::RuleSet>, bool)>, Failure> {
        if let Some((id, at, draft, sharded)) = self.drafts.lock().expect("not poisoned").as_ref()
            && id == &run.id
            && *at == run.at
        {
            return Ok(Some((draft.clone(), *sharded)));
        }
        let Some(stored) = self
            .table
            .what_if_run(&run.id)
            .await?
            .filter(|r| r.at == run.at)
        else {
            return Ok(None);
        };
        let invalid =
            |e: String| Failure::permanent("invalid_what_if", format!("what-if {}: {e}", run.id));
        let sharded = stored.sharded;
        let doc = serde_json::from_value(stored.draft).map_err(|e| invalid(e.to_string()))?;
        let draft =
            Arc::new(tier_domain::rules::RuleSet::new(doc).map_err(|e| invalid(format!("{e:?}")))?);
        *self.drafts.lock().expect("not poisoned") =
            Some((run.id.clone(), run.at, draft.clone(), sharded));
        Ok(Some((draft, sharded)))
    }
}
