//! Completer: writes outcomes to Redis in batches, fenced.
//!
//! Drains whatever outcomes are waiting (up to [`BATCH_MAX`]) and applies
//! them with one pipelined round trip (`ack.lua` per queue, `fail.lua` per
//! failure). If Redis is unreachable it retries with backoff for up to one
//! lease length; after that the leases have expired anyway and the jobs are
//! left for the reaper rather than guessed at. It stops when every sender
//! (fetcher and executors) is gone and the channel is drained, which is how
//! shutdown knows all outcomes are written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spool_client::runtime::{Applied, Completion, Outcome, Runtime};
use tokio::sync::{mpsc, Notify};

use crate::backoff::Backoff;
use crate::in_flight::InFlight;

/// Most outcomes written per round trip.
pub(crate) const BATCH_MAX: usize = 512;

pub(crate) struct Completer {
    pub(crate) runtime: Runtime,
    pub(crate) in_flight: InFlight,
    /// Closed when all senders are dropped.
    pub(crate) rx: mpsc::Receiver<Completion>,
    /// How long to keep retrying a batch while Redis is away.
    pub(crate) give_up_after: Duration,
    /// Retries due sooner than this nudge the local scheduler.
    pub(crate) nudge_below: Duration,
    pub(crate) scheduler_nudge: Arc<Notify>,
    pub(crate) metrics: crate::metrics::WorkerMetrics,
}

impl Completer {
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        while let Some(first) = self.rx.recv().await {
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.apply(&batch).await;
            batch.clear();
        }
        tracing::debug!("completer drained");
    }

    async fn apply(&self, batch: &[Completion]) {
        let started = Instant::now();
        let mut backoff = Backoff::redis();
        loop {
            match self.runtime.complete(batch).await {
                Ok(applied) => {
                    let mut nudge = false;
                    for (c, a) in batch.iter().zip(applied) {
                        match a {
                            Applied::LeaseLost => {
                                self.metrics.leases_lost(1);
                                tracing::warn!(
                                    job_id = %c.id, queue = %c.keys.queue,
                                    "lease was lost before the outcome was written; another worker owns the job now"
                                );
                            }
                            Applied::Retrying => {
                                if let Outcome::Retry { delay, .. }
                                | Outcome::Snooze { delay, .. } = &c.outcome
                                {
                                    nudge |= *delay < self.nudge_below;
                                }
                            }
                            Applied::Cancelled => tracing::info!(
                                job_id = %c.id, queue = %c.keys.queue,
                                "job ended cancelled (it was cancelled while running)"
                            ),
                            Applied::Acked | Applied::Dead => {}
                        }
                        // Its follow-ups wait in the outbox: the scheduler moves them.
                        nudge |=
                            a != Applied::LeaseLost && c.run.as_ref().is_some_and(|f| f.followups);
                    }
                    self.in_flight
                        .remove_all(batch.iter().map(|c| (&c.id, &c.token)));
                    if nudge {
                        self.scheduler_nudge.notify_one();
                    }
                    return;
                }
                Err(err) if started.elapsed() < self.give_up_after => {
                    self.metrics.redis_error("complete");
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, jobs = batch.len(), retry_in_ms = crate::backoff::millis(delay),
                        "cannot write job outcomes; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(err) => {
                    self.metrics.redis_error("complete");
                    tracing::error!(error = %err, jobs = batch.len(),
                        "giving up writing job outcomes; the jobs stay leased and the reaper will return them");
                    self.in_flight
                        .remove_all(batch.iter().map(|c| (&c.id, &c.token)));
                    return;
                }
            }
        }
    }
}
