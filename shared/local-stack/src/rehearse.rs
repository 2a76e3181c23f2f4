//! Reviews at a chosen instant, so that a brand can rehearse month end,
//! protection expiry and retention before they happen:
//! `local-stack review --at 2027-01-01T00:05:00+08:00` asks a running local
//! stack (`POST /local/reviews`, a route only the local stack serves) to
//! start the review a schedule would start at that instant. It runs as the
//! deployed one does, fanned out through the tier queue, and the answer
//! comes once the stack is idle again, with what the run did.
//!
//! A chosen instant exists only here: the deployed functions always use
//! the real clock, and the admin API's `POST /v1/admin/reviews` starts the
//! current period's review only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use tier_runtime::http::{self, ApiError};
use tier_store::Table;

use crate::poller::{self, InFlight};

/// The local route's path.
pub const PATH: &str = "/local/reviews";

/// How long the route waits for the review's messages to be processed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The month's review, as on the 1st at 00:05.
    Monthly,
    /// The day's review of rolling windows, as every other day at 00:05.
    Daily,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RehearsalRequest {
    kind: Kind,
    /// Any offset; the brand's calendar decides the period.
    at: DateTime<chrono::FixedOffset>,
}

/// What the route needs of the running stack.
pub struct Rehearsal {
    pub tier_evaluation: Arc<tier_evaluation::TierEvaluation>,
    pub turns: Arc<tokio::sync::Mutex<()>>,
    pub clients: tier_runtime::AwsClients,
    pub work_queues: Vec<String>,
    pub in_flight: InFlight,
    pub table: Table,
}

impl Rehearsal {
    pub async fn handle(&self, req: Request) -> Response<Body> {
        match self.rehearse(req.body().as_ref()).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn rehearse(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let req: RehearsalRequest = http::parse_json(body)?;
        let at = req.at.with_timezone(&Utc);
        let started = {
            // One invocation at a time, as the stack runs its functions.
            let _turn = self.turns.lock().await;
            match req.kind {
                Kind::Monthly => Some(self.tier_evaluation.start_review(at).await?),
                Kind::Daily => self.tier_evaluation.start_daily_review(at).await?,
            }
        };
        let Some(started) = started else {
            return Err(ApiError::unprocessable(
                "no_daily_review",
                "no daily review at that instant: the rule set reads no rolling windows, or it is the 1st, when the month's review runs",
            ));
        };
        poller::wait_idle(
            &self.clients,
            &self.work_queues,
            &self.in_flight,
            IDLE_TIMEOUT,
        )
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "still_running",
                format!("the review of {} is still running: {e:#}", started.period),
            )
        })?;
        let done = self
            .table
            .review(started.period)
            .await?
            .unwrap_or(started.clone());
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "created": started.created,
                "review": {
                    "period": done.period, "at": done.at, "state": done.state(),
                    "evaluated": done.evaluated, "changed": done.changed,
                    "pages_done": done.pages_done, "pages_listed": done.pages_listed,
                },
            }),
        ))
    }
}

/// The command's side: asks the stack at `base_url` for the review a
/// schedule would start at `at`, and returns the stack's answer once it
/// has run.
pub async fn request(
    base_url: &str,
    kind: Kind,
    at: DateTime<chrono::FixedOffset>,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}{PATH}", base_url.trim_end_matches('/'));
    // The command builds its client before (and without) any stack.
    tier_runtime::tls::install_crypto_provider();
    let r = reqwest::Client::new()
        .post(&url)
        .json(&json!({"kind": kind, "at": at.to_rfc3339()}))
        .timeout(IDLE_TIMEOUT + Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("asking {url}: is the local stack running (make run)?"))?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.context("the stack's answer")?;
    if !status.is_success() {
        bail!(
            "{status} {}: {}",
            body["code"].as_str().unwrap_or("?"),
            body["message"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}
