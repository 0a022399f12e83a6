//! Heartbeat: keeps this process's leases alive and its registration fresh.
//!
//! Every `heartbeat_interval` (jittered): one pipelined `extend.lua` call per
//! queue for all running jobs (Redis's clock + lease). A lease that could not
//! be extended cancels the run that holds that lease (and no other run of
//! the same job). A lease that vanished after its run finished is our own
//! ack landing between the snapshot and the extend, not a loss: it is not
//! reported. Then the process record (host, pid, queues, concurrency, busy
//! jobs) is written with a TTL, so the dashboard lists live workers and
//! forgets dead ones by itself. The reply carries an operator's signal
//! (`Admin::signal_process`): quiet ends fetching (running jobs finish,
//! the process stays registered); stop starts the graceful shutdown.

use std::time::{Duration, Instant};

use spool_client::admin::{BusyJob, ProcessInfo};
use spool_client::runtime::{LeaseLoss, LostLease, ProcessSignal, Runtime};
use tokio_util::sync::CancellationToken;

use crate::backoff::jittered;
use crate::in_flight::{InFlight, LeaseKey, Running};

/// What one beat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatReport {
    /// Leases extended.
    pub extended: usize,
    /// Leases found lost while their run was still going (those runs were
    /// told to stop).
    pub lost: usize,
}

pub(crate) struct Heartbeat {
    pub(crate) runtime: Runtime,
    pub(crate) info: ProcessInfo,
    pub(crate) in_flight: InFlight,
    /// Lease length each beat extends to ([`WorkerConfig::lease`](crate::WorkerConfig::lease)).
    pub(crate) lease: Duration,
    /// Time between beats ([`WorkerConfig::heartbeat_interval`](crate::WorkerConfig::heartbeat_interval)).
    pub(crate) interval: Duration,
    /// Life of the process record without a beat ([`WorkerConfig::process_ttl`](crate::WorkerConfig::process_ttl)).
    pub(crate) process_ttl: Duration,
    /// Cancelled on a quiet signal: the fetch token (no new leases).
    pub(crate) quiet: CancellationToken,
    /// Cancelled on a stop signal: `run_until` then shuts down.
    pub(crate) stop_asked: CancellationToken,
    pub(crate) metrics: crate::metrics::WorkerMetrics,
}

impl Heartbeat {
    pub(crate) async fn run_once(&self) -> spool_client::Result<HeartbeatReport> {
        let running = self.in_flight.snapshot();
        // First, without Redis: a run whose lease ran out by this process's
        // clock (every extension failed: Redis away) is stopped now, even
        // when the extension below cannot reach Redis either.
        let expired = stop_expired(&running, Instant::now());
        let leases: Vec<_> = running
            .iter()
            .map(|((id, token), r)| (r.keys.clone(), id.clone(), token.clone()))
            .collect();
        let asked = Instant::now();
        let lost = self.runtime.extend(self.lease, &leases).await?;
        let mut report = HeartbeatReport {
            extended: leases.len() - lost.len(),
            lost: expired,
        };
        for ((id, token), run) in &running {
            if !lost.iter().any(|l| &l.id == id && &l.token == token) {
                run.extended_to(asked + self.lease);
            }
        }
        for l in &lost {
            if on_lost(&self.in_flight, l) {
                report.lost += 1;
            }
        }
        self.metrics.leases_lost(report.lost as u64);
        let signal = self.register(&running).await?;
        self.obey(signal);
        Ok(report)
    }

    /// Carries out an operator's signal (once: the tokens stay cancelled).
    fn obey(&self, signal: Option<ProcessSignal>) {
        let stop = signal == Some(ProcessSignal::Stop);
        if signal.is_some() && !self.quiet.is_cancelled() {
            tracing::info!(
                signal = signal.map(ProcessSignal::as_str),
                "asked through Redis (dashboard or CLI) to go quiet: no new jobs; running jobs finish"
            );
            self.quiet.cancel();
        }
        if stop && !self.stop_asked.is_cancelled() {
            tracing::info!(
                "asked through Redis (dashboard or CLI) to stop: shutting down gracefully"
            );
            self.stop_asked.cancel();
        }
    }
}

/// Stops the runs (not yet finished) whose lease ran out by this process's
/// clock at `now`; returns how many.
fn stop_expired(running: &[(LeaseKey, Running)], now: Instant) -> usize {
    let mut stopped = 0;
    for ((id, token), run) in running {
        if run.lease_until() <= now && !run.is_finished() && !run.cancel.is_cancelled() {
            tracing::warn!(job_id = %id, token = token.as_str(),
                "lease lost: it expired by this process's clock without an extension (Redis unreachable?); cancelling this run");
            run.cancel.cancel();
            stopped += 1;
        }
    }
    stopped
}

/// Handles one lease this process lost (could not extend, reaped, or asked
/// to cancel); true when a running handler was told to stop because the
/// lease is gone.
pub(crate) fn on_lost(in_flight: &InFlight, lost: &LostLease) -> bool {
    let run = in_flight.get(&lost.id, &lost.token);
    if lost.why == LeaseLoss::CancelAsked {
        if let Some(run) = run.filter(|r| !r.is_finished()) {
            tracing::info!(job_id = %lost.id, "job was cancelled; telling its handler");
            run.cancel_requested();
        }
        return false;
    }
    match verdict(lost, run.as_ref()) {
        Verdict::Untracked | Verdict::OwnOutcome => {
            tracing::debug!(job_id = %lost.id, "lease ended by this process's own outcome");
            false
        }
        Verdict::Cancel => {
            if lost.why == LeaseLoss::Taken {
                tracing::warn!(job_id = %lost.id, token = lost.token.as_str(),
                    "lease lost: it expired and another run (another worker, or a new lease in this process) took the job; cancelling this run only");
            } else {
                tracing::warn!(job_id = %lost.id, token = lost.token.as_str(),
                    "lease lost: the job is no longer leased (reaped or deleted); cancelling this run");
            }
            if let Some(run) = run {
                run.cancel.cancel();
            }
            true
        }
    }
}

impl Heartbeat {
    /// Writes the process record; also used at start-up. Returns the
    /// operator's signal for this process, if any.
    pub(crate) async fn register(
        &self,
        running: &[(LeaseKey, Running)],
    ) -> spool_client::Result<Option<ProcessSignal>> {
        let busy: Vec<BusyJob> = running
            .iter()
            .map(|((id, _), r)| BusyJob {
                id: id.to_string(),
                queue: r.keys.queue.clone(),
                job_type: r.job_type().to_owned(),
                started_ms: r.leased_at_ms,
            })
            .collect();
        let info = serde_json::to_string(&self.info).unwrap_or_default();
        let busy = serde_json::to_string(&busy).unwrap_or_else(|_| "[]".to_owned());
        let beat = self
            .runtime
            .heartbeat(&self.info.id, &info, &busy, self.process_ttl)
            .await?;
        Ok(beat.signal)
    }
}

/// What a lease that could not be extended means for the run holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No run holds that lease any more: its outcome was written and it was
    /// removed between the snapshot and the reply.
    Untracked,
    /// The run finished and its outcome (ack, retry, dead) ended the lease
    /// before the extension arrived: "acked by me", not a loss.
    OwnOutcome,
    /// The run is still going without a lease: stop it.
    Cancel,
}

fn verdict(lost: &LostLease, run: Option<&Running>) -> Verdict {
    match run {
        None => Verdict::Untracked,
        // A lease taken by another token was lost before our outcome
        // could land, even if the run has finished: its handler is done
        // anyway, and the completer will report the write as lease-lost.
        Some(run) if run.is_finished() && lost.why != LeaseLoss::Taken => Verdict::OwnOutcome,
        Some(_) => Verdict::Cancel,
    }
}

impl super::Service for Heartbeat {
    const NAME: &'static str = "heartbeat";

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        self.run_once().await?;
        Ok(jittered(self.interval))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use spool_client::runtime::{LeaseLoss, LeaseToken, LostLease, QueueKeys};
    use spool_client::JobId;
    use tokio_util::sync::CancellationToken;

    use std::time::{Duration, Instant};

    use super::{stop_expired, verdict, Verdict};
    use crate::in_flight::{mark_finished, RunState, Running};

    fn run(finished: bool) -> Running {
        let state = RunState::new(Instant::now() + Duration::from_secs(30));
        if finished {
            mark_finished(&state.finished);
        }
        Running {
            keys: Arc::new(QueueKeys::new("spool", "default")),
            cancel: CancellationToken::new(),
            record: None,
            leased_at_ms: 0,
            state,
        }
    }

    fn lost(taken: bool) -> LostLease {
        LostLease {
            id: JobId::from("j1"),
            token: LeaseToken::from("7"),
            why: if taken {
                LeaseLoss::Taken
            } else {
                LeaseLoss::Gone
            },
        }
    }

    #[test]
    fn a_lease_ended_by_our_own_ack_is_not_a_loss() {
        assert_eq!(verdict(&lost(false), Some(&run(true))), Verdict::OwnOutcome);
        assert_eq!(verdict(&lost(false), None), Verdict::Untracked);
        assert_eq!(verdict(&lost(true), None), Verdict::Untracked);
    }

    #[test]
    fn a_running_handler_without_its_lease_is_cancelled() {
        assert_eq!(verdict(&lost(true), Some(&run(false))), Verdict::Cancel);
        assert_eq!(verdict(&lost(false), Some(&run(false))), Verdict::Cancel);
        assert_eq!(verdict(&lost(true), Some(&run(true))), Verdict::Cancel);
    }

    #[test]
    fn a_run_past_its_lease_by_the_local_clock_is_stopped_once() {
        let key = (JobId::from("j1"), LeaseToken::from("7"));
        let (live, done) = (run(false), run(true));
        let running = vec![(key.clone(), live.clone()), (key, done.clone())];
        let now = Instant::now();
        assert_eq!(stop_expired(&running, now), 0);
        let later = now + Duration::from_secs(31);
        assert_eq!(stop_expired(&running, later), 1);
        assert!(live.cancel.is_cancelled());
        assert!(
            !done.cancel.is_cancelled(),
            "a finished run keeps its outcome"
        );
        assert_eq!(stop_expired(&running, later), 0, "told once");
        live.extended_to(later + Duration::from_secs(30));
    }
}
