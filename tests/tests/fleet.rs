//! Fleet controls against a real Redis and several worker processes: the
//! global concurrency limit of a queue holds across every worker, changes
//! at run time, and a dead worker's places come back when its leases
//! expire; the CLI, the dashboard and `/metrics` set and show it. Also
//! what fleets rely on: weighted queue order, heartbeats extending a long
//! job's lease, and orphans of a killed worker back in ready within the
//! lease + 5 s with the default settings.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spool_client::{EventKind, JobSet};
use spool_tests::handlers::{Noop, Work};
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

fn spawn_worker(url: &str, dir: &std::path::Path, lease_ms: u64) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", url, "--record"])
        .arg(dir.join("runs"))
        .arg("--ledger")
        .arg(dir.join("ledger"))
        .args(["--concurrency", "10", "--lease-ms"])
        .arg(lease_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// A worker process with the default lease, heartbeat and reaper timings.
fn spawn_default_worker(url: &str, dir: &std::path::Path, concurrency: usize) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", url, "--record"])
        .arg(dir.join("runs"))
        .args(["--defaults", "--concurrency"])
        .arg(concurrency.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// The runs in a ledger: (start µs, end µs).
fn ledger(dir: &std::path::Path) -> Vec<(u128, u128)> {
    std::fs::read_to_string(dir.join("ledger"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Most runs overlapping at once among `runs`.
fn max_overlap(runs: &[(u128, u128)]) -> usize {
    let mut edges: Vec<(u128, i32)> = runs.iter().flat_map(|(s, e)| [(*s, 1), (*e, -1)]).collect();
    // At equal times an end comes before a start: touching runs do not overlap.
    edges.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Three worker processes of 10 slots each, a global limit of 5, 200 jobs
/// of 50 ms: never more than 5 run at once; lowered to 2 mid-run, never
/// more than 2 from a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_limit_holds_across_three_workers_and_changes_at_run_time() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let admin = c.admin().with_actor("fleet-test");
    admin.set_concurrency_limit("chaos", Some(5)).await.unwrap();
    let jobs: Vec<Work> = (0..200).map(|n| Work { n, sleep_ms: 50 }).collect();
    c.enqueue_bulk(&jobs).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = env.redis.url();
    let workers: Vec<ChildGuard> = (0..3)
        .map(|_| spawn_worker(&url, dir.path(), 5000))
        .collect();
    wait_for("half the jobs ran", Duration::from_secs(30), || async {
        ledger(dir.path()).len() >= 100
    })
    .await;
    admin.set_concurrency_limit("chaos", Some(2)).await.unwrap();
    let lowered_at = now_us();
    assert_eq!(
        admin.queue("chaos").await.unwrap().concurrency_limit,
        Some(2)
    );
    wait_for("every job ran", Duration::from_secs(60), || async {
        ledger(dir.path()).len() >= 200
    })
    .await;
    drop(workers);
    let runs = ledger(dir.path());
    assert_eq!(runs.len(), 200, "each job ran once");
    let before: Vec<_> = runs
        .iter()
        .copied()
        .filter(|(s, _)| *s < lowered_at)
        .collect();
    let after: Vec<_> = runs
        .iter()
        .copied()
        .filter(|(s, _)| *s > lowered_at + 1_000_000)
        .collect();
    assert!(max_overlap(&runs) <= 5, "{} at once", max_overlap(&runs));
    assert!(
        max_overlap(&before) >= 3,
        "the limit was used: {} at once",
        max_overlap(&before)
    );
    assert!(!after.is_empty());
    assert!(
        max_overlap(&after) <= 2,
        "{} at once after the change",
        max_overlap(&after)
    );
    // The change is an audit event naming the actor.
    let events = admin.recent_events(&["chaos"], None, 10_000).await.unwrap();
    let changes: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::LimitChanged)
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].actor.as_deref(), Some("fleet-test"));
    assert_eq!(changes[0].selection.as_deref(), Some("concurrency=2"));
}

/// A worker holding every place of a limited queue is killed (SIGKILL):
/// another worker takes the places once the dead one's leases expire (its
/// jobs, put back by the reaper, or the waiting ones), never more than the
/// limit, without waiting for anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_places_come_back_when_its_leases_expire() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let admin = c.admin();
    admin.set_concurrency_limit("chaos", Some(2)).await.unwrap();
    env.all_events("chaos").await;
    let long: Vec<Work> = (0..4)
        .map(|n| Work {
            n,
            sleep_ms: 60_000,
        })
        .collect();
    c.enqueue_bulk(&long).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = env.redis.url();
    let mut holder = spawn_worker(&url, dir.path(), 1000);
    let starts = || async {
        admin
            .recent_events(&["chaos"], None, 10_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::Started)
            .count()
    };
    wait_for("both places taken", Duration::from_secs(10), || async {
        starts().await == 2
    })
    .await;
    // A second worker is there, but the queue is full: it starts nothing.
    let _other = spawn_worker(&url, dir.path(), 1000);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(starts().await, 2);
    assert_eq!(admin.queue("chaos").await.unwrap().ready, 2);
    let killed = std::time::Instant::now();
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
    wait_for(
        "the places taken again",
        Duration::from_secs(15),
        || async { starts().await >= 4 },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("places taken again {took:?} after the kill (lease 1 s)");
    assert!(took < Duration::from_secs(5), "{took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(starts().await, 4, "never more than the limit");
    assert_eq!(admin.queue("chaos").await.unwrap().active, 2);
}

/// `spool queue limit` sets and lifts the limit (0 and junk are usage
/// errors); `spool queues` shows it; the dashboard's queue page shows and
/// sets it (a bad value is a 400); `/metrics` exports it.
#[tokio::test]
async fn the_cli_dashboard_and_metrics_show_and_set_the_limit() {
    let env = TestEnv::start().await;
    let (code, out, err) =
        spool_tests::dashboard::spool_cli(&env, &["queue", "limit", "exports", "3"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("at most 3"), "{out}");
    for bad in ["0", "-1", "03", "many"] {
        let (code, _, _) =
            spool_tests::dashboard::spool_cli(&env, &["queue", "limit", "exports", bad]).await;
        assert_eq!(code, 2, "{bad}");
    }
    let (_, out, _) = spool_tests::dashboard::spool_cli(&env, &["queues"]).await;
    let line = out.lines().find(|l| l.starts_with("exports")).unwrap();
    assert!(line.contains(" 3 "), "{line}");
    let (code, _, _) =
        spool_tests::dashboard::spool_cli(&env, &["queue", "limit", "exports", "none"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        env.client
            .admin()
            .queue("exports")
            .await
            .unwrap()
            .concurrency_limit,
        None
    );

    let server = spool_tests::dashboard::DashboardServer::start(spool_dashboard::router(
        env.client.admin(),
        spool_dashboard::DashboardConfig::default(),
    ))
    .await;
    let mut s = spool_tests::dashboard::Session::new(&server.url(), "");
    let page = s.get("/queues/exports").await;
    assert_eq!(page.status, 200);
    let csrf = page.attrs("input[name=csrf]", "value")[0].clone();
    let done = s
        .post("/queues/exports/limit", &[("csrf", &csrf), ("limit", "7")])
        .await;
    assert!(done.status == 303 || done.status == 200, "{}", done.status);
    assert_eq!(
        env.client
            .admin()
            .queue("exports")
            .await
            .unwrap()
            .concurrency_limit,
        Some(7)
    );
    let page = s.get("/queues/exports").await;
    assert!(page.texts("p.limit strong").contains(&"7".to_owned()));
    let bad = s
        .post("/queues/exports/limit", &[("csrf", &csrf), ("limit", "0")])
        .await;
    assert_eq!(bad.status, 400);
    let metrics = s.get("/metrics").await;
    assert!(
        metrics
            .body
            .contains("spool_queue_concurrency_limit{queue=\"exports\"} 7"),
        "{}",
        metrics.body
    );
    server.stop().await;
    // Nothing was fetched or failed on the way.
    assert_eq!(
        env.client
            .admin()
            .list_set("exports", JobSet::Dead, 0, 10)
            .await
            .unwrap()
            .total,
        0
    );
}

/// Weighted queue order: with both queues full and one slot, weights 3:1
/// give queue `a` three quarters of the runs (±10 %).
#[tokio::test]
async fn weights_three_to_one_give_a_three_to_one_share() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let order: Arc<Mutex<Vec<String>>> = Arc::default();
    for q in ["a", "b"] {
        let jobs: Vec<Noop> = (0..600).map(|n| Noop { n }).collect();
        c.enqueue_bulk_with(&jobs, spool_client::EnqueueOptions::new().queue(q))
            .await
            .unwrap();
    }
    let seen = Arc::clone(&order);
    let w = RunningWorker::start(
        env.worker()
            .queue("a", 3)
            .queue("b", 1)
            .concurrency(1)
            .register(move |ctx: JobContext, _job: Noop| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(ctx.queue().to_owned());
                    Ok(())
                }
            })
            .build()
            .unwrap(),
    );
    wait_for("400 runs", Duration::from_secs(30), || async {
        order.lock().unwrap().len() >= 400
    })
    .await;
    w.stop().await;
    let first: Vec<String> = order.lock().unwrap().iter().take(400).cloned().collect();
    let a = first.iter().filter(|q| *q == "a").count();
    eprintln!("queue a ran {a} of the first 400");
    assert!(
        (270..=330).contains(&a),
        "a ran {a} of 400 (expected 300 ± 30)"
    );
}

/// Heartbeats extend the lease: a job running three times its lease
/// finishes once, on its first attempt, and is never reaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_three_leases_finishes_once() {
    let env = TestEnv::start().await;
    let c = &env.client;
    env.all_events("chaos").await;
    let id = c
        .enqueue(&Work {
            n: 1,
            sleep_ms: 1800,
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = env.redis.url();
    // Two workers with a 600 ms lease (heartbeat every 150 ms): the idle
    // one's reaper would take the job if its lease ever lapsed.
    let _one = spawn_worker(&url, dir.path(), 600);
    let _two = spawn_worker(&url, dir.path(), 600);
    wait_for("the job ran", Duration::from_secs(15), || async {
        !ledger(dir.path()).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "{runs}");
    assert!(runs.starts_with(&format!("{id} 1 ")), "{runs}");
    let events = c
        .admin()
        .recent_events(&["chaos"], None, 1000)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(!kinds.contains(&"retrying"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "started").count(), 1);
}

/// A worker holding 50 jobs is killed (`SIGKILL`), with the default settings
/// (lease 15 s, heartbeat 5 s, reaper 5 s): another worker's reaper has
/// every one back within the lease + 5 s of the kill (measured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orphans_are_back_within_lease_and_five_seconds() {
    let env = TestEnv::start().await;
    let c = &env.client;
    env.all_events("chaos").await;
    let jobs: Vec<Work> = (0..50)
        .map(|n| Work {
            n,
            sleep_ms: 120_000,
        })
        .collect();
    c.enqueue_bulk(&jobs).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = env.redis.url();
    let mut holder = spawn_default_worker(&url, dir.path(), 50);
    wait_for("50 leases", Duration::from_secs(15), || async {
        c.admin().queue("chaos").await.unwrap().active == 50
    })
    .await;
    // The other worker is busy too (its one slot taken): its reaper works
    // all the same.
    c.enqueue(&Work {
        n: 99,
        sleep_ms: 120_000,
    })
    .await
    .unwrap();
    let _other = spawn_default_worker(&url, dir.path(), 1);
    wait_for("the other worker busy", Duration::from_secs(15), || async {
        c.admin().queue("chaos").await.unwrap().active == 51
    })
    .await;
    let killed = std::time::Instant::now();
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
    let reaped = || async {
        c.admin()
            .recent_events(&["chaos"], None, 10_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::Retrying)
            .count()
    };
    wait_for(
        "every orphan back in ready",
        Duration::from_secs(40),
        || async { reaped().await >= 50 },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("50 orphans back in ready {took:?} after the kill (lease 15 s)");
    assert!(took <= Duration::from_secs(20), "{took:?}");
    assert_eq!(c.admin().queue("chaos").await.unwrap().ready, 50);
}
