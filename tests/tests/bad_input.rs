//! Bad input never crashes a worker or loses other jobs: garbage pushed by
//! hand, records of the wrong shape, args that do not decode and unknown job
//! types all end in the dead set with a readable error.

use std::time::Duration;

use spool_client::{JobSet, JobState};
use spool_tests::handlers::{with_fixtures, Noop, Recorder};
use spool_tests::{wait_for, RunningWorker, TestEnv};

/// Raw LPUSHes of non-JSON, foreign JSON, a Spool-shaped record with a bad
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
        r#"{"id":"type-1","attempt":0,"max_attempts":3,"enqueued_ms":1,"type":"no_such_type","queue":"default","args":{},"created_ms":1}"#.to_owned(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01]).into_owned(),
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
                && admin.queue("default").await.unwrap().dead == 6
        },
    )
    .await;
    let dead = admin
        .list_set("default", JobSet::Dead, 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.total, 6);
    let mut reasons = Vec::new();
    for job in &dead.items {
        assert_eq!(job.state, JobState::Dead);
        let err = job.last_error().expect("a readable error").error.clone();
        reasons.push(err);
    }
    let has = |needle: &str| reasons.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(has("not a Spool job record"), 3, "{reasons:#?}");
    assert_eq!(has("does not have Spool's shape"), 1, "{reasons:#?}");
    assert_eq!(has("do not decode"), 1, "{reasons:#?}");
    assert_eq!(has("unknown job type \"no_such_type\""), 1, "{reasons:#?}");
    // The raw garbage is kept unchanged for the operator.
    assert!(dead.items.iter().any(|j| j.raw == "this is not json"));
    assert_eq!(admin.queue("default").await.unwrap().ready, 0);
    running.stop().await;
}
