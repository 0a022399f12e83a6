//! Sentinel failover under load: the primary is killed while a producer and
//! two workers run; they carry on through the promoted replica, and with
//! replicated durability every acknowledged job runs.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use spool_client::{Client, Durability};
use spool_tests::load::{recording_worker, wait_until, Producer, Ran};
use spool_tests::{init_tracing, RunningWorker, TestSentinel};

// ---------------------------------------------------------------- Sentinel

/// Failover under load: what a producer, two workers and the numbers see.
struct FailoverRun {
    acked: usize,
    errors: u64,
    processed: usize,
    lost: Vec<u64>,
    to_first_reached: Option<Duration>,
    to_first_ok: Option<Duration>,
    to_first_processed: Option<Duration>,
    failover: Duration,
}

#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
async fn sentinel_failover_under_load(durability: Durability, wait_all: Duration) -> FailoverRun {
    init_tracing();
    let mut topo = tokio::task::spawn_blocking(TestSentinel::start)
        .await
        .expect("start sentinel topology");
    let url = topo.url();
    let connect = || Client::builder(&url).durability(durability).connect();
    let producer_client = connect().await.expect("producer client");
    let ran = Ran::default();
    let workers = vec![
        RunningWorker::start(recording_worker(
            &connect().await.unwrap(),
            &["failover"],
            &ran,
            |_| {},
        )),
        RunningWorker::start(recording_worker(
            &connect().await.unwrap(),
            &["failover"],
            &ran,
            |_| {},
        )),
    ];
    let producer = Producer::start(producer_client, "failover");
    wait_until("jobs flowing", Duration::from_secs(10), || {
        producer.acked_count() > 100 && ran.count() > 100
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let n_at_kill = producer.next.load(Ordering::Relaxed);
    let killed_at = Instant::now();
    let old = topo.primary_port();
    topo.kill_primary();
    let mut topo = tokio::task::spawn_blocking(move || {
        topo.wait_for_failover(Duration::from_secs(15));
        topo
    })
    .await
    .expect("failover");
    let failover_done = Instant::now();
    producer.mark.store(true, Ordering::Relaxed);
    eprintln!(
        "failover {old} -> {} in {:?} ({} errors so far)",
        topo.primary_port(),
        failover_done - killed_at,
        producer.errors()
    );
    // With one replica, `WAIT 1` needs a replica again: bring the old
    // primary back as the new primary's replica, as an operator would.
    let topo = if matches!(durability, Durability::Replicated { .. }) {
        let t = Instant::now();
        let topo = tokio::task::spawn_blocking(move || {
            topo.restart_old_primary_as_replica();
            topo
        })
        .await
        .expect("restart old primary");
        eprintln!("old primary back as replica in {:?}", t.elapsed());
        topo
    } else {
        topo
    };
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(failover_done));
    wait_until(
        "enqueue and processing to recover",
        Duration::from_secs(10),
        || {
            producer.first_ok_after_mark.lock().unwrap().is_some()
                && ran.first_above(n_at_kill).is_some()
        },
    )
    .await;
    // Keep producing a little on the new primary.
    let acked_now = producer.acked_count();
    wait_until(
        "more enqueues after failover",
        Duration::from_secs(10),
        || producer.acked_count() > acked_now + 100,
    )
    .await;
    let to_first_ok = since(*producer.first_ok_after_mark.lock().unwrap());
    let to_first_reached = since(*producer.first_reached_after_mark.lock().unwrap());
    let to_first_processed = since(ran.first_above(n_at_kill));
    let (acked, errors) = producer.stop().await;

    let deadline = Instant::now() + wait_all;
    while !ran.missing(&acked).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost = ran.missing(&acked);
    for w in workers {
        w.stop().await;
    }
    drop(topo);
    FailoverRun {
        acked: acked.len(),
        errors,
        processed: ran.count(),
        lost,
        to_first_reached,
        to_first_ok,
        to_first_processed,
        failover: failover_done - killed_at,
    }
}

/// With `Replicated { replicas: 1 }` a Sentinel failover under load loses
/// no acknowledged job, and enqueue and processing recover within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_with_wait_loses_no_acknowledged_job() {
    let run = sentinel_failover_under_load(
        Durability::Replicated {
            replicas: 1,
            timeout: Duration::from_secs(2),
        },
        Duration::from_secs(20),
    )
    .await;
    eprintln!(
        "sentinel (Replicated 1): acknowledged {}, errors {}, processed {}, lost {} {:?}; \
         from failover done: first write on new primary {:?}, first Ok {:?}, first processed {:?}; \
         failover itself (kill to sentinels agreeing) {:?}",
        run.acked,
        run.errors,
        run.processed,
        run.lost.len(),
        run.lost.iter().take(10).collect::<Vec<_>>(),
        run.to_first_reached,
        run.to_first_ok,
        run.to_first_processed,
        run.failover,
    );
    assert!(
        run.lost.is_empty(),
        "acknowledged jobs never ran: {:?}",
        run.lost
    );
    assert!(run.to_first_ok.unwrap() < Duration::from_secs(10));
    assert!(run.to_first_processed.unwrap() < Duration::from_secs(10));
}

/// The same with `Durability::Primary`: prints how many acknowledged jobs
/// the failover lost (not asserted: asynchronous replication may lose some).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_without_wait_reports_lost_jobs() {
    let run = sentinel_failover_under_load(Durability::Primary, Duration::from_secs(8)).await;
    eprintln!(
        "sentinel (Primary): acknowledged {}, errors {}, processed {}, LOST {} {:?}; \
         from failover done: first Ok {:?}, first processed {:?}; failover itself {:?}",
        run.acked,
        run.errors,
        run.processed,
        run.lost.len(),
        run.lost.iter().take(10).collect::<Vec<_>>(),
        run.to_first_ok,
        run.to_first_processed,
        run.failover,
    );
    assert!(run.to_first_ok.unwrap() < Duration::from_secs(10));
    assert!(run.to_first_processed.unwrap() < Duration::from_secs(10));
}

/// Sentinel with passwords on both sides (`requirepass` on the data
/// servers and on the sentinels): with the data password in the URL's
/// userinfo and the sentinels' in `?sentinel_password=`, a job is enqueued
/// and run. A wrong data password, or a missing or wrong sentinel password,
/// fails the connect with `Error::Connect` whose text quotes no password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_with_passwords_runs_jobs_and_wrong_ones_fail() {
    use spool_tests::handlers::{fixture_worker, Noop, Recorder};
    const DATA_PW: &str = "data-pw-Q7xK2";
    const SENT_PW: &str = "sentinel-pw-M4vT9";
    const WRONG_PW: &str = "wrong-pw-Z8nR5";
    init_tracing();
    let topo = tokio::task::spawn_blocking(|| TestSentinel::start_with_auth(DATA_PW, SENT_PW))
        .await
        .expect("start sentinel topology with passwords");
    let hosts = topo
        .sentinel_ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let url = |data: Option<&str>, sentinel: Option<&str>| {
        let userinfo = data.map_or_else(String::new, |p| format!(":{p}@"));
        let query = sentinel.map_or_else(String::new, |p| format!("?sentinel_password={p}"));
        format!("redis+sentinel://{userinfo}{hosts}/mymaster{query}")
    };

    let t = Instant::now();
    let client = Client::builder(&url(Some(DATA_PW), Some(SENT_PW)))
        .connect()
        .await
        .expect("connect with both passwords");
    let rec = Recorder::default();
    let running = RunningWorker::start(fixture_worker(&client, &rec));
    client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_until(
        "the job ran via password sentinels",
        Duration::from_secs(10),
        || rec.count("noop-1") == 1,
    )
    .await;
    eprintln!("connected, enqueued and ran in {:?}", t.elapsed());
    running.stop().await;

    // Every case is tried before asserting, so one run reports them all.
    let mut wrong = Vec::new();
    for (what, data, sentinel) in [
        ("wrong data password", Some(WRONG_PW), Some(SENT_PW)),
        ("no data password", None, Some(SENT_PW)),
        ("no sentinel password", Some(DATA_PW), None),
        ("wrong sentinel password", Some(DATA_PW), Some(WRONG_PW)),
    ] {
        let t = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            Client::builder(&url(data, sentinel)).connect(),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: connect did not return within 30 s"));
        let Err(err) = result else {
            wrong.push(format!("{what}: connect succeeded"));
            continue;
        };
        let text = format!("{err} / {err:?}");
        eprintln!("{what} ({:?}): {err}", t.elapsed());
        if !matches!(err, spool_client::Error::Connect { .. }) {
            wrong.push(format!("{what}: not Error::Connect: {text}"));
        }
        for pw in [DATA_PW, SENT_PW, WRONG_PW] {
            if text.contains(pw) {
                wrong.push(format!("{what}: password {pw:?} in the error: {text}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(client);
    drop(topo);
}
