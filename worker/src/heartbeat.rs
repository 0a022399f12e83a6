//! Heartbeat: keeps this process's leases alive and its registration fresh.
//!
//! Every `heartbeat_interval` (jittered): one pipelined `extend.lua` call per
//! queue for all running jobs (Redis's clock + lease); a job whose lease was
//! lost has its cancellation fired so its handler can stop. Then the process
//! record (host, pid, queues, concurrency, busy jobs) is written with a TTL,
//! so the dashboard lists live workers and forgets dead ones by itself.

use std::time::Duration;

use spool_client::admin::{BusyJob, ProcessInfo};
use spool_client::Client;
use tokio_util::sync::CancellationToken;

use crate::backoff::jittered;
use crate::in_flight::InFlight;

/// What one beat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatReport {
    /// Leases extended.
    pub extended: usize,
    /// Leases found lost (their handlers were told to stop).
    pub lost: usize,
}

pub(crate) struct Heartbeat {
    pub(crate) client: Client,
    pub(crate) info: ProcessInfo,
    pub(crate) in_flight: InFlight,
    pub(crate) lease: Duration,
    pub(crate) interval: Duration,
    pub(crate) process_ttl: Duration,
}

impl Heartbeat {
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(jittered(self.interval)) => {}
                () = stop.cancelled() => break,
            }
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = %err, "heartbeat failed; will retry next beat");
            }
        }
        tracing::debug!("heartbeat stopped");
    }

    pub(crate) async fn run_once(&self) -> spool_client::Result<HeartbeatReport> {
        let running = self.in_flight.snapshot();
        let leases: Vec<_> = running
            .iter()
            .map(|(id, r)| (r.keys.clone(), id.clone(), r.token.clone()))
            .collect();
        let lost = self.client.extend(self.lease, &leases).await?;
        for id in &lost {
            tracing::warn!(job_id = %id, "lease lost (expired and re-leased, or job removed); cancelling handler");
            self.in_flight.cancel(id);
        }
        self.register(&running).await?;
        Ok(HeartbeatReport {
            extended: leases.len() - lost.len(),
            lost: lost.len(),
        })
    }

    /// Writes the process record; also used at start-up.
    pub(crate) async fn register(
        &self,
        running: &[(spool_client::JobId, crate::in_flight::Running)],
    ) -> spool_client::Result<()> {
        let busy: Vec<BusyJob> = running
            .iter()
            .map(|(id, r)| BusyJob {
                id: id.to_string(),
                queue: r.keys.queue.clone(),
                job_type: r.job_type.clone(),
                started_ms: r.leased_at_ms,
            })
            .collect();
        let info = serde_json::to_string(&self.info).unwrap_or_default();
        let busy = serde_json::to_string(&busy).unwrap_or_else(|_| "[]".to_owned());
        self.client
            .heartbeat(&self.info.id, &info, &busy, self.process_ttl)
            .await?;
        Ok(())
    }
}
