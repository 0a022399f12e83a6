//! The inline runner's own behaviour: each way a job can end, jobs that
//! handlers enqueue, and the run budget.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{EnqueueOptions, JobDefaults, JobOptions};
use spool_worker::testing::{FakeClient, InlineRunner, InlineState};
use spool_worker::{Error, FixedDelay, Job, JobContext, JobError, UnknownTypes, Worker};

/// A job whose handler does what `mode` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    mode: String,
}

impl Job for Step {
    const TYPE: &'static str = "step";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(FixedDelay(Duration::from_secs(30)))
            .timeout(Duration::from_millis(200))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Child {
    n: u32,
}

impl Job for Child {
    const TYPE: &'static str = "child";
}

fn step(mode: &str) -> Step {
    Step { mode: mode.into() }
}

/// A runner over `fake` whose `Step` handler follows its job's mode.
fn runner(fake: &FakeClient) -> InlineRunner {
    let client = fake.client();
    // Runs of "rate_limited" jobs: the first is told to come back later.
    let limited = Arc::new(AtomicU32::new(0));
    let worker = Worker::builder(fake.client()).register(move |ctx: JobContext, job: Step| {
        let client = client.clone();
        let limited = Arc::clone(&limited);
        async move {
            match job.mode.as_str() {
                "flaky" if ctx.attempt() < 3 => {
                    Err(JobError::retry(format!("try {}", ctx.attempt())))
                }
                "fail" => Err(JobError::retry("always fails")),
                "permanent" => Err(JobError::permanent("bad address")),
                "panic" => panic!("handler blew up"),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(())
                }
                "rate_limited" if limited.fetch_add(1, Ordering::Relaxed) == 0 => {
                    Err(JobError::rate_limited("429", Duration::from_secs(10)))
                }
                "spawn" => {
                    client.enqueue(&Child { n: 1 }).await?;
                    client.enqueue(&Child { n: 2 }).await?;
                    Ok(())
                }
                "loop" => {
                    client.enqueue(&step("loop")).await?;
                    Ok(())
                }
                // "ok", and "flaky" from its third attempt on.
                _ => Ok(()),
            }
        }
    });
    let children = Arc::new(AtomicU32::new(0));
    let worker = worker.register(move |_ctx: JobContext, job: Child| {
        let children = Arc::clone(&children);
        async move {
            children.fetch_add(job.n, Ordering::Relaxed);
            Ok(())
        }
    });
    InlineRunner::new(worker).unwrap()
}

/// One job through the runner; its single report entry.
async fn run_one(mode: &str) -> spool_worker::testing::InlineRun {
    let fake = FakeClient::new();
    let runner = runner(&fake);
    fake.client().enqueue(&step(mode)).await.unwrap();
    let report = runner.drain().await.unwrap();
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert!(fake.is_empty(), "drained jobs leave the record");
    report.runs.into_iter().next().unwrap()
}

/// A handler that succeeds: done after one attempt.
#[tokio::test]
async fn success_is_done_in_one_attempt() {
    let run = run_one("ok").await;
    assert_eq!(run.state, InlineState::Done);
    assert_eq!((run.attempts, run.retries()), (1, 0));
}

/// Failures retry at once (the policy's delays recorded, not slept) until
/// an attempt succeeds.
#[tokio::test]
async fn retries_run_at_once_until_success() {
    let started = std::time::Instant::now();
    let run = run_one("flaky").await;
    assert!(run.is_done());
    assert_eq!(run.attempts, 3);
    assert_eq!(run.errors, ["try 1", "try 2"]);
    assert_eq!(run.retry_delays, [Duration::from_secs(30); 2]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "backoff was slept"
    );
}

/// A permanent error is dead at once.
#[tokio::test]
async fn permanent_error_is_dead_at_once() {
    let run = run_one("permanent").await;
    assert_eq!(run.dead_error(), Some("bad address"));
    assert_eq!(run.attempts, 1);
}

/// A job that always fails is dead after `max_attempts` attempts, with
/// every error kept.
#[tokio::test]
async fn exhausted_attempts_are_dead() {
    let run = run_one("fail").await;
    assert_eq!(run.dead_error(), Some("always fails"));
    assert_eq!((run.attempts, run.retries(), run.errors.len()), (3, 2, 3));
}

/// A panic is caught and is an ordinary failure naming where it happened.
#[tokio::test]
async fn panic_is_an_error_with_its_location() {
    let run = run_one("panic").await;
    let error = run.dead_error().unwrap();
    assert!(error.contains("handler blew up"), "{error}");
    assert!(error.contains("inline_runner.rs:"), "{error}");
    assert_eq!(run.attempts, 3);
}

/// A handler past its time limit fails with a timeout error (the real
/// tokio timer, so keep test time limits short).
#[tokio::test]
async fn timeout_is_an_error() {
    let fake = FakeClient::new();
    let runner = runner(&fake);
    let opts = EnqueueOptions::new().max_attempts(1);
    fake.client()
        .enqueue_with(&step("slow"), opts)
        .await
        .unwrap();
    let report = runner.drain().await.unwrap();
    let error = report.dead()[0].dead_error().unwrap();
    assert!(error.contains("timed out after 200ms"), "{error}");
}

/// A rate-limited run does not count as an attempt.
#[tokio::test]
async fn rate_limited_run_is_not_an_attempt() {
    let run = run_one("rate_limited").await;
    assert!(run.is_done());
    // Two runs, the first not counted: attempt 1 twice.
    assert_eq!(run.attempts, 1);
    assert_eq!(run.retry_delays, [Duration::from_secs(10)]);
}

/// An unknown type retries like the worker does by default, then dies;
/// with `UnknownTypes::Dead` it dies at once. Args that do not decode die
/// at once.
#[tokio::test]
async fn unknown_types_and_bad_args() {
    let fake = FakeClient::new();
    let runner = runner(&fake);
    let args = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
    let defaults = JobDefaults {
        max_attempts: 2,
        ..JobDefaults::default()
    };
    let client = fake.client();
    client
        .enqueue_raw("mystery", &args, &defaults, EnqueueOptions::new())
        .await
        .unwrap();
    client
        .enqueue_raw("step", &args, &defaults, EnqueueOptions::new())
        .await
        .unwrap();
    let report = runner.drain().await.unwrap();
    let mystery = &report.runs[0];
    assert_eq!(mystery.attempts, 2);
    assert!(mystery
        .dead_error()
        .unwrap()
        .contains("unknown job type \"mystery\""));
    let bad = &report.runs[1];
    assert_eq!(bad.attempts, 1);
    assert!(
        bad.dead_error().unwrap().contains("do not decode"),
        "{bad:?}"
    );

    let strict = InlineRunner::new(
        Worker::builder(fake.client())
            .configure(|c| c.unknown_types = UnknownTypes::Dead)
            .register(|_ctx: JobContext, _job: Child| async { Ok(()) }),
    )
    .unwrap();
    client
        .enqueue_raw("mystery", &args, &defaults, EnqueueOptions::new())
        .await
        .unwrap();
    let report = strict.drain().await.unwrap();
    assert_eq!(report.dead()[0].attempts, 1);
}

/// Jobs a handler enqueues through the fake client are drained in the same
/// call.
#[tokio::test]
async fn jobs_enqueued_by_handlers_are_drained_too() {
    let fake = FakeClient::new();
    let runner = runner(&fake);
    fake.client().enqueue(&step("spawn")).await.unwrap();
    let report = runner.drain().await.unwrap();
    assert_eq!(report.done().len(), 3);
    let children: Vec<u32> = report
        .of_type::<Child>()
        .iter()
        .map(|r| r.job.args::<Child>().unwrap().n)
        .collect();
    assert_eq!(children, [1, 2]);
}

/// A handler that enqueues forever stops at the run budget with an error,
/// its next job left recorded.
#[tokio::test]
async fn endless_enqueueing_stops_at_the_run_budget() {
    let fake = FakeClient::new();
    let runner = runner(&fake).max_runs(10);
    fake.client().enqueue(&step("loop")).await.unwrap();
    let err = runner.drain().await.unwrap_err();
    assert!(matches!(err, Error::InlineRunLimit { runs: 10 }), "{err}");
    assert_eq!(fake.len(), 1);
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

impl Job for Add {
    const TYPE: &'static str = "add";
    fn options() -> JobOptions {
        JobOptions::default().keep_outcome(Duration::from_secs(60))
    }
}

impl spool_client::JobOutput for Add {
    type Output = i64;
}

/// A job that keeps its outcome reports its handler's value.
#[tokio::test]
async fn a_kept_result_is_reported() {
    let fake = FakeClient::new();
    let runner = InlineRunner::new(
        Worker::builder(fake.client())
            .register_returning(|_ctx, job: Add| async move { Ok(job.a + job.b) }),
    )
    .unwrap();
    fake.client().enqueue(&Add { a: 2, b: 3 }).await.unwrap();
    let report = runner.drain().await.unwrap();
    assert_eq!(report.runs[0].result.as_deref(), Some("5"));
}

/// A job of an encrypted type whose handler echoes its note.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    note: String,
}

impl Job for Sealed {
    const TYPE: &'static str = "sealed";
    fn options() -> JobOptions {
        JobOptions::default().encrypted(true)
    }
}

/// The inline runner opens encrypted args as the worker does (the same
/// run path): the fake records them sealed, the handler sees plain text.
#[tokio::test]
async fn encrypted_jobs_are_recorded_sealed_and_run_in_plain_text() {
    let keyring = spool_client::Keyring::new("test", [7; 32]).unwrap();
    let fake = FakeClient::new().with_keyring(keyring);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let notes = Arc::clone(&seen);
    let worker = Worker::builder(fake.client()).register(move |_ctx, job: Sealed| {
        let notes = Arc::clone(&notes);
        async move {
            notes.lock().unwrap().push(job.note);
            Ok(())
        }
    });
    let runner = InlineRunner::new(worker).unwrap();
    fake.client()
        .enqueue(&Sealed {
            note: "hush".into(),
        })
        .await
        .unwrap();
    let recorded = &fake.enqueued()[0].record;
    assert!(recorded.args.get().starts_with("\"spool:enc:v1:test:"));
    assert_eq!(fake.jobs::<Sealed>()[0].note, "hush");
    let report = runner.drain().await.unwrap();
    assert_eq!(report.done().len(), 1);
    assert_eq!(*seen.lock().unwrap(), ["hush"]);
    // Opened args that do not fit the type: dead, without quoting them.
    let args = serde_json::value::to_raw_value(&serde_json::json!({"note": 987_654_321})).unwrap();
    fake.client()
        .enqueue_raw(
            "sealed",
            &args,
            &JobDefaults::default(),
            EnqueueOptions::new().encrypted(),
        )
        .await
        .unwrap();
    let report = runner.drain().await.unwrap();
    let error = report.dead()[0].dead_error().unwrap().to_owned();
    assert!(
        error.contains("encrypted args of job type \"sealed\" do not decode"),
        "{error}"
    );
    assert!(!error.contains("987654321"), "{error}");
    // Without a keyring, an encrypted type cannot be enqueued.
    let plain = FakeClient::new();
    let err = plain.client().enqueue(&Sealed { note: "x".into() }).await;
    assert!(err.unwrap_err().to_string().contains("no keyring"));
}
