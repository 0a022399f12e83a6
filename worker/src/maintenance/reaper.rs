//! Reaper: returns jobs whose lease expired (their worker died, hung or lost
//! Redis for longer than the lease) to ready, counting the attempt, or to
//! dead when that was the last attempt.

use std::sync::Arc;
use std::time::Duration;

use spool_client::{Client, QueueKeys};
use tokio_util::sync::CancellationToken;

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
pub struct Reaper {
    client: Client,
    queues: Vec<Arc<QueueKeys>>,
    interval: Duration,
}

impl Reaper {
    /// A reaper over `queues`, looking every `interval`.
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
    pub async fn run_once(&self) -> spool_client::Result<ReaperReport> {
        let mut report = ReaperReport::default();
        for keys in &self.queues {
            loop {
                let r = self.client.reap(keys, REAP_BATCH).await?;
                report.to_ready += r.to_ready;
                report.to_dead += r.to_dead;
                if r.to_ready + r.to_dead < REAP_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Loops until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        super::run_every(
            "reaper",
            self.interval,
            stop,
            || self.run_once(),
            |r: &ReaperReport| {
                if r.to_ready + r.to_dead > 0 {
                    tracing::info!(
                        to_ready = r.to_ready,
                        to_dead = r.to_dead,
                        "recovered jobs with expired leases"
                    );
                }
            },
        )
        .await;
    }
}
