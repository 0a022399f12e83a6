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
pub mod redis_server;
pub mod servers;
pub mod wait;

use std::time::Duration;

pub use redis_server::{Persistence, TestRedis, TestRedisBuilder};
pub use servers::{slot_of, TestCerts, TestCluster, TestSentinel};
pub use wait::wait_for;

use spool_client::Client;
use spool_worker::{Worker, WorkerBuilder};

/// A private Redis and a client on it.
pub struct TestEnv {
    /// The server (dropped last, after the client).
    pub redis: TestRedis,
    /// A client in the default namespace.
    pub client: Client,
}

impl TestEnv {
    /// Starts a Redis without persistence and connects.
    pub async fn start() -> Self {
        Self::start_with(Persistence::None).await
    }

    /// Starts a Redis with `persistence` and connects.
    pub async fn start_with(persistence: Persistence) -> Self {
        init_tracing();
        let redis = TestRedis::start_with(persistence);
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

    /// A raw connection for poking at Redis directly (garbage, inspection).
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection")
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
