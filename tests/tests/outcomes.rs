//! Job outcomes for producers: status through every state, typed results,
//! outcome retention, wait, cancel (queued and running), and timelines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spool_client::runtime::{Applied, Completion, LeaseLoss, Outcome};
use spool_client::{
    CancelResult, EnqueueOptions, FixedDelay, Job, JobId, JobOptions, JobOutput, Status,
};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};

const KEEP: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

impl Job for Add {
    const TYPE: &'static str = "add";
    fn options() -> JobOptions {
        JobOptions::default().keep_outcome(KEEP)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Sum {
    total: i64,
}

impl JobOutput for Add {
    type Output = Sum;
}

/// Returns a value of the size asked for.
#[derive(Serialize, Deserialize)]
struct Big {
    bytes: usize,
}

impl Job for Big {
    const TYPE: &'static str = "big";
    fn options() -> JobOptions {
        JobOptions::default().keep_outcome(KEEP)
    }
}

impl JobOutput for Big {
    type Output = String;
}

/// Fails every time, three attempts, 50 ms apart.
#[derive(Serialize, Deserialize)]
struct Doomed;

impl Job for Doomed {
    const TYPE: &'static str = "doomed";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(FixedDelay(Duration::from_millis(50)))
            .keep_outcome(KEEP)
    }
}

/// Runs until cancelled (cooperative) or for `secs` ignoring the signal.
#[derive(Serialize, Deserialize)]
struct Long {
    cooperative: bool,
}

impl Job for Long {
    const TYPE: &'static str = "long";
    fn options() -> JobOptions {
        JobOptions::default()
            .keep_outcome(KEEP)
            .timeout(Duration::from_secs(2))
            .max_attempts(5)
    }
}

fn worker(env: &TestEnv, long_runs: Arc<AtomicU32>) -> RunningWorker {
    let w = env
        .worker()
        .register_returning(|_ctx, job: Add| async move {
            Ok(Sum {
                total: job.a + job.b,
            })
        })
        .register_returning(|_ctx, job: Big| async move { Ok("x".repeat(job.bytes)) })
        .register(|ctx: JobContext, _job: Doomed| async move {
            Err(JobError::retry(format!("boom {}", ctx.attempt())))
        })
        .register(move |ctx: JobContext, job: Long| {
            let runs = long_runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                if job.cooperative {
                    ctx.cancellation().cancelled().await;
                    assert!(ctx.is_cancel_requested());
                    return Err(JobError::retry("stopped: cancelled"));
                }
                // Ignores the signal: runs into its 2 s time limit.
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        })
        .build()
        .expect("worker builds");
    RunningWorker::start(w)
}

#[tokio::test]
async fn status_follows_a_job_through_its_states_and_keeps_its_result() {
    let env = TestEnv::start().await;
    let c = &env.client;
    // Unknown: never existed.
    let nobody = c.status(&JobId::new()).await.unwrap();
    assert_eq!(nobody.status, Status::Unknown);

    // Scheduled, then ready (no worker yet).
    let later = c
        .enqueue_in(&Add { a: 1, b: 2 }, Duration::from_secs(3600))
        .await
        .unwrap();
    let s = c.status(&later).await.unwrap();
    assert_eq!(s.status, Status::Scheduled);
    assert_eq!(s.queue.as_deref(), Some("default"));
    assert_eq!(s.history.len(), 1, "{:?}", s.history);
    assert_eq!(s.history[0].state, "scheduled");
    let now = c.enqueue(&Add { a: 2, b: 3 }).await.unwrap();
    let s = c.status(&now).await.unwrap();
    assert_eq!(s.status, Status::Ready);
    assert_eq!(s.job_type.as_deref(), Some("add"));
    assert_eq!(c.result::<Add>(&now).await.unwrap(), None);

    // A job that keeps no outcome: wait learns how it ended, status then
    // says unknown.
    let plain = c
        .enqueue_with(
            &Add { a: 0, b: 0 },
            EnqueueOptions::new().keep_outcome(Duration::ZERO),
        )
        .await
        .unwrap()
        .id;
    let plain_wait = {
        let c = c.clone();
        let plain = plain.clone();
        tokio::spawn(async move { c.wait(&plain, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Done, with its typed result and timeline (ready, active, done).
    let running = worker(&env, Arc::default());
    let done = c.wait(&now, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(c.result::<Add>(&now).await.unwrap(), Some(Sum { total: 5 }));
    let s = c.status(&now).await.unwrap();
    assert_eq!(s.status, Status::Done);
    assert_eq!(s.attempt, Some(1));
    let states: Vec<&str> = s.history.iter().map(|h| h.state.as_str()).collect();
    assert_eq!(states, ["ready", "active", "done"]);
    assert!(s.history[1].worker.is_some());
    assert!(s.history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(s.outcome_expires_in.unwrap() > Duration::from_secs(500));

    let w = plain_wait.await.unwrap().unwrap();
    assert_eq!(w.status, Status::Done, "wait still learns how it ended");
    assert_eq!(c.status(&plain).await.unwrap().status, Status::Unknown);

    // An expired outcome is unknown.
    let short = c
        .enqueue_with(
            &Add { a: 1, b: 1 },
            EnqueueOptions::new().keep_outcome(Duration::from_millis(300)),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        c.wait(&short, Duration::from_secs(10))
            .await
            .unwrap()
            .status,
        Status::Done
    );
    // Kept at least 300 ms, and at most one bucket window (128 ms) longer.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(c.status(&short).await.unwrap().status, Status::Unknown);
    running.stop().await;
}

#[tokio::test]
async fn a_result_over_the_payload_limit_is_refused_and_the_job_still_done() {
    let env = TestEnv::start().await;
    let running = worker(&env, Arc::default());
    let id = env
        .client
        .enqueue(&Big {
            bytes: spool_client::MAX_PAYLOAD_BYTES_DEFAULT + 10,
        })
        .await
        .unwrap();
    let s = env.client.wait(&id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.status, Status::Done);
    assert!(s.result.is_none());
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("result not kept"),
        "{s:?}"
    );
    let small = env.client.enqueue(&Big { bytes: 3 }).await.unwrap();
    env.client
        .wait(&small, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        env.client.result::<Big>(&small).await.unwrap().as_deref(),
        Some("xxx")
    );
    running.stop().await;
}

#[tokio::test]
async fn a_job_that_retried_twice_and_died_has_its_timeline_and_wait_returns_dead() {
    let env = TestEnv::start().await;
    let id = env.client.enqueue(&Doomed).await.unwrap();
    let running = worker(&env, Arc::default());
    let s = env.client.wait(&id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.status, Status::Dead);
    let s = env.client.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Dead);
    assert_eq!(s.attempt, Some(3));
    assert_eq!(s.last_error.as_deref(), Some("boom 3"));
    let states: Vec<&str> = s.history.iter().map(|h| h.state.as_str()).collect();
    assert_eq!(
        states,
        ["ready", "active", "retry", "ready", "active", "retry", "ready", "active", "dead"]
    );
    assert!(
        s.history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "{:?}",
        s.history
    );
    assert_eq!(s.history.last().unwrap().error.as_deref(), Some("boom 3"));
    running.stop().await;
}

#[tokio::test]
async fn cancel_in_each_state() {
    let env = TestEnv::start().await;
    let c = &env.client;
    // Scheduled and ready: cancelled at once, never run.
    let scheduled = c
        .enqueue_in(&Add { a: 1, b: 1 }, Duration::from_secs(3600))
        .await
        .unwrap();
    let ready = c.enqueue(&Add { a: 1, b: 1 }).await.unwrap();
    assert!(matches!(
        c.cancel(&scheduled).await.unwrap(),
        CancelResult::Cancelled {
            from: Status::Scheduled,
            ..
        }
    ));
    assert!(matches!(
        c.cancel(&ready).await.unwrap(),
        CancelResult::Cancelled {
            from: Status::Ready,
            ..
        }
    ));
    for id in [&scheduled, &ready] {
        let s = c.status(id).await.unwrap();
        assert_eq!(s.status, Status::Cancelled);
        assert_eq!(s.history.last().unwrap().state, "cancelled");
        assert_eq!(
            c.wait(id, Duration::from_secs(1)).await.unwrap().status,
            Status::Cancelled
        );
    }
    // Cancelling again, or a finished job, says so and changes nothing.
    assert!(matches!(
        c.cancel(&ready).await.unwrap(),
        CancelResult::AlreadyFinished {
            state: Status::Cancelled,
            ..
        }
    ));
    assert_eq!(
        c.cancel(&JobId::new()).await.unwrap(),
        CancelResult::NotFound
    );

    // Running, cooperative: the handler sees the signal; the job ends
    // cancelled, not retried.
    let runs = Arc::new(AtomicU32::new(0));
    let running = worker(&env, runs.clone());
    let coop = c.enqueue(&Long { cooperative: true }).await.unwrap();
    wait_for("long job running", Duration::from_secs(5), || async {
        c.status(&coop).await.unwrap().status == Status::Active
    })
    .await;
    let asked = Instant::now();
    assert!(matches!(
        c.cancel(&coop).await.unwrap(),
        CancelResult::Signalled { first: true, .. }
    ));
    let s = c.wait(&coop, Duration::from_secs(5)).await.unwrap();
    assert_eq!(s.status, Status::Cancelled);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );

    // Running, ignoring the signal: ends at its time limit, still cancelled.
    let stubborn = c.enqueue(&Long { cooperative: false }).await.unwrap();
    wait_for("stubborn job running", Duration::from_secs(5), || async {
        c.status(&stubborn).await.unwrap().status == Status::Active
    })
    .await;
    let s = c.status(&stubborn).await.unwrap();
    assert!(s.worker.is_some());
    c.cancel(&stubborn).await.unwrap();
    assert!(c.status(&stubborn).await.unwrap().cancel_requested);
    let s = c.wait(&stubborn, Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.status, Status::Cancelled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "neither job ran again");
    let stats = c.admin().queue("default").await.unwrap();
    assert_eq!(stats.retry, 0);
    running.stop().await;
}

#[tokio::test]
async fn cancel_racing_ack_ends_one_way_only() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let running = worker(&env, Arc::default());
    for _ in 0..20 {
        let id = c.enqueue(&Add { a: 1, b: 2 }).await.unwrap();
        let answer = c.cancel(&id).await.unwrap();
        let s = c.wait(&id, Duration::from_secs(5)).await.unwrap();
        match answer {
            CancelResult::Cancelled { .. } | CancelResult::Signalled { .. } => {
                assert_eq!(s.status, Status::Cancelled, "{answer:?}");
            }
            CancelResult::AlreadyFinished { .. } => assert_eq!(s.status, Status::Done),
            CancelResult::NotFound => panic!("job lost"),
        }
    }
    running.stop().await;
}

#[tokio::test]
async fn a_thousand_concurrent_waiters_share_one_subscription() {
    let env = TestEnv::start().await;
    let c = env.client.clone();
    let ids: Vec<JobId> = c
        .enqueue_bulk(&(0..1000).map(|i| Add { a: i, b: 1 }).collect::<Vec<_>>())
        .await
        .unwrap();
    let clients_before = connected_clients(&env).await;
    let waits: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let c = c.clone();
            tokio::spawn(async move { c.wait(&id, Duration::from_secs(30)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clients_waiting = connected_clients(&env).await;
    assert!(
        clients_waiting <= clients_before + 1,
        "{clients_before} connections before, {clients_waiting} while 1,000 wait"
    );
    let running = worker(&env, Arc::default());
    for w in waits {
        let s = w.await.unwrap().unwrap();
        assert_eq!(s.status, Status::Done);
    }
    assert_eq!(
        c.result::<Add>(&ids[41]).await.unwrap(),
        Some(Sum { total: 42 })
    );
    running.stop().await;
}

async fn connected_clients(env: &TestEnv) -> u64 {
    // Summed over every primary (one on a single node).
    let replies = env
        .client
        .connection()
        .on_every_primary(redis::cmd("INFO").arg("clients"))
        .await
        .expect("INFO clients");
    replies
        .into_iter()
        .map(|v| {
            let info: String = redis::from_redis_value(v).expect("INFO text");
            info.lines()
                .find_map(|l| l.strip_prefix("connected_clients:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("connected_clients in INFO")
        })
        .sum()
}

fn completion(
    keys: &Arc<spool_client::runtime::QueueKeys>,
    job: &spool_client::runtime::LeasedJob,
    outcome: Outcome,
) -> Completion {
    Completion {
        keys: keys.clone(),
        id: job.id.clone(),
        token: job.token.clone(),
        outcome,
        run: spool_client::runtime::RunFacts::of(job),
    }
}

/// Driven step by step through the runtime protocol (no worker): active
/// and retry states, cancel of a retrying job, a dead job that cannot be
/// cancelled, and a cancelled run whose worker lost its lease: the reaper
/// ends it cancelled and the late ack changes nothing.
#[tokio::test]
async fn runtime_steps_active_retry_cancel_and_a_lost_lease() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let fetch = |lease_ms: u64| {
        let rt = rt.clone();
        let keys = keys.clone();
        async move {
            rt.fetch(&keys, 1, Duration::from_millis(lease_ms), "w-1")
                .await
                .unwrap()
                .pop()
                .expect("a job")
        }
    };

    // Active, then retry; cancelled from retry.
    let id = c.enqueue(&Doomed).await.unwrap();
    let run = fetch(30_000).await;
    let s = c.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Active);
    assert_eq!(s.worker.as_deref(), Some("w-1"));
    assert_eq!(s.attempt, Some(1));
    assert!(s.started_ms.is_some());
    assert_eq!(s.history.last().unwrap().state, "active");
    let failed = Outcome::Retry {
        delay: Duration::from_secs(3600),
        error: "later".into(),
    };
    assert_eq!(
        rt.complete(&[completion(&keys, &run, failed)])
            .await
            .unwrap(),
        vec![Applied::Retrying]
    );
    let s = c.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Retry);
    assert_eq!(s.last_error.as_deref(), Some("later"));
    assert!(matches!(
        c.cancel(&id).await.unwrap(),
        CancelResult::Cancelled {
            from: Status::Retry,
            ..
        }
    ));
    assert_eq!(c.status(&id).await.unwrap().status, Status::Cancelled);

    // Dead: cancelling says so and changes nothing.
    let id = c.enqueue(&Doomed).await.unwrap();
    let run = fetch(30_000).await;
    let dead = Outcome::Dead {
        error: "gone".into(),
    };
    rt.complete(&[completion(&keys, &run, dead)]).await.unwrap();
    assert!(matches!(
        c.cancel(&id).await.unwrap(),
        CancelResult::AlreadyFinished {
            state: Status::Dead,
            ..
        }
    ));
    assert_eq!(c.status(&id).await.unwrap().status, Status::Dead);

    // Cancel asked while running; the lease runs out before the worker
    // answers: the reaper ends the job cancelled (not retried), and the
    // worker's late ack cannot turn it into done.
    let id = c.enqueue(&Doomed).await.unwrap();
    let run = fetch(100).await;
    assert!(matches!(
        c.cancel(&id).await.unwrap(),
        CancelResult::Signalled { first: true, .. }
    ));
    let lost = rt
        .extend(
            Duration::from_millis(100),
            &[(keys.clone(), run.id.clone(), run.token.clone())],
        )
        .await
        .unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(
        lost[0].why,
        LeaseLoss::CancelAsked,
        "a missed message still arrives"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    spool_worker::testing::reap_once(c, &["default"])
        .await
        .unwrap();
    let s = c.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Cancelled);
    assert_eq!(
        rt.complete(&[completion(&keys, &run, Outcome::Ack)])
            .await
            .unwrap(),
        vec![Applied::LeaseLost]
    );
    assert_eq!(c.status(&id).await.unwrap().status, Status::Cancelled);
    let q = c.admin().queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.retry), (0, 0, 0));
}

/// The subscription behind `wait` is cut (as a Redis restart or a network
/// blip would): the waits read their status again and still return when
/// the job finishes.
#[tokio::test]
async fn wait_survives_a_dropped_subscription() {
    let env = TestEnv::start().await;
    let c = env.client.clone();
    let id = c.enqueue(&Add { a: 20, b: 22 }).await.unwrap();
    let waiting = {
        let c = c.clone();
        let id = id.clone();
        tokio::spawn(async move { c.wait(&id, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // On every primary: on Cluster the subscription sits on one of them.
    let killed: i64 = env
        .client
        .connection()
        .on_every_primary(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
        .await
        .unwrap()
        .into_iter()
        .map(|v| redis::from_redis_value::<i64>(v).unwrap_or(0))
        .sum();
    assert!(killed >= 1, "the wait's subscription was cut");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = worker(&env, Arc::default());
    let s = waiting.await.unwrap().unwrap();
    assert_eq!(s.status, Status::Done);
    assert_eq!(c.result::<Add>(&id).await.unwrap(), Some(Sum { total: 42 }));
    running.stop().await;
}

/// An operator deleting a job someone waits for (from a set, one ready job,
/// or a whole cleared queue) ends the wait at once as unknown, not at its
/// timeout.
#[tokio::test]
async fn a_wait_ends_when_an_operator_deletes_the_job() {
    let env = TestEnv::start().await;
    let c = env.client.clone();
    let admin = c.admin();
    let scheduled = c
        .enqueue_in(&Add { a: 1, b: 1 }, Duration::from_secs(3600))
        .await
        .unwrap();
    let ready = c.enqueue(&Add { a: 1, b: 2 }).await.unwrap();
    let cleared = c.enqueue(&Add { a: 1, b: 3 }).await.unwrap();
    let wait = |id: JobId| {
        let c = c.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let s = c.wait(&id, Duration::from_secs(20)).await.unwrap();
            (s.status, started.elapsed())
        })
    };
    let waits = [
        wait(scheduled.clone()),
        wait(ready.clone()),
        wait(cleared.clone()),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin
        .delete_jobs(
            "default",
            spool_client::JobSet::Scheduled,
            &[scheduled.as_str()],
        )
        .await
        .unwrap();
    assert!(admin.delete_ready("default", ready.as_str()).await.unwrap());
    assert_eq!(admin.clear_ready("default").await.unwrap(), 1);
    for w in waits {
        let (status, took) = w.await.unwrap();
        assert_eq!(status, Status::Unknown);
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

/// The members of a queue's outcome index and, per bucket, whether it
/// holds `id` and its TTL (ms).
async fn buckets(env: &TestEnv, queue: &str, id: &JobId) -> Vec<(i64, bool, i64)> {
    let keys = env.client.queue_keys(queue).expect("redis answers");
    let mut raw = env.raw().await;
    let ends: Vec<i64> = redis::cmd("ZRANGE")
        .arg(&keys.outcomes)
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .expect("redis answers");
    let mut out = Vec::new();
    for end in ends {
        let bucket = keys.outcome_bucket(end);
        let holds: bool = redis::cmd("HEXISTS")
            .arg(&bucket)
            .arg(id.as_str())
            .query_async(&mut raw)
            .await
            .expect("redis answers");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&bucket)
            .query_async(&mut raw)
            .await
            .expect("redis answers");
        out.push((end, holds, ttl));
    }
    out
}

/// Enqueues an `Add` keeping its outcome for `keep` and leases it as `w-1`.
async fn enqueue_and_lease(
    c: &spool_client::Client,
    keys: &Arc<spool_client::runtime::QueueKeys>,
    keep: Duration,
) -> (JobId, spool_client::runtime::LeasedJob) {
    let id = c
        .enqueue_with(
            &Add { a: 1, b: 2 },
            EnqueueOptions::new().keep_outcome(keep),
        )
        .await
        .expect("enqueued")
        .id;
    let run = c
        .runtime()
        .fetch(keys, 1, Duration::from_secs(30), "w-1")
        .await
        .expect("fetched")
        .pop()
        .expect("a job");
    assert_eq!(run.id, id);
    (id, run)
}

/// Kept outcomes are fields of per-queue buckets indexed by the end of
/// their retention: readers stop seeing one when its bucket ends, the
/// trimmer unlinks ended buckets, and Redis expires a bucket on its own
/// later (when no trimmer runs). A job that keeps nothing writes nothing.
#[tokio::test]
async fn outcome_buckets_end_with_their_retention_and_the_trimmer_unlinks_them() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());

    let (plain, run) = enqueue_and_lease(c, &keys, Duration::ZERO).await;
    assert_eq!(
        spool_client::runtime::RunFacts::of(&run).and_then(|f| f.keep_outcome_ms),
        None
    );
    rt.complete(&[completion(&keys, &run, Outcome::Ack)])
        .await
        .unwrap();
    assert!(buckets(&env, "default", &plain).await.is_empty());

    let before = Instant::now();
    let (id, run) = enqueue_and_lease(c, &keys, Duration::from_millis(700)).await;
    let returned = Outcome::Returned {
        result: Ok(r#"{"total":3}"#.into()),
    };
    rt.complete(&[completion(&keys, &run, returned)])
        .await
        .unwrap();
    let s = c.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Done);
    assert_eq!(c.result::<Add>(&id).await.unwrap(), Some(Sum { total: 3 }));
    let held = buckets(&env, "default", &id).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let (end, holds, ttl) = held[0];
    assert!(holds);
    assert!(end >= s.finished_ms.unwrap() + 700, "{end} {s:?}");
    // Expiry is a fallback well after the end (the trimmer comes first).
    assert!(ttl > 60_000, "{ttl}");
    let left = s.outcome_expires_in.unwrap();
    assert!(left <= Duration::from_millis(700 + 128), "{left:?}");

    // Once the bucket has ended the outcome is gone for readers, although
    // the bucket is still there until the trimmer comes.
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    assert!(before.elapsed() >= Duration::from_millis(700));
    assert_eq!(c.status(&id).await.unwrap().status, Status::Unknown);
    assert!(matches!(
        c.cancel(&id).await.unwrap(),
        CancelResult::NotFound
    ));
    assert_eq!(buckets(&env, "default", &id).await.len(), 1);
    let trimmed = rt.trim(&keys).await.unwrap();
    assert_eq!(trimmed.outcome_buckets_removed, 1);
    assert!(buckets(&env, "default", &id).await.is_empty());
    let mut raw = env.raw().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.outcome_bucket(end))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists);
}

/// A job that retried and then succeeded keeps its whole timeline (with the
/// worker of each run) and its result; retrying a dead job that kept its
/// outcome removes that outcome until the job finishes again.
#[tokio::test]
async fn a_retried_job_keeps_its_whole_timeline_and_a_requeue_forgets_its_outcome() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let fetch = |worker: &'static str| {
        let rt = rt.clone();
        let keys = keys.clone();
        async move {
            rt.fetch(&keys, 1, Duration::from_secs(30), worker)
                .await
                .unwrap()
                .pop()
                .expect("a job")
        }
    };

    let id = c.enqueue(&Add { a: 20, b: 22 }).await.unwrap();
    let run = fetch("w-1").await;
    let later = Outcome::Retry {
        delay: Duration::ZERO,
        error: "not yet".into(),
    };
    rt.complete(&[completion(&keys, &run, later)])
        .await
        .unwrap();
    spool_worker::testing::promote_once(c, &["default"])
        .await
        .unwrap();
    let run = fetch("w-2").await;
    let returned = Outcome::Returned {
        result: Ok(r#"{"total":42}"#.into()),
    };
    rt.complete(&[completion(&keys, &run, returned)])
        .await
        .unwrap();
    let s = c.status(&id).await.unwrap();
    assert_eq!(s.status, Status::Done);
    assert_eq!((s.attempt, s.max_attempts), (Some(2), Some(25)));
    assert_eq!(c.result::<Add>(&id).await.unwrap(), Some(Sum { total: 42 }));
    let runs: Vec<(&str, Option<&str>)> = s
        .history
        .iter()
        .map(|h| (h.state.as_str(), h.worker.as_deref()))
        .collect();
    assert_eq!(
        runs,
        [
            ("ready", None),
            ("active", Some("w-1")),
            ("retry", None),
            ("ready", None),
            ("active", Some("w-2")),
            ("done", None)
        ]
    );

    // Dead with a kept outcome; retried from dead, the outcome goes.
    let id = c.enqueue(&Doomed).await.unwrap();
    let run = fetch("w-1").await;
    let dead = Outcome::Dead {
        error: "broken".into(),
    };
    rt.complete(&[completion(&keys, &run, dead)]).await.unwrap();
    assert!(buckets(&env, "default", &id)
        .await
        .iter()
        .any(|(_, holds, _)| *holds));
    let moved = c
        .admin()
        .retry_jobs("default", spool_client::JobSet::Dead, &[id.as_str()])
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert!(!buckets(&env, "default", &id)
        .await
        .iter()
        .any(|(_, holds, _)| *holds));
    assert_eq!(c.status(&id).await.unwrap().status, Status::Ready);
}

/// Kept outcomes written by another program are read whatever they hold:
/// the short form without optional parts, a full one, and garbage (an
/// error naming the job, never a panic).
#[tokio::test]
async fn foreign_outcome_values_decode_or_fail_clearly() {
    let env = TestEnv::start().await;
    let c = &env.client;
    // Written raw: the queue is not even registered (status_in asks it).
    let keys = c.queue_keys("default").unwrap();
    let end = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        + 600_000;
    let mut raw = env.raw().await;
    let short = JobId::new();
    let full = JobId::new();
    let bad = JobId::new();
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(keys.outcome_bucket(end))
        .arg(short.as_str())
        .arg(r#"[599000,7,"done",1,5,10,"t"]"#)
        .arg(full.as_str())
        .arg(r#"[598000,null,"dead",3,null,null,"t",null,"boom",[[1,"ready",0],[2,"dead",3,"w","boom"]],3]"#)
        .arg(bad.as_str())
        .arg(b"\xff[not json".as_slice())
        .ignore()
        .cmd("HSET")
        .arg(&keys.workers)
        .arg("7")
        .arg("h:1:ab")
        .ignore()
        .cmd("ZADD")
        .arg(&keys.outcomes)
        .arg(end)
        .arg(end)
        .ignore()
        .query_async(&mut raw)
        .await
        .unwrap();
    let s = c.status_in("default", &short).await.unwrap();
    assert_eq!(s.status, Status::Done);
    let finished = end - 599_000;
    assert_eq!(s.finished_ms, Some(finished));
    let at: Vec<i64> = s.history.iter().map(|h| h.at_ms).collect();
    assert_eq!(at, [finished - 15, finished - 5, finished]);
    assert_eq!(s.history[1].worker.as_deref(), Some("h:1:ab"));
    assert_eq!(s.max_attempts, None);
    let s = c.status_in("default", &full).await.unwrap();
    assert_eq!(s.status, Status::Dead);
    assert_eq!(s.last_error.as_deref(), Some("boom"));
    assert_eq!((s.attempt, s.max_attempts), (Some(3), Some(3)));
    assert_eq!(s.history.len(), 2);
    let err = c.status_in("default", &bad).await.unwrap_err().to_string();
    assert!(err.contains(bad.as_str()), "{err}");
    assert!(matches!(
        c.cancel_in("default", &short).await.unwrap(),
        CancelResult::AlreadyFinished {
            state: Status::Done,
            ..
        }
    ));
}

/// Kept outcomes name their worker by a short alias per queue; an ack
/// from a new worker process adds one, the same process reuses it, and the
/// trimmer keeps only the newest 10,000 (an outcome whose alias is gone
/// names no worker, it is still read).
#[tokio::test]
async fn worker_aliases_are_reused_and_the_oldest_trimmed() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let mut raw = env.raw().await;
    let mut ids = Vec::new();
    for worker in ["w-a", "w-a", "w-b"] {
        let id = c.enqueue(&Add { a: 1, b: 1 }).await.unwrap();
        let run = rt
            .fetch(&keys, 1, Duration::from_secs(30), worker)
            .await
            .unwrap()
            .pop()
            .unwrap();
        rt.complete(&[completion(&keys, &run, Outcome::Ack)])
            .await
            .unwrap();
        ids.push(id);
    }
    let mut workers = Vec::new();
    for id in &ids {
        workers.push(c.status(id).await.unwrap().history[1].worker.clone());
    }
    assert_eq!(
        workers,
        [Some("w-a".into()), Some("w-a".into()), Some("w-b".into())]
    );
    let map: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys.workers)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(map.get("#").map(String::as_str), Some("2"), "{map:?}");
    assert_eq!(map.get("=w-a").map(String::as_str), Some("1"));

    // 10,001 more aliases given out: the two oldest go.
    let _: () = redis::cmd("HSET")
        .arg(&keys.workers)
        .arg("#")
        .arg(10_002)
        .query_async(&mut raw)
        .await
        .unwrap();
    let trimmed = rt.trim(&keys).await.unwrap();
    assert_eq!(trimmed.dead_removed, 0);
    let map: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys.workers)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        !map.contains_key("1") && !map.contains_key("=w-a"),
        "{map:?}"
    );
    assert_eq!(map.get("<").map(String::as_str), Some("2"));
    let s = c.status(&ids[0]).await.unwrap();
    assert_eq!(s.status, Status::Done);
    assert_eq!(s.history[1].worker, None);
}
