//! Follow-up jobs: jobs a producer attaches to an enqueue, created when the
//! parent ends (on success, on failure = dead, or on completion = any end)
//! by the very script that ends it, so they exist exactly once whatever
//! crashes; a follow-up reads its parent's id, state and result.
//!
//! The producer prepares each follow-up in full at enqueue (its id chosen
//! then) and `enqueue.lua` stores them in the parent queue's `followups`
//! hash. The script that ends the parent appends the triggered ones to the
//! parent queue's `outbox` list (one slot: the parent's); a worker's
//! scheduler then moves them into their own queues ([`Runtime::move_follow_ups`]):
//! `enqueue.lua` on the target with the follow-up's id as its uniqueness
//! key, then `outbox_done.lua` on the source. A crash between the two
//! repeats the move, and the key refuses the duplicate (DESIGN, "Slots
//! decide the shape": an outbox in its own slot, an idempotent move).
//!
//! A follow-up may have follow-ups of its own ([`FollowUp::then`]): a
//! chain A → B → C, each enqueued only when the one before succeeds.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::enqueue::{EnqueueOptions, JobDefaults};
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::keys::QueueKeys;
use crate::runtime::Runtime;
use crate::scripts::{self, SCRIPTS};

/// How long a moved follow-up's id is remembered on its queue, refusing a
/// second creation (a move repeated after a crash). A move that waits
/// longer than this (no worker served the parent's queue for a week) could
/// create it twice.
pub const FOLLOW_UP_DEDUPE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most follow-ups one job may carry (chained ones included).
pub const FOLLOW_UPS_MAX: usize = 32;

/// Follow-ups moved per call of [`Runtime::move_follow_ups`].
pub const FOLLOW_UP_MOVE_BATCH: usize = 500;

/// When a follow-up is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowUpOn {
    /// The parent is done.
    Success,
    /// The parent is dead (it ran out of attempts or failed for good).
    Failure,
    /// The parent ended: done, dead or cancelled.
    Complete,
}

impl FollowUpOn {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Complete => "complete",
        }
    }
}

/// A job to create when another ends; attach it with
/// [`EnqueueOptions::follow_up`].
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Render { invoice: u64 }
/// # impl spool_client::Job for Render { const TYPE: &'static str = "render"; }
/// # #[derive(Serialize, Deserialize)] struct Mail { invoice: u64 }
/// # impl spool_client::Job for Mail { const TYPE: &'static str = "mail"; }
/// # #[derive(Serialize, Deserialize)] struct Alert { invoice: u64 }
/// # impl spool_client::Job for Alert { const TYPE: &'static str = "alert"; }
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::{EnqueueOptions, FollowUp};
/// let opts = EnqueueOptions::new()
///     .follow_up(FollowUp::on_success(&Mail { invoice: 7 })?)
///     .follow_up(FollowUp::on_failure(&Alert { invoice: 7 })?.queue("ops"));
/// client.enqueue_with(&Render { invoice: 7 }, opts).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FollowUp {
    on: FollowUpOn,
    job_type: String,
    args: Box<RawValue>,
    defaults: JobDefaults,
    opts: EnqueueOptions,
}

impl FollowUp {
    /// `job`, created when the parent is done.
    ///
    /// # Errors
    /// [`Error::Serialize`] when `job` does not serialize.
    pub fn on_success<J: Job>(job: &J) -> Result<Self> {
        Self::new(FollowUpOn::Success, job)
    }

    /// `job`, created when the parent is dead.
    ///
    /// # Errors
    /// As [`FollowUp::on_success`].
    pub fn on_failure<J: Job>(job: &J) -> Result<Self> {
        Self::new(FollowUpOn::Failure, job)
    }

    /// `job`, created when the parent ends: done, dead or cancelled.
    ///
    /// # Errors
    /// As [`FollowUp::on_success`].
    pub fn on_complete<J: Job>(job: &J) -> Result<Self> {
        Self::new(FollowUpOn::Complete, job)
    }

    /// `job` (type `job_type`, args as JSON), created on `on`: for
    /// producers that do not link the job type.
    #[must_use]
    pub fn raw(on: FollowUpOn, job_type: &str, args: Box<RawValue>, defaults: JobDefaults) -> Self {
        Self {
            on,
            job_type: job_type.to_owned(),
            args,
            defaults,
            opts: EnqueueOptions::new(),
        }
    }

    fn new<J: Job>(on: FollowUpOn, job: &J) -> Result<Self> {
        let args = serde_json::value::to_raw_value(job).map_err(|source| Error::Serialize {
            job_type: J::TYPE.to_owned(),
            source,
        })?;
        Ok(Self::raw(on, J::TYPE, args, JobDefaults::of::<J>()))
    }

    /// Enqueue options of the follow-up itself (queue, attempts, timeout,
    /// outcome retention, its own follow-ups); a delay or time runs it that
    /// long after it is created. Uniqueness keys are not taken: the
    /// follow-up's own id is its key.
    #[must_use]
    pub fn with(mut self, opts: EnqueueOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Send the follow-up to this queue instead of its type's.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.opts = self.opts.queue(queue);
        self
    }

    /// The next link of a chain: `next` is attached to this follow-up, so
    /// it is created when this one ends as `next` says (`on_success`: only
    /// if this one succeeds).
    #[must_use]
    pub fn then(mut self, next: FollowUp) -> Self {
        self.opts = self.opts.follow_up(next);
        self
    }

    /// When it is created.
    #[must_use]
    pub fn on(&self) -> FollowUpOn {
        self.on
    }
}

impl crate::client::Client {
    /// Every follow-up of a job: its type's, the enqueue's, and the
    /// deliveries of both's webhooks (each URL checked here).
    pub(crate) fn follow_ups_of(
        &self,
        defaults: &JobDefaults,
        opts: &EnqueueOptions,
    ) -> Result<Vec<FollowUp>> {
        let mut follow_ups = defaults.follow_ups.clone();
        follow_ups.extend(opts.follow_ups().iter().cloned());
        for url in defaults.webhooks.iter().chain(opts.webhooks()) {
            follow_ups.push(self.webhook_follow_up(url)?);
        }
        Ok(follow_ups)
    }

    /// The follow-ups of one job as `enqueue.lua` stores them: a JSON array
    /// of `[on, queue, id, max_attempts, body, follow-ups, at_ms,
    /// delay_ms]` (follow-ups: the follow-up's own, an array of the same,
    /// or `""`), or `None` for none. Each is checked and encoded as an
    /// enqueue would.
    /// A job in a batch (`batch`: its id, and whether the job keeps its
    /// outcome, so its result goes to the batch) also carries the entry
    /// `["batch", home queue, uuid, keep]` (prelude.lua, "Follow-up jobs").
    pub(crate) fn encode_follow_ups(
        &self,
        follow_ups: &[FollowUp],
        batch: Option<(&crate::BatchId, bool)>,
    ) -> Result<Option<String>> {
        if follow_ups.is_empty() && batch.is_none() {
            return Ok(None);
        }
        let mut count = 0;
        let entries = self.follow_up_entries(follow_ups, batch, &mut count)?;
        serde_json::to_string(&entries)
            .map(Some)
            .map_err(|source| Error::Serialize {
                job_type: "follow-ups".to_owned(),
                source,
            })
    }

    fn follow_up_entries(
        &self,
        follow_ups: &[FollowUp],
        batch: Option<(&crate::BatchId, bool)>,
        count: &mut usize,
    ) -> Result<Vec<serde_json::Value>> {
        let mut entries = Vec::with_capacity(follow_ups.len() + 1);
        if let Some((batch, keep)) = batch {
            entries.push(serde_json::json!([
                "batch",
                batch.home(),
                batch.uuid(),
                u8::from(keep)
            ]));
        }
        for f in follow_ups {
            *count += 1;
            if *count > FOLLOW_UPS_MAX {
                return Err(Error::InvalidArgument(format!(
                    "a job may carry at most {FOLLOW_UPS_MAX} follow-ups, chained ones included"
                )));
            }
            if f.opts.has_uniqueness() {
                return Err(Error::InvalidArgument(
                    "a follow-up cannot take an idempotency or uniqueness key: its id is its key"
                        .to_owned(),
                ));
            }
            let queue = f.opts.queue_name().unwrap_or(&f.defaults.queue).to_owned();
            self.queue_keys(&queue)?;
            let prepared =
                self.prepare(&f.job_type, &f.args, &f.defaults, &f.opts, &queue, None)?;
            let keeps = !f.opts.keep_outcome_or(f.defaults.keep_outcome).is_zero();
            let batch = f.opts.batch.as_ref().map(|b| (b, keeps));
            let own = self.follow_ups_of(&f.defaults, &f.opts)?;
            // Nested as a JSON array, not as JSON text in a string, which
            // would double the escaping at every link of a chain.
            let own = match self.follow_up_entries(&own, batch, count)? {
                nested if nested.is_empty() => serde_json::Value::from(""),
                nested => serde_json::Value::from(nested),
            };
            entries.push(serde_json::json!([
                f.on.as_str(),
                queue,
                prepared.id.as_str(),
                prepared.max_attempts(),
                prepared.body(),
                own,
                prepared.at_ms(),
                prepared.delay_ms(),
            ]));
        }
        Ok(entries)
    }
}

/// One outbox entry: `queue"id"max_attempts"at_ms"delay_ms"n"` then `n`
/// bytes of the follow-up's own follow-ups and its body (prelude.lua,
/// "Follow-up jobs").
#[derive(Debug)]
struct OutboxEntry<'a> {
    queue: &'a str,
    id: &'a str,
    max_attempts: &'a str,
    at_ms: &'a str,
    delay_ms: &'a str,
    follow_ups: &'a [u8],
    body: &'a [u8],
}

impl<'a> OutboxEntry<'a> {
    fn parse(raw: &'a [u8]) -> Option<Self> {
        let mut rest = raw;
        let mut field = || -> Option<&'a str> {
            let end = rest.iter().position(|b| *b == b'"')?;
            let text = std::str::from_utf8(&rest[..end]).ok()?;
            rest = &rest[end + 1..];
            Some(text)
        };
        let (queue, id, max_attempts) = (field()?, field()?, field()?);
        let (at_ms, delay_ms, len) = (field()?, field()?, field()?);
        let len: usize = len.parse().ok()?;
        crate::keys::validate_queue_name(queue).ok()?;
        let number = |s: &str| s.parse::<u64>().is_ok();
        if id.is_empty()
            || !number(max_attempts)
            || !number(at_ms)
            || !number(delay_ms)
            || len > rest.len()
        {
            return None;
        }
        let (follow_ups, body) = rest.split_at(len);
        body.starts_with(b"{\"").then_some(Self {
            queue,
            id,
            max_attempts,
            at_ms,
            delay_ms,
            follow_ups,
            body,
        })
    }
}

/// One batch report: `!batch"home"uuid"member"state"ms"` + result
/// (prelude.lua, "Follow-up jobs").
#[derive(Debug)]
struct BatchReport<'a> {
    batch: crate::BatchId,
    member: &'a str,
    state: &'a str,
    at_ms: &'a str,
    result: &'a [u8],
}

impl<'a> BatchReport<'a> {
    fn parse(raw: &'a [u8]) -> Option<Self> {
        let mut rest = raw.strip_prefix(b"!batch\"")?;
        let mut field = || -> Option<&'a str> {
            let end = rest.iter().position(|b| *b == b'"')?;
            let text = std::str::from_utf8(&rest[..end]).ok()?;
            rest = &rest[end + 1..];
            Some(text)
        };
        let (home, uuid, member) = (field()?, field()?, field()?);
        let (state, at_ms) = (field()?, field()?);
        let batch = crate::BatchId::parse(&format!("{home}~{uuid}")).ok()?;
        let ok = crate::admin::valid_id(member).is_ok()
            && matches!(state, "done" | "dead" | "cancelled")
            && at_ms.parse::<u64>().is_ok();
        ok.then_some(Self {
            batch,
            member,
            state,
            at_ms,
            result: rest,
        })
    }
}

/// Most outboxes one move visits: the queue's, then the home queues of
/// batches whose callbacks it triggered, and theirs.
const MOVE_ROUNDS_MAX: usize = 8;

impl crate::client::Client {
    /// Moves up to `limit` entries of `keys`'s queue's outbox; then, when
    /// batch reports among them triggered callbacks, the home queues'
    /// outboxes the same way (a few rounds at most; what is left waits for
    /// the schedulers serving those queues). Returns how many follow-ups
    /// were created.
    pub(crate) async fn move_outboxes(&self, keys: &QueueKeys, limit: usize) -> Result<u64> {
        let mut created = 0;
        let mut todo = vec![keys.clone()];
        for _ in 0..MOVE_ROUNDS_MAX {
            let Some(next) = todo.pop() else { break };
            let (made, homes) = self.move_outbox(&next, limit).await?;
            created += made;
            for home in homes {
                if !todo.iter().any(|k| k.queue == home) {
                    todo.push(self.queue_keys(&home)?);
                }
            }
        }
        Ok(created)
    }

    /// One outbox: one round trip enqueues its follow-ups (each with its
    /// id as uniqueness key for [`FOLLOW_UP_DEDUPE`]) and applies its batch
    /// reports (`batch_member.lua`), a second removes them. Returns the
    /// follow-ups created and the home queues that got callbacks.
    async fn move_outbox(&self, keys: &QueueKeys, limit: usize) -> Result<(u64, Vec<String>)> {
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(&keys.outbox)
            .arg(0)
            .arg(limit.max(1) - 1)
            .query_async(&mut self.connection())
            .await
            .map_err(Error::redis("follow-up outbox"))?;
        if raw.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut pipe = redis::pipe();
        let mut queues: Vec<&str> = Vec::new();
        // Per command: the home queue for a batch report, None for a follow-up.
        let mut kinds: Vec<Option<String>> = Vec::new();
        for entry in &raw {
            if let Some(r) = BatchReport::parse(entry) {
                let home = self.queue_keys(r.batch.home())?;
                let mut cmd = SCRIPTS.batch_member.cmd(&home.batch(r.batch.uuid()).all());
                cmd.arg(r.batch.as_str())
                    .arg(r.member)
                    .arg(r.state)
                    .arg(r.at_ms)
                    .arg(&keys.queue)
                    .arg(r.result);
                pipe.add_command(cmd);
                kinds.push(Some(r.batch.home().to_owned()));
                continue;
            }
            let Some(e) = OutboxEntry::parse(entry) else {
                tracing::warn!(queue = %keys.queue, entry = %String::from_utf8_lossy(&entry[..entry.len().min(200)]),
                    "dropping an outbox entry that is neither a follow-up nor a batch report");
                continue;
            };
            let target = self.queue_keys(e.queue)?;
            pipe.add_command(crate::enqueue::follow_up_cmd(
                &target,
                e.id,
                [e.max_attempts, e.at_ms, e.delay_ms],
                e.follow_ups,
                e.body,
            ));
            kinds.push(None);
            if !queues.contains(&e.queue) {
                queues.push(e.queue);
            }
        }
        let mut created = 0;
        let mut homes: Vec<String> = Vec::new();
        if !kinds.is_empty() {
            if !queues.is_empty() {
                pipe.add_command(crate::admin::register_queues_cmd(
                    self.global_keys(),
                    &queues,
                ))
                .ignore();
            }
            let replies: Vec<redis::Value> = scripts::run(&mut self.connection(), &pipe)
                .await
                .map_err(Error::redis("move follow-ups"))?;
            for (kind, reply) in kinds.into_iter().zip(replies) {
                match kind {
                    None => {
                        let made: (i64, Vec<String>) = redis::from_redis_value(reply)
                            .map_err(Error::parse("move follow-ups"))?;
                        created += u64::from(made.0 == 1);
                    }
                    Some(home) => {
                        let fired: u64 =
                            redis::from_redis_value(reply).map_err(Error::parse("batch report"))?;
                        if fired > 0 && !homes.contains(&home) {
                            homes.push(home);
                        }
                    }
                }
            }
        }
        let mut done = SCRIPTS.outbox_done.cmd(&[&keys.outbox]);
        done.arg(&raw);
        let _: u64 = scripts::run(&mut self.connection(), &done)
            .await
            .map_err(Error::redis("follow-up outbox"))?;
        Ok((created, homes))
    }
}

impl Runtime {
    /// Moves up to `limit` triggered follow-ups and batch reports from
    /// `keys`'s queue's outbox: one round trip enqueues the follow-ups
    /// (each with its id as uniqueness key for [`FOLLOW_UP_DEDUPE`]) and
    /// applies the reports to their batches, a second removes them from
    /// the outbox; callbacks the reports triggered are moved from their
    /// home queues' outboxes next. An entry that is neither (another
    /// writer's) is logged and removed. Returns how many follow-ups were
    /// created (a repeated move creates nothing).
    ///
    /// # Errors
    /// [`Error::Redis`]; the entries stay in the outbox for the next move.
    pub async fn move_follow_ups(&self, keys: &QueueKeys, limit: usize) -> Result<u64> {
        self.client().move_outboxes(keys, limit).await
    }
}

/// The job type of webhook deliveries: a [`FollowUp`] on completion that
/// [`EnqueueOptions::webhook`] adds; workers deliver it with
/// `WorkerBuilder::webhooks`, which signs the POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Where the outcome goes.
    pub url: String,
}

/// The queue webhook deliveries go to.
pub const WEBHOOK_QUEUE: &str = "webhooks";

/// Runs a webhook delivery gets: the first try and 11 retries with
/// backoff (over about 17 hours with the default policy of the worker).
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 12;

impl Job for WebhookDelivery {
    const TYPE: &'static str = "spool.webhook";
    fn options() -> crate::JobOptions {
        crate::JobOptions::default()
            .queue(WEBHOOK_QUEUE)
            .max_attempts(WEBHOOK_MAX_ATTEMPTS)
            .timeout(Duration::from_secs(60))
    }
}

/// Checks a webhook URL: `http` or `https`, a host, no user or password
/// (secrets come from the worker's configuration, never from a payload),
/// and, when `allowed` is not empty, a host it names (exact, case-insensitive,
/// or `*.domain` for its subdomains). Returns the reason it is refused.
///
/// ```
/// use spool_client::check_webhook_url;
/// assert!(check_webhook_url("https://hooks.example.com/spool", &[]).is_ok());
/// assert!(check_webhook_url("ftp://example.com/", &[]).is_err());
/// assert!(check_webhook_url("https://user:pw@example.com/", &[]).is_err());
/// assert!(check_webhook_url("https://evil.test/", &["*.example.com".into()]).is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] naming what is wrong.
pub fn check_webhook_url(text: &str, allowed: &[String]) -> Result<url::Url> {
    let refuse = |why: &str| {
        Error::InvalidArgument(format!(
            "webhook URL {:?} refused: {why}",
            crate::wire::truncate_utf8(text, 200)
        ))
    };
    let url = url::Url::parse(text).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("only http and https URLs are delivered"));
    }
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return Err(refuse("it has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "it carries credentials; the signing secret comes from the worker's configuration",
        ));
    }
    let host_allowed = |pattern: &String| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == pattern,
        }
    };
    if !allowed.is_empty() && !allowed.iter().any(host_allowed) {
        return Err(refuse("its host is not in the allowed webhook hosts"));
    }
    Ok(url)
}

impl crate::client::Client {
    /// The delivery follow-up of a webhook to `url` (checked here).
    pub(crate) fn webhook_follow_up(&self, url: &str) -> Result<FollowUp> {
        check_webhook_url(url, self.webhook_hosts())?;
        FollowUp::on_complete(&WebhookDelivery {
            url: url.to_owned(),
        })
    }
}

/// The follow-ups of a stored array (a `followups` hash value, or a
/// batch's callbacks): each entry's trigger, queue, id and job type (read
/// from its body). Entries that do not parse are skipped: another producer
/// may have written them; so are batch markers.
pub(crate) fn stored_follow_ups(raw: &str) -> Vec<PendingFollowUp> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        job_type: String,
    }
    let Ok(list) = serde_json::from_str::<Vec<serde_json::Value>>(raw) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let on = e.get(0)?.as_str()?;
            let job_type = e
                .get(4)
                .and_then(serde_json::Value::as_str)
                .and_then(|b| serde_json::from_str::<Head>(b).ok())
                .map(|h| h.job_type)
                .unwrap_or_default();
            Some(PendingFollowUp {
                on: on.to_owned(),
                queue: e.get(1)?.as_str()?.to_owned(),
                id: JobId::from(e.get(2)?.as_str()?.to_owned()),
                job_type,
            })
        })
        .filter(|f| f.on != "batch")
        .collect()
}

/// A follow-up a job waits to create (its child, once created), as the
/// job's queue holds it ([`Admin::follow_ups`](crate::Admin::follow_ups)).
#[derive(Debug, Clone, Serialize)]
pub struct PendingFollowUp {
    /// When it is created: `success`, `failure` or `complete`.
    pub on: String,
    /// Its queue.
    pub queue: String,
    /// Its id (chosen at enqueue).
    pub id: JobId,
    /// Its type.
    pub job_type: String,
}

impl crate::Admin {
    /// The follow-ups job `id` of `queue` will create when it ends (none
    /// once it ended done or cancelled: they were created then; a dead job
    /// keeps them). Entries that do not parse are skipped.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn follow_ups(&self, queue: &str, id: &str) -> Result<Vec<PendingFollowUp>> {
        let keys = self.client().queue_keys(queue)?;
        let raw: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&keys.followups)
            .arg(id)
            .query_async(&mut self.client().connection())
            .await
            .map_err(Error::redis("follow-ups"))?;
        // Not UTF-8: nothing that parses (as entries that do not parse).
        let raw = raw.and_then(crate::wire::utf8);
        Ok(stored_follow_ups(raw.as_deref().unwrap_or("[]"))
            .into_iter()
            .filter(|f| matches!(f.on.as_str(), "success" | "failure" | "complete"))
            .collect())
    }
}

/// The parent of a follow-up job, as the script that ended it wrote it
/// into the follow-up's record ([`JobRecord::parent`](crate::JobRecord::parent)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parent {
    /// The parent job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// How it ended: `done`, `dead` or `cancelled`.
    pub state: String,
    /// What its handler returned (when it returned a value).
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    /// Its last error (when it died).
    #[serde(default)]
    pub error: Option<String>,
    /// Its job type.
    #[serde(default, rename = "type")]
    pub job_type: Option<String>,
    /// The runs it had.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// When it ended (Redis ms).
    #[serde(default)]
    pub finished_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_entries_parse_and_garbage_does_not() {
        let e = OutboxEntry::parse(b"mail\"id-1\"3\"0\"500\"2\"[]{\"type\":\"x\"}").unwrap();
        assert_eq!((e.queue, e.id, e.max_attempts), ("mail", "id-1", "3"));
        assert_eq!((e.at_ms, e.delay_ms), ("0", "500"));
        assert!(OutboxEntry::parse(b"mail\"id\"3\"0\"0\"0\"{\"a\":1}").is_some());
        assert_eq!(e.follow_ups, b"[]");
        assert_eq!(e.body, b"{\"type\":\"x\"}");
        for bad in [
            &b""[..],
            b"mail\"id\"3\"0\"0\"0\"not json",
            b"bad queue\"id\"3\"0\"0\"0\"{\"a\":1}",
            b"mail\"\"3\"0\"0\"0\"{\"a\":1}",
            b"mail\"id\"x\"0\"0\"0\"{\"a\":1}",
            b"mail\"id\"3\"-1\"0\"0\"{\"a\":1}",
            b"mail\"id\"3\"0\"0\"99\"{\"a\":1}",
            b"mail\"id\"3",
        ] {
            assert!(OutboxEntry::parse(bad).is_none(), "{bad:?}");
        }
    }
}
