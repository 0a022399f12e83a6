//! Bad input never crashes a worker or loses other jobs: garbage pushed by
//! hand, records of the wrong shape and args that do not decode end in the
//! dead set with a readable error; unknown job types retry (or, configured
//! so, go dead); a panic's error says where it happened.

use std::time::Duration;

use spool_client::{JobSet, JobState};
use spool_tests::handlers::{with_fixtures, Noop, Recorder};
use spool_tests::{wait_for, RunningWorker, TestEnv};

/// Raw `LPUSHes` of non-JSON, foreign JSON, a Spool-shaped record with a bad
/// body, wrong args and an unknown type all go dead; the good jobs around
/// them run.
#[tokio::test]
async fn garbage_goes_to_dead_and_good_jobs_still_run() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);

    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let mut raw = env.raw().await;
    let ready = "spool:{default}:ready";
    let garbage = [
        "this is not json".to_owned(),
        r#"{"hello":"world"}"#.to_owned(),
        r#"{"id":"shape-1","attempt":0,"max_attempts":3,"enqueued_ms":1,"nope":true}"#.to_owned(),
        r#"{"id":"args-1","attempt":0,"max_attempts":3,"enqueued_ms":1,"type":"noop","queue":"default","args":{"n":"not a number"},"created_ms":1}"#.to_owned(),
        r#"{"id":"type-1","attempt":0,"max_attempts":1,"enqueued_ms":1,"type":"no_such_type","queue":"default","args":{},"created_ms":1}"#.to_owned(),
        r#"{"id":"type-2","attempt":0,"max_attempts":3,"enqueued_ms":1,"type":"no_such_type","queue":"default","args":{},"created_ms":1}"#.to_owned(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01]).into_owned(),
        // A readable id, the rest of the head not Spool's: fetch.lua reads
        // only the id, the worker the head, and the dead set gets it.
        r#"{"id":"head-1","type":"noop","attempt":0,"args":{"n":9}}"#.to_owned(),
        r#"{"id":"head-2","attempt":"0","max_attempts":3,"enqueued_ms":1,"type":"noop","args":{"n":9}}"#.to_owned(),
    ];
    for g in &garbage {
        let _: () = redis::cmd("LPUSH")
            .arg(ready)
            .arg(g)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    env.client.enqueue(&Noop { n: 2 }).await.unwrap();

    let admin = env.client.admin();
    wait_for(
        "garbage dead, good jobs done",
        Duration::from_secs(10),
        || async {
            rec.count("noop-1") == 1
                && rec.count("noop-2") == 1
                && admin.queue("default").await.unwrap().dead == 8
                && admin.queue("default").await.unwrap().retry == 1
        },
    )
    .await;
    // An unknown type with attempts left waits for a worker that knows it
    // (producers are often deployed first), its error naming the type.
    let waiting = admin.job("default", "type-2").await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Retry);
    let error = &waiting.last_error().expect("an error").error;
    assert!(
        error.contains("unknown job type \"no_such_type\""),
        "{error}"
    );
    let dead = admin
        .list_set("default", JobSet::Dead, 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.total, 8);
    let mut reasons = Vec::new();
    for job in &dead.items {
        assert_eq!(job.state, JobState::Dead);
        let err = job.last_error().expect("a readable error").error.clone();
        reasons.push(err);
    }
    let has = |needle: &str| reasons.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(has("not a Spool job record"), 5, "{reasons:#?}");
    // Under their own ids, unchanged, and no handler saw them.
    for id in ["head-1", "head-2"] {
        let job = admin.job("default", id).await.unwrap().expect("kept");
        assert_eq!(job.state, JobState::Dead);
        assert!(
            job.raw.starts_with(&format!(r#"{{"id":"{id}","#)),
            "{}",
            job.raw
        );
    }
    assert_eq!(rec.count("noop-9"), 0);
    assert_eq!(has("does not have Spool's shape"), 1, "{reasons:#?}");
    assert_eq!(has("do not decode"), 1, "{reasons:#?}");
    assert_eq!(has("unknown job type \"no_such_type\""), 1, "{reasons:#?}");
    // The raw garbage is kept unchanged for the operator.
    assert!(dead.items.iter().any(|j| j.raw == "this is not json"));
    assert_eq!(admin.queue("default").await.unwrap().ready, 0);
    running.stop().await;
}

/// A record with Spool's head and a body of `body`, as bytes.
fn raw_record(id: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        r#"{{"id":"{id}","attempt":1,"max_attempts":3,"enqueued_ms":1000,"type":"t","queue":"default","args":"#
    )
    .into_bytes();
    r.extend_from_slice(body);
    r.extend_from_slice(br#","created_ms":1}"#);
    r
}

/// Records that are not UTF-8, not JSON, or nested past `serde_json`'s limit,
/// written raw into the ready list and every set by a buggy producer, are
/// listed with the rest (escaped bytes and a problem), found, retried and
/// deleted; none of them makes a listing or a lookup fail (issue 9, items 2
/// and 12).
#[tokio::test]
async fn admin_lists_and_repairs_records_of_any_bytes() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let mut raw = env.raw().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: [(&str, Vec<u8>); 3] = [
        ("utf8", b"\"\xff\xfe bad bytes \xc3\"".to_vec()),
        ("json", b"{not json".to_vec()),
        ("deep", deep.into_bytes()),
    ];
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    for (kind, body) in &bodies {
        let _: () = redis::cmd("LPUSH")
            .arg("spool:{default}:ready")
            .arg(raw_record(&format!("ready-{kind}"), body))
            .query_async(&mut raw)
            .await
            .unwrap();
        for set in JobSet::ALL {
            let id = format!("{}-{kind}", set.as_str());
            let _: () = redis::pipe()
                .cmd("HSET")
                .arg("spool:{default}:jobs")
                .arg(&id)
                .arg(raw_record(&id, body))
                .cmd("HSET")
                .arg("spool:{default}:errors")
                .arg(&id)
                .arg(&b"[{\"at_ms\":1,\"attempt\":1,\"error\":\"bad \xff text\"}]"[..])
                .cmd("ZADD")
                .arg(format!("spool:{{default}}:{}", set.as_str()))
                .arg(5000)
                .arg(&id)
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    }

    // Every listing answers and shows every record.
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.scheduled, q.retry, q.dead), (4, 3, 3, 3));
    assert_eq!(admin.queues().await.unwrap().len(), 1);
    let ready = admin.list_ready("default", 0, 10).await.unwrap();
    assert_eq!(ready.items.len(), 4);
    for set in JobSet::ALL {
        let page = admin.list_set("default", set, 0, 10).await.unwrap();
        assert_eq!(page.items.len(), 3, "{set:?}");
        serde_json::to_value(&page).unwrap();
        for job in &page.items {
            assert!(job.problem.is_some(), "{}", job.id);
            assert!(job.record.is_none());
            assert_eq!(job.job_type(), "t");
            assert_eq!(job.attempts(), Some((1, 3)));
            assert_eq!(job.last_error().unwrap().error, "bad \u{fffd} text");
        }
        let bad = page
            .items
            .iter()
            .find(|j| j.id.as_str().ends_with("utf8"))
            .unwrap();
        assert!(bad.raw.contains(r"\xFF\xFE bad bytes \xC3"), "{}", bad.raw);
        assert!(bad.problem.as_deref().unwrap().contains("UTF-8"));
        let filtered = admin
            .scan_set(
                "default",
                set,
                &spool_client::admin::JobFilter::new(Some("t"), None).unwrap(),
                0,
                10,
                100,
            )
            .await
            .unwrap();
        assert_eq!(filtered.matched, 3);
    }

    // Each one can be looked up whole, with its exact bytes.
    for (kind, body) in &bodies {
        for state in ["ready", "scheduled", "retry", "dead"] {
            let id = format!("{state}-{kind}");
            let job = admin.job("default", &id).await.unwrap().expect(&id);
            assert_eq!(job.state.as_str(), state);
            assert_eq!(job.raw_bytes, raw_record(&id, body), "{id}");
            assert!(!job.truncated, "{id}");
            assert!(job.problem.is_some(), "{id}");
            // The API's JSON never fails on them either, even as a Value
            // (`json!`), which re-parses raw args with a recursion limit.
            serde_json::to_value(&job).unwrap();
        }
    }

    // Retry and delete work on them; the bytes travel unchanged.
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Dead, &["dead-utf8", "dead-deep"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(admin.delete_all("default", JobSet::Retry).await.unwrap(), 3);
    assert!(admin.delete_ready("default", "ready-utf8").await.unwrap());
    assert!(admin.delete_ready("default", "dead-deep").await.unwrap());
    let moved = admin.job("default", "dead-utf8").await.unwrap().unwrap();
    assert_eq!(moved.state, JobState::Ready);
    assert!(moved.raw_bytes.windows(2).any(|w| w == b"\xff\xfe"));
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.scheduled, q.retry, q.dead), (4, 3, 0, 1));
}

/// A registry member that is not a valid queue name (other producers are
/// told to SADD their queues) is skipped and reported; the overview, stats
/// and every queue listing still answer (issue 9, item 4).
#[tokio::test]
async fn bad_queue_names_in_the_registry_are_skipped_and_reported() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    admin.register_queues(&["default", "other"]).await.unwrap();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("SADD")
        .arg("{spool}:queues")
        .arg("a:b")
        .arg(&b"bad\xff"[..])
        .arg("")
        .arg("x".repeat(100))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(admin.queue_names().await.unwrap(), ["default", "other"]);
    let names: Vec<String> = admin
        .queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["default", "other"]);
    assert_eq!(admin.total_stats(60).await.unwrap().minutes.len(), 60);
    assert_eq!(
        admin.invalid_queue_names().await.unwrap(),
        [
            String::new(),
            "a:b".to_owned(),
            r"bad\xFF".to_owned(),
            "x".repeat(100)
        ]
    );
}

/// Process records written by another client with bytes that are not UTF-8
/// or fields that do not decode are skipped; live processes still list.
#[tokio::test]
async fn process_listing_skips_undecodable_records() {
    let env = TestEnv::start().await;
    let mut raw = env.raw().await;
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg("{spool}:processes")
        .arg(1)
        .arg(&b"bad\xff"[..])
        .arg(2)
        .arg("junk")
        .cmd("HSET")
        .arg("{spool}:process:junk")
        .arg("info")
        .arg(&b"\xff{"[..])
        .arg("started_ms")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(env.client.admin().processes().await.unwrap().is_empty());
}

/// `enqueue.lua` called by another producer with a malformed job group after
/// a good one and an idempotency key: the call fails naming the problem and
/// changes nothing (no job of the call, no idempotency key left behind).
#[tokio::test]
async fn a_malformed_enqueue_call_changes_nothing() {
    let env = TestEnv::start().await;
    let keys = env.client.queue_keys("raw").unwrap();
    let idem = keys.idempotency("k1");
    let source = spool_client::runtime::script_source("enqueue").unwrap();
    let mut raw = env.raw().await;
    let good = [
        "good-1",
        "3",
        "0",
        "0",
        r#"{"type":"noop","queue":"raw","args":{"n":1},"created_ms":1}"#,
    ];
    for bad in [
        ["bad\"id", "3", "0", "0", r#"{"type":"noop"}"#],
        ["bad-2", "x", "0", "0", r#"{"type":"noop"}"#],
        ["bad-3", "3", "soon", "0", r#"{"type":"noop"}"#],
        ["bad-4", "3", "0", "0", "not an object"],
    ] {
        let reply: redis::RedisResult<redis::Value> = redis::cmd("EVAL")
            .arg(source)
            .arg(5)
            .arg(&keys.ready)
            .arg(&keys.wake)
            .arg(&keys.scheduled)
            .arg(&keys.jobs)
            .arg(&idem)
            .arg(60_000)
            .arg(&good[..])
            .arg(&bad[..])
            .query_async(&mut raw)
            .await;
        let err = reply.expect_err("malformed group refused").to_string();
        assert!(err.contains("spool:"), "{err}");
        let exists: (i64, i64, i64) = redis::pipe()
            .cmd("EXISTS")
            .arg(&idem)
            .cmd("LLEN")
            .arg(&keys.ready)
            .cmd("HLEN")
            .arg(&keys.jobs)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(exists, (0, 0, 0), "nothing written for {bad:?}");
    }
    // A group count that is not a multiple of 5 is refused the same way.
    let reply: redis::RedisResult<redis::Value> = redis::cmd("EVAL")
        .arg(source)
        .arg(4)
        .arg(&keys.ready)
        .arg(&keys.wake)
        .arg(&keys.scheduled)
        .arg(&keys.jobs)
        .arg(0)
        .arg(&good[..4])
        .query_async(&mut raw)
        .await;
    assert!(reply.is_err());
}

/// An `EVAL` of `enqueue.lua` on queue `keys` with its first four keys
/// (as a producer written before the other keys existed calls it).
fn enqueue_eval(keys: &spool_client::runtime::QueueKeys, args: &[&str]) -> redis::Cmd {
    let source = spool_client::runtime::script_source("enqueue").expect("enqueue.lua");
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source)
        .arg(4)
        .arg(&keys.ready)
        .arg(&keys.wake)
        .arg(&keys.scheduled)
        .arg(&keys.jobs)
        .arg(args);
    cmd
}

/// Record `r` without the value of its `enqueued_ms`.
fn without_time(r: &str) -> String {
    let at = r.find(r#""enqueued_ms":"#).expect("enqueued_ms") + 14;
    let end = at + r[at..].find(',').expect("a field after enqueued_ms");
    format!("{}{}", &r[..at], &r[end..])
}

/// The entries of list `key`, head first.
async fn lrange(raw: &mut spool_client::Connection, key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(raw)
        .await
        .expect("LRANGE")
}

/// The shared form of a bulk (`/s`: `max_attempts`, `at_ms` and `delay_ms` once,
/// then id and body per job) is checked as the long form: a malformed call
/// fails naming the problem and writes nothing.
#[tokio::test]
async fn a_malformed_shared_enqueue_call_changes_nothing() {
    let env = TestEnv::start().await;
    let keys = env.client.queue_keys("raw").unwrap();
    let mut raw = env.raw().await;
    let shared = |args: &[&str]| enqueue_eval(&keys, args);
    let body = r#"{"type":"noop","queue":"raw","args":{"n":1},"created_ms":1}"#;
    for bad in [
        &["0/s", "3", "0"][..],
        &["0/s", "x", "0", "0", "s-1", body],
        &["0/s", "3", "0", "0", "s-1", body, "s-2"],
        &["0/s", "3", "0", "0", "s-1", "[]"],
        &["0/x", "3", "0", "0", "s-1", body],
        // A bad job after a good one (the one-pass path for jobs due now
        // builds the first record before it meets the second).
        &["0/s", "3", "0", "0", "s-1", body, "s\"2", body],
        &["0/s", "3", "0", "0", "s-1", body, "s\\2", body],
        &["0/s", "3", "0", "0", "s-1", body, "", body],
        &["0/s", "3", "0", "0", "s-1", body, "s-2", "{}"],
        &["0/s", "3", "0", "0", "s-1", body, "s-2", "x"],
    ] {
        let reply: redis::RedisResult<redis::Value> = shared(bad).query_async(&mut raw).await;
        let err = reply
            .expect_err("malformed shared call refused")
            .to_string();
        assert!(err.contains("spool:"), "{bad:?}: {err}");
    }
    let len: i64 = redis::cmd("LLEN")
        .arg(&keys.ready)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(len, 0, "nothing written");
    let (ok, n): (i64, i64) = shared(&["0/s", "3", "0", "0", "s-1", body, "s-2", body])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!((ok, n), (1, 2));
    let head: String = redis::cmd("LINDEX")
        .arg(&keys.ready)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        head.starts_with(r#"{"id":"s-1","attempt":0,"max_attempts":3,"enqueued_ms":"#),
        "{head}"
    );
    // The same job through the long form makes the same record (but for
    // the time it was enqueued).
    let _: redis::Value = shared(&["0", "s-3", "3", "0", "0", body])
        .query_async(&mut raw)
        .await
        .unwrap();
    let records: Vec<String> = redis::cmd("LRANGE")
        .arg(&keys.ready)
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        without_time(&records[0]).replace("s-3", "s-1"),
        without_time(&head)
    );
    // A bulk with a routing field (here a priority) in any job goes the
    // general way: each job to its list.
    let routed = r#"{"priority":2,"type":"noop","queue":"raw","args":{"n":2},"created_ms":1}"#;
    let _: redis::Value = shared(&["0/s", "3", "0", "0", "s-4", body, "s-5", routed])
        .query_async(&mut raw)
        .await
        .unwrap();
    let lens: (i64, i64) = redis::pipe()
        .cmd("LLEN")
        .arg(&keys.ready)
        .cmd("LLEN")
        .arg(format!("{}:p2", keys.ready))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(lens, (4, 1), "s-1, s-2, s-3, s-4 plain; s-5 at priority 2");
}

/// `/t` is `/s` with bodies sent without their opening `{`: the records are
/// the same, a malformed call changes nothing, and a bulk the one-pass path
/// does not take (a routing field, a job due later) goes the general way
/// with its bodies whole again.
#[tokio::test]
async fn a_shared_enqueue_of_body_tails_makes_the_same_records() {
    let env = TestEnv::start().await;
    let keys = env.client.queue_keys("raw").unwrap();
    let mut raw = env.raw().await;
    let call = |args: &[&str]| enqueue_eval(&keys, args);
    let body = r#"{"type":"noop","queue":"raw","args":{"n":1},"created_ms":1}"#;
    let tail = &body[1..];
    for bad in [
        &["0/t", "3", "0", "0", "t-1", tail, "t-2", "x"][..],
        &["0/t", "3", "0", "0", "t-1", tail, "t-2", ""],
        &["0/t", "3", "0", "0", "t-1", tail, "t\"2", tail],
        &["0/t", "3", "0", "0", "t-1", tail, "t-2"],
        &["0/t", "3", "0", "0", "t-1", body],
    ] {
        let reply: redis::RedisResult<redis::Value> = call(bad).query_async(&mut raw).await;
        let err = reply.expect_err("malformed call refused").to_string();
        assert!(err.contains("spool:"), "{bad:?}: {err}");
    }
    assert!(
        lrange(&mut raw, &keys.ready).await.is_empty(),
        "nothing written"
    );
    let (ok, n): (i64, i64) = call(&["0/t", "3", "0", "0", "t-1", tail, "t-2", tail])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!((ok, n), (1, 2));
    let _: redis::Value = call(&["0/s", "3", "0", "0", "s-1", body, "s-2", body])
        .query_async(&mut raw)
        .await
        .unwrap();
    // Oldest last: s-2, s-1, t-2, t-1.
    let records = lrange(&mut raw, &keys.ready).await;
    assert_eq!(records.len(), 4);
    assert_eq!(
        without_time(&records[3]).replace("t-1", "s-1"),
        without_time(&records[1])
    );
    assert_eq!(
        without_time(&records[2]).replace("t-2", "s-2"),
        without_time(&records[0])
    );
    assert!(
        records[3].starts_with(r#"{"id":"t-1","attempt":0,"max_attempts":3,"enqueued_ms":"#)
            && records[3]
                .ends_with(r#","type":"noop","queue":"raw","args":{"n":1},"created_ms":1}"#),
        "{}",
        records[3]
    );
    // A routing field: the general way, each job to its list, whole.
    let routed = r#""priority":2,"type":"noop","queue":"raw","args":{"n":2},"created_ms":1}"#;
    let _: redis::Value = call(&["0/t", "3", "0", "0", "t-3", tail, "t-4", routed])
        .query_async(&mut raw)
        .await
        .unwrap();
    let high = lrange(&mut raw, &format!("{}:p2", keys.ready)).await;
    assert_eq!(high.len(), 1);
    assert!(
        high[0].starts_with(r#"{"id":"t-4","attempt":0,"max_attempts":3,"enqueued_ms":"#)
            && high[0].contains(r#","priority":2,"type":"noop""#),
        "{}",
        high[0]
    );
    assert_eq!(lrange(&mut raw, &keys.ready).await.len(), 5);
    // Due later: the general way, into the scheduled set.
    let _: redis::Value = call(&["0/t", "3", "0", "60000", "t-5", tail, "t-6", tail])
        .query_async(&mut raw)
        .await
        .unwrap();
    let scheduled: i64 = redis::cmd("ZCARD")
        .arg(&keys.scheduled)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(scheduled, 2);
    let record: String = redis::cmd("HGET")
        .arg(&keys.jobs)
        .arg("t-6")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        without_time(&record),
        without_time(&records[2]).replace("t-2", "t-6")
    );
}

/// A job the fixtures do not know: with `UnknownTypes::Dead` it goes dead on
/// its first run although it has attempts left. A panicking handler's error
/// names the file and line of the panic.
#[tokio::test]
async fn unknown_types_can_go_dead_at_once_and_panics_say_where() {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Boom;
    impl spool_client::Job for Boom {
        const TYPE: &'static str = "boom";
    }

    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec)
        .configure(|c| c.unknown_types = spool_worker::UnknownTypes::Dead)
        .register(|_ctx, _job: Boom| async move {
            assert!(std::hint::black_box(false), "boom");
            Ok(())
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let args = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
    let unknown = env
        .client
        .enqueue_raw(
            "not_deployed_yet",
            &args,
            &spool_client::JobDefaults::default(),
            spool_client::EnqueueOptions::new(),
        )
        .await
        .unwrap()
        .id;
    let boom = env.client.enqueue(&Boom).await.unwrap();
    let admin = env.client.admin();
    wait_for(
        "both ended their first run",
        Duration::from_secs(10),
        || async {
            let q = admin.queue("default").await.unwrap();
            q.dead == 1 && q.retry == 1
        },
    )
    .await;
    running.stop().await;
    let dead = admin
        .job("default", unknown.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.state, JobState::Dead);
    let retrying = admin.job("default", boom.as_str()).await.unwrap().unwrap();
    let error = &retrying.last_error().expect("an error").error;
    assert!(
        error.starts_with("handler panicked at tests/tests/bad_input.rs:"),
        "{error}"
    );
}
