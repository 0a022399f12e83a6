//! [`WorkerBuilder`]: queues, limits, timing, handlers and the cron table
//! of a [`Worker`], checked once at [`WorkerBuilder::build`].

use std::future::Future;
use std::sync::Arc;

use spool_client::runtime::PROCESS_HOST_MAX_BYTES;
use spool_client::{truncate_utf8, Client, CronEntry, Job};

use crate::config::{QueueOrder, QueueSpec, WorkerConfig};
use crate::error::{Error, Result};
use crate::handler::JobContext;
use crate::launcher::Worker;
use crate::outcome::JobError;
use crate::registry::Registry;
use crate::services::CronScheduler;

/// Builds a [`Worker`]: queues, limits, timing and handlers.
pub struct WorkerBuilder {
    client: Client,
    config: WorkerConfig,
    registry: Registry,
    cron: Vec<CronEntry>,
    /// Set by [`WorkerBuilder::webhooks`]: whether its secret is usable.
    webhooks: Option<bool>,
    metrics: crate::metrics::WorkerMetrics,
    metrics_addr: Option<std::net::SocketAddr>,
}

impl WorkerBuilder {
    /// See [`Worker::builder`].
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            config: WorkerConfig::default(),
            registry: Registry::default(),
            cron: Vec::new(),
            webhooks: None,
            metrics: crate::metrics::WorkerMetrics::new(),
            metrics_addr: None,
        }
    }
}

impl WorkerBuilder {
    /// Fetch from `name` with `weight` (see [`QueueOrder::Weighted`]).
    #[must_use]
    pub fn queue(mut self, name: impl Into<String>, weight: u32) -> Self {
        self.config.queues.push(QueueSpec::new(name).weight(weight));
        self
    }

    /// Fetch from a fully specified queue (weight, per-queue limit).
    #[must_use]
    pub fn queue_spec(mut self, spec: QueueSpec) -> Self {
        self.config.queues.push(spec);
        self
    }

    /// Serve queues strictly in the order they were added.
    #[must_use]
    pub fn strict_order(mut self) -> Self {
        self.config.order = QueueOrder::Strict;
        self
    }

    /// Most jobs running at once in this process.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Replaces the whole configuration (queues included). Start from
    /// [`WorkerConfig::default`] and change what you need; the builder
    /// validates it in [`build`](Self::build).
    ///
    /// ```
    /// use spool_worker::{QueueSpec, UnknownTypes, Worker, WorkerConfig};
    /// use std::time::Duration;
    ///
    /// # fn demo(client: spool_client::Client) {
    /// let config = WorkerConfig {
    ///     queues: vec![QueueSpec::new("critical").weight(3), QueueSpec::new("default")],
    ///     concurrency: 50,
    ///     lease: Duration::from_secs(60),
    ///     unknown_types: UnknownTypes::Dead, // no handler: dead at once, not retried
    ///     ..WorkerConfig::default()
    /// };
    /// let builder = Worker::builder(client).config(config);
    /// # }
    /// ```
    #[must_use]
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the configuration in place (keeping the queues added so far).
    ///
    /// ```
    /// # fn demo(client: spool_client::Client) {
    /// let builder = spool_worker::Worker::builder(client)
    ///     .queue("default", 1)
    ///     .configure(|c| c.lease = std::time::Duration::from_secs(120));
    /// # }
    /// ```
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(&mut WorkerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Serves this worker's metrics (Prometheus text, [`crate::metrics`])
    /// at `http://ADDR/metrics` while it runs; the worker refuses to start
    /// when it cannot bind `addr`. Keep it on a private interface (it has
    /// no authentication), e.g. `127.0.0.1:9464` behind your scraper.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
    /// # impl spool_client::Job for Ping { const TYPE: &'static str = "ping"; }
    /// # fn demo(client: spool_client::Client) -> spool_worker::Result<()> {
    /// let worker = spool_worker::Worker::builder(client)
    ///     .metrics("127.0.0.1:9464".parse().expect("an address"))
    ///     .register(|_ctx, _job: Ping| async { Ok(()) })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn metrics(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// Registers this worker's metrics in `registry`, one the application
    /// already serves (`prometheus_client`, re-exported as
    /// [`crate::prometheus_client`]); job types registered later are
    /// included.
    ///
    /// ```no_run
    /// # fn demo(client: spool_client::Client) {
    /// use spool_worker::prometheus_client::registry::Registry;
    /// let mut registry = Registry::default();
    /// let builder = spool_worker::Worker::builder(client).metrics_registry(&mut registry);
    /// // … serve `registry` with the application's other metrics.
    /// # }
    /// ```
    #[must_use]
    pub fn metrics_registry(self, registry: &mut prometheus_client::registry::Registry) -> Self {
        self.metrics.register(registry);
        self
    }

    /// Adds a middleware around every job's handler; the first added is
    /// the outermost. See [`crate::middleware`].
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
    /// # impl spool_client::Job for Ping { const TYPE: &'static str = "ping"; }
    /// # fn demo(client: spool_client::Client) -> spool_worker::Result<()> {
    /// use spool_worker::middleware::{from_fn, Next};
    /// use spool_worker::{JobContext, JobError, Worker};
    ///
    /// // Refuse jobs of a tenant that is being migrated; they retry later.
    /// let worker = Worker::builder(client)
    ///     .middleware(from_fn(|ctx: JobContext, next: Next| async move {
    ///         if ctx.record().queue == "tenant-42" {
    ///             return Err(JobError::retry("tenant 42 is being migrated"));
    ///         }
    ///         next.run().await
    ///     }))
    ///     .register(|_ctx, _job: Ping| async { Ok(()) })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn middleware(mut self, m: impl crate::middleware::Middleware) -> Self {
        self.registry.add_middleware(std::sync::Arc::new(m));
        self
    }

    /// Registers the handler for job type `J`.
    ///
    /// The handler gets a [`JobContext`] and the decoded job and returns
    /// `Ok(())` or a [`JobError`]: `?` on any error retries with backoff,
    /// [`JobError::permanent`] sends the job to the dead set at once. A
    /// panic counts as a failure (its error names `file:line`). A handler
    /// that returns a value is registered with [`WorkerBuilder::register_returning`].
    /// Registering a type twice keeps the last handler.
    ///
    /// ```no_run
    /// use serde::{Deserialize, Serialize};
    /// use spool_client::Job;
    /// use spool_worker::{JobContext, JobError, Worker};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct SendEmail { to: String }
    /// impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
    ///
    /// # async fn demo(client: spool_client::Client) -> Result<(), spool_worker::Error> {
    /// Worker::builder(client)
    ///     .queue("default", 1)
    ///     .register(|ctx: JobContext, job: SendEmail| async move {
    ///         if !job.to.contains('@') {
    ///             return Err(JobError::permanent("not an address")); // dead at once
    ///         }
    ///         tracing::info!(id = %ctx.id(), attempt = ctx.attempt(), "sending to {}", job.to);
    ///         Ok(())
    ///     })
    ///     .build()?
    ///     .run_until(spool_worker::shutdown_signal())
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn register<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), JobError>> + Send + 'static,
    {
        self.registry.register::<J, F, Fut, ()>(handler, |()| None);
        self
    }

    /// Registers a handler that returns a value: `J::Output` (see
    /// [`JobOutput`](spool_client::JobOutput)). The value is kept with the
    /// job's outcome when the job keeps one
    /// ([`JobOptions::keep_outcome`](spool_client::JobOptions::keep_outcome)),
    /// and producers read it with `Client::result::<J>`.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use spool_client::{Job, JobOptions, JobOutput};
    /// use spool_worker::Worker;
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Add { a: i64, b: i64 }
    /// impl Job for Add {
    ///     const TYPE: &'static str = "add";
    ///     fn options() -> JobOptions {
    ///         JobOptions::default().keep_outcome(Duration::from_secs(3600))
    ///     }
    /// }
    /// impl JobOutput for Add { type Output = i64; }
    ///
    /// # fn demo(client: spool_client::Client) {
    /// let worker = Worker::builder(client)
    ///     .register_returning(|_ctx, job: Add| async move { Ok(job.a + job.b) });
    /// # }
    /// ```
    #[must_use]
    pub fn register_returning<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: spool_client::JobOutput,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<J::Output, JobError>> + Send + 'static,
    {
        self.registry
            .register::<J, F, Fut, J::Output>(handler, crate::registry::returned::<J::Output>);
        self
    }

    /// Adds an entry to this process's cron table: its job is enqueued once
    /// per tick of its schedule, however many processes have the same entry
    /// (see `docs/CRON.md`). Give every process the same table.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct NightlyReport;
    /// # impl spool_client::Job for NightlyReport { const TYPE: &'static str = "nightly_report"; }
    /// # fn demo(builder: spool_worker::WorkerBuilder) -> spool_worker::Result<spool_worker::Worker> {
    /// use spool_worker::CronEntry;
    /// builder
    ///     .cron(CronEntry::new("nightly-report", "0 3 * * *", &NightlyReport).timezone("Europe/Berlin"))
    ///     .cron(CronEntry::new("heartbeat", "*/30 * * * * *", &NightlyReport))
    ///     .build()
    /// # }
    /// ```
    #[must_use]
    pub fn cron(mut self, entry: CronEntry) -> Self {
        self.cron.push(entry);
        self
    }

    /// Delivers signed webhooks ([`EnqueueOptions::webhook`](spool_client::EnqueueOptions::webhook)):
    /// registers the handler of [`WebhookDelivery`](spool_client::WebhookDelivery)
    /// jobs and serves their queue (`webhooks`, added to the queues given).
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
    /// # impl spool_client::Job for Ping { const TYPE: &'static str = "ping"; }
    /// # fn demo(client: spool_client::Client) -> spool_worker::Result<()> {
    /// use spool_worker::{WebhookConfig, Worker};
    /// let secret = std::env::var("SPOOL_WEBHOOK_SECRET").expect("a webhook secret");
    /// let worker = Worker::builder(client)
    ///     .webhooks(WebhookConfig::new(secret).allow_hosts(["hooks.example.com"]))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn webhooks(mut self, config: crate::WebhookConfig) -> Self {
        let policy = config.policy();
        let valid = config.is_valid();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok();
        let config = Arc::new(config);
        self = self.register(move |ctx: JobContext, job: spool_client::WebhookDelivery| {
            let (config, http) = (Arc::clone(&config), http.clone());
            async move {
                let Some(http) = http else {
                    return Err(JobError::retry("the webhook HTTP client could not start"));
                };
                crate::webhook::deliver(&config, &http, &ctx, &job).await
            }
        });
        self.registry
            .set_retry_policy(<spool_client::WebhookDelivery as Job>::TYPE, policy);
        self.webhooks = Some(valid);
        self
    }

    /// The client, handlers and unknown-type setting, for the inline runner.
    #[cfg(feature = "testing")]
    pub(crate) fn into_inline_parts(self) -> (Client, Registry, crate::UnknownTypes) {
        (self.client, self.registry, self.config.unknown_types)
    }

    /// Validates the configuration and builds the worker.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting;
    /// [`Error::Client`] with [`spool_client::Error::InvalidCronEntry`]
    /// naming a cron entry whose schedule, time zone, name or queue is bad.
    pub fn build(mut self) -> Result<Worker> {
        if self.registry.is_empty() {
            return Err(Error::Config("no job handlers registered".into()));
        }
        if self.config.queues.is_empty() {
            self.config.queues = self
                .registry
                .default_queues()
                .into_iter()
                .map(QueueSpec::new)
                .collect();
        }
        if self.webhooks == Some(false) {
            return Err(Error::Config(
                "the webhook signing secret must not be empty".into(),
            ));
        }
        if self.webhooks.is_some()
            && !self
                .config
                .queues
                .iter()
                .any(|q| q.name == spool_client::WEBHOOK_QUEUE)
        {
            self.config
                .queues
                .push(QueueSpec::new(spool_client::WEBHOOK_QUEUE));
        }
        self.config.validate()?;
        let cron = if self.cron.is_empty() {
            None
        } else {
            Some(CronScheduler::new(
                self.client.runtime(),
                self.cron,
                self.config.cron.clone(),
            )?)
        };
        let host = hostname::get().map_or_else(
            |_| "unknown".to_owned(),
            |h| truncate_utf8(&h.to_string_lossy(), PROCESS_HOST_MAX_BYTES).to_owned(),
        );
        let pid = std::process::id();
        let suffix: u32 = rand::random();
        Ok(Worker {
            id: format!("{host}:{pid}:{suffix:08x}"),
            host,
            pid,
            client: self.client,
            config: self.config,
            metrics: self.metrics.for_types(self.registry.type_names()),
            registry: Arc::new(self.registry),
            cron,
            metrics_addr: self.metrics_addr,
        })
    }
}
