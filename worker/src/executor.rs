//! Executor: runs one leased job and turns whatever happens into an outcome.
//!
//! Decode the record, find the handler, run it under the job's time limit,
//! catch a panic, and send `Ack`, `Retry` or `Dead` to the completer. An
//! undecodable record or args is dead at once with a readable reason; an
//! unknown type is retried with the default backoff (dead at once with
//! `UnknownTypes::Dead`); a panic (its error naming `file:line`) or timeout is
//! an ordinary failure (retried). It
//! never writes to Redis itself, and it does not decide fencing: the
//! completer's scripts do.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use spool_client::runtime::{Completion, LeasedJob, Outcome, RunFacts};
use spool_client::{ExponentialJitter, RetryPolicy};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::UnknownTypes;
use crate::handler::JobContext;
use crate::in_flight::{mark_finished, RunState};
use crate::outcome::JobErrorKind;
use crate::registry::Registry;

/// What the executor needs besides the job.
#[derive(Clone)]
pub(crate) struct ExecutorDeps {
    /// What running a job needs (shared with the inline runner). Behind
    /// one `Arc`: each executor holds a copy, and cloning its cancellation
    /// tokens one by one would take their locks for every job.
    pub(crate) run: Arc<RunDeps>,
    /// Outcomes go to the completer; the channel closes when every executor
    /// and the fetcher have dropped their sender.
    pub(crate) completions: mpsc::Sender<Completion>,
}

/// What turning a job record into an [`Outcome`] needs: the worker's
/// executor and the inline runner (`testing`) both run jobs with it.
#[derive(Clone)]
pub(crate) struct RunDeps {
    pub(crate) registry: Arc<Registry>,
    /// Fired when the shutdown grace period is over: handlers still running
    /// are dropped and their jobs are handed back by the launcher.
    pub(crate) hard_stop: CancellationToken,
    /// Fired when shutdown begins.
    pub(crate) shutting_down: CancellationToken,
    /// Largest result kept with an outcome (the client's payload limit).
    pub(crate) max_result_bytes: usize,
    /// What a job of a type without a handler gets.
    pub(crate) unknown_types: UnknownTypes,
    /// The worker's metrics (overruns are counted while running).
    pub(crate) metrics: crate::metrics::WorkerMetrics,
    /// Opens encrypted args (and seals their job's kept result); the
    /// client's, if it has one.
    pub(crate) keyring: Option<spool_client::Keyring>,
}

/// Result of a run, before it is sent.
pub(crate) enum Verdict {
    Done(Outcome),
    /// Dropped by a hard stop, or interrupted by shutdown: the launcher hands
    /// the job back to ready.
    Abandoned,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

thread_local! {
    /// Where the last panic on this thread happened (`file:line:column`),
    /// set by the hook [`record_panic_locations`] installs. A handler's
    /// panic is caught on the thread that polled it, in the same poll, so the
    /// executor reads it right after.
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once per process, a panic hook that notes each panic's
/// location for the executor, then calls the hook that was there before
/// (the default one prints the message), so the application's own hook
/// and output stay as they were. The payload alone has no location.
pub(crate) fn record_panic_locations() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(at) = info.location() {
                let at = format!("{}:{}:{}", at.file(), at.line(), at.column());
                PANIC_LOCATION.with(|l| *l.borrow_mut() = Some(at));
            }
            previous(info);
        }));
    });
}

/// The error of a caught panic: its message and, when the hook saw it on
/// this thread, where it happened.
fn panic_error(payload: &(dyn std::any::Any + Send)) -> String {
    let message = panic_message(payload);
    match PANIC_LOCATION.with(|l| l.borrow_mut().take()) {
        Some(at) => format!("handler panicked at {at}: {message}"),
        None => format!("handler panicked: {message}"),
    }
}

/// Runs `job` to an outcome and hands it to the completer; `finished` is
/// set just before (see [`crate::in_flight::Running::finished`]). Its
/// slots are held until it returns.
pub(crate) async fn execute(
    job: LeasedJob,
    cancel: CancellationToken,
    state: Arc<RunState>,
    deps: ExecutorDeps,
    _slots: crate::fetcher::Slots,
) {
    let run_facts = RunFacts::of(&job);
    let started = Instant::now();
    let metrics = &deps.run.metrics;
    let counted = metrics.of_type(job.record.as_ref().map_or("", |r| r.job_type.as_str()));
    metrics.run_started();
    let LeasedJob {
        keys,
        id,
        token,
        record,
        ..
    } = job;
    let span = tracing::info_span!(
        "job",
        job_id = %id,
        queue = %keys.queue,
        job_type = record.as_ref().map_or("?", |r| r.job_type.as_str()),
        attempt = record.as_ref().map_or(0, |r| r.attempt),
        outcome = tracing::field::Empty,
    );
    // The producer's span (W3C trace context in the record) is the parent.
    #[cfg(feature = "otel")]
    if let Some(trace) = record.as_ref().ok().and_then(|r| r.trace.as_ref()) {
        spool_client::otel::adopt_parent(&span, trace);
    }
    let verdict = run(record, cancel, Arc::clone(&state), &deps.run)
        .instrument(span.clone())
        .await;
    let outcome = match verdict {
        Verdict::Done(outcome) => outcome,
        Verdict::Abandoned => {
            span.record("outcome", "handed_back");
            metrics.run_ended(counted, None, started.elapsed());
            return;
        }
    };
    metrics.run_ended(counted, Some(&outcome), started.elapsed());
    span.record("outcome", outcome_name(&outcome));
    mark_finished(&state.finished);
    let completion = Completion {
        keys,
        id,
        token,
        outcome,
        run: run_facts,
    };
    if deps.completions.send(completion).await.is_err() {
        // Only possible if the completer died; the lease runs out and the
        // reaper returns the job.
        span.in_scope(|| tracing::error!("completer is gone; job left leased for the reaper"));
    }
}

/// The job span's `outcome` field: what the run ended as.
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ack | Outcome::Returned { .. } => "done",
        Outcome::Retry { .. } => "retry",
        Outcome::Dead { .. } => "dead",
        Outcome::Snooze { .. } => "snoozed",
    }
}

/// Runs one job to a verdict: decode, find the handler, time limit, catch
/// a panic, and judge the result. Writes nothing anywhere.
pub(crate) async fn run(
    record: Result<Arc<spool_client::JobRecord>, String>,
    cancel: CancellationToken,
    state: Arc<RunState>,
    deps: &RunDeps,
) -> Verdict {
    let (record, encrypted) = match record.and_then(|r| open_args(r, deps.keyring.as_ref())) {
        Ok((r, encrypted)) => (r, encrypted),
        Err(reason) => {
            tracing::warn!(error = %reason, "unparsable job record; moving it to dead");
            return Verdict::Done(Outcome::Dead { error: reason });
        }
    };
    let Some(registration) = deps.registry.get(&record.job_type) else {
        let error = deps.registry.unknown_type_error(&record.job_type);
        return Verdict::Done(match deps.unknown_types {
            UnknownTypes::Retry => {
                tracing::warn!(error = %error, "unknown job type; retrying it (a worker that knows it may not be deployed yet)");
                Outcome::Retry {
                    delay: ExponentialJitter::default().delay(record.attempt),
                    error,
                }
            }
            UnknownTypes::Dead => {
                tracing::warn!(error = %error, "unknown job type; moving it to dead");
                Outcome::Dead { error }
            }
        });
    };
    let timeout = record.timeout(registration.options.timeout);
    let ctx = JobContext {
        deadline: Instant::now() + timeout,
        cancel,
        run: state,
        record: Arc::clone(&record),
    };
    // The context middleware sees: cloned only when there is middleware.
    let chain = &deps.registry.middleware;
    let around = (!chain.is_empty()).then(|| ctx.clone());
    let future = match (registration.handler)(ctx, &record) {
        Ok(f) => match around {
            Some(ctx) => crate::middleware::wrap(chain, ctx, f),
            None => f,
        },
        Err(error) => {
            // serde's message may quote the args: not for encrypted ones.
            let error = if encrypted {
                format!(
                    "unparsable payload: encrypted args of job type {:?} do not decode (details \
                     withheld: they could quote the plaintext)",
                    record.job_type
                )
            } else {
                error
            };
            tracing::warn!(error = %error, "args do not decode; moving the job to dead");
            return Verdict::Done(Outcome::Dead { error });
        }
    };
    let started = Instant::now();
    let guarded = tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind());
    let result = tokio::select! {
        r = guarded => r,
        () = deps.hard_stop.cancelled() => {
            tracing::warn!("shutdown grace period over; handler dropped, job goes back to ready");
            return Verdict::Abandoned;
        }
    };
    if result.is_ok() && started.elapsed() > timeout {
        record_overrun(&record.job_type, started.elapsed(), timeout);
        deps.metrics.overrun(&record.job_type);
    }
    let policy_delay = || registration.options.retry_policy.delay(record.attempt);
    // The value goes to Redis when the job keeps its outcome or has
    // follow-ups (they read it as their parent's result).
    let keeps = record.keep_outcome_ms.is_some_and(|ms| ms > 0) || record.followups;
    let verdict = judge(result, started, timeout, &policy_delay, deps, keeps);
    if encrypted {
        return seal_result(verdict, &record, deps.keyring.as_ref());
    }
    verdict
}

/// The record with its encrypted args opened (and whether they were), or
/// why they cannot be: the job goes to dead with that reason, its record
/// (still sealed) kept for a retry once the keyring is fixed.
fn open_args(
    mut record: Arc<spool_client::JobRecord>,
    keyring: Option<&spool_client::Keyring>,
) -> Result<(Arc<spool_client::JobRecord>, bool), String> {
    // Plain args (the common case) need no change: the record, which the
    // in-flight table shares, is not copied.
    if spool_client::Envelope::parse(record.args.get()).is_none() {
        return Ok((record, false));
    }
    match Arc::make_mut(&mut record).decrypt_args(keyring) {
        Ok(opened) => Ok((record, opened)),
        Err(e) => Err(format!("cannot decrypt args of job {}: {e}", record.id)),
    }
}

/// An encrypted job's kept result, sealed like its args (bound to the
/// job): results go to Redis (outcomes, follow-ups' parent, batches).
fn seal_result(
    verdict: Verdict,
    record: &spool_client::JobRecord,
    keyring: Option<&spool_client::Keyring>,
) -> Verdict {
    let Verdict::Done(Outcome::Returned { result: Ok(json) }) = verdict else {
        return verdict;
    };
    let sealed = keyring
        .ok_or_else(|| "no keyring".to_owned())
        .and_then(|k| {
            k.encrypt_result(&record.job_type, record.id.as_str(), &json)
                .map_err(|e| e.to_string())
        });
    let result = match sealed {
        Ok(envelope) => Ok(envelope.get().to_owned()),
        Err(e) => Err(format!("result not kept: it could not be encrypted: {e}")),
    };
    Verdict::Done(Outcome::Returned { result })
}

/// The handler's value as the ack sends it: only for a job that keeps its
/// outcome or has follow-ups, and only up to the payload limit (a larger one is recorded as
/// the outcome's error; the job is done either way).
fn returned(value: crate::handler::Returned, keeps: bool, limit: usize) -> Outcome {
    match value {
        Some(Ok(json)) if keeps && json.len() > limit => {
            let why = format!(
                "result not kept: it is {} bytes, over the limit of {limit} bytes (max_payload_bytes)",
                json.len()
            );
            tracing::warn!(error = %why, "handler returned a value too large to keep");
            Outcome::Returned { result: Err(why) }
        }
        Some(result) if keeps => Outcome::Returned { result },
        _ => Outcome::Ack,
    }
}

/// What the handler's result means: a panic or timeout is an ordinary
/// failure (retried after the policy's delay), an error after shutdown began
/// hands the job back.
fn judge(
    result: Result<
        std::thread::Result<Result<crate::handler::Returned, crate::outcome::JobError>>,
        tokio::time::error::Elapsed,
    >,
    started: Instant,
    timeout: Duration,
    policy_delay: &dyn Fn() -> Duration,
    deps: &RunDeps,
    keeps: bool,
) -> Verdict {
    let outcome = match result {
        Ok(Ok(Ok(value))) => {
            tracing::debug!(
                elapsed_ms = crate::backoff::millis(started.elapsed()),
                "job done"
            );
            returned(value, keeps, deps.max_result_bytes)
        }
        Ok(Ok(Err(err))) => {
            if deps.shutting_down.is_cancelled() {
                tracing::info!(error = %err, "handler stopped for shutdown; job goes back to ready");
                return Verdict::Abandoned;
            }
            tracing::warn!(error = %err, "handler failed");
            match err.kind {
                JobErrorKind::Permanent => Outcome::Dead { error: err.message },
                JobErrorKind::Retry => Outcome::Retry {
                    delay: policy_delay(),
                    error: err.message,
                },
                JobErrorKind::RetryAfter(delay) => Outcome::Retry {
                    delay,
                    error: err.message,
                },
                JobErrorKind::Snooze(delay) => Outcome::Snooze {
                    delay,
                    reason: err.message,
                },
            }
        }
        Ok(Err(panic)) => {
            let error = panic_error(panic.as_ref());
            tracing::error!(error = %error, "handler panicked");
            Outcome::Retry {
                delay: policy_delay(),
                error,
            }
        }
        Err(_) => {
            let error = format!("handler timed out after {}", fmt_duration(timeout));
            tracing::warn!(error = %error, "handler timed out");
            Outcome::Retry {
                delay: policy_delay(),
                error,
            }
        }
    };
    Verdict::Done(outcome)
}

/// A handler returned after its time limit: it blocked its thread, so the
/// timer could not interrupt it (tokio cannot preempt a future). The run
/// keeps its outcome; the overrun is logged (and counted in
/// `spool_handler_overruns_total`) so it can be found.
fn record_overrun(job_type: &str, elapsed: Duration, timeout: Duration) {
    tracing::warn!(
        job_type,
        elapsed_ms = crate::backoff::millis(elapsed),
        timeout_ms = crate::backoff::millis(timeout),
        "handler overran its time limit: it blocked its thread (std::thread::sleep, blocking I/O \
         or long CPU work), so the timeout could not stop it; run blocking work in \
         tokio::task::spawn_blocking"
    );
}

fn fmt_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}
