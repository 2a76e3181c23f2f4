//! What-ifs: a draft rule set evaluated against every distributor, a page
//! at a time, writing only each page's tally and each listing's share.

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

/// A what-if's draft as last read: its run's id and instant, and the draft.
pub(crate) type CachedDraft = (String, DateTime<Utc>, Arc<tier_domain::rules::RuleSet>);

impl TierEvaluation {
    pub(crate) async fn on_what_if_partition(&self, p: &WhatIfPartition) -> Result<(), Failure> {
        let listing = p.listing_id();
        let next_page = std::sync::atomic::AtomicUsize::new(0);
        let listed = self
            .fan_out(
                p.tier.as_ref(),
                p.cursor.clone(),
                WHAT_IF_PAGE_SIZE,
                |page| {
                    let n = next_page.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Message::WhatIfPageV1(WhatIfPage {
                        run: p.run.clone(),
                        page: format!("{listing}#{n}"),
                        tier: p.tier.clone(),
                        distributors: page,
                    })
                },
                |cursor| {
                    Message::WhatIfPartitionV1(WhatIfPartition {
                        cursor: Some(cursor),
                        ..p.clone()
                    })
                },
            )
            .await?;
        let next = listed.next.map(|c| {
            WhatIfPartition {
                cursor: Some(c),
                ..p.clone()
            }
            .listing_id()
        });
        self.table
            .record_what_if_listing(
                &p.run.id,
                p.run.at,
                &listing,
                &Listing {
                    pages: listed.pages,
                    next,
                },
            )
            .await?;
        Ok(())
    }

    /// A page of a what-if: its distributors evaluated against the draft
    /// at the run's instant, as a review would; the tally is all it writes.
    /// A distributor whose tier changed since it was listed is left to the
    /// partition it is in now.
    pub(crate) async fn on_what_if_page(&self, p: &WhatIfPage) -> Result<(), Failure> {
        // Expired (a week on), never started, or an older run of the id.
        let Some(draft) = self.what_if_draft(&p.run).await? else {
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
        self.table
            .record_what_if_page(&p.run.id, p.run.at, &p.page, &tally)
            .await?;
        Ok(())
    }

    /// A what-if's draft, read once per warm function: its thousands of
    /// pages would otherwise all read the same item.
    async fn what_if_draft(
        &self,
        run: &tier_messages::WhatIfRun,
    ) -> Result<Option<Arc<tier_domain::rules::RuleSet>>, Failure> {
        if let Some((id, at, draft)) = self.drafts.lock().expect("not poisoned").as_ref()
            && id == &run.id
            && *at == run.at
        {
            return Ok(Some(draft.clone()));
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
        let doc = serde_json::from_value(stored.draft).map_err(|e| invalid(e.to_string()))?;
        let draft =
            Arc::new(tier_domain::rules::RuleSet::new(doc).map_err(|e| invalid(format!("{e:?}")))?);
        *self.drafts.lock().expect("not poisoned") = Some((run.id.clone(), run.at, draft.clone()));
        Ok(Some(draft))
    }
}
