//! Phase 5: scheduled-job lateness while the worker is busy.
//!
//! A worker draining a backlog never waits for wake tokens, so only the
//! due hint its fetches return tells its scheduler that a producer (here
//! this process's client, which shares nothing with the worker but Redis)
//! scheduled a job before the scheduler's next pass. The phase enqueues a
//! backlog of no-op jobs in `<queue>-busy`, then `n` jobs due 200 – 1,500
//! ms later in `<queue>`, and measures each one's start minus its due time
//! (host clock, µs, carried in the job; producer and worker share the
//! machine).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use rand::Rng;
use spool_client::{Client, EnqueueOptions};
use spool_worker::{JobContext, Worker};

use crate::{now_us, BenchNoop};

/// The marker (`p`) of the scheduled jobs.
const DUE: &str = "due";

/// Lateness of `n` scheduled jobs (ms, sorted) while a worker at
/// `concurrency` drains `backlog` jobs, and how many backlog jobs were
/// still ready when the last scheduled one started.
pub(crate) async fn run(
    client: &Client,
    queue: &str,
    n: u64,
    backlog: u64,
    concurrency: usize,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let busy = format!("{queue}-busy");
    let late: Arc<Mutex<Vec<f64>>> = Arc::default();
    let seen = Arc::clone(&late);
    let worker = Worker::builder(client.clone())
        .queue(queue, 1)
        .queue(&busy, 1)
        .concurrency(concurrency)
        .configure(|c| c.fetch_batch_max = concurrency.min(1000))
        .register(move |_: JobContext, job: BenchNoop| {
            if job.p == DUE {
                let ms = now_us().saturating_sub(job.t) as f64 / 1000.0;
                seen.lock().expect("lateness lock").push(ms);
            }
            std::future::ready(Ok(()))
        })
        .build()?;
    // The backlog first, so the worker is busy from its first fetch.
    let jobs: Vec<BenchNoop> = (0..backlog).map(|_| BenchNoop::plain(0)).collect();
    for chunk in jobs.chunks(10_000) {
        client
            .enqueue_bulk_with(chunk, EnqueueOptions::new().queue(busy.as_str()))
            .await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stop_rx.await;
    }));
    let mut rng = rand::rng();
    for _ in 0..n {
        let due_us = now_us() + rng.random_range(200_000..1_500_000);
        let at =
            chrono::DateTime::from_timestamp_micros(i64::try_from(due_us)?).unwrap_or_default();
        let job = BenchNoop {
            t: due_us,
            p: DUE.to_owned(),
            ..BenchNoop::plain(0)
        };
        client
            .enqueue_with(&job, EnqueueOptions::new().queue(queue).at(at))
            .await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (late.lock().expect("lateness lock").len() as u64) < n {
        if tokio::time::Instant::now() > deadline {
            bail!("scheduled jobs did not all run");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let still_busy = client.admin().queue(&busy).await?.ready;
    let _ = stop_tx.send(());
    running.await??;
    let mut out = late.lock().expect("lateness lock").clone();
    out.sort_by(f64::total_cmp);
    Ok((out, still_busy))
}
