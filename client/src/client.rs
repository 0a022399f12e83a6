//! The [`Client`] handle: a cloneable connection to Redis plus the settings
//! every producer, worker and admin call shares (namespace, payload limit,
//! retention).
//!
//! The connection ([`Connection`]) is multiplexed (one TCP connection per
//! node serves all clones) and heals on its own: it reconnects after Redis
//! restarts, follows a Sentinel failover and Cluster slot moves. Calls made
//! while Redis is away fail fast with [`Error::Redis`](crate::Error::Redis)
//! instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use crate::admin::Admin;
use crate::connection::{Connection, Connector, TlsFiles, Topology};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
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
    tls: TlsFiles,
    durability: Durability,
    webhook_hosts: Vec<String>,
    middleware: crate::middleware::Added,
    keyring: Option<Keyring>,
}

impl ClientBuilder {
    /// Adds an enqueue middleware: it runs before each job this client
    /// enqueues, after those added before it ([`crate::middleware`]).
    #[must_use]
    pub fn middleware(mut self, m: impl crate::middleware::EnqueueMiddleware) -> Self {
        self.middleware.0.push(Arc::new(m));
        self
    }

    /// The keys for payload encryption: job types marked encrypted
    /// ([`JobOptions::encrypted`](crate::JobOptions::encrypted)) are sealed
    /// with its active key at enqueue, and a worker built on this client
    /// opens them with any of its keys. Default: none (enqueueing an
    /// encrypted type fails). Binaries read it from `SPOOL_KEYRING`
    /// ([`Keyring::from_env`]).
    ///
    /// ```no_run
    /// # async fn demo() -> spool_client::Result<()> {
    /// use spool_client::{Client, Keyring};
    /// let keyring = Keyring::parse(&std::env::var("SPOOL_KEYRING").unwrap_or_default())?;
    /// let client = Client::builder("redis://127.0.0.1:6379").keyring(keyring).connect().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// TLS files for `rediss://` URLs: a CA to trust and a client
    /// certificate. Default: none (the public web roots are trusted).
    /// Binaries read them from `REDIS_CA_FILE`, `REDIS_CLIENT_CERT_FILE`
    /// and `REDIS_CLIENT_KEY_FILE` ([`TlsFiles::from_env`]).
    #[must_use]
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = files;
        self
    }

    /// The CA certificate (PEM file) to trust for `rediss://`.
    #[must_use]
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.ca = Some(path.into());
        self
    }

    /// A client certificate and its key (PEM files), for servers that
    /// require one (`tls-auth-clients yes`).
    #[must_use]
    pub fn tls_client_cert_files(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// How many replicas must have a write before enqueue (and the worker's
    /// finishing calls) report success. Default [`Durability::Primary`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The hosts webhook URLs may name ([`EnqueueOptions::webhook`](crate::EnqueueOptions::webhook)):
    /// an enqueue naming another fails. Exact host names (case-insensitive)
    /// or `*.example.com` for its subdomains. Default: any host.
    #[must_use]
    pub fn webhook_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.webhook_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

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
        self.durability.check()?;
        let connector = Connector::new(&self.url, &self.tls, self.response_timeout)?;
        let conn = connector.shared().await?;
        connector.check_auth(&conn).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                global: GlobalKeys::new(&self.namespace),
                namespace: self.namespace,
                max_payload_bytes: self.max_payload_bytes,
                retention: self.retention,
                durability: self.durability,
                webhook_hosts: self.webhook_hosts,
                keyring: self.keyring,
                connector,
                conn,
                waiters: Arc::default(),
                pickup_owed: crate::runtime::PickupOwed::default(),
                middleware: self.middleware.0.into(),
                #[cfg(feature = "testing")]
                recorder: None,
            }),
        })
    }
}

/// A cloneable handle to Spool in one Redis, for producers: enqueue jobs.
/// It also hands out the admin API ([`Client::admin`]) and, for the worker,
/// the runtime protocol ([`Client::runtime`]).
///
/// In unit tests, `testing::FakeClient` (feature `testing`) hands out a
/// `Client` with no Redis behind it that records what is enqueued.
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
    durability: Durability,
    webhook_hosts: Vec<String>,
    /// Keys for payload encryption, if configured.
    keyring: Option<Keyring>,
    connector: Connector,
    conn: Connection,
    waiters: Arc<crate::waiters::Waiters>,
    /// Pick-up latency (ms) of jobs claimed but not yet counted in their
    /// queue's stats, by ready key: the next claim sends it (see
    /// `Runtime::claim`).
    pickup_owed: crate::runtime::PickupOwed,
    /// Enqueue middleware, outermost first.
    middleware: crate::middleware::Chain,
    /// Set on a fake client (`crate::testing`): enqueues are recorded here
    /// instead of going to Redis.
    #[cfg(feature = "testing")]
    recorder: Option<Arc<crate::testing::Recorder>>,
}

#[cfg(feature = "testing")]
impl Client {
    /// A client with no Redis behind it whose enqueues go to `recorder`.
    pub(crate) fn recording(recorder: Arc<crate::testing::Recorder>) -> Self {
        Self::recording_with(recorder, None)
    }

    /// [`Client::recording`] with a keyring for encrypted job types.
    pub(crate) fn recording_with(
        recorder: Arc<crate::testing::Recorder>,
        keyring: Option<Keyring>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                global: GlobalKeys::new(NAMESPACE_DEFAULT),
                namespace: NAMESPACE_DEFAULT.to_owned(),
                max_payload_bytes: MAX_PAYLOAD_BYTES_DEFAULT,
                retention: Retention::default(),
                durability: Durability::Primary,
                webhook_hosts: Vec::new(),
                keyring,
                connector: Connector::fake(),
                conn: Connection::fake(),
                waiters: Arc::default(),
                pickup_owed: crate::runtime::PickupOwed::default(),
                middleware: Arc::default(),
                recorder: Some(recorder),
            }),
        }
    }

    /// The recorder of a fake client; `None` for a real one.
    pub(crate) fn recorder(&self) -> Option<&Arc<crate::testing::Recorder>> {
        self.inner.recorder.as_ref()
    }
}

impl Client {
    /// Whether this client has enqueue middleware.
    pub(crate) fn has_middleware(&self) -> bool {
        !self.inner.middleware.is_empty()
    }

    /// Runs this client's enqueue middleware over one job's options.
    pub(crate) fn through_middleware(
        &self,
        job_type: &str,
        args: &serde_json::value::RawValue,
        opts: &mut crate::EnqueueOptions,
    ) -> Result<()> {
        if self.inner.middleware.is_empty() {
            return Ok(());
        }
        crate::middleware::apply(&self.inner.middleware, job_type, args, opts)
    }
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
            tls: TlsFiles::default(),
            durability: Durability::Primary,
            webhook_hosts: Vec::new(),
            middleware: crate::middleware::Added::default(),
            keyring: None,
        }
    }

    /// The keyring given to [`ClientBuilder::keyring`], if any.
    #[must_use]
    pub fn keyring(&self) -> Option<&Keyring> {
        self.inner.keyring.as_ref()
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
    #[doc(hidden)]
    pub fn runtime(&self) -> crate::runtime::Runtime {
        crate::runtime::Runtime::new(self.clone())
    }

    /// A clone of the shared connection, for commands of your own (health
    /// checks, inspection). Don't run blocking commands on it: every clone
    /// shares it.
    #[must_use]
    pub fn connection(&self) -> Connection {
        self.inner.conn.clone()
    }

    /// The Redis deployment the URL named.
    #[must_use]
    pub fn topology(&self) -> Topology {
        self.inner.connector.topology()
    }

    /// Pick-up latency claimed jobs owe their queues' stats.
    pub(crate) fn pickup_owed(&self) -> &crate::runtime::PickupOwed {
        &self.inner.pickup_owed
    }

    /// The `wait` calls of this client (see `waiters`).
    pub(crate) fn waiters(&self) -> &Arc<crate::waiters::Waiters> {
        &self.inner.waiters
    }

    /// A pub/sub connection of its own (see `Connector::pubsub`).
    ///
    /// # Errors
    /// [`Error::Connect`] when no server answers.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        self.inner.connector.pubsub().await
    }

    /// The hosts webhook URLs may name (empty: any).
    pub(crate) fn webhook_hosts(&self) -> &[String] {
        &self.inner.webhook_hosts
    }

    /// The replication level writes wait for.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// With [`Durability::Replicated`], waits until enough replicas of the
    /// primary holding `key` have every write made so far on this
    /// connection; otherwise returns at once.
    pub(crate) async fn wait_replicated(&self, key: &str, op: &'static str) -> Result<()> {
        let Some(cmd) = self.inner.durability.wait_cmd() else {
            return Ok(());
        };
        let acked: i64 = self
            .connection()
            .command_at_key(key, &cmd)
            .await
            .and_then(|v| redis::from_redis_value(v).map_err(Into::into))
            .map_err(Error::redis(op))?;
        self.inner.durability.check_acked(op, acked)
    }

    /// Opens a dedicated connection for blocking commands (a blocking pop
    /// would stall every other call on the shared one).
    pub(crate) async fn dedicated_connection(&self, block_for: Duration) -> Result<Connection> {
        self.inner
            .connector
            .dedicated(&self.inner.conn, block_for)
            .await
    }

    /// Redis's clock in milliseconds since the Unix epoch (the one clock of
    /// DESIGN invariant 3).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn redis_time_ms(&self) -> Result<i64> {
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.connection())
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
        let mut info_cmd = redis::cmd("INFO");
        info_cmd.arg("memory").arg("persistence");
        // On Cluster every primary is asked: one evicting node loses jobs.
        let infos = self
            .connection()
            .on_every_primary(&info_cmd)
            .await
            .map_err(Error::redis("INFO"))?;
        let mut policy = "unknown".to_owned();
        let mut aof = !infos.is_empty();
        for info in &infos {
            let info: String = redis::from_redis_value_ref(info).map_err(Error::parse("INFO"))?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            };
            let node_policy = field("maxmemory_policy").unwrap_or_else(|| "unknown".to_owned());
            if node_policy != "noeviction" && node_policy != "unknown" {
                return Err(Error::UnsafeServer(format!(
                    "redis maxmemory-policy is {node_policy:?}; Spool needs \"noeviction\" because \
                     an evicted key silently loses or corrupts queued jobs. Fix: \
                     `redis-cli CONFIG SET maxmemory-policy noeviction` (and set it in redis.conf)"
                )));
            }
            policy = node_policy;
            aof &= field("aof_enabled").is_some_and(|v| v == "1");
        }
        // CONFIG may be disabled on managed Redis; then we cannot tell about RDB.
        let mut save_cmd = redis::cmd("CONFIG");
        save_cmd.arg("GET").arg("save");
        let save: Option<Vec<String>> = self
            .connection()
            .on_every_primary(&save_cmd)
            .await
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|v| redis::from_redis_value(v).ok());
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

/// How far a write must have travelled before Spool reports it done.
///
/// Redis replicates asynchronously: a primary that dies right after
/// answering can take the last writes with it when a replica is promoted.
/// `Replicated` closes most of that window with `WAIT`: after the write the
/// client waits until `replicas` replicas acknowledged it, or `timeout`
/// passes, in which case the call returns [`Error::NotReplicated`] (the
/// write happened on the primary and may or may not survive a failover:
/// the job's state is unknown, as after a timeout). It is not a consensus
/// commit: a replica that acknowledged can still lose the write if it is not
/// the one promoted. See PROTOCOL.md, "Durability".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Success when the primary has the write (Redis's default).
    #[default]
    Primary,
    /// Success when at least `replicas` replicas also have it.
    Replicated {
        /// Replicas that must acknowledge (at least 1).
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Durability {
    fn check(self) -> Result<()> {
        match self {
            Self::Replicated { replicas: 0, .. } => Err(Error::InvalidArgument(
                "replicated durability needs at least 1 replica".to_owned(),
            )),
            Self::Replicated { timeout, .. } if timeout.is_zero() => Err(Error::InvalidArgument(
                "replicated durability needs a timeout above zero (WAIT 0 would wait forever)"
                    .to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// The `WAIT` command for this level, if any.
    pub(crate) fn wait_cmd(self) -> Option<redis::Cmd> {
        match self {
            Self::Primary => None,
            Self::Replicated { replicas, timeout } => {
                let mut cmd = redis::cmd("WAIT");
                cmd.arg(replicas).arg(
                    u64::try_from(timeout.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
                Some(cmd)
            }
        }
    }

    /// Checks `WAIT`'s reply (replicas that acknowledged).
    pub(crate) fn check_acked(self, op: &'static str, acked: i64) -> Result<()> {
        match self {
            Self::Replicated { replicas, timeout } if acked < i64::from(replicas) => {
                Err(Error::NotReplicated {
                    op,
                    wanted: replicas,
                    acked: u32::try_from(acked.max(0)).unwrap_or(0),
                    timeout,
                })
            }
            _ => Ok(()),
        }
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
