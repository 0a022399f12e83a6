//! Trimmer: applies retention (dead set size and age caps, the stats window)
//! to every queue of this worker.

use std::sync::Arc;
use std::time::Duration;

use spool_client::{Client, QueueKeys};
use tokio_util::sync::CancellationToken;

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
pub struct Trimmer {
    client: Client,
    queues: Vec<Arc<QueueKeys>>,
    interval: Duration,
}

impl Trimmer {
    /// A trimmer over `queues`, running every `interval`.
    #[must_use]
    pub fn new(client: Client, queues: Vec<Arc<QueueKeys>>, interval: Duration) -> Self {
        Self {
            client,
            queues,
            interval,
        }
    }

    /// One pass over every queue.
    ///
    /// # Errors
    /// [`spool_client::Error`] from Redis.
    pub async fn run_once(&self) -> spool_client::Result<TrimmerReport> {
        let mut report = TrimmerReport::default();
        for keys in &self.queues {
            let r = self.client.trim(keys).await?;
            report.dead_removed += r.dead_removed;
            report.stats_removed += r.stats_removed;
        }
        Ok(report)
    }

    /// Loops until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        super::run_every(
            "trimmer",
            self.interval,
            stop,
            || self.run_once(),
            |r: &TrimmerReport| {
                if r.dead_removed > 0 {
                    tracing::info!(dead_removed = r.dead_removed, "trimmed the dead set");
                }
            },
        )
        .await;
    }
}
