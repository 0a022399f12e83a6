//! Uniqueness modes: a time window, until started, until finished; keys
//! given or derived from type and args; 100 concurrent enqueues; locks
//! released by every path that starts or ends a job, the reaper's included.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{
    Client, EnqueueOptions, Enqueued, FixedDelay, Job, JobOptions, JobSet, Status, Uniqueness,
};
use spool_tests::handlers::Work;
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};

/// Sleeps `ms`, then succeeds, or fails for good when `fail`.
#[derive(Serialize, Deserialize, Clone)]
struct Task {
    name: String,
    ms: u64,
    fail: bool,
}

impl Job for Task {
    const TYPE: &'static str = "task";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(1)
            .retry_policy(FixedDelay(Duration::from_millis(20)))
            .keep_outcome(Duration::from_secs(60))
    }
}

/// Unique until finished by default, keyed by its args.
#[derive(Serialize, Deserialize, Clone)]
struct Sync {
    account: u32,
}

impl Job for Sync {
    const TYPE: &'static str = "sync";
    fn options() -> JobOptions {
        JobOptions::default().unique(Uniqueness::until_finished())
    }
}

fn task(name: &str, ms: u64) -> Task {
    Task {
        name: name.to_owned(),
        ms,
        fail: false,
    }
}

fn start_worker(env: &TestEnv) -> RunningWorker {
    let w = env
        .worker()
        .register(|_ctx: JobContext, t: Task| async move {
            tokio::time::sleep(Duration::from_millis(t.ms)).await;
            if t.fail {
                return Err(JobError::permanent("told to fail"));
            }
            Ok(())
        })
        .register(|_ctx: JobContext, _s: Sync| async move { Ok(()) })
        .build()
        .expect("worker builds");
    RunningWorker::start(w)
}

/// 100 enqueues at once with one key: one job, 99 duplicates naming it.
async fn race(client: &Client, opts: &EnqueueOptions) -> Vec<Enqueued> {
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = client.clone();
            let o = opts.clone();
            tokio::spawn(async move { c.enqueue_with(&task("race", 300), o).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("joins").expect("enqueues"));
    }
    let created: Vec<_> = out.iter().filter(|e| !e.duplicate).collect();
    assert_eq!(created.len(), 1, "exactly one enqueue creates the job");
    let ids: HashSet<_> = out.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 1, "every duplicate names the first job");
    out
}

#[tokio::test]
async fn each_mode_under_100_concurrent_enqueues_creates_one_job() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let modes = [
        ("w", Uniqueness::Window(Duration::from_secs(60))),
        ("s", Uniqueness::until_started()),
        ("f", Uniqueness::until_finished()),
    ];
    for (key, mode) in modes {
        let opts = EnqueueOptions::new().idempotency_key(key).unique(mode);
        race(c, &opts).await;
    }
    assert_eq!(c.admin().queue("default").await.unwrap().ready, 3);
}

#[tokio::test]
async fn until_started_frees_the_key_when_a_worker_starts_the_job() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let opts = EnqueueOptions::new()
        .idempotency_key("report")
        .unique(Uniqueness::until_started());
    let first = c
        .enqueue_with(&task("a", 1000), opts.clone())
        .await
        .unwrap();
    assert!(
        c.enqueue_with(&task("a", 1000), opts.clone())
            .await
            .unwrap()
            .duplicate
    );
    let running = start_worker(&env);
    wait_for("first job started", Duration::from_secs(5), || async {
        c.status(&first.id).await.unwrap().status == Status::Active
    })
    .await;
    let second = c
        .enqueue_with(&task("a", 1000), opts.clone())
        .await
        .unwrap();
    assert!(!second.duplicate, "the running job no longer holds the key");
    assert_ne!(second.id, first.id);
    running.stop().await;
}

#[tokio::test]
async fn until_finished_holds_while_running_and_frees_at_done_dead_and_cancel() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let opts = |key: &str| {
        EnqueueOptions::new()
            .idempotency_key(key)
            .unique(Uniqueness::until_finished())
    };
    let running = start_worker(&env);
    // Done.
    let first = c.enqueue_with(&task("a", 400), opts("done")).await.unwrap();
    wait_for("running", Duration::from_secs(5), || async {
        c.status(&first.id).await.unwrap().status == Status::Active
    })
    .await;
    let again = c.enqueue_with(&task("a", 400), opts("done")).await.unwrap();
    assert!(
        again.duplicate && again.id == first.id,
        "held while running"
    );
    c.wait(&first.id, Duration::from_secs(5)).await.unwrap();
    assert!(
        !c.enqueue_with(&task("a", 10), opts("done"))
            .await
            .unwrap()
            .duplicate
    );
    // Dead.
    let doomed = Task {
        fail: true,
        ..task("b", 10)
    };
    let first = c.enqueue_with(&doomed, opts("dead")).await.unwrap();
    assert_eq!(
        c.wait(&first.id, Duration::from_secs(5))
            .await
            .unwrap()
            .status,
        Status::Dead
    );
    assert!(
        !c.enqueue_with(&doomed, opts("dead"))
            .await
            .unwrap()
            .duplicate
    );
    // Cancelled (scheduled, so it never runs).
    let later = opts("cancel").delay(Duration::from_secs(3600));
    let first = c.enqueue_with(&task("c", 10), later.clone()).await.unwrap();
    assert!(
        c.enqueue_with(&task("c", 10), later.clone())
            .await
            .unwrap()
            .duplicate
    );
    c.cancel(&first.id).await.unwrap();
    assert!(
        !c.enqueue_with(&task("c", 10), later)
            .await
            .unwrap()
            .duplicate
    );
    running.stop().await;
}

#[tokio::test]
async fn a_window_outlives_the_job_and_then_expires() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let opts = EnqueueOptions::new()
        .idempotency_key("w")
        .unique(Uniqueness::Window(Duration::from_millis(700)));
    let running = start_worker(&env);
    let first = c.enqueue_with(&task("a", 10), opts.clone()).await.unwrap();
    c.wait(&first.id, Duration::from_secs(5)).await.unwrap();
    assert!(
        c.enqueue_with(&task("a", 10), opts.clone())
            .await
            .unwrap()
            .duplicate
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !c.enqueue_with(&task("a", 10), opts)
            .await
            .unwrap()
            .duplicate
    );
    running.stop().await;
}

#[tokio::test]
async fn keys_derived_from_type_and_args_and_job_type_defaults() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let by_args = EnqueueOptions::new().unique_by_args();
    let a = c
        .enqueue_with(&task("x", 1), by_args.clone())
        .await
        .unwrap();
    let b = c
        .enqueue_with(&task("x", 1), by_args.clone())
        .await
        .unwrap();
    let other = c.enqueue_with(&task("y", 1), by_args).await.unwrap();
    assert!(b.duplicate && b.id == a.id);
    assert!(!other.duplicate);
    // A type that is unique by default, in bulk too: one job per account.
    let ids = c
        .enqueue_bulk(&[
            Sync { account: 1 },
            Sync { account: 2 },
            Sync { account: 1 },
        ])
        .await
        .unwrap();
    assert_eq!(ids[0], ids[2]);
    assert_ne!(ids[0], ids[1]);
    let s = c
        .enqueue_with(&Sync { account: 2 }, EnqueueOptions::new())
        .await
        .unwrap();
    assert!(s.duplicate && s.id == ids[1]);
    // Deleting a job frees its key.
    let scheduled = c
        .enqueue_with(
            &Sync { account: 3 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    c.admin()
        .delete_jobs("default", JobSet::Scheduled, &[scheduled.id.as_str()])
        .await
        .unwrap();
    assert!(
        !c.enqueue_with(&Sync { account: 3 }, EnqueueOptions::new())
            .await
            .unwrap()
            .duplicate
    );
}

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A worker process holding an until-finished job is `SIGKILLed`: the key is
/// released when the reaper recovers the job (dead on its last attempt), or
/// when the job finishes on another worker: never 24 h later.
#[tokio::test]
async fn a_sigkilled_worker_does_not_leave_the_key_stuck() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("runs");
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
            .args(["--redis-url", &env.redis.url(), "--record"])
            .arg(&record)
            .args(["--concurrency", "4", "--lease-ms", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn chaos-worker"),
    );
    let opts = |key: &str, attempts: u32| {
        EnqueueOptions::new()
            .idempotency_key(key)
            .unique(Uniqueness::until_finished())
            .max_attempts(attempts)
    };
    let last_try = c
        .enqueue_with(
            &Work {
                n: 1,
                sleep_ms: 60_000,
            },
            opts("once", 1),
        )
        .await
        .unwrap();
    let retried = c
        .enqueue_with(
            &Work {
                n: 2,
                sleep_ms: 60_000,
            },
            opts("twice", 2),
        )
        .await
        .unwrap();
    wait_for("both running", Duration::from_secs(10), || async {
        c.status(&last_try.id).await.unwrap().status == Status::Active
            && c.status(&retried.id).await.unwrap().status == Status::Active
    })
    .await;
    child.0.kill().expect("SIGKILL the worker");
    let _ = child.0.wait();
    assert!(
        c.enqueue_with(&Work { n: 1, sleep_ms: 1 }, opts("once", 1))
            .await
            .unwrap()
            .duplicate
    );
    // The reaper (in a test worker) recovers both leases once they expire.
    let w = env
        .worker()
        .register(|_ctx: JobContext, _w: Work| async move { Ok(()) })
        .build()
        .expect("worker builds");
    let running = RunningWorker::start(w);
    wait_for(
        "last-try job dead, key free",
        Duration::from_secs(10),
        || async {
            !c.enqueue_with(&Work { n: 3, sleep_ms: 1 }, opts("once", 1))
                .await
                .unwrap()
                .duplicate
        },
    )
    .await;
    assert_eq!(c.status(&last_try.id).await.unwrap().status, Status::Dead);
    // The job with an attempt left ran again here and finished: key free.
    wait_for(
        "retried job done, key free",
        Duration::from_secs(10),
        || async {
            !c.enqueue_with(&Work { n: 4, sleep_ms: 1 }, opts("twice", 2))
                .await
                .unwrap()
                .duplicate
        },
    )
    .await;
    running.stop().await;
}
