//! Retries and the dead set: growing delays, last error and attempts, permanent
//! failures, panics, retry-after, retry from dead exactly once, and caps.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{ExponentialJitter, Job, JobOptions, JobSet, JobState};
use spool_tests::handlers::{with_fixtures, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};
use tokio::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct AlwaysFails;

impl Job for AlwaysFails {
    const TYPE: &'static str = "always_fails";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(4)
            .retry_policy(ExponentialJitter {
                base: Duration::from_millis(100),
                max: Duration::from_secs(10),
                jitter: 0.0,
            })
    }
}

/// A failing job is retried with growing delays (by Redis's clock) and ends
/// dead with its last error and attempt count; retrying it from dead twice
/// puts it back once.
#[tokio::test]
async fn failing_job_backs_off_then_dies_and_retry_from_dead_is_once() {
    let env = TestEnv::start().await;
    let starts: Arc<Mutex<Vec<i64>>> = Arc::default();
    let client = env.client.clone();
    let s = starts.clone();
    let worker = env
        .worker()
        .register(move |ctx: JobContext, _job: AlwaysFails| {
            let s = s.clone();
            let client = client.clone();
            async move {
                s.lock()
                    .await
                    .push(client.redis_time_ms().await.expect("time"));
                Err(JobError::retry(format!(
                    "boom on attempt {}",
                    ctx.attempt()
                )))
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let id = env.client.enqueue(&AlwaysFails).await.unwrap();
    let admin = env.client.admin();
    wait_for("job dead", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    let job = admin
        .job("default", id.as_str())
        .await
        .unwrap()
        .expect("dead job kept");
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.record.as_ref().unwrap().attempt, 4);
    assert_eq!(job.errors.len(), 4);
    assert_eq!(job.last_error().unwrap().error, "boom on attempt 4");
    assert_eq!(job.last_error().unwrap().attempt, 4);

    let starts = starts.lock().await.clone();
    assert_eq!(starts.len(), 4);
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays of 100, 200, 400 ms (no jitter): each gap at least its delay and growing.
    for (gap, want) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap >= want, "gaps {gaps:?}");
    }
    assert!(gaps[2] > gaps[0], "gaps {gaps:?}");
    let failures = admin.stats("default", 5).await.unwrap();
    assert_eq!(failures.failed, 4);

    // Double click: the second retry finds nothing to move.
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Dead, &[id.as_str()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Dead, &[id.as_str()])
            .await
            .unwrap(),
        0
    );
    wait_for(
        "ran once more and died again",
        Duration::from_secs(5),
        || async { admin.queue("default").await.unwrap().dead == 1 && starts_len(&env).await == 5 },
    )
    .await;
    running.stop().await;
}

/// Failed runs counted in `default`'s stats.
async fn starts_len(env: &TestEnv) -> u64 {
    env.client
        .admin()
        .stats("default", 5)
        .await
        .expect("stats")
        .failed
}

/// A permanent failure goes straight to dead; a panic is caught and retried;
/// the worker carries on with other jobs.
#[tokio::test]
async fn permanent_failures_die_at_once_and_panics_are_retried() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);

    let permanent = Scripted {
        permanent: true,
        fail_times: u32::MAX,
        ..Scripted::ok("perm")
    };
    let panics_once = Scripted {
        panic: true,
        fail_times: 1,
        ..Scripted::ok("panic")
    };
    let p = env.client.enqueue(&permanent).await.unwrap();
    let q = env.client.enqueue(&panics_once).await.unwrap();
    env.client.enqueue(&Scripted::ok("fine")).await.unwrap();
    let admin = env.client.admin();
    wait_for("all settled", Duration::from_secs(10), || async {
        rec.count("fine") == 1
            && rec.count("panic") == 2
            && admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    assert_eq!(rec.count("perm"), 1, "permanent failure is not retried");
    let dead = admin.job("default", p.as_str()).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(
        dead.last_error().unwrap().error,
        "scripted failure on run 1"
    );
    wait_for(
        "panicking job acked on its second run",
        Duration::from_secs(5),
        || async { admin.job("default", q.as_str()).await.unwrap().is_none() },
    )
    .await;
    running.stop().await;
}

#[derive(Serialize, Deserialize)]
struct Snooze;

impl Job for Snooze {
    const TYPE: &'static str = "snooze";
}

/// `JobError::retry_after` overrides the policy's delay.
#[tokio::test]
async fn retry_after_sets_the_delay() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let r = rec.clone();
    let worker = env
        .worker()
        .register(move |ctx: JobContext, _: Snooze| {
            let r = r.clone();
            async move {
                let _run = r.hit("snooze");
                if ctx.attempt() == 1 {
                    return Err(JobError::retry_after("later", Duration::from_secs(3600)));
                }
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let before = env.client.redis_time_ms().await.unwrap();
    let id = env.client.enqueue(&Snooze).await.unwrap();
    let admin = env.client.admin();
    wait_for("in retry set", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().retry == 1
    })
    .await;
    let job = admin.job("default", id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Retry);
    let at = job.at_ms.unwrap();
    assert!(
        at >= before + 3_599_000 && at <= before + 3_700_000,
        "retry at {at}, now {before}"
    );
    // "Retry now" from the retry set runs it at once.
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Retry, &[id.as_str()])
            .await
            .unwrap(),
        1
    );
    wait_for("ran again", Duration::from_secs(5), || async {
        rec.count("snooze") == 2
    })
    .await;
    running.stop().await;
}

/// The dead set keeps at most `dead_max_jobs` jobs, dropping the oldest.
#[tokio::test]
async fn dead_set_is_capped() {
    let env = TestEnv::start().await;
    let retention = spool_client::Retention {
        dead_max_jobs: 5,
        ..Default::default()
    };
    let client = spool_client::Client::builder(&env.redis.url())
        .retention(retention)
        .connect()
        .await
        .unwrap();
    let rec = Recorder::default();
    let worker = with_fixtures(
        spool_worker::Worker::builder(client.clone()).configure(spool_tests::fast_config),
        &rec,
    )
    .build()
    .unwrap();
    let running = RunningWorker::start(worker);
    for i in 0..12 {
        let job = Scripted {
            permanent: true,
            fail_times: u32::MAX,
            ..Scripted::ok(&format!("d{i}"))
        };
        client.enqueue(&job).await.unwrap();
    }
    wait_for("all ran", Duration::from_secs(10), || async {
        rec.total() == 12
    })
    .await;
    let admin = client.admin();
    wait_for("dead capped", Duration::from_secs(5), || async {
        admin.stats("default", 5).await.unwrap().failed == 12
    })
    .await;
    let dead = admin
        .list_set("default", JobSet::Dead, 0, 100)
        .await
        .unwrap();
    assert_eq!(dead.total, 5);
    // Records of dropped jobs are gone too.
    let mut raw = env.raw().await;
    let records: u64 = redis::cmd("HLEN")
        .arg("spool:{default}:jobs")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(records, 5);
    running.stop().await;
}
