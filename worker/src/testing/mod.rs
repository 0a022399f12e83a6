//! Test support: run the worker's background services one pass at a time;
//! with the `testing` feature, also the helpers for applications' tests:
//! `InlineRunner` drains a `FakeClient`'s jobs through real handlers
//! (re-exported here with `RedisServer` from `spool_client::testing`).
//!
//! The services themselves are internal (a [`Worker`](crate::Worker) starts
//! and stops them); tests of Spool, and of applications that want to drive
//! maintenance by hand (promote due jobs now, reap now), use these
//! functions instead of waiting for a period to pass. Each call is exactly
//! one pass of the service a worker runs, on the given queues.
//!
//! ```no_run
//! # async fn demo(client: spool_client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use spool_worker::testing;
//! let reaped = testing::reap_once(&client, &["default"]).await?;
//! let promoted = testing::promote_once(&client, &["default"]).await?;
//! println!("{} back to ready, {} promoted", reaped.to_ready, promoted.promoted);
//! # Ok(()) }
//! ```

#[cfg(feature = "testing")]
mod inline_runner;

#[cfg(feature = "testing")]
pub use inline_runner::{DrainReport, InlineRun, InlineRunner, InlineState, MAX_RUNS_DEFAULT};
#[cfg(feature = "testing")]
pub use spool_client::testing::{FakeClient, RecordedJob, RedisServer};

use std::sync::Arc;
use std::time::Duration;

use spool_client::{Client, CronEntry};

use crate::error::Result;
use crate::services::{
    CronConfig, CronReport, CronScheduler, PerQueue, Promote, QueueDuty, Reap, ReaperReport,
    SchedulerReport, Trim, TrimmerReport,
};

/// One pass of the per-queue duty `D` over `queues`.
async fn once<D: QueueDuty>(client: &Client, queues: &[&str]) -> Result<D::Report> {
    let keys = queues
        .iter()
        .map(|q| client.queue_keys(q).map(Arc::new))
        .collect::<spool_client::Result<_>>()?;
    let service = PerQueue::<D>::new(client.runtime(), keys, Duration::MAX);
    Ok(service.run_once().await?)
}

/// One reaper pass: expired leases of `queues` back to ready (or dead).
///
/// # Errors
/// [`crate::Error::Client`]: a bad queue name, or Redis.
pub async fn reap_once(client: &Client, queues: &[&str]) -> Result<ReaperReport> {
    once::<Reap>(client, queues).await
}

/// One scheduler pass: due scheduled and retry jobs of `queues` to ready.
///
/// # Errors
/// [`crate::Error::Client`]: a bad queue name, or Redis.
pub async fn promote_once(client: &Client, queues: &[&str]) -> Result<SchedulerReport> {
    once::<Promote>(client, queues).await
}

/// One trimmer pass: retention (dead set caps, stats window) on `queues`.
///
/// # Errors
/// [`crate::Error::Client`]: a bad queue name, or Redis.
pub async fn trim_once(client: &Client, queues: &[&str]) -> Result<TrimmerReport> {
    once::<Trim>(client, queues).await
}

/// A cron table driven by hand: announce it, run one pass.
#[derive(Debug, Clone)]
pub struct Cron(CronScheduler);

impl Cron {
    /// The cron service a worker with `entries` would run.
    ///
    /// # Errors
    /// As [`WorkerBuilder::cron`](crate::WorkerBuilder::cron) entries are
    /// checked at build: a bad entry, a duplicate name, a bad `config`.
    pub fn new(client: &Client, entries: Vec<CronEntry>, config: CronConfig) -> Result<Self> {
        CronScheduler::new(client.runtime(), entries, config).map(Self)
    }

    /// Announces the table (as every worker does every `refresh_interval`);
    /// returns the names of entries forgotten because nobody announced them.
    ///
    /// # Errors
    /// [`crate::Error::Client`] from Redis.
    pub async fn register(&self) -> Result<Vec<String>> {
        Ok(self.0.register().await?.removed)
    }

    /// One pass: enqueue every due tick this process wins.
    ///
    /// # Errors
    /// [`crate::Error::Client`] from Redis.
    pub async fn run_once(&self) -> Result<CronReport> {
        Ok(self.0.run_once().await?)
    }
}
