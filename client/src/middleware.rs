//! Enqueue middleware: code a client runs before each job it enqueues, to
//! add context (a trace id, the tenant, a priority), rewrite options (the
//! queue, a delay) or refuse the job, in the order added.
//!
//! A middleware is synchronous: it runs in the caller's task between
//! building the job and sending it, so it costs nothing when none is set
//! and never adds a round trip. It sees the job type, the args as JSON and
//! the [`EnqueueOptions`], which it may change; an `Err` refuses the job
//! ([`Error::Refused`], nothing is sent; in a bulk enqueue, none of the
//! jobs is). It runs for `enqueue*`, `enqueue_raw` (the CLI's) and each job
//! of `enqueue_bulk*`; a bulk enqueue writes to one queue, so a middleware
//! that moves one of its jobs to another queue is refused. Jobs created by
//! scripts (cron ticks, follow-ups, batch callbacks) are not enqueued by a
//! client and do not pass through it.
//!
//! ```no_run
//! # async fn demo() -> spool_client::Result<()> {
//! use spool_client::middleware::{EnqueueMiddleware, EnqueueRequest};
//! use spool_client::Client;
//!
//! struct Tenant(String);
//!
//! impl EnqueueMiddleware for Tenant {
//!     fn before_enqueue(&self, job: &mut EnqueueRequest<'_>) -> Result<(), String> {
//!         if job.job_type() == "export" && job.args().get().len() > 64 * 1024 {
//!             return Err("exports take at most 64 KiB of args".to_owned());
//!         }
//!         let mut trace = job.options().trace_context().cloned().unwrap_or_default();
//!         trace.insert("tenant".to_owned(), self.0.clone());
//!         job.update(|opts| opts.trace(trace));
//!         Ok(())
//!     }
//! }
//!
//! let client = Client::builder("redis://127.0.0.1:6379")
//!     .middleware(Tenant("acme".to_owned()))
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::enqueue::EnqueueOptions;
use crate::error::{Error, Result};

/// Code a client runs before each job it enqueues. See the [module docs](self).
pub trait EnqueueMiddleware: Send + Sync + 'static {
    /// Looks at the job and may change its options; `Err(reason)` refuses
    /// it.
    fn before_enqueue(&self, job: &mut EnqueueRequest<'_>) -> std::result::Result<(), String>;
}

/// A job about to be enqueued, as middleware sees it.
#[derive(Debug)]
pub struct EnqueueRequest<'a> {
    job_type: &'a str,
    args: &'a RawValue,
    options: &'a mut EnqueueOptions,
}

impl EnqueueRequest<'_> {
    /// The job type (`Job::TYPE`).
    #[must_use]
    pub fn job_type(&self) -> &str {
        self.job_type
    }

    /// The args as JSON.
    #[must_use]
    pub fn args(&self) -> &RawValue {
        self.args
    }

    /// The options the job is enqueued with (the caller's; the job type's
    /// defaults apply where they are unset).
    #[must_use]
    pub fn options(&self) -> &EnqueueOptions {
        self.options
    }

    /// Changes the options with the builder methods of
    /// [`EnqueueOptions`]: `job.update(|o| o.queue("bulk").priority(-1))`.
    pub fn update(&mut self, change: impl FnOnce(EnqueueOptions) -> EnqueueOptions) {
        *self.options = change(std::mem::take(self.options));
    }
}

/// The middleware of a client, outermost (first added) first.
pub(crate) type Chain = Arc<[Arc<dyn EnqueueMiddleware>]>;

/// The middleware a builder has collected.
#[derive(Clone, Default)]
pub(crate) struct Added(pub(crate) Vec<Arc<dyn EnqueueMiddleware>>);

impl std::fmt::Debug for Added {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} enqueue middleware", self.0.len())
    }
}

/// Runs `chain` over one job's options; the first refusal wins.
pub(crate) fn apply(
    chain: &Chain,
    job_type: &str,
    args: &RawValue,
    options: &mut EnqueueOptions,
) -> Result<()> {
    for (at, m) in chain.iter().enumerate() {
        let mut request = EnqueueRequest {
            job_type,
            args,
            options,
        };
        m.before_enqueue(&mut request)
            .map_err(|reason| Error::Refused {
                job_type: job_type.to_owned(),
                middleware: at,
                reason,
            })?;
    }
    Ok(())
}
