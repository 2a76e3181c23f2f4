//! A new rule set's backfill: each listed distributor's ledger counted into
//! what the rules read that their predecessor did not keep, a page of
//! ledger entries a message, with the run's progress recorded.

use chrono::Utc;
use tier_messages::{BackfillPage, BackfillPartition, Message};
use tier_runtime::sqs::Failure;

use crate::TierEvaluation;
use crate::review::REVIEW_PAGE_SIZE;

/// Ledger entries a backfill message counts (a transaction each) before it
/// hands on to a continuation: well inside the function's timeout.
pub const BACKFILL_ENTRIES_PER_MESSAGE: usize = 100;

/// What one backfill page message did, for the run's progress.
#[derive(Debug, Default, PartialEq, Eq)]
struct PageWork {
    read: u64,
    counted: u64,
    /// Distributors whose ledger it finished counting.
    distributors: u64,
}

impl TierEvaluation {
    pub(crate) async fn on_backfill_partition(&self, p: &BackfillPartition) -> Result<(), Failure> {
        let listed = self
            .fan_out(
                p.tier.as_ref(),
                p.cursor.clone(),
                REVIEW_PAGE_SIZE,
                |page| {
                    Message::BackfillPageV1(BackfillPage {
                        backfill: p.backfill.clone(),
                        distributors: page,
                        cursor: None,
                    })
                },
                |cursor| {
                    Message::BackfillPartitionV1(BackfillPartition {
                        cursor: Some(cursor),
                        ..p.clone()
                    })
                },
            )
            .await?;
        let finished = listed.finished.then(|| p.partition_id());
        self.table
            .record_backfill_listing(
                p.backfill.rule_set_version,
                p.start,
                listed.distributors,
                finished.as_deref(),
            )
            .await?;
        Ok(())
    }

    /// Counts each distributor's ledger into what the rule set reads, at
    /// most [`BACKFILL_ENTRIES_PER_MESSAGE`] ledger entries a message (each
    /// is a transaction), handing on to a continuation from where it
    /// stopped. Tiers follow at the next event or review, as for any new
    /// rule set.
    pub(crate) async fn on_backfill_page(&self, page: &BackfillPage) -> Result<(), Failure> {
        let mut work = PageWork::default();
        let result = self.backfill_page(page, &mut work).await;
        // What ran is recorded even when the page is to be retried.
        if work != PageWork::default() {
            self.table
                .record_backfill_page(
                    page.backfill.rule_set_version,
                    Utc::now(),
                    work.read,
                    work.counted,
                    work.distributors,
                )
                .await?;
        }
        result
    }

    async fn backfill_page(&self, page: &BackfillPage, work: &mut PageWork) -> Result<(), Failure> {
        let b = &page.backfill;
        let mut budget = BACKFILL_ENTRIES_PER_MESSAGE;
        let mut cursor = page.cursor.clone();
        for (i, id) in page.distributors.iter().enumerate() {
            loop {
                let Some((done, next)) = self
                    .table
                    .backfill_distributor(
                        id,
                        &b.daily,
                        &b.skus,
                        b.since,
                        cursor.as_deref(),
                        budget as i32,
                    )
                    .await?
                else {
                    break;
                };
                tracing::info!(distributor = %id, orders = done.orders, counted = done.counted, rule_set = b.rule_set_version, "ledger backfilled");
                work.read += done.orders as u64;
                work.counted += done.counted as u64;
                budget = budget.saturating_sub(done.orders.max(1));
                cursor = next;
                match (&cursor, budget) {
                    (None, _) => {
                        // Its ledger is counted: its new windows read whole.
                        work.distributors +=
                            u64::from(self.table.mark_backfilled(id, b.rule_set_version).await?);
                        break;
                    }
                    (Some(_), 0) => {
                        let rest = BackfillPage {
                            backfill: b.clone(),
                            distributors: page.distributors[i..].to_vec(),
                            cursor: cursor.clone(),
                        };
                        self.queue.send(&Message::BackfillPageV1(rest)).await?;
                        return Ok(());
                    }
                    (Some(_), _) => {}
                }
            }
            cursor = None;
            if budget == 0 && i + 1 < page.distributors.len() {
                let rest = BackfillPage {
                    backfill: b.clone(),
                    distributors: page.distributors[i + 1..].to_vec(),
                    cursor: None,
                };
                self.queue.send(&Message::BackfillPageV1(rest)).await?;
                return Ok(());
            }
        }
        Ok(())
    }
}
