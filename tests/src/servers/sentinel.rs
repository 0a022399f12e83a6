//! `TestSentinel`: a primary, one replica and three sentinels (quorum 2,
//! master name `mymaster`) on loopback, with fast failure detection
//! (`down-after-milliseconds 1000`, `failover-timeout 3000`), for tests of
//! `redis+sentinel://` URLs and failover. [`TestSentinel::start_tls`] is
//! the same over TLS, for `rediss+sentinel://`; [`TestSentinel::start_with_auth`]
//! the same with passwords on the data servers and on the sentinels.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{answers_ping, free_port, poll, ServerProcess, TestCerts};
use crate::TestRedis;

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// A sentinel process and its dir (config file rewritten by the sentinel).
#[derive(Debug)]
struct Sentinel {
    /// The plain port (the harness's admin connections).
    port: u16,
    /// The TLS port, in a TLS set-up.
    tls_port: Option<u16>,
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
    tls: bool,
    /// The passwords, with [`TestSentinel::start_with_auth`].
    auth: Option<Passwords>,
}

/// `requirepass` of the data servers (also their `masterauth` and the
/// sentinels' `sentinel auth-pass`) and of the sentinels themselves.
#[derive(Debug, Clone)]
struct Passwords {
    data: String,
    sentinel: String,
}

/// The PEM files a TLS sentinel is started with (copied into its dir).
#[derive(Debug, Clone)]
struct SentinelTls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl TestSentinel {
    /// Starts the primary, its replica (link up) and three sentinels, and
    /// returns once each sentinel knows the master, the replica and the two
    /// other sentinels.
    #[must_use]
    pub fn start() -> Self {
        Self::start_plain(None)
    }

    /// The same set-up with passwords: the data servers have `requirepass
    /// data_password` (and `masterauth data_password`, so either can be a
    /// replica), the sentinels `requirepass sentinel_password` (which they
    /// also use with each other) and `sentinel auth-pass mymaster
    /// data_password` to monitor the data servers. The harness's own admin
    /// connections authenticate; [`TestSentinel::url`] has no credentials
    /// (a client adds `:data_password@` and `?sentinel_password=`).
    #[must_use]
    pub fn start_with_auth(data_password: &str, sentinel_password: &str) -> Self {
        Self::start_plain(Some(Passwords {
            data: data_password.to_owned(),
            sentinel: sentinel_password.to_owned(),
        }))
    }

    fn start_plain(auth: Option<Passwords>) -> Self {
        let node = || {
            let b = TestRedis::builder();
            match &auth {
                None => b,
                Some(a) => b.requirepass(&a.data).config("masterauth", &a.data),
            }
        };
        let primary = node().start();
        let primary_port = primary.port();
        let replica = node().replica_of(primary_port).start();
        let sentinels = start_sentinels(primary_port, replica.port(), None, auth.as_ref());
        let me = Self {
            servers: vec![primary, replica],
            sentinels,
            primary_port,
            tls: false,
            auth,
        };
        me.wait_until_settled();
        me
    }

    /// The same set-up over TLS with the server certificate of `certs`
    /// (clients verified against its CA only if they present a
    /// certificate). Every server also keeps a plain port for the harness's
    /// own admin connections, but the topology is TLS: the data servers
    /// replicate over TLS (`tls-replication yes`), the sentinels monitor
    /// them and talk to each other over TLS (`tls-replication yes`), so
    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` and the replica list name TLS
    /// ports. [`TestSentinel::url`] is `rediss+sentinel://` with the
    /// sentinels' TLS ports; [`TestSentinel::primary_port`] and
    /// [`TestSentinel::data_ports`] are TLS ports
    /// ([`TestSentinel::admin_port`] maps them to plain ones).
    #[must_use]
    pub fn start_tls(certs: &TestCerts) -> Self {
        let tls_node = || TestRedis::builder().tls(certs).keep_plain_port();
        let primary = tls_node().start();
        let primary_port = primary.tls_port().expect("a TLS port");
        let replica = tls_node().replica_of(primary_port).start();
        let replica_port = replica.tls_port().expect("a TLS port");
        let files = SentinelTls {
            ca: TestCerts::read(&certs.ca_cert()),
            cert: TestCerts::read(&certs.server_cert()),
            key: TestCerts::read(&certs.server_key()),
        };
        let sentinels = start_sentinels(primary_port, replica_port, Some(&files), None);
        let me = Self {
            servers: vec![primary, replica],
            sentinels,
            primary_port,
            tls: true,
            auth: None,
        };
        me.wait_until_settled();
        me
    }

    /// The port the sentinels know a data server by (its TLS port in a TLS
    /// set-up).
    fn known_port(&self, server: &TestRedis) -> u16 {
        if self.tls {
            server.tls_port().expect("a TLS data server")
        } else {
            server.port()
        }
    }

    /// The plain port of the data server the sentinels know by `port` (the
    /// same port without TLS).
    #[must_use]
    pub fn admin_port(&self, port: u16) -> u16 {
        self.servers
            .iter()
            .find(|s| self.known_port(s) == port)
            .map_or_else(|| panic!("no data server on port {port}"), TestRedis::port)
    }

    /// An admin connection to the sentinel on (plain) `port`, authenticated
    /// with the sentinels' password if they have one.
    fn sentinel_con(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        connect_as(port, self.auth.as_ref().map(|a| a.sentinel.as_str()))
    }

    /// An admin connection to the data server on (plain) `port`,
    /// authenticated with the data password if there is one.
    fn data_con(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        connect_as(port, self.auth.as_ref().map(|a| a.data.as_str()))
    }

    /// `SENTINEL MASTER mymaster` of the sentinel on `port`, as field/value
    /// pairs.
    fn sentinel_master(&self, port: u16) -> redis::RedisResult<Vec<String>> {
        self.sentinel_con(port).and_then(|mut c| {
            redis::cmd("SENTINEL")
                .arg("MASTER")
                .arg(MASTER_NAME)
                .query(&mut c)
        })
    }

    /// Waits until every sentinel sees the master, the replica (connected,
    /// its link to the master up) and the two other sentinels, none of them
    /// down.
    fn wait_until_settled(&self) {
        let replica_port = self.known_port(&self.servers[1]).to_string();
        for s in &self.sentinels {
            poll(
                "a sentinel to know the master, its replica and 2 other sentinels",
                Duration::from_secs(15),
                || {
                    let master = self.sentinel_master(s.port).map_err(|e| e.to_string())?;
                    let list = |what: &str| -> Result<Vec<Vec<String>>, String> {
                        self.sentinel_con(s.port)
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

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`;
    /// `rediss+sentinel://` and the TLS ports with
    /// [`TestSentinel::start_tls`].
    #[must_use]
    pub fn url(&self) -> String {
        let ports = if self.tls {
            self.sentinel_tls_ports()
        } else {
            self.sentinel_ports()
        };
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let scheme = if self.tls {
            "rediss+sentinel"
        } else {
            "redis+sentinel"
        };
        format!("{scheme}://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The three sentinels' (plain) ports.
    #[must_use]
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The three sentinels' TLS ports (empty without TLS).
    #[must_use]
    pub fn sentinel_tls_ports(&self) -> Vec<u16> {
        self.sentinels.iter().filter_map(|s| s.tls_port).collect()
    }

    /// The port of the current primary (as of the last failover this handle
    /// waited for).
    #[must_use]
    pub fn primary_port(&self) -> u16 {
        self.primary_port
    }

    /// The ports of the data servers (primary and replica, in start order;
    /// TLS ports with [`TestSentinel::start_tls`]).
    #[must_use]
    pub fn data_ports(&self) -> Vec<u16> {
        self.servers.iter().map(|s| self.known_port(s)).collect()
    }

    /// SIGKILLs the current primary.
    pub fn kill_primary(&mut self) {
        let port = self.admin_port(self.primary_port);
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
                let addr: redis::RedisResult<Option<(String, u16)>> =
                    self.sentinel_con(s.port).and_then(|mut c| {
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
                    let master = self.sentinel_master(s.port).map_err(|e| e.to_string())?;
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
                let info: String = self
                    .data_con(self.admin_port(new))
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
        let primary_admin = self.admin_port(primary);
        self.servers
            .iter_mut()
            .find(|s| s.port() != primary_admin)
            .expect("a data server other than the primary")
            .restart_as_replica_of(primary);
    }
}

/// [`super::connect`], then `AUTH password` if there is one.
fn connect_as(port: u16, password: Option<&str>) -> redis::RedisResult<redis::Connection> {
    let mut con = super::connect(port)?;
    if let Some(password) = password {
        redis::cmd("AUTH").arg(password).query::<()>(&mut con)?;
    }
    Ok(con)
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
/// not come up. With `tls` each also gets a TLS port, which is the one the
/// others know it by. With `auth` each has `requirepass` and `sentinel
/// auth-pass` for the data servers.
fn start_sentinels(
    primary_port: u16,
    replica_port: u16,
    tls: Option<&SentinelTls>,
    auth: Option<&Passwords>,
) -> Vec<Sentinel> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let plain_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let tls_ports: Option<Vec<u16>> = tls.map(|_| (0..3).map(|_| free_port()).collect());
        // The ports the sentinels know each other by.
        let ports = tls_ports.clone().unwrap_or_else(|| plain_ports.clone());
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
            let mut extra = format!(
                "sentinel myid {}\n{others}sentinel known-replica {MASTER_NAME} 127.0.0.1 {replica_port}\n",
                ids[i]
            );
            if let Some(a) = auth {
                let _ = write!(
                    extra,
                    "requirepass {}\nsentinel auth-pass {MASTER_NAME} {}\n",
                    quote(&a.sentinel),
                    quote(&a.data)
                );
            }
            let tls_port = tls_ports.as_ref().map(|t| t[i]);
            match start_sentinel(plain_ports[i], tls_port.zip(tls), primary_port, &extra) {
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

fn start_sentinel(
    port: u16,
    tls: Option<(u16, &SentinelTls)>,
    primary_port: u16,
    extra: &str,
) -> Result<Sentinel, String> {
    let dir = tempfile::Builder::new()
        .prefix("spool-sentinel-")
        .tempdir()
        .expect("temp dir for a sentinel");
    let conf: PathBuf = dir.path().join("sentinel.conf");
    let log = dir.path().join("sentinel.log");
    let mut tls_conf = String::new();
    if let Some((tls_port, files)) = tls {
        let write = |name: &str, pem: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a sentinel tls file");
            path
        };
        let ca = write("ca.pem", &files.ca);
        let cert = write("server.pem", &files.cert);
        let key = write("server.key", &files.key);
        tls_conf = format!(
            "tls-port {tls_port}\n\
             tls-cert-file \"{}\"\n\
             tls-key-file \"{}\"\n\
             tls-ca-cert-file \"{}\"\n\
             tls-auth-clients optional\n\
             tls-replication yes\n",
            cert.display(),
            key.display(),
            ca.display()
        );
    }
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
             {tls_conf}\
             {extra}",
            dir = dir.path().display(),
            log = log.display(),
        ),
    )
    .expect("write sentinel.conf");
    let mut process = ServerProcess::spawn(&[conf.as_os_str(), "--sentinel".as_ref()])?;
    process
        .wait_ready(&log, || answers_ping(port))
        .map_err(|e| format!("sentinel: {e}"))?;
    Ok(Sentinel {
        port,
        tls_port: tls.map(|(p, _)| p),
        _dir: dir,
        _process: process,
    })
}

/// A config-file value in double quotes, `"` and `\` escaped.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}
