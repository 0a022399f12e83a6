//! Reaper: returns jobs whose lease expired (their worker died, hung or lost
//! Redis for longer than the lease) to ready, counting the attempt, or to
//! dead when that was the last attempt.

use spool_client::runtime::{QueueKeys, Runtime};

use super::per_queue::{PerQueue, QueueDuty};

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

/// The reaper's duty: `reap.lua` on each queue.
pub(crate) struct Reap;

/// The reaper service.
pub(crate) type Reaper = PerQueue<Reap>;

impl QueueDuty for Reap {
    const NAME: &'static str = "reaper";
    type Report = ReaperReport;

    async fn call(
        runtime: &Runtime,
        keys: &QueueKeys,
        report: &mut ReaperReport,
    ) -> spool_client::Result<bool> {
        let r = runtime.reap(keys, REAP_BATCH).await?;
        report.to_ready += r.to_ready;
        report.to_dead += r.to_dead;
        Ok(r.to_ready + r.to_dead >= REAP_BATCH as u64)
    }

    fn log(r: &ReaperReport) {
        if r.to_ready + r.to_dead > 0 {
            tracing::info!(
                to_ready = r.to_ready,
                to_dead = r.to_dead,
                "recovered jobs with expired leases"
            );
        }
    }
}
