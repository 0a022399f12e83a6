//! Enqueue: app --enqueue--> ready list (now), or scheduled set (at / in).
//!
//! Builds job bodies in Rust (validating the queue name, the payload size
//! and the args nesting depth ([`MAX_ARGS_DEPTH`](crate::MAX_ARGS_DEPTH))
//! before anything reaches Redis) and hands them to `enqueue.lua`, which
//! stamps the script-owned fields with Redis's clock and applies the
//! idempotency key atomically. Bulk enqueues go 1,000 jobs per script call,
//! all calls in one pipeline: one round trip for 10,000 jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::admin::register_queues_cmd;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::{CronOrigin, Job, JobBody, JobId, PRIORITY_MAX};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::wire::check_args_depth;

/// Idempotency window used when a key is given without one (24 hours).
pub const IDEMPOTENCY_WINDOW_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// Jobs per `enqueue.lua` call in a bulk enqueue.
pub(crate) const BULK_CHUNK: usize = 1000;

/// Longest a lock held until started or finished lives when nothing releases
/// it (a safety net: the scripts release it on time).
pub const UNIQUE_LOCK_TTL_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// How long a uniqueness (idempotency) key holds off duplicates: a second
/// enqueue with the same key on the same queue creates nothing and returns
/// the first job's id ([`Enqueued::duplicate`]).
///
/// The key is given with [`EnqueueOptions::idempotency_key`] or derived
/// from the job's type and args ([`EnqueueOptions::unique_by_args`], or a
/// job type whose [`JobOptions::unique`](crate::JobOptions::unique) is set).
/// Every lock has a TTL, so a key can never stay stuck; the scripts that
/// start or finish the job (including the reaper's) release it on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// Remembered for this long from the enqueue, whatever happens to the job.
    Window(Duration),
    /// Held until a worker starts the job (at most `ttl`).
    UntilStarted {
        /// Safety TTL.
        ttl: Duration,
    },
    /// Held until the job is done, dead or cancelled (at most `ttl`).
    UntilFinished {
        /// Safety TTL.
        ttl: Duration,
    },
}

impl Uniqueness {
    /// [`Uniqueness::UntilStarted`] with [`UNIQUE_LOCK_TTL_DEFAULT`].
    #[must_use]
    pub const fn until_started() -> Self {
        Self::UntilStarted {
            ttl: UNIQUE_LOCK_TTL_DEFAULT,
        }
    }

    /// [`Uniqueness::UntilFinished`] with [`UNIQUE_LOCK_TTL_DEFAULT`].
    #[must_use]
    pub const fn until_finished() -> Self {
        Self::UntilFinished {
            ttl: UNIQUE_LOCK_TTL_DEFAULT,
        }
    }

    /// `enqueue.lua`'s ARGV[1]: `<ms>`, `<ms>:started` or `<ms>:finished`.
    fn lock_arg(self) -> String {
        match self {
            Self::Window(d) => duration_ms(d).max(1).to_string(),
            Self::UntilStarted { ttl } => format!("{}:started", duration_ms(ttl).max(1)),
            Self::UntilFinished { ttl } => format!("{}:finished", duration_ms(ttl).max(1)),
        }
    }
}

/// The uniqueness key derived from a job's type and args: `args:` and the
/// SHA-256 of `type`, a newline and the args' JSON as serialized (struct
/// fields in declaration order; use ordered maps in args for stable keys).
#[must_use]
pub fn unique_key_for_args(job_type: &str, args: &RawValue) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(job_type.as_bytes());
    ctx.update(b"\n");
    ctx.update(args.get().as_bytes());
    let digest = ctx.finish();
    let hex: String = digest
        .as_ref()
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect();
    format!("args:{hex}")
}

/// Per-call overrides of a job type's defaults, and when to run.
///
/// ```
/// use spool_client::EnqueueOptions;
/// use std::time::Duration;
/// let opts = EnqueueOptions::new()
///     .queue("critical")
///     .max_attempts(3)
///     .delay(Duration::from_secs(60))
///     .idempotency_key("order-42-receipt");
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    queue: Option<String>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    at: Option<DateTime<Utc>>,
    delay: Option<Duration>,
    idempotency_key: Option<String>,
    idempotency_window: Option<Duration>,
    trace: Option<BTreeMap<String, String>>,
    keep_outcome: Option<Duration>,
    unique: Option<Uniqueness>,
    unique_by_args: bool,
    follow_ups: Vec<crate::FollowUp>,
    webhooks: Vec<String>,
    /// The job's id when the caller chose it (a chain's links).
    pub(crate) job_id: Option<JobId>,
    /// The batch (or chain) the job belongs to.
    pub(crate) batch: Option<crate::BatchId>,
    priority: Option<i8>,
    rate_key: Option<String>,
    group: Option<String>,
    encrypted: bool,
}

impl EnqueueOptions {
    /// Store this job's args encrypted even if its type is not marked so
    /// ([`JobOptions::encrypted`](crate::JobOptions::encrypted) has the
    /// details); the client needs a keyring.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// use spool_client::{EnqueueOptions, JobDefaults};
    /// let args = serde_json::value::to_raw_value(&serde_json::json!({"ssn": "078-05-1120"}))
    ///     .expect("JSON");
    /// client.enqueue_raw("verify", &args, &JobDefaults::default(), EnqueueOptions::new().encrypted()).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn encrypted(mut self) -> Self {
        self.encrypted = true;
        self
    }

    /// Fetch this job before (positive) or after (negative) the queue's
    /// jobs of priority 0, the default: levels -9 … 9, higher first, first
    /// in first out within a level. A queue whose jobs never set one stays
    /// one plain list and pays nothing; each level used is a list of its
    /// own, taken in order by the fetch script.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Report { id: u64 }
    /// # impl spool_client::Job for Report { const TYPE: &'static str = "report"; }
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// use spool_client::EnqueueOptions;
    /// // A customer is waiting for this one: ahead of the nightly batch.
    /// client.enqueue_with(&Report { id: 7 }, EnqueueOptions::new().priority(5)).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn priority(mut self, level: i8) -> Self {
        self.priority = Some(level);
        self
    }

    /// The job's rate key (e.g. its tenant) for its queue's per-key rate
    /// limit ([`Admin::set_key_rate_limit`](crate::Admin::set_key_rate_limit)):
    /// each key gets its own budget. Overrides [`Job::rate_key`]. At most
    /// 200 bytes, without `"`, `\` or control characters.
    #[must_use]
    pub fn rate_key(mut self, key: impl Into<String>) -> Self {
        self.rate_key = Some(key.into());
        self
    }

    /// The job's ordered group (an account, an order: SQS FIFO's message
    /// group, Kafka's partition key): jobs of one group run one at a time
    /// on whichever worker, in enqueue order; different groups run in
    /// parallel. A job that fails and will retry keeps its group's turn
    /// until it succeeds or dies, unless the queue's groups skip
    /// ([`Admin::configure_groups`](crate::Admin::configure_groups), which
    /// also allows more than one at a time per group). Overrides
    /// [`Job::group`]. Same shape as a rate key (at most 200 bytes, no `"`,
    /// `\` or control characters).
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ledger { account: u64, cents: i64 }
    /// # impl spool_client::Job for Ledger { const TYPE: &'static str = "ledger"; }
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// use spool_client::EnqueueOptions;
    /// let entry = Ledger { account: 42, cents: -500 };
    /// client.enqueue_with(&entry, EnqueueOptions::new().group("account-42")).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// No overrides: run now with the job type's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Send to this queue instead of the job type's.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Allow this many runs in total (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// Handler time limit per attempt.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Run at this time (by Redis's clock); a past time means now.
    #[must_use]
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self.delay = None;
        self
    }

    /// Run after this delay, counted from Redis's clock when the job arrives.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.at = None;
        self
    }

    /// Deduplicate: while a job enqueued with this key is remembered (the
    /// window, default 24 h), enqueueing again with the same key on the same
    /// queue creates nothing and returns the first job's id.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// How long an idempotency key is remembered.
    #[must_use]
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = Some(window);
        self
    }

    /// How the uniqueness key holds off duplicates (overrides the job
    /// type's [`JobOptions::unique`](crate::JobOptions::unique)). Without
    /// [`EnqueueOptions::idempotency_key`] the key is derived from the type
    /// and args.
    #[must_use]
    pub fn unique(mut self, mode: Uniqueness) -> Self {
        self.unique = Some(mode);
        self
    }

    /// Derive the uniqueness key from the job's type and args
    /// ([`unique_key_for_args`]); with no mode given it holds for the
    /// idempotency window.
    #[must_use]
    pub fn unique_by_args(mut self) -> Self {
        self.unique_by_args = true;
        self
    }

    /// Keep the job's outcome (state, result or last error, attempts, times,
    /// timeline) for `retention` after it finishes, for
    /// [`Client::status`], [`Client::result`] and [`Client::wait`];
    /// overrides the job type's [`JobOptions::keep_outcome`](crate::JobOptions::keep_outcome).
    /// Zero keeps nothing (the default).
    #[must_use]
    pub fn keep_outcome(mut self, retention: Duration) -> Self {
        self.keep_outcome = Some(retention);
        self
    }

    /// The queue asked for, if any (else the job type's).
    #[must_use]
    pub fn queue_name(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// The trace context set so far, if any.
    #[must_use]
    pub fn trace_context(&self) -> Option<&BTreeMap<String, String>> {
        self.trace.as_ref()
    }

    /// Trace context to carry to the handler (for example `traceparent`).
    #[must_use]
    pub fn trace(mut self, trace: BTreeMap<String, String>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Create `job` when this one ends as it says (success, failure,
    /// completion): by the script that ends this job, exactly once
    /// ([`FollowUp`](crate::FollowUp)). Repeat for several.
    #[must_use]
    pub fn follow_up(mut self, job: crate::FollowUp) -> Self {
        self.follow_ups.push(job);
        self
    }

    /// Tell `url` when this job ends (done, dead or cancelled): a signed
    /// `POST` of its outcome, delivered by a delivery job that the script
    /// ending this one creates (a [`FollowUp`](crate::FollowUp) of type
    /// [`WebhookDelivery`](crate::WebhookDelivery), queue `webhooks`,
    /// retried with backoff on anything but a 2xx answer). Workers deliver
    /// with [`WorkerBuilder::webhooks`](https://docs.rs/spool-worker), which holds the
    /// signing secret. Only `http` and `https` URLs with a host and without
    /// credentials are accepted: anything else fails the enqueue
    /// ([`Error::InvalidArgument`]); so do hosts outside the client's
    /// [`ClientBuilder::webhook_hosts`](crate::ClientBuilder::webhook_hosts).
    #[must_use]
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhooks.push(url.into());
        self
    }

    pub(crate) fn follow_ups(&self) -> &[crate::FollowUp] {
        &self.follow_ups
    }

    pub(crate) fn webhooks(&self) -> &[String] {
        &self.webhooks
    }

    pub(crate) fn keep_outcome_or(&self, fallback: Duration) -> Duration {
        self.keep_outcome.unwrap_or(fallback)
    }

    pub(crate) fn has_uniqueness(&self) -> bool {
        self.idempotency_key.is_some() || self.unique.is_some() || self.unique_by_args
    }
}

/// The result of an enqueue with options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id; for a duplicate, the id of the job created first.
    pub id: JobId,
    /// True when an idempotency key matched an earlier job and nothing was created.
    pub duplicate: bool,
}

/// The defaults an enqueue falls back on (from a [`Job`] type, or given
/// explicitly for untyped enqueues).
#[derive(Debug, Clone)]
pub struct JobDefaults {
    /// Default queue.
    pub queue: String,
    /// Default attempts.
    pub max_attempts: u32,
    /// Default timeout.
    pub timeout: Duration,
    /// Default outcome retention (zero: none).
    pub keep_outcome: Duration,
    /// Default uniqueness (key derived from the args unless a call gives one).
    pub unique: Option<Uniqueness>,
    /// URLs told when the job ends (signed webhooks).
    pub webhooks: Vec<String>,
    /// Jobs created when the job ends.
    pub follow_ups: Vec<crate::FollowUp>,
    /// Default priority within the queue.
    pub priority: i8,
    /// Seal the args with the client's keyring.
    pub encrypted: bool,
}

impl JobDefaults {
    /// The defaults declared by job type `J`.
    #[must_use]
    pub fn of<J: Job>() -> Self {
        let o = J::options();
        Self {
            queue: o.queue,
            max_attempts: o.max_attempts,
            timeout: o.timeout,
            keep_outcome: o.keep_outcome,
            unique: o.unique,
            webhooks: o.webhooks,
            follow_ups: o.follow_ups,
            priority: o.priority,
            encrypted: o.encrypted,
        }
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        let o = crate::JobOptions::default();
        Self {
            queue: o.queue,
            max_attempts: o.max_attempts,
            timeout: o.timeout,
            keep_outcome: o.keep_outcome,
            unique: o.unique,
            webhooks: o.webhooks,
            follow_ups: o.follow_ups,
            priority: o.priority,
            encrypted: o.encrypted,
        }
    }
}

/// Longest rate key, in bytes.
pub const RATE_KEY_MAX_BYTES: usize = 200;

/// Checks a rate key or group: the scripts read it with an anchored match.
fn check_routing_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > RATE_KEY_MAX_BYTES
        || key.contains(['"', '\\'])
        || key.chars().any(char::is_control)
    {
        return Err(Error::InvalidArgument(format!(
            "a {what} is 1 to {RATE_KEY_MAX_BYTES} bytes without quotes, backslashes or control characters, got {:?}",
            crate::truncate_utf8(key, 80)
        )));
    }
    Ok(())
}

/// `opts` with `job`'s own rate key and group ([`Job::rate_key`],
/// [`Job::group`]) where the call gave none and the job has one; `None` to
/// use `opts` as they are.
fn with_rate_key<J: Job>(job: &J, opts: &EnqueueOptions) -> Option<EnqueueOptions> {
    let key = job.rate_key().filter(|_| opts.rate_key.is_none());
    let group = job.group().filter(|_| opts.group.is_none());
    if key.is_none() && group.is_none() {
        return None;
    }
    let mut o = opts.clone();
    o.rate_key = key.or(o.rate_key);
    o.group = group.or(o.group);
    Some(o)
}

/// The uniqueness key and its lock for one enqueue, or `None`.
fn uniqueness(
    job_type: &str,
    args: &RawValue,
    defaults: &JobDefaults,
    opts: &EnqueueOptions,
) -> Result<Option<(String, Uniqueness)>> {
    let mode = opts.unique.or(defaults.unique);
    let key = match &opts.idempotency_key {
        Some(key) => {
            if key.is_empty() || key.len() > 512 {
                return Err(Error::InvalidArgument(
                    "idempotency key must be 1 to 512 bytes".to_owned(),
                ));
            }
            key.clone()
        }
        None if opts.unique_by_args || mode.is_some() => unique_key_for_args(job_type, args),
        None => return Ok(None),
    };
    let window = opts
        .idempotency_window
        .unwrap_or(IDEMPOTENCY_WINDOW_DEFAULT);
    Ok(Some((key, mode.unwrap_or(Uniqueness::Window(window)))))
}

/// One job ready for `enqueue.lua` (or `cron_tick.lua`): the five ARGV
/// values of the `job_record.lua` prelude.
pub(crate) struct Prepared {
    pub(crate) id: JobId,
    max_attempts: u32,
    at_ms: i64,
    delay_ms: u64,
    body: String,
    /// The job's follow-ups (JSON, see `followup`), if any.
    follow_ups: Option<String>,
}

impl Prepared {
    /// Appends this job's ARGV group (id, `max_attempts`, `at_ms`, `delay_ms`, body).
    pub(crate) fn push_args(&self, cmd: &mut redis::Cmd) {
        cmd.arg(self.id.as_str())
            .arg(self.max_attempts)
            .arg(self.at_ms)
            .arg(self.delay_ms)
            .arg(&self.body);
    }

    /// Whether the body is a JSON object whose first field is none of the
    /// routing fields (`priority`, `rate_key`, `group`): what
    /// `enqueue.lua` tells by the byte after the first quote.
    fn unrouted(&self) -> bool {
        matches!(self.body.as_bytes(), [b'{', b'"', third, ..] if !b"prg".contains(third))
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn body(&self) -> &str {
        &self.body
    }

    pub(crate) fn at_ms(&self) -> i64 {
        self.at_ms
    }

    pub(crate) fn delay_ms(&self) -> u64 {
        self.delay_ms
    }
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Client {
    /// Enqueues a job to run now with its type's defaults.
    ///
    /// Once this returns `Ok`, the job is in Redis and will run at least once
    /// or end in the dead set with its last error.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct SendEmail { to: String }
    /// # impl spool_client::Job for SendEmail { const TYPE: &'static str = "send_email"; }
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// let id = client.enqueue(&SendEmail { to: "ada@example.com".into() }).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::PayloadTooLarge`],
    /// [`Error::Serialize`], [`Error::InvalidArgument`] for args nested
    /// deeper than [`MAX_ARGS_DEPTH`](crate::MAX_ARGS_DEPTH), before Redis is
    /// contacted; [`Error::Redis`] when
    /// Redis did not confirm (the job may or may not exist then).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<JobId> {
        Ok(self.enqueue_with(job, EnqueueOptions::new()).await?.id)
    }

    /// Enqueues a job to run at `at` (Redis's clock decides when that is).
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_at<J: Job>(&self, job: &J, at: DateTime<Utc>) -> Result<JobId> {
        Ok(self
            .enqueue_with(job, EnqueueOptions::new().at(at))
            .await?
            .id)
    }

    /// Enqueues a job to run after `delay`.
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_in<J: Job>(&self, job: &J, delay: Duration) -> Result<JobId> {
        Ok(self
            .enqueue_with(job, EnqueueOptions::new().delay(delay))
            .await?
            .id)
    }

    /// Enqueues a job with per-call options.
    ///
    /// # Errors
    /// As [`Client::enqueue`].
    pub async fn enqueue_with<J: Job>(&self, job: &J, opts: EnqueueOptions) -> Result<Enqueued> {
        let opts = with_rate_key(job, &opts).unwrap_or(opts);
        let args = serde_json::value::to_raw_value(job).map_err(|source| Error::Serialize {
            job_type: J::TYPE.to_owned(),
            source,
        })?;
        self.enqueue_raw(J::TYPE, &args, &JobDefaults::of::<J>(), opts)
            .await
    }

    /// Enqueues an untyped job: a type name and JSON args (used by the CLI,
    /// cron and producers that do not link the job types).
    ///
    /// # Errors
    /// As [`Client::enqueue`]; [`Error::InvalidArgument`] for an empty type.
    pub async fn enqueue_raw(
        &self,
        job_type: &str,
        args: &RawValue,
        defaults: &JobDefaults,
        mut opts: EnqueueOptions,
    ) -> Result<Enqueued> {
        self.through_middleware(job_type, args, &mut opts)?;
        let queue = opts.queue.clone().unwrap_or_else(|| defaults.queue.clone());
        let keys = self.queue_keys(&queue)?;
        let unique = uniqueness(job_type, args, defaults, &opts)?;
        let prepared = self.prepare(job_type, args, defaults, &opts, &queue, None)?;
        #[cfg(feature = "testing")]
        if let Some(recorder) = self.recorder() {
            return recorder.record(&prepared, &queue, unique.as_ref());
        }
        let cmd = enqueue_cmd(&keys, unique.as_ref(), std::slice::from_ref(&prepared));
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        pipe.add_command(register_queues_cmd(self.global_keys(), &[&queue]))
            .ignore();
        let ((created, ids),): ((i64, Vec<String>),) = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("enqueue"))?;
        self.wait_replicated(&keys.ready, "enqueue").await?;
        let id = ids.into_iter().next().map_or(prepared.id, JobId::from);
        Ok(Enqueued {
            id,
            duplicate: created == 0,
        })
    }

    /// Enqueues many jobs of one type in a few round trips (1,000 jobs per
    /// script call, every call in one pipeline). Returns their ids in order.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Resize { image: u32 }
    /// # impl spool_client::Job for Resize { const TYPE: &'static str = "resize"; }
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// let jobs: Vec<Resize> = (0..10_000).map(|image| Resize { image }).collect();
    /// let ids = client.enqueue_bulk(&jobs).await?;
    /// assert_eq!(ids.len(), 10_000);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::enqueue`]; a bulk enqueue cannot take an idempotency key
    /// ([`Error::InvalidArgument`]). Every job is checked before any is sent.
    pub async fn enqueue_bulk<J: Job>(&self, jobs: &[J]) -> Result<Vec<JobId>> {
        self.enqueue_bulk_with(jobs, EnqueueOptions::new()).await
    }

    /// [`Client::enqueue_bulk`] with options shared by every job.
    ///
    /// # Errors
    /// As [`Client::enqueue_bulk`].
    pub async fn enqueue_bulk_with<J: Job>(
        &self,
        jobs: &[J],
        opts: EnqueueOptions,
    ) -> Result<Vec<JobId>> {
        if opts.idempotency_key.is_some() {
            return Err(Error::InvalidArgument(
                "a bulk enqueue cannot share one idempotency key; enqueue those jobs one by one"
                    .to_owned(),
            ));
        }
        let defaults = JobDefaults::of::<J>();
        let queue = opts.queue.clone().unwrap_or_else(|| defaults.queue.clone());
        let keys = self.queue_keys(&queue)?;
        let mut prepared = Vec::with_capacity(jobs.len());
        let mut locks = Vec::new();
        for job in jobs {
            let args = serde_json::value::to_raw_value(job).map_err(|source| Error::Serialize {
                job_type: J::TYPE.to_owned(),
                source,
            })?;
            let keyed = with_rate_key(job, &opts);
            let mut own = None;
            let mut opts = keyed.as_ref().unwrap_or(&opts);
            if self.has_middleware() {
                let mut changed = opts.clone();
                self.through_middleware(J::TYPE, &args, &mut changed)?;
                if changed.queue.as_ref().is_some_and(|q| *q != queue) {
                    return Err(Error::Refused {
                        job_type: J::TYPE.to_owned(),
                        middleware: 0,
                        reason: format!(
                            "middleware moved a job of a bulk enqueue to another queue than {queue:?}; \
                             a bulk enqueue writes to one queue"
                        ),
                    });
                }
                opts = own.insert(changed);
            }
            locks.push(uniqueness(J::TYPE, &args, &defaults, opts)?);
            prepared.push(self.prepare(J::TYPE, &args, &defaults, opts, &queue, None)?);
        }
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(feature = "testing")]
        if let Some(recorder) = self.recorder() {
            return prepared
                .iter()
                .zip(&locks)
                .map(|(job, lock)| Ok(recorder.record(job, &queue, lock.as_ref())?.id))
                .collect();
        }
        let unique = locks.iter().any(Option::is_some);
        let mut pipe = redis::pipe();
        if unique {
            // Each job holds its own key: one call per job, one round trip.
            for (job, lock) in prepared.iter().zip(&locks) {
                pipe.add_command(enqueue_cmd(&keys, lock.as_ref(), std::slice::from_ref(job)));
            }
        } else {
            for chunk in prepared.chunks(BULK_CHUNK) {
                pipe.add_command(enqueue_cmd(&keys, None, chunk)).ignore();
            }
        }
        pipe.add_command(register_queues_cmd(self.global_keys(), &[&queue]))
            .ignore();
        let replies: Vec<(i64, Vec<String>)> = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("enqueue"))?;
        self.wait_replicated(&keys.ready, "enqueue").await?;
        if unique {
            // A duplicate's id is the first job's.
            return Ok(replies
                .into_iter()
                .zip(prepared)
                .map(|((_, ids), p)| ids.into_iter().next().map_or(p.id, JobId::from))
                .collect());
        }
        Ok(prepared.into_iter().map(|p| p.id).collect())
    }

    /// Checks and encodes one job; `cron` is the entry (and tick) a cron
    /// job came from, `None` for every other enqueue.
    pub(crate) fn prepare(
        &self,
        job_type: &str,
        args: &RawValue,
        defaults: &JobDefaults,
        opts: &EnqueueOptions,
        queue: &str,
        cron: Option<&CronOrigin>,
    ) -> Result<Prepared> {
        if job_type.is_empty() || job_type.len() > 256 {
            return Err(Error::InvalidArgument(
                "job type must be 1 to 256 bytes".to_owned(),
            ));
        }
        check_args_depth(args.get().as_bytes())?;
        let id = opts.job_id.clone().unwrap_or_default();
        let sealed;
        let args = if opts.encrypted || defaults.encrypted {
            sealed = self.seal_args(job_type, &id, args)?;
            &*sealed
        } else {
            args
        };
        let timeout = opts.timeout.unwrap_or(defaults.timeout);
        let keep = opts.keep_outcome.unwrap_or(defaults.keep_outcome);
        // Cron jobs (cron_tick.lua) carry no follow-ups, nor their type's
        // webhooks.
        let follow_ups = if cron.is_some() {
            None
        } else {
            let follow_ups = self.follow_ups_of(defaults, opts)?;
            let keeps = !keep.is_zero();
            self.encode_follow_ups(&follow_ups, opts.batch.as_ref().map(|b| (b, keeps)))?
        };
        let priority = opts.priority.unwrap_or(defaults.priority);
        if !(-PRIORITY_MAX..=PRIORITY_MAX).contains(&priority) {
            return Err(Error::InvalidArgument(format!(
                "priority must be from -{PRIORITY_MAX} to {PRIORITY_MAX}, got {priority}"
            )));
        }
        for (what, key) in [("rate key", &opts.rate_key), ("group", &opts.group)] {
            if let Some(key) = key {
                check_routing_key(what, key)?;
            }
        }
        #[cfg(feature = "otel")]
        let traced = crate::otel::with_current_context(opts.trace.as_ref());
        #[cfg(feature = "otel")]
        let trace = traced.as_ref().or(opts.trace.as_ref());
        #[cfg(not(feature = "otel"))]
        let trace = opts.trace.as_ref();
        let body = JobBody {
            priority: Some(priority).filter(|p| *p != 0),
            rate_key: opts.rate_key.as_deref(),
            group: opts.group.as_deref(),
            keep_outcome_ms: Some(duration_ms(keep)).filter(|ms| *ms > 0),
            job_type,
            queue,
            args,
            created_ms: Utc::now().timestamp_millis(),
            // The default is left out (20 bytes of every queued job): the
            // worker then applies the type's registered timeout, the same
            // default unless the type sets its own (then it is written).
            timeout_ms: (opts.timeout.is_some() || timeout != crate::job::TIMEOUT_DEFAULT)
                .then(|| duration_ms(timeout)),
            idempotency_key: opts.idempotency_key.as_deref(),
            trace,
            cron,
            followups: follow_ups.is_some(),
            batch: opts.batch.as_ref(),
        };
        let body = serde_json::to_string(&body).map_err(|source| Error::Serialize {
            job_type: job_type.to_owned(),
            source,
        })?;
        if body.len() > self.max_payload_bytes() {
            return Err(Error::PayloadTooLarge {
                queue: queue.to_owned(),
                size: body.len(),
                limit: self.max_payload_bytes(),
            });
        }
        Ok(Prepared {
            id,
            max_attempts: opts.max_attempts.unwrap_or(defaults.max_attempts).max(1),
            at_ms: opts.at.map_or(0, |at| at.timestamp_millis().max(1)),
            delay_ms: opts.delay.map_or(0, duration_ms),
            body,
            follow_ups,
        })
    }
}

impl Client {
    /// `args` sealed with the active key of the client's keyring, bound
    /// to the job's type and id.
    fn seal_args(&self, job_type: &str, id: &JobId, args: &RawValue) -> Result<Box<RawValue>> {
        let keyring = self.keyring().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "job type {job_type:?} is encrypted, but this client has no keyring \
                 (ClientBuilder::keyring, or SPOOL_KEYRING for the binaries)"
            ))
        })?;
        keyring.encrypt_args(job_type, id.as_str(), args)
    }
}

/// An `enqueue.lua` call: always 9 keys (the uniqueness key's place holds
/// another key of the queue when there is none); groups of 6 when a job
/// has follow-ups.
pub(crate) fn enqueue_cmd<P: std::borrow::Borrow<Prepared>>(
    keys: &QueueKeys,
    unique: Option<&(String, Uniqueness)>,
    jobs: &[P],
) -> redis::Cmd {
    let jobs = jobs.iter().map(std::borrow::Borrow::borrow);
    let idem = unique.map(|(key, _)| keys.idempotency(key));
    let mut cmd = SCRIPTS.enqueue.cmd(&enqueue_keys(keys, idem.as_deref()));
    let lock = unique.map_or_else(|| "0".to_owned(), |(_, mode)| mode.lock_arg());
    // A bulk whose jobs share max_attempts, at and delay (and have no
    // follow-ups) sends those once.
    let shared = jobs.clone().next().filter(|f| {
        unique.is_none()
            && jobs.len() > 1
            && jobs.clone().all(|j| {
                j.follow_ups.is_none()
                    && (j.max_attempts, j.at_ms, j.delay_ms)
                        == (f.max_attempts, f.at_ms, f.delay_ms)
            })
    });
    if let Some(f) = shared {
        // A bulk's jobs share these: two values per job instead of five.
        // Jobs due now without routing fields go as `/t`, their bodies
        // without the opening `{`: enqueue.lua's one-pass path then
        // builds each record without cutting a string from the body.
        let tails = f.at_ms == 0 && f.delay_ms == 0 && jobs.clone().all(Prepared::unrouted);
        cmd.arg(format!("{lock}/{}", if tails { 't' } else { 's' }))
            .arg(f.max_attempts)
            .arg(f.at_ms)
            .arg(f.delay_ms);
        for job in jobs {
            let body = if tails { &job.body[1..] } else { &job.body[..] };
            cmd.arg(job.id.as_str()).arg(body);
        }
    } else if jobs.clone().any(|j: &Prepared| j.follow_ups.is_some()) {
        cmd.arg(format!("{lock}/6"));
        for job in jobs {
            job.push_args(&mut cmd);
            cmd.arg(job.follow_ups.as_deref().unwrap_or(""));
        }
    } else {
        cmd.arg(lock);
        for job in jobs {
            job.push_args(&mut cmd);
        }
    }
    cmd
}

/// `enqueue.lua`'s keys, with `idem` as the uniqueness key.
fn enqueue_keys<'a>(keys: &'a QueueKeys, idem: Option<&'a str>) -> [&'a str; 9] {
    [
        keys.ready.as_str(),
        keys.wake.as_str(),
        keys.scheduled.as_str(),
        keys.jobs.as_str(),
        idem.unwrap_or(keys.locks.as_str()),
        keys.locks.as_str(),
        keys.events.as_str(),
        keys.settings.as_str(),
        keys.followups.as_str(),
    ]
}

/// The `enqueue.lua` call creating a triggered follow-up (`followup`) on
/// its queue: its id is its uniqueness key for
/// [`FOLLOW_UP_DEDUPE`](crate::followup::FOLLOW_UP_DEDUPE), so a repeated
/// move creates nothing.
pub(crate) fn follow_up_cmd(
    keys: &QueueKeys,
    id: &str,
    [max_attempts, at_ms, delay_ms]: [&str; 3],
    follow_ups: &[u8],
    body: &[u8],
) -> redis::Cmd {
    let idem = keys.idempotency(&format!("followup:{id}"));
    let mut cmd = SCRIPTS.enqueue.cmd(&enqueue_keys(keys, Some(&idem)));
    cmd.arg(format!(
        "{}/6",
        duration_ms(crate::followup::FOLLOW_UP_DEDUPE)
    ))
    .arg(id)
    .arg(max_attempts)
    .arg(at_ms)
    .arg(delay_ms)
    .arg(body)
    .arg(follow_ups);
    cmd
}
