//! Graceful shutdown: running jobs finish or go back to ready within the
//! grace period, nothing is lost, and the process exits 0.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool_tests::handlers::{Noop, Work};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::JobContext;

/// `run_until` returns within the grace period even when a handler ignores
/// cancellation; the unfinished job is back in ready at once, its attempt
/// not counted, and a short job that was running finished normally.
#[tokio::test]
async fn run_until_returns_within_grace_and_hands_back_unfinished_jobs() {
    let env = TestEnv::start().await;
    let finished = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let f = finished.clone();
    let worker = env
        .worker()
        .configure(|c| c.shutdown_timeout = Duration::from_millis(700))
        .register(move |_ctx: JobContext, job: Noop| {
            let f = f.clone();
            async move {
                // n = sleep in ms; the long one ignores cancellation.
                tokio::time::sleep(Duration::from_millis(job.n)).await;
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let long = env.client.enqueue(&Noop { n: 60_000 }).await.unwrap();
    env.client.enqueue(&Noop { n: 300 }).await.unwrap();
    let admin = env.client.admin();
    wait_for("both running", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().active == 2
    })
    .await;
    let t = Instant::now();
    running.stop().await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(700 + 1500),
        "shutdown took {took:?}"
    );
    assert_eq!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the short job finished"
    );
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.retry, q.dead), (1, 0, 0, 0));
    let job = admin.job("default", long.as_str()).await.unwrap().unwrap();
    assert_eq!(
        job.record.unwrap().attempt,
        0,
        "an interrupted run is not counted"
    );
    assert!(
        admin.processes().await.unwrap().is_empty(),
        "process record removed"
    );
    let stats = admin.stats("default", 5).await.unwrap();
    assert_eq!((stats.processed, stats.failed), (1, 0));
}

/// SIGTERM to a worker process: it stops fetching, lets short jobs finish,
/// hands the long ones back, and exits 0 within the grace period.
#[tokio::test]
async fn sigterm_exits_zero_and_loses_nothing() {
    let env = TestEnv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("runs.log");
    let short: Vec<Work> = (0..5).map(|n| Work { n, sleep_ms: 200 }).collect();
    let long: Vec<Work> = (100..103)
        .map(|n| Work {
            n,
            sleep_ms: 30_000,
        })
        .collect();
    env.client.enqueue_bulk(&short).await.unwrap();
    env.client.enqueue_bulk(&long).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", &env.redis.url(), "--record"])
        .arg(&record)
        .args([
            "--concurrency",
            "10",
            "--lease-ms",
            "2000",
            "--shutdown-ms",
            "1500",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let admin = env.client.admin();
    wait_for("all 8 running", Duration::from_secs(10), || async {
        admin.queue("chaos").await.unwrap().active == 8
    })
    .await;
    let t = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "worker did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
    assert!(
        t.elapsed() < Duration::from_millis(1500 + 2000),
        "exit took {:?}",
        t.elapsed()
    );
    let runs = std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(runs.lines().count(), 5, "the short jobs finished: {runs}");
    let q = admin.queue("chaos").await.unwrap();
    assert_eq!(
        (q.ready, q.active, q.retry, q.dead),
        (3, 0, 0, 0),
        "the long jobs are back in ready"
    );
}

/// A handler that watches its job's cancellation sees it as shutdown
/// begins: the run stops at once (well before the grace period ends) and
/// its job goes back to ready, its attempt not counted.
#[tokio::test]
async fn a_handler_watching_its_cancellation_stops_at_shutdown() {
    let env = TestEnv::start().await;
    let stopped = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let s = stopped.clone();
    let worker = env
        .worker()
        .configure(|c| c.shutdown_timeout = Duration::from_secs(20))
        .register(move |ctx: JobContext, _job: Noop| {
            let s = s.clone();
            async move {
                ctx.cancellation().cancelled().await;
                s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(spool_worker::JobError::retry("stopped for shutdown"))
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    for n in 0..3 {
        env.client.enqueue(&Noop { n }).await.unwrap();
    }
    let admin = env.client.admin();
    wait_for("all three running", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().active == 3
    })
    .await;
    let t = Instant::now();
    running.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the runs did not stop at shutdown: it took {:?}",
        t.elapsed()
    );
    assert_eq!(stopped.load(std::sync::atomic::Ordering::SeqCst), 3);
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.retry, q.dead), (3, 0, 0, 0));
}
