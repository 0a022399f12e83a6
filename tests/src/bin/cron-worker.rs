//! `cron-worker`: a worker process with the cron tests' shared table
//! ([`spool_tests::cron_test_table`]), started (and `SIGKILLed`) by
//! `tests/cron.rs` to prove a tick fires once across processes.
//!
//! Usage: `cron-worker REDIS_URL [HOST_CLOCK_OFFSET_MS]`. The offset is
//! given to `CronConfig::host_clock_offset_ms`, so a process can run with a
//! deliberately wrong host clock. Logs go to stderr (`RUST_LOG`, default
//! `info`). Stops gracefully on SIGTERM/SIGINT.

use anyhow::Context;
use spool_client::Client;
use spool_tests::handlers::{with_fixtures, Recorder};
use spool_worker::Worker;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: cron-worker REDIS_URL [HOST_CLOCK_OFFSET_MS]")?;
    let offset_ms: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("HOST_CLOCK_OFFSET_MS must be an integer")?
        .unwrap_or(0);
    let client = Client::builder(&url)
        .tls(spool_client::TlsFiles::from_env())
        .connect()
        .await?;
    let mut builder = with_fixtures(Worker::builder(client), &Recorder::default())
        .configure(spool_tests::fast_config)
        .configure(|c| c.cron.host_clock_offset_ms = offset_ms);
    for entry in spool_tests::cron_test_table() {
        builder = builder.cron(entry);
    }
    builder
        .build()?
        .run_until(spool_worker::shutdown_signal())
        .await?;
    Ok(())
}
