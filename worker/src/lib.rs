//! # spool-worker
//!
//! The runtime a service embeds to execute Spool jobs.
//!
//! A [`Worker`] owns these pieces (each in its own module):
//!
//! | step | module |
//! | --- | --- |
//! | claim jobs for free slots, block on Redis when idle | `fetcher` |
//! | run one job: decode, time limit, catch panics | `executor` |
//! | write ack / retry / dead, fenced and batched | `completer` |
//! | the leases this process holds, keyed by lease | `in_flight` |
//! | extend leases, register the process, promote due jobs, recover expired leases, retention, cron | `services` (one shape, one loop) |
//! | start and stop everything in order | `launcher` |
//! | Prometheus metrics of a worker process (jobs by type and outcome, durations, fetches, lease losses, Redis errors) | [`metrics`] |
//! | run code around every job (timing, logging, tenant context, refusing) | [`middleware`] |
//! | drive one service pass by hand in tests; with the `testing` feature, run a fake client's jobs inline | [`testing`] |
//!
//! Redis is only reached through `spool-client`'s
//! [`runtime`](spool_client::runtime) protocol: the worker never builds a
//! key or sends a state-changing command itself.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use spool_client::{Client, Job, JobOptions};
//! use spool_worker::{JobContext, JobError, Worker};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { image_id: u64 }
//!
//! impl Job for Resize {
//!     const TYPE: &'static str = "resize";
//!     fn options() -> JobOptions { JobOptions::default().queue("images").max_attempts(5) }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::connect("redis://127.0.0.1:6379").await?;
//!     Worker::builder(client)
//!         .concurrency(16)
//!         .register(|_ctx: JobContext, job: Resize| async move {
//!             if job.image_id == 0 {
//!                 return Err(JobError::permanent("image 0 does not exist"));
//!             }
//!             Ok(())
//!         })
//!         .build()?
//!         .run_until(spool_worker::shutdown_signal())
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! The worker runs on the caller's tokio runtime. A worker that shares a
//! small machine with Redis runs faster with one runtime thread fewer than
//! the cores (`#[tokio::main(worker_threads = 1)]` on two): a second
//! thread takes Redis's core and costs the worker about a third more CPU
//! per job (docs/development.md, "Runtime threads"). With Redis on its own
//! host, tokio's default is right.

mod backoff;
mod builder;
mod completer;
mod config;
mod error;
mod executor;
mod fetcher;
mod handler;
mod in_flight;
mod launcher;
pub mod metrics;
pub mod middleware;
mod outcome;
mod registry;
mod services;
mod shutdown;
pub mod testing;
mod webhook;

pub use builder::WorkerBuilder;
pub use config::{QueueOrder, QueueSpec, UnknownTypes, WorkerConfig};
pub use error::{Error, Result};
pub use handler::JobContext;
pub use launcher::Worker;
pub use outcome::JobError;
/// The metrics crate of [`metrics`] (the same as the dashboard's).
pub use prometheus_client;
pub use services::{
    CronConfig, CronReport, HeartbeatReport, ReaperReport, SchedulerReport, TrimmerReport,
};
pub use shutdown::shutdown_signal;
pub use spool_client::{
    Client, CronEntry, ExponentialJitter, FixedDelay, Job, JobOptions, RetryPolicy,
};
pub use tokio_util::sync::CancellationToken;
pub use webhook::{
    signature as webhook_signature, WebhookConfig, DELIVERY_HEADER, SIGNATURE_HEADER,
    WEBHOOK_TIMEOUT_DEFAULT,
};

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// This crate's own README (what crates.io shows), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
