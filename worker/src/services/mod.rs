//! Background services: the periodic duties every worker process runs
//! beside fetching, all with one shape.
//!
//! | service | one pass | scripts |
//! | --- | --- | --- |
//! | [`Heartbeat`] | extend this process's leases, refresh its process record | `extend`, `heartbeat` |
//! | [`Scheduler`] | due scheduled and retry jobs → ready; triggered follow-ups → their queues | `promote`, `enqueue`, `outbox_done` |
//! | [`Reaper`] | expired leases → ready (counting the attempt) or dead | `reap` |
//! | [`Trimmer`] | retention of the dead set and the per-minute stats | `trim` |
//! | [`CronScheduler`] | cron entries → ready, once per tick | `cron_tick`, `cron_register` |
//!
//! Beside them, [`listen_for_cancels`] holds the process's subscription to
//! cancel requests (a stream, not a period).
//!
//! The shape (River's maintenance services): settings come from
//! [`WorkerConfig`](crate::WorkerConfig) (named `*_DEFAULT` constants, one
//! `validate`) or, for cron, [`CronConfig`] (the same pattern); `run_once`
//! does one pass and returns a report (tests call it directly through
//! [`crate::testing`]); [`Service::pass`] logs that report and says when
//! to run next; [`run`] is the one loop, which owns backoff on Redis errors
//! and shutdown. The three that work queue by queue share one more layer,
//! `per_queue`: each is a `QueueDuty` (one script call on one queue) run
//! by the generic `PerQueue` service. Jitter is each service's choice because only it knows
//! whether the next run is a period (jittered, so hosts do not tick
//! together) or an instant (the next due job, the next cron tick).
//!
//! There is no leader: the scripts are atomic and idempotent, so any number
//! of processes may run them at once (each job moves once).
//!
//! The fetcher and completer are not services: they are pipelines driven by
//! slots and channels (a free slot or an outcome is the trigger, not time),
//! and they stop in a fixed order at shutdown (see `launcher`).

mod cancels;
mod cron;
mod heartbeat;
mod per_queue;
mod reaper;
pub(crate) mod scheduler;
mod trimmer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

pub(crate) use cancels::listen_for_cancels;
pub(crate) use cron::CronScheduler;
pub use cron::{CronConfig, CronReport};
pub(crate) use heartbeat::Heartbeat;
pub use heartbeat::HeartbeatReport;
pub(crate) use per_queue::{PerQueue, QueueDuty};
pub use reaper::ReaperReport;
pub(crate) use reaper::{Reap, Reaper};
pub use scheduler::SchedulerReport;
pub(crate) use scheduler::{Promote, Scheduler};
pub use trimmer::TrimmerReport;
pub(crate) use trimmer::{Trim, Trimmer};

/// One background service.
pub(crate) trait Service: Send + 'static {
    /// Its name in logs.
    const NAME: &'static str;

    /// One pass: do the work, log what happened, and return how long to
    /// wait before the next pass.
    fn pass(&mut self) -> impl Future<Output = spool_client::Result<Duration>> + Send;

    /// A handle that ends the wait early (a job arrived sooner than the
    /// next pass), if the service has one.
    fn nudge(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Runs `service` until `stop` fires: a pass, then a wait. A failed pass is
/// logged and retried with backoff (50 ms doubling to 1 s); it never ends
/// the service.
pub(crate) async fn run<S: Service>(
    mut service: S,
    stop: CancellationToken,
    metrics: crate::metrics::WorkerMetrics,
) {
    // A Notify nobody holds never fires: services without a nudge just wait.
    let nudge = service.nudge().unwrap_or_default();
    let mut backoff = Backoff::redis();
    loop {
        let wait = match service.pass().await {
            Ok(next) => {
                backoff.reset();
                next
            }
            Err(err) => {
                metrics.redis_error(S::NAME);
                let delay = backoff.next_delay();
                tracing::warn!(service = S::NAME, error = %err,
                    retry_in_ms = crate::backoff::millis(delay),
                    "service pass failed; retrying");
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = nudge.notified() => {}
            () = stop.cancelled() => break,
        }
    }
    tracing::debug!(service = S::NAME, "stopped");
}
