//! The handler side of a job: [`JobContext`] (what a running handler knows)
//! and the type-erased handler the registry stores.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use spool_client::{JobId, JobRecord};
use tokio_util::sync::CancellationToken;

use crate::outcome::JobError;

/// What a running handler knows about its job: its id and queue, which
/// attempt this is, the deadline of its time limit, and a cancellation
/// token that fires on shutdown, when the lease was lost, and when an
/// operator cancels the job.
///
/// A long handler checks the token between steps (or `select!`s on it) so
/// it can stop early; returning an error then retries the job later.
///
/// ```no_run
/// use spool_worker::{JobContext, JobError};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Export { rows: u32 }
/// # impl spool_client::Job for Export { const TYPE: &'static str = "export"; }
///
/// async fn export(ctx: JobContext, job: Export) -> Result<(), JobError> {
///     for row in 0..job.rows {
///         if ctx.is_cancelled() {
///             return Err(JobError::retry(format!("stopped at row {row}")));
///         }
///         tokio::select! {
///             () = ctx.cancellation().cancelled() => return Err(JobError::retry("cancelled")),
///             () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {} // one row
///         }
///     }
///     tracing::info!(id = %ctx.id(), attempt = ctx.attempt(), max = ctx.max_attempts(), "exported");
///     Ok(())
/// }
/// # fn demo(client: spool_client::Client) {
/// # let _ = spool_worker::Worker::builder(client).register(export);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JobContext {
    pub(crate) deadline: Instant,
    pub(crate) cancel: CancellationToken,
    /// The run's shared flags (whether it was asked to cancel).
    pub(crate) run: Arc<crate::in_flight::RunState>,
    pub(crate) record: Arc<JobRecord>,
}

impl JobContext {
    /// The job id.
    #[must_use]
    pub fn id(&self) -> &JobId {
        &self.record.id
    }

    /// The queue the job came from.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.record.queue
    }

    /// For a follow-up job: the job whose end created it, with its state
    /// and result (`parent().result` as JSON; decode it with
    /// `serde_json::from_str(parent.result.get())`).
    #[must_use]
    pub fn parent(&self) -> Option<&spool_client::Parent> {
        self.record.parent.as_ref()
    }

    /// The batch (or chain) this job belongs to.
    #[must_use]
    pub fn batch(&self) -> Option<&spool_client::BatchId> {
        self.record.batch.as_ref()
    }

    /// For a batch's callback: the batch as it was when it triggered this
    /// job (counts, first death, and the results its members kept, in the
    /// order they were added: a chord).
    #[must_use]
    pub fn batch_callback(&self) -> Option<&spool_client::BatchCallback> {
        self.record.batch_callback.as_ref()
    }

    /// This run's number, 1 for the first.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.record.attempt
    }

    /// Runs allowed in total.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.record.max_attempts
    }

    /// When the handler's time limit runs out (the handler is dropped then).
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Fires when the worker begins shutting down, the job's lease was lost
    /// (another worker may be running it), or the job was cancelled
    /// ([`JobContext::is_cancel_requested`]). Long handlers should watch it
    /// and stop early; an error returned after shutdown began hands the job
    /// back to ready without counting the attempt; a cancelled job ends
    /// cancelled whatever the handler returns.
    #[must_use]
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True once [`JobContext::cancellation`] fired.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// True once someone cancelled this job (`Client::cancel`, `spool
    /// cancel`, the dashboard): the job ends cancelled whatever the handler
    /// returns, so it may stop at once.
    #[must_use]
    pub fn is_cancel_requested(&self) -> bool {
        self.run.cancel_asked.load(Ordering::Acquire)
    }

    /// The full job record (trace context, idempotency key, timestamps).
    #[must_use]
    pub fn record(&self) -> &JobRecord {
        &self.record
    }
}

/// The value a handler returned: JSON, or why it could not be serialized;
/// `None` for `()`.
pub(crate) type Returned = Option<Result<String, String>>;

/// A boxed handler future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Returned, JobError>> + Send>>;

/// A handler with its job type erased: it decodes the args itself. `Err` from
/// the outer result means the args did not decode (a permanent failure).
pub(crate) type ErasedHandler =
    Arc<dyn Fn(JobContext, &JobRecord) -> Result<HandlerFuture, String> + Send + Sync>;
