//! The job model: what a job is in Rust (the [`Job`] trait) and on the wire
//! ([`JobRecord`], the JSON stored in Redis).
//!
//! A record is a JSON object whose first four fields are owned by the Lua
//! scripts (`id`, `attempt`, `max_attempts`, `enqueued_ms`, always in that
//! order, so a script can rewrite them with a string match); the rest is
//! written once by the producer. `docs/PROTOCOL.md` is the normative
//! description.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::retry_policy::{ExponentialJitter, RetryPolicy};

/// The setters that [`JobOptions`] and [`CronEntry`](crate::CronEntry)
/// share: queue, attempts, time limit.
macro_rules! job_option_setters {
    () => {
        /// Sets the queue the job goes to.
        #[must_use]
        pub fn queue(mut self, queue: impl Into<String>) -> Self {
            self.queue = queue.into();
            self
        }

        /// Sets the number of attempts (at least 1).
        #[must_use]
        pub fn max_attempts(mut self, n: u32) -> Self {
            self.max_attempts = n.max(1);
            self
        }

        /// Sets the handler time limit per attempt.
        #[must_use]
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.timeout = timeout;
            self
        }
    };
}
pub(crate) use job_option_setters;

/// Queue used when neither the job type nor the call names one.
pub const QUEUE_DEFAULT: &str = "default";
/// Attempts a job gets unless its type or the call says otherwise (Sidekiq's 25).
pub const MAX_ATTEMPTS_DEFAULT: u32 = 25;
/// Handler time limit unless the job type or the call says otherwise.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30 * 60);

/// A job id: a UUID v7 for jobs Spool created (time-ordered), or any string
/// without quotes for ids given by other producers or for unparsable entries
/// (`invalid-…`). Shared, not copied, when cloned: the worker keeps a
/// leased job's id in its record, its lease, its in-flight entry and its
/// completion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Arc<str>);

impl JobId {
    /// A fresh UUID v7 id.
    #[must_use]
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

/// A job type: a serde value with a stable type name and default options.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spool_client::{Job, JobOptions};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail {
///     to: String,
/// }
///
/// impl Job for SendEmail {
///     const TYPE: &'static str = "send_email";
///
///     fn options() -> JobOptions {
///         JobOptions::default()
///             .queue("emails")
///             .max_attempts(5)
///             .timeout(Duration::from_secs(30))
///     }
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable type name written into every record. Renaming it orphans
    /// jobs already queued under the old name.
    const TYPE: &'static str;

    /// Defaults for queue, attempts, timeout and retry policy; each call to
    /// enqueue may override queue, attempts and timeout.
    #[must_use]
    fn options() -> JobOptions {
        JobOptions::default()
    }

    /// The rate key of this job (e.g. its tenant): with a per-key rate
    /// limit on its queue ([`Admin::set_key_rate_limit`](crate::Admin::set_key_rate_limit)),
    /// each key gets its own budget. `None` (the default): no key.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize)]
    /// struct Sync { tenant: String }
    /// impl spool_client::Job for Sync {
    ///     const TYPE: &'static str = "sync";
    ///     fn rate_key(&self) -> Option<String> { Some(self.tenant.clone()) }
    /// }
    /// ```
    fn rate_key(&self) -> Option<String> {
        None
    }

    /// The ordered group of this job (e.g. its account): jobs of one
    /// group run one at a time (or as many as the queue's group settings
    /// allow), in enqueue order, on any worker. `None` (the default): no
    /// group. See [`EnqueueOptions::group`](crate::EnqueueOptions::group).
    fn group(&self) -> Option<String> {
        None
    }
}

/// A job type whose handler returns a value: names its type, so
/// [`Client::result`](crate::Client::result) gives it back typed. The value
/// is kept with the job's outcome when the job keeps one
/// ([`JobOptions::keep_outcome`]); job types without this trait return `()`,
/// which costs nothing.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spool_client::{Job, JobOutput};
///
/// #[derive(Serialize, Deserialize)]
/// struct Resize { image: u64 }
/// impl Job for Resize { const TYPE: &'static str = "resize"; }
///
/// #[derive(Serialize, Deserialize)]
/// struct Thumbnail { url: String }
/// impl JobOutput for Resize { type Output = Thumbnail; }
/// ```
pub trait JobOutput: Job {
    /// What the handler returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// Default options of a job type.
#[derive(Clone)]
pub struct JobOptions {
    /// Queue the job goes to.
    pub queue: String,
    /// Total runs allowed, the first included; 1 means never retried.
    pub max_attempts: u32,
    /// Handler time limit per attempt.
    pub timeout: Duration,
    /// Delay before each retry.
    pub retry_policy: Arc<dyn RetryPolicy>,
    /// How long a finished job's outcome is kept (zero: not kept).
    pub keep_outcome: Duration,
    /// Uniqueness of this type's jobs, keyed by type and args unless an
    /// enqueue gives a key; `None`: only enqueues with a key are unique.
    pub unique: Option<crate::Uniqueness>,
    /// URLs told when each of this type's jobs ends (signed webhooks, see
    /// [`EnqueueOptions::webhook`](crate::EnqueueOptions::webhook)).
    pub webhooks: Vec<String>,
    /// Jobs created when each of this type's jobs ends (see
    /// [`EnqueueOptions::follow_up`](crate::EnqueueOptions::follow_up)).
    pub follow_ups: Vec<crate::FollowUp>,
    /// Priority within the queue (see [`EnqueueOptions::priority`](crate::EnqueueOptions::priority)).
    pub priority: i8,
    /// Seal this type's args with the client's keyring (see
    /// [`JobOptions::encrypted`]).
    pub encrypted: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            queue: QUEUE_DEFAULT.to_owned(),
            max_attempts: MAX_ATTEMPTS_DEFAULT,
            timeout: TIMEOUT_DEFAULT,
            retry_policy: Arc::new(ExponentialJitter::default()),
            keep_outcome: Duration::ZERO,
            unique: None,
            webhooks: Vec::new(),
            follow_ups: Vec::new(),
            priority: 0,
            encrypted: false,
        }
    }
}

impl fmt::Debug for JobOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobOptions")
            .field("queue", &self.queue)
            .field("max_attempts", &self.max_attempts)
            .field("timeout", &self.timeout)
            .field("keep_outcome", &self.keep_outcome)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl JobOptions {
    job_option_setters!();

    /// Sets the priority of this type's jobs within their queue, -9 … 9
    /// (see [`EnqueueOptions::priority`](crate::EnqueueOptions::priority)).
    #[must_use]
    pub fn priority(mut self, level: i8) -> Self {
        self.priority = level;
        self
    }

    /// Stores this type's args encrypted (AES-256-GCM) with the active key
    /// of the client's keyring ([`ClientBuilder::keyring`](crate::ClientBuilder::keyring)):
    /// Redis, its events, the dashboard and the CLI see only the envelope
    /// `"spool:enc:v1:<key id>:<base64>"`, and a worker opens it before the
    /// handler decodes the args. A kept result of such a job is sealed
    /// too. Enqueueing fails without a keyring; a worker without the key
    /// moves the job to dead with the reason, record intact, so it can be
    /// retried once the keyring is fixed. `docs/PROTOCOL.md` has the
    /// format.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spool_client::{Job, JobOptions};
    /// #[derive(Serialize, Deserialize)]
    /// struct ChargeCard { card_number: String, cents: u64 }
    /// impl Job for ChargeCard {
    ///     const TYPE: &'static str = "charge_card";
    ///     fn options() -> JobOptions { JobOptions::default().encrypted(true) }
    /// }
    /// ```
    #[must_use]
    pub fn encrypted(mut self, on: bool) -> Self {
        self.encrypted = on;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry_policy(mut self, policy: impl RetryPolicy + 'static) -> Self {
        self.retry_policy = Arc::new(policy);
        self
    }

    /// Creates `job` when each of this type's jobs ends as it says, as
    /// [`EnqueueOptions::follow_up`](crate::EnqueueOptions::follow_up)
    /// does per enqueue (the enqueue's follow-ups come after the type's).
    /// A type's follow-ups are built when its options are: they must not
    /// lead back to the type itself.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spool_client::{FollowUp, Job, JobOptions};
    /// #[derive(Serialize, Deserialize)]
    /// struct Alert { what: String }
    /// impl Job for Alert { const TYPE: &'static str = "alert"; }
    /// #[derive(Serialize, Deserialize)]
    /// struct Import { file: String }
    /// impl Job for Import {
    ///     const TYPE: &'static str = "import";
    ///     fn options() -> JobOptions {
    ///         let alert = Alert { what: "an import died".into() };
    ///         JobOptions::default().follow_up(FollowUp::on_failure(&alert).expect("alert serializes"))
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn follow_up(mut self, job: crate::FollowUp) -> Self {
        self.follow_ups.push(job);
        self
    }

    /// Tells `url` (a signed POST) when each of this type's jobs ends, as
    /// [`EnqueueOptions::webhook`](crate::EnqueueOptions::webhook) does
    /// per enqueue. The URL is checked at each enqueue.
    #[must_use]
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhooks.push(url.into());
        self
    }

    /// Makes this type's jobs unique: a second enqueue with the same args
    /// (or the same [`EnqueueOptions::idempotency_key`](crate::EnqueueOptions::idempotency_key))
    /// on the same queue returns the first job while the lock holds (see
    /// [`Uniqueness`](crate::Uniqueness)).
    #[must_use]
    pub fn unique(mut self, mode: crate::Uniqueness) -> Self {
        self.unique = Some(mode);
        self
    }

    /// Keeps each finished job's outcome (state, result or last error,
    /// attempts, times, timeline) for `retention`; zero (the default) keeps
    /// nothing, as before. Redis expires it.
    #[must_use]
    pub fn keep_outcome(mut self, retention: Duration) -> Self {
        self.keep_outcome = retention;
        self
    }
}

/// The body a producer hands to `enqueue.lua`: everything but the four
/// script-owned fields. Field order is part of the wire format only in that
/// it must be a JSON object.
#[derive(Debug, Serialize)]
pub(crate) struct JobBody<'a> {
    /// First when present (a level other than 0): `enqueue.lua` and the
    /// scripts that make the job ready again read it with an anchored
    /// match to pick its ready list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) priority: Option<i8>,
    /// Next when present: the fetch script reads it with an anchored
    /// match for the queue's per-key rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rate_key: Option<&'a str>,
    /// Next when present: the fetch script reads it with an anchored
    /// match for ordered groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<&'a str>,
    /// Next when present: the scripts read it with an anchored match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keep_outcome_ms: Option<u64>,
    #[serde(rename = "type")]
    pub(crate) job_type: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) args: &'a RawValue,
    pub(crate) created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cron: Option<&'a CronOrigin>,
    /// The job has follow-ups: the worker sends `ack.lua` its result for them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) followups: bool,
    /// The batch (or chain) the job belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) batch: Option<&'a crate::BatchId>,
}

/// Where a cron job came from: its entry and the tick it was enqueued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronOrigin {
    /// The cron entry's name.
    pub entry: String,
    /// The tick (Redis ms) this job was enqueued for; `None` for "run now".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<i64>,
}

/// A job record as stored in Redis (the wire format).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: JobId,
    /// Runs started so far, this one included while the job is leased.
    pub attempt: u32,
    /// Runs allowed in total.
    pub max_attempts: u32,
    /// When the job last became ready (Redis ms): enqueue, promotion, retry.
    pub enqueued_ms: i64,
    /// The job type name.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// The job's arguments, kept as raw JSON until a handler decodes them.
    pub args: Box<RawValue>,
    /// When the producer created the job (producer's clock, informational).
    pub created_ms: i64,
    /// Handler time limit in ms, if the producer set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Idempotency key the job was enqueued with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Trace context propagated from the producer (e.g. `traceparent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<BTreeMap<String, String>>,
    /// Set on jobs enqueued by a cron entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronOrigin>,
    /// Priority within the queue (-9 … 9; 0, the default, when absent or
    /// unreadable): higher levels are fetched first.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient_priority"
    )]
    pub priority: i8,
    /// Rate key for the queue's per-key rate limit, if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_string"
    )]
    pub rate_key: Option<String>,
    /// Ordered group, if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_string"
    )]
    pub group: Option<String>,
    /// How long the job's outcome is kept after it finishes (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_outcome_ms: Option<u64>,
    /// The job has follow-ups (created when it ends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub followups: bool,
    /// For a follow-up: the job whose end created it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub parent: Option<crate::followup::Parent>,
    /// The batch (or chain) the job belongs to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub batch: Option<crate::BatchId>,
    /// For a batch's callback: the batch, as it was when it triggered the
    /// callback (with the members' kept results).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub batch_callback: Option<crate::BatchCallback>,
}

/// A field of a record that is only informative (links, a callback's
/// view of its batch): one another producer wrote badly reads as `None`
/// rather than making the whole record undecodable (a poison job).
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let raw: Option<Box<RawValue>> = Option::deserialize(deserializer)?;
    Ok(raw.and_then(|r| serde_json::from_str(r.get()).ok()))
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &i8) -> bool {
    *n == 0
}

/// A priority another producer wrote out of range or not as a number reads
/// as 0 (the scripts treat it so too) rather than making the record
/// undecodable.
fn lenient_priority<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i8, D::Error> {
    let level = deserializer.deserialize_any(Lenient::<i64>::default())?;
    Ok(level
        .and_then(|p| i8::try_from(p).ok())
        .filter(|p| (-PRIORITY_MAX..=PRIORITY_MAX).contains(p))
        .unwrap_or(0))
}

/// A string field the fetch path routes by (a rate key, a group): as
/// [`lenient`], a value of another type reads as `None`, but read in
/// place, with no copy of its raw text (every grouped job's record has
/// one, and the copy and second parse cost the worker about a thousand
/// instructions per job).
fn lenient_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(Lenient::<String>::default())
}

/// A visitor that keeps a value of type `T` (a string or an integer) and
/// reads any other JSON value, skipping it whole, as `None`.
struct Lenient<T>(std::marker::PhantomData<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// What [`Lenient`] keeps: built from a string or from an integer.
trait LenientValue: Sized {
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_int(_: i128) -> Option<Self> {
        None
    }
}

impl LenientValue for String {
    fn from_str(v: &str) -> Option<Self> {
        Some(v.to_owned())
    }
}

impl LenientValue for i64 {
    fn from_int(v: i128) -> Option<Self> {
        i64::try_from(v).ok()
    }
}

impl<'de, T: LenientValue> serde::de::Visitor<'de> for Lenient<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_str(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::from_int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::from_int(v.into()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

/// Highest priority level (and, negated, the lowest); 0 is the default.
pub const PRIORITY_MAX: i8 = 9;

impl JobRecord {
    /// Decodes a record from its stored JSON.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) with the serde message.
    pub fn from_json(raw: &str) -> crate::Result<Self> {
        if let Some(record) = crate::record_decode::decode(raw) {
            return Ok(record);
        }
        serde_json::from_str(raw).map_err(|e| crate::Error::Decode {
            what: "job record".to_owned(),
            reason: e.to_string(),
        })
    }

    /// Decodes the args into a job type.
    ///
    /// # Errors
    /// The serde error when the args do not have the shape of `J`.
    pub fn decode_args<J: DeserializeOwned>(&self) -> Result<J, serde_json::Error> {
        serde_json::from_str(self.args.get())
    }

    /// The handler timeout: the record's own, else `fallback`.
    #[must_use]
    pub fn timeout(&self, fallback: Duration) -> Duration {
        self.timeout_ms.map_or(fallback, Duration::from_millis)
    }
}

/// One entry of a job's error history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// When the failure was recorded (Redis ms).
    pub at_ms: i64,
    /// The attempt that failed.
    pub attempt: u32,
    /// What went wrong, readable.
    pub error: String,
}

/// Where a job is in its life (DESIGN's diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting in the scheduled set for its time.
    Scheduled,
    /// In the ready list, waiting for a worker.
    Ready,
    /// Leased by a worker and running.
    Active,
    /// Failed, waiting in the retry set for its next attempt.
    Retry,
    /// Out of attempts (or permanently failed); kept for operators.
    Dead,
}

impl JobState {
    /// Lower-case name as used in keys, pages and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Ready => "ready",
            Self::Active => "active",
            Self::Retry => "retry",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three sorted sets of a queue that hold jobs by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobSet {
    /// Jobs waiting for their run-at time.
    Scheduled,
    /// Failed jobs waiting for their retry time.
    Retry,
    /// Jobs that ran out of attempts or failed permanently.
    Dead,
}

impl JobSet {
    /// Every set, in page order.
    pub const ALL: [Self; 3] = [Self::Scheduled, Self::Retry, Self::Dead];

    /// The state of the jobs in this set.
    #[must_use]
    pub fn state(self) -> JobState {
        match self {
            Self::Scheduled => JobState::Scheduled,
            Self::Retry => JobState::Retry,
            Self::Dead => JobState::Dead,
        }
    }

    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

impl std::str::FromStr for JobSet {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "scheduled" => Ok(Self::Scheduled),
            "retry" | "retries" => Ok(Self::Retry),
            "dead" => Ok(Self::Dead),
            other => Err(crate::Error::InvalidArgument(format!(
                "unknown job set {other:?} (expected scheduled, retry or dead)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_decodes_with_script_owned_prefix() {
        let raw = r#"{"id":"j1","attempt":2,"max_attempts":25,"enqueued_ms":10,"type":"t","queue":"q","args":{"a":[]},"created_ms":5}"#;
        let rec = JobRecord::from_json(raw).expect("decodes");
        assert_eq!(rec.id.as_str(), "j1");
        assert_eq!(rec.attempt, 2);
        assert_eq!(rec.args.get(), r#"{"a":[]}"#);
        assert_eq!(rec.timeout(Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[test]
    fn job_ids_are_time_ordered_uuids() {
        let a = JobId::new();
        let b = JobId::new();
        assert_eq!(a.as_str().len(), 36);
        assert!(a <= b);
    }

    #[test]
    fn links_another_producer_wrote_badly_do_not_poison_the_record() {
        let raw = r#"{"id":"a","attempt":1,"max_attempts":3,"enqueued_ms":1,"type":"t","queue":"q","args":{},"created_ms":1,"parent":"not an object","batch":"no tilde","batch_callback":{"on":"sometimes"}}"#;
        let rec = JobRecord::from_json(raw).expect("decodes");
        assert!(rec.parent.is_none() && rec.batch.is_none() && rec.batch_callback.is_none());
        let good = raw
            .replace(r#""batch":"no tilde""#, r#""batch":"q~0193-abc""#)
            .replace(
                r#""parent":"not an object""#,
                r#""parent":{"id":"p","queue":"q","state":"done"}"#,
            );
        let rec = JobRecord::from_json(&good).expect("decodes");
        assert_eq!(rec.batch.expect("batch").home(), "q");
        assert_eq!(rec.parent.expect("parent").state, "done");
    }

    #[test]
    fn routing_fields_of_another_type_read_as_absent() {
        let head = r#"{"id":"a","attempt":1,"max_attempts":3,"enqueued_ms":1"#;
        let tail = r#""type":"t","queue":"q","args":{},"created_ms":1}"#;
        let read = |fields: &str| {
            JobRecord::from_json(&format!("{head},{fields},{tail}")).expect("decodes")
        };
        let rec = read(r#""priority":-3,"rate_key":"t\"1\u00e9","group":"g""#);
        assert_eq!(rec.priority, -3);
        assert_eq!(rec.rate_key.as_deref(), Some("t\"1\u{e9}"));
        assert_eq!(rec.group.as_deref(), Some("g"));
        for bad in [
            r#""priority":"9","rate_key":7,"group":[1,{"a":[]}]"#,
            r#""priority":300,"rate_key":{"k":"v","n":[null]},"group":true"#,
            r#""priority":1.5,"rate_key":null,"group":-2.5e3"#,
            r#""priority":[9],"rate_key":false,"group":null"#,
            r#""priority":18446744073709551615,"rate_key":[],"group":{}"#,
        ] {
            let rec = read(bad);
            assert_eq!(
                (rec.priority, rec.rate_key, rec.group),
                (0, None, None),
                "{bad}"
            );
            assert_eq!(rec.created_ms, 1, "{bad}: the fields after it still read");
        }
        assert_eq!(read(r#""priority":9"#).priority, 9);
        assert_eq!(read(r#""priority":-10"#).priority, 0);
    }
}
