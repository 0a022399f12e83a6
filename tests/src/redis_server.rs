//! `TestRedis`: a private redis-server (or valkey-server, see
//! [`crate::servers::server_binary`]) per test, on a free loopback port with
//! its own data directory, stopped when dropped.
//!
//! Tests never share state and never touch a Redis that happens to run on
//! 6379. The server can be restarted on the same port and directory (with AOF
//! on, `appendfsync always`) to test that acknowledged enqueues survive.
//! [`TestRedis::builder`] adds TLS, ACL users, a password, replication or
//! cluster mode.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::servers::{self, ServerProcess, TestCerts};

/// How the server persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk (fastest; most tests).
    None,
    /// AOF with `appendfsync always`: every acknowledged write is on disk.
    AofAlways,
}

/// A running redis-server owned by one test.
#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    /// The TLS port when the server also listens on a plain port
    /// ([`TestRedisBuilder::keep_plain_port`]).
    extra_tls_port: Option<u16>,
    bus_port: Option<u16>,
    dir: tempfile::TempDir,
    options: Options,
    process: Option<ServerProcess>,
}

/// What [`TestRedisBuilder`] collected.
#[derive(Debug, Clone)]
struct Options {
    persistence: Persistence,
    tls: Option<Tls>,
    acl_users: Vec<String>,
    default_user_off: bool,
    requirepass: Option<String>,
    replica_of: Option<u16>,
    cluster: bool,
    config: Vec<(String, String)>,
}

/// TLS settings: the PEM files are copied into the server's own dir, so the
/// server does not depend on the [`TestCerts`] living as long as it does.
#[derive(Debug, Clone)]
struct Tls {
    require_client_cert: bool,
    keep_plain_port: bool,
    ca: Vec<u8>,
    client_cert: Vec<u8>,
    client_key: Vec<u8>,
    server_cert: Vec<u8>,
    server_key: Vec<u8>,
}

/// Options for a [`TestRedis`]; [`TestRedisBuilder::start`] starts it.
#[derive(Debug, Clone)]
#[must_use]
pub struct TestRedisBuilder {
    options: Options,
}

impl TestRedisBuilder {
    /// Persistence (default [`Persistence::None`]).
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.options.persistence = persistence;
        self
    }

    /// TLS only: `--tls-port P --port 0` with the server certificate of
    /// `certs`, clients verified against its CA when they present a
    /// certificate (`--tls-auth-clients optional`). [`TestRedis::url`] is
    /// then `rediss://127.0.0.1:P`.
    pub fn tls(mut self, certs: &TestCerts) -> Self {
        let read = |p: PathBuf| std::fs::read(p).expect("read a test certificate");
        self.options.tls = Some(Tls {
            require_client_cert: false,
            keep_plain_port: false,
            ca: read(certs.ca_cert()),
            client_cert: read(certs.client_cert()),
            client_key: read(certs.client_key()),
            server_cert: read(certs.server_cert()),
            server_key: read(certs.server_key()),
        });
        self
    }

    /// With [`TestRedisBuilder::tls`]: clients must present a certificate
    /// signed by the CA (`--tls-auth-clients yes`).
    pub fn require_client_cert(mut self) -> Self {
        self.options
            .tls
            .as_mut()
            .expect("require_client_cert() needs tls(&certs) first")
            .require_client_cert = true;
        self
    }

    /// With [`TestRedisBuilder::tls`]: the server keeps a plain port too
    /// (`--port P --tls-port T`) and uses TLS for replication
    /// (`tls-replication yes`) and, in cluster mode, for the cluster bus
    /// (`tls-cluster yes`). [`TestRedis::port`], [`TestRedis::url`] and
    /// [`TestRedis::client`] are then the plain port (the harness's own
    /// admin connections), [`TestRedis::tls_port`] and
    /// [`TestRedis::tls_url`] the TLS one. A replica of such a server
    /// ([`TestRedisBuilder::replica_of`]) must be given its TLS port.
    pub fn keep_plain_port(mut self) -> Self {
        self.options
            .tls
            .as_mut()
            .expect("keep_plain_port() needs tls(&certs) first")
            .keep_plain_port = true;
        self
    }

    /// An ACL user, as in redis.conf after `user `, e.g.
    /// `alice on >secret ~spool:* ~{spool}:* +@all -@dangerous`.
    pub fn acl_user(mut self, rules: &str) -> Self {
        self.options.acl_users.push(rules.to_owned());
        self
    }

    /// Turns the `default` user off: every client must authenticate as an
    /// [`TestRedisBuilder::acl_user`].
    pub fn default_user_off(mut self) -> Self {
        self.options.default_user_off = true;
        self
    }

    /// `requirepass`: the `default` user's password.
    pub fn requirepass(mut self, password: &str) -> Self {
        self.options.requirepass = Some(password.to_owned());
        self
    }

    /// A replica of the server on `127.0.0.1:port`; [`TestRedisBuilder::start`]
    /// returns once the replication link is up.
    pub fn replica_of(mut self, port: u16) -> Self {
        self.options.replica_of = Some(port);
        self
    }

    /// Cluster mode: `cluster-enabled yes`, the node's own
    /// `cluster-config-file` in its dir, `cluster-node-timeout 2000` and a
    /// free cluster bus port. [`crate::TestCluster`] joins such nodes.
    pub fn cluster_enabled(mut self) -> Self {
        self.options.cluster = true;
        self
    }

    /// Any other config directive (written into the config file).
    pub fn config(mut self, name: &str, value: &str) -> Self {
        self.options
            .config
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the server; panics if it does not answer within 10 s (5 tries
    /// on fresh ports).
    #[must_use]
    pub fn start(self) -> TestRedis {
        let dir = tempfile::Builder::new()
            .prefix("spool-redis-")
            .tempdir()
            .expect("temp dir");
        let dual = self.options.tls.as_ref().is_some_and(|t| t.keep_plain_port);
        let mut server = TestRedis {
            port: servers::free_port(),
            extra_tls_port: dual.then(servers::free_port),
            bus_port: self.options.cluster.then(servers::free_port),
            dir,
            options: self.options,
            process: None,
        };
        server.write_files();
        let mut last_err = String::new();
        // The free port can be taken by another test between probe and bind: retry.
        for _ in 0..5 {
            match server.spawn() {
                Ok(()) => {
                    server.wait_for_replication();
                    return server;
                }
                Err(e) => {
                    last_err = e;
                    server.kill();
                    server.port = servers::free_port();
                    server.extra_tls_port = dual.then(servers::free_port);
                    server.bus_port = server.options.cluster.then(servers::free_port);
                }
            }
        }
        panic!(
            "could not start {}: {last_err}",
            servers::server_binary().display()
        );
    }
}

impl TestRedis {
    /// Starts a server without persistence.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(Persistence::None)
    }

    /// Starts a server with the given persistence.
    #[must_use]
    pub fn start_with(persistence: Persistence) -> Self {
        Self::builder().persistence(persistence).start()
    }

    /// Options beyond persistence: TLS, ACL users, password, replication,
    /// cluster mode.
    pub fn builder() -> TestRedisBuilder {
        TestRedisBuilder {
            options: Options {
                persistence: Persistence::None,
                tls: None,
                acl_users: Vec::new(),
                default_user_off: false,
                requirepass: None,
                replica_of: None,
                cluster: false,
                config: Vec::new(),
            },
        }
    }

    fn tls_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("tls").join(name)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("spool.conf")
    }

    /// The config file (ACL users, password, extra directives) and the TLS
    /// files: written once, kept across restarts.
    fn write_files(&self) {
        let o = &self.options;
        let mut conf = String::from("# written by spool-tests\n");
        if o.default_user_off {
            conf.push_str("user default off\n");
        }
        for user in &o.acl_users {
            conf.push_str("user ");
            conf.push_str(user);
            conf.push('\n');
        }
        if let Some(pass) = &o.requirepass {
            let _ = writeln!(conf, "requirepass {}", quote(pass));
        }
        for (name, value) in &o.config {
            let _ = writeln!(conf, "{name} {}", quote(value));
        }
        std::fs::write(self.conf_path(), conf).expect("write the server config file");
        if let Some(tls) = &o.tls {
            std::fs::create_dir_all(self.dir.path().join("tls")).expect("create the tls dir");
            for (name, pem) in [
                ("ca.pem", &tls.ca),
                ("server.pem", &tls.server_cert),
                ("server.key", &tls.server_key),
            ] {
                std::fs::write(self.tls_path(name), pem).expect("write a tls file");
            }
        }
    }

    fn args(&self) -> Vec<OsString> {
        let o = &self.options;
        let dir = self.dir.path();
        let mut args: Vec<OsString> = vec![self.conf_path().into()];
        let mut push = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            args.push(format!("--{name}").into());
            args.push(value.as_ref().to_owned());
        };
        match &o.tls {
            None => push("port", &self.port.to_string()),
            Some(tls) => {
                match self.extra_tls_port {
                    None => {
                        push("port", &"0");
                        push("tls-port", &self.port.to_string());
                    }
                    Some(tls_port) => {
                        push("port", &self.port.to_string());
                        push("tls-port", &tls_port.to_string());
                    }
                }
                push("tls-cert-file", &self.tls_path("server.pem"));
                push("tls-key-file", &self.tls_path("server.key"));
                push("tls-ca-cert-file", &self.tls_path("ca.pem"));
                push(
                    "tls-auth-clients",
                    &if tls.require_client_cert {
                        "yes"
                    } else {
                        "optional"
                    },
                );
                if o.replica_of.is_some() || tls.keep_plain_port {
                    push("tls-replication", &"yes");
                }
                if o.cluster {
                    push("tls-cluster", &"yes");
                }
            }
        }
        push("bind", &"127.0.0.1");
        push("dir", &dir);
        push("logfile", &dir.join("redis.log"));
        push("save", &"");
        push("daemonize", &"no");
        push("maxmemory-policy", &"noeviction");
        push("protected-mode", &"yes");
        // Replicas sync at once (the default waits 5 s for more replicas).
        push("repl-diskless-sync-delay", &"0");
        // A replica's offset moves within 1 s of its sync even without writes
        // (a cluster lists replicas in CLUSTER SLOTS only once it has).
        push("repl-ping-replica-period", &"1");
        match o.persistence {
            Persistence::None => push("appendonly", &"no"),
            Persistence::AofAlways => {
                push("appendonly", &"yes");
                push("appendfsync", &"always");
            }
        }
        if let Some(primary) = o.replica_of {
            push("replicaof", &format!("127.0.0.1 {primary}"));
        }
        if let Some(bus) = self.bus_port {
            push("cluster-enabled", &"yes");
            push("cluster-config-file", &dir.join("nodes.conf"));
            push("cluster-node-timeout", &"2000");
            push("cluster-port", &bus.to_string());
            push("cluster-announce-ip", &"127.0.0.1");
        }
        args
    }

    fn spawn(&mut self) -> Result<(), String> {
        let args = self.args();
        let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
        let mut process = ServerProcess::spawn(&args)?;
        let ready = process.wait_ready(&self.dir.path().join("redis.log"), || self.answers());
        self.process = Some(process);
        ready
    }

    /// Whether the server answers PING (over TLS when it is TLS only). A
    /// refusal for want of a password counts: the server is up.
    fn answers(&self) -> bool {
        if !self.tls_only() {
            return servers::answers_ping(self.port);
        }
        let Ok(client) = self.try_client(None) else {
            return false;
        };
        match client.get_connection_with_timeout(Duration::from_millis(300)) {
            Ok(mut con) => {
                let _ = con.set_read_timeout(Some(Duration::from_millis(300)));
                match redis::cmd("PING").query::<String>(&mut con) {
                    Ok(_) => true,
                    Err(e) => !(e.is_io_error() || e.is_timeout()),
                }
            }
            Err(e) => !(e.is_io_error() || e.is_connection_refusal() || e.is_timeout()),
        }
    }

    /// Once a replica's link to its primary is up (when there is one and
    /// the harness can authenticate).
    fn wait_for_replication(&self) {
        if self.options.replica_of.is_none()
            || (self.options.default_user_off && self.options.requirepass.is_none())
        {
            return;
        }
        let auth = self.options.requirepass.as_deref().map(|p| ("default", p));
        servers::poll(
            "the replica's link to its primary",
            Duration::from_secs(10),
            || {
                let info: String = self
                    .client_as_opt(auth)
                    .get_connection_with_timeout(Duration::from_secs(1))
                    .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c))
                    .map_err(|e| e.to_string())?;
                if info.contains("master_link_status:up") {
                    Ok(())
                } else {
                    Err(info)
                }
            },
        );
    }

    /// Whether the server listens on a TLS port only.
    fn tls_only(&self) -> bool {
        self.options.tls.is_some() && self.extra_tls_port.is_none()
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://127.0.0.1:PORT` with TLS
    /// only ([`TestRedisBuilder::keep_plain_port`]: the plain port).
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls_only() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port (the TLS port with TLS only, the plain port with
    /// [`TestRedisBuilder::keep_plain_port`]).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, with TLS.
    #[must_use]
    pub fn tls_port(&self) -> Option<u16> {
        self.options
            .tls
            .as_ref()
            .map(|_| self.extra_tls_port.unwrap_or(self.port))
    }

    /// `rediss://127.0.0.1:TLS_PORT`, with TLS.
    #[must_use]
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port().map(|p| format!("rediss://127.0.0.1:{p}"))
    }

    /// The cluster bus port, in cluster mode.
    #[must_use]
    pub fn cluster_bus_port(&self) -> Option<u16> {
        self.bus_port
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificates a client needs for this server with TLS: the CA, and
    /// the client certificate and key (presented only when required, see
    /// [`TestRedisBuilder::require_client_cert`]).
    #[must_use]
    pub fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.options.tls.as_ref().map(|tls| redis::TlsCertificates {
            client_tls: tls.require_client_cert.then(|| redis::ClientTlsConfig {
                client_cert: tls.client_cert.clone(),
                client_key: tls.client_key.clone(),
            }),
            root_cert: Some(tls.ca.clone()),
        })
    }

    /// A `redis::Client` for this server without credentials (with the TLS
    /// CA and client certificate when TLS is on).
    #[must_use]
    pub fn client(&self) -> redis::Client {
        self.client_as_opt(None)
    }

    /// A `redis::Client` authenticating as `user` with `password`.
    #[must_use]
    pub fn client_as(&self, user: &str, password: &str) -> redis::Client {
        self.client_as_opt(Some((user, password)))
    }

    fn client_as_opt(&self, auth: Option<(&str, &str)>) -> redis::Client {
        self.try_client(auth)
            .expect("a redis::Client for the test server")
    }

    fn try_client(&self, auth: Option<(&str, &str)>) -> redis::RedisResult<redis::Client> {
        let url = match auth {
            None => self.url(),
            Some((user, pass)) => {
                let scheme = if self.tls_only() { "rediss" } else { "redis" };
                format!(
                    "{scheme}://{}:{}@127.0.0.1:{}",
                    percent_encode(user),
                    percent_encode(pass),
                    self.port
                )
            }
        };
        match self.tls_certificates().filter(|_| self.tls_only()) {
            None => redis::Client::open(url),
            Some(certs) => {
                servers::certs::install_crypto_provider();
                redis::Client::build_with_tls(url, certs)
            }
        }
    }

    /// Kills the server (SIGKILL: nothing is flushed beyond what AOF already has).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Whether the server process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Starts the server again on the same port and directory, as a replica
    /// of `127.0.0.1:primary_port`; returns once the replication link is up.
    pub fn restart_as_replica_of(&mut self, primary_port: u16) {
        self.options.replica_of = Some(primary_port);
        self.restart();
        self.wait_for_replication();
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("server did not restart on port {}: {e}", self.port),
            }
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A config-file value in double quotes, `"` and `\` escaped (so `""`, spaces
/// and `>` survive).
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Percent-encodes everything but unreserved characters, for URL userinfo.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
