//! `TestSentinel`: a primary, one replica and three sentinels (quorum 2,
//! master name `mymaster`) on loopback, with fast failure detection
//! (`down-after-milliseconds 1000`, `failover-timeout 3000`), for tests of
//! `redis+sentinel://` URLs and failover.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{answers_ping, free_port, last_log_line, poll, ServerProcess};
use crate::TestRedis;

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// A sentinel process and its dir (config file rewritten by the sentinel).
#[derive(Debug)]
struct Sentinel {
    port: u16,
    _dir: tempfile::TempDir,
    _process: ServerProcess,
}

/// A monitored primary/replica pair and three sentinels, all stopped when
/// dropped.
#[derive(Debug)]
pub struct TestSentinel {
    /// Data servers: `[0]` started as primary, `[1]` as its replica.
    servers: Vec<TestRedis>,
    sentinels: Vec<Sentinel>,
    primary_port: u16,
}

impl TestSentinel {
    /// Starts the primary, its replica (link up) and three sentinels, and
    /// returns once each sentinel knows the master, the replica and the two
    /// other sentinels.
    #[must_use]
    pub fn start() -> Self {
        let primary = TestRedis::start();
        let primary_port = primary.port();
        let replica = TestRedis::builder().replica_of(primary_port).start();
        let sentinels = start_sentinels(primary_port, replica.port());
        let me = Self {
            servers: vec![primary, replica],
            sentinels,
            primary_port,
        };
        me.wait_until_settled();
        me
    }

    /// Waits until every sentinel sees the master, the replica (connected,
    /// its link to the master up) and the two other sentinels, none of them
    /// down.
    fn wait_until_settled(&self) {
        let replica_port = self.servers[1].port().to_string();
        for s in &self.sentinels {
            poll(
                "a sentinel to know the master, its replica and 2 other sentinels",
                Duration::from_secs(15),
                || {
                    let master = sentinel_master(s.port).map_err(|e| e.to_string())?;
                    let list = |what: &str| -> Result<Vec<Vec<String>>, String> {
                        super::connect(s.port)
                            .and_then(|mut c| {
                                redis::cmd("SENTINEL")
                                    .arg(what)
                                    .arg(MASTER_NAME)
                                    .query(&mut c)
                            })
                            .map_err(|e| e.to_string())
                    };
                    let replicas = list("REPLICAS")?;
                    let sentinels = list("SENTINELS")?;
                    let up =
                        |flags: &str| !flags.contains("down") && !flags.contains("disconnected");
                    let ok = field(&master, "flags") == "master"
                        && field(&master, "num-other-sentinels") == "2"
                        && replicas.len() == 1
                        && replicas.iter().all(|r| {
                            field(r, "port") == replica_port
                                && up(field(r, "flags"))
                                && field(r, "master-link-status") == "ok"
                        })
                        && sentinels.len() == 2
                        && sentinels.iter().all(|o| up(field(o, "flags")));
                    if ok {
                        Ok(())
                    } else {
                        Err(format!(
                            "master {master:?}, replicas {replicas:?}, sentinels {sentinels:?}"
                        ))
                    }
                },
            );
        }
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`.
    #[must_use]
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The three sentinels' ports.
    #[must_use]
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The port of the current primary (as of the last failover this handle
    /// waited for).
    #[must_use]
    pub fn primary_port(&self) -> u16 {
        self.primary_port
    }

    /// The ports of the data servers (primary and replica, in start order).
    #[must_use]
    pub fn data_ports(&self) -> Vec<u16> {
        self.servers.iter().map(TestRedis::port).collect()
    }

    /// SIGKILLs the current primary.
    pub fn kill_primary(&mut self) {
        let port = self.primary_port;
        self.servers
            .iter_mut()
            .find(|s| s.port() == port)
            .expect("the primary is one of the data servers")
            .kill();
    }

    /// Waits until a sentinel names a new primary, every sentinel has
    /// finished the failover (`SENTINEL MASTER` names it, without `s_down`,
    /// `o_down` or `failover_in_progress`: what sentinel clients check), and
    /// the server says it is a master; returns its port. Panics after
    /// `timeout`.
    pub fn wait_for_failover(&mut self, timeout: Duration) -> u16 {
        let old = self.primary_port;
        let deadline = Instant::now() + timeout;
        let new = poll("the sentinels to name a new primary", timeout, || {
            let mut last = String::from("no sentinel answered");
            for s in &self.sentinels {
                let addr: redis::RedisResult<Option<(String, u16)>> = super::connect(s.port)
                    .and_then(|mut c| {
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(MASTER_NAME)
                            .query(&mut c)
                    });
                match addr {
                    Ok(Some((_, port))) if port != old => return Ok(port),
                    Ok(a) => last = format!("sentinel {} says {a:?}", s.port),
                    Err(e) => last = format!("sentinel {}: {e}", s.port),
                }
            }
            Err(last)
        });
        poll(
            "every sentinel to finish the failover to the new primary",
            deadline.saturating_duration_since(Instant::now()),
            || {
                for s in &self.sentinels {
                    let master = sentinel_master(s.port).map_err(|e| e.to_string())?;
                    let flags = field(&master, "flags");
                    if field(&master, "port") != new.to_string()
                        || flags.contains("s_down")
                        || flags.contains("o_down")
                        || flags.contains("failover_in_progress")
                    {
                        return Err(format!("sentinel {}: {master:?}", s.port));
                    }
                }
                Ok(())
            },
        );
        poll(
            "the promoted replica to report role:master",
            deadline.saturating_duration_since(Instant::now()),
            || {
                let info: String = super::connect(new)
                    .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c))
                    .map_err(|e| e.to_string())?;
                if info.contains("role:master") {
                    Ok(())
                } else {
                    Err(info)
                }
            },
        );
        self.primary_port = new;
        new
    }

    /// Restarts the killed old primary on its port as a replica of the new
    /// primary (as an operator would: sentinels alone take 10 s or more to
    /// convert it); returns once its replication link is up.
    pub fn restart_old_primary_as_replica(&mut self) {
        let primary = self.primary_port;
        self.servers
            .iter_mut()
            .find(|s| s.port() != primary)
            .expect("a data server other than the primary")
            .restart_as_replica_of(primary);
    }
}

/// `SENTINEL MASTER mymaster` of the sentinel on `port`, as field/value pairs.
fn sentinel_master(port: u16) -> redis::RedisResult<Vec<String>> {
    super::connect(port).and_then(|mut c| {
        redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(MASTER_NAME)
            .query(&mut c)
    })
}

/// The value after `name` in a field/value list.
fn field<'a>(pairs: &'a [String], name: &str) -> &'a str {
    pairs
        .iter()
        .position(|f| f == name)
        .and_then(|i| pairs.get(i + 1))
        .map_or("", String::as_str)
}

/// Starts three sentinels that already know each other and the replica
/// (`sentinel myid`, `known-sentinel`, `known-replica` in their config
/// files): no waiting for hello messages. Retries on fresh ports if one does
/// not come up.
fn start_sentinels(primary_port: u16, replica_port: u16) -> Vec<Sentinel> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let ids: Vec<String> = (0..3)
            .map(|_| {
                rand::random::<[u8; 20]>()
                    .iter()
                    .fold(String::new(), |mut id, b| {
                        let _ = write!(id, "{b:02x}");
                        id
                    })
            })
            .collect();
        let mut started = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let mut others = String::new();
            for (p, id) in ports.iter().zip(&ids).filter(|(&p, _)| p != port) {
                let _ = writeln!(
                    others,
                    "sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {p} {id}"
                );
            }
            let extra = format!(
                "sentinel myid {}\n{others}sentinel known-replica {MASTER_NAME} 127.0.0.1 {replica_port}\n",
                ids[i]
            );
            match start_sentinel(port, primary_port, &extra) {
                Ok(s) => started.push(s),
                Err(e) => {
                    last_err = e;
                    break;
                }
            }
        }
        if started.len() == 3 {
            return started;
        }
    }
    panic!("could not start the sentinels: {last_err}");
}

fn start_sentinel(port: u16, primary_port: u16, extra: &str) -> Result<Sentinel, String> {
    let dir = tempfile::Builder::new()
        .prefix("spool-sentinel-")
        .tempdir()
        .expect("temp dir for a sentinel");
    let conf: PathBuf = dir.path().join("sentinel.conf");
    let log = dir.path().join("sentinel.log");
    std::fs::write(
        &conf,
        format!(
            "port {port}\n\
             bind 127.0.0.1\n\
             daemonize no\n\
             dir \"{dir}\"\n\
             logfile \"{log}\"\n\
             sentinel resolve-hostnames no\n\
             sentinel announce-ip 127.0.0.1\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 3000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n\
             {extra}",
            dir = dir.path().display(),
            log = log.display(),
        ),
    )
    .expect("write sentinel.conf");
    let mut process = ServerProcess::spawn(&[conf.as_os_str(), "--sentinel".as_ref()])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.exited() {
            return Err(format!(
                "sentinel exited with {status}: {}",
                last_log_line(&log)
            ));
        }
        if answers_ping(port) {
            return Ok(Sentinel {
                port,
                _dir: dir,
                _process: process,
            });
        }
        if Instant::now() > deadline {
            return Err("sentinel did not answer PING within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
