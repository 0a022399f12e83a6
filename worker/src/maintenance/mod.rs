//! Maintenance: the periodic services every worker process runs.
//!
//! - [`Scheduler`]: due scheduled and retry jobs → ready (`promote.lua`).
//! - [`Reaper`]: expired leases → ready, counting the attempt (`reap.lua`).
//! - [`Trimmer`]: retention of the dead set and of per-minute stats (`trim.lua`).
//! - [`CronScheduler`]: cron entries → ready, once per tick (`cron_tick.lua`);
//!   only in processes given a cron table. It wakes at each tick rather than
//!   on a jittered period: processes racing for a tick is the design (the
//!   tick key lets one win), not a load problem.
//!
//! There is no leader: the scripts are atomic and idempotent, so any number
//! of processes may run them at once (each job moves once); periods are
//! jittered so hosts do not tick together. Each service has the same shape:
//! a config, `run_once` returning a report (tests call it directly), and
//! `run` looping until the stop token fires; Redis errors are logged and
//! retried with backoff, never fatal.

mod cron;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff::{jittered, Backoff};

mod reaper;
mod scheduler;
mod trimmer;

pub use cron::{CronConfig, CronReport, CronScheduler};
pub use reaper::{Reaper, ReaperReport};
pub use scheduler::{Scheduler, SchedulerReport};
pub use trimmer::{Trimmer, TrimmerReport};

/// The loop of a service that runs a pass every `interval` (jittered) until
/// `stop` fires. A failed pass is logged and retried with backoff; it never
/// ends the service.
pub(crate) async fn run_every<R, F, Fut>(
    service: &'static str,
    interval: Duration,
    stop: CancellationToken,
    mut pass: F,
    report: impl Fn(&R),
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = spool_client::Result<R>>,
{
    let mut backoff = Backoff::redis();
    loop {
        let sleep = match pass().await {
            Ok(r) => {
                backoff.reset();
                report(&r);
                jittered(interval)
            }
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(service, error = %err, retry_in_ms = delay.as_millis() as u64, "maintenance pass failed");
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = stop.cancelled() => break,
        }
    }
    tracing::debug!(service, "stopped");
}
