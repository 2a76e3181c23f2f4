//! Commission entries and withdrawals.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use tier_domain::calendar::Day;
use tier_domain::commission::CommissionEntry;
use tier_domain::ids::{DistributorId, OrderRef};
use tier_domain::metrics::MetricsDelta;
use tier_domain::money::Money;

use crate::error::StoreError;
use crate::item::{self, n, new_item, s};
use crate::keys;
use crate::metrics::{metrics_update, parse_metrics};
use crate::table::{Table, TxOutcome};

fn entry_row(i: &crate::item::Item) -> Result<EntryRow, StoreError> {
    Ok(EntryRow {
        order: item::get_s(i, "order")?.to_owned(),
        source: item::get_s(i, "source")?.to_owned(),
        entry: item::get_json(i, "entry")?,
    })
}

/// A receiver's entry, with the order it is for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryRow {
    pub order: String,
    pub source: String,
    #[serde(flatten)]
    pub entry: CommissionEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withdrawal {
    pub request_id: String,
    pub amount: Money,
    pub at: DateTime<Utc>,
}

/// How a withdrawal request ended.
#[derive(Debug)]
pub enum WithdrawOutcome {
    Paid(Withdrawal),
    /// The same request was paid before.
    AlreadyPaid(Withdrawal),
    /// The request id was used for another amount.
    RequestReused(Withdrawal),
    /// Not enough withdrawable commission.
    Insufficient {
        withdrawable: Money,
    },
}

impl Table {
    /// A page of a receiver's commission entries, in order key order, after
    /// the order `after` (`platform/store/order`, the last of the previous
    /// page). Returns the page and, if there is more, the cursor for the next.
    pub async fn commission_entries_page(
        &self,
        receiver: &DistributorId,
        after: Option<&OrderRef>,
        limit: i32,
    ) -> Result<(Vec<EntryRow>, Option<String>), StoreError> {
        let after = after.map(|o| keys::commission(receiver, o).1);
        let (items, more) = self
            .query_page(
                &keys::distributor(receiver).0,
                keys::COMMISSION_PREFIX,
                after.as_deref(),
                Some(limit),
                false,
            )
            .await?;
        let rows: Vec<EntryRow> = items.iter().map(entry_row).collect::<Result<_, _>>()?;
        let next = more.and(rows.last().map(|r| r.order.clone()));
        Ok((rows, next))
    }

    /// Every commission entry of a receiver (tests and small networks).
    pub async fn commission_entries(
        &self,
        receiver: &DistributorId,
    ) -> Result<Vec<EntryRow>, StoreError> {
        self.query_prefix(
            &keys::distributor(receiver).0,
            keys::COMMISSION_PREFIX,
            true,
        )
        .await?
        .iter()
        .map(entry_row)
        .collect()
    }

    /// Pays out `amount` if the commission withdrawable at `at` (the brand's
    /// day `today`) covers it. Once per `request_id`; guarded by the metrics
    /// version, so two withdrawals cannot both spend the same balance. The
    /// balance is the receiver's counters: one read, however many entries.
    pub async fn withdraw(
        &self,
        id: &DistributorId,
        request_id: &str,
        amount: Money,
        at: DateTime<Utc>,
        today: Day,
    ) -> Result<WithdrawOutcome, StoreError> {
        let wkey = keys::withdrawal(id, request_id);
        for _ in 0..5 {
            let pkey = keys::distributor(id);
            let items = self
                .batch_get(&[wkey.clone(), keys::metrics(id), pkey.clone()], true)
                .await?;
            if let Some(w) = items.get(&wkey) {
                let previous = Withdrawal {
                    request_id: request_id.to_owned(),
                    amount: Money::from_decimal(item::get_decimal(w, "amount")?)
                        .map_err(|e| StoreError::corrupt(&wkey, e.to_string()))?,
                    at: item::get_s(w, "at")?
                        .parse()
                        .map_err(|_| StoreError::corrupt(&wkey, "at"))?,
                };
                return Ok(if previous.amount == amount {
                    WithdrawOutcome::AlreadyPaid(previous)
                } else {
                    WithdrawOutcome::RequestReused(previous)
                });
            }
            let mitem = items.get(&keys::metrics(id));
            let mut metrics = mitem.map(parse_metrics).transpose()?.unwrap_or_default();
            // A spread receiver's commission is in its shards too. They are
            // not guarded here: what moves them at that rate is new
            // commission, frozen until it settles (docs/cost.md, "Hot
            // sellers").
            if let Some(p) = items.get(&pkey) {
                let profile = crate::distributors::parse_profile(p)?;
                self.add_shards(&mut [(&profile, &mut metrics)], true)
                    .await?;
            }
            let mversion = mitem
                .map(|i| item::get_u64_or_zero(i, "mversion"))
                .transpose()?
                .unwrap_or(0);
            let balance = tier_domain::commission::balance(
                metrics.cumulative_commission,
                &metrics.frozen_commission,
                metrics.withdrawn_commission,
                today,
            );
            if balance.withdrawable < amount {
                return Ok(WithdrawOutcome::Insufficient {
                    withdrawable: balance.withdrawable,
                });
            }
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(new_item(
                    &wkey,
                    "withdrawal",
                    [
                        ("amount", n(amount.amount())),
                        ("at", s(at.to_rfc3339())),
                        ("request_id", s(request_id)),
                    ],
                )))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .expect("put has item");
            let delta = MetricsDelta {
                withdrawn_commission: amount,
                ..Default::default()
            };
            let tx = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder()
                    .update(metrics_update(self, id, &delta, Some(mversion)))
                    .build(),
            ];
            match self.transact(tx).await {
                Ok(TxOutcome::Committed) => {
                    return Ok(WithdrawOutcome::Paid(Withdrawal {
                        request_id: request_id.to_owned(),
                        amount,
                        at,
                    }));
                }
                Ok(TxOutcome::ConditionFailed { .. }) | Err(StoreError::Contention { .. }) => {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention {
            what: format!("withdrawal {request_id} of {id}"),
            attempts: 5,
        })
    }
}
