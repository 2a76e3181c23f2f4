//! Rule sets: publishing one (and the backfill it may start), reading the
//! current one, and what-ifs of a draft.

use super::*;

/// A rule set document from a request body, validated: every problem
/// named with its field, as `422 invalid_rule_set`.
fn rule_set_from(body: &[u8]) -> Result<RuleSet, ApiError> {
    let doc: RuleSetDoc = http::parse_json(body).map_err(|e| ApiError {
        code: if e.code == "invalid_document" {
            "invalid_rule_set"
        } else {
            e.code
        },
        ..e
    })?;
    RuleSet::new(doc).map_err(|e| {
        let problems: Vec<String> =
            e.0.iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect();
        ApiError::unprocessable("invalid_rule_set", problems.join("; "))
    })
}

/// The same answer under another status (a what-if just started is 202).
fn with_status(mut r: Response<Body>, status: StatusCode) -> Response<Body> {
    *r.status_mut() = status;
    r
}

impl AdminApi {
    pub(crate) async fn publish_rule_set(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let rules = rule_set_from(body)?;
        let previous = self.table.current_rule_set().await?;
        let now = Utc::now();
        // What the new rules read that the old ones did not keep is counted
        // from the ledger, so they do not start from nothing.
        let needed = rules.backfill_from(previous.as_ref().map(|p| &p.rules));
        let version = self
            .table
            .publish_rule_set(&rules, now, needed.is_some())
            .await?;
        tracing::info!(version, "rule set published");
        let backfill = match needed {
            None => "none",
            Some(b) => match self.start_backfill(version, b, now).await {
                Ok(()) => "started",
                Err(e) => {
                    tracing::error!(version, error = %e, "could not start the backfill; POST /v1/admin/rule-set:backfill starts it");
                    "not_started"
                }
            },
        };
        // Plans follow the new rules at once, not at the next hour.
        let plans = if rules.reserves().is_some() {
            let sweep = tier_messages::Message::ReservePlanV1(tier_messages::ReservePlanRun {
                at: Some(now),
                ..Default::default()
            });
            match self.dead_letters.stock_events.source.send(&sweep).await {
                Ok(()) => "started",
                Err(e) => {
                    tracing::error!(version, error = %e, "could not start the reserve plans; POST /v1/admin/stock:plan starts them");
                    "not_started"
                }
            }
        } else {
            "none"
        };
        Ok(http::json(
            StatusCode::CREATED,
            &json!({"version": version, "tiers": rules.tiers().len(), "backfill": backfill, "reserve_plans": plans}),
        ))
    }

    /// `POST /v1/admin/rule-set:backfill`: counts the ledger into everything
    /// the current rule set reads by day or by SKU. Safe to repeat: what is
    /// counted already is left alone.
    pub(crate) async fn backfill_rule_set(&self) -> Result<Response<Body>, ApiError> {
        let current =
            self.table.current_rule_set().await?.ok_or_else(|| {
                ApiError::conflict("no_rule_set", "no rule set has been published")
            })?;
        let Some(b) = current.rules.backfill_from(None) else {
            return Ok(http::json(
                StatusCode::OK,
                &json!({"rule_set_version": current.version, "backfill": "none"}),
            ));
        };
        self.start_backfill(current.version, b, Utc::now()).await?;
        Ok(http::json(
            StatusCode::ACCEPTED,
            &json!({"rule_set_version": current.version, "backfill": "started"}),
        ))
    }

    /// One partition message per tier any version has had, and one for
    /// distributors without a tier: tier evaluation pages through them.
    pub(crate) async fn start_backfill(
        &self,
        version: u64,
        b: tier_domain::rules::Backfill,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), tier_store::StoreError> {
        let backfill = tier_messages::Backfill::new(version, b, self.calendar.day_of(now));
        // Twice: at once, and again later for orders first counted under the
        // previous rules in the moment of publication and for distributors
        // whose tier moved while their partition was listed. The second pass
        // finds everything else counted and only reads.
        let tiers: Vec<Option<tier_domain::ids::TierId>> = self
            .table
            .all_tier_ids()
            .await?
            .into_iter()
            .map(Some)
            .chain([None])
            .collect();
        let passes: Vec<u32> = [0]
            .into_iter()
            .chain((self.backfill_recheck_secs > 0).then_some(self.backfill_recheck_secs))
            .collect();
        let start = self
            .table
            .record_backfill_start(version, now, (tiers.len() * passes.len()) as u64)
            .await?;
        for (pass, delay) in passes.into_iter().enumerate() {
            for tier in &tiers {
                let partition = tier_messages::BackfillPartition {
                    backfill: backfill.clone(),
                    tier: tier.clone(),
                    cursor: None,
                    start,
                    pass: pass as u64,
                };
                let message = tier_messages::Message::BackfillPartitionV1(partition);
                self.tier_events.send_delayed(&message, delay).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn get_rule_set(&self) -> Result<Response<Body>, ApiError> {
        let current =
            self.table.current_rule_set().await?.ok_or_else(|| {
                ApiError::not_found("no_rule_set", "no rule set has been published")
            })?;
        let backfill = self.table.backfill_progress(current.version).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"version": current.version, "published_at": current.published_at, "rule_set": current.rules.doc(), "backfill": backfill}),
        ))
    }

    /// `PUT /v1/admin/what-ifs/{id}`: every distributor is to be evaluated
    /// against the draft as a review would (protection periods and locks
    /// included), through the tier queue, a page at a time, changing
    /// nothing. Starting the same id with the same draft again answers
    /// where it stands, and sends its partitions again only if the first
    /// start failed before sending them all (their pages count once).
    pub(crate) async fn start_what_if(
        &self,
        what_if: WhatIfId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let draft = rule_set_from(body)?;
        // Every tier any published version has had (members of a dropped
        // tier are distributors too), the draft's, and no tier.
        let mut names: Vec<String> = self
            .table
            .all_tier_ids()
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        for t in draft.tiers() {
            if !names.iter().any(|n| n == t.id.as_str()) {
                names.push(t.id.to_string());
            }
        }
        names.push(tier_domain::ids::NO_TIER.to_owned());
        let doc = serde_json::to_value(draft.doc()).expect("rule sets serialise");
        let (run, status) = match self
            .table
            .start_what_if(what_if.as_str(), &doc, Utc::now(), &names)
            .await?
        {
            tier_store::what_if::WhatIfStart::Created(run) => (run, StatusCode::ACCEPTED),
            tier_store::what_if::WhatIfStart::Existing(run) => (run, StatusCode::OK),
            tier_store::what_if::WhatIfStart::OtherDraft => {
                return Err(ApiError::conflict(
                    "what_if_exists",
                    format!("what-if {what_if} was started with another draft; choose another id"),
                ));
            }
        };
        // A start that failed before every partition was sent is finished
        // by the next: the listings and pages it did send are named the
        // same again, and count once.
        if !run.sent {
            let at = tier_messages::WhatIfRun {
                id: run.id.clone(),
                at: run.at,
            };
            for name in &run.partitions {
                let tier = TierId::parse_or_none(name).map_err(|e| {
                    tier_store::StoreError::corrupt(
                        &("WHATIF".into(), run.id.clone()),
                        e.to_string(),
                    )
                })?;
                self.tier_events
                    .send(&tier_messages::Message::WhatIfPartitionV1(
                        tier_messages::WhatIfPartition {
                            run: at.clone(),
                            tier,
                            cursor: None,
                        },
                    ))
                    .await?;
            }
            self.table.mark_what_if_sent(&run.id).await?;
        }
        self.get_what_if(what_if).await.map(|r| {
            if status == StatusCode::ACCEPTED {
                with_status(r, status)
            } else {
                r
            }
        })
    }

    /// `GET /v1/admin/what-ifs/{id}`: its pages added up so far.
    pub(crate) async fn get_what_if(&self, what_if: WhatIfId) -> Result<Response<Body>, ApiError> {
        let r = self
            .table
            .what_if_results(what_if.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    "what_if_not_found",
                    format!("no what-if {what_if} (they are kept a week)"),
                )
            })?;
        let moved = r.tally.moved();
        let moves: Vec<_> = r.tally.by_tiers().map(|(from, to, m)| json!({"from": from, "to": to, "count": m.count, "distributors": m.distributors})).collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "id": what_if, "as_of": r.run.at, "status": if r.complete() { "complete" } else { "running" },
                "partitions": r.run.partitions.len(), "partitions_listed": r.partitions_listed, "pages": r.pages, "pages_done": r.pages_done,
                "evaluated": r.tally.evaluated, "unchanged": r.tally.evaluated - moved, "changed_during_run": r.tally.skipped, "moves": moves,
            }),
        ))
    }
}
