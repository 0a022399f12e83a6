//! The Redis connection flags the `spool` CLI and the `spool-dashboard`
//! binary share: one URL (any topology), the namespace, and TLS files, each
//! also read from the environment.

use std::path::PathBuf;

use spool_client::{Client, ClientBuilder, TlsFiles};

/// Where Spool's Redis is and how to reach it.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL. Schemes: redis, rediss (TLS), redis+sentinel (hosts, then
    /// /MASTER), redis+cluster (seed hosts), rediss+sentinel, rediss+cluster.
    // `hide_env_values`: `--help` must not print a password from `REDIS_URL`.
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Key namespace.
    #[arg(long, global = true, env = "SPOOL_NAMESPACE", default_value = spool_client::NAMESPACE_DEFAULT)]
    pub namespace: String,
    /// PEM file of the CA to trust for rediss:// (instead of the public roots).
    #[arg(long, global = true, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM file of a TLS client certificate (with --redis-client-key-file).
    #[arg(long, global = true, env = "REDIS_CLIENT_CERT_FILE")]
    pub redis_client_cert_file: Option<PathBuf>,
    /// PEM file of the TLS client certificate's key.
    #[arg(long, global = true, env = "REDIS_CLIENT_KEY_FILE")]
    pub redis_client_key_file: Option<PathBuf>,
}

impl RedisArgs {
    /// A client builder for these settings.
    #[must_use]
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder(&self.redis_url)
            .namespace(&self.namespace)
            .tls(TlsFiles {
                ca: self.redis_ca_file.clone(),
                client_cert: self.redis_client_cert_file.clone(),
                client_key: self.redis_client_key_file.clone(),
            })
    }
}
