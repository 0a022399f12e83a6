//! Scheduler: moves due scheduled and retry jobs to ready, and triggered
//! follow-up jobs from the queues' outboxes into their queues.
//!
//! Sleeps exactly until the next due job (as `promote.lua` reports it from
//! Redis's clock), but never longer than its interval, and wakes early when
//! nudged (a wake token, or a short retry written by this process). That is
//! how promotion stays within milliseconds of the due time without polling
//! every few milliseconds.

use std::time::{Duration, Instant};

use spool_client::runtime::{QueueKeys, Runtime};

use super::per_queue::{PerQueue, QueueDuty};
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
    /// Follow-up jobs created from the queues' outboxes.
    pub follow_ups: u64,
}

/// A job due this close after the planned pass is not worth a nudge
/// (the two times come from Redis's clock through different round trips).
const PLANNED_SLACK: Duration = Duration::from_millis(2);

/// When the scheduler plans its next pass. A busy worker's fetcher never
/// waits for wake tokens, so it would not hear that another process
/// scheduled a job due sooner; instead each claim brings the queue's due
/// hint (prelude.lua, "The due hint") and the fetcher nudges the scheduler
/// when the planned pass would be late for it.
#[derive(Debug, Default)]
pub(crate) struct PlannedPass(std::sync::Mutex<Option<Instant>>);

impl PlannedPass {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set(&self, at: Instant) {
        *self.lock() = Some(at);
    }

    /// Whether a job due at `due` would wait for the planned pass (always
    /// before the first pass has planned one).
    pub(crate) fn misses(&self, due: Instant) -> bool {
        self.lock()
            .is_none_or(|planned| planned > due + PLANNED_SLACK)
    }
}

/// The scheduler's duty: `promote.lua` on each queue.
pub(crate) struct Promote;

/// The scheduler service (built with a nudge, see `launcher`).
pub(crate) type Scheduler = PerQueue<Promote>;

impl QueueDuty for Promote {
    const NAME: &'static str = "scheduler";
    type Report = SchedulerReport;

    async fn call(
        runtime: &Runtime,
        keys: &QueueKeys,
        report: &mut SchedulerReport,
    ) -> spool_client::Result<bool> {
        let r = runtime.promote(keys, PROMOTE_BATCH).await?;
        report.promoted += r.moved;
        let mut again = r.moved >= PROMOTE_BATCH as u64;
        if r.follow_ups > 0 {
            let created = runtime
                .move_follow_ups(keys, spool_client::FOLLOW_UP_MOVE_BATCH)
                .await?;
            report.follow_ups += created;
            again |= r.follow_ups > spool_client::FOLLOW_UP_MOVE_BATCH as u64;
        }
        if again {
            return Ok(true);
        }
        report.next_due = match (report.next_due, r.next_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(false)
    }

    fn log(report: &SchedulerReport) {
        if report.promoted > 0 || report.follow_ups > 0 {
            tracing::debug!(
                promoted = report.promoted,
                follow_ups = report.follow_ups,
                "promoted due jobs, created follow-ups"
            );
        }
    }

    fn next_pass(report: &SchedulerReport, interval: Duration) -> Duration {
        let period = jittered(interval);
        report.next_due.map_or(period, |d| d.min(period))
    }
}
