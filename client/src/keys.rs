//! The Redis key schema: the only place key strings are built.
//!
//! Every key of one queue shares the hash tag `{queue}` (`spool:{emails}:ready`)
//! so each script touches a single Cluster slot. Process and registry keys
//! share the tag of the namespace (`{spool}:processes`). `docs/PROTOCOL.md`
//! lists each key with its type, writer and reader.

use crate::error::{Error, Result};

/// Default namespace (key prefix).
pub const NAMESPACE_DEFAULT: &str = "spool";

/// Longest accepted queue name.
pub const QUEUE_NAME_MAX_LEN: usize = 64;

/// Checks a queue name: 1 to 64 characters from `[A-Za-z0-9_.-]`.
///
/// ```
/// assert!(spool_client::validate_queue_name("emails.high-priority_2").is_ok());
/// assert!(spool_client::validate_queue_name("bad name").is_err());
/// assert!(spool_client::validate_queue_name("").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidQueueName`] naming what is wrong.
pub fn validate_queue_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > QUEUE_NAME_MAX_LEN {
        Some("must be at most 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("may only contain A-Z, a-z, 0-9, '_', '.' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidQueueName {
            name: name.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a namespace: same alphabet as queue names.
pub(crate) fn validate_namespace(ns: &str) -> Result<()> {
    validate_queue_name(ns).map_err(|_| {
        Error::InvalidArgument(format!(
            "namespace {ns:?} must be 1 to 64 characters from [A-Za-z0-9_.-]"
        ))
    })
}

/// All keys of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// The queue name.
    pub queue: String,
    /// LIST of job records waiting to run; LPUSH to enqueue, RPOP to fetch.
    pub ready: String,
    /// LIST holding at most one token; fetchers block on it (BLPOP) when idle.
    pub wake: String,
    /// ZSET job id → run-at (Redis ms).
    pub scheduled: String,
    /// ZSET job id → retry-at (Redis ms).
    pub retry: String,
    /// ZSET job id → died-at (Redis ms).
    pub dead: String,
    /// ZSET claim (`worker|start_ms`: the leases one fetch granted) → its
    /// lease deadline (Redis ms). The scripts name its sibling `claims`
    /// from it (`scripts/prelude.lua`, "Claims").
    pub active: String,
    /// HASH claim → how many of its leases have not ended.
    pub claims: String,
    /// HASH job id → record, for every job that is not in the ready list
    /// (active, scheduled, retry, dead).
    pub jobs: String,
    /// HASH job id → `token|worker id|start_ms[|group]` for leased (active)
    /// jobs; field `"` is a guard (a long value that keeps it a hash table).
    pub leases: String,
    /// HASH job id → JSON error history.
    pub errors: String,
    /// STRING counter issuing fencing tokens.
    pub fence: String,
    /// STRING present while the queue is paused.
    pub paused: String,
    /// HASH of counters: totals and per-minute fields.
    pub stats: String,
    /// HASH job id → the job's timeline (JSON array of
    /// `[at_ms, state, attempt, worker, error]`), written by every script
    /// that moves the job off the hot path; gone with the job.
    pub history: String,
    /// HASH job id → lease token whose run was asked to cancel.
    pub cancels: String,
    /// HASH job id → number of `wait` calls registered for it: the scripts
    /// that finish a job announce it on the finished channel only then.
    pub waiters: String,
    /// ZSET indexing the buckets of kept outcomes by the end of their
    /// retention (member and score: the end, Redis ms). Bucket `<end>` is
    /// the HASH `<outcomes>:<end>`: job id → outcome (a JSON array, see
    /// docs/PROTOCOL.md) for the outcomes whose retention ends by then.
    pub outcomes: String,
    /// HASH of short aliases for worker ids, which kept outcomes name:
    /// `<alias>` → worker id, `=<worker id>` → alias, `#` → the last alias
    /// given, `<` → the highest alias the trimmer dropped.
    pub workers: String,
    /// HASH job id → `s` (until started) or `f` (until finished) + the
    /// uniqueness key the job holds.
    pub locks: String,
    /// STREAM of the queue's job events and operator actions, capped
    /// (`MAXLEN ~`); written by the script that makes each transition
    /// (docs/PROTOCOL.md, "Events").
    pub events: String,
    /// HASH of the queue's settings, read by the scripts: `events` (`off`,
    /// `terminal` or `all`) and `events_max` (the stream's cap), the fleet
    /// controls and their state (`concurrency`, `rate`, `rate_tat`,
    /// `key_rate`, `breaker`, `br_*`) and `priorities` (docs/PROTOCOL.md).
    pub settings: String,
    /// HASH rate key → the theoretical arrival time of its bucket (ms) for
    /// the per-key rate limit. Named by the scripts from the ready key.
    pub rate_keys: String,
    /// HASH of ordered groups' turns: group → turns its jobs hold, and
    /// `"<job id>` → its group for each job holding a turn (named by the
    /// scripts from any queue key, as the next one).
    pub group_turns: String,
    /// SET of the groups with jobs waiting for a turn
    /// ([`QueueKeys::group`]).
    pub groups_waiting: String,
    /// HASH job id → `1` for jobs waiting in the scheduled set for their
    /// rate key's next start (already charged). Named by the scripts from
    /// the ready key.
    pub rate_reserved: String,
    /// HASH job id → the job's follow-ups (JSON array of `[on, queue, id,
    /// max_attempts, body, own follow-ups, at_ms, delay_ms]`), written at
    /// enqueue, read by the scripts that end the job.
    pub followups: String,
    /// LIST of follow-up jobs triggered and not yet moved into their
    /// queues: `queue"id"max_attempts"at_ms"delay_ms"n"` + own follow-ups
    /// (`n` bytes) + body.
    pub outbox: String,
    /// ZSET batch uuid → created ms: the batches (and chains) whose home
    /// is this queue; their keys are [`QueueKeys::batch`]'s.
    pub batches: String,
    batch_prefix: String,
    idempotency_prefix: String,
    cron_prefix: String,
}

impl QueueKeys {
    /// Keys of `queue` under namespace `ns` (both assumed valid).
    #[must_use]
    pub fn new(ns: &str, queue: &str) -> Self {
        let base = format!("{ns}:{{{queue}}}:");
        let key = |suffix: &str| format!("{base}{suffix}");
        Self {
            queue: queue.to_owned(),
            ready: key("ready"),
            rate_keys: key("rate_keys"),
            group_turns: key("group_turns"),
            groups_waiting: key("groups_waiting"),
            rate_reserved: key("rate_reserved"),
            wake: key("wake"),
            scheduled: key("scheduled"),
            retry: key("retry"),
            dead: key("dead"),
            active: key("active"),
            claims: key("claims"),
            jobs: key("jobs"),
            leases: key("leases"),
            errors: key("errors"),
            fence: key("fence"),
            paused: key("paused"),
            stats: key("stats"),
            history: key("history"),
            cancels: key("cancels"),
            waiters: key("waiters"),
            outcomes: key("outcomes"),
            workers: key("workers"),
            locks: key("locks"),
            events: key("events"),
            settings: key("settings"),
            followups: key("followups"),
            outbox: key("outbox"),
            batches: key("batches"),
            batch_prefix: key("batch:"),
            idempotency_prefix: key("idem:"),
            cron_prefix: key("cron:"),
        }
    }

    /// HASH (job id → outcome) of the kept outcomes whose retention ends
    /// at `end_ms` (see [`QueueKeys::outcomes`]).
    #[must_use]
    pub fn outcome_bucket(&self, end_ms: i64) -> String {
        format!("{}:{end_ms}", self.outcomes)
    }

    /// LIST of the ready jobs of priority `level` (-9 … 9; 0 is
    /// [`QueueKeys::ready`]). The scripts name these lists, and the
    /// settings hash, from the ready key (`spool_sibling` in prelude.lua):
    /// every queue key is the queue's prefix and a name.
    #[must_use]
    pub fn ready_priority(&self, level: i8) -> String {
        if level == 0 {
            self.ready.clone()
        } else {
            format!("{}:p{level}", self.ready)
        }
    }

    /// LIST of group `group`'s jobs waiting for a turn, in order (LPUSH
    /// adds, RPOP takes the next).
    #[must_use]
    pub fn group(&self, group: &str) -> String {
        format!(
            "{}group:{group}",
            self.ready.strip_suffix("ready").unwrap_or(&self.ready)
        )
    }

    /// The side keys every script that ends jobs (ack, fail, reap,
    /// release, `cancel_ready`) takes as one block of KEYS, in this order
    /// (`spool_finishing` in prelude.lua): history, cancels, waiters,
    /// outcomes, locks, events, settings, followups, outbox.
    #[must_use]
    pub fn finishing(&self) -> [&str; 9] {
        [
            &self.history,
            &self.cancels,
            &self.waiters,
            &self.outcomes,
            &self.locks,
            &self.events,
            &self.settings,
            &self.followups,
            &self.outbox,
        ]
    }

    /// The side keys the operator deletes (`delete`, `delete_ready`,
    /// `clear_ready`) take as one block of KEYS after their own, in this
    /// order: history, locks, waiters, events, settings, followups, outbox.
    #[must_use]
    pub fn removing(&self) -> [&str; 7] {
        [
            &self.history,
            &self.locks,
            &self.waiters,
            &self.events,
            &self.settings,
            &self.followups,
            &self.outbox,
        ]
    }

    /// The keys of the batch `uuid` whose home is this queue
    /// (`batch_shared.lua` describes them).
    #[must_use]
    pub fn batch(&self, uuid: &str) -> BatchKeys {
        let state = format!("{}{uuid}", self.batch_prefix);
        BatchKeys {
            members: format!("{state}:members"),
            ids: format!("{state}:ids"),
            results: format!("{state}:results"),
            outbox: self.outbox.clone(),
            state,
        }
    }

    /// STRING holding the id of the job created with idempotency `key`.
    #[must_use]
    pub fn idempotency(&self, key: &str) -> String {
        format!("{}{key}", self.idempotency_prefix)
    }

    /// HASH with the firing state of cron entry `name` that targets this
    /// queue: `cursor_ms`, `last_tick_ms`, `last_run_ms`, `last_job_id`,
    /// `skipped`, `last_skipped_ms`, `paused`. Lives in the queue's slot so
    /// `cron_tick.lua` updates it in the same step as the enqueue. Entry
    /// names use the queue-name alphabet (no `:`), so keys cannot collide.
    #[must_use]
    pub fn cron_state(&self, name: &str) -> String {
        format!("{}{name}", self.cron_prefix)
    }

    /// STRING (value: job id, with a TTL) marking that tick `tick_ms` of cron
    /// entry `name` was enqueued: the "once per tick" key (`SET NX`).
    #[must_use]
    pub fn cron_tick(&self, name: &str, tick_ms: i64) -> String {
        format!("{}{name}:{tick_ms}", self.cron_prefix)
    }

    /// STRING (value: job id, with a short TTL) making "run now" of cron
    /// entry `name` idempotent within its window.
    #[must_use]
    pub fn cron_run_now(&self, name: &str) -> String {
        format!("{}{name}:now", self.cron_prefix)
    }

    /// The key of the sorted set that holds jobs in `set`.
    #[must_use]
    pub fn set(&self, set: crate::JobSet) -> &str {
        match set {
            crate::JobSet::Scheduled => &self.scheduled,
            crate::JobSet::Retry => &self.retry,
            crate::JobSet::Dead => &self.dead,
        }
    }
}

/// The keys of one batch, in its home queue's slot (`batch_shared.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchKeys {
    /// HASH: kind, times, callbacks, counters, what has fired.
    pub state: String,
    /// HASH member id → `state"ms`.
    pub members: String,
    /// LIST `id"queue` in the order members were added.
    pub ids: String,
    /// HASH member id → kept result (JSON).
    pub results: String,
    /// The home queue's outbox, where callbacks go.
    pub outbox: String,
}

impl BatchKeys {
    /// The five KEYS of `batch_member.lua` and `batch_seal.lua`.
    #[must_use]
    pub fn all(&self) -> [&str; 5] {
        [
            &self.state,
            &self.members,
            &self.ids,
            &self.results,
            &self.outbox,
        ]
    }
}

/// Keys that do not belong to one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalKeys {
    /// SET of known queue names.
    pub queues: String,
    /// ZSET process id → last heartbeat (Redis ms).
    pub processes: String,
    /// HASH cron entry name → `{"seen_ms","expires_ms","entry"}` JSON: the
    /// cron tables workers announce (`cron_register.lua`).
    pub cron_entries: String,
    /// ZSET cron entry name → forget-after deadline (Redis ms).
    pub cron_expiry: String,
    /// Pub/sub channel (not a key): `<state> <id>` for each finished job
    /// that a `wait` call registered for.
    pub finished_channel: String,
    /// Pub/sub channel (not a key): `<token> <id>` for each running job
    /// asked to cancel; the worker holding that lease fires its run's
    /// cancellation.
    pub cancel_channel: String,
    process_prefix: String,
}

impl GlobalKeys {
    /// Global keys of namespace `ns`.
    #[must_use]
    pub fn new(ns: &str) -> Self {
        Self {
            queues: format!("{{{ns}}}:queues"),
            processes: format!("{{{ns}}}:processes"),
            cron_entries: format!("{{{ns}}}:cron:entries"),
            cron_expiry: format!("{{{ns}}}:cron:expiry"),
            finished_channel: format!("{ns}:finished"),
            cancel_channel: format!("{ns}:cancel"),
            process_prefix: format!("{{{ns}}}:process:"),
        }
    }

    /// HASH describing one worker process (expires unless heartbeats renew it).
    #[must_use]
    pub fn process(&self, id: &str) -> String {
        format!("{}{id}", self.process_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_can_name_siblings_from_the_ready_key() {
        let k = QueueKeys::new("spool", "emails");
        // spool_sibling(key, name) = the key up to its last colon + name.
        let prefix = k.ready.strip_suffix("ready").unwrap();
        assert_eq!(format!("{prefix}settings"), k.settings);
        assert_eq!(format!("{prefix}rate_keys"), k.rate_keys);
        assert_eq!(format!("{prefix}rate_reserved"), k.rate_reserved);
        assert_eq!(format!("{prefix}scheduled"), k.scheduled);
        assert_eq!(format!("{prefix}group_turns"), k.group_turns);
        assert_eq!(format!("{prefix}group:acct-1"), k.group("acct-1"));
        assert_eq!(k.ready_priority(3), format!("{}:p3", k.ready));
        assert_eq!(k.ready_priority(-2), format!("{}:p-2", k.ready));
        assert_eq!(k.ready_priority(0), k.ready);
    }

    #[test]
    fn queue_keys_share_one_hash_tag() {
        let k = QueueKeys::new("spool", "emails");
        for key in [
            &k.ready,
            &k.wake,
            &k.scheduled,
            &k.retry,
            &k.dead,
            &k.active,
            &k.claims,
            &k.jobs,
            &k.leases,
            &k.errors,
            &k.fence,
            &k.paused,
            &k.stats,
            &k.history,
            &k.cancels,
            &k.waiters,
            &k.outcomes,
            &k.workers,
            &k.locks,
            &k.events,
            &k.settings,
            &k.followups,
            &k.outbox,
        ] {
            assert!(key.starts_with("spool:{emails}:"), "{key}");
        }
        assert_eq!(k.idempotency("abc"), "spool:{emails}:idem:abc");
        assert_eq!(k.outcome_bucket(7), "spool:{emails}:outcomes:7");
        assert_eq!(k.cron_state("nightly"), "spool:{emails}:cron:nightly");
        assert_eq!(k.cron_tick("nightly", 42), "spool:{emails}:cron:nightly:42");
        assert_eq!(k.cron_run_now("nightly"), "spool:{emails}:cron:nightly:now");
    }

    #[test]
    fn global_keys_share_the_namespace_tag() {
        let g = GlobalKeys::new("spool");
        assert_eq!(g.queues, "{spool}:queues");
        assert_eq!(g.process("p1"), "{spool}:process:p1");
        assert_eq!(g.cron_entries, "{spool}:cron:entries");
        assert_eq!(g.cron_expiry, "{spool}:cron:expiry");
    }

    #[test]
    fn queue_names_are_validated() {
        assert!(validate_queue_name("default").is_ok());
        assert!(validate_queue_name(&"a".repeat(64)).is_ok());
        assert!(validate_queue_name(&"a".repeat(65)).is_err());
        for bad in ["", "a b", "a{b}", "a:b", "é", "a/b", "a\0"] {
            assert!(validate_queue_name(bad).is_err(), "{bad:?}");
        }
    }
}
