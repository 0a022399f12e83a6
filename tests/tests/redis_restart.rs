//! Redis restarts (AOF, `appendfsync always`): no acknowledged enqueue is
//! lost, and a running worker resumes on its own within 5 s of Redis being back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use spool_tests::handlers::Noop;
use spool_tests::{wait_for, Persistence, RunningWorker, TestEnv};

/// Restart between enqueue and processing, then again during processing:
/// every acknowledged job runs; the worker reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_survive_redis_restarts_and_the_worker_resumes() {
    let mut env = TestEnv::start_with(Persistence::AofAlways).await;
    let jobs: Vec<Noop> = (0..500).map(|n| Noop { n }).collect();
    let mut acked: HashSet<u64> = HashSet::new();
    env.client.enqueue_bulk(&jobs).await.unwrap();
    acked.extend(0..500);

    // Restart 1: between enqueue and processing.
    env.redis.restart();
    let admin = env.client.admin();
    wait_for("client reconnected", Duration::from_secs(5), || async {
        admin.queue("default").await.is_ok()
    })
    .await;
    assert_eq!(
        admin.queue("default").await.unwrap().ready,
        500,
        "all acknowledged jobs survived"
    );

    let ran = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let r = ran.clone();
    let worker = env
        .worker()
        .concurrency(4)
        // Production idle wait: resuming must not depend on short test timings.
        .configure(|c| c.idle_wait = spool_worker::WorkerConfig::IDLE_WAIT_DEFAULT)
        .register(move |_ctx, job: Noop| {
            let r = r.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                r.lock().expect("lock").insert(job.n);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    wait_for("processing under way", Duration::from_secs(10), || async {
        ran.lock().unwrap().len() >= 50
    })
    .await;

    // Restart 2: during processing. Enqueues while Redis is down fail loudly
    // (an error is not an acknowledgement); those that succeed must run.
    env.redis.kill();
    let mut refused = 0;
    for n in 1000..1010 {
        if env.client.enqueue(&Noop { n }).await.is_err() {
            refused += 1;
        } else {
            acked.insert(n);
        }
    }
    assert_eq!(refused, 10, "enqueue with Redis down reports an error");
    env.redis.restart();
    let back = Instant::now();
    let before = ran.lock().unwrap().len();
    wait_for(
        "worker resumed within 5 s",
        Duration::from_secs(5),
        || async { ran.lock().unwrap().len() > before },
    )
    .await;
    eprintln!(
        "worker resumed {} ms after redis came back",
        back.elapsed().as_millis()
    );
    for n in 2000..2100 {
        env.client.enqueue(&Noop { n }).await.unwrap();
        acked.insert(n);
    }
    wait_for(
        "every acknowledged job ran",
        Duration::from_secs(30),
        || async {
            let ran = ran.lock().unwrap();
            acked.iter().all(|n| ran.contains(n))
        },
    )
    .await;
    running.stop().await;
}
