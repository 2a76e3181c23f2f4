//! Waiting for a run (a review, a what-if) to finish: how often to ask, and
//! when to give up (exit 5, the run goes on).

use std::time::{Duration, Instant};

use crate::error::CliError;

#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Seconds between two looks.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Give up after this many seconds (exit 5); by default wait until done.
    #[arg(long)]
    pub max_wait: Option<u64>,
}

pub struct Waiter {
    started: Instant,
    interval: Duration,
    max_wait: Option<Duration>,
}

impl Waiter {
    pub fn new(args: &WaitArgs) -> Self {
        Self {
            started: Instant::now(),
            interval: Duration::from_secs_f64(args.interval.clamp(0.05, 60.0)),
            max_wait: args.max_wait.map(Duration::from_secs),
        }
    }

    /// Sleeps until the next look, or fails if that would pass the limit.
    pub async fn next(&self, what: &str) -> Result<(), CliError> {
        if let Some(max) = self.max_wait
            && self.started.elapsed() + self.interval > max
        {
            return Err(CliError::StillRunning(format!(
                "{what} is still running after {} s; it goes on without us",
                max.as_secs()
            )));
        }
        tokio::time::sleep(self.interval).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[tokio::test]
    async fn a_wait_past_its_limit_gives_up_with_exit_5() {
        let w = Waiter::new(&WaitArgs {
            interval: 1.0,
            max_wait: Some(0),
        });
        let e = w.next("the review of 2026-12").await.unwrap_err();
        assert_eq!(e.exit_code(), exit::STILL_RUNNING);
        assert!(e.to_string().contains("still running after 0 s"), "{e}");
        let w = Waiter::new(&WaitArgs {
            interval: 0.05,
            max_wait: None,
        });
        w.next("a what-if").await.unwrap();
    }
}
