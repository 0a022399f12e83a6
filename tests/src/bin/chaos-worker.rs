//! chaos-worker: a worker process the chaos and shutdown tests start, kill
//! with SIGKILL or stop with SIGTERM.
//!
//! Runs `Work` jobs: sleeps `sleep_ms`, then appends `<job id> <attempt>` to
//! the file named by `--record` (one `write` per line with `O_APPEND`, so a
//! SIGKILL never leaves half a line) before returning; a batch's callback
//! adds what it read: `on total done dead cancelled`. Exits 0 after a
//! graceful shutdown.
//!
//! With `--cancel-record FILE`, a handler whose cancellation fires while it
//! sleeps stops at once and appends `<job id> <attempt>` to that file
//! instead (the lease tests watch which run was cancelled).
//!
//! With `--ledger FILE`, each run also appends `<start µs> <end µs> <job id>`
//! (wall clock) when it ends: the fleet tests count overlapping runs.
//!
//! With `--defaults`, the worker keeps the default lease, heartbeat, reaper,
//! scheduler and idle timings (the flags for them are ignored).
//!
//! Usage: chaos-worker --redis-url URL --record FILE [--concurrency N]
//!        [--lease-ms MS] [--shutdown-ms MS] [--cancel-record FILE]
//!        [--ledger FILE] [--defaults]

use std::io::Write;
use std::time::Duration;

use spool_client::Client;
use spool_tests::handlers::Work;
use spool_worker::{JobContext, JobError, Worker};

/// Appends one line with one `write` (`O_APPEND`), so a SIGKILL never leaves
/// half a line.
fn append(path: &str, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// Microseconds since the Unix epoch (wall clock).
fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let url = spool_tests::flag_value(&args, "--redis-url")
        .ok_or_else(|| anyhow::anyhow!("--redis-url is required"))?;
    let record = spool_tests::flag_value(&args, "--record")
        .ok_or_else(|| anyhow::anyhow!("--record is required"))?;
    let concurrency: usize =
        spool_tests::flag_value(&args, "--concurrency").map_or(Ok(20), |v| v.parse())?;
    let lease_ms: u64 =
        spool_tests::flag_value(&args, "--lease-ms").map_or(Ok(1000), |v| v.parse())?;
    let shutdown_ms: u64 =
        spool_tests::flag_value(&args, "--shutdown-ms").map_or(Ok(5000), |v| v.parse())?;
    let cancel_record = spool_tests::flag_value(&args, "--cancel-record");
    let ledger = spool_tests::flag_value(&args, "--ledger");
    let defaults = args.iter().any(|a| a == "--defaults");

    let client = Client::builder(&url)
        .tls(spool_client::TlsFiles::from_env())
        .connect()
        .await?;
    let worker = Worker::builder(client)
        .queue("chaos", 1)
        .concurrency(concurrency)
        .configure(|c| {
            if defaults {
                return;
            }
            c.lease = Duration::from_millis(lease_ms);
            c.heartbeat_interval = Duration::from_millis(lease_ms / 4);
            c.process_ttl = Duration::from_millis(lease_ms * 2);
            c.reaper_interval = Duration::from_millis(200);
            c.scheduler_interval = Duration::from_millis(200);
            c.idle_wait = Duration::from_millis(500);
            c.shutdown_timeout = Duration::from_millis(shutdown_ms);
        })
        .register(move |ctx: JobContext, job: Work| {
            let record = record.clone();
            let cancel_record = cancel_record.clone();
            let ledger = ledger.clone();
            async move {
                let started_us = now_us();
                let sleep = tokio::time::sleep(Duration::from_millis(job.sleep_ms));
                if let Some(cancel_record) = cancel_record {
                    tokio::select! {
                        () = sleep => {}
                        () = ctx.cancellation().cancelled() => {
                            append(&cancel_record, &format!("{} {}\n", ctx.id(), ctx.attempt()))?;
                            return Err(JobError::retry("cancelled"));
                        }
                    }
                } else {
                    sleep.await;
                }
                let line = match ctx.batch_callback() {
                    // A batch's callback also records what it read.
                    Some(b) => format!(
                        "{} {} {} {} {} {} {} {}\n",
                        ctx.id(),
                        ctx.attempt(),
                        job.n,
                        b.on.as_str(),
                        b.total,
                        b.done,
                        b.dead,
                        b.cancelled
                    ),
                    None => format!("{} {} {}\n", ctx.id(), ctx.attempt(), job.n),
                };
                append(&record, &line)?;
                if let Some(ledger) = ledger {
                    append(
                        &ledger,
                        &format!("{started_us} {} {}\n", now_us(), ctx.id()),
                    )?;
                }
                Ok(())
            }
        })
        .build()?;
    worker.run_until(spool_worker::shutdown_signal()).await?;
    Ok(())
}
