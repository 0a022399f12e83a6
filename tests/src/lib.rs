//! # spool-tests
//!
//! The shared test harness: [`TestEnv`] bundles a private Redis
//! ([`TestRedis`]), a client and a worker builder with short timings, so each
//! test is independent and parallel-safe. Integration, end-to-end and chaos
//! tests live in `tests/`; the benchmark binary `spool-bench` and the child
//! processes `chaos-worker` and `cron-worker` in `src/bin/`.

// A harness panics on set-up failure by design (a test that cannot start
// has failed); documenting that on every helper would say nothing new.
#![allow(clippy::missing_panics_doc)]

pub mod dashboard;
pub mod handlers;
pub mod load;
pub mod redis_server;
pub mod servers;
pub mod stall_proxy;
pub mod wait;

use std::time::Duration;

pub use redis_server::{Persistence, TestRedis, TestRedisBuilder};
pub use servers::{slot_of, TestCerts, TestCluster, TestSentinel};
pub use wait::wait_for;

use spool_client::Client;
use spool_worker::{Worker, WorkerBuilder};

/// The deployment the core tests run on, from `SPOOL_TEST_TOPOLOGY`:
/// `single` (default) or `cluster` (3 primaries). `.ci/run` runs the core
/// suites on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One redis-server.
    Single,
    /// A 3-primary Redis Cluster.
    Cluster,
}

impl Topology {
    /// The topology `SPOOL_TEST_TOPOLOGY` names.
    #[must_use]
    pub fn from_env() -> Self {
        match std::env::var("SPOOL_TEST_TOPOLOGY").as_deref() {
            Ok("cluster") => Self::Cluster,
            Ok("single" | "") | Err(_) => Self::Single,
            Ok(other) => panic!("SPOOL_TEST_TOPOLOGY={other:?}: expected single or cluster"),
        }
    }
}

/// The Redis servers of one test.
#[derive(Debug)]
pub enum TestServer {
    /// One redis-server.
    Single(TestRedis),
    /// A Redis Cluster.
    Cluster(TestCluster),
}

impl TestServer {
    /// The URL clients connect with.
    #[must_use]
    pub fn url(&self) -> String {
        match self {
            Self::Single(r) => r.url(),
            Self::Cluster(c) => c.url(),
        }
    }

    /// A data directory of this test (logs of child processes go here).
    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        match self {
            Self::Single(r) => r.dir(),
            Self::Cluster(c) => c.dir(),
        }
    }

    /// The single server; panics on Cluster (the test needs one node:
    /// restarts, kills, ports).
    pub fn single(&mut self) -> &mut TestRedis {
        match self {
            Self::Single(r) => r,
            Self::Cluster(_) => {
                panic!("this test needs a single node (SPOOL_TEST_TOPOLOGY=single)")
            }
        }
    }

    /// The single server's port (see [`TestServer::single`]).
    pub fn port(&mut self) -> u16 {
        self.single().port()
    }

    /// Restarts the single server (see [`TestServer::single`]).
    pub fn restart(&mut self) {
        self.single().restart();
    }

    /// Kills the single server (see [`TestServer::single`]).
    pub fn kill(&mut self) {
        self.single().kill();
    }
}

/// A private Redis (single node or Cluster, [`Topology::from_env`]) and a
/// client on it.
pub struct TestEnv {
    /// The servers (dropped last, after the client).
    pub redis: TestServer,
    /// A client in the default namespace.
    pub client: Client,
}

impl TestEnv {
    /// Starts the topology of `SPOOL_TEST_TOPOLOGY`, without persistence,
    /// and connects.
    pub async fn start() -> Self {
        init_tracing();
        let redis = match Topology::from_env() {
            Topology::Single => TestServer::Single(TestRedis::start()),
            Topology::Cluster => TestServer::Cluster(TestCluster::start(3, 0)),
        };
        Self::connect(redis).await
    }

    /// Starts a single node with `persistence` and connects (restart tests
    /// are about one server, whatever the topology of the run).
    pub async fn start_with(persistence: Persistence) -> Self {
        init_tracing();
        if persistence == Persistence::None {
            return Self::start().await;
        }
        Self::connect(TestServer::Single(TestRedis::start_with(persistence))).await
    }

    async fn connect(redis: TestServer) -> Self {
        let client = Client::connect(&redis.url())
            .await
            .expect("connect to test redis");
        Self { redis, client }
    }

    /// A worker builder with timings scaled down for tests (lease 2 s,
    /// heartbeat 200 ms, maintenance every 200 ms, 5 s shutdown grace).
    pub fn worker(&self) -> WorkerBuilder {
        Worker::builder(self.client.clone()).configure(fast_config)
    }

    /// Makes `queue` write every job event (level all), its stream capped at
    /// 100,000 entries: the chaos tests count `enqueued`, `started` and
    /// `retrying` events.
    pub async fn all_events(&self, queue: &str) {
        self.client
            .admin()
            .configure_events(
                queue,
                spool_client::EventsConfig {
                    level: spool_client::EventLevel::All,
                    max_len: 100_000,
                },
            )
            .await
            .expect("configure events");
    }

    /// A connection of its own for poking at Redis directly (garbage,
    /// inspection); it routes by key on Cluster.
    pub async fn raw(&self) -> spool_client::Connection {
        Client::connect(&self.redis.url())
            .await
            .expect("raw connection")
            .connection()
    }

    /// Moves the deadline of leased job `id`'s claim (the member
    /// `worker|start` of `active` its lease `token|worker|start` names)
    /// into the past, as if its worker had stopped extending it: the
    /// reaper's next pass returns it (and any other lease of that claim).
    pub async fn expire_lease(&self, queue: &str, id: &str) {
        let keys = self.client.queue_keys(queue).expect("queue name");
        let mut raw = self.raw().await;
        let lease: String = redis::cmd("HGET")
            .arg(&keys.leases)
            .arg(id)
            .query_async(&mut raw)
            .await
            .expect("lease");
        let mut parts = lease.splitn(4, '|').skip(1);
        let claim = format!(
            "{}|{}",
            parts.next().expect("worker"),
            parts.next().expect("start")
        );
        let updated: u64 = redis::cmd("ZADD")
            .arg(&keys.active)
            .arg("XX")
            .arg("CH")
            .arg(1)
            .arg(&claim)
            .query_async(&mut raw)
            .await
            .expect("ZADD");
        assert_eq!(updated, 1, "claim {claim} of job {id} not in active");
    }
}

/// A worker running in the background of a test.
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<spool_worker::Result<()>>,
}

impl RunningWorker {
    /// Spawns `worker.run_until(..)` until [`RunningWorker::stop`].
    #[must_use]
    pub fn start(worker: Worker) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run_until(async {
            let _ = stopped.await;
        }));
        Self { stop, handle }
    }

    /// Whether the worker has returned by itself (an operator's stop
    /// signal, or an error).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Shuts the worker down gracefully; panics if it failed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.handle
            .await
            .expect("worker task panicked")
            .expect("worker returned an error");
    }
}

/// Shortens every interval of a worker config for tests.
pub fn fast_config(c: &mut spool_worker::WorkerConfig) {
    c.lease = Duration::from_secs(2);
    c.heartbeat_interval = Duration::from_millis(200);
    c.process_ttl = Duration::from_secs(2);
    c.idle_wait = Duration::from_millis(500);
    c.scheduler_interval = Duration::from_millis(500);
    c.reaper_interval = Duration::from_millis(200);
    c.trimmer_interval = Duration::from_secs(1);
    c.shutdown_timeout = Duration::from_secs(5);
    c.cron.refresh_interval = Duration::from_millis(500);
    c.cron.stale_after = Duration::from_secs(5);
}

/// Queue the cron tests' entries enqueue into. No test worker fetches it, so
/// the jobs stay in its ready list for the test to read.
pub const CRON_QUEUE: &str = "cron-out";

/// The cron table the `cron-worker` child processes share: one entry,
/// `every-second`, firing a `noop` job into [`CRON_QUEUE`] every second.
#[must_use]
pub fn cron_test_table() -> Vec<spool_client::CronEntry> {
    vec![
        spool_client::CronEntry::new("every-second", "* * * * * *", &handlers::Noop { n: 1 })
            .queue(CRON_QUEUE),
    ]
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The value after flag `name` in a test binary's arguments
/// (`--redis-url URL`), if given.
#[must_use]
pub fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
