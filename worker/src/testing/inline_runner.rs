//! [`InlineRunner`]: drains the jobs a [`FakeClient`] recorded through the
//! handlers of a [`WorkerBuilder`], in this task, without Redis.
//!
//! Each run goes through the executor's own `run` (decode, handler lookup,
//! time limit, panic catch, judging the result), so a job ends as it would
//! on a worker. What the scripts would do next is simulated here, as
//! `fail.lua` does it: a retry counts an attempt and the job dies once
//! `max_attempts` runs failed; a permanent error or undecodable args die at
//! once; a rate-limited run does not count. Backoff delays are recorded in
//! the report, never slept: a retry runs at once, and so does a scheduled
//! job. Jobs the handlers enqueue through the fake client are drained too,
//! up to [`InlineRunner::max_runs`] runs in all.
//!
//! Not simulated: follow-ups, batches, webhooks, cancellation, rate limits,
//! ordered groups, kept outcomes (a handler's value is reported only for a
//! job that would keep it).

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::Outcome;
use spool_client::testing::{FakeClient, RecordedJob};
use spool_client::Job;
use tokio_util::sync::CancellationToken;

use crate::builder::WorkerBuilder;
use crate::error::{Error, Result};
use crate::executor::{self, RunDeps, Verdict};
use crate::in_flight::RunState;

/// Runs allowed in one [`InlineRunner::drain`] by default.
pub const MAX_RUNS_DEFAULT: usize = 1000;

/// How an inline job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineState {
    /// The handler succeeded.
    Done,
    /// Dead: a permanent error, args that do not decode, or the last
    /// attempt failed. `error` is the last error.
    Dead {
        /// The error that ended the job.
        error: String,
    },
}

/// One job's runs in an [`InlineRunner::drain`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InlineRun {
    /// The job as it was enqueued.
    pub job: RecordedJob,
    /// How it ended.
    pub state: InlineState,
    /// Attempts counted (rate-limited runs are not).
    pub attempts: u32,
    /// Each failed run's error, in order (the last one included when dead).
    pub errors: Vec<String>,
    /// The delays a worker would have waited before each retry (or after a
    /// rate-limited run): recorded, not slept.
    pub retry_delays: Vec<Duration>,
    /// The handler's value as JSON, for a job that keeps its outcome
    /// ([`JobOptions::keep_outcome`](spool_client::JobOptions::keep_outcome)).
    pub result: Option<String>,
}

impl InlineRun {
    /// True when the job ended done.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == InlineState::Done
    }

    /// The error a dead job ended with.
    #[must_use]
    pub fn dead_error(&self) -> Option<&str> {
        match &self.state {
            InlineState::Dead { error } => Some(error),
            InlineState::Done => None,
        }
    }

    /// How many times the job was retried (runs after the first).
    #[must_use]
    pub fn retries(&self) -> usize {
        self.retry_delays.len()
    }
}

/// What an [`InlineRunner::drain`] ran, in the order jobs finished.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DrainReport {
    /// One entry per job.
    pub runs: Vec<InlineRun>,
}

impl DrainReport {
    /// The jobs that ended done.
    #[must_use]
    pub fn done(&self) -> Vec<&InlineRun> {
        self.runs.iter().filter(|r| r.is_done()).collect()
    }

    /// The jobs that ended dead.
    #[must_use]
    pub fn dead(&self) -> Vec<&InlineRun> {
        self.runs.iter().filter(|r| !r.is_done()).collect()
    }

    /// The runs of job type `J`.
    #[must_use]
    pub fn of_type<J: Job>(&self) -> Vec<&InlineRun> {
        self.runs
            .iter()
            .filter(|r| r.job.job_type() == J::TYPE)
            .collect()
    }
}

/// Runs a fake client's recorded jobs through real handlers, in the calling
/// task (Sidekiq's `inline!`, River's `rivertest`).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spool_worker::testing::{FakeClient, InlineRunner};
/// use spool_worker::{Job, JobContext, JobError, Worker};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { cents: u64 }
/// impl Job for Charge { const TYPE: &'static str = "charge"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeClient::new();
/// let worker = Worker::builder(fake.client()).register(|ctx: JobContext, job: Charge| async move {
///     match job.cents {
///         0 => Err(JobError::permanent("nothing to charge")),
///         _ if ctx.attempt() < 2 => Err(JobError::retry("card network timeout")),
///         _ => Ok(()),
///     }
/// });
/// let runner = InlineRunner::new(worker)?;
/// fake.client().enqueue(&Charge { cents: 500 }).await?;
/// fake.client().enqueue(&Charge { cents: 0 }).await?;
/// let report = runner.drain().await?;
/// assert_eq!(report.done()[0].retries(), 1);
/// assert_eq!(report.dead()[0].dead_error(), Some("nothing to charge"));
/// # Ok(()) }
/// ```
pub struct InlineRunner {
    fake: FakeClient,
    deps: RunDeps,
    max_runs: usize,
}

impl std::fmt::Debug for InlineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineRunner")
            .field("max_runs", &self.max_runs)
            .finish_non_exhaustive()
    }
}

impl InlineRunner {
    /// A runner with `builder`'s handlers and unknown-type setting, draining
    /// the fake client the builder was made with.
    ///
    /// # Errors
    /// [`Error::Config`] when the builder's client is not a
    /// [`FakeClient`]'s.
    pub fn new(builder: WorkerBuilder) -> Result<Self> {
        let (client, registry, unknown_types) = builder.into_inline_parts();
        let fake = FakeClient::of(&client).ok_or_else(|| {
            Error::Config(
                "the inline runner drains a fake client: build the worker with \
                 Worker::builder(FakeClient::new().client())"
                    .into(),
            )
        })?;
        executor::record_panic_locations();
        Ok(Self {
            deps: RunDeps {
                registry: Arc::new(registry),
                hard_stop: CancellationToken::new(),
                shutting_down: CancellationToken::new(),
                max_result_bytes: client.max_payload_bytes(),
                unknown_types,
                metrics: crate::metrics::WorkerMetrics::new(),
                keyring: client.keyring().cloned(),
            },
            fake,
            max_runs: MAX_RUNS_DEFAULT,
        })
    }

    /// Most handler runs one drain may make (default [`MAX_RUNS_DEFAULT`]),
    /// so handlers that keep enqueueing cannot loop forever.
    #[must_use]
    pub fn max_runs(mut self, runs: usize) -> Self {
        self.max_runs = runs;
        self
    }

    /// The fake client whose jobs this runner drains.
    #[must_use]
    pub fn fake(&self) -> &FakeClient {
        &self.fake
    }

    /// Runs every recorded job to done or dead, in enqueue order, then the
    /// jobs those runs enqueued, until none is left. Drained jobs leave the
    /// fake's record; the report lists them.
    ///
    /// # Errors
    /// [`Error::InlineRunLimit`] after [`InlineRunner::max_runs`] runs, with
    /// jobs still to run (those are left recorded).
    pub async fn drain(&self) -> Result<DrainReport> {
        let mut report = DrainReport::default();
        let mut runs = 0;
        loop {
            let mut pending = self.fake.take().into_iter();
            let Some(first) = pending.next() else {
                return Ok(report);
            };
            for job in std::iter::once(first).chain(pending.by_ref()) {
                match self.run_job(job, &mut runs).await {
                    Ok(run) => report.runs.push(run),
                    Err(job) => {
                        self.fake.put_back(std::iter::once(job).chain(pending));
                        return Err(Error::InlineRunLimit {
                            runs: self.max_runs,
                        });
                    }
                }
            }
        }
    }

    /// Runs one job until it is done or dead; gives it back when the run
    /// budget is spent first.
    async fn run_job(
        &self,
        job: RecordedJob,
        runs: &mut usize,
    ) -> std::result::Result<InlineRun, RecordedJob> {
        let mut record = job.record.clone();
        let mut run = InlineRun {
            job,
            state: InlineState::Done,
            attempts: 0,
            errors: Vec::new(),
            retry_delays: Vec::new(),
            result: None,
        };
        loop {
            if *runs >= self.max_runs {
                return Err(run.job);
            }
            *runs += 1;
            // As fetch.lua: the run being made counts.
            record.attempt += 1;
            let verdict = executor::run(
                Ok(Arc::new(record.clone())),
                CancellationToken::new(),
                RunState::new(std::time::Instant::now()),
                &self.deps,
            )
            .await;
            let Verdict::Done(outcome) = verdict else {
                // Only a shutdown abandons a run; the runner never starts one.
                continue;
            };
            run.attempts = record.attempt;
            match outcome {
                Outcome::Ack => return Ok(run),
                Outcome::Returned { result } => {
                    run.result = result.ok();
                    return Ok(run);
                }
                Outcome::Retry { delay, error } if record.attempt < record.max_attempts => {
                    run.errors.push(error);
                    run.retry_delays.push(delay);
                }
                // As fail.lua: the last attempt's failure is dead too.
                Outcome::Dead { error } | Outcome::Retry { error, .. } => {
                    return Ok(dead(run, error))
                }
                Outcome::Snooze { delay, .. } => {
                    // As fail.lua: a rate-limited run is not an attempt.
                    record.attempt -= 1;
                    run.attempts = record.attempt;
                    run.retry_delays.push(delay);
                }
            }
        }
    }
}

/// `run` ended dead with `error`.
fn dead(mut run: InlineRun, error: String) -> InlineRun {
    run.errors.push(error.clone());
    run.state = InlineState::Dead { error };
    run
}
