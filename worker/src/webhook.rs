//! Signed webhooks: the built-in handler of [`WebhookDelivery`] jobs, which
//! the script that ends a job with a webhook creates
//! ([`EnqueueOptions::webhook`](spool_client::EnqueueOptions::webhook)).
//!
//! It POSTs the finished job as JSON with a signature over the timestamp
//! and the exact body (HMAC-SHA256, the secret from this configuration,
//! never from a payload), a delivery id for receivers to dedupe (the
//! delivery job's id: the same on every retry), and a timeout. Anything but
//! a 2xx answer is retried with backoff; after its attempts the delivery
//! is in the dead set with the last answer. HMAC comes from `ring` (already
//! the TLS crypto provider), HTTP from `reqwest` with rustls.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::value::RawValue;
use spool_client::{check_webhook_url, ExponentialJitter, RetryPolicy, WebhookDelivery};

use crate::{JobContext, JobError};

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "spool-signature";
/// The header carrying the delivery id (the same on every retry).
pub const DELIVERY_HEADER: &str = "spool-delivery";
/// How long a delivery waits for an answer by default.
pub const WEBHOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// How this worker delivers webhooks ([`WorkerBuilder::webhooks`](crate::WorkerBuilder::webhooks)).
///
/// ```
/// use spool_worker::WebhookConfig;
/// let config = WebhookConfig::new(std::env::var("SPOOL_WEBHOOK_SECRET").unwrap_or_default())
///     .allow_hosts(["hooks.example.com", "*.partner.example"]);
/// ```
#[derive(Clone)]
pub struct WebhookConfig {
    secret: Arc<[u8]>,
    allow_hosts: Vec<String>,
    timeout: Duration,
    retry_policy: Arc<dyn RetryPolicy>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("WebhookConfig")
            .field("allow_hosts", &self.allow_hosts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Deliveries signed with `secret` (share it with the receivers; keep it
    /// in your secret store, not in code).
    #[must_use]
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            secret: secret.as_ref().into(),
            allow_hosts: Vec::new(),
            timeout: WEBHOOK_TIMEOUT_DEFAULT,
            retry_policy: Arc::new(ExponentialJitter {
                base: Duration::from_secs(10),
                ..ExponentialJitter::default()
            }),
        }
    }

    /// Deliver only to these hosts (exact, case-insensitive, or `*.domain`);
    /// a delivery to another goes to the dead set. Default: any host.
    #[must_use]
    pub fn allow_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.allow_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// How long one delivery waits for the answer (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The delay before each retry of a delivery that failed (default:
    /// exponential from 10 s, with jitter).
    #[must_use]
    pub fn retry_policy(mut self, policy: impl RetryPolicy + 'static) -> Self {
        self.retry_policy = Arc::new(policy);
        self
    }

    pub(crate) fn policy(&self) -> Arc<dyn RetryPolicy> {
        Arc::clone(&self.retry_policy)
    }

    pub(crate) fn is_valid(&self) -> bool {
        !self.secret.is_empty()
    }
}

/// The JSON a receiver gets.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    delivery_id: &'a str,
    job: PayloadJob<'a>,
}

#[derive(Debug, Serialize)]
struct PayloadJob<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    job_type: Option<&'a str>,
    queue: &'a str,
    state: &'a str,
    attempts: Option<u32>,
    finished_ms: Option<i64>,
    result: Option<&'a RawValue>,
    error: Option<&'a str>,
}

/// The signature header's value for `body` sent at `timestamp` (unix
/// seconds): `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
#[must_use]
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={timestamp},v1={}", hex(ctx.sign().as_ref()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Delivers one webhook: a permanent error for what retrying cannot fix
/// (a refused URL, a delivery without a parent), a retry for anything but
/// a 2xx answer.
pub(crate) async fn deliver(
    config: &WebhookConfig,
    http: &reqwest::Client,
    ctx: &JobContext,
    job: &WebhookDelivery,
) -> Result<(), JobError> {
    let url = check_webhook_url(&job.url, &config.allow_hosts)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let parent = ctx.parent().ok_or_else(|| {
        JobError::permanent("a webhook delivery needs the job that ended (it was enqueued by hand)")
    })?;
    let body = serde_json::to_vec(&Payload {
        delivery_id: ctx.id().as_str(),
        job: PayloadJob {
            id: parent.id.as_str(),
            job_type: parent.job_type.as_deref(),
            queue: &parent.queue,
            state: &parent.state,
            attempts: parent.attempts,
            finished_ms: parent.finished_ms,
            result: parent.result.as_deref(),
            error: parent.error.as_deref(),
        },
    })
    .map_err(|e| JobError::permanent(format!("webhook body: {e}")))?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answer = http
        .post(url)
        .timeout(config.timeout)
        .header("content-type", "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&config.secret, timestamp, &body),
        )
        .header(DELIVERY_HEADER, ctx.id().as_str())
        .header(
            "user-agent",
            concat!("spool-webhook/", env!("CARGO_PKG_VERSION")),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| JobError::retry(format!("webhook to {} failed: {e}", job.url)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    Err(JobError::retry(format!(
        "webhook to {} answered {status}: {}",
        job.url,
        spool_client::truncate_utf8(&text, 500)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check through a second implementation: the
        // dashboard's `hmac` crate is not a dependency here, so compare
        // with ring's one-shot API.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret");
        let tag = ring::hmac::sign(&key, b"1700000000.{\"a\":1}");
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{\"a\":1}"),
            format!("t=1700000000,v1={}", hex(tag.as_ref()))
        );
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
        assert_ne!(
            signature(b"other", 1_700_000_000, b"{\"a\":1}"),
            signature(b"secret", 1_700_000_000, b"{\"a\":1}")
        );
    }
}
