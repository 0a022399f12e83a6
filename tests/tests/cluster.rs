//! Redis Cluster under change: a queue's slot moved between primaries while
//! jobs are produced and run loses nothing, and idle workers wake on every
//! primary.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool_client::{Client, EnqueueOptions};
use spool_tests::handlers::Noop;
use spool_tests::load::{recording_worker, wait_until, Producer, Ran};
use spool_tests::{init_tracing, slot_of, RunningWorker, TestCluster};

// ---------------------------------------------------------------- Cluster

/// The queue of the resharding test.
const Q: &str = "reshard";
/// Numbers of the resharding test's backlog jobs start here.
const BACKLOG: u64 = 1_000_000;

/// Keys of `queue` (`spool:{queue}:*`) on the node on `port`.
fn keys_on(port: u16, queue: &str) -> Vec<String> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("KEYS")
        .arg(format!("spool:{{{queue}}}:*"))
        .query(&mut con)
        .unwrap()
}

/// Moving a queue's slot to another primary while a producer enqueues and
/// a worker fetches loses no acknowledged job; afterwards every key of the
/// queue is on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
async fn cluster_reshard_under_load_loses_no_job() {
    init_tracing();
    let cluster = Arc::new(
        tokio::task::spawn_blocking(|| TestCluster::start(3, 0))
            .await
            .expect("start cluster"),
    );
    let slot = TestCluster::slot_of(format!("spool:{{{Q}}}:ready"));
    let from = cluster.node_for_slot(slot);
    let ports = cluster.ports();
    let to = *ports.iter().find(|&&p| p != from).unwrap();
    let third = *ports.iter().find(|&&p| p != from && p != to).unwrap();

    let client = Client::connect(&cluster.url())
        .await
        .expect("cluster client");
    let ran = Ran::default();
    let worker = RunningWorker::start(recording_worker(&client, &[Q], &ran, |_| {}));
    // Three producers (each on its own client), numbered apart.
    let mut producers = Vec::new();
    for base in [0, 100_000, 200_000] {
        let c = Client::connect(&cluster.url())
            .await
            .expect("producer client");
        producers.push(Producer::start_at(c, Q, base));
    }
    let acked_count = |ps: &[Producer]| ps.iter().map(Producer::acked_count).sum::<usize>();
    let errors = |ps: &[Producer]| ps.iter().map(Producer::errors).sum::<u64>();
    wait_until("jobs flowing", Duration::from_secs(10), || {
        acked_count(&producers) > 200 && ran.count() > 100
    })
    .await;
    // Keys enough in the slot for several MIGRATE batches (100 keys each),
    // so the queue's keys are split between two nodes for a while, and a
    // backlog in the ready list.
    let mut conn = client.connection();
    for i in 0..350 {
        let () = redis::cmd("SET")
            .arg(format!("spool:{{{Q}}}:filler:{i}"))
            .arg(i)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let backlog: Vec<Noop> = (BACKLOG..BACKLOG + 2000).map(|n| Noop { n }).collect();
    client
        .enqueue_bulk_with(&backlog, EnqueueOptions::new().queue(Q))
        .await
        .unwrap();

    // Moves: to the target, on to the third primary, back, and to the target.
    let keys_before = keys_on(from, Q).len();
    let mut moves = Vec::new();
    for dest in [to, third, from, to] {
        let (errors_before, acked_before) = (errors(&producers), acked_count(&producers));
        let t = Instant::now();
        {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || cluster.move_slot(slot, dest))
                .await
                .expect("move_slot");
        }
        moves.push(format!(
            "-> {dest} in {:?} ({} acknowledged, {} enqueue errors during it)",
            t.elapsed(),
            acked_count(&producers) - acked_before,
            errors(&producers) - errors_before
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut acked = HashSet::new();
    let mut enqueue_errors = 0;
    for p in producers {
        let (a, e) = p.stop().await;
        acked.extend(a);
        enqueue_errors += e;
    }
    wait_until(
        "every acknowledged job ran",
        Duration::from_secs(20),
        || ran.missing(&acked).is_empty(),
    )
    .await;
    worker.stop().await;

    assert_eq!(cluster.node_for_slot(slot), to);
    let on_source = keys_on(from, Q);
    let on_third = keys_on(third, Q);
    let on_target = keys_on(to, Q);
    eprintln!(
        "cluster reshard of slot {slot} ({keys_before} keys) starting on {from}: {}; \
         acknowledged {}, enqueue errors {enqueue_errors}, processed {}; \
         keys now: {from} {}, {third} {}, target {to} {}",
        moves.join("; "),
        acked.len(),
        ran.count(),
        on_source.len(),
        on_third.len(),
        on_target.len()
    );
    assert!(on_source.is_empty(), "keys left on {from}: {on_source:?}");
    assert!(on_third.is_empty(), "keys left on {third}: {on_third:?}");
    assert!(
        on_target.len() >= 350,
        "the queue's keys are on the target: {on_target:?}"
    );
    let backlog: HashSet<u64> = (BACKLOG..BACKLOG + 2000).collect();
    let missing = ran.missing(&backlog);
    assert!(missing.is_empty(), "backlog jobs never ran: {missing:?}");
    let cluster = Arc::try_unwrap(cluster).expect("the only handle");
    drop(client);
    drop(cluster);
}

/// An idle worker on three queues whose slots are on three different
/// primaries picks up a job in each within 1 s of its enqueue, with a 5 s
/// `idle_wait`: the wake-up works on Cluster (no CROSSSLOT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_idle_worker_wakes_on_every_primary() {
    init_tracing();
    let cluster = tokio::task::spawn_blocking(|| TestCluster::start(3, 0))
        .await
        .expect("start cluster");
    let mut queues: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let name = format!("wake{i}");
        let owner = cluster.node_for_slot(slot_of(format!("spool:{{{name}}}:ready")));
        if !queues.iter().any(|(_, p)| *p == owner) {
            queues.push((name, owner));
        }
        if queues.len() == 3 {
            break;
        }
    }
    eprintln!("queues and their primaries: {queues:?}");
    let names: Vec<&str> = queues.iter().map(|(n, _)| n.as_str()).collect();

    let client = Client::connect(&cluster.url())
        .await
        .expect("cluster client");
    let ran = Ran::default();
    let worker = RunningWorker::start(recording_worker(&client, &names, &ran, |c| {
        c.idle_wait = Duration::from_secs(5);
    }));
    for round in 0..2u64 {
        // Let the fetchers settle into their blocking wait.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut sent = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let n = round * 10 + i as u64;
            let at = Instant::now();
            client
                .enqueue_with(&Noop { n }, EnqueueOptions::new().queue(*name))
                .await
                .unwrap();
            sent.push((n, at));
        }
        wait_until("each job ran", Duration::from_secs(8), || {
            sent.iter().all(|(n, _)| ran.ran_at(*n).is_some())
        })
        .await;
        for ((n, at), name) in sent.iter().zip(&names) {
            let took = ran.ran_at(*n).unwrap().saturating_duration_since(*at);
            eprintln!("round {round}: queue {name}: picked up in {took:?}");
            assert!(
                took < Duration::from_secs(1),
                "queue {name}: picked up after {took:?}, not by the wake-up"
            );
        }
    }
    worker.stop().await;
    drop(client);
    drop(cluster);
}

/// Each node has its own script cache. When one node lost it (a restart, a
/// promoted replica) an enqueue's pipeline (the job on the queue's node, the
/// registry on the namespace's) half runs before `NOSCRIPT`; the half that
/// ran must not run again: an idempotent enqueue still reports "created",
/// and exactly one job exists.
#[tokio::test]
async fn a_node_without_its_scripts_runs_nothing_twice() {
    init_tracing();
    let cluster = tokio::task::spawn_blocking(|| TestCluster::start(3, 0))
        .await
        .expect("start cluster");
    let registry_node = cluster.node_for_slot(slot_of("{spool}:queues"));
    let queue = (0..1000)
        .map(|i| format!("q{i}"))
        .find(|q| cluster.node_for_slot(slot_of(format!("spool:{{{q}}}:ready"))) != registry_node)
        .expect("a queue on another node");
    let client = Client::connect(&cluster.url()).await.unwrap();
    for (round, flushed) in [
        registry_node,
        cluster.node_for_slot(slot_of(format!("spool:{{{queue}}}:ready"))),
    ]
    .into_iter()
    .enumerate()
    {
        // Warm every cache, then empty one node's.
        client
            .enqueue_with(&Noop { n: 0 }, EnqueueOptions::new().queue(&queue))
            .await
            .unwrap();
        let mut node = redis::Client::open(format!("redis://127.0.0.1:{flushed}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut node)
            .await
            .unwrap();
        let e = client
            .enqueue_with(
                &Noop { n: 1 },
                EnqueueOptions::new()
                    .queue(&queue)
                    .idempotency_key(format!("once-{round}")),
            )
            .await
            .unwrap();
        assert!(
            !e.duplicate,
            "round {round}: the enqueue ran twice and saw itself"
        );
        let ready = client.admin().queue(&queue).await.unwrap().ready;
        assert_eq!(ready, 2 * (round as u64 + 1), "round {round}");
    }
}
