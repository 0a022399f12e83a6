//! Trimmer: applies retention (dead set size and age caps, the stats window)
//! to every queue of this worker.

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::{QueueKeys, Runtime};

use crate::backoff::jittered;

/// What one trimmer pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrimmerReport {
    /// Dead jobs dropped.
    pub dead_removed: u64,
    /// Stale per-minute stats fields dropped.
    pub stats_removed: u64,
}

/// Applies retention to a set of queues.
#[derive(Debug, Clone)]
pub(crate) struct Trimmer {
    pub(crate) runtime: Runtime,
    pub(crate) queues: Vec<Arc<QueueKeys>>,
    /// Time between passes ([`WorkerConfig::trimmer_interval`](crate::WorkerConfig::trimmer_interval)).
    pub(crate) interval: Duration,
}

impl Trimmer {
    /// One pass over every queue.
    pub(crate) async fn run_once(&self) -> spool_client::Result<TrimmerReport> {
        let mut report = TrimmerReport::default();
        for keys in &self.queues {
            let r = self.runtime.trim(keys).await?;
            report.dead_removed += r.dead_removed;
            report.stats_removed += r.stats_removed;
        }
        Ok(report)
    }
}

impl super::Service for Trimmer {
    const NAME: &'static str = "trimmer";

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        let r = self.run_once().await?;
        if r.dead_removed > 0 {
            tracing::info!(dead_removed = r.dead_removed, "trimmed the dead set");
        }
        Ok(jittered(self.interval))
    }
}
