//! Payload encryption against a real Redis and a real worker: round trip,
//! key rotation, a wrong or missing key (dead with the reason, record
//! intact, runs once the keyring is fixed), no plaintext anywhere in Redis,
//! and the dashboard showing `encrypted (key …)` and never matching the
//! plaintext in its filter.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{
    Client, EnqueueOptions, FollowUp, Job, JobOptions, JobOutput, JobRecord, JobSet, Keyring,
};
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::{DashboardServer, Session};
use spool_tests::{fast_config, wait_for, RunningWorker, TestEnv, TestServer};
use spool_worker::Worker;

/// The text the tests look for in Redis: it must never appear there.
const MARKER: &str = "PLAINTEXT-MARKER-7f3a";

/// An encrypted job type carrying a secret note.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Secret {
    note: String,
}

impl Job for Secret {
    const TYPE: &'static str = "secret";
    fn options() -> JobOptions {
        JobOptions::default()
            .queue("vault")
            .encrypted(true)
            .keep_outcome(Duration::from_secs(600))
    }
}

impl JobOutput for Secret {
    type Output = String;
}

fn k1() -> Keyring {
    Keyring::new("k1", [1; 32]).unwrap()
}

fn k2_then_k1() -> Keyring {
    Keyring::new("k2", [2; 32])
        .unwrap()
        .with_key("k1", [1; 32])
        .unwrap()
}

async fn client_with(env: &TestEnv, keyring: Option<Keyring>) -> Client {
    let mut b = Client::builder(&env.redis.url());
    if let Some(k) = keyring {
        b = b.keyring(k);
    }
    b.connect().await.unwrap()
}

/// A worker on `client` running `Secret` jobs: records each note, returns
/// it (the result is kept, sealed).
fn secret_worker(client: Client, seen: &Arc<Mutex<Vec<String>>>) -> RunningWorker {
    let seen = Arc::clone(seen);
    let worker = Worker::builder(client)
        .configure(fast_config)
        .register_returning(move |_ctx, job: Secret| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(job.note.clone());
                Ok(format!("done {}", job.note))
            }
        })
        .build()
        .unwrap();
    RunningWorker::start(worker)
}

/// The key id in the stored record of job `id` (the `jobs` hash holds it
/// while scheduled, retrying, dead; the admin API finds it anywhere).
async fn stored_key_id(client: &Client, id: &str) -> Option<String> {
    let job = client.admin().job("vault", id).await.unwrap().unwrap();
    job.record.unwrap().encrypted_key_id()
}

/// A job's args go to Redis sealed and reach the handler in plain text;
/// its kept result is sealed too and `Client::result` opens it.
#[tokio::test]
async fn encrypted_args_round_trip_through_a_real_worker() {
    let env = TestEnv::start().await;
    let client = client_with(&env, Some(k1())).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let id = client
        .enqueue_with(
            &Secret {
                note: MARKER.into(),
            },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        stored_key_id(&client, id.as_str()).await.as_deref(),
        Some("k1")
    );
    client
        .admin()
        .retry_jobs("vault", JobSet::Scheduled, &[id.as_str()])
        .await
        .unwrap();
    let w = secret_worker(client.clone(), &seen);
    wait_for("job ran", Duration::from_secs(10), || async {
        seen.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(seen.lock().unwrap()[0], MARKER);
    wait_for("result kept", Duration::from_secs(10), || async {
        client.result::<Secret>(&id).await.unwrap().is_some()
    })
    .await;
    assert_eq!(
        client.result::<Secret>(&id).await.unwrap().unwrap(),
        format!("done {MARKER}")
    );
    let status = client.status(&id).await.unwrap();
    let sealed = status.result.unwrap();
    assert!(
        sealed.get().starts_with("\"spool:enc:v1:k1:"),
        "{}",
        sealed.get()
    );
    // Without the keyring, the result cannot be read.
    assert!(env.client.result::<Secret>(&id).await.is_err());
    // And without a keyring nothing encrypted can be enqueued.
    let err = env
        .client
        .enqueue(&Secret { note: "x".into() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no keyring"), "{err}");
    w.stop().await;
}

/// Rotation: a job sealed with k1 still runs after k2 became active (k1
/// kept), and new jobs are sealed with k2.
#[tokio::test]
async fn rotation_keeps_old_jobs_running_and_seals_new_ones_with_the_active_key() {
    let env = TestEnv::start().await;
    let old = client_with(&env, Some(k1())).await;
    let later = EnqueueOptions::new().delay(Duration::from_secs(3600));
    let a = old
        .enqueue_with(&Secret { note: "a".into() }, later.clone())
        .await
        .unwrap()
        .id;
    let rotated = client_with(&env, Some(k2_then_k1())).await;
    let b = rotated
        .enqueue_with(&Secret { note: "b".into() }, later)
        .await
        .unwrap()
        .id;
    assert_eq!(
        stored_key_id(&rotated, a.as_str()).await.as_deref(),
        Some("k1")
    );
    assert_eq!(
        stored_key_id(&rotated, b.as_str()).await.as_deref(),
        Some("k2")
    );
    rotated
        .admin()
        .retry_all("vault", JobSet::Scheduled)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let w = secret_worker(rotated.clone(), &seen);
    wait_for("both ran", Duration::from_secs(10), || async {
        seen.lock().unwrap().len() == 2
    })
    .await;
    let mut notes = seen.lock().unwrap().clone();
    notes.sort();
    assert_eq!(notes, ["a", "b"]);
    w.stop().await;
}

/// A worker with the wrong key, or without the key id, moves the job to
/// dead at once with a clear reason and the record intact; once the
/// keyring is fixed, a retry from dead runs it.
#[tokio::test]
async fn wrong_or_missing_key_sends_the_job_to_dead_intact_and_a_retry_runs_it() {
    let env = TestEnv::start().await;
    let producer = client_with(&env, Some(k1())).await;
    let wrong = producer
        .enqueue(&Secret {
            note: "wrong".into(),
        })
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bad = client_with(&env, Some(Keyring::new("k1", [9; 32]).unwrap())).await;
    let w = secret_worker(bad, &seen);
    let admin = producer.admin();
    wait_for("dead", Duration::from_secs(10), || async {
        admin.queue("vault").await.unwrap().dead == 1
    })
    .await;
    w.stop().await;
    let missing = producer
        .enqueue(&Secret {
            note: "missing".into(),
        })
        .await
        .unwrap();
    let other = client_with(&env, Some(Keyring::new("k3", [3; 32]).unwrap())).await;
    let w = secret_worker(other, &seen);
    wait_for("dead", Duration::from_secs(10), || async {
        admin.queue("vault").await.unwrap().dead == 2
    })
    .await;
    w.stop().await;
    assert!(seen.lock().unwrap().is_empty());
    for (id, why) in [
        (
            &wrong,
            "authentication failed with key id 'k1': wrong key or tampered data",
        ),
        (&missing, "key id 'k1' not in this keyring"),
    ] {
        let job = admin.job("vault", id.as_str()).await.unwrap().unwrap();
        let error = &job.last_error().unwrap().error;
        assert_eq!(error, &format!("cannot decrypt args of job {id}: {why}"));
        assert_eq!(job.attempts().unwrap().0, 1, "one run, no retries");
        let record: &JobRecord = job.record.as_ref().unwrap();
        assert_eq!(record.encrypted_key_id().as_deref(), Some("k1"));
        let mut opened = record.clone();
        assert_eq!(opened.decrypt_args(producer.keyring()), Ok(true), "intact");
    }
    admin.retry_all("vault", JobSet::Dead).await.unwrap();
    let w = secret_worker(client_with(&env, Some(k2_then_k1())).await, &seen);
    wait_for("both ran", Duration::from_secs(10), || async {
        seen.lock().unwrap().len() == 2
    })
    .await;
    w.stop().await;
}

/// Every URL of the test's Redis nodes (one, or each Cluster primary).
fn node_urls(env: &TestEnv) -> Vec<String> {
    match &env.redis {
        TestServer::Single(r) => vec![r.url()],
        TestServer::Cluster(c) => c.node_urls(),
    }
}

/// Every value of every key on every node, as bytes, by type; returns the
/// dump and the types seen.
async fn dump_everything(env: &TestEnv) -> (Vec<u8>, Vec<String>) {
    let mut dump = Vec::new();
    let mut types = Vec::new();
    for url in node_urls(env) {
        let mut c = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap();
            let cmd = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).clone(),
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
                other => panic!("unexpected type {other}"),
            };
            let value: redis::Value = cmd.query_async(&mut c).await.unwrap();
            dump.extend_from_slice(&key);
            dump.extend_from_slice(format!("{value:?}").as_bytes());
            types.push(kind);
        }
    }
    (dump, types)
}

/// Args holding a marker, as every kind of job (ready, scheduled, run with
/// a kept result, dead, a follow-up waiting in its parent's hash, events at
/// level all), never put the marker anywhere in Redis.
#[tokio::test]
async fn no_plaintext_of_encrypted_args_anywhere_in_redis() {
    let env = TestEnv::start().await;
    env.all_events("vault").await;
    let client = client_with(&env, Some(k1())).await;
    let secret = || Secret {
        note: format!("{MARKER} card 4111"),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let w = secret_worker(client.clone(), &seen);
    let ran = client.enqueue(&secret()).await.unwrap();
    wait_for("ran", Duration::from_secs(10), || async {
        client.result::<Secret>(&ran).await.unwrap().is_some()
    })
    .await;
    w.stop().await;
    // Dead: a worker without the key.
    client.enqueue(&secret()).await.unwrap();
    let w = secret_worker(env.client.clone(), &seen);
    wait_for("dead", Duration::from_secs(10), || async {
        client.admin().queue("vault").await.unwrap().dead == 1
    })
    .await;
    w.stop().await;
    client.enqueue(&secret()).await.unwrap(); // ready
    let follow = FollowUp::on_success(&secret()).unwrap();
    client
        .enqueue_with(
            &secret(),
            EnqueueOptions::new()
                .delay(Duration::from_secs(3600))
                .unique_by_args()
                .follow_up(follow),
        )
        .await
        .unwrap();
    let (dump, types) = dump_everything(&env).await;
    for kind in ["stream", "hash", "list", "zset"] {
        assert!(
            types.iter().any(|t| t == kind),
            "no {kind} scanned: {types:?}"
        );
    }
    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains("spool:enc:v1:k1:"), "sealed args are there");
    assert!(!text.contains(MARKER), "plaintext found in Redis");
    assert!(!text.contains("card 4111"), "plaintext found in Redis");
}

/// The dashboard lists and the JSON API show `encrypted (key k1)`; the set
/// filter never matches the plaintext; a job page shows the plaintext only
/// when the dashboard's client has the keyring.
#[tokio::test]
async fn dashboard_shows_encrypted_and_its_filter_never_sees_plaintext() {
    let env = TestEnv::start().await;
    let client = client_with(&env, Some(k1())).await;
    let id = client
        .enqueue_with(
            &Secret {
                note: MARKER.into(),
            },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id;
    let server = DashboardServer::start(spool_dashboard::router(
        env.client.admin(),
        DashboardConfig::default(),
    ))
    .await;
    let mut s = Session::new(&server.url(), "");
    let list = s.get("/scheduled?queue=vault").await;
    assert!(list.body.contains("encrypted (key k1)"), "{}", list.body);
    assert!(list.body.contains(id.as_str()));
    assert!(!list.body.contains(MARKER));
    let api = s.get("/api/sets/scheduled?queue=vault").await;
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(json["items"][0]["args_preview"], "encrypted (key k1)");
    assert!(!api.body.contains(MARKER));
    let filtered = s.get(&format!("/scheduled?queue=vault&q={MARKER}")).await;
    assert_eq!(filtered.status, 200);
    assert!(
        !filtered.body.contains(id.as_str()),
        "filter matched plaintext"
    );
    let by_marker = s.get("/scheduled?queue=vault&q=encrypted").await;
    assert!(by_marker.body.contains(id.as_str()));
    let page = s.get(&format!("/jobs/vault/{id}")).await;
    assert!(page.body.contains("encrypted (key k1)"));
    assert!(!page.body.contains(MARKER));
    let one = s.get(&format!("/api/jobs/vault/{id}")).await;
    assert_eq!(one.status, 200);
    assert!(!one.body.contains(MARKER));
    server.stop().await;

    let keyed = DashboardServer::start(spool_dashboard::router(
        client.admin(),
        DashboardConfig::default(),
    ))
    .await;
    let mut s = Session::new(&keyed.url(), "");
    let page = s.get(&format!("/jobs/vault/{id}")).await;
    assert!(
        page.body.contains(MARKER),
        "the keyring reveals it on the job page"
    );
    let list = s.get(&format!("/scheduled?queue=vault&q={MARKER}")).await;
    assert!(
        !list.body.contains(id.as_str()),
        "still no match in listings"
    );
    keyed.stop().await;
}
