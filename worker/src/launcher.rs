//! Launcher: runs a [`Worker`] (built by [`WorkerBuilder`]), owning every
//! task it starts.
//!
//! Start order: check Redis (`maxmemory-policy`, persistence), register the
//! queues and the process, then start the completer, heartbeat, maintenance
//! services (cron too, when the builder was given a cron table), wakers and
//! finally the fetcher. Stop order is written out in
//! [`Worker::run_until`]; each step logs one line.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use spool_client::admin::ProcessInfo;
use spool_client::runtime::{QueueKeys, Runtime};
use spool_client::Client;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::builder::WorkerBuilder;
use crate::completer::Completer;
use crate::config::WorkerConfig;
use crate::error::Result;
use crate::executor::{ExecutorDeps, RunDeps};
use crate::fetcher::{FetchQueue, Fetcher, Hold, Waker};
use crate::in_flight::InFlight;
use crate::registry::Registry;
use crate::services::scheduler::PlannedPass;
use crate::services::{self, CronScheduler, Heartbeat, Reaper, Scheduler, Trimmer};

/// A worker process: fetches leased jobs from its queues and runs them.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use spool_worker::{Worker, JobContext, JobError};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
/// impl spool_client::Job for SendEmail { const TYPE: &'static str = "send_email"; }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = spool_client::Client::connect("redis://127.0.0.1:6379").await?;
/// let worker = Worker::builder(client)
///     .queue("default", 1)
///     .concurrency(20)
///     .register(|ctx: JobContext, job: SendEmail| async move {
///         tracing::info!(to = %job.to, attempt = ctx.attempt(), "sending");
///         Ok::<(), JobError>(())
///     })
///     .build()?;
/// worker.run_until(spool_worker::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    pub(crate) client: Client,
    pub(crate) config: WorkerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The cron service, when the builder was given a cron table.
    pub(crate) cron: Option<CronScheduler>,
    /// Its metrics (always collected).
    pub(crate) metrics: crate::metrics::WorkerMetrics,
    /// Where to serve them ([`WorkerBuilder::metrics`]).
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts building a worker on `client`.
    #[must_use]
    pub fn builder(client: Client) -> WorkerBuilder {
        WorkerBuilder::new(client)
    }

    /// This process's worker id (`host:pid:random`), as shown on the dashboard.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The validated configuration.
    #[must_use]
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Checks Redis until it answers: refuses an evicting `maxmemory-policy`,
    /// warns when persistence is off. Connection errors are retried (a
    /// worker may start before Redis) until `stop` fires.
    async fn check_redis(&self, stop: &CancellationToken) -> Result<()> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.client.check_server().await {
                Ok(check) => {
                    if check.persistence_off() {
                        tracing::warn!("redis persistence is off (no AOF, no RDB): a Redis restart loses every queued job");
                    }
                    return Ok(());
                }
                Err(err @ spool_client::Error::UnsafeServer(_)) => {
                    if self.config.require_noeviction {
                        return Err(err.into());
                    }
                    tracing::warn!(error = %err, "starting anyway: require_noeviction is off");
                    return Ok(());
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = crate::backoff::millis(delay), "redis not reachable at start-up; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }

    /// Runs until `shutdown` resolves (or an operator stops this process
    /// through Redis: `Admin::signal_process`, the dashboard's Processes
    /// page), then stops gracefully and returns.
    ///
    /// # Errors
    /// [`Error::Client`](crate::Error::Client) with [`spool_client::Error::UnsafeServer`] when
    /// Redis may evict keys. Redis being unreachable is never an error here:
    /// every loop logs, backs off and reconnects.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        tokio::pin!(shutdown);
        let early_stop = CancellationToken::new();
        tokio::select! {
            r = self.check_redis(&early_stop) => r?,
            () = &mut shutdown => { tracing::info!("shutdown before start-up finished"); return Ok(()); }
        }
        let running = self.start().await?;
        let stop_asked = running.tokens.stop_asked.clone();
        tokio::select! {
            () = shutdown => {}
            () = stop_asked.cancelled() => {}
        }
        running.stop().await;
        Ok(())
    }

    /// Registers the queues and starts every task: completer, services
    /// (heartbeat, scheduler, reaper, trimmer, cron), wakers, then the
    /// fetcher last, so nothing is leased before its outcome can be written.
    #[allow(clippy::too_many_lines)] // the start order, top to bottom, is the point: one sequence reads better than six helpers
    async fn start(self) -> Result<Running> {
        let cfg = self.config;
        crate::executor::record_panic_locations();
        let runtime = self.client.runtime();
        let names: Vec<&str> = cfg.queues.iter().map(|q| q.name.as_str()).collect();
        if let Err(err) = self.client.admin().register_queues(&names).await {
            tracing::warn!(error = %err, "could not register queues; they appear once jobs arrive");
        }
        let queues: Vec<Arc<QueueKeys>> = cfg
            .queues
            .iter()
            .map(|q| self.client.queue_keys(&q.name).map(Arc::new))
            .collect::<spool_client::Result<_>>()?;
        let tokens = Tokens::default();
        let metrics = self.metrics.clone();
        if let Some(addr) = self.metrics_addr {
            let listener = crate::metrics::bind(addr).await?;
            let mut registry = prometheus_client::registry::Registry::default();
            metrics.register(&mut registry);
            tracing::info!(%addr, "serving worker metrics at /metrics");
            tokio::spawn(crate::metrics::serve(
                listener,
                Arc::new(registry),
                tokens.services.clone(),
            ));
        }
        let in_flight = InFlight::default();
        let mut services = JoinSet::new();
        let scheduler_nudge = Arc::new(Notify::new());
        let scheduler_planned = Arc::new(PlannedPass::default());

        let (completions_tx, completions_rx) = mpsc::channel(4 * crate::completer::BATCH_MAX);
        // The completer ends when the fetcher and every executor dropped
        // their sender: "last sender dropped" means all outcomes are queued.
        let completer = tokio::spawn(
            Completer {
                runtime: runtime.clone(),
                in_flight: in_flight.clone(),
                metrics: metrics.clone(),
                rx: completions_rx,
                give_up_after: cfg.lease,
                nudge_below: cfg.scheduler_interval,
                scheduler_nudge: Arc::clone(&scheduler_nudge),
            }
            .run(),
        );
        let stop = &tokens.services;
        services.spawn(services::run(
            Heartbeat {
                runtime: runtime.clone(),
                info: ProcessInfo {
                    id: self.id.clone(),
                    host: self.host,
                    pid: self.pid,
                    queues: cfg.queues.iter().map(|q| q.name.clone()).collect(),
                    concurrency: cfg.concurrency,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                },
                in_flight: in_flight.clone(),
                lease: cfg.lease,
                interval: cfg.heartbeat_interval,
                process_ttl: cfg.process_ttl,
                quiet: tokens.fetch.clone(),
                stop_asked: tokens.stop_asked.clone(),
                metrics: metrics.clone(),
            },
            stop.clone(),
            metrics.clone(),
        ));
        let scheduler = Scheduler::new(runtime.clone(), queues.clone(), cfg.scheduler_interval)
            .with_nudge(Arc::clone(&scheduler_nudge))
            .with_planned(Arc::clone(&scheduler_planned));
        services.spawn(services::run(scheduler, stop.clone(), metrics.clone()));
        let reaper = Reaper::new(runtime.clone(), queues.clone(), cfg.reaper_interval);
        services.spawn(services::run(reaper, stop.clone(), metrics.clone()));
        let trimmer = Trimmer::new(runtime.clone(), queues.clone(), cfg.trimmer_interval);
        services.spawn(services::run(trimmer, stop.clone(), metrics.clone()));
        if let Some(cron) = self.cron {
            services.spawn(services::run(cron, stop.clone(), metrics.clone()));
        }
        services.spawn(services::listen_for_cancels(
            runtime.clone(),
            in_flight.clone(),
            stop.clone(),
        ));

        let wake = Arc::new(Notify::new());
        let (want_wake_tx, want_wake_rx) = watch::channel(false);
        let mut wakers = JoinSet::new();
        let holds: Vec<Hold> = queues.iter().map(|_| Hold::default()).collect();
        for (keys, hold) in queues.iter().zip(&holds) {
            wakers.spawn(
                Waker {
                    runtime: runtime.clone(),
                    keys: Arc::clone(keys),
                    hold: hold.clone(),
                    idle_wait: cfg.idle_wait,
                    want_wake: want_wake_rx.clone(),
                    wake: Arc::clone(&wake),
                    scheduler_nudge: Arc::clone(&scheduler_nudge),
                    stop: tokens.fetch.clone(),
                }
                .run(),
            );
        }
        let fetch_queues = cfg
            .queues
            .iter()
            .zip(queues.iter().zip(holds))
            .map(|(spec, (keys, hold))| FetchQueue {
                keys: Arc::clone(keys),
                hold,
                weight: spec.weight,
                limit: spec.concurrency.map(|n| Arc::new(Semaphore::new(n))),
            })
            .collect();
        let tracker = TaskTracker::new();
        let fetcher = tokio::spawn(
            Fetcher {
                runtime: runtime.clone(),
                config: cfg.clone(),
                worker_id: self.id.clone(),
                queues: fetch_queues,
                slots: Arc::new(Semaphore::new(cfg.concurrency)),
                in_flight: in_flight.clone(),
                tracker: tracker.clone(),
                deps: ExecutorDeps {
                    run: Arc::new(RunDeps {
                        registry: Arc::clone(&self.registry),
                        hard_stop: tokens.hard_stop.clone(),
                        shutting_down: tokens.shutting_down.clone(),
                        max_result_bytes: self.client.max_payload_bytes(),
                        unknown_types: cfg.unknown_types,
                        metrics: metrics.clone(),
                        keyring: self.client.keyring().cloned(),
                    }),
                    completions: completions_tx,
                },
                wake,
                scheduler_nudge: Arc::clone(&scheduler_nudge),
                scheduler_planned,
                want_wake: want_wake_tx,
                stop: tokens.fetch.clone(),
            }
            .run(),
        );
        tracing::info!(worker_id = %self.id, queues = ?names, concurrency = cfg.concurrency, "worker started");
        Ok(Running {
            runtime,
            worker_id: self.id,
            grace: cfg.shutdown_timeout,
            tokens,
            in_flight,
            fetcher,
            wakers,
            tracker,
            completer,
            services,
        })
    }
}

/// The cancellation tokens of a running worker, one per shutdown stage.
#[derive(Default)]
struct Tokens {
    /// Ends fetching and the wakers (step 1).
    fetch: CancellationToken,
    /// Tells handlers that shutdown began (their `JobContext` token).
    shutting_down: CancellationToken,
    /// Drops handlers still running after the grace period (step 3).
    hard_stop: CancellationToken,
    /// Ends heartbeat and maintenance, last (step 6).
    services: CancellationToken,
    /// An operator's stop signal arrived (heartbeat): shut down as on SIGTERM.
    stop_asked: CancellationToken,
}

/// A started worker: every task it owns, stopped one step at a time.
struct Running {
    runtime: Runtime,
    worker_id: String,
    /// How long running jobs may take to finish at shutdown.
    grace: Duration,
    tokens: Tokens,
    in_flight: InFlight,
    fetcher: JoinHandle<()>,
    /// One blocking waiter per queue; end with `tokens.fetch`.
    wakers: JoinSet<()>,
    /// Executors' home, so shutdown can wait for every running job.
    tracker: TaskTracker,
    /// Ends by itself once the fetcher and every executor dropped their
    /// outcome sender.
    completer: JoinHandle<()>,
    /// Heartbeat, scheduler, reaper, trimmer, cron; end with `tokens.services`.
    services: JoinSet<()>,
}

impl Running {
    /// Stops gracefully, in order; each step logs one line.
    async fn stop(mut self) {
        tracing::info!(
            grace_ms = crate::backoff::millis(self.grace),
            running = self.in_flight.len(),
            "shutting down"
        );
        self.stop_fetching().await;
        let finished = self.wait_for_running().await;
        self.drop_unfinished(finished).await;
        self.flush_outcomes().await;
        self.hand_back().await;
        self.stop_services().await;
    }

    /// 1. Stop fetching: no new leases from here on.
    async fn stop_fetching(&mut self) {
        self.tokens.fetch.cancel();
        let _ = (&mut self.fetcher).await;
        while self.wakers.join_next().await.is_some() {}
        self.tokens.shutting_down.cancel();
        // Each run's own token (not a child of `shutting_down`: a child
        // costs a lock of the parent as it is made and as it is dropped, per
        // job). No run is added from here on: the fetcher has ended.
        self.in_flight.cancel_all();
        tracing::info!("1/6 fetching stopped");
    }

    /// 2. Let running jobs finish within the grace period; true if all did.
    async fn wait_for_running(&self) -> bool {
        self.tracker.close();
        let finished = tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_ok();
        tracing::info!(all_finished = finished, "2/6 running jobs waited for");
        finished
    }

    /// 3. Past the grace period: drop the handlers still running.
    async fn drop_unfinished(&self, all_finished: bool) {
        if all_finished {
            tracing::info!("3/6 nothing to drop");
            return;
        }
        self.tokens.hard_stop.cancel();
        self.tracker.wait().await;
        tracing::info!("3/6 unfinished handlers dropped");
    }

    /// 4. Flush outcomes: the completer ends once every sender is gone.
    async fn flush_outcomes(&mut self) {
        let _ = (&mut self.completer).await;
        tracing::info!("4/6 outcomes written");
    }

    /// 5. Hand back every job still leased (dropped or interrupted) at once.
    async fn hand_back(&self) {
        let left: Vec<_> = self
            .in_flight
            .snapshot()
            .into_iter()
            .map(|((id, token), r)| (r.keys, id, token))
            .collect();
        if left.is_empty() {
            tracing::info!("5/6 no jobs to hand back");
            return;
        }
        match self.runtime.release(&left).await {
            Ok(n) => tracing::info!(released = n, "5/6 unfinished jobs handed back to ready"),
            Err(err) => tracing::error!(error = %err, jobs = left.len(),
                "5/6 could not hand jobs back; the reaper will return them when their leases expire"),
        }
    }

    /// 6. Stop heartbeat and maintenance (cron included: other processes
    ///    with the same table keep firing); remove the process record.
    async fn stop_services(&mut self) {
        self.tokens.services.cancel();
        while self.services.join_next().await.is_some() {}
        if let Err(err) = self.runtime.unregister(&self.worker_id).await {
            tracing::warn!(error = %err, "6/6 could not remove the process record; it expires by itself");
        } else {
            tracing::info!("6/6 maintenance stopped, process unregistered; bye");
        }
        self.in_flight.cancel_all();
    }
}
