//! `TestRedis`: a private redis-server per test, on a free loopback port with
//! its own data directory, stopped when dropped.
//!
//! Tests never share state and never touch a Redis that happens to run on
//! 6379. The server can be restarted on the same port and directory (with AOF
//! on, `appendfsync always`) to test that acknowledged enqueues survive.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    dir: tempfile::TempDir,
    persistence: Persistence,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local addr").port()
}

fn redis_server_binary() -> PathBuf {
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
    panic!("redis-server not found: install it with `sudo apt-get install -y redis-server` (the README's test command does this)");
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
        let dir = tempfile::Builder::new()
            .prefix("spool-redis-")
            .tempdir()
            .expect("temp dir");
        let mut server = Self {
            port: free_port(),
            dir,
            persistence,
            child: None,
        };
        let mut last_err = String::new();
        // The free port can be taken by another test between probe and bind: retry.
        for _ in 0..5 {
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => {
                    last_err = e;
                    server.kill();
                    server.port = free_port();
                }
            }
        }
        panic!("could not start redis-server: {last_err}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(redis_server_binary());
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--maxmemory-policy")
            .arg("noeviction")
            .arg("--protected-mode")
            .arg("yes");
        match self.persistence {
            Persistence::None => {
                cmd.arg("--appendonly").arg("no");
            }
            Persistence::AofAlways => {
                cmd.arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg("always");
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("redis.log"))
                        .unwrap_or_default();
                    return Err(format!(
                        "redis-server exited with {status}: {}",
                        log.lines().last().unwrap_or("")
                    ));
                }
            }
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err("redis-server did not answer PING within 10 s".into())
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
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

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: nothing is flushed beyond what AOF already has).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = e;
                }
                Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
            }
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
