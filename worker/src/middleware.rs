//! Worker middleware: code that runs around every job's handler, in the
//! order added (the first added is the outermost), for timing, logging,
//! tenant context, metrics or refusing a job.
//!
//! A middleware gets the job's [`JobContext`] and a [`Next`]; it awaits
//! `next.run()` (or does not: returning an error without calling it
//! refuses the job, which then retries or dies like any failure) and may
//! look at or replace the result. Context for the handler travels the Rust
//! way, in a `tokio::task_local!` scope around `next.run()`, since the
//! handler runs inside that future.
//!
//! Why a trait of Spool's own rather than tower's `Layer`/`Service`: a job
//! has no request/response pair to map, no readiness to poll and no
//! back-pressure to signal (the worker's concurrency is the back-pressure),
//! so `poll_ready`, `Clone` services and boxed error types would only add
//! ceremony; [`from_fn`] makes a middleware of an async closure.
//!
//! Middleware runs inside the job's time limit and panic guard, after the
//! args decoded (a job whose args do not decode is dead before any
//! middleware sees it). With no middleware the handler future is awaited
//! as it is: nothing is boxed or allocated per job.
//!
//! ```no_run
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
//! # impl spool_client::Job for Ping { const TYPE: &'static str = "ping"; }
//! # fn demo(client: spool_client::Client) -> spool_worker::Result<()> {
//! use spool_worker::middleware::{from_fn, Next};
//! use spool_worker::{JobContext, Worker};
//!
//! let worker = Worker::builder(client)
//!     .middleware(from_fn(|ctx: JobContext, next: Next| async move {
//!         let started = std::time::Instant::now();
//!         let result = next.run().await;
//!         tracing::info!(job_id = %ctx.id(), ok = result.is_ok(), elapsed = ?started.elapsed(), "job ran");
//!         result
//!     }))
//!     .register(|_ctx, _job: Ping| async { Ok(()) })
//!     .build()?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::handler::{HandlerFuture, JobContext, Returned};
use crate::outcome::JobError;

/// What a job's handler returned, as middleware sees it: the value kept
/// with the outcome (when the job keeps one), opaque but inspectable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutput(pub(crate) Returned);

impl JobOutput {
    /// The handler's value as JSON, for a handler registered with
    /// `register_returning`; `None` for `()` or a value that did not
    /// serialize.
    #[must_use]
    pub fn json(&self) -> Option<&str> {
        match &self.0 {
            Some(Ok(json)) => Some(json),
            _ => None,
        }
    }
}

/// The result of a job's run as middleware passes it along.
pub type JobResult = Result<JobOutput, JobError>;

/// Code run around every job's handler. See the [module docs](self).
pub trait Middleware: Send + Sync + 'static {
    /// Runs the rest of the chain with `next.run()` (or refuses the job by
    /// returning an error without calling it).
    fn call(&self, ctx: JobContext, next: Next) -> BoxFuture<'static, JobResult>;
}

/// The rest of the chain: the middleware after this one, then the handler.
pub struct Next {
    chain: Arc<[Arc<dyn Middleware>]>,
    index: usize,
    ctx: JobContext,
    handler: HandlerFuture,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.index))
            .finish_non_exhaustive()
    }
}

impl Next {
    /// Runs the rest of the chain and the handler; resolves to what they
    /// returned.
    pub async fn run(self) -> JobResult {
        match self.chain.get(self.index).cloned() {
            Some(m) => {
                let ctx = self.ctx.clone();
                let next = Next {
                    index: self.index + 1,
                    ..self
                };
                m.call(ctx, next).await
            }
            None => self.handler.await.map(JobOutput),
        }
    }
}

/// The middleware `f`: an async closure of the job's context and the rest
/// of the chain.
pub fn from_fn<F, Fut>(f: F) -> FromFn<F>
where
    F: Fn(JobContext, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    FromFn(f)
}

/// A middleware made by [`from_fn`].
#[derive(Debug, Clone)]
pub struct FromFn<F>(F);

impl<F, Fut> Middleware for FromFn<F>
where
    F: Fn(JobContext, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    fn call(&self, ctx: JobContext, next: Next) -> BoxFuture<'static, JobResult> {
        (self.0)(ctx, next).boxed()
    }
}

/// `handler` run through `chain` (outermost first; the executor calls it
/// only when the chain is not empty).
pub(crate) fn wrap(
    chain: &Arc<[Arc<dyn Middleware>]>,
    ctx: JobContext,
    handler: HandlerFuture,
) -> HandlerFuture {
    let next = Next {
        chain: Arc::clone(chain),
        index: 0,
        ctx,
        handler,
    };
    async move { next.run().await.map(|out| out.0) }.boxed()
}
