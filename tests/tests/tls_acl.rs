//! Spool over TLS (CA, wrong CA, client certificates, the CLI over TLS)
//! and as an ACL user limited to its namespace with the rules the docs
//! give. Each test starts its own servers on loopback.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use spool_client::{Client, Error, JobSet};
use spool_tests::handlers::{fixture_worker, with_fixtures, Noop, Recorder, Scripted};
use spool_tests::servers::{server_supports_tls, server_version};
use spool_tests::{fast_config, init_tracing, wait_for, RunningWorker, TestCerts, TestRedis};
use spool_worker::Worker;

/// A TLS server with fresh certificates, and a client trusting its CA.
async fn tls_server() -> (TestCerts, TestRedis, Client) {
    let certs = TestCerts::generate();
    let redis = TestRedis::builder().tls(&certs).start();
    let client = Client::builder(&redis.url())
        .tls_ca_file(certs.ca_cert())
        .connect()
        .await
        .unwrap();
    (certs, redis, client)
}

/// `spool stats --json` on `url`, with `REDIS_CA_FILE` = `ca` if given.
async fn spool_stats(url: &str, ca: Option<&std::path::Path>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(spool_tests::dashboard::fresh_binary("spool"));
    cmd.args(["stats", "--json"])
        .env("REDIS_URL", url)
        .env_remove("REDIS_CA_FILE")
        .env_remove("REDIS_CLIENT_CERT_FILE")
        .env_remove("REDIS_CLIENT_KEY_FILE")
        .kill_on_drop(true);
    if let Some(ca) = ca {
        cmd.env("REDIS_CA_FILE", ca);
    }
    cmd.output().await.unwrap()
}

/// Skips (returns true) when the server binary has no TLS.
fn no_tls() -> bool {
    if server_supports_tls() {
        return false;
    }
    eprintln!("SKIPPED: {} was built without TLS", server_version());
    true
}

// ---------------------------------------------------------------- TLS

/// A `rediss://` client with the CA enqueues and a worker on it runs the
/// job; the wrong CA and no CA fail with `Error::Connect` naming the
/// certificate problem.
#[tokio::test]
async fn tls_client_with_ca_runs_jobs_and_wrong_or_missing_ca_fails() {
    if no_tls() {
        return;
    }
    init_tracing();
    let certs = TestCerts::generate();
    let redis = TestRedis::builder().tls(&certs).start();
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");

    let client = Client::builder(&url)
        .tls_ca_file(certs.ca_cert())
        .connect()
        .await
        .expect("connect over TLS with the CA");
    let rec = Recorder::default();
    let running = RunningWorker::start(fixture_worker(&client, &rec));
    client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_for("job ran over TLS", Duration::from_secs(5), || async {
        rec.count("noop-1") == 1
    })
    .await;
    running.stop().await;
    let check = client.check_server().await.expect("check_server over TLS");
    assert_eq!(check.maxmemory_policy, "noeviction");

    let err = Client::builder(&url)
        .tls_ca_file(certs.other_ca_cert())
        .connect()
        .await
        .expect_err("the wrong CA must not connect");
    eprintln!("wrong CA: {err}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("REDIS_CA_FILE"),
        "{text}"
    );

    let err = Client::connect(&url)
        .await
        .expect_err("without a CA file the test CA is not trusted");
    eprintln!("no CA: {err}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("REDIS_CA_FILE"),
        "{text}"
    );
}

/// With `tls-auth-clients yes` the client certificate files make it work;
/// without them the connection is refused.
#[tokio::test]
async fn tls_required_client_certificate() {
    if no_tls() {
        return;
    }
    init_tracing();
    let certs = TestCerts::generate();
    let redis = TestRedis::builder()
        .tls(&certs)
        .require_client_cert()
        .start();
    let url = redis.url();

    let client = Client::builder(&url)
        .tls_ca_file(certs.ca_cert())
        .tls_client_cert_files(certs.client_cert(), certs.client_key())
        .connect()
        .await
        .expect("connect with a client certificate");
    let rec = Recorder::default();
    let running = RunningWorker::start(fixture_worker(&client, &rec));
    client.enqueue(&Noop { n: 7 }).await.unwrap();
    wait_for(
        "job ran with a client cert",
        Duration::from_secs(5),
        || async { rec.count("noop-7") == 1 },
    )
    .await;
    running.stop().await;

    // TLS 1.3: the server may reject the missing certificate only after the
    // client's handshake finished, so the failure can come at connect or at
    // the first command. Either way it must fail.
    let outcome = match Client::builder(&url)
        .tls_ca_file(certs.ca_cert())
        .connect()
        .await
    {
        Err(e) => Err(("connect", e)),
        Ok(c) => c
            .enqueue(&Noop { n: 8 })
            .await
            .map(|_| ())
            .map_err(|e| ("enqueue", e)),
    };
    let (stage, err) = outcome.expect_err("no client certificate must be refused");
    eprintln!("no client cert: fails at {stage}: {err}");
    assert_eq!(
        stage, "connect",
        "a missing client certificate should fail the connect: {err:?}"
    );
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// The `spool` binary with `REDIS_URL=rediss://…` and `REDIS_CA_FILE`.
#[tokio::test]
async fn tls_cli_stats_json() {
    if no_tls() {
        return;
    }
    let (certs, redis, client) = tls_server().await;
    client.enqueue(&Noop { n: 1 }).await.unwrap();
    let out = spool_stats(&redis.url(), Some(&certs.ca_cert())).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "spool stats --json: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["ready"].as_u64(), Some(1), "{stdout}");

    // Without the CA: exit 1 and the hint.
    let out = spool_stats(&redis.url(), None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("CLI without CA: {:?}: {stderr}", out.status);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("REDIS_CA_FILE"), "{stderr}");
}

/// The dashboard binary serves a TLS Redis with `--redis-ca-file`.
#[tokio::test]
async fn tls_dashboard_serves_pages() {
    if no_tls() {
        return;
    }
    let (certs, redis, client) = tls_server().await;
    client
        .enqueue_with(
            &Noop { n: 1 },
            spool_client::EnqueueOptions::new().queue("over-tls"),
        )
        .await
        .unwrap();
    let ca = certs.ca_cert();
    let dash = spool_tests::dashboard::DashboardProcess::start_on(
        &redis.url(),
        &["--redis-ca-file", ca.to_str().unwrap()],
    )
    .await;
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/api/queues", dash.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("over-tls"), "{body}");
}

// ---------------------------------------------------------------- ACL

/// The ACL line the docs recommend for Spool's user.
const ACL_LINE: &str = "spool on >s3cret ~spool:* ~{spool}:* resetchannels &spool:* -@all \
     +@connection +evalsha +eval +script|load +fcall +function|load +blpop +wait +time +info +config|get \
     +cluster|slots +cluster|shards +role +publish +subscribe +unsubscribe \
     +exists +get +set +del +unlink +incrby +pexpire +pexpireat +sadd +smembers +smismember +srem +scard \
     +hget +hgetall +hmget +hset +hsetnx +hdel +hexists +hincrby +hkeys +hlen \
     +llen +lpush +rpush +rpop +lrange +lrem +ltrim \
     +zadd +zrem +zcard +zcount +zscore +zrange +zrevrange +zrangebyscore +zrevrangebyscore \
     +zremrangebyscore \
     +xadd +xread +xreadgroup +xrevrange +xgroup|create +xack +xautoclaim";

/// Enqueues `retry-once` (fails once, then succeeds) and `dies` (fails
/// for good): what a worker's fail path needs.
async fn enqueue_a_retry_and_a_death(client: &Client) {
    client
        .enqueue(&Scripted {
            fail_times: 1,
            ..Scripted::ok("retry-once")
        })
        .await
        .unwrap();
    client
        .enqueue(&Scripted {
            fail_times: u32::MAX,
            permanent: true,
            ..Scripted::ok("dies")
        })
        .await
        .unwrap();
}

/// Everything Spool does works as the documented ACL user (default user
/// off); the user cannot touch other keys; a wrong password fails clearly.
#[tokio::test]
async fn acl_user_runs_everything_and_nothing_more() {
    init_tracing();
    let redis = TestRedis::builder()
        .acl_user(ACL_LINE)
        .default_user_off()
        .start();
    let url = format!("redis://spool:s3cret@127.0.0.1:{}", redis.port());
    let client = Client::connect(&url).await.expect("connect as spool");
    let check = client.check_server().await.expect("check_server as spool");
    eprintln!("check_server as spool: {check:?}");

    let rec = Recorder::default();
    // A cron entry too: registration and ticks run as this user.
    let worker = with_fixtures(
        Worker::builder(client.clone()).configure(fast_config).cron(
            spool_client::CronEntry::new("acl-tick", "* * * * * *", &Noop { n: 9 })
                .queue("acl-cron"),
        ),
        &rec,
    )
    .build()
    .unwrap();
    let running = RunningWorker::start(worker);
    client.enqueue(&Noop { n: 1 }).await.unwrap();
    enqueue_a_retry_and_a_death(&client).await;
    client
        .enqueue_in(&Noop { n: 2 }, Duration::from_millis(300))
        .await
        .unwrap();
    let admin = client.admin();
    wait_for(
        "jobs ran, retried and died",
        Duration::from_secs(10),
        || async {
            rec.count("noop-1") == 1
                && rec.count("noop-2") == 1
                && rec.count("retry-once") == 2
                && admin.queue("default").await.unwrap().dead == 1
        },
    )
    .await;
    wait_for("queue drained", Duration::from_secs(5), || async {
        let q = admin.queue("default").await.unwrap();
        (q.ready, q.active, q.retry, q.scheduled) == (0, 0, 0, 0)
    })
    .await;
    let queues = admin.queues().await.expect("admin.queues as spool");
    assert!(queues.iter().any(|q| q.name == "default"), "{queues:?}");
    let stats = admin
        .stats("default", 5)
        .await
        .expect("admin.stats as spool");
    eprintln!(
        "stats as spool: processed {}, failed {}",
        stats.processed, stats.failed
    );
    assert!(stats.processed >= 3, "{stats:?}");
    assert!(stats.failed >= 1, "{stats:?}");

    fleet_controls(&client, &rec).await;
    every_admin_action(&client).await;
    outcomes(&client).await;
    running.stop().await;

    let mut conn = client.connection();
    let denied = redis::cmd("SET")
        .arg("other:key")
        .arg(1)
        .query_async::<()>(&mut conn)
        .await
        .expect_err("spool may not SET other:key");
    assert_eq!(denied.code(), Some("NOPERM"), "{denied}");
    let denied = redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .expect_err("spool may not FLUSHALL");
    assert_eq!(denied.code(), Some("NOPERM"), "{denied}");

    let wrong = format!("redis://spool:wrong@127.0.0.1:{}", redis.port());
    let err = Client::connect(&wrong)
        .await
        .expect_err("a wrong password must fail");
    eprintln!("wrong password: {err}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("user name and password") && !text.contains("wrong@"),
        "{text}"
    );
}

/// Job outcomes as `client`'s user (a worker runs): a kept outcome
/// (written, read), `wait` (its subscription), cancel (its message), and
/// the trimmer unlinking an ended bucket.
async fn outcomes(client: &Client) {
    let kept = client
        .enqueue_with(
            &Noop { n: 5 },
            spool_client::EnqueueOptions::new().keep_outcome(Duration::from_millis(300)),
        )
        .await
        .expect("enqueue keeping its outcome")
        .id;
    let done = client
        .wait(&kept, Duration::from_secs(10))
        .await
        .expect("wait as spool");
    assert_eq!(done.status, spool_client::Status::Done);
    let later = client
        .enqueue_in(&Noop { n: 6 }, Duration::from_secs(3600))
        .await
        .expect("enqueue later");
    assert!(matches!(
        client.cancel(&later).await.expect("cancel as spool"),
        spool_client::CancelResult::Cancelled { .. }
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let keys = client.queue_keys("default").expect("queue");
    client.runtime().trim(&keys).await.expect("trim as spool");
    // This call or the worker's own trimmer unlinked the ended bucket.
    let left: u64 = redis::cmd("ZCARD")
        .arg(&keys.outcomes)
        .query_async(&mut client.connection())
        .await
        .expect("ZCARD as spool");
    assert_eq!(left, 0);

    // Events: settings, the audit of the cancel, a reader, and a consumer
    // group whose second consumer claims what the first left pending.
    let admin = client.admin().with_actor("acl-test");
    admin
        .configure_events(
            "default",
            spool_client::EventsConfig {
                level: spool_client::EventLevel::All,
                max_len: 1000,
            },
        )
        .await
        .expect("configure events as spool");
    let recent = admin
        .recent_events(&["default"], None, 100)
        .await
        .expect("recent events as spool");
    assert!(recent
        .iter()
        .any(|e| e.kind == spool_client::EventKind::Cancelled));
    let mut reader = client
        .events()
        .queues(&["default"])
        .expect("queue")
        .from_start();
    assert!(!reader
        .next_batch()
        .await
        .expect("XREAD as spool")
        .is_empty());
    let group = |name: &str| {
        client
            .events()
            .queues(&["default"])
            .expect("queue")
            .from_start()
            .group("acl", name)
            .expect("group")
            .claim_after(Duration::from_millis(1))
    };
    let mut first = group("c1");
    assert!(!first
        .next_batch()
        .await
        .expect("XREADGROUP as spool")
        .is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut second = group("c2");
    let claimed = second.next_batch().await.expect("XAUTOCLAIM as spool");
    assert!(!claimed.is_empty());
    assert!(second.ack(&claimed).await.expect("XACK as spool") > 0);
    batches(client).await;
}

/// A batch with a callback, and a chain, as `client`'s user (a worker
/// runs): open, members, seal, reports, the callback, the status reads
/// and the listing.
async fn batches(client: &Client) {
    let admin = client.admin();
    let mut batch = spool_client::Batch::new()
        .on_complete(spool_client::FollowUp::on_complete(&Noop { n: 8 }).expect("callback"));
    batch.add(&Noop { n: 7 }).expect("member");
    let id = client
        .enqueue_batch(batch)
        .await
        .expect("enqueue batch as spool");
    let chain = spool_client::Chain::new(&Noop { n: 10 })
        .and_then(|c| c.then(&Noop { n: 11 }))
        .expect("chain");
    let chain = client
        .enqueue_chain(chain)
        .await
        .expect("enqueue chain as spool");
    wait_for(
        "the batch and chain finish",
        Duration::from_secs(10),
        || async {
            let b = client
                .batch_status(&id)
                .await
                .expect("batch status as spool");
            let c = client
                .batch_status(&chain)
                .await
                .expect("chain status as spool");
            b.is_some_and(|b| b.finished() && b.callbacks[0].fired)
                && c.is_some_and(|c| c.finished())
        },
    )
    .await;
    assert_eq!(
        admin
            .batches(10)
            .await
            .expect("list batches as spool")
            .len(),
        2
    );
}

/// Every admin read and repair, and the cron actions, as `client`'s user.
/// Every fleet control set, reset and lifted, and jobs with a priority, a
/// group and a rate key run, as the ACL user.
async fn fleet_controls(client: &Client, rec: &Recorder) {
    let admin = client.admin();
    admin
        .set_concurrency_limit("default", Some(50))
        .await
        .expect("limit");
    let generous: spool_client::admin::RateLimit = "1000/1s".parse().unwrap();
    admin
        .set_rate_limit("default", Some(generous))
        .await
        .expect("rate");
    admin
        .set_key_rate_limit("default", Some(generous))
        .await
        .expect("key rate");
    let breaker = spool_client::admin::Breaker::new(90, 100, Duration::from_secs(1), 1);
    admin
        .set_breaker("default", Some(breaker))
        .await
        .expect("breaker");
    admin
        .configure_groups("default", Some("1/hold".parse().unwrap()))
        .await
        .expect("groups");
    let o = spool_client::EnqueueOptions::new;
    for (n, opts) in [
        (11, o().priority(3)),
        (12, o().group("g")),
        (13, o().group("g")),
        (14, o().rate_key("k")),
    ] {
        client
            .enqueue_with(&Noop { n }, opts)
            .await
            .expect("enqueue");
    }
    wait_for("routed jobs ran", Duration::from_secs(10), || async {
        (11..=14).all(|n| rec.count(&format!("noop-{n}")) == 1)
    })
    .await;
    let q = admin.queue("default").await.expect("queue");
    assert_eq!(q.groups_waiting, 0);
    admin.reset_breaker("default").await.expect("reset");
    admin
        .set_concurrency_limit("default", None)
        .await
        .expect("lift");
    admin.set_rate_limit("default", None).await.expect("lift");
    admin
        .set_key_rate_limit("default", None)
        .await
        .expect("lift");
    admin.set_breaker("default", None).await.expect("lift");
    admin.configure_groups("default", None).await.expect("lift");
}

async fn every_admin_action(client: &Client) {
    let admin = client.admin();
    let dead = admin
        .list_set("default", JobSet::Dead, 0, 10)
        .await
        .expect("list dead");
    let dead_id = dead.items[0].id.clone();
    assert!(admin
        .job("default", dead_id.as_str())
        .await
        .expect("job")
        .is_some());
    assert_eq!(
        admin
            .retry_all("default", JobSet::Dead)
            .await
            .expect("retry all"),
        1
    );
    wait_for(
        "the retried job died again",
        Duration::from_secs(5),
        || async { admin.queue("default").await.unwrap().dead == 1 },
    )
    .await;
    assert_eq!(
        admin
            .delete_all("default", JobSet::Dead)
            .await
            .expect("delete all"),
        1
    );
    admin.pause("parked").await.expect("pause");
    let parked = client
        .enqueue_with(
            &Noop { n: 3 },
            spool_client::EnqueueOptions::new().queue("parked"),
        )
        .await
        .unwrap();
    admin.list_ready("parked", 0, 10).await.expect("list ready");
    assert!(admin
        .delete_ready("parked", parked.id.as_str())
        .await
        .expect("delete ready"));
    client
        .enqueue_with(
            &Noop { n: 4 },
            spool_client::EnqueueOptions::new().queue("parked"),
        )
        .await
        .unwrap();
    assert_eq!(admin.clear_ready("parked").await.expect("clear ready"), 1);
    admin.resume("parked").await.expect("resume");
    assert!(!admin.processes().await.expect("processes").is_empty());
    wait_for(
        "the cron entry is registered",
        Duration::from_secs(5),
        || async { !admin.cron_entries().await.unwrap().is_empty() },
    )
    .await;
    assert!(admin.cron_pause("acl-tick").await.expect("cron pause"));
    assert!(admin.cron_resume("acl-tick").await.expect("cron resume"));
    admin.cron_run_now("acl-tick").await.expect("cron run now");
    // Ticks and the run-now land in `acl-cron`, which no worker fetches.
    wait_for(
        "cron jobs enqueued as this user",
        Duration::from_secs(5),
        || async { admin.queue("acl-cron").await.unwrap().ready >= 2 },
    )
    .await;
}

/// A user made from the ACL line before Spool used functions (no `FCALL`,
/// no `FUNCTION LOAD`) still runs jobs, retries and deaths: the worker's
/// scripts go by `EVALSHA` once the server refuses them.
#[tokio::test]
async fn an_acl_user_without_functions_runs_jobs_by_evalsha() {
    init_tracing();
    let line = ACL_LINE.replace(" +fcall +function|load", "");
    assert_ne!(line, ACL_LINE);
    let redis = TestRedis::builder()
        .acl_user(&line)
        .default_user_off()
        .start();
    let url = format!("redis://spool:s3cret@127.0.0.1:{}", redis.port());
    let client = Client::connect(&url).await.expect("connect as spool");
    let rec = Recorder::default();
    let worker = with_fixtures(Worker::builder(client.clone()).configure(fast_config), &rec)
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    for n in 1..=3 {
        client.enqueue(&Noop { n }).await.unwrap();
    }
    enqueue_a_retry_and_a_death(&client).await;
    let admin = client.admin();
    wait_for(
        "jobs ran, retried and died",
        Duration::from_secs(10),
        || async {
            (1..=3).all(|n| rec.count(&format!("noop-{n}")) == 1)
                && rec.count("retry-once") == 2
                && admin.queue("default").await.unwrap().dead == 1
        },
    )
    .await;
    running.stop().await;
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.ready, q.active, q.retry), (0, 0, 0), "{q:?}");
}
