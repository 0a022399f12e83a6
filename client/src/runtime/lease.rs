//! Leases: the fetch that claims jobs, the fenced completion that ends a
//! lease (ack, retry, dead), lease extension and the hand-back at shutdown.
//!
//! Runtime protocol, not for application code. Records come back from Redis
//! as bytes and are decoded one job at a time: a record written by another
//! producer that is not UTF-8 or not Spool's shape fails alone (its job goes
//! to the dead set with a reason naming the problem), never its batch.

use std::sync::Arc;
use std::time::Duration;

use super::Runtime;
use crate::enqueue::duration_ms;
use crate::error::{Error, Result};
use crate::job::{JobId, JobRecord};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::wire;

/// The fence of one lease: a per-queue counter value issued by `fetch.lua`.
/// Ack, fail, extend and release only act while the job's lease still
/// carries it. Shared, not copied, when cloned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(Arc<str>);

impl LeaseToken {
    /// The token as sent to Redis.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for LeaseToken {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

/// Pick-up latency (ms, summed) of claimed jobs that their queue's stats
/// have not counted yet, by ready key. `fetch.lua` reads no more of a
/// record than its id (Lua's pattern matcher is the costliest part of a
/// fetch), so the worker reads each record's `enqueued_ms` and the next
/// claim of that queue adds the sum to the stats (`fl`) in the same call.
#[derive(Debug, Default)]
pub(crate) struct PickupOwed(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl PickupOwed {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `ready`'s queue is owed, now sent (0 when nothing).
    fn take(&self, ready: &str) -> u64 {
        self.lock().get_mut(ready).map_or(0, std::mem::take)
    }

    fn add(&self, ready: &str, ms: u64) {
        if ms == 0 {
            return;
        }
        let mut owed = self.lock();
        match owed.get_mut(ready) {
            Some(n) => *n = n.saturating_add(ms),
            None => {
                owed.insert(ready.to_owned(), ms);
            }
        }
    }
}

/// A job fetched with a lease.
#[derive(Debug)]
pub struct LeasedJob {
    /// Keys of the job's queue.
    pub keys: Arc<QueueKeys>,
    /// The job id (read from the record's script-owned prefix).
    pub id: JobId,
    /// The lease fence.
    pub token: LeaseToken,
    /// The record, its `attempt` counting this run (1 for the first); `Err`
    /// holds a readable reason when the stored bytes do not decode (not
    /// UTF-8, or not Spool's shape: written by another producer). Behind
    /// an `Arc`: the run's context shares it, and a worker's task moves
    /// it around without copying the record.
    pub record: std::result::Result<Arc<JobRecord>, String>,
    /// Redis's clock when the lease was taken (ms).
    pub leased_at_ms: i64,
}

/// What one [`Runtime::claim`] got.
#[derive(Debug, Default)]
pub struct Claim {
    /// The jobs claimed.
    pub jobs: Vec<LeasedJob>,
    /// Set when the queue's rate limit or open circuit breaker holds it:
    /// no job will be fetched from it for this long, so a fetcher should
    /// not ask (nor wait for a wake-up token) before then.
    pub hold: Option<Duration>,
    /// Jobs over their rate key's budget, sent to the scheduled set until
    /// their key's next start: the scheduler should look now.
    pub deferred: usize,
    /// How soon the queue's earliest scheduled or retrying job may be due
    /// (its due hint, from any producer or worker; zero when it is due
    /// now), if it has one: a scheduler planning to look later should look
    /// now.
    pub due: Option<Duration>,
}

/// What to do with a finished job.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The handler succeeded: remove the job.
    Ack,
    /// The handler succeeded and returned a value, kept with the job's
    /// outcome (the job keeps one).
    Returned {
        /// The value as JSON, or why it is not kept (too large, not
        /// serializable): the job is done either way.
        result: std::result::Result<String, String>,
    },
    /// Failed: retry after `delay` unless attempts are used up (then dead).
    Retry {
        /// Delay added to Redis's clock.
        delay: Duration,
        /// Readable error.
        error: String,
    },
    /// Failed for good: straight to the dead set.
    Dead {
        /// Readable error.
        error: String,
    },
    /// Not run to the end because a downstream rate-limited it: run again
    /// after `delay`, without counting this run as an attempt (nor as a
    /// failure for the circuit breaker).
    Snooze {
        /// Delay added to Redis's clock.
        delay: Duration,
        /// Why, as the timeline shows it.
        reason: String,
    },
}

impl Outcome {
    /// True for [`Outcome::Ack`] and [`Outcome::Returned`] (sent to `ack.lua`).
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Ack | Self::Returned { .. })
    }
}

/// A finished job and what to do with it.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Keys of the job's queue.
    pub keys: Arc<QueueKeys>,
    /// Job id.
    pub id: JobId,
    /// The lease fence.
    pub token: LeaseToken,
    /// Ack, retry or dead.
    pub outcome: Outcome,
    /// What the job's event and kept outcome need from the run
    /// ([`RunFacts::of`]); `None` when its record did not decode.
    pub run: Option<RunFacts>,
}

/// The facts of a run that `ack.lua` writes into the job's `succeeded`
/// event and kept outcome, taken from the leased record so the script need
/// not read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// How long the outcome is kept (ms), from the record; `None` when the
    /// job keeps none.
    pub keep_outcome_ms: Option<u64>,
    /// The job has follow-ups: `ack.lua` gets its result for them.
    pub followups: bool,
    /// The job type.
    pub job_type: String,
    /// Runs so far, this one included.
    pub attempt: u32,
    /// When the job last became ready (Redis ms).
    pub enqueued_ms: i64,
    /// When this run's lease was taken (Redis ms).
    pub started_ms: i64,
    /// When this process received the lease: the run's length is measured
    /// from here to the ack (a duration, so no clock is mixed in).
    pub received: std::time::Instant,
}

impl RunFacts {
    /// The facts of `job`'s run; `None` when its record did not decode.
    #[must_use]
    pub fn of(job: &LeasedJob) -> Option<Self> {
        let record = job.record.as_ref().ok()?;
        Some(Self {
            keep_outcome_ms: record.keep_outcome_ms.filter(|ms| *ms > 0),
            followups: record.followups,
            job_type: record.job_type.clone(),
            attempt: record.attempt,
            enqueued_ms: record.enqueued_ms,
            started_ms: job.leased_at_ms,
            received: std::time::Instant::now(),
        })
    }
}

/// `ack.lua`'s four arguments for a job that keeps its outcome: id,
/// retention, and the parts and rest of the outcome's short form
/// (docs/PROTOCOL.md): everything but the finish time, which is Redis's.
fn ack_outcome_args(c: &Completion, cmd: &mut redis::Cmd) {
    let Some((f, keep_ms)) = c
        .run
        .as_ref()
        .and_then(|f| f.keep_outcome_ms.map(|ms| (f, ms)))
    else {
        return;
    };
    let rest = outcome_rest(&c.outcome);
    cmd.arg(c.id.as_str())
        .arg(keep_ms)
        .arg(format!(
            ",\"done\",{},{},{},{}",
            f.attempt,
            f.received.elapsed().as_millis(),
            f.started_ms - f.enqueued_ms,
            serde_json::Value::from(f.job_type.as_str())
        ))
        .arg(rest);
}

/// The end of a done job's outcome: `]`, `,result]`, or `,null,error]`
/// (why a returned value is not kept).
fn outcome_rest(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Returned { result: Ok(json) } => format!(",{json}]"),
        Outcome::Returned { result: Err(why) } => format!(
            ",null,{}]",
            serde_json::Value::from(wire::truncate_utf8(why, wire::ERROR_TEXT_MAX_BYTES))
        ),
        _ => "]".to_owned(),
    }
}

/// Jobs per `succeeded` event entry an ack writes (`SPOOL_EVENT_BATCH`).
const ACK_EVENT_JOBS: usize = 100;

/// The `jobs` field of a `succeeded` event entry for `done`: each job's
/// id, attempt and type, all joined by `"` (docs/PROTOCOL.md, "Events").
/// `ack.lua` writes it as it is when every lease held: one argument per
/// 100 jobs instead of one per job, and no string built in Lua.
fn succeeded_jobs_field<'a>(done: impl Iterator<Item = &'a Completion>) -> String {
    let mut field = String::new();
    // `write!` costs about 500 instructions a job here; pushes and itoa a
    // tenth of that.
    let mut digits = itoa::Buffer::new();
    for c in done {
        let (attempt, job_type) = c
            .run
            .as_ref()
            .map_or((0, ""), |f| (f.attempt, f.job_type.as_str()));
        if !field.is_empty() {
            field.push('"');
        }
        field.push_str(c.id.as_str());
        field.push('"');
        field.push_str(digits.format(attempt));
        field.push('"');
        field.push_str(&event_field(job_type));
    }
    field
}

/// A job type as an event lists it: `"` separates the fields of a stream
/// entry's `jobs` (prelude.lua, "Events"), so a type holding one (or a
/// backslash, which records never hold) is written with `'` and `/`.
fn event_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['"', '\\']) {
        text.replace('"', "'").replace('\\', "/").into()
    } else {
        text.into()
    }
}

/// How a completion was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Acknowledged; the job is done.
    Acked,
    /// Moved to the retry set.
    Retrying,
    /// Moved to the dead set.
    Dead,
    /// The run had been asked to cancel: the job ended cancelled, whatever
    /// the handler returned.
    Cancelled,
    /// The lease was no longer ours: nothing changed.
    LeaseLost,
}

/// A lease that [`Runtime::extend`] could not extend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostLease {
    /// The job.
    pub id: JobId,
    /// The token the caller presented.
    pub token: LeaseToken,
    /// What happened to the lease.
    pub why: LeaseLoss,
}

/// Why [`Runtime::extend`] reports a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLoss {
    /// The job holds a lease with another token: the lease expired and
    /// another run (maybe in this process) took it.
    Taken,
    /// The job holds no lease at all: acknowledged, failed, released,
    /// reaped or deleted.
    Gone,
    /// The lease is still this run's (and was extended), but the job was
    /// asked to cancel: the run should stop; it ends cancelled.
    CancelAsked,
}

/// Groups item indexes by queue, in order of first appearance, so each queue
/// gets one batched script call.
fn by_queue<'a>(
    items: impl Iterator<Item = (usize, &'a Arc<QueueKeys>)>,
) -> Vec<(&'a Arc<QueueKeys>, Vec<usize>)> {
    let mut groups: Vec<(&Arc<QueueKeys>, Vec<usize>)> = Vec::new();
    for (i, keys) in items {
        match groups
            .iter_mut()
            .find(|(k, _)| Arc::ptr_eq(k, keys) || k.ready == keys.ready)
        {
            Some((_, idx)) => idx.push(i),
            None => groups.push((keys, vec![i])),
        }
    }
    groups
}

/// A fetched record in Spool's own layout (`record_decode`) whose head
/// [`wire::record_head`] reads too (an id, a time not before 1970) and
/// whose args nest within the limit, decoded as [`decode_leased`] would;
/// `None` for anything else, which goes the long way. The head is then
/// read once.
fn decode_own_layout(raw: &[u8]) -> Option<Arc<JobRecord>> {
    let record = crate::record_decode::decode(std::str::from_utf8(raw).ok()?)?;
    if record.id.as_str().is_empty() || record.enqueued_ms < 0 {
        return None;
    }
    leased(record).ok()
}

/// Decodes one fetched record; the reason names what is wrong with it.
fn decode_leased(raw: &[u8]) -> std::result::Result<Arc<JobRecord>, String> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "unparsable payload: the job record is not valid UTF-8 ({e}); its bytes are kept unchanged"
        )
    })?;
    let record = JobRecord::from_json(text).map_err(|e| {
        format!("unparsable payload: the job record does not have Spool's shape ({e})")
    })?;
    leased(record)
}

/// A decoded record as the executor gets it: its args nest within the
/// limit, and its attempt counts the run in progress.
fn leased(mut record: JobRecord) -> std::result::Result<Arc<JobRecord>, String> {
    wire::check_args_depth(record.args.get().as_bytes())
        .map_err(|e| format!("unparsable payload: {e}"))?;
    record.attempt = wire::attempt_while_leased(record.attempt);
    Ok(Arc::new(record))
}

/// The `fail.lua` call for a failed completion; `None` for a success.
fn fail_cmd(c: &Completion, retention: crate::Retention, channel: &str) -> Option<redis::Cmd> {
    let (mode, delay, error) = match &c.outcome {
        Outcome::Ack | Outcome::Returned { .. } => return None,
        Outcome::Retry { delay, error } => ("retry", duration_ms(*delay), error),
        Outcome::Dead { error } => ("dead", 0, error),
        Outcome::Snooze { delay, reason } => ("snooze", duration_ms(*delay), reason),
    };
    let k = &c.keys;
    let mut keys = vec![
        k.active.as_str(),
        &k.jobs,
        &k.leases,
        &k.errors,
        &k.retry,
        &k.dead,
        &k.stats,
    ];
    keys.extend(k.finishing());
    let mut cmd = SCRIPTS.fail.cmd(&keys);
    cmd.arg(c.id.as_str())
        .arg(c.token.as_str())
        .arg(mode)
        .arg(delay)
        .arg(wire::truncate_utf8(error, wire::ERROR_TEXT_MAX_BYTES))
        .arg(retention.dead_max_jobs)
        .arg(retention.error_history)
        .arg(channel);
    Some(cmd)
}

/// A job list as the scripts take it: pairs of id and token per queue.
type LeaseList = [(Arc<QueueKeys>, JobId, LeaseToken)];

impl Runtime {
    /// Claims up to `max` jobs from `keys`'s queue with a lease of `lease`
    /// for `worker_id`. Returns nothing when the queue is empty, paused,
    /// held or at its limit ([`Runtime::claim`] also says for how long it is
    /// held).
    ///
    /// # Errors
    /// As [`Runtime::claim`].
    pub async fn fetch(
        &self,
        keys: &Arc<QueueKeys>,
        max: usize,
        lease: Duration,
        worker_id: &str,
    ) -> Result<Vec<LeasedJob>> {
        Ok(self.claim(keys, max, lease, worker_id).await?.jobs)
    }

    /// Claims up to `max` jobs from `keys`'s queue with a lease of `lease`
    /// for `worker_id`, within the queue's fleet controls.
    ///
    /// # Errors
    /// [`Error::Redis`]; [`Error::Decode`] only when the reply itself is not
    /// the script's shape (records are decoded per job, see [`LeasedJob`]).
    pub async fn claim(
        &self,
        keys: &Arc<QueueKeys>,
        max: usize,
        lease: Duration,
        worker_id: &str,
    ) -> Result<Claim> {
        let mut cmd = SCRIPTS.fetch.cmd(&[
            &keys.ready,
            &keys.active,
            &keys.jobs,
            &keys.leases,
            &keys.fence,
            &keys.paused,
            &keys.dead,
            &keys.errors,
            &keys.wake,
            &keys.stats,
            &keys.history,
            &keys.locks,
            &keys.events,
            &keys.settings,
        ]);
        let owed = self.client.pickup_owed().take(&keys.ready);
        cmd.arg(max.max(1))
            .arg(duration_ms(lease))
            .arg(wire::lease_worker_id(worker_id))
            .arg(self.client.max_payload_bytes())
            .arg(owed);
        let reply: Vec<redis::Value> = match scripts::run(&mut self.client.connection(), &cmd).await
        {
            Ok(reply) => reply,
            Err(err) => {
                // Not counted: the next claim sends it again.
                self.client.pickup_owed().add(&keys.ready, owed);
                return Err(Error::redis("fetch")(err));
            }
        };
        let mut items = reply.into_iter();
        let now: i64 = match items.next() {
            Some(v) => redis::from_redis_value(v).map_err(Error::parse("fetch"))?,
            None => return Ok(Claim::default()),
        };
        let mut header = || -> Result<u64> {
            items.next().map_or(Ok(0), |v| {
                redis::from_redis_value(v).map_err(Error::parse("fetch"))
            })
        };
        let (hold_ms, deferred, due_ms) = (header()?, header()?, header()?);
        let mut jobs = Vec::new();
        let mut waited_ms = 0u64;
        let mut lease = |token: LeaseToken, raw: &[u8]| {
            // fetch.lua checked only the id: the rest of the head is read here.
            let (id, record) = if let Some(record) = decode_own_layout(raw) {
                waited_ms += u64::try_from(now - record.enqueued_ms).unwrap_or(0);
                (record.id.clone(), Ok(record))
            } else {
                match wire::record_head(raw) {
                    Some(head) => {
                        waited_ms += u64::try_from(now - head.enqueued_ms).unwrap_or(0);
                        (JobId::from(head.id), decode_leased(raw))
                    }
                    None => (
                        JobId::from(wire::record_id(raw).unwrap_or("")),
                        Err(wire::NOT_A_RECORD.to_owned()),
                    ),
                }
            };
            jobs.push(LeasedJob {
                keys: Arc::clone(keys),
                id,
                token,
                record,
                leased_at_ms: now,
            });
        };
        let first: i64 = match items.next() {
            Some(v) => redis::from_redis_value(v).map_err(Error::parse("fetch"))?,
            None => 0,
        };
        if first > 0 {
            // The records alone, their tokens `first`, `first + 1`, ….
            // (A bulk string's bytes are moved out, not copied.)
            for (token, v) in (first..).zip(items.by_ref()) {
                let raw: Vec<u8> = redis::from_redis_value(v).map_err(Error::parse("fetch"))?;
                lease(LeaseToken::from(itoa::Buffer::new().format(token)), &raw);
            }
        }
        while let (Some(token), Some(raw)) = (items.next(), items.next()) {
            let token = match token {
                redis::Value::Int(n) => LeaseToken::from(itoa::Buffer::new().format(n)),
                other => LeaseToken::from(
                    redis::from_redis_value::<String>(other)
                        .map_err(Error::parse("fetch"))?
                        .as_str(),
                ),
            };
            let raw: Vec<u8> = redis::from_redis_value(raw).map_err(Error::parse("fetch"))?;
            lease(token, &raw);
        }
        self.client.pickup_owed().add(&keys.ready, waited_ms);
        Ok(Claim {
            jobs,
            due: (due_ms > 0)
                .then(|| Duration::from_millis(due_ms.saturating_sub(now.unsigned_abs()))),
            hold: (hold_ms > 0).then(|| Duration::from_millis(hold_ms)),
            deferred: usize::try_from(deferred).unwrap_or(usize::MAX),
        })
    }

    /// Applies completions in one round trip: acks of one queue share one
    /// `ack.lua` call; each failure is one `fail.lua` call. Results are in
    /// input order.
    ///
    /// # Errors
    /// [`Error::Redis`]; then nothing is known about which completions landed,
    /// and retrying is safe (a second ack of the same lease is `LeaseLost`).
    pub async fn complete(&self, batch: &[Completion]) -> Result<Vec<Applied>> {
        let retention = self.client.retention();
        let channel = &self.client.global_keys().finished_channel;
        let mut pipe = redis::pipe();
        // (queue ack group) → indexes into `batch`, in the order pipelined.
        let mut plan: Vec<Vec<usize>> = Vec::new();
        let acks = batch
            .iter()
            .enumerate()
            .filter(|(_, c)| c.outcome.is_success())
            .map(|(i, c)| (i, &c.keys));
        for (keys, idx) in by_queue(acks) {
            let mut key_list = vec![
                keys.active.as_str(),
                &keys.jobs,
                &keys.leases,
                &keys.errors,
                &keys.stats,
            ];
            key_list.extend(keys.finishing());
            key_list.push(&keys.workers);
            key_list.push(&keys.wake);
            let mut cmd = SCRIPTS.ack.cmd(&key_list);
            // Only a job that ran before can have an error history.
            let ran_before = idx
                .iter()
                .any(|&i| batch[i].run.as_ref().is_none_or(|f| f.attempt > 1));
            cmd.arg(channel)
                .arg(idx.len())
                .arg(if ran_before { "e" } else { "" })
                .arg(idx.len().div_ceil(ACK_EVENT_JOBS));
            for chunk in idx.chunks(ACK_EVENT_JOBS) {
                cmd.arg(succeeded_jobs_field(chunk.iter().map(|&i| &batch[i])));
            }
            // The ids, then the tokens: the script hands the ids to its
            // HMGET of the leases as they came.
            for &i in &idx {
                cmd.arg(batch[i].id.as_str());
            }
            for &i in &idx {
                cmd.arg(batch[i].token.as_str());
            }
            for &i in &idx {
                ack_outcome_args(&batch[i], &mut cmd);
            }
            // The results the follow-ups of these jobs read.
            let with_follow_ups = idx
                .iter()
                .filter(|&&i| batch[i].run.as_ref().is_some_and(|f| f.followups));
            for (n, &i) in with_follow_ups.enumerate() {
                if n == 0 {
                    cmd.arg("\"");
                }
                cmd.arg(batch[i].id.as_str())
                    .arg(outcome_rest(&batch[i].outcome));
            }
            pipe.add_command(cmd);
            plan.push(idx);
        }
        for (i, c) in batch.iter().enumerate() {
            if let Some(cmd) = fail_cmd(c, retention, channel) {
                pipe.add_command(cmd);
                plan.push(vec![i]);
            }
        }
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<redis::Value> = scripts::run(&mut self.client.connection(), &pipe)
            .await
            .map_err(Error::redis("complete"))?;
        let mut out = vec![Applied::LeaseLost; batch.len()];
        for (reply, idx) in replies.into_iter().zip(plan) {
            if idx.len() == 1 && !batch[idx[0]].outcome.is_success() {
                let code: i64 = redis::from_redis_value(reply).map_err(Error::parse("fail"))?;
                out[idx[0]] = match code {
                    1 => Applied::Retrying,
                    2 => Applied::Dead,
                    3 => Applied::Cancelled,
                    _ => Applied::LeaseLost,
                };
            } else {
                // One character per job (ack.lua).
                let codes: Vec<u8> = redis::from_redis_value(reply).map_err(Error::parse("ack"))?;
                for (code, i) in codes.into_iter().zip(idx) {
                    out[i] = match code {
                        b'1' => Applied::Acked,
                        b'2' => Applied::Cancelled,
                        _ => Applied::LeaseLost,
                    };
                }
            }
        }
        self.replicate_completions(batch).await;
        Ok(out)
    }

    /// [`Durability::Replicated`](crate::Durability) for finishing calls:
    /// waits for the replicas of each queue's primary (one wait covers all
    /// on a single node). A shortfall is logged, not returned: the outcomes
    /// are on the primary, and sending them again could not help; if that
    /// primary dies now, a finished job may run once more (never be lost).
    async fn replicate_completions(&self, batch: &[Completion]) {
        if self.client.durability() == crate::Durability::Primary {
            return;
        }
        let mut queues: Vec<&QueueKeys> = Vec::new();
        for c in batch {
            if !queues.iter().any(|k| k.queue == c.keys.queue) {
                queues.push(&c.keys);
            }
        }
        if self.client.topology() != crate::Topology::Cluster {
            queues.truncate(1);
        }
        for keys in queues {
            if let Err(err) = self.client.wait_replicated(&keys.ready, "complete").await {
                tracing::warn!(queue = %keys.queue, error = %err, "finished jobs not replicated in time");
            }
        }
    }

    /// One call per queue, all in one round trip: `cmd_for` builds the
    /// queue's script command (keys and leading ARGV), then `jobs`' id/token
    /// pairs of that queue are appended.
    async fn per_queue<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        jobs: &LeaseList,
        cmd_for: impl Fn(&QueueKeys) -> redis::Cmd,
    ) -> Result<Vec<T>> {
        let groups = by_queue(jobs.iter().enumerate().map(|(i, (keys, _, _))| (i, keys)));
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (keys, idx) in &groups {
            let mut cmd = cmd_for(keys);
            for &i in idx {
                cmd.arg(jobs[i].1.as_str()).arg(jobs[i].2.as_str());
            }
            pipe.add_command(cmd);
        }
        scripts::run(&mut self.client.connection(), &pipe)
            .await
            .map_err(Error::redis(what))
    }

    /// Extends the leases of running jobs to Redis's clock + `lease`, one
    /// `extend.lua` call per queue, all in one round trip. Returns the leases
    /// that were lost or whose job was asked to cancel (those runs must
    /// stop), each saying which.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn extend(&self, lease: Duration, jobs: &LeaseList) -> Result<Vec<LostLease>> {
        let replies: Vec<Vec<String>> = self
            .per_queue("extend", jobs, |keys| {
                let mut cmd = SCRIPTS
                    .extend
                    .cmd(&[&keys.active, &keys.leases, &keys.cancels]);
                cmd.arg(duration_ms(lease));
                cmd
            })
            .await?;
        Ok(replies
            .into_iter()
            .flat_map(|flat| {
                flat.chunks_exact(3)
                    .map(|t| LostLease {
                        id: JobId::from(t[0].as_str()),
                        token: LeaseToken(t[1].as_str().into()),
                        why: match t[2].as_str() {
                            "taken" => LeaseLoss::Taken,
                            "cancel" => LeaseLoss::CancelAsked,
                            _ => LeaseLoss::Gone,
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Hands leased jobs back to ready at once (graceful shutdown). Their
    /// attempt is not counted. Returns how many went back.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn release(&self, jobs: &LeaseList) -> Result<u64> {
        let released: Vec<u64> = self
            .per_queue("release", jobs, |keys| {
                let mut key_list = vec![
                    keys.active.as_str(),
                    &keys.jobs,
                    &keys.leases,
                    &keys.ready,
                    &keys.wake,
                    &keys.errors,
                    &keys.stats,
                ];
                key_list.extend(keys.finishing());
                let mut cmd = SCRIPTS.release.cmd(&key_list);
                cmd.arg(&self.client.global_keys().finished_channel);
                cmd
            })
            .await?;
        Ok(released.into_iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::{
        decode_leased, decode_own_layout, succeeded_jobs_field, Completion, LeaseToken, Outcome,
        RunFacts,
    };
    use crate::record_decode::samples::{records, variants, HEAD};
    use crate::wire;

    /// A record the short way (`decode_own_layout`) is one the long way
    /// reads the same: a Spool head with the same id and time, and the
    /// same record. Over records, their prefixes and one-byte changes, and
    /// heads another producer may write (an empty id, a time before 1970,
    /// leading zeros).
    #[test]
    fn the_short_way_reads_what_the_long_way_reads() {
        let mut texts: Vec<String> = records();
        for head in [
            r#"{"id":"","attempt":0,"max_attempts":1,"enqueued_ms":5,"#,
            r#"{"id":"j","attempt":0,"max_attempts":1,"enqueued_ms":-5,"#,
            r#"{"id":"j","attempt":00,"max_attempts":1,"enqueued_ms":5,"#,
            r#"{"id":"j","attempt":0,"max_attempts":1,"enqueued_ms":05,"#,
        ] {
            let body = records()[0].replacen(HEAD, "", 1);
            texts.push(format!("{head}{body}"));
        }
        let mut short = 0;
        for text in &texts {
            for v in variants(text) {
                let Some(fast) = decode_own_layout(v.as_bytes()) else {
                    continue;
                };
                short += 1;
                let head = wire::record_head(v.as_bytes())
                    .unwrap_or_else(|| panic!("no Spool head on the long way: {v}"));
                assert_eq!(
                    (head.id, head.enqueued_ms),
                    (fast.id.as_str(), fast.enqueued_ms),
                    "{v}"
                );
                let slow = decode_leased(v.as_bytes())
                    .unwrap_or_else(|e| panic!("the long way refuses it ({e}): {v}"));
                assert_eq!(
                    serde_json::to_string(&*fast).ok(),
                    serde_json::to_string(&*slow).ok(),
                    "{v}"
                );
                assert_eq!(fast.attempt, slow.attempt, "{v}");
            }
        }
        assert!(short > 50, "only {short} records took the short way");
    }

    /// The `succeeded` events' `jobs` field: each job's id, attempt and
    /// type joined by `"`, a type holding `"` or `\\` written with `'`
    /// and `/`, a job whose record did not decode as attempt 0 with no type.
    #[test]
    fn the_succeeded_field_lists_id_attempt_and_type() {
        let keys = std::sync::Arc::new(crate::keys::QueueKeys::new("spool", "q"));
        let done = |id: &str, facts: Option<(u32, &str)>| Completion {
            keys: std::sync::Arc::clone(&keys),
            id: id.into(),
            token: LeaseToken::from("7"),
            outcome: Outcome::Ack,
            run: facts.map(|(attempt, job_type)| RunFacts {
                keep_outcome_ms: None,
                followups: false,
                job_type: job_type.to_owned(),
                attempt,
                enqueued_ms: 1,
                started_ms: 2,
                received: std::time::Instant::now(),
            }),
        };
        let batch = [
            done("a", Some((1, "send_email"))),
            done("b", Some((4_294_967_295, "odd\"ty\\pe"))),
            done("c", None),
        ];
        assert_eq!(
            succeeded_jobs_field(batch.iter()),
            "a\"1\"send_email\"b\"4294967295\"odd'ty/pe\"c\"0\""
        );
        assert_eq!(succeeded_jobs_field(batch[..1].iter()), "a\"1\"send_email");
    }

    #[test]
    fn a_non_utf8_record_is_an_error_naming_the_problem() {
        let err = decode_leased(
            b"{\"id\":\"a\",\"attempt\":0,\"max_attempts\":3,\"enqueued_ms\":1,\"type\":\"\xff\"}",
        )
        .expect_err("not UTF-8");
        assert!(err.contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn args_nested_past_the_limit_are_an_error_naming_it() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let raw = format!(
            r#"{{"id":"a","attempt":0,"max_attempts":3,"enqueued_ms":1,"type":"t","queue":"q","args":{deep},"created_ms":1}}"#
        );
        let err = decode_leased(raw.as_bytes()).expect_err("too deep");
        assert!(err.contains("64"), "{err}");
    }
}
