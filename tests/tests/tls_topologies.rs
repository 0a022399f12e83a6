//! TLS on the other topologies: `rediss+sentinel://` (including a failover
//! over TLS) and `rediss+cluster://`, each proved to run over TLS (the
//! client's connections sit on the TLS ports, and a client without the CA
//! is refused).

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use spool_client::{Client, EnqueueOptions, Error};
use spool_tests::handlers::{fixture_worker, Noop, Recorder};
use spool_tests::load::{recording_worker, wait_until, Ran};
use spool_tests::servers::{server_supports_tls, server_version};
use spool_tests::{
    init_tracing, slot_of, wait_for, RunningWorker, TestCerts, TestCluster, TestSentinel,
};

/// Skips (returns true) when the server binary has no TLS.
fn no_tls() -> bool {
    if server_supports_tls() {
        return false;
    }
    eprintln!("SKIPPED: {} was built without TLS", server_version());
    true
}

// ------------------------------------------------- TLS Sentinel and Cluster

/// The `CLIENT LIST` lines of normal clients connected to `tls_port` of
/// the server whose plain (admin) port is `admin_port`, sentinels' own
/// links left out: the connections a client made over TLS.
fn clients_on_tls_port(admin_port: u16, tls_port: u16) -> Vec<String> {
    let admin = redis::Client::open(format!("redis://127.0.0.1:{admin_port}")).unwrap();
    let mut con = admin
        .get_connection_with_timeout(Duration::from_secs(1))
        .unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut con)
        .unwrap();
    let laddr = format!(" laddr=127.0.0.1:{tls_port} ");
    list.lines()
        .filter(|l| l.contains(&laddr) && !l.contains(" name=sentinel-"))
        .map(str::to_owned)
        .collect()
}

/// Connecting to `url` without the CA fails with `Error::Connect` naming
/// the certificate.
async fn connect_without_ca_fails(url: &str) {
    let err = Client::connect(url)
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

/// `rediss+sentinel://` with the CA: the sentinels (TLS ports only in the
/// URL) name the primary's TLS port, a job is enqueued and run, and the
/// primary sees the client's connections on its TLS port. After a failover
/// (over TLS) the client and the worker follow to the new primary. Without
/// the CA the connect fails with a certificate error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sentinel_runs_jobs() {
    if no_tls() {
        return;
    }
    init_tracing();
    let certs = TestCerts::generate();
    let ca = certs.ca_cert();
    let (certs, mut topo) = tokio::task::spawn_blocking(move || {
        let topo = TestSentinel::start_tls(&certs);
        (certs, topo)
    })
    .await
    .unwrap();
    let url = topo.url();
    eprintln!("sentinel url: {url}");
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    for port in topo.sentinel_ports() {
        assert!(!url.contains(&format!(":{port}")), "a plain port in {url}");
    }
    let primary = topo.primary_port();
    assert_ne!(primary, topo.admin_port(primary), "the TLS port is its own");

    let client = Client::builder(&url)
        .tls_ca_file(&ca)
        .connect()
        .await
        .expect("connect through TLS sentinels");
    let rec = Recorder::default();
    let running = RunningWorker::start(fixture_worker(&client, &rec));
    client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_for(
        "job ran via TLS sentinel",
        Duration::from_secs(10),
        || async { rec.count("noop-1") == 1 },
    )
    .await;
    let on_tls = clients_on_tls_port(topo.admin_port(primary), primary);
    eprintln!("client connections on the primary's TLS port: {on_tls:#?}");
    assert!(!on_tls.is_empty(), "no client on the TLS port {primary}");

    // Failover over TLS: the sentinels promote the replica (TLS port).
    topo.kill_primary();
    let new = topo.wait_for_failover(Duration::from_secs(20));
    assert!(topo.data_ports().contains(&new), "{new}");
    wait_for(
        "an enqueue succeeds on the new primary",
        Duration::from_secs(10),
        || async { client.enqueue(&Noop { n: 2 }).await.is_ok() },
    )
    .await;
    wait_for(
        "job ran after the failover",
        Duration::from_secs(10),
        || async { rec.count("noop-2") >= 1 },
    )
    .await;
    let on_tls = clients_on_tls_port(topo.admin_port(new), new);
    assert!(!on_tls.is_empty(), "no client on the new TLS port {new}");
    running.stop().await;

    connect_without_ca_fails(&url).await;
    drop(client);
    drop(topo);
    drop(certs);
}

/// `rediss+cluster://` with the CA on a 3-primary TLS cluster (TLS ports
/// only in the URL; TLS cluster bus): jobs in three queues whose slots are
/// on three primaries all run, each primary sees client connections on its
/// TLS port. Without the CA the connect fails with a certificate error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_runs_jobs() {
    if no_tls() {
        return;
    }
    init_tracing();
    let certs = TestCerts::generate();
    let ca = certs.ca_cert();
    let (certs, cluster) = tokio::task::spawn_blocking(move || {
        let cluster = TestCluster::start_tls(3, 0, &certs);
        (certs, cluster)
    })
    .await
    .unwrap();
    let url = cluster.url();
    eprintln!("cluster url: {url}");
    assert!(url.starts_with("rediss+cluster://"), "{url}");
    for port in cluster.ports() {
        assert!(!url.contains(&format!(":{port}")), "a plain port in {url}");
    }

    // Three queues whose keys are on three different primaries.
    let mut queues: Vec<(String, u16)> = Vec::new();
    for i in 0..10_000 {
        let name = format!("tls{i}");
        let owner = cluster.node_for_slot(slot_of(format!("spool:{{{name}}}:ready")));
        if !queues.iter().any(|(_, p)| *p == owner) {
            queues.push((name, owner));
        }
        if queues.len() == 3 {
            break;
        }
    }
    assert_eq!(queues.len(), 3, "{queues:?}");
    eprintln!("queues and their primaries (plain ports): {queues:?}");
    let names: Vec<&str> = queues.iter().map(|(n, _)| n.as_str()).collect();

    let client = Client::builder(&url)
        .tls_ca_file(&ca)
        .connect()
        .await
        .expect("connect to the TLS cluster");
    let ran = Ran::default();
    let running = RunningWorker::start(recording_worker(&client, &names, &ran, |_| {}));
    for (n, name) in names.iter().enumerate() {
        client
            .enqueue_with(&Noop { n: n as u64 }, EnqueueOptions::new().queue(*name))
            .await
            .unwrap();
    }
    wait_until("a job ran in each queue", Duration::from_secs(10), || {
        ran.count() == 3
    })
    .await;
    for (name, port) in &queues {
        let tls_port = cluster.tls_port_of(*port).unwrap();
        let on_tls = clients_on_tls_port(*port, tls_port);
        eprintln!(
            "queue {name}: {} client connections on TLS port {tls_port}",
            on_tls.len()
        );
        assert!(!on_tls.is_empty(), "no client on the TLS port {tls_port}");
    }
    running.stop().await;

    connect_without_ca_fails(&url).await;
    drop(client);
    drop(cluster);
    drop(certs);
}
