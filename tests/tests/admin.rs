//! The admin API: listings, job detail, retry/delete one and all, stats
//! history, retention by age, per-queue limits and handler timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spool_client::{EnqueueOptions, JobSet, JobState, Retention};
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{fast_config, wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, QueueSpec, Worker};

/// Paged listings of every set; retry and delete one and all.
#[tokio::test]
async fn listings_and_bulk_actions_over_sets() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            env.client
                .enqueue_in(&Noop { n }, Duration::from_secs(3600 + n))
                .await
                .unwrap(),
        );
    }
    let page = admin
        .list_set("default", JobSet::Scheduled, 10, 5)
        .await
        .unwrap();
    assert_eq!(page.total, 30);
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.items[0].id, ids[10], "soonest first, offset honoured");
    assert!(
        admin
            .list_set("default", JobSet::Scheduled, 0, 0)
            .await
            .is_err(),
        "page size 0 refused"
    );
    assert!(
        admin
            .list_set("default", JobSet::Scheduled, 0, 5000)
            .await
            .is_err(),
        "huge page refused"
    );

    // Run one now, delete one, then delete all the rest.
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Scheduled, &[ids[0].as_str()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        admin
            .delete_jobs(
                "default",
                JobSet::Scheduled,
                &[ids[1].as_str(), "no-such-id"]
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        admin
            .job("default", ids[0].as_str())
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Ready
    );
    assert!(admin
        .job("default", ids[1].as_str())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        admin
            .delete_all("default", JobSet::Scheduled)
            .await
            .unwrap(),
        28
    );
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.scheduled), (1, 0));

    // Ready jobs: listing, detail found by walking the list, delete one, clear.
    let more: Vec<Noop> = (0..2500).map(|n| Noop { n: 100 + n }).collect();
    env.client.enqueue_bulk(&more).await.unwrap();
    let ready = admin.list_ready("default", 2000, 3).await.unwrap();
    assert_eq!(ready.total, 2501);
    let deep = &ready.items[0];
    let found = admin
        .job("default", deep.id.as_str())
        .await
        .unwrap()
        .expect("found deep in the list");
    assert_eq!(found.raw, deep.raw);
    assert!(admin
        .delete_ready("default", deep.id.as_str())
        .await
        .unwrap());
    assert!(!admin
        .delete_ready("default", deep.id.as_str())
        .await
        .unwrap());
    assert_eq!(admin.clear_ready("default").await.unwrap(), 2500);
    assert!(admin.job("default", "../../etc").await.unwrap().is_none());
    assert!(
        admin.job("default", "a\"b").await.is_err(),
        "malformed id refused"
    );
    assert!(admin.job("bad queue", "x").await.is_err());
}

/// Retry-all moves every dead job back once; stats keep per-minute history
/// for 24 h plus totals.
#[tokio::test]
async fn retry_all_dead_and_stats_history() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);
    for i in 0..5 {
        // Fails permanently on its first run only: retried from dead, it succeeds.
        env.client
            .enqueue(&Scripted {
                permanent: true,
                fail_times: 1,
                ..Scripted::ok(&format!("j{i}"))
            })
            .await
            .unwrap();
    }
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let admin = env.client.admin();
    wait_for("5 dead", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().dead == 5
    })
    .await;
    assert_eq!(admin.retry_all("default", JobSet::Dead).await.unwrap(), 5);
    assert_eq!(admin.retry_all("default", JobSet::Dead).await.unwrap(), 0);
    wait_for("all succeeded", Duration::from_secs(5), || async {
        let q = admin.queue("default").await.unwrap();
        q.dead == 0 && q.ready == 0 && q.active == 0
    })
    .await;
    let stats = admin.stats("default", 1440).await.unwrap();
    assert_eq!(stats.minutes.len(), 1440);
    assert_eq!((stats.processed, stats.failed), (6, 5));
    let (p, f) = stats.last_minutes(2);
    assert_eq!((p, f), (6, 5), "counted in the current minute(s)");
    assert!(stats
        .minutes
        .windows(2)
        .all(|w| w[1].minute_ms - w[0].minute_ms == 60_000));
    let total = admin.total_stats(60).await.unwrap();
    assert_eq!(total.processed, 6);
    assert!(admin.stats("default", 0).await.is_err());
    running.stop().await;
}

/// Dead jobs older than the age cap are dropped by the trimmer.
#[tokio::test]
async fn dead_jobs_past_the_age_cap_are_trimmed() {
    let env = TestEnv::start().await;
    let retention = Retention {
        dead_max_age: Duration::from_millis(300),
        ..Retention::default()
    };
    let client = spool_client::Client::builder(&env.redis.url())
        .retention(retention)
        .connect()
        .await
        .unwrap();
    let rec = Recorder::default();
    let worker = with_fixtures(Worker::builder(client.clone()).configure(fast_config), &rec)
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    client
        .enqueue(&Scripted {
            permanent: true,
            fail_times: 9,
            ..Scripted::ok("old")
        })
        .await
        .unwrap();
    let admin = client.admin();
    wait_for("dead", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    running.stop().await;
    wait_for("trimmed by age", Duration::from_secs(5), || async {
        spool_worker::testing::trim_once(&client, &["default"])
            .await
            .unwrap()
            .dead_removed
            == 1
    })
    .await;
    assert_eq!(admin.queue("default").await.unwrap().dead, 0);
}

/// A per-queue limit caps that queue's running jobs below the global limit.
#[tokio::test]
async fn per_queue_concurrency_limit_is_honoured() {
    let env = TestEnv::start().await;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let worker = env
        .worker()
        .queue_spec(QueueSpec::new("limited").concurrency(2))
        .concurrency(10)
        .register(move |_ctx: JobContext, _job: Noop| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let jobs: Vec<Noop> = (0..20).map(|n| Noop { n }).collect();
    env.client
        .enqueue_bulk_with(&jobs, EnqueueOptions::new().queue("limited"))
        .await
        .unwrap();
    let admin = env.client.admin();
    wait_for("drained", Duration::from_secs(10), || async {
        admin.stats("limited", 5).await.unwrap().processed == 20
    })
    .await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    running.stop().await;
}

/// A handler past its timeout is dropped and the run counts as a failure.
#[tokio::test]
async fn handler_timeout_fails_the_attempt() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);
    let slow = Scripted {
        sleep_ms: 10_000,
        ..Scripted::ok("slow")
    };
    let id = env
        .client
        .enqueue_with(
            &slow,
            EnqueueOptions::new()
                .timeout(Duration::from_millis(100))
                .max_attempts(1),
        )
        .await
        .unwrap()
        .id;
    let admin = env.client.admin();
    wait_for("dead after timeout", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    let job = admin.job("default", id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        job.last_error().unwrap().error,
        "handler timed out after 100ms"
    );
    running.stop().await;
}

/// Listings read a bounded prefix of each record: a page of 20 ready jobs
/// of 5 MiB (and of dead ones) comes back with a few KiB per job and the
/// record's full size, while the single-job view still reads it whole
/// (issue 9, item 6).
#[tokio::test]
async fn listings_of_huge_jobs_read_a_bounded_prefix() {
    use spool_client::admin::{LISTING_BYTES_MAX, LISTING_RECORD_BYTES_MAX};
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let mut raw = env.raw().await;
    let big = "x".repeat(5 * 1024 * 1024);
    let record = |id: &str| {
        format!(
            r#"{{"id":"{id}","attempt":0,"max_attempts":3,"enqueued_ms":1000,"type":"big","queue":"default","args":{{"blob":"{big}"}},"created_ms":1}}"#
        )
    };
    for i in 0..20 {
        let id = format!("r{i}");
        let _: () = redis::cmd("LPUSH")
            .arg("spool:{default}:ready")
            .arg(record(&id))
            .query_async(&mut raw)
            .await
            .unwrap();
        let id = format!("d{i}");
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg("spool:{default}:jobs")
            .arg(&id)
            .arg(record(&id))
            .cmd("ZADD")
            .arg("spool:{default}:dead")
            .arg(i)
            .arg(&id)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // A history of ten 100 KiB errors (written by hand: the scripts cap texts).
    let history: Vec<serde_json::Value> = (0..10)
        .map(|n| serde_json::json!({"at_ms": n, "attempt": n, "error": format!("{n}:{}", "e".repeat(100 * 1024))}))
        .collect();
    let _: () = redis::cmd("HSET")
        .arg("spool:{default}:errors")
        .arg("d19")
        .arg(serde_json::to_string(&history).unwrap())
        .query_async(&mut raw)
        .await
        .unwrap();
    let ready = admin.list_ready("default", 0, 20).await.unwrap();
    let dead = admin
        .list_set("default", JobSet::Dead, 0, 20)
        .await
        .unwrap();
    let errors = &dead.items[0].errors;
    assert_eq!(errors.len(), 10);
    assert!(errors.iter().all(|e| e.error.len() <= 512));
    assert!(dead.items[0]
        .last_error()
        .unwrap()
        .error
        .starts_with("9:eee"));
    for page in [&ready, &dead] {
        assert_eq!(page.items.len(), 20);
        let read: usize = page.items.iter().map(|j| j.raw_bytes.len()).sum();
        assert!(read <= LISTING_BYTES_MAX, "{read} bytes read for one page");
        for job in &page.items {
            assert!(job.raw_bytes.len() <= LISTING_RECORD_BYTES_MAX);
            assert!(job.truncated && job.record.is_none() && job.problem.is_none());
            assert_eq!(job.size, record(job.id.as_str()).len() as u64);
            assert_eq!(job.job_type(), "big");
            assert_eq!(job.attempts(), Some((0, 3)));
            assert!(job.args_text().starts_with(r#"{"blob":"xxx"#));
        }
    }
    assert_eq!(ready.items[0].id.as_str(), "r0", "next to be fetched first");
    assert_eq!(dead.items[0].id.as_str(), "d19", "most recent first");
    let whole = admin.job("default", "r7").await.unwrap().unwrap();
    assert!(!whole.truncated && whole.record.is_some());
    assert_eq!(whole.raw_bytes, record("r7").into_bytes());
    let q = admin.queue("default").await.unwrap();
    assert_eq!(q.ready, 20);
    assert!(q.latency > Duration::ZERO);
}

/// Pause, resume (which wakes idle fetchers) and clear-ready are scripts;
/// clearing deletes ready jobs only (ready → gone).
#[tokio::test]
async fn pause_resume_and_clear_ready() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    admin.pause("mail").await.unwrap();
    assert!(admin.queue("mail").await.unwrap().paused);
    assert_eq!(admin.queue_names().await.unwrap(), ["mail"]);
    admin.resume("mail").await.unwrap();
    assert!(!admin.queue("mail").await.unwrap().paused);
    let mut raw = env.raw().await;
    let wake: Vec<String> = redis::cmd("LRANGE")
        .arg("spool:{mail}:wake")
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(wake, ["1"], "one wake token left for idle fetchers");
    let opts = || EnqueueOptions::new().queue("mail");
    for n in 0..3 {
        env.client.enqueue_with(&Noop { n }, opts()).await.unwrap();
    }
    env.client
        .enqueue_with(&Noop { n: 9 }, opts().delay(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(admin.clear_ready("mail").await.unwrap(), 3);
    let q = admin.queue("mail").await.unwrap();
    assert_eq!((q.ready, q.scheduled), (0, 1));
    assert_eq!(admin.clear_ready("mail").await.unwrap(), 0);
}

/// The scripts store at most `ERROR_TEXT_MAX_BYTES` of an error text, cut at a
/// character boundary (issue 9, item 3).
#[tokio::test]
async fn stored_error_text_is_capped_at_a_char_boundary() {
    use spool_client::runtime::{Completion, Outcome};
    use spool_client::{truncate_utf8, ERROR_TEXT_MAX_BYTES};
    let env = TestEnv::start().await;
    let c = &env.client;
    let id = c.enqueue(&Noop { n: 1 }).await.unwrap();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let leased = c
        .runtime()
        .fetch(&keys, 1, Duration::from_secs(30), "w")
        .await
        .unwrap()
        .pop()
        .unwrap();
    // One ASCII byte, then two-byte characters: the cap falls inside one.
    let text = format!("a{}", "é".repeat(ERROR_TEXT_MAX_BYTES));
    c.runtime()
        .complete(&[Completion {
            keys,
            id: leased.id,
            token: leased.token,
            outcome: Outcome::Dead {
                error: text.clone(),
            },
            run: None,
        }])
        .await
        .unwrap();
    let job = c
        .admin()
        .job("default", id.as_str())
        .await
        .unwrap()
        .unwrap();
    let stored = &job.last_error().unwrap().error;
    assert_eq!(stored.len(), ERROR_TEXT_MAX_BYTES - 1);
    assert_eq!(stored, truncate_utf8(&text, ERROR_TEXT_MAX_BYTES));
}

/// Looking a ready job up by id walks the list one window per script call
/// (10,000 entries), across windows, and finds and deletes the last one.
#[tokio::test]
async fn ready_lookup_walks_window_after_window() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let mut raw = env.raw().await;
    let mut pipe = redis::pipe();
    for i in 0..25_000 {
        pipe.cmd("LPUSH").arg("spool:{default}:ready").arg(format!(
            r#"{{"id":"w{i}","attempt":0,"max_attempts":1,"enqueued_ms":1,"type":"t","queue":"default","args":[],"created_ms":1}}"#
        )).ignore();
    }
    let _: () = pipe.query_async(&mut raw).await.unwrap();
    let last = admin
        .job("default", "w24999")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(last.state, JobState::Ready);
    assert!(admin.job("default", "w25000").await.unwrap().is_none());
    assert!(admin.delete_ready("default", "w24999").await.unwrap());
    assert!(admin.delete_ready("default", "w12345").await.unwrap());
    assert!(!admin.delete_ready("default", "w12345").await.unwrap());
    assert_eq!(admin.queue("default").await.unwrap().ready, 24_998);
}
