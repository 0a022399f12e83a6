//! Job types shared by the demo worker and the demo producer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{ExponentialJitter, Job, JobOptions};

/// Succeeds after a short pause.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SendEmail {
    pub(crate) to: String,
    pub(crate) subject: String,
}

impl Job for SendEmail {
    const TYPE: &'static str = "send_email";
    fn options() -> JobOptions {
        JobOptions::default()
            .queue("emails")
            .timeout(Duration::from_secs(10))
    }
}

/// Fails now and then, so the retry set fills; gives up after 3 attempts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResizeImage {
    pub(crate) image_id: u64,
    pub(crate) width: u32,
}

impl Job for ResizeImage {
    const TYPE: &'static str = "resize_image";
    fn options() -> JobOptions {
        JobOptions::default()
            .queue("default")
            .max_attempts(3)
            .retry_policy(ExponentialJitter {
                base: Duration::from_secs(2),
                max: Duration::from_secs(30),
                jitter: 0.25,
            })
    }
}

/// Declined cards are a permanent failure: straight to the dead set.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChargeCard {
    pub(crate) order_id: u64,
    pub(crate) cents: u64,
}

impl Job for ChargeCard {
    const TYPE: &'static str = "charge_card";
    fn options() -> JobOptions {
        JobOptions::default().queue("critical").max_attempts(5)
    }
}

/// The Redis URL from `REDIS_URL`, defaulting to the demo's private server.
pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:16379".to_owned())
}

/// The demo binaries' start: logs to stderr (`RUST_LOG`, default `info`),
/// then a client on `REDIS_URL`, with the keyring in `SPOOL_KEYRING` if
/// set (for job types marked encrypted).
pub(crate) async fn start() -> Result<spool_client::Client, spool_client::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut builder =
        spool_client::Client::builder(&redis_url()).tls(spool_client::TlsFiles::from_env());
    if let Some(keyring) = spool_client::Keyring::from_env()? {
        builder = builder.keyring(keyring);
    }
    builder.connect().await
}
