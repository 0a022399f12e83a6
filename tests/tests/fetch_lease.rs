//! Leases: fenced ack/fail/extend, the reaper, pause/resume, process records.

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::{Applied, Completion, LeaseLoss, LeasedJob, Outcome};
use spool_client::JobState;
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::testing;

/// A stale worker whose lease expired and whose job was handed to another
/// worker cannot ack, fail, kill or extend it; the new holder can.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: stale holder, reaper, new holder, each step checked
async fn expired_lease_is_fenced_against_the_stale_worker() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let id = c.enqueue(&Noop { n: 1 }).await.unwrap();
    let keys = Arc::new(c.queue_keys("default").unwrap());

    let stale = c
        .runtime()
        .fetch(&keys, 10, Duration::from_millis(100), "worker-a")
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    let stale = &stale[0];
    assert_eq!(stale.id, id);
    assert_eq!(stale.record.as_ref().unwrap().attempt, 1);

    // The lease runs out; the reaper returns the job (counting the attempt).
    wait_for(
        "lease expired and reaped",
        Duration::from_secs(5),
        || async { testing::reap_once(c, &["default"]).await.unwrap().to_ready == 1 },
    )
    .await;
    let fresh = c
        .runtime()
        .fetch(&keys, 10, Duration::from_secs(30), "worker-b")
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    let fresh = &fresh[0];
    assert_eq!(fresh.id, id);
    assert_ne!(fresh.token, stale.token);
    assert_eq!(
        fresh.record.as_ref().unwrap().attempt,
        2,
        "the reaped run counted"
    );

    let completion = |token: &spool_client::runtime::LeaseToken, outcome| Completion {
        keys: keys.clone(),
        id: id.clone(),
        token: token.clone(),
        outcome,
        run: None,
    };
    let stale_tries = [
        completion(&stale.token, Outcome::Ack),
        completion(
            &stale.token,
            Outcome::Retry {
                delay: Duration::ZERO,
                error: "stale".into(),
            },
        ),
        completion(
            &stale.token,
            Outcome::Dead {
                error: "stale".into(),
            },
        ),
    ];
    for attempt in &stale_tries {
        assert_eq!(
            c.runtime()
                .complete(std::slice::from_ref(attempt))
                .await
                .unwrap(),
            vec![Applied::LeaseLost]
        );
    }
    let lost = c
        .runtime()
        .extend(
            Duration::from_secs(60),
            &[(keys.clone(), id.clone(), stale.token.clone())],
        )
        .await
        .unwrap();
    let lost_ids: Vec<_> = lost.iter().map(|l| l.id.clone()).collect();
    assert_eq!(lost_ids, vec![id.clone()]);
    assert_eq!(
        lost[0].why,
        LeaseLoss::Taken,
        "another worker holds the job now"
    );
    assert_eq!(
        c.runtime()
            .release(&[(keys.clone(), id.clone(), stale.token.clone())])
            .await
            .unwrap(),
        0
    );

    // Nothing changed: still active, held by worker-b, same deadline window.
    let admin = c.admin();
    let job = admin.job("default", id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Active);
    assert_eq!(job.lease.as_ref().unwrap().worker, "worker-b");
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.retry, q.dead), (0, 1, 0, 0));

    // The rightful holder can extend and ack.
    assert!(c
        .runtime()
        .extend(
            Duration::from_secs(60),
            &[(keys.clone(), id.clone(), fresh.token.clone())]
        )
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        c.runtime()
            .complete(&[completion(&fresh.token, Outcome::Ack)])
            .await
            .unwrap(),
        vec![Applied::Acked]
    );
    assert!(admin.job("default", id.as_str()).await.unwrap().is_none());
}

/// A stale worker (no heartbeat, lease expired) acks late: nothing changes,
/// the job is run by the live worker.
#[tokio::test]
async fn late_ack_of_a_stale_worker_changes_nothing() {
    let env = TestEnv::start().await;
    let keys = Arc::new(env.client.queue_keys("default").unwrap());
    // Worker A: lease taken by hand (no heartbeat), so it expires mid-run.
    env.client.enqueue(&Noop { n: 7 }).await.unwrap();
    let a = env
        .client
        .runtime()
        .fetch(&keys, 1, Duration::from_millis(200), "stale-a")
        .await
        .unwrap()
        .remove(0);
    // Worker B: a real worker; its reaper recovers the job and runs it.
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);
    wait_for("B ran the job", Duration::from_secs(10), || async {
        rec.count("noop-7") == 1
    })
    .await;
    let late = ack_of(&keys, &a);
    assert_eq!(
        env.client.runtime().complete(&[late]).await.unwrap(),
        vec![Applied::LeaseLost]
    );
    running.stop().await;
    let stats = env.client.admin().stats("default", 5).await.unwrap();
    assert_eq!(
        (stats.processed, stats.failed),
        (1, 1),
        "one lost lease, one success"
    );
}

/// A job that keeps killing its worker runs out of attempts and lands dead
/// with a lease-expired error.
#[tokio::test]
async fn expired_leases_count_attempts_until_dead() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let job = Scripted {
        ..Scripted::ok("crashy")
    }; // max_attempts 3
    let id = c.enqueue(&job).await.unwrap();
    for round in 1..=3 {
        let got = c
            .runtime()
            .fetch(
                &keys,
                1,
                Duration::from_millis(50),
                &format!("doomed-{round}"),
            )
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].record.as_ref().unwrap().attempt, round);
        wait_for("reaped", Duration::from_secs(5), || async {
            let r = testing::reap_once(c, &["default"]).await.unwrap();
            r.to_ready + r.to_dead == 1
        })
        .await;
    }
    let admin = c.admin();
    let dead = admin.job("default", id.as_str()).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.errors.len(), 3);
    assert!(
        dead.last_error()
            .unwrap()
            .error
            .contains("lease expired: worker doomed-3"),
        "{:?}",
        dead.errors
    );
}

/// Paused queues are not fetched from; resuming wakes the worker.
#[tokio::test]
async fn paused_queue_is_not_fetched_until_resumed() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    admin.pause("default").await.unwrap();
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_for("worker registered", Duration::from_secs(5), || async {
        !admin.processes().await.unwrap().is_empty()
    })
    .await;
    let keys = Arc::new(env.client.queue_keys("default").unwrap());
    assert!(env
        .client
        .runtime()
        .fetch(&keys, 1, Duration::from_secs(1), "probe")
        .await
        .unwrap()
        .is_empty());
    let q = admin.queue("default").await.unwrap();
    assert!(q.paused);
    assert_eq!(q.ready, 1);
    assert_eq!(rec.total(), 0);
    admin.resume("default").await.unwrap();
    wait_for("ran after resume", Duration::from_secs(5), || async {
        rec.count("noop-1") == 1
    })
    .await;
    running.stop().await;
}

/// A running worker is listed with host, pid, queues, concurrency and its busy
/// jobs; after shutdown it is gone.
#[tokio::test]
async fn worker_process_is_registered_with_busy_jobs() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(
        env.worker()
            .queue("default", 1)
            .queue("other", 2)
            .concurrency(7),
        &rec,
    )
    .build()
    .unwrap();
    let worker_id = worker.id().to_owned();
    let running = RunningWorker::start(worker);
    env.client
        .enqueue(&Scripted {
            sleep_ms: 3000,
            ..Scripted::ok("slow")
        })
        .await
        .unwrap();
    let admin = env.client.admin();
    wait_for("busy job visible", Duration::from_secs(5), || async {
        admin
            .processes()
            .await
            .unwrap()
            .iter()
            .any(|p| p.busy.len() == 1)
    })
    .await;
    let procs = admin.processes().await.unwrap();
    assert_eq!(procs.len(), 1);
    let p = &procs[0];
    assert_eq!(p.info.id, worker_id);
    assert_eq!(p.info.pid, std::process::id());
    assert_eq!(
        p.info.queues,
        vec!["default".to_owned(), "other".to_owned()]
    );
    assert_eq!(p.info.concurrency, 7);
    assert_eq!(p.busy[0].job_type, "scripted");
    assert!(p.beat_ms >= p.started_ms);
    let names = admin.queue_names().await.unwrap();
    assert!(
        names.contains(&"other".to_owned()),
        "worker registers its queues"
    );
    running.stop().await;
    assert!(admin.processes().await.unwrap().is_empty());
}

/// Per-queue concurrency limits and strict order are honoured.
#[tokio::test]
async fn strict_order_serves_earlier_queues_first() {
    let env = TestEnv::start().await;
    let opts = |q: &str| spool_client::EnqueueOptions::new().queue(q);
    for n in 0..5 {
        env.client
            .enqueue_with(&Noop { n }, opts("low"))
            .await
            .unwrap();
        env.client
            .enqueue_with(&Noop { n: 100 + n }, opts("high"))
            .await
            .unwrap();
    }
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    let worker = env
        .worker()
        .queue("high", 1)
        .queue("low", 1)
        .strict_order()
        .concurrency(1)
        .register(move |_ctx, job: Noop| {
            let o = o.clone();
            async move {
                o.lock().unwrap().push(job.n);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    wait_for("all ran", Duration::from_secs(5), || async {
        order.lock().unwrap().len() == 10
    })
    .await;
    let order = order.lock().unwrap().clone();
    assert!(
        order[..5].iter().all(|n| *n >= 100),
        "high first: {order:?}"
    );
    running.stop().await;
}

/// When a running job's lease is lost (here: expired by hand and reaped),
/// the reaper's notice fires the handler's cancellation at once (no
/// heartbeat needed) and the handler's late success is not recorded.
#[tokio::test]
async fn lost_lease_fires_the_handler_cancellation() {
    let env = TestEnv::start().await;
    let cancelled = Arc::new(tokio::sync::Notify::new());
    let c2 = cancelled.clone();
    // Concurrency 1, and the queue paused once the job runs: the worker
    // cannot take the job back itself.
    let worker = env
        .worker()
        .concurrency(1)
        .register(move |ctx: spool_worker::JobContext, _job: Noop| {
            let c2 = c2.clone();
            async move {
                ctx.cancellation().cancelled().await;
                c2.notify_one();
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let id = env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let admin = env.client.admin();
    wait_for("job active", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().active == 1
    })
    .await;
    admin.pause("default").await.unwrap();
    // Expire the lease now and reap it.
    env.expire_lease("default", id.as_str()).await;
    testing::reap_once(&env.client, &["default"]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), cancelled.notified())
        .await
        .expect("cancellation fired at once");
    // The handler returned Ok after cancellation: not recorded, the job
    // waits in ready with the reaped run counted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = admin.job("default", id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Ready);
    assert_eq!(job.summary.unwrap().attempt, 1);
    running.stop().await;
}

/// An extension that arrives after the run's own ack reports the lease as
/// `gone`, not `taken`: the heartbeat can tell "acked by me" from "taken by
/// another worker" (a spurious "lease lost" was logged under load before).
#[tokio::test]
async fn extend_tells_an_acked_lease_from_a_taken_one() {
    let env = TestEnv::start().await;
    let rt = env.client.runtime();
    let keys = Arc::new(env.client.queue_keys("default").unwrap());
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let job = rt
        .fetch(&keys, 1, Duration::from_secs(30), "me")
        .await
        .unwrap()
        .remove(0);
    let lease = [(keys.clone(), job.id.clone(), job.token.clone())];
    let done = ack_of(&keys, &job);
    assert_eq!(rt.complete(&[done]).await.unwrap(), vec![Applied::Acked]);
    let lost = rt.extend(Duration::from_secs(30), &lease).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!((&lost[0].id, &lost[0].token), (&job.id, &job.token));
    assert_eq!(lost[0].why, LeaseLoss::Gone, "acked: nobody holds it");

    env.client.enqueue(&Noop { n: 2 }).await.unwrap();
    let first = rt
        .fetch(&keys, 1, Duration::from_millis(50), "me")
        .await
        .unwrap()
        .remove(0);
    wait_for("reaped", Duration::from_secs(5), || async {
        testing::reap_once(&env.client, &["default"])
            .await
            .unwrap()
            .to_ready
            == 1
    })
    .await;
    let second = rt
        .fetch(&keys, 1, Duration::from_secs(30), "other")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.id, first.id);
    let lost = rt
        .extend(
            Duration::from_secs(30),
            &[(keys.clone(), first.id.clone(), first.token.clone())],
        )
        .await
        .unwrap();
    assert!(
        lost.len() == 1 && lost[0].why == LeaseLoss::Taken,
        "{lost:?}"
    );
}

/// `fetch.lua` reads no more of a record than its id: the worker reads
/// each leased record's `enqueued_ms`, and the queue's next claim adds the
/// batch's pick-up latency to the minute's stats (`fl`). A failed claim
/// keeps it owed.
#[tokio::test]
async fn pickup_latency_reaches_the_stats_with_the_next_claim() {
    let env = TestEnv::start().await;
    let c = &env.client;
    c.enqueue(&Noop { n: 1 }).await.unwrap();
    c.enqueue(&Noop { n: 2 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let rt = c.runtime();
    let lease = Duration::from_secs(30);
    assert_eq!(rt.fetch(&keys, 10, lease, "w").await.unwrap().len(), 2);
    // Both minutes, in case the test crosses into a new one.
    let counted = || async {
        let stats = c.admin().stats("default", 2).await.unwrap();
        let fetched: u64 = stats.minutes.iter().map(|m| m.fetched).sum();
        let waited: u64 = stats
            .minutes
            .iter()
            .map(|m| m.latency_avg_ms * m.fetched)
            .sum();
        (fetched, waited)
    };
    assert_eq!(counted().await, (2, 0), "not counted before the next claim");
    // An empty claim carries it.
    assert!(rt.fetch(&keys, 10, lease, "w").await.unwrap().is_empty());
    let (fetched, waited) = counted().await;
    assert_eq!(fetched, 2);
    assert!((240..10_000).contains(&waited), "{waited} ms in all");
}

/// Every lease carries the token its fetch returned, whatever the token:
/// below 100, across each hundred, and with jobs held back (waiting for
/// their group's turn) on a hundred's first token. fetch.lua writes a
/// token's hundreds once per hundred and its last two digits from a table.
#[tokio::test]
async fn leases_carry_the_tokens_fetch_returns_across_hundreds() {
    use redis::AsyncCommands;

    let env = TestEnv::start().await;
    let c = &env.client;
    let mut raw = env.raw().await;
    let rt = c.runtime();
    let lease = Duration::from_secs(30);

    // A plain queue: tokens 1 … 260 in batches of 37.
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let jobs: Vec<Noop> = (0..260).map(|n| Noop { n }).collect();
    c.enqueue_bulk(&jobs).await.unwrap();
    let mut seen = 0;
    loop {
        let got = rt.fetch(&keys, 37, lease, "w").await.unwrap();
        if got.is_empty() {
            break;
        }
        assert_leases_carry_tokens(&mut raw, &keys, &got).await;
        seen += got.len();
    }
    assert_eq!(seen, 260);

    // A grouped queue: tokens 190 … 209, its group's jobs on the even ones.
    // Only the first of them takes the turn; the others (200 among them)
    // wait, and the plain jobs between them (201 after it) are leased.
    let keys = Arc::new(c.queue_keys("mixed").unwrap());
    let () = raw.set(&keys.fence, 189).await.unwrap();
    for n in 0..10 {
        let grouped = spool_client::EnqueueOptions::new()
            .queue("mixed")
            .group("g");
        c.enqueue_with(&Noop { n }, grouped).await.unwrap();
        let plain = spool_client::EnqueueOptions::new().queue("mixed");
        c.enqueue_with(&Noop { n: 100 + n }, plain).await.unwrap();
    }
    let got = rt.fetch(&keys, 20, lease, "w").await.unwrap();
    let tokens: Vec<&str> = got.iter().map(|j| j.token.as_str()).collect();
    assert_eq!(
        tokens,
        ["190", "191", "193", "195", "197", "199", "201", "203", "205", "207", "209"]
    );
    assert_leases_carry_tokens(&mut raw, &keys, &got).await;
}

/// One ack of grouped leases from several claims (two fetches, two
/// workers) gives each group its turn back: ack.lua reads each lease's
/// group right after the claim it matched. A job cancelled while running
/// gives its turn back too. Each time the groups' next jobs, which waited
/// in their groups' lists, are leased next (in the order their turns were
/// passed on).
#[tokio::test]
async fn one_ack_across_claims_gives_every_group_its_turn_back() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let lease = Duration::from_secs(30);
    let keys = Arc::new(c.queue_keys("grouped").unwrap());
    let mut ids = Vec::new();
    for round in 0..3 {
        for group in ["a", "bb", "c-c"] {
            let options = spool_client::EnqueueOptions::new()
                .queue("grouped")
                .group(group);
            ids.push(
                c.enqueue_with(&Noop { n: round }, options)
                    .await
                    .unwrap()
                    .id,
            );
        }
    }
    let sorted = |jobs: &[LeasedJob]| {
        let mut ids: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
        ids.sort();
        ids
    };
    let round = |r: usize| {
        let mut ids = ids[3 * r..3 * r + 3].to_vec();
        ids.sort();
        ids
    };
    let mut leased = rt.fetch(&keys, 1, lease, "w").await.unwrap();
    leased.extend(rt.fetch(&keys, 2, lease, "x-worker").await.unwrap());
    assert_eq!(sorted(&leased), round(0));
    // Nothing more: every group's other jobs wait for its turn.
    assert!(rt.fetch(&keys, 10, lease, "w").await.unwrap().is_empty());

    let done: Vec<Completion> = leased.iter().map(|j| ack_of(&keys, j)).collect();
    assert_eq!(rt.complete(&done).await.unwrap(), vec![Applied::Acked; 3]);
    let leased = rt.fetch(&keys, 10, lease, "w").await.unwrap();
    assert_eq!(sorted(&leased), round(1));

    let cancelled = leased
        .iter()
        .position(|j| j.id == ids[4])
        .expect("the second round's job of group bb");
    c.cancel(&ids[4]).await.unwrap();
    let done: Vec<Completion> = leased.iter().map(|j| ack_of(&keys, j)).collect();
    let mut expected = vec![Applied::Acked; 3];
    expected[cancelled] = Applied::Cancelled;
    assert_eq!(rt.complete(&done).await.unwrap(), expected);
    let leased = rt.fetch(&keys, 10, lease, "w").await.unwrap();
    assert_eq!(sorted(&leased), round(2));
}

/// fetch.lua keeps the text of small numbers and the arguments a worker
/// repeats in memo tables that last from call to call (prelude.lua, "Memo
/// tables"): claims stay exact, each lease as long as its claim asked,
/// once the memo of arguments is full (1,100 lease lengths, each new) and
/// for a batch past the bound of small numbers; the stats count them all.
/// The guard a batch writes keeps the leases hash a hash table from a
/// first claim of two jobs on; each claim's deadline (its member of
/// `active`, `worker|start`) is its own lease from Redis's clock.
#[tokio::test]
async fn claims_stay_exact_past_the_memo_tables_and_write_their_guards() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let mut raw = env.raw().await;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let jobs: Vec<Noop> = (0..6000).map(|n| Noop { n }).collect();
    c.enqueue_bulk(&jobs).await.unwrap();
    let encoding = |key: String| {
        let mut raw = raw.clone();
        async move {
            redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(key)
                .query_async::<String>(&mut raw)
                .await
                .unwrap()
        }
    };
    let got = rt
        .fetch(&keys, 2, Duration::from_secs(30), "w")
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(encoding(keys.leases.clone()).await, "hashtable");

    let redis_ms = |raw: &mut spool_client::Connection| {
        let mut raw = raw.clone();
        async move {
            let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut raw).await.unwrap();
            s * 1000 + us / 1000
        }
    };
    let before = redis_ms(&mut raw).await;
    for i in 0..1100_u64 {
        let lease = Duration::from_millis(60_000 + i);
        let got = rt.fetch(&keys, 1, lease, "w").await.unwrap();
        assert_eq!(got.len(), 1, "claim {i}");
        let deadline: f64 = redis::cmd("ZSCORE")
            .arg(&keys.active)
            .arg(format!("w|{}", got[0].leased_at_ms))
            .query_async(&mut raw)
            .await
            .unwrap();
        // Deadlines are whole ms (f64 holds them exactly).
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let leased_at = deadline as u64 - (60_000 + i);
        assert!(
            leased_at >= before,
            "claim {i}: leased at {leased_at}, before {before}"
        );
        assert!(leased_at <= redis_ms(&mut raw).await, "claim {i}");
    }
    let got = rt
        .fetch(&keys, 4500, Duration::from_secs(30), "w")
        .await
        .unwrap();
    assert_eq!(got.len(), 4500);
    assert_eq!(
        rt.fetch(&keys, 4500, Duration::from_secs(30), "w")
            .await
            .unwrap()
            .len(),
        398
    );
    let stats = c.admin().stats("default", 2).await.unwrap();
    let fetched: u64 = stats.minutes.iter().map(|m| m.fetched).sum();
    assert_eq!(fetched, 6000);
}

/// Each of `jobs` (fetched by worker `w`) has a lease that starts with its
/// token.
async fn assert_leases_carry_tokens(
    raw: &mut spool_client::Connection,
    keys: &spool_client::runtime::QueueKeys,
    jobs: &[spool_client::runtime::LeasedJob],
) {
    use redis::AsyncCommands;

    for job in jobs {
        let held: String = raw
            .hget(&keys.leases, job.id.as_str())
            .await
            .expect("the lease");
        assert!(
            held.starts_with(&format!("{}|w|", job.token.as_str())),
            "token {:?}, lease {held}",
            job.token
        );
    }
}

/// The libraries of Spool's functions on the server (`FUNCTION LIST`, every
/// primary): their names.
async fn function_libraries(raw: &mut spool_client::Connection) -> Vec<String> {
    let replies = raw
        .on_every_primary(redis::cmd("FUNCTION").arg("LIST"))
        .await
        .expect("FUNCTION LIST");
    let mut names = Vec::new();
    for reply in replies {
        let libraries: Vec<std::collections::HashMap<String, redis::Value>> =
            redis::from_redis_value(reply).expect("libraries");
        for library in libraries {
            if let Some(name) = library.get("library_name") {
                names.push(redis::from_redis_value::<String>(name.clone()).expect("a name"));
            }
        }
    }
    names
}

/// The worker's per-job scripts (fetch, ack, fail) run as Redis functions,
/// loaded on first use; after an operator's `FUNCTION FLUSH` (or a restart
/// without persistence) they are loaded again, and every job runs once.
#[tokio::test]
async fn the_per_job_scripts_run_as_functions_and_come_back_after_a_flush() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let running = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    for n in 0..5 {
        env.client.enqueue(&Noop { n }).await.unwrap();
    }
    env.client
        .enqueue(&Scripted {
            fail_times: 1,
            ..Scripted::ok("fails-once")
        })
        .await
        .unwrap();
    wait_for("the first jobs ran", Duration::from_secs(10), || async {
        (0..5).all(|n| rec.count(&format!("noop-{n}")) == 1) && rec.count("fails-once") == 2
    })
    .await;
    let mut raw = env.raw().await;
    let libraries = function_libraries(&mut raw).await;
    for script in ["fetch", "ack", "fail"] {
        let prefix = format!("spool_{script}_");
        assert!(
            libraries.iter().any(|l| l.starts_with(&prefix)),
            "no {prefix} library in {libraries:?}"
        );
    }
    let _: Vec<redis::Value> = raw
        .on_every_primary(redis::cmd("FUNCTION").arg("FLUSH"))
        .await
        .expect("FUNCTION FLUSH");
    assert!(function_libraries(&mut raw).await.is_empty());
    for n in 5..10 {
        env.client.enqueue(&Noop { n }).await.unwrap();
    }
    wait_for(
        "the jobs after the flush ran",
        Duration::from_secs(10),
        || async { (0..10).all(|n| rec.count(&format!("noop-{n}")) == 1) },
    )
    .await;
    let libraries = function_libraries(&mut raw).await;
    assert!(
        libraries.iter().any(|l| l.starts_with("spool_fetch_")),
        "{libraries:?}"
    );
    running.stop().await;
    let q = env.client.admin().queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.dead), (0, 0, 0), "{q:?}");
}

/// A server over `maxmemory` that has lost the libraries (a `FUNCTION
/// FLUSH` at that moment) refuses `FUNCTION LOAD` (it is `DENYOOM`): the
/// worker's scripts then go by `EVALSHA` for those calls, which Redis runs
/// over `maxmemory` as before, so the jobs waiting run and are acked.
#[tokio::test]
async fn over_maxmemory_without_the_libraries_the_jobs_still_run() {
    let env = TestEnv::start().await;
    for n in 0..5 {
        env.client.enqueue(&Noop { n }).await.unwrap();
    }
    let mut raw = env.raw().await;
    // The enqueue loaded every script and library: the libraries go.
    let _: Vec<redis::Value> = raw
        .on_every_primary(redis::cmd("FUNCTION").arg("FLUSH"))
        .await
        .expect("FUNCTION FLUSH");
    let set_maxmemory = |bytes: &str| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("maxmemory").arg(bytes);
        cmd
    };
    let _: Vec<redis::Value> = raw
        .on_every_primary(&set_maxmemory("1"))
        .await
        .expect("CONFIG SET maxmemory");
    let rec = Recorder::default();
    let running = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    wait_for(
        "the jobs ran over maxmemory",
        Duration::from_secs(10),
        || async { (0..5).all(|n| rec.count(&format!("noop-{n}")) == 1) },
    )
    .await;
    wait_for(
        "the jobs were acked over maxmemory",
        Duration::from_secs(10),
        || async {
            let q = env.client.admin().queue("default").await.unwrap();
            (q.ready, q.active) == (0, 0)
        },
    )
    .await;
    let _: Vec<redis::Value> = raw
        .on_every_primary(&set_maxmemory("0"))
        .await
        .expect("CONFIG SET maxmemory");
    // Below maxmemory again, the next call loads the libraries.
    env.client.enqueue(&Noop { n: 5 }).await.unwrap();
    wait_for("the job after ran", Duration::from_secs(10), || async {
        rec.count("noop-5") == 1
    })
    .await;
    wait_for(
        "the libraries are back",
        Duration::from_secs(10),
        || async {
            function_libraries(&mut env.raw().await)
                .await
                .iter()
                .any(|l| l.starts_with("spool_fetch_"))
        },
    )
    .await;
    running.stop().await;
}

/// The acknowledgement of leased job `job` (no run facts, as a worker
/// sends for a record it could not decode).
fn ack_of(keys: &Arc<spool_client::runtime::QueueKeys>, job: &LeasedJob) -> Completion {
    Completion {
        keys: keys.clone(),
        id: job.id.clone(),
        token: job.token.clone(),
        outcome: Outcome::Ack,
        run: None,
    }
}

/// The members of `active` and the fields of `claims` of a queue.
async fn claims_left(
    raw: &mut spool_client::Connection,
    keys: &spool_client::runtime::QueueKeys,
) -> (u64, u64) {
    redis::pipe()
        .cmd("ZCARD")
        .arg(&keys.active)
        .cmd("HLEN")
        .arg(&keys.claims)
        .query_async(raw)
        .await
        .expect("ZCARD and HLEN")
}

/// A lease its worker let go of without ending it (here: never extended,
/// while the other lease of its claim is) stays while its claim is
/// extended, and comes back one lease after the last heartbeat that named
/// its claim: extending a sibling keeps the claim, acking the sibling ends
/// only the sibling, and the reaper then returns the orphan. The counts
/// follow: the claim leaves `active` and `claims` when its last lease ends.
#[tokio::test]
async fn an_orphan_lease_comes_back_a_lease_after_its_claims_last_heartbeat() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let rt = c.runtime();
    let keys = Arc::new(c.queue_keys("default").unwrap());
    c.enqueue_bulk(&[Noop { n: 1 }, Noop { n: 2 }])
        .await
        .unwrap();
    let lease = Duration::from_millis(600);
    let jobs = rt.fetch(&keys, 2, lease, "w").await.unwrap();
    assert_eq!(jobs.len(), 2);
    let (kept, orphan) = (&jobs[0], &jobs[1]);
    let mut raw = env.raw().await;
    let claim = format!("w|{}", kept.leased_at_ms);
    let count: Option<u64> = redis::cmd("HGET")
        .arg(&keys.claims)
        .arg(&claim)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, Some(2), "one claim for the fetch, counting both");
    // Heartbeats name only `kept`: the claim (and the orphan) stay.
    let beat = [(keys.clone(), kept.id.clone(), kept.token.clone())];
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    let mut last_beat = std::time::Instant::now();
    while std::time::Instant::now() < until {
        last_beat = std::time::Instant::now();
        assert!(rt.extend(lease, &beat).await.unwrap().is_empty());
        assert_eq!(
            testing::reap_once(c, &["default"]).await.unwrap().to_ready,
            0
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let done = ack_of(&keys, kept);
    assert_eq!(rt.complete(&[done]).await.unwrap(), vec![Applied::Acked]);
    let count: Option<u64> = redis::cmd("HGET")
        .arg(&keys.claims)
        .arg(&claim)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, Some(1), "the orphan's lease is still counted");
    // No heartbeat names the claim now: the orphan is back a lease after
    // the last one (Redis's clock and ours may differ by a round trip).
    wait_for("the orphan reaped", Duration::from_secs(5), || async {
        testing::reap_once(c, &["default"]).await.unwrap().to_ready == 1
    })
    .await;
    assert!(
        last_beat.elapsed() >= Duration::from_millis(550),
        "a lease (600 ms) less 50"
    );
    let job = c
        .admin()
        .job("default", orphan.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Ready);
    assert_eq!(
        claims_left(&mut raw, &keys).await,
        (0, 0),
        "the claim is gone"
    );
    // The other job of the queue runs on: a new claim, ended by its ack.
    let again = rt.fetch(&keys, 2, lease, "w").await.unwrap();
    assert_eq!(again.len(), 1);
    let done = ack_of(&keys, &again[0]);
    assert_eq!(rt.complete(&[done]).await.unwrap(), vec![Applied::Acked]);
    assert_eq!(
        claims_left(&mut raw, &keys).await,
        (0, 0),
        "an acked claim leaves both"
    );
}

/// Members of `active` from before claims (a job id each, scored by its
/// deadline) are still reaped as that one job, unless the job's lease
/// names a live claim (the member is stale: the job was leased again).
#[tokio::test]
async fn members_from_before_claims_are_reaped_as_one_job() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let keys = Arc::new(c.queue_keys("default").unwrap());
    let mut raw = env.raw().await;
    // A job leased the old way: its record in `jobs`, a lease without a
    // start, and its id in `active`, expired.
    let old = c.enqueue(&Noop { n: 1 }).await.unwrap();
    let record: String = redis::cmd("RPOP")
        .arg(&keys.ready)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&keys.jobs)
        .arg(old.as_str())
        .arg(&record)
        .cmd("HSET")
        .arg(&keys.leases)
        .arg(old.as_str())
        .arg("7|gone-worker")
        .cmd("ZADD")
        .arg(&keys.active)
        .arg(1)
        .arg(old.as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    // A job leased now, with a stale member of its own id as well.
    let live = c.enqueue(&Noop { n: 2 }).await.unwrap();
    let got = c
        .runtime()
        .fetch(&keys, 1, Duration::from_secs(30), "w")
        .await
        .unwrap();
    assert_eq!(got[0].id, live);
    let _: () = redis::cmd("ZADD")
        .arg(&keys.active)
        .arg(1)
        .arg(live.as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    let r = testing::reap_once(c, &["default"]).await.unwrap();
    assert_eq!(r.to_ready, 1, "{r:?}");
    let admin = c.admin();
    let old_job = admin.job("default", old.as_str()).await.unwrap().unwrap();
    assert_eq!(old_job.state, JobState::Ready);
    assert!(
        old_job
            .errors
            .iter()
            .any(|e| e.error.contains("gone-worker")),
        "{:?}",
        old_job.errors
    );
    let live_job = admin.job("default", live.as_str()).await.unwrap().unwrap();
    assert_eq!(live_job.state, JobState::Active);
    let deadline = live_job.lease.unwrap().deadline_ms.unwrap();
    assert!(
        deadline > c.redis_time_ms().await.unwrap(),
        "its claim's deadline"
    );
}
