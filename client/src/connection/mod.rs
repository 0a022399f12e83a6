//! The connection to Redis, whatever the topology: one URL string selects a
//! single node (`redis://`, `rediss://` for TLS), a primary found through
//! Sentinel (`redis+sentinel://`) or a Redis Cluster (`redis+cluster://`).
//!
//! [`Connection`] is what every call runs on: cloneable, multiplexed, and it
//! recovers on its own (reconnects after a restart, follows a Sentinel
//! failover, follows Cluster slot moves). The redis crate does the work: its
//! `ConnectionManager`, `SentinelClient` and `cluster_async` client, with
//! rustls for TLS. What Spool adds is small and lives in the submodules:
//! re-asking Sentinel after a failover (`sentinel`), and sending a pipeline
//! whose commands span slots as its commands (`cluster`).

mod cluster;
mod sentinel;
pub(crate) mod url;

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use self::sentinel::SentinelConnection;
use self::url::{ClusterTarget, SentinelTarget, Target};
use crate::error::{Error, Result};

/// How a connect attempt or a reconnect may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// TLS material beyond the system's trust roots: a CA to trust (self-signed
/// or private PKI) and a client certificate for servers that require one.
/// PEM files; read when the client connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificate(s) to trust instead of the public roots.
    pub ca: Option<PathBuf>,
    /// PEM file of the client certificate (needs `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// The files named by `REDIS_CA_FILE`, `REDIS_CLIENT_CERT_FILE` and
    /// `REDIS_CLIENT_KEY_FILE` (unset or empty variables are skipped).
    #[must_use]
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ca: var("REDIS_CA_FILE"),
            client_cert: var("REDIS_CLIENT_CERT_FILE"),
            client_key: var("REDIS_CLIENT_KEY_FILE"),
        }
    }

    fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// Reads the files; errors name the file and the variable or option.
    fn load(&self) -> Result<Option<TlsCertificates>> {
        if self.is_empty() {
            return Ok(None);
        }
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                Error::InvalidArgument(format!("cannot read the {what} {}: {e}", path.display()))
            })
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: pem_certificates(
                    read(cert, "TLS client certificate (REDIS_CLIENT_CERT_FILE)")?,
                    cert,
                    "TLS client certificate (REDIS_CLIENT_CERT_FILE)",
                )?,
                client_key: pem_key(read(key, "TLS client key (REDIS_CLIENT_KEY_FILE)")?, key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidArgument(
                    "a TLS client certificate needs both the certificate and its key \
                     (REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE)"
                        .to_owned(),
                ))
            }
        };
        let root_cert = self
            .ca
            .as_ref()
            .map(|ca| {
                let what = "TLS CA file (REDIS_CA_FILE)";
                pem_certificates(read(ca, what)?, ca, what)
            })
            .transpose()?;
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

/// Checks that `pem` holds at least one PEM certificate and nothing
/// malformed (rustls would otherwise skip what it cannot read and fail
/// later, at the handshake, with a misleading "unknown issuer").
fn pem_certificates(pem: Vec<u8>, path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| {
            Error::InvalidArgument(format!(
                "the {what} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
        found += 1;
    }
    if found == 0 {
        return Err(Error::InvalidArgument(format!(
            "the {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(pem)
}

/// Checks that `pem` holds a PEM private key.
fn pem_key(pem: Vec<u8>, path: &std::path::Path) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::InvalidArgument(format!(
            "the TLS client key (REDIS_CLIENT_KEY_FILE) {} holds no usable PEM private key: {e}",
            path.display()
        ))
    })?;
    Ok(pem)
}

/// Opens connections to the Redis a URL names: the shared one and, for
/// blocking commands, dedicated ones.
#[derive(Clone)]
pub(crate) struct Connector {
    kind: ConnectorKind,
    response_timeout: Duration,
    /// The URL with its password hidden, for errors.
    shown: String,
}

#[derive(Clone)]
enum ConnectorKind {
    Single(redis::Client),
    Sentinel(SentinelTarget, Option<TlsCertificates>),
    // Boxed: a cluster client is ten times the size of the others.
    Cluster(
        Box<(
            redis::cluster::ClusterClient,
            ClusterTarget,
            Option<TlsCertificates>,
        )>,
    ),
    /// No Redis: a fake client's (see `crate::testing`).
    #[cfg(feature = "testing")]
    Fake,
}

impl Connector {
    /// Checks `url` and the TLS files; connects to nothing yet.
    pub(crate) fn new(url: &str, tls: &TlsFiles, response_timeout: Duration) -> Result<Self> {
        let bad = |reason: String| {
            Error::InvalidArgument(format!("redis url {:?}: {reason}", crate::redact_url(url)))
        };
        let target = url::parse(url).map_err(bad)?;
        let certs = tls.load()?;
        // rustls needs a process-wide crypto provider; the application may
        // have installed its own already, which is then kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls_url = match &target {
            Target::Single(info) => matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }),
            Target::Sentinel(t) => t.tls,
            Target::Cluster(t) => t.tls,
        };
        if certs.is_some() && !tls_url {
            return Err(bad(
                "TLS files are set but the URL is not a rediss URL: use rediss:// (or \
                 rediss+sentinel://, rediss+cluster://), or unset REDIS_CA_FILE and the client \
                 certificate"
                    .to_owned(),
            ));
        }
        let kind = match target {
            Target::Single(info) => {
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(info, certs),
                    None => redis::Client::open(info),
                }
                .map_err(|e| bad(e.to_string()))?;
                ConnectorKind::Single(client)
            }
            Target::Sentinel(target) => ConnectorKind::Sentinel(target, certs),
            Target::Cluster(target) => {
                let client = cluster_client(&target, certs.clone(), response_timeout)
                    .map_err(|e| bad(e.to_string()))?;
                ConnectorKind::Cluster(Box::new((client, target, certs)))
            }
        };
        Ok(Self {
            kind,
            response_timeout,
            shown: crate::redact_url(url),
        })
    }

    /// Which topology, for logs and the dashboard.
    pub(crate) fn topology(&self) -> Topology {
        match self.kind {
            ConnectorKind::Single(_) => Topology::Single,
            #[cfg(feature = "testing")]
            ConnectorKind::Fake => Topology::Single,
            ConnectorKind::Sentinel(..) => Topology::Sentinel,
            ConnectorKind::Cluster(..) => Topology::Cluster,
        }
    }

    /// The shared, self-healing connection.
    pub(crate) async fn shared(&self) -> Result<Connection> {
        let kind = match &self.kind {
            ConnectorKind::Single(client) => {
                // Few, quick reconnect attempts per failing call: while Redis
                // is away a call fails within about a second (the caller
                // decides whether to retry) instead of hanging through a long
                // retry ladder; the next call starts a fresh reconnect.
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(self.response_timeout))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                Kind::Single(
                    ConnectionManager::new_with_config(client.clone(), config)
                        .await
                        .map_err(self.connect_error())?,
                )
            }
            ConnectorKind::Sentinel(target, certs) => {
                let sentinel =
                    sentinel_client(target, certs.clone()).map_err(self.connect_error())?;
                Kind::Sentinel(
                    SentinelConnection::open(sentinel, self.config(Duration::ZERO), target.db)
                        .await
                        .map_err(self.connect_error())?,
                )
            }
            ConnectorKind::Cluster(cluster) => Kind::Cluster(
                cluster
                    .0
                    .get_async_connection()
                    .await
                    .map_err(self.connect_error())?,
            ),
            #[cfg(feature = "testing")]
            ConnectorKind::Fake => Kind::Fake,
        };
        Ok(Connection(kind))
    }

    /// One `PING` on `conn`: a server that wants a password the URL does not
    /// give answers `NOAUTH` only to the first command, so `connect` asks
    /// now and fails with a clear error instead of the first enqueue.
    /// Other answers (a `PING` refused by ACL, say) are left to the calls
    /// that need the server.
    pub(crate) async fn check_auth(&self, conn: &Connection) -> Result<()> {
        let mut conn = conn.clone();
        match redis::cmd("PING").query_async::<Value>(&mut conn).await {
            Err(e) if e.code() == Some("NOAUTH") => Err(Error::Connect {
                target: self.shown.clone(),
                hint: " (this Redis requires a password: put it in the URL, \
                       redis://:PASSWORD@host:port or redis://USER:PASSWORD@host:port)",
                source: e,
            }),
            Err(e) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
                Err(self.connect_error()(e))
            }
            _ => Ok(()),
        }
    }

    /// A connection of its own for blocking commands of up to `block_for`
    /// (a blocking pop would stall every other call on the shared one). It
    /// does not heal: replace it after an error.
    pub(crate) async fn dedicated(
        &self,
        shared: &Connection,
        block_for: Duration,
    ) -> Result<Connection> {
        let config = self.config(block_for);
        let kind = match (&self.kind, &shared.0) {
            (ConnectorKind::Single(client), _) => Kind::Dedicated(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(self.connect_error())?,
            ),
            (ConnectorKind::Sentinel(..), Kind::Sentinel(sentinel)) => Kind::Dedicated(
                sentinel
                    .dedicated(&config)
                    .await
                    .map_err(self.connect_error())?,
            ),
            (ConnectorKind::Cluster(cluster), _) => {
                let (_, target, certs) = &**cluster;
                // Its own cluster client, so a blocked node connection is
                // this connection's alone; it still follows slot moves.
                let client =
                    cluster_client(target, certs.clone(), block_for + self.response_timeout)
                        .map_err(self.connect_error())?;
                Kind::Cluster(
                    client
                        .get_async_connection()
                        .await
                        .map_err(self.connect_error())?,
                )
            }
            (ConnectorKind::Sentinel(..), _) => {
                return Err(Error::InvalidArgument(
                    "a Sentinel connector needs its shared Sentinel connection".to_owned(),
                ))
            }
            #[cfg(feature = "testing")]
            (ConnectorKind::Fake, _) => Kind::Fake,
        };
        Ok(Connection(kind))
    }

    /// A pub/sub connection: to the server (single node), to the current
    /// primary (Sentinel), or to the first seed node that answers
    /// (Cluster, where a `PUBLISH` reaches every node). It does not heal:
    /// open a new one after it ends, and assume messages were missed.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        let client = match &self.kind {
            ConnectorKind::Single(client) => client.clone(),
            ConnectorKind::Sentinel(target, certs) => {
                let mut sentinel =
                    sentinel_client(target, certs.clone()).map_err(self.connect_error())?;
                sentinel
                    .async_get_client()
                    .await
                    .map_err(self.connect_error())?
            }
            ConnectorKind::Cluster(cluster) => {
                let (_, target, certs) = &**cluster;
                let mut last = None;
                for (host, port) in &target.nodes {
                    match node_client(target, host, *port, certs.clone()) {
                        Ok(client) => match client.get_async_pubsub().await {
                            Ok(pubsub) => return Ok(pubsub),
                            Err(e) => last = Some(e),
                        },
                        Err(e) => last = Some(e),
                    }
                }
                return Err(self.connect_error()(last.unwrap_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Client, "no cluster node given"))
                })));
            }
            #[cfg(feature = "testing")]
            ConnectorKind::Fake => return Err(self.connect_error()(fake_error())),
        };
        client
            .get_async_pubsub()
            .await
            .map_err(self.connect_error())
    }

    /// A connect failure naming the server and, where it can tell, the cause.
    fn connect_error(&self) -> impl FnOnce(redis::RedisError) -> Error + '_ {
        move |source| {
            let text = source.to_string();
            let tls = self.shown.starts_with("rediss");
            let auth = source.kind() == redis::ErrorKind::AuthenticationFailed
                || text.contains("WRONGPASS")
                || text.contains("NOAUTH");
            let hint = if auth && self.topology() == Topology::Sentinel {
                " (check the user name and password in the URL, for the data nodes, and \
                 sentinel_username / sentinel_password, for the Sentinels)"
            } else if auth {
                " (check the user name and password in the URL)"
            } else if tls && (text.contains("certificate") || text.contains("UnknownIssuer")) {
                " (the server's certificate is not trusted: set REDIS_CA_FILE to the CA that signed it)"
            } else if tls && text.contains("CertificateRequired") {
                " (the server requires a client certificate: set REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE)"
            } else if tls && source.is_timeout() {
                " (no TLS handshake: is this the server's TLS port?)"
            } else if source.is_connection_refusal() {
                " (nothing listens there: is Redis running and is the port right?)"
            } else {
                ""
            };
            Error::Connect {
                target: self.shown.clone(),
                hint,
                source,
            }
        }
    }

    fn config(&self, block_for: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_response_timeout(Some(block_for + self.response_timeout))
            .set_connection_timeout(Some(CONNECT_TIMEOUT * 2))
    }
}

fn cluster_client(
    target: &ClusterTarget,
    certs: Option<TlsCertificates>,
    response_timeout: Duration,
) -> redis::RedisResult<redis::cluster::ClusterClient> {
    let scheme = if target.tls { "rediss" } else { "redis" };
    let nodes: Vec<String> = target
        .nodes
        .iter()
        .map(|(host, port)| format!("{scheme}://{}:{port}", bracket(host)))
        .collect();
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        .retries(3)
        .min_retry_wait(20)
        .max_retry_wait(500);
    if let Some(user) = &target.auth.username {
        builder = builder.username(user);
    }
    if let Some(pass) = &target.auth.password {
        builder = builder.password(pass);
    }
    if let Some(certs) = certs {
        builder = builder.certs(certs);
    }
    builder.build()
}

/// A client for one node of a cluster, with the cluster's TLS and credentials.
fn node_client(
    target: &ClusterTarget,
    host: &str,
    port: u16,
    certs: Option<TlsCertificates>,
) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let addr = if target.tls {
        redis::ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        redis::ConnectionAddr::Tcp(host.to_owned(), port)
    };
    let info = addr.into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &target.auth.username {
        settings = settings.set_username(user);
    }
    if let Some(pass) = &target.auth.password {
        settings = settings.set_password(pass);
    }
    let info = info.set_redis_settings(settings);
    match certs {
        Some(certs) => redis::Client::build_with_tls(info, certs),
        None => redis::Client::open(info),
    }
}

fn sentinel_client(
    target: &SentinelTarget,
    certs: Option<TlsCertificates>,
) -> redis::RedisResult<redis::sentinel::SentinelClient> {
    use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
    let addrs = target.sentinels.iter().map(|(host, port)| {
        if target.tls {
            redis::ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let mut b = SentinelClientBuilder::new(addrs, &target.master, SentinelServerType::Master)?
        .set_client_to_redis_db(target.db);
    if target.tls {
        b = b
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
        if let Some(certs) = certs {
            b = b
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    }
    if let Some(user) = &target.auth.username {
        b = b.set_client_to_redis_username(user);
    }
    if let Some(pass) = &target.auth.password {
        b = b.set_client_to_redis_password(pass);
    }
    if let Some(user) = &target.sentinel_auth.username {
        b = b.set_client_to_sentinel_username(user);
    }
    if let Some(pass) = &target.sentinel_auth.password {
        b = b.set_client_to_sentinel_password(pass);
    }
    b.build()
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The Redis deployment a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://`, `rediss://`, `unix://`).
    Single,
    /// A primary found through Sentinel (`redis+sentinel://`).
    Sentinel,
    /// A Redis Cluster (`redis+cluster://`).
    Cluster,
}

/// A connection to Spool's Redis, whatever the topology. It implements
/// [`redis::aio::ConnectionLike`], so any redis command runs on it; clones
/// share one multiplexed connection (per node on Cluster). Don't run
/// blocking commands on the shared one.
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> redis::RedisResult<()> {
/// let mut conn = client.connection();
/// let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection(Kind);

#[derive(Clone)]
enum Kind {
    Single(ConnectionManager),
    Dedicated(MultiplexedConnection),
    Sentinel(SentinelConnection),
    Cluster(ClusterConnection),
    /// A fake client's: every command fails with [`fake_error`].
    #[cfg(feature = "testing")]
    Fake,
}

/// What a command sent through a fake client's connection gets.
#[cfg(feature = "testing")]
fn fake_error() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "no Redis behind a fake client",
        "spool_client::testing::FakeClient records enqueues only; run this call against a \
         real Redis (spool_client::testing::RedisServer starts a private one)"
            .to_owned(),
    ))
}

impl Connection {
    /// A connection whose every command fails: a fake client's.
    #[cfg(feature = "testing")]
    pub(crate) fn fake() -> Self {
        Self(Kind::Fake)
    }
}

impl Connector {
    /// A connector that connects nowhere: a fake client's.
    #[cfg(feature = "testing")]
    pub(crate) fn fake() -> Self {
        Self {
            kind: ConnectorKind::Fake,
            response_timeout: Duration::ZERO,
            shown: "fake://".to_owned(),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Kind::Single(_) => "single",
            Kind::Dedicated(_) => "dedicated",
            Kind::Sentinel(_) => "sentinel",
            Kind::Cluster(_) => "cluster",
            #[cfg(feature = "testing")]
            Kind::Fake => "fake",
        };
        f.debug_tuple("Connection").field(&kind).finish()
    }
}

impl Connection {
    /// Runs `cmd` on the primary that holds `key`'s slot (a keyless
    /// command such as `WAIT` would otherwise go to any node on Cluster).
    pub(crate) async fn command_at_key(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> redis::RedisResult<Value> {
        match &mut self.0 {
            Kind::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                c.route_command(cmd.clone(), route).await
            }
            _ => cmd.query_async(self).await,
        }
    }

    /// Runs `cmd` on every primary (the one server on a single node or
    /// Sentinel) and returns each reply: for server-wide reads such as
    /// `INFO`, which on Cluster would otherwise ask one random node.
    ///
    /// # Errors
    /// The first node's error.
    pub async fn on_every_primary(&mut self, cmd: &Cmd) -> redis::RedisResult<Vec<Value>> {
        match &mut self.0 {
            Kind::Cluster(c) => {
                use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = c.route_command(cmd.clone(), routing).await?;
                Ok(match reply {
                    Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
                    other => vec![other],
                })
            }
            _ => Ok(vec![cmd.query_async(self).await?]),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Kind::Single(c) => c.req_packed_command(cmd),
            Kind::Dedicated(c) => c.req_packed_command(cmd),
            Kind::Sentinel(c) => c.req_packed_command(cmd),
            Kind::Cluster(c) => Box::pin(cluster::command(c, cmd)),
            #[cfg(feature = "testing")]
            Kind::Fake => Box::pin(async { Err(fake_error()) }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Kind::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Cluster(c) => cluster::pipeline(c, pipeline, offset, count),
            #[cfg(feature = "testing")]
            Kind::Fake => Box::pin(async { Err(fake_error()) }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Kind::Single(c) => c.get_db(),
            Kind::Dedicated(c) => c.get_db(),
            Kind::Sentinel(c) => c.get_db(),
            Kind::Cluster(c) => c.get_db(),
            #[cfg(feature = "testing")]
            Kind::Fake => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::{Connector, TlsFiles};

    fn refused(url: &str, tls: &TlsFiles) -> String {
        match Connector::new(url, tls, Duration::from_secs(1)) {
            Ok(_) => panic!("{url} with {tls:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("spool-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write a temp file");
        path
    }

    #[test]
    fn tls_files_are_checked_before_connecting() {
        let missing = TlsFiles {
            ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsFiles::default()
        };
        let err = refused("rediss://h:1", &missing);
        assert!(
            err.contains("cannot read the TLS CA file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );

        let garbage = TlsFiles {
            ca: Some(file("garbage.pem", "not a certificate\n")),
            ..TlsFiles::default()
        };
        let err = refused("rediss://h:1", &garbage);
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let half = TlsFiles {
            client_cert: Some(file("cert.pem", "x")),
            ..TlsFiles::default()
        };
        let err = refused("rediss://h:1", &half);
        assert!(
            err.contains("needs both the certificate and its key"),
            "{err}"
        );
    }

    #[test]
    fn tls_files_with_a_plain_url_are_refused() {
        // Valid PEM framing around a body that is not a real certificate.
        let ca = file(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        );
        let tls = TlsFiles {
            ca: Some(ca),
            ..TlsFiles::default()
        };
        for url in [
            "redis://:pw@h:1",
            "redis+cluster://h:1",
            "redis+sentinel://h:1/m",
        ] {
            let err = refused(url, &tls);
            assert!(err.contains("not a rediss URL"), "{url}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        // (The fake certificate may be refused later, but not for the URL.)
        for url in [
            "rediss://h:1",
            "rediss+cluster://h:1",
            "rediss+sentinel://h:1/m",
        ] {
            if let Err(e) = Connector::new(url, &tls, Duration::from_secs(1)) {
                assert!(!e.to_string().contains("not a rediss URL"), "{url}: {e}");
            }
        }
    }
}
