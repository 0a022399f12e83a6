//! Replicated durability: with `Durability::Replicated`, an enqueue returns
//! only once a replica has the job, says so when none acknowledges in time,
//! and the worker's completions wait for the replica too.

use std::time::{Duration, Instant};

use spool_client::{Client, Durability, Error};
use spool_tests::handlers::{with_fixtures, Noop, Recorder};
use spool_tests::{fast_config, init_tracing, wait_for, RunningWorker, TestRedis};
use spool_worker::Worker;

fn replicated(timeout: Duration) -> Durability {
    Durability::Replicated {
        replicas: 1,
        timeout,
    }
}

/// A primary, its replica, and a client with `WAIT 1` (5 s) on the primary.
async fn replicated_pair() -> (TestRedis, TestRedis, Client) {
    init_tracing();
    let primary = TestRedis::start();
    let replica = TestRedis::builder().replica_of(primary.port()).start();
    let client = Client::builder(&primary.url())
        .durability(replicated(Duration::from_secs(5)))
        .connect()
        .await
        .expect("connect to the primary");
    (primary, replica, client)
}

async fn llen_on(server: &TestRedis, key: &str) -> u64 {
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the replica");
    redis::cmd("LLEN")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("LLEN")
}

/// Every acknowledged enqueue (single and bulk) is on the replica the
/// moment the call returns: no sleep, no polling.
#[tokio::test]
async fn an_acknowledged_enqueue_is_already_on_the_replica() {
    let (_primary, replica, client) = replicated_pair().await;
    for n in 0..50 {
        client.enqueue(&Noop { n }).await.unwrap();
        assert_eq!(
            llen_on(&replica, "spool:{default}:ready").await,
            n + 1,
            "enqueue {n} returned before the replica had it"
        );
    }
    let bulk: Vec<Noop> = (0..2_000).map(|n| Noop { n }).collect();
    client.enqueue_bulk(&bulk).await.unwrap();
    assert_eq!(llen_on(&replica, "spool:{default}:ready").await, 2_050);

    // A replica that cannot answer (stopped for 400 ms) holds the enqueue
    // back until it has the job: the call cannot return before.
    let pid = server_pid(&replica).await;
    signal(pid, "STOP");
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        signal(pid, "CONT");
    });
    let started = Instant::now();
    client.enqueue(&Noop { n: 99 }).await.unwrap();
    let waited = started.elapsed();
    resume.join().unwrap();
    assert!(
        waited >= Duration::from_millis(350),
        "the enqueue returned after {waited:?}, while the replica was stopped"
    );
    assert_eq!(llen_on(&replica, "spool:{default}:ready").await, 2_051);
}

async fn server_pid(server: &TestRedis) -> u32 {
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the server");
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .expect("INFO server");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO server has process_id")
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

/// Without a replica the enqueue fails with `NotReplicated` after the
/// timeout, naming the counts; the job is on the primary (the outcome is
/// "unknown" to the caller, as documented) and a worker runs it.
#[tokio::test]
async fn an_enqueue_no_replica_acknowledges_says_so_and_the_job_still_exists() {
    init_tracing();
    let primary = TestRedis::start();
    let client = Client::builder(&primary.url())
        .durability(replicated(Duration::from_millis(300)))
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let err = client.enqueue(&Noop { n: 7 }).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            err,
            Error::NotReplicated {
                wanted: 1,
                acked: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("0 of 1 replicas"), "{err}");
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    assert_eq!(client.admin().queue("default").await.unwrap().ready, 1);

    // A worker on the same unreplicated primary still finishes jobs: a
    // completion that is not replicated is logged, not retried.
    let rec = Recorder::default();
    let worker = with_fixtures(Worker::builder(client.clone()).configure(fast_config), &rec)
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    wait_for("the job ran", Duration::from_secs(10), || async {
        rec.count("noop-7") == 1
    })
    .await;
    let admin = client.admin();
    wait_for("the job was acked", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().active == 0
    })
    .await;
    running.stop().await;
}

/// A worker with replicated durability drains jobs, and its acks reach the
/// replica: after the drain the replica holds no lease and no job.
#[tokio::test]
async fn completions_reach_the_replica() {
    let (_primary, replica, client) = replicated_pair().await;
    let bulk: Vec<Noop> = (0..500).map(|n| Noop { n }).collect();
    client.enqueue_bulk(&bulk).await.unwrap();
    let rec = Recorder::default();
    let worker = with_fixtures(Worker::builder(client.clone()).configure(fast_config), &rec)
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let admin = client.admin();
    wait_for("drained", Duration::from_secs(20), || async {
        let q = admin.queue("default").await.unwrap();
        q.ready == 0 && q.active == 0
    })
    .await;
    running.stop().await;
    let mut conn = replica
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (ready, active): (u64, u64) = redis::pipe()
        .cmd("LLEN")
        .arg("spool:{default}:ready")
        // Claims with leases left (scores below +inf: not an old guard member).
        .cmd("ZCOUNT")
        .arg("spool:{default}:active")
        .arg("-inf")
        .arg("(inf")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((ready, active), (0, 0));
    assert_eq!(rec.total(), 500);
}

/// Nonsense durability settings are refused before connecting.
#[tokio::test]
async fn nonsense_durability_is_refused() {
    for bad in [
        Durability::Replicated {
            replicas: 0,
            timeout: Duration::from_secs(1),
        },
        Durability::Replicated {
            replicas: 1,
            timeout: Duration::ZERO,
        },
    ] {
        let err = Client::builder("redis://127.0.0.1:1")
            .durability(bad)
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}
