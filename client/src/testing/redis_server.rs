//! [`RedisServer`]: a private `redis-server` for integration tests, on a
//! free loopback port with its own temp dir, stopped when dropped; and the
//! pieces it is built from ([`redis_server_binary`], [`free_port`],
//! [`RedisProcess`]), which Spool's own test harness shares.
//!
//! It never touches a Redis that already runs (6379 or any other): each
//! server is a child process of the test.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the server binary to run (a
/// `redis-server` or `valkey-server`); without it, `redis-server` on `PATH`.
pub const REDIS_SERVER_ENV: &str = "SPOOL_REDIS_SERVER";

/// How long [`RedisServer::start`] waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The server binary: [`REDIS_SERVER_ENV`] if set, else `redis-server` on
/// `PATH` (or in `/usr/bin`, `/usr/local/bin`, `/usr/sbin`).
///
/// # Errors
/// [`io::ErrorKind::NotFound`] saying how to install one, or that
/// [`REDIS_SERVER_ENV`] names no file.
pub fn redis_server_binary() -> io::Result<PathBuf> {
    find_redis_server(
        std::env::var_os(REDIS_SERVER_ENV),
        &std::env::var("PATH").unwrap_or_default(),
    )
}

/// [`redis_server_binary`] given the variable's value and `PATH`.
fn find_redis_server(named: Option<std::ffi::OsString>, path: &str) -> io::Result<PathBuf> {
    if let Some(p) = named.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{REDIS_SERVER_ENV}={} is not a file", p.display()),
        ));
    }
    let found = path
        .split(':')
        .chain(["/usr/bin", "/usr/local/bin", "/usr/sbin"])
        .map(|dir| Path::new(dir).join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "redis-server not found on PATH: install it (e.g. `sudo apt-get install -y \
                     redis-server`, `brew install redis`) or set {REDIS_SERVER_ENV} to a \
                     redis-server or valkey-server binary"
                ),
            )
        });
    found
}

/// A free TCP port on 127.0.0.1. Another process can take it before the
/// server binds it: [`RedisServer::start`] retries on a fresh port.
///
/// # Errors
/// When no loopback port can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a plain-TCP server on `127.0.0.1:port` answers `PING`. A
/// `-NOAUTH` reply counts: the server is up and wants a password.
#[must_use]
pub fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

/// A server child process (standard streams closed), killed (`SIGKILL`)
/// and reaped when dropped.
#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
}

impl RedisProcess {
    /// Spawns `binary args..`.
    ///
    /// # Errors
    /// The spawn error, naming the binary.
    pub fn spawn<S: AsRef<OsStr>>(binary: &Path, args: &[S]) -> io::Result<Self> {
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", binary.display())))?;
        Ok(Self { child: Some(child) })
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Polls `ready` every 5 ms until it is true.
    ///
    /// # Errors
    /// When the process exits first (with the last line of `log`, the
    /// server's log file) or `within` passes.
    pub fn wait_ready(
        &mut self,
        within: Duration,
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Err(io::Error::other(format!(
                    "server exited with {status}: {}",
                    last_log_line(log)
                )));
            }
            if ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("server did not answer within {within:?}"),
        ))
    }

    /// `SIGKILL` and reap (nothing is flushed beyond what AOF already has).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last line of a server log, for error messages.
fn last_log_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

/// A private `redis-server` on `127.0.0.1` and a free port, with its own
/// temp dir, no persistence and `maxmemory-policy noeviction`; killed and
/// its dir removed when dropped.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spool_client::{testing::RedisServer, Client};
/// let redis = RedisServer::start()?;
/// let client = Client::connect(&redis.url()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    // Dropped after `process` (fields drop in order): the server is gone
    // before its dir is removed.
    process: RedisProcess,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING` (up to 10 s; five
    /// tries on fresh ports when another process takes the port first).
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] when there is no `redis-server` (see
    /// [`redis_server_binary`]); the last start failure otherwise.
    pub fn start() -> io::Result<Self> {
        let binary = redis_server_binary()?;
        let dir = tempfile::Builder::new().prefix("spool-redis-").tempdir()?;
        let log = dir.path().join("redis.log");
        let mut last = io::Error::other("not started");
        for _ in 0..5 {
            let port = free_port()?;
            let port_s = port.to_string();
            let args: [&OsStr; 18] = [
                "--port".as_ref(),
                port_s.as_ref(),
                "--bind".as_ref(),
                "127.0.0.1".as_ref(),
                "--dir".as_ref(),
                dir.path().as_os_str(),
                "--logfile".as_ref(),
                log.as_os_str(),
                "--save".as_ref(),
                "".as_ref(),
                "--appendonly".as_ref(),
                "no".as_ref(),
                "--daemonize".as_ref(),
                "no".as_ref(),
                "--maxmemory-policy".as_ref(),
                "noeviction".as_ref(),
                "--protected-mode".as_ref(),
                "yes".as_ref(),
            ];
            let mut process = RedisProcess::spawn(&binary, &args)?;
            match process.wait_ready(START_TIMEOUT, &log, || answers_ping(port)) {
                Ok(()) => return Ok(Self { port, process, dir }),
                Err(e) => last = e,
            }
        }
        Err(io::Error::new(
            last.kind(),
            format!("could not start {}: {last}", binary.display()),
        ))
    }

    /// `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own directory (its log is `redis.log` there).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server now (dropping it does the same).
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::{find_redis_server, REDIS_SERVER_ENV};

    #[test]
    fn a_missing_server_binary_is_a_clear_not_found_error() {
        let err = find_redis_server(Some("/nonexistent/redis-server".into()), "")
            .expect_err("no such file");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains(REDIS_SERVER_ENV), "{err}");
    }
}
