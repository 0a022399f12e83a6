//! Trimmer: applies retention (dead set size and age caps, the stats
//! window, kept outcomes whose retention ended) to every queue of this
//! worker.

use spool_client::runtime::{QueueKeys, Runtime};

use super::per_queue::{PerQueue, QueueDuty};

/// What one trimmer pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrimmerReport {
    /// Dead jobs dropped.
    pub dead_removed: u64,
    /// Stale per-minute stats fields dropped.
    pub stats_removed: u64,
    /// Buckets of kept outcomes whose retention ended, unlinked.
    pub outcome_buckets_removed: u64,
}

/// The trimmer's duty: `trim.lua` on each queue (one call does a queue).
pub(crate) struct Trim;

/// The trimmer service.
pub(crate) type Trimmer = PerQueue<Trim>;

impl QueueDuty for Trim {
    const NAME: &'static str = "trimmer";
    type Report = TrimmerReport;

    async fn call(
        runtime: &Runtime,
        keys: &QueueKeys,
        report: &mut TrimmerReport,
    ) -> spool_client::Result<bool> {
        let r = runtime.trim(keys).await?;
        report.dead_removed += r.dead_removed;
        report.stats_removed += r.stats_removed;
        report.outcome_buckets_removed += r.outcome_buckets_removed;
        Ok(false)
    }

    fn log(r: &TrimmerReport) {
        if r.dead_removed > 0 {
            tracing::info!(dead_removed = r.dead_removed, "trimmed the dead set");
        }
    }
}
