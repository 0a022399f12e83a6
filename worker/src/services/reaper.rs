//! Reaper: returns jobs whose lease expired (their worker died, hung or lost
//! Redis for longer than the lease) to ready, counting the attempt, or to
//! dead when that was the last attempt.
//!
//! Sleeps until the earliest lease deadline of its queues (as `reap.lua`
//! reports it from Redis's clock), but never longer than its interval: a
//! killed (`SIGKILL`) worker's jobs are back in ready a few ms after their leases
//! expire (at most the lease after the worker's last heartbeat), not an
//! interval later. Live leases are extended long before their deadline, so
//! this wakes no more often than the interval.

use std::time::Duration;

use spool_client::runtime::{QueueKeys, Runtime};

use super::per_queue::{PerQueue, QueueDuty};
use crate::backoff::jittered;

/// Expired leases handled per script call.
const REAP_BATCH: usize = 1000;

/// Waited past a lease deadline before reaping it: Redis's clock and ours
/// differ by the round trip, and a deadline equal to now is not expired.
const EXPIRY_MARGIN: Duration = Duration::from_millis(20);

/// What one reaper pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaperReport {
    /// Jobs returned to ready.
    pub to_ready: u64,
    /// Jobs moved to dead (no attempts left).
    pub to_dead: u64,
    /// Time until the earliest lease deadline over all queues, if any.
    pub next_expiry: Option<Duration>,
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
        let more = r.to_ready + r.to_dead >= REAP_BATCH as u64;
        if !more {
            report.next_expiry = match (report.next_expiry, r.next_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(more)
    }

    fn next_pass(report: &ReaperReport, interval: Duration) -> Duration {
        let period = jittered(interval);
        report
            .next_expiry
            .map_or(period, |d| (d + EXPIRY_MARGIN).min(period))
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
