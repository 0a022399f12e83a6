//! Where spool-bench runs: a URL given with `--redis-url`, or private
//! servers it starts itself (`--topology single|tls|replica|cluster`), plus
//! the server-side readings (memory, commands) summed over every primary.

use anyhow::{bail, Context};
use spool_client::{Client, TlsFiles};
use spool_tests::{slot_of, TestCerts, TestCluster, TestRedis};

/// Private servers kept alive for the run (stopped on drop).
#[allow(dead_code)] // held for their Drop
#[allow(clippy::large_enum_variant)] // one value per run
pub(crate) enum Servers {
    /// None: the URL was given.
    External,
    /// One server.
    Single(TestRedis),
    /// One TLS server and its certificates.
    Tls(TestRedis, TestCerts),
    /// A primary and one replica (for `--wait-replicas 1`).
    Replica(TestRedis, TestRedis),
    /// A 3-primary cluster.
    Cluster(TestCluster),
}

/// Starts what `topology` names; returns the servers, the URL and the TLS
/// files a client needs.
pub(crate) fn start(topology: &str) -> anyhow::Result<(Servers, String, TlsFiles)> {
    Ok(match topology {
        "single" => {
            let r = TestRedis::start();
            let url = r.url();
            (Servers::Single(r), url, TlsFiles::default())
        }
        "tls" => {
            let certs = TestCerts::generate();
            let r = TestRedis::builder().tls(&certs).start();
            let url = r.url();
            let files = TlsFiles {
                ca: Some(certs.ca_cert()),
                ..TlsFiles::default()
            };
            (Servers::Tls(r, certs), url, files)
        }
        "replica" => {
            let primary = TestRedis::start();
            let replica = TestRedis::builder().replica_of(primary.port()).start();
            let url = primary.url();
            (Servers::Replica(primary, replica), url, TlsFiles::default())
        }
        "cluster" => {
            let c = TestCluster::start(3, 0);
            let url = c.url();
            (Servers::Cluster(c), url, TlsFiles::default())
        }
        other => bail!("--topology {other:?}: expected single, tls, replica or cluster"),
    })
}

/// `n` queue names whose hash slots fall in `n` equal ranges of the slot
/// space: on a cluster whose primaries split the slots evenly (as
/// `TestCluster` does), one queue per primary.
pub(crate) fn queue_names(n: usize) -> Vec<String> {
    if n == 1 {
        return vec!["bench".to_owned()];
    }
    let width = 16_384 / n;
    (0..n)
        .map(|i| {
            // Each range holds 1/n of the slots: a few hundred tries suffice.
            (0..100_000)
                .map(|k| format!("bench-{i}-{k}"))
                .find(|q| usize::from(slot_of(format!("{{{q}}}"))) / width == i)
                .unwrap_or_else(|| format!("bench-{i}"))
        })
        .collect()
}

/// The sum over every primary of an `INFO` field (`used_memory`) or, for
/// `commandstats`, of the calls of the commands named.
pub(crate) async fn info_sum(
    client: &Client,
    section: &str,
    fields: &[&str],
) -> anyhow::Result<f64> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg(section);
    let replies = client.connection().on_every_primary(&cmd).await?;
    let mut total = 0.0;
    for reply in replies {
        let info: String = redis::from_redis_value(reply).context("INFO reply")?;
        for field in fields {
            total += info
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .map(|rest| rest.strip_prefix("calls=").unwrap_or(rest))
                .and_then(|v| v.split(',').next()?.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    Ok(total)
}
