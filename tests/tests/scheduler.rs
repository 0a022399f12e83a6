//! Scheduling accuracy: scheduled jobs never start before their time by
//! Redis's clock, and start within 100 ms after it (p99 over 200 jobs).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use rand::Rng;
use serde::{Deserialize, Serialize};
use spool_client::Job;
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::JobContext;
use tokio::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct Timed {
    due_ms: i64,
}

impl Job for Timed {
    const TYPE: &'static str = "timed";
}

/// Registers the `Timed` handler on `builder`: each run records how late
/// it started by Redis's clock (ms; negative: early).
fn record_lateness(
    builder: spool_worker::WorkerBuilder,
    clock: &spool_client::Client,
) -> (spool_worker::WorkerBuilder, Arc<Mutex<Vec<i64>>>) {
    let lateness: Arc<Mutex<Vec<i64>>> = Arc::default();
    let (l, clock) = (lateness.clone(), clock.clone());
    let builder = builder.register(move |_ctx: JobContext, job: Timed| {
        let l = l.clone();
        let clock = clock.clone();
        async move {
            let started = clock.redis_time_ms().await.expect("redis time");
            l.lock().await.push(started - job.due_ms);
            Ok(())
        }
    });
    (builder, lateness)
}

/// Starts `worker` and waits until it has registered (its scheduler runs).
async fn start(env: &TestEnv, worker: spool_worker::Worker) -> RunningWorker {
    let running = RunningWorker::start(worker);
    let admin = env.client.admin();
    wait_for("worker up", Duration::from_secs(5), || async {
        !admin.processes().await.unwrap().is_empty()
    })
    .await;
    running
}

/// Schedules `n` `Timed` jobs due `from_ms .. to_ms` from now (Redis's
/// clock) and waits until all ran; returns their lateness, sorted.
async fn run_timed(
    env: &TestEnv,
    lateness: &Mutex<Vec<i64>>,
    n: usize,
    due: std::ops::Range<i64>,
) -> Vec<i64> {
    let now = env.client.redis_time_ms().await.unwrap();
    let mut rng = rand::rng();
    for _ in 0..n {
        let due_ms = now + rng.random_range(due.clone());
        let at = DateTime::from_timestamp_millis(due_ms).unwrap();
        env.client.enqueue_at(&Timed { due_ms }, at).await.unwrap();
    }
    wait_for("all ran", Duration::from_secs(20), || async {
        lateness.lock().await.len() == n
    })
    .await;
    let mut late = lateness.lock().await.clone();
    late.sort_unstable();
    late
}

/// 200 jobs due at random times over the next ~3 s: none starts early by
/// Redis's clock; p99 lateness is at most 100 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_jobs_start_on_time_by_redis_clock() {
    let env = TestEnv::start().await;
    let builder = env
        .worker()
        .concurrency(50)
        .configure(|c| c.scheduler_interval = std::time::Duration::from_secs(5));
    let (builder, lateness) = record_lateness(builder, &env.client);
    // Started first: its scheduler then sleeps up to 5 s, and only the
    // nudge from a sooner job can wake it in time.
    let running = start(&env, builder.build().unwrap()).await;
    let late = run_timed(&env, &lateness, 200, 300..3000).await;
    let p50 = late[99];
    let p99 = late[197];
    eprintln!(
        "scheduling lateness over 200 jobs: min {} ms, p50 {p50} ms, p99 {p99} ms, max {} ms",
        late[0], late[199]
    );
    assert!(late[0] >= 0, "a job started {} ms early", -late[0]);
    assert!(p99 <= 100, "p99 lateness {p99} ms > 100 ms: {late:?}");
    running.stop().await;
}

/// A job of the busy queue: sleeps a little.
#[derive(Serialize, Deserialize)]
struct Busy {
    n: u32,
}

impl Job for Busy {
    const TYPE: &'static str = "busy";
    fn options() -> spool_client::JobOptions {
        spool_client::JobOptions::default().queue("busy")
    }
}

/// A worker busy with a backlog never waits for wake tokens, so it cannot
/// hear that a producer scheduled a job due before its scheduler's next
/// pass (30 s here). Each claim brings the queue's due hint instead: the
/// jobs start on time (all but one within 100 ms), while the backlog of
/// the other queue is still draining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_starts_jobs_scheduled_elsewhere_on_time() {
    let env = TestEnv::start().await;
    let builder = env
        .worker()
        .queue("default", 1)
        .queue("busy", 1)
        .concurrency(8)
        .configure(|c| c.scheduler_interval = Duration::from_secs(30))
        .register(|_ctx: JobContext, _job: Busy| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        });
    let (builder, lateness) = record_lateness(builder, &env.client);
    let running = start(&env, builder.build().unwrap()).await;
    // About 4 s of work at 8 × 5 ms: the fetcher is never idle meanwhile.
    let backlog: Vec<Busy> = (0..6_000).map(|n| Busy { n }).collect();
    env.client.enqueue_bulk(&backlog).await.unwrap();
    let late = run_timed(&env, &lateness, 50, 300..1500).await;
    let admin = env.client.admin();
    let busy_left = admin.queue("busy").await.unwrap().ready;
    eprintln!(
        "lateness while busy (50 jobs): min {} ms, p50 {} ms, p99 {} ms; {busy_left} busy jobs still ready",
        late[0], late[24], late[49]
    );
    assert!(
        busy_left > 0,
        "the backlog drained first: the worker was not busy throughout"
    );
    assert!(late[0] >= 0, "a job started {} ms early", -late[0]);
    assert!(
        late[48] <= 100,
        "p98 lateness {} ms > 100 ms: {late:?}",
        late[48]
    );
    running.stop().await;
}
