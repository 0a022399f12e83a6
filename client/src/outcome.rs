//! Job outcomes for producers: where a job is ([`Client::status`]), what its
//! handler returned ([`Client::result`]) and cancelling it
//! ([`Client::cancel`]). `wait` is in `waiters`.
//!
//! A status is read in one step by `status.lua` (the sets, the lease, the
//! kept outcome); a ready job is in the list, which is walked in windows
//! (`find_ready.lua`) only when that step did not place the job. Cancel is
//! `cancel.lua` (scheduled, retry, active) or `cancel_ready.lua` (ready).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::{ErrorEntry, JobId, JobOutput};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::wire::{parse_lease, record_head};

/// Bytes of a live job's record `status.lua` returns (enough for the head
/// and the type).
const STATUS_RECORD_PREFIX: usize = 4096;

/// Where a job is, finished states included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting in the scheduled set for its time.
    Scheduled,
    /// In the ready list, waiting for a worker.
    Ready,
    /// Leased by a worker and running.
    Active,
    /// Failed, waiting for its next attempt.
    Retry,
    /// Out of attempts or failed permanently (terminal until an operator
    /// retries it).
    Dead,
    /// Finished successfully (known while its outcome is kept).
    Done,
    /// Cancelled (terminal).
    Cancelled,
    /// Never existed, or finished and its outcome was not kept or expired.
    Unknown,
}

impl Status {
    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Ready => "ready",
            Self::Active => "active",
            Self::Retry => "retry",
            Self::Dead => "dead",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    /// True for done, dead and cancelled: the states `wait` returns on.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Dead | Self::Cancelled)
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => Self::Scheduled,
            "ready" => Self::Ready,
            "active" => Self::Active,
            "retry" => Self::Retry,
            "dead" => Self::Dead,
            "done" => Self::Done,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a job's timeline: a transition, at Redis's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When (Redis ms).
    pub at_ms: i64,
    /// The state the job entered (`scheduled`, `ready`, `active`, `retry`,
    /// `dead`, `done`, `cancelled`).
    pub state: String,
    /// Runs counted at that moment (for `active`, the run that started).
    pub attempt: u32,
    /// The worker, for `active`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The error (first 200 bytes), for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything a producer can learn about a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// The job.
    pub id: JobId,
    /// Its queue; `None` when the job is unknown.
    pub queue: Option<String>,
    /// Where it is.
    pub status: Status,
    /// The job type, when known.
    pub job_type: Option<String>,
    /// Runs so far (the one in progress included while active).
    pub attempt: Option<u32>,
    /// Runs allowed.
    pub max_attempts: Option<u32>,
    /// When it last became ready (or was scheduled), Redis ms.
    pub enqueued_ms: Option<i64>,
    /// Run-at (scheduled), retry-at (retry), died-at (dead) or lease
    /// deadline (active), Redis ms.
    pub at_ms: Option<i64>,
    /// When the current run started (active), Redis ms.
    pub started_ms: Option<i64>,
    /// When it finished (done, cancelled, dead with a kept outcome), Redis ms.
    pub finished_ms: Option<i64>,
    /// The worker holding the lease (active).
    pub worker: Option<String>,
    /// True when a running job was asked to cancel and its run has not ended yet.
    pub cancel_requested: bool,
    /// The last error, when it failed.
    pub last_error: Option<String>,
    /// What the handler returned, when the outcome is kept and it returned
    /// a value; for an encrypted job, its envelope ([`Client::result`] opens it).
    pub result: Option<Box<RawValue>>,
    /// The timeline, oldest first (bounded: 4 KiB per job).
    pub history: Vec<HistoryEntry>,
    /// How long the kept outcome remains, for finished jobs.
    #[serde(skip)]
    pub outcome_expires_in: Option<Duration>,
}

impl JobStatus {
    pub(crate) fn unknown(id: &str) -> Self {
        Self {
            id: JobId::from(id),
            queue: None,
            status: Status::Unknown,
            job_type: None,
            attempt: None,
            max_attempts: None,
            enqueued_ms: None,
            at_ms: None,
            started_ms: None,
            finished_ms: None,
            worker: None,
            cancel_requested: false,
            last_error: None,
            result: None,
            history: Vec::new(),
            outcome_expires_in: None,
        }
    }
}

/// What [`Client::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CancelResult {
    /// The job was scheduled, ready or retrying and is cancelled now.
    Cancelled {
        /// The queue.
        queue: String,
        /// The state it was in.
        from: Status,
    },
    /// The job is running: its worker was told (within about a second), and
    /// the job ends cancelled when that run ends, whatever it returns.
    Signalled {
        /// The queue.
        queue: String,
        /// The worker holding the lease.
        worker: String,
        /// False when it had been asked already.
        first: bool,
    },
    /// The job had already finished: nothing changed.
    AlreadyFinished {
        /// The queue.
        queue: String,
        /// How it finished.
        state: Status,
    },
    /// No such job (or it finished without keeping its outcome).
    NotFound,
}

/// Decodes a timeline written by the scripts; entries that do not have the
/// shape are skipped (never an error: anyone may have written it).
pub(crate) fn decode_history(raw: &[u8]) -> Vec<HistoryEntry> {
    let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(raw) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let a = e.as_array()?;
            let text = |i: usize| {
                a.get(i)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            Some(HistoryEntry {
                at_ms: a.first()?.as_i64()?,
                state: a.get(1)?.as_str()?.to_owned(),
                attempt: u32::try_from(a.get(2)?.as_u64()?).ok()?,
                worker: text(3),
                error: text(4),
            })
        })
        .collect()
}

/// Where `status.lua` found a kept outcome: its bucket's end, the ms left
/// until then, and the worker the outcome's alias names.
struct Bucket {
    end_ms: i64,
    left_ms: Option<i64>,
    worker: Option<String>,
}

/// A kept outcome as the scripts write it (docs/PROTOCOL.md): the JSON
/// array `[ms before the bucket's end, worker alias, state, attempts,
/// ran_ms, waited_ms, type, result, error, timeline, max_attempts]`,
/// trailing elements left out when null. Without a timeline, the worker,
/// `ran_ms` and `waited_ms` (the run's length, and the wait before it) stand
/// for the timeline of a job that ran once.
/// `None` when the value does not have that shape.
fn decode_outcome(k: &QueueKeys, id: &str, raw: &[u8], bucket: Bucket) -> Option<JobStatus> {
    let parts: Vec<Box<RawValue>> = serde_json::from_slice(raw).ok()?;
    let part = |i: usize| parts.get(i).filter(|p| p.get() != "null");
    let of =
        |i: usize| part(i).and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok());
    let finished_ms = bucket.end_ms - of(0)?.as_i64()?;
    let worker = bucket.worker.filter(|_| of(1).is_some_and(|v| v.is_u64()));
    let state = of(2)?.as_str().and_then(Status::parse)?;
    let count = |i: usize| {
        of(i)
            .and_then(|v| v.as_u64())
            .and_then(|a| u32::try_from(a).ok())
    };
    let attempt = count(3);
    let max_attempts = count(10);
    let history = match (
        part(9),
        of(4).and_then(|v| v.as_i64()),
        of(5).and_then(|v| v.as_i64()),
    ) {
        (Some(timeline), _, _) => decode_history(timeline.get().as_bytes()),
        (None, Some(ran), Some(waited)) => {
            let runs = attempt.unwrap_or(1);
            let entry =
                |at_ms: i64, state: &str, attempt: u32, worker: Option<String>| HistoryEntry {
                    at_ms,
                    state: state.to_owned(),
                    attempt,
                    worker,
                    error: None,
                };
            vec![
                entry(
                    finished_ms - ran - waited,
                    "ready",
                    runs.saturating_sub(1),
                    None,
                ),
                entry(finished_ms - ran, "active", runs, worker),
                entry(finished_ms, state.as_str(), runs, None),
            ]
        }
        _ => Vec::new(),
    };
    Some(JobStatus {
        id: JobId::from(id),
        queue: Some(k.queue.clone()),
        status: state,
        job_type: of(6).and_then(|v| v.as_str().map(str::to_owned)),
        attempt: attempt.or_else(|| history.last().map(|h| h.attempt)),
        max_attempts,
        enqueued_ms: history.first().map(|h| h.at_ms),
        at_ms: None,
        started_ms: None,
        finished_ms: Some(finished_ms),
        worker: None,
        cancel_requested: false,
        last_error: of(8).and_then(|v| v.as_str().map(str::to_owned)),
        result: part(7).cloned(),
        history,
        outcome_expires_in: bucket
            .left_ms
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// `status.lua`'s answer.
enum Placed {
    Live(Box<JobStatus>),
    Outcome(Box<JobStatus>),
    /// Not placed by the script (ready, or unknown). Carries the stored
    /// timeline and errors.
    Unplaced {
        history: Option<Vec<u8>>,
        errors: Option<Vec<u8>>,
    },
}

impl Client {
    /// Where job `id` is, in whichever queue holds it: scheduled, ready,
    /// active, retry, dead, done, cancelled, or unknown (never existed, or
    /// finished without keeping its outcome, or the outcome expired). With
    /// attempts, times, the worker holding it, the last error, its timeline
    /// and, when the outcome is kept, its result.
    ///
    /// Each queue is asked in one pipelined call; a job found nowhere else
    /// is looked for in the ready lists (walked in windows, up to 1,000,000
    /// entries per queue). [`Client::status_in`] asks one queue.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client, id: spool_client::JobId) -> spool_client::Result<()> {
    /// let status = client.status(&id).await?;
    /// println!("{} after {:?} runs", status.status, status.attempt);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed id, [`Error::Redis`],
    /// [`Error::Decode`] for a kept outcome that is not Spool's JSON.
    pub async fn status(&self, id: &JobId) -> Result<JobStatus> {
        self.status_registering(None, id.as_str(), false).await
    }

    /// [`Client::status`] asking only `queue`.
    ///
    /// # Errors
    /// As [`Client::status`]; [`Error::InvalidQueueName`].
    pub async fn status_in(&self, queue: &str, id: &JobId) -> Result<JobStatus> {
        self.status_registering(Some(queue), id.as_str(), false)
            .await
    }

    /// The typed value job `id`'s handler returned: `None` until the job is
    /// done, or when its outcome is not kept (see
    /// [`JobOptions::keep_outcome`](crate::JobOptions::keep_outcome)) or expired.
    ///
    /// The result of an encrypted job ([`JobOptions::encrypted`](crate::JobOptions::encrypted))
    /// is stored sealed ([`JobStatus::result`] is its envelope); this opens
    /// it with the client's keyring.
    ///
    /// # Errors
    /// As [`Client::status`]; [`Error::Decode`] when the stored value does
    /// not decode as `J::Output`, or is sealed and cannot be opened.
    pub async fn result<J: JobOutput>(&self, id: &JobId) -> Result<Option<J::Output>> {
        let status = self.status(id).await?;
        let opened = match status
            .result
            .as_deref()
            .map(|r| crate::Envelope::parse(r.get()))
        {
            Some(Some(envelope)) => Some(
                envelope
                    .and_then(|e| match self.keyring() {
                        Some(k) => k.decrypt_result(J::TYPE, id.as_str(), &e),
                        None => Err(crate::DecryptError::NoKeyring { key_id: e.key_id }),
                    })
                    .map_err(|e| Error::Decode {
                        what: format!("encrypted result of job {id}"),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        match opened.or(status.result) {
            Some(raw) if status.status == Status::Done => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|e| Error::Decode {
                    what: format!("result of job {id} as {}", J::TYPE),
                    reason: e.to_string(),
                }),
            _ => Ok(None),
        }
    }

    /// Cancels job `id`: a scheduled, ready or retrying job is cancelled at
    /// once (it never runs); a running job's worker is told and the job
    /// ends cancelled when that run ends, whatever the handler returns; a
    /// finished job is left alone ([`CancelResult::AlreadyFinished`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed id, [`Error::Redis`].
    pub async fn cancel(&self, id: &JobId) -> Result<CancelResult> {
        let queues = self.admin().queue_names().await?;
        self.cancel_among(&queues, id.as_str(), "").await
    }

    /// [`Client::cancel`] looking only in `queue`.
    ///
    /// # Errors
    /// As [`Client::cancel`]; [`Error::InvalidQueueName`].
    pub async fn cancel_in(&self, queue: &str, id: &JobId) -> Result<CancelResult> {
        self.queue_keys(queue)?;
        self.cancel_among(&[queue.to_owned()], id.as_str(), "")
            .await
    }

    /// Cancels `id` in the first of `queues` that has it; `actor` names the
    /// operator in the events ('' for a producer's cancel).
    pub(crate) async fn cancel_among(
        &self,
        queues: &[String],
        id: &str,
        actor: &str,
    ) -> Result<CancelResult> {
        crate::admin::valid_id(id)?;
        // Twice: a ready job fetched between the two steps is active on
        // the second look.
        for _ in 0..2 {
            for queue in queues {
                let k = self.queue_keys(queue)?;
                let answer = self.cancel_placed(&k, id, actor).await?;
                if answer != CancelResult::NotFound {
                    return Ok(answer);
                }
            }
            for queue in queues {
                let k = self.queue_keys(queue)?;
                let channel = self.global_keys().finished_channel.clone();
                let hit: Option<u64> = self
                    .admin()
                    .walk_ready(
                        &SCRIPTS.cancel_ready,
                        &[
                            [k.ready.as_str(), &k.jobs, &k.errors, &k.stats].as_slice(),
                            &k.finishing(),
                        ]
                        .concat(),
                        &[&channel, actor],
                        id,
                        "cancel ready",
                        |n| *n > 0,
                    )
                    .await?;
                if hit.is_some() {
                    return Ok(CancelResult::Cancelled {
                        queue: queue.clone(),
                        from: Status::Ready,
                    });
                }
            }
        }
        Ok(CancelResult::NotFound)
    }

    /// `cancel.lua` on one queue.
    async fn cancel_placed(&self, k: &QueueKeys, id: &str, actor: &str) -> Result<CancelResult> {
        let mut keys = placement_keys(k);
        keys.extend([
            k.stats.as_str(),
            k.locks.as_str(),
            k.events.as_str(),
            k.settings.as_str(),
            k.followups.as_str(),
            k.outbox.as_str(),
        ]);
        let mut cmd = SCRIPTS.cancel.cmd(&keys);
        let g = self.global_keys();
        cmd.arg(id)
            .arg(&g.finished_channel)
            .arg(&g.cancel_channel)
            .arg(actor);
        let reply: Vec<redis::Value> = scripts::run(&mut self.connection(), &cmd)
            .await
            .map_err(Error::redis("cancel"))?;
        let text = |i: usize| -> String {
            reply
                .get(i)
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                .unwrap_or_default()
        };
        let queue = k.queue.clone();
        Ok(match text(0).as_str() {
            "cancelled" => CancelResult::Cancelled {
                queue,
                from: Status::parse(&text(1)).unwrap_or(Status::Unknown),
            },
            "signalled" => CancelResult::Signalled {
                queue,
                worker: text(1),
                first: text(2) == "1",
            },
            "finished" => CancelResult::AlreadyFinished {
                queue,
                state: Status::parse(&text(1)).unwrap_or(Status::Done),
            },
            _ => CancelResult::NotFound,
        })
    }

    /// Status in `queue` (or in every queue), registering a `wait` for the
    /// job in the same step when `register` (see `waiters`).
    pub(crate) async fn status_registering(
        &self,
        queue: Option<&str>,
        id: &str,
        register: bool,
    ) -> Result<JobStatus> {
        crate::admin::valid_id(id)?;
        let queues = match queue {
            Some(q) => vec![q.to_owned()],
            None => self.admin().queue_names().await?,
        };
        let keys: Vec<QueueKeys> = queues
            .iter()
            .map(|q| self.queue_keys(q))
            .collect::<Result<_>>()?;
        // A job no script placed is looked for in the ready lists; when that
        // walk misses it (a worker fetched it meanwhile) the queues are asked
        // once more.
        let mut placed = self.ask_status(&keys, id, register).await?;
        for last in [false, true] {
            if let Some(found) = self.pick(&keys, id, &placed).await? {
                return Ok(found);
            }
            if last || keys.is_empty() {
                break;
            }
            placed = self.ask_status(&keys, id, false).await?;
        }
        Ok(JobStatus::unknown(id))
    }

    /// `status.lua` on each of `keys`, in one pipelined call.
    async fn ask_status(
        &self,
        keys: &[QueueKeys],
        id: &str,
        register: bool,
    ) -> Result<Vec<(usize, Placed)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.add_command(status_cmd(k, id, register));
        }
        let replies: Vec<Vec<redis::Value>> = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("status"))?;
        replies
            .iter()
            .enumerate()
            .map(|(i, reply)| Ok((i, decode_status(&keys[i], id, reply)?)))
            .collect()
    }

    /// The status among `placed`, walking ready lists where needed; `None`
    /// when nothing placed the job.
    async fn pick(
        &self,
        keys: &[QueueKeys],
        id: &str,
        placed: &[(usize, Placed)],
    ) -> Result<Option<JobStatus>> {
        // A live job first, then a kept outcome, then a ready one.
        for (_, p) in placed {
            if let Placed::Live(s) = p {
                return Ok(Some((**s).clone()));
            }
        }
        for (_, p) in placed {
            if let Placed::Outcome(s) = p {
                return Ok(Some((**s).clone()));
            }
        }
        for (i, p) in placed {
            let Placed::Unplaced { history, errors } = p else {
                continue;
            };
            if let Some(raw) = self.admin().find_ready(&keys[*i], id).await? {
                return Ok(Some(ready_status(
                    &keys[*i],
                    id,
                    &raw,
                    history.as_deref(),
                    errors.as_deref(),
                )));
            }
        }
        Ok(None)
    }
}

/// The keys `status.lua` and `cancel.lua` both start with: everything that
/// places a job (the kept outcomes, sets, lease, side hashes).
fn placement_keys(k: &QueueKeys) -> Vec<&str> {
    vec![
        &k.outcomes,
        &k.jobs,
        &k.leases,
        &k.active,
        &k.scheduled,
        &k.retry,
        &k.dead,
        &k.errors,
        &k.history,
        &k.cancels,
        &k.waiters,
    ]
}

fn status_cmd(k: &QueueKeys, id: &str, register: bool) -> redis::Cmd {
    let mut keys = placement_keys(k);
    keys.push(&k.workers);
    let mut cmd = SCRIPTS.status.cmd(&keys);
    cmd.arg(id)
        .arg(u8::from(register))
        .arg(STATUS_RECORD_PREFIX);
    cmd
}

fn bytes(v: Option<&redis::Value>) -> Option<Vec<u8>> {
    v.and_then(|v| redis::from_redis_value::<Option<Vec<u8>>>(v.clone()).ok())
        .flatten()
}

fn int(v: Option<&redis::Value>) -> Option<i64> {
    redis::from_redis_value::<i64>(v?.clone()).ok()
}

/// The type named in a record's first bytes, if any.
fn type_in(prefix: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let start = text.find("\"type\":\"")? + 8;
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_owned())
}

/// The last error of a stored error history (JSON `[{"at_ms","attempt","error"}]`).
fn last_error(errors: Option<&[u8]>) -> Option<String> {
    let list: Vec<ErrorEntry> = serde_json::from_slice(errors?).ok()?;
    list.last().map(|e| e.error.clone())
}

/// The timeline of a live job: the stored one, or the entry its record
/// implies (the hot path writes none), plus the run in progress.
fn live_history(
    stored: Option<&[u8]>,
    first_state: &str,
    enqueued_ms: Option<i64>,
    attempt: u32,
) -> Vec<HistoryEntry> {
    match stored {
        Some(raw) => decode_history(raw),
        None => enqueued_ms
            .map(|at_ms| HistoryEntry {
                at_ms,
                state: first_state.to_owned(),
                attempt,
                worker: None,
                error: None,
            })
            .into_iter()
            .collect(),
    }
}

fn decode_status(k: &QueueKeys, id: &str, reply: &[redis::Value]) -> Result<Placed> {
    let kind: String = reply
        .first()
        .and_then(|v| redis::from_redis_value(v.clone()).ok())
        .unwrap_or_default();
    match kind.as_str() {
        "live" => Ok(decode_live(k, id, reply)),
        "outcome" => {
            let raw = bytes(reply.get(1)).unwrap_or_default();
            let bucket = Bucket {
                end_ms: int(reply.get(2)).unwrap_or(0),
                left_ms: int(reply.get(3)).filter(|ms| *ms >= 0),
                worker: bytes(reply.get(4)).map(|w| String::from_utf8_lossy(&w).into_owned()),
            };
            let status = decode_outcome(k, id, &raw, bucket).ok_or_else(|| Error::Decode {
                what: format!("kept outcome of job {id} in queue {}", k.queue),
                reason: format!(
                    "not Spool's outcome array: {}",
                    String::from_utf8_lossy(&raw[..raw.len().min(200)])
                ),
            })?;
            Ok(Placed::Outcome(Box::new(status)))
        }
        "absent" => Ok(Placed::Unplaced {
            history: bytes(reply.get(1)),
            errors: bytes(reply.get(2)),
        }),
        other => Err(Error::Decode {
            what: "status.lua reply".to_owned(),
            reason: format!("unexpected kind {other:?}"),
        }),
    }
}

/// A `{'live', …}` reply of `status.lua`.
fn decode_live(k: &QueueKeys, id: &str, reply: &[redis::Value]) -> Placed {
    let state: String = reply
        .get(1)
        .and_then(|v| redis::from_redis_value(v.clone()).ok())
        .unwrap_or_default();
    let status = Status::parse(&state).unwrap_or(Status::Unknown);
    let prefix = bytes(reply.get(3)).unwrap_or_default();
    let head = record_head(&prefix);
    let lease_raw = bytes(reply.get(5));
    let lease = lease_raw.as_deref().and_then(parse_lease);
    let errors = bytes(reply.get(6));
    let stored_attempt = head.as_ref().map(|h| h.attempt);
    let attempt = match (status, stored_attempt) {
        (Status::Active, Some(a)) => Some(crate::wire::attempt_while_leased(a)),
        (_, a) => a,
    };
    let enqueued_ms = head.as_ref().map(|h| h.enqueued_ms);
    let first = if status == Status::Scheduled {
        "scheduled"
    } else {
        "ready"
    };
    let mut history = live_history(
        bytes(reply.get(7)).as_deref(),
        first,
        enqueued_ms,
        stored_attempt.unwrap_or(0),
    );
    if let (Status::Active, Some(l)) = (status, lease) {
        if let Some(at_ms) = l.started_ms {
            history.push(HistoryEntry {
                at_ms,
                state: "active".to_owned(),
                attempt: attempt.unwrap_or(1),
                worker: Some(l.worker.to_owned()),
                error: None,
            });
        }
    }
    Placed::Live(Box::new(JobStatus {
        id: JobId::from(id),
        queue: Some(k.queue.clone()),
        status,
        job_type: type_in(&prefix),
        attempt,
        max_attempts: head.as_ref().map(|h| h.max_attempts),
        enqueued_ms,
        at_ms: int(reply.get(2)),
        started_ms: lease.and_then(|l| l.started_ms),
        finished_ms: (status == Status::Dead)
            .then(|| int(reply.get(2)))
            .flatten(),
        worker: lease.map(|l| l.worker.to_owned()),
        cancel_requested: int(reply.get(8)) == Some(1),
        last_error: last_error(errors.as_deref()),
        result: None,
        history,
        outcome_expires_in: None,
    }))
}

fn ready_status(
    k: &QueueKeys,
    id: &str,
    raw: &[u8],
    history: Option<&[u8]>,
    errors: Option<&[u8]>,
) -> JobStatus {
    let head = record_head(raw);
    let attempt = head.as_ref().map(|h| h.attempt);
    let enqueued_ms = head.as_ref().map(|h| h.enqueued_ms);
    JobStatus {
        id: JobId::from(id),
        queue: Some(k.queue.clone()),
        status: Status::Ready,
        job_type: type_in(&raw[..raw.len().min(STATUS_RECORD_PREFIX)]),
        attempt,
        max_attempts: head.as_ref().map(|h| h.max_attempts),
        enqueued_ms,
        history: live_history(history, "ready", enqueued_ms, attempt.unwrap_or(0)),
        last_error: last_error(errors),
        ..JobStatus::unknown(id)
    }
}
