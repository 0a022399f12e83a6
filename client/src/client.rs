//! The [`Client`] handle: a cloneable connection to Redis plus the settings
//! every producer, worker and admin call shares (namespace, payload limit,
//! retention).
//!
//! The connection is a `redis::aio::ConnectionManager`: multiplexed (one TCP
//! connection serves all clones) and reconnecting on its own after Redis
//! restarts; calls made while Redis is away fail fast with
//! [`Error::Redis`](crate::Error::Redis) instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::admin::Admin;
use crate::error::{Error, Result};
use crate::keys::{validate_namespace, GlobalKeys, QueueKeys, NAMESPACE_DEFAULT};

/// Largest serialized job body accepted by default (512 KiB).
pub const MAX_PAYLOAD_BYTES_DEFAULT: usize = 512 * 1024;
/// How long a call may wait for Redis's reply by default.
pub const RESPONSE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// Retention limits: how much history Redis keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most dead jobs kept per queue; the oldest go first. Default 10,000.
    pub dead_max_jobs: u64,
    /// Dead jobs older than this are dropped. Default 180 days.
    pub dead_max_age: Duration,
    /// Error history entries kept per job. Default 10.
    pub error_history: u32,
    /// Per-minute stats kept. Default 24 hours.
    pub stats_window: Duration,
}

impl Retention {
    /// Default dead set size cap.
    pub const DEAD_MAX_JOBS_DEFAULT: u64 = 10_000;
    /// Default dead set age cap.
    pub const DEAD_MAX_AGE_DEFAULT: Duration = Duration::from_secs(180 * 24 * 3600);
    /// Default error history length.
    pub const ERROR_HISTORY_DEFAULT: u32 = 10;
    /// Default stats window.
    pub const STATS_WINDOW_DEFAULT: Duration = Duration::from_secs(24 * 3600);
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            dead_max_jobs: Self::DEAD_MAX_JOBS_DEFAULT,
            dead_max_age: Self::DEAD_MAX_AGE_DEFAULT,
            error_history: Self::ERROR_HISTORY_DEFAULT,
            stats_window: Self::STATS_WINDOW_DEFAULT,
        }
    }
}

/// Builds a [`Client`] with non-default settings.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    namespace: String,
    max_payload_bytes: usize,
    response_timeout: Duration,
    retention: Retention,
}

impl ClientBuilder {
    /// Key prefix, so several applications can share one Redis. Default `spool`.
    #[must_use]
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Largest serialized job body accepted; bigger jobs are refused before
    /// they reach Redis. Default 512 KiB.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// How long a call waits for Redis's reply. Default 10 s.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Retention limits used by the worker's maintenance and by `fail.lua`.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Connects to Redis.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad URL or namespace, [`Error::Redis`]
    /// when Redis cannot be reached.
    pub async fn connect(self) -> Result<Client> {
        validate_namespace(&self.namespace)?;
        let redis = redis::Client::open(self.url.as_str()).map_err(|e| {
            // Never echo a password: the URL is redacted, and so is the
            // parser's message in case it quotes the URL.
            let url = crate::redact_url(&self.url);
            let reason = e.to_string().replace(&self.url, &url);
            Error::InvalidArgument(format!("redis url {url:?}: {reason}"))
        })?;
        // Few, quick reconnect attempts per failing call: while Redis is away
        // a call fails within about a second (the caller decides whether to
        // retry) instead of hanging through a long retry ladder; the next
        // call starts a fresh reconnect.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(redis.clone(), config)
            .await
            .map_err(Error::redis("connect"))?;
        Ok(Client {
            inner: Arc::new(Inner {
                global: GlobalKeys::new(&self.namespace),
                namespace: self.namespace,
                max_payload_bytes: self.max_payload_bytes,
                retention: self.retention,
                response_timeout: self.response_timeout,
                redis,
                conn,
            }),
        })
    }
}

/// A cloneable handle to Spool in one Redis, for producers: enqueue jobs.
/// It also hands out the admin API ([`Client::admin`]) and, for the worker,
/// the runtime protocol ([`Client::runtime`]).
///
/// ```no_run
/// # async fn demo() -> spool_client::Result<()> {
/// let client = spool_client::Client::connect("redis://127.0.0.1:6379").await?;
/// let queues = client.admin().queues().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    global: GlobalKeys,
    max_payload_bytes: usize,
    retention: Retention,
    response_timeout: Duration,
    redis: redis::Client,
    conn: ConnectionManager,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with default settings.
    ///
    /// # Errors
    /// See [`ClientBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Starts building a client for the Redis at `url`.
    #[must_use]
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            namespace: NAMESPACE_DEFAULT.to_owned(),
            max_payload_bytes: MAX_PAYLOAD_BYTES_DEFAULT,
            response_timeout: RESPONSE_TIMEOUT_DEFAULT,
            retention: Retention::default(),
        }
    }

    /// The key namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The payload size limit in bytes.
    #[must_use]
    pub fn max_payload_bytes(&self) -> usize {
        self.inner.max_payload_bytes
    }

    /// Retention limits.
    #[must_use]
    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    /// Keys of `queue` (the name is validated).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`].
    pub fn queue_keys(&self, queue: &str) -> Result<QueueKeys> {
        crate::keys::validate_queue_name(queue)?;
        Ok(QueueKeys::new(&self.inner.namespace, queue))
    }

    /// Keys that belong to no single queue.
    #[must_use]
    pub fn global_keys(&self) -> &GlobalKeys {
        &self.inner.global
    }

    /// The admin API (queues, job sets, stats, processes).
    #[must_use]
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }

    /// The runtime protocol the worker drives (not for application code).
    #[must_use]
    pub fn runtime(&self) -> crate::runtime::Runtime {
        crate::runtime::Runtime::new(self.clone())
    }

    /// A clone of the shared multiplexed connection.
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Opens a dedicated connection for blocking commands (a blocking pop
    /// would stall every other call on the shared one).
    pub(crate) async fn dedicated_connection(
        &self,
        block_for: Duration,
    ) -> Result<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(block_for + self.inner.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        self.inner
            .redis
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(Error::redis("connect"))
    }

    /// Redis's clock in milliseconds since the Unix epoch (the one clock of
    /// DESIGN invariant 3).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn redis_time_ms(&self) -> Result<i64> {
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.conn())
            .await
            .map_err(Error::redis("TIME"))?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Checks that Redis will not silently lose queue state:
    /// `maxmemory-policy` must be `noeviction` (an evicted list or hash
    /// corrupts queues). Also reports whether persistence is on.
    ///
    /// # Errors
    /// [`Error::UnsafeServer`] naming the policy and how to fix it;
    /// [`Error::Redis`] if Redis cannot be asked.
    pub async fn check_server(&self) -> Result<ServerCheck> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .arg("persistence")
            .query_async(&mut self.conn())
            .await
            .map_err(Error::redis("INFO"))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let policy = field("maxmemory_policy").unwrap_or_else(|| "unknown".to_owned());
        if policy != "noeviction" && policy != "unknown" {
            return Err(Error::UnsafeServer(format!(
                "redis maxmemory-policy is {policy:?}; Spool needs \"noeviction\" because an \
                 evicted key silently loses or corrupts queued jobs. Fix: \
                 `redis-cli CONFIG SET maxmemory-policy noeviction` (and set it in redis.conf)"
            )));
        }
        let aof = field("aof_enabled").is_some_and(|v| v == "1");
        // CONFIG may be disabled on managed Redis; then we cannot tell about RDB.
        let save: Option<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .query_async(&mut self.conn())
            .await
            .ok();
        let rdb = save
            .as_ref()
            .and_then(|v| v.get(1))
            .map(|s| !s.trim().is_empty());
        Ok(ServerCheck {
            maxmemory_policy: policy,
            aof_enabled: aof,
            rdb_enabled: rdb,
        })
    }
}

/// What [`Client::check_server`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// The server's `maxmemory-policy`.
    pub maxmemory_policy: String,
    /// Whether AOF persistence is on.
    pub aof_enabled: bool,
    /// Whether RDB snapshots are configured (`None` when CONFIG is disabled).
    pub rdb_enabled: Option<bool>,
}

impl ServerCheck {
    /// True when neither AOF nor RDB is on: a Redis restart loses every job.
    #[must_use]
    pub fn persistence_off(&self) -> bool {
        !self.aof_enabled && self.rdb_enabled == Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::Client;

    #[tokio::test]
    async fn a_bad_url_is_refused_without_its_password() {
        for url in [
            "redis://:hunter2@[bad",
            "redis://u:hunter2@host:notaport",
            "nope://:hunter2@x",
        ] {
            let err = Client::connect(url).await.expect_err(url).to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("redis url"), "{err}");
        }
    }
}
