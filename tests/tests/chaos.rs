//! Chaos: a worker process is `SIGKILLed` at random moments while thousands of
//! jobs run. No acknowledged enqueue is lost; duplicates stay bounded by the
//! jobs in flight at the kills. And a claim held in flight past the lease
//! leaves its fresh runs alone.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use spool_client::JobSet;
use spool_tests::handlers::Work;
use spool_tests::stall_proxy::StallProxy;
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::JobContext;

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONCURRENCY: u64 = 20;

fn spawn_worker(url: &str, record: &std::path::Path) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", url, "--record"])
        .arg(record)
        .args([
            "--concurrency",
            &CONCURRENCY.to_string(),
            "--lease-ms",
            "800",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn chaos-worker");
    ChildGuard(child)
}

fn executions(record: &std::path::Path) -> HashMap<String, u32> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut runs = HashMap::new();
    for line in text.lines() {
        if let Some(id) = line.split(' ').next() {
            *runs.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    runs
}

/// 2,400 jobs, 20+ SIGKILLs at random moments: every job ran at least once
/// (or is dead with a reason), none is lost, and duplicate runs are at most
/// the jobs that could have been in flight at the kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_job() {
    let env = TestEnv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("executions.log");
    let mut rng = rand::rng();
    let jobs: Vec<Work> = (0..2400)
        .map(|n| Work {
            n,
            sleep_ms: rng.random_range(40..120),
        })
        .collect();
    let ids: HashSet<String> = env
        .client
        .enqueue_bulk(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.to_string())
        .collect();
    assert_eq!(ids.len(), 2400);

    let url = env.redis.url();
    let admin = env.client.admin();
    let mut kills = 0;
    let started = Instant::now();
    while kills < 22 && started.elapsed() < Duration::from_secs(60) {
        let mut child = spawn_worker(&url, &record);
        let run_for = Duration::from_millis(rng.random_range(150..500));
        tokio::time::sleep(run_for).await;
        child.0.kill().expect("SIGKILL the worker");
        let _ = child.0.wait();
        kills += 1;
        let q = admin.queue("chaos").await.unwrap();
        if q.ready == 0 && q.active == 0 && q.retry == 0 {
            break;
        }
    }
    assert!(
        kills >= 20,
        "only {kills} kills happened before the work ran out; make the jobs slower"
    );

    // A last worker finishes the rest (its reaper recovers the killed leases).
    let _last = spawn_worker(&url, &record);
    wait_for("all jobs finished", Duration::from_secs(60), || async {
        let q = admin.queue("chaos").await.unwrap();
        q.ready == 0 && q.active == 0 && q.retry == 0 && q.scheduled == 0
    })
    .await;

    let runs = executions(&record);
    let dead = admin
        .list_set("chaos", JobSet::Dead, 0, 1000)
        .await
        .unwrap();
    for job in &dead.items {
        assert!(
            job.last_error().is_some(),
            "dead job {} has a reason",
            job.id
        );
    }
    let dead_ids: HashSet<String> = dead.items.iter().map(|j| j.id.to_string()).collect();
    let lost: Vec<&String> = ids
        .iter()
        .filter(|id| !runs.contains_key(*id) && !dead_ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} jobs lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        runs.keys().all(|id| ids.contains(id)),
        "only enqueued jobs ran"
    );
    let duplicates: u64 = runs.values().map(|n| u64::from(n - 1)).sum();
    let bound = kills * CONCURRENCY;
    eprintln!(
        "chaos: {kills} kills, {} jobs, {duplicates} duplicate runs (bound {bound}), {} dead",
        ids.len(),
        dead.total
    );
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates exceed {bound} (kills x concurrency)"
    );
}

/// A claim held in flight past the lease (a stalled network, a paused
/// process): Redis grants the leases when the request arrives, long after
/// the worker asked, so the worker dates them again from an extension, and
/// its heartbeat does not stop the fresh runs as expired by its own clock.
/// Each job runs once, to success, never cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_stalled_past_the_lease_runs_its_jobs_once() {
    let mut env = TestEnv::start().await;
    let proxy = StallProxy::start(env.redis.port()).await;
    let client = spool_client::Client::builder(&format!("redis://127.0.0.1:{}", proxy.port()))
        .connect()
        .await
        .unwrap();
    // (n, attempt, cancelled) of every run.
    let runs: Arc<Mutex<Vec<(u64, u32, bool)>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let worker = spool_worker::Worker::builder(client)
        .queue("chaos", 1)
        .concurrency(4)
        .configure(|c| {
            spool_tests::fast_config(c);
            c.lease = Duration::from_secs(1);
            c.heartbeat_interval = Duration::from_millis(250);
        })
        .register(move |ctx: JobContext, job: Work| {
            let seen = Arc::clone(&seen);
            async move {
                let cancelled = tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(job.sleep_ms)) => false,
                    () = ctx.cancellation().cancelled() => true,
                };
                seen.lock().unwrap().push((job.n, ctx.attempt(), cancelled));
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The worker's next claim (a wake-up or its idle poll, every 500 ms)
    // is held 2.5 s: its lease is granted when it arrives.
    proxy.stall(true);
    let work = |n| Work { n, sleep_ms: 800 };
    env.client.enqueue_bulk(&[work(1), work(2)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.stall(false);
    let admin = env.client.admin();
    wait_for("both jobs done", Duration::from_secs(10), || async {
        let q = admin.queue("chaos").await.unwrap();
        (q.ready, q.active, q.retry) == (0, 0, 0) && runs.lock().unwrap().len() >= 2
    })
    .await;
    running.stop().await;
    let mut runs = runs.lock().unwrap().clone();
    runs.sort_unstable();
    assert_eq!(runs, vec![(1, 1, false), (2, 1, false)]);
}
