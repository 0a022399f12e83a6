//! The shape of the maintenance services that work queue by queue (reaper,
//! scheduler, trimmer): a [`QueueDuty`] says what one script call on one
//! queue does; [`PerQueue`] runs it over the worker's queues, calling again
//! while a call handled a full batch, and is the [`Service`] the loop runs.

use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::{QueueKeys, Runtime};
use tokio::sync::Notify;

use super::Service;
use crate::backoff::jittered;

/// One maintenance duty, applied to one queue at a time.
pub(crate) trait QueueDuty: Send + Sync + 'static {
    /// The service's name in logs.
    const NAME: &'static str;
    /// What a pass over all queues did.
    type Report: Default + Debug + Send;

    /// One script call on one queue, added to `report`; true when it
    /// handled a full batch, so there may be more to do right away.
    fn call(
        runtime: &Runtime,
        keys: &QueueKeys,
        report: &mut Self::Report,
    ) -> impl Future<Output = spool_client::Result<bool>> + Send;

    /// Logs a pass's report (only what an operator should see).
    fn log(report: &Self::Report);

    /// How long to wait after a pass: the interval, jittered, unless the
    /// report knows better (the scheduler's next due job).
    fn next_pass(_report: &Self::Report, interval: Duration) -> Duration {
        jittered(interval)
    }
}

/// A [`QueueDuty`] over a set of queues: the service a worker runs.
pub(crate) struct PerQueue<D> {
    runtime: Runtime,
    queues: Vec<Arc<QueueKeys>>,
    /// Time between passes (from [`WorkerConfig`](crate::WorkerConfig)).
    interval: Duration,
    /// Ends the wait between passes early, for duties that have one.
    nudge: Option<Arc<Notify>>,
    /// Where the next pass's time is published, if anyone reads it.
    planned: Option<Arc<super::scheduler::PlannedPass>>,
    duty: PhantomData<fn() -> D>,
}

impl<D: QueueDuty> PerQueue<D> {
    pub(crate) fn new(runtime: Runtime, queues: Vec<Arc<QueueKeys>>, interval: Duration) -> Self {
        Self {
            runtime,
            queues,
            interval,
            nudge: None,
            planned: None,
            duty: PhantomData,
        }
    }

    /// Wakes the service early when `nudge` is notified.
    pub(crate) fn with_nudge(mut self, nudge: Arc<Notify>) -> Self {
        self.nudge = Some(nudge);
        self
    }

    /// One pass over every queue.
    /// Publishes the time of each next pass in `planned` (the fetcher
    /// compares queues' due hints with it).
    pub(crate) fn with_planned(mut self, planned: Arc<super::scheduler::PlannedPass>) -> Self {
        self.planned = Some(planned);
        self
    }

    pub(crate) async fn run_once(&self) -> spool_client::Result<D::Report> {
        let mut report = D::Report::default();
        for keys in &self.queues {
            while D::call(&self.runtime, keys, &mut report).await? {}
        }
        Ok(report)
    }
}

impl<D: QueueDuty> Service for PerQueue<D> {
    const NAME: &'static str = D::NAME;

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        let report = self.run_once().await?;
        D::log(&report);
        let next = D::next_pass(&report, self.interval);
        if let Some(planned) = &self.planned {
            planned.set(std::time::Instant::now() + next);
        }
        Ok(next)
    }

    fn nudge(&self) -> Option<Arc<Notify>> {
        self.nudge.clone()
    }
}
