//! Reaper: returns jobs whose lease expired (their worker died, hung or lost
//! Redis for longer than the lease) to ready, counting the attempt, or to
//! dead when that was the last attempt.

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::{QueueKeys, Runtime};

use crate::backoff::jittered;

/// Expired leases handled per script call.
const REAP_BATCH: usize = 1000;

/// What one reaper pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaperReport {
    /// Jobs returned to ready.
    pub to_ready: u64,
    /// Jobs moved to dead (no attempts left).
    pub to_dead: u64,
}

/// Recovers expired leases of a set of queues.
#[derive(Debug, Clone)]
pub(crate) struct Reaper {
    pub(crate) runtime: Runtime,
    pub(crate) queues: Vec<Arc<QueueKeys>>,
    /// Time between passes ([`WorkerConfig::reaper_interval`](crate::WorkerConfig::reaper_interval)).
    pub(crate) interval: Duration,
}

impl Reaper {
    /// One pass over every queue.
    pub(crate) async fn run_once(&self) -> spool_client::Result<ReaperReport> {
        let mut report = ReaperReport::default();
        for keys in &self.queues {
            loop {
                let r = self.runtime.reap(keys, REAP_BATCH).await?;
                report.to_ready += r.to_ready;
                report.to_dead += r.to_dead;
                if r.to_ready + r.to_dead < REAP_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(report)
    }
}

impl super::Service for Reaper {
    const NAME: &'static str = "reaper";

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        let r = self.run_once().await?;
        if r.to_ready + r.to_dead > 0 {
            tracing::info!(
                to_ready = r.to_ready,
                to_dead = r.to_dead,
                "recovered jobs with expired leases"
            );
        }
        Ok(jittered(self.interval))
    }
}
