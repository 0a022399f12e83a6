//! Scheduler: moves due scheduled and retry jobs to ready.
//!
//! Sleeps exactly until the next due job (as `promote.lua` reports it from
//! Redis's clock), but never longer than its interval, and wakes early when
//! nudged (a wake token, or a short retry written by this process). That is
//! how promotion stays within milliseconds of the due time without polling
//! every few milliseconds.

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::{QueueKeys, Runtime};
use tokio::sync::Notify;

use crate::backoff::jittered;

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
pub(crate) struct Scheduler {
    pub(crate) runtime: Runtime,
    pub(crate) queues: Vec<Arc<QueueKeys>>,
    /// Longest time between passes ([`WorkerConfig::scheduler_interval`](crate::WorkerConfig::scheduler_interval)).
    pub(crate) interval: Duration,
    /// Wakes the scheduler early; shared with wakers and the completer.
    pub(crate) nudge: Arc<Notify>,
}

impl Scheduler {
    /// One pass over every queue.
    pub(crate) async fn run_once(&self) -> spool_client::Result<SchedulerReport> {
        let mut report = SchedulerReport::default();
        for keys in &self.queues {
            loop {
                let r = self.runtime.promote(keys, PROMOTE_BATCH).await?;
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
}

impl super::Service for Scheduler {
    const NAME: &'static str = "scheduler";

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        let report = self.run_once().await?;
        if report.promoted > 0 {
            tracing::debug!(promoted = report.promoted, "promoted due jobs");
        }
        let period = jittered(self.interval);
        Ok(report.next_due.map_or(period, |d| d.min(period)))
    }

    fn nudge(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.nudge))
    }
}
