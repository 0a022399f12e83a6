//! Scheduler: moves due scheduled and retry jobs to ready.
//!
//! Sleeps exactly until the next due job (as `promote.lua` reports it from
//! Redis's clock), but never longer than its interval, and wakes early when
//! nudged (a wake token, or a short retry written by this process). That is
//! how promotion stays within milliseconds of the due time without polling
//! every few milliseconds.

use std::sync::Arc;
use std::time::Duration;

use spool_client::{Client, QueueKeys};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::{jittered, Backoff};

/// Jobs promoted per set per script call.
const PROMOTE_BATCH: usize = 1000;

/// What one scheduler pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerReport {
    /// Jobs moved to ready.
    pub promoted: u64,
    /// Time until the next due job over all queues, if any.
    pub next_due: Option<Duration>,
}

/// Promotes due jobs of a set of queues.
#[derive(Debug, Clone)]
pub struct Scheduler {
    client: Client,
    queues: Vec<Arc<QueueKeys>>,
    interval: Duration,
    nudge: Arc<Notify>,
}

impl Scheduler {
    /// A scheduler over `queues`, looking at least every `interval`.
    #[must_use]
    pub fn new(client: Client, queues: Vec<Arc<QueueKeys>>, interval: Duration) -> Self {
        Self {
            client,
            queues,
            interval,
            nudge: Arc::new(Notify::new()),
        }
    }

    /// The handle that wakes the scheduler early.
    #[must_use]
    pub fn nudge(&self) -> Arc<Notify> {
        Arc::clone(&self.nudge)
    }

    /// One pass over every queue.
    ///
    /// # Errors
    /// [`spool_client::Error`] from Redis.
    pub async fn run_once(&self) -> spool_client::Result<SchedulerReport> {
        let mut report = SchedulerReport::default();
        for keys in &self.queues {
            loop {
                let r = self.client.promote(keys, PROMOTE_BATCH).await?;
                report.promoted += r.moved;
                if r.moved < PROMOTE_BATCH as u64 {
                    report.next_due = match (report.next_due, r.next_due) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Loops until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::redis();
        loop {
            let sleep = match self.run_once().await {
                Ok(report) => {
                    backoff.reset();
                    if report.promoted > 0 {
                        tracing::debug!(promoted = report.promoted, "promoted due jobs");
                    }
                    report
                        .next_due
                        .map_or(jittered(self.interval), |d| d.min(jittered(self.interval)))
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "scheduler pass failed");
                    delay
                }
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.nudge.notified() => {}
                () = stop.cancelled() => break,
            }
        }
        tracing::debug!("scheduler stopped");
    }
}
