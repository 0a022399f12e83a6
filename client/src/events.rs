//! Job events: each queue's capped Redis Stream of what happened to its jobs
//! (enqueued, started, succeeded, retrying, dead, cancelled, …) and of the
//! operator actions taken on it (the audit trail), written by the script
//! that makes each transition; and reading them back, merged across queues,
//! as a `futures::Stream` (from now, after an event id, or from the start)
//! or through a consumer group for at-least-once processing.
//!
//! The streams are per queue (`ns:{queue}:events`) so every write stays in
//! the queue's Cluster slot. A reader on a single node or behind Sentinel
//! blocks on all its queues with one `XREAD`/`XREADGROUP` on a connection
//! of its own; on Cluster the streams live on different nodes, so it reads
//! them in one pipelined round and sleeps [`EventReader::poll_interval`]
//! when nothing came. docs/PROTOCOL.md, "Events", has the entry format.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Serialize;

use crate::client::Client;
use crate::enqueue::duration_ms;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::Topology;

/// Which events a queue writes ([`crate::Admin::configure_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventLevel {
    /// None.
    Off,
    /// The end of every job (succeeded, dead, cancelled) and every operator
    /// action (retried, run now, deleted, cleared, cancel requested,
    /// paused, resumed, events configured).
    Terminal,
    /// Also enqueued, scheduled, started and retrying.
    All,
}

impl EventLevel {
    /// The level of a queue whose settings name none. Terminal events cost
    /// one `XADD` per batch of acks: the drain rate stays within the
    /// bench's noise of `off` (docs/development.md), and they are what
    /// consumers of outcomes and the audit trail need. `all` adds two
    /// events per job (enqueued, started), also within noise, but triples
    /// what the stream holds and what its readers must process.
    pub const DEFAULT: Self = Self::Terminal;

    /// The name stored in the queue's settings.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Terminal => "terminal",
            Self::All => "all",
        }
    }

    /// Parses `off`, `terminal` or `all`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the accepted values.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "off" => Ok(Self::Off),
            "terminal" => Ok(Self::Terminal),
            "all" => Ok(Self::All),
            other => Err(Error::InvalidArgument(format!(
                "events level must be off, terminal or all, got {:?}",
                crate::wire::truncate_utf8(other, 40)
            ))),
        }
    }
}

/// The cap of a queue's event stream whose settings name none: about
/// 650 KB of Redis memory per queue at ~65 bytes per event.
pub const EVENTS_MAX_DEFAULT: u64 = 10_000;

/// Smallest and largest accepted cap.
pub const EVENTS_MAX_RANGE: std::ops::RangeInclusive<u64> = 100..=10_000_000;

/// A queue's event settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventsConfig {
    /// Which events are written.
    pub level: EventLevel,
    /// The stream's approximate cap (`XADD … MAXLEN ~`): the oldest events
    /// go first.
    pub max_len: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            level: EventLevel::DEFAULT,
            max_len: EVENTS_MAX_DEFAULT,
        }
    }
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Enqueued to run now (level all).
    Enqueued,
    /// Enqueued to run later (level all).
    Scheduled,
    /// A worker took a lease (level all).
    Started,
    /// A run succeeded: the job is done.
    Succeeded,
    /// A run failed (or its worker died) and the job will run again (level all).
    Retrying,
    /// The job ran out of attempts, failed for good or could not be read.
    Dead,
    /// The job ended cancelled.
    Cancelled,
    /// A running job was asked to cancel (it ends cancelled when its run ends).
    CancelRequested,
    /// An operator moved the job from the dead or retry set to ready.
    Retried,
    /// An operator ran a scheduled job (or a cron entry) now.
    RunNow,
    /// An operator deleted the job.
    Deleted,
    /// An operator deleted every ready job of the queue.
    Cleared,
    /// An operator paused the queue.
    Paused,
    /// An operator resumed the queue.
    Resumed,
    /// An operator changed the queue's event settings.
    EventsConfigured,
    /// An operator set or lifted one of the queue's fleet controls
    /// (concurrency limit, rate limit, circuit breaker); the selection says
    /// which, e.g. `rate=50/1000/50`.
    LimitChanged,
    /// The queue's circuit breaker opened: no job is fetched until its
    /// cool-down ends (the error says why).
    BreakerOpened,
    /// The cool-down ended: probe jobs are let through.
    BreakerHalfOpen,
    /// The breaker closed: its probes succeeded, or an operator reset it.
    BreakerClosed,
    /// A kind this version does not know (a newer writer), kept as written.
    Other(String),
}

impl EventKind {
    const NAMES: [(&'static str, Self); 19] = [
        ("enqueued", Self::Enqueued),
        ("scheduled", Self::Scheduled),
        ("started", Self::Started),
        ("succeeded", Self::Succeeded),
        ("retrying", Self::Retrying),
        ("dead", Self::Dead),
        ("cancelled", Self::Cancelled),
        ("cancel_requested", Self::CancelRequested),
        ("retried", Self::Retried),
        ("run_now", Self::RunNow),
        ("deleted", Self::Deleted),
        ("cleared", Self::Cleared),
        ("paused", Self::Paused),
        ("resumed", Self::Resumed),
        ("events_configured", Self::EventsConfigured),
        ("limit_changed", Self::LimitChanged),
        ("breaker_opened", Self::BreakerOpened),
        ("breaker_half_open", Self::BreakerHalfOpen),
        ("breaker_closed", Self::BreakerClosed),
    ];

    /// The name written in the stream.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => Self::NAMES
                .iter()
                .find(|(_, k)| k == known)
                .map_or("", |(name, _)| name),
        }
    }

    /// The kind named `name`; unknown names are kept as [`EventKind::Other`].
    #[must_use]
    pub fn parse(name: &str) -> Self {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| Self::Other(name.to_owned()), |(_, k)| k.clone())
    }

    /// True for the end of a job: succeeded, dead, cancelled.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Cancelled)
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of a queue's stream. A stream entry holds the events of one
/// kind that one script call wrote (a batch of acks: up to 100 jobs), so
/// an event is an entry and its position in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `<entry id>.<index>`: the stream entry (`<ms>-<seq>`, unique within
    /// the queue and increasing) and the event's place in it.
    pub id: String,
    /// The queue.
    pub queue: String,
    /// What happened.
    pub kind: EventKind,
    /// When, on Redis's clock (ms; the entry id's time).
    pub at_ms: i64,
    /// The job (absent for queue-wide actions: paused, cleared, …).
    pub job_id: Option<JobId>,
    /// The job type, when the writer knew it.
    pub job_type: Option<String>,
    /// Runs so far (for started, succeeded, retrying, dead: the run that
    /// just began or ended).
    pub attempt: Option<u32>,
    /// The error, cut to 200 bytes (retrying, dead).
    pub error: Option<String>,
    /// Who took an operator action: the dashboard's user or token name, the
    /// CLI's `user@host`, or what an admin API caller passed.
    pub actor: Option<String>,
    /// What the operator selected (`job`, `all in dead`, `3 selected in
    /// retry`, `queue`, …).
    pub selection: Option<String>,
}

impl Event {
    /// The events of one stream entry: one per job in its `jobs` field (id,
    /// attempt and type of each, joined by `"`), or one without a job. Any
    /// field may be missing or not UTF-8 (another writer): such fields are
    /// read lossily or left out, and an entry with `id`, `type` and
    /// `attempt` fields instead of `jobs` is one event.
    fn from_entry(queue: &str, entry: &str, fields: &[(String, String)]) -> Vec<Self> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let non_empty = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let mut jobs: Vec<(Option<String>, Option<u32>, Option<String>)> = match get("jobs") {
            Some(listed) => {
                let parts: Vec<&str> = listed.split('"').collect();
                parts
                    .chunks(3)
                    .map(|t| {
                        let at = |i: usize| t.get(i).copied().unwrap_or("");
                        (non_empty(at(0)), at(1).parse().ok(), non_empty(at(2)))
                    })
                    .collect()
            }
            None => vec![(
                get("id").map(str::to_owned),
                get("attempt").and_then(|a| a.parse().ok()),
                get("type").map(str::to_owned),
            )],
        };
        if jobs.is_empty() {
            jobs.push((None, None, None));
        }
        jobs.into_iter()
            .enumerate()
            .map(|(index, (id, attempt, job_type))| Self {
                id: format!("{entry}.{index}"),
                queue: queue.to_owned(),
                kind: EventKind::parse(get("event").unwrap_or("")),
                at_ms: entry_ms(entry).unwrap_or(0),
                job_id: id.map(JobId::from),
                job_type,
                attempt,
                error: get("error").map(str::to_owned),
                actor: get("actor").map(str::to_owned),
                selection: get("selection").map(str::to_owned),
            })
            .collect()
    }

    /// The stream entry holding this event (`<ms>-<seq>`).
    #[must_use]
    pub fn entry_id(&self) -> &str {
        self.id.split_once('.').map_or(self.id.as_str(), |(e, _)| e)
    }

    /// The event's place in its entry.
    #[must_use]
    pub fn index(&self) -> usize {
        self.id
            .split_once('.')
            .and_then(|(_, i)| i.parse().ok())
            .unwrap_or(0)
    }
}

/// A stream entry as read: the stream's key, the entry id, its fields.
type Entry = (String, String, Vec<(String, String)>);

/// The time part of a stream entry id `<ms>-<seq>`.
fn entry_ms(id: &str) -> Option<i64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

/// Checks an event or entry id given by a caller (`<ms>-<seq>.<index>`,
/// `<ms>-<seq>` or `<ms>`); returns its entry id.
fn check_entry_id(id: &str) -> Result<String> {
    let entry = match id.split_once('.') {
        Some((entry, index)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            entry
        }
        Some(_) => "",
        None => id,
    };
    let (ms, seq) = entry.split_once('-').unwrap_or((entry, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(ms) && digits(seq) {
        Ok(format!("{ms}-{seq}"))
    } else {
        Err(Error::InvalidArgument(format!(
            "event id must look like 1732950000000-0, got {:?}",
            crate::wire::truncate_utf8(id, 40)
        )))
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    /// Events written after the reader's first read.
    Now,
    /// Events after this entry id, in every queue read.
    After(String),
    /// Every event still in the streams.
    Beginning,
}

/// How long one blocking read waits before the reader looks again (new
/// queues, a stop).
const BLOCK_FOR: Duration = Duration::from_secs(2);
/// How often a reader of every queue looks for new queues.
const QUEUE_REFRESH: Duration = Duration::from_secs(5);

/// Reads job events, merged across queues. Get one with [`Client::events`].
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use futures::StreamExt;
/// use spool_client::EventKind;
/// let mut events = std::pin::pin!(client.events().queues(&["invoices"])?.stream());
/// while let Some(event) = events.next().await {
///     let event = event?;
///     if event.kind == EventKind::Succeeded {
///         println!("{} {:?} done", event.queue, event.job_id);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventReader {
    client: Client,
    /// The queues named, or `None` for every registered queue.
    named: Option<Vec<String>>,
    start: Start,
    batch: usize,
    poll: Duration,
    /// Each queue read and the id of the last entry seen.
    cursors: Vec<(Arc<QueueKeys>, String)>,
    /// Redis's clock at the first read (the cursor of a queue found later
    /// when starting from now).
    began_ms: Option<i64>,
    refreshed: Option<tokio::time::Instant>,
    blocking: Option<crate::Connection>,
    buffer: VecDeque<Event>,
    /// The queue, entry and index [`EventReader::after_event`] resumes
    /// after: that entry's first events are skipped.
    skip: Option<(String, String, usize)>,
}

impl Client {
    /// A reader of the job events of every registered queue, from now on
    /// (see [`EventReader`] for other starts, queues and consumer groups).
    #[must_use]
    pub fn events(&self) -> EventReader {
        EventReader {
            client: self.clone(),
            named: None,
            start: Start::Now,
            batch: 500,
            poll: Duration::from_millis(100),
            cursors: Vec::new(),
            began_ms: None,
            refreshed: None,
            blocking: None,
            buffer: VecDeque::new(),
            skip: None,
        }
    }
}

impl EventReader {
    /// Reads only these queues (default: every registered queue, new ones
    /// included as they appear).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`].
    pub fn queues(mut self, names: &[&str]) -> Result<Self> {
        for name in names {
            crate::keys::validate_queue_name(name)?;
        }
        self.named = Some(names.iter().map(|n| (*n).to_owned()).collect());
        Ok(self)
    }

    /// Starts with the oldest events still in the streams.
    #[must_use]
    pub fn from_start(mut self) -> Self {
        self.start = Start::Beginning;
        self
    }

    /// Starts after stream entry `id` (an [`Event::entry_id`], or an
    /// [`Event::id`] whose entry is meant) in every queue read: after that
    /// instant. To go on exactly after an event, use
    /// [`EventReader::after_event`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an id that is not `<ms>-<seq>`.
    pub fn after(mut self, id: &str) -> Result<Self> {
        self.start = Start::After(check_entry_id(id)?);
        Ok(self)
    }

    /// Starts exactly after `event`: the rest of its entry in its queue,
    /// then later entries; in other queues, after the same instant.
    #[must_use]
    pub fn after_event(mut self, event: &Event) -> Self {
        let entry = event.entry_id().to_owned();
        self.skip = Some((event.queue.clone(), entry.clone(), event.index()));
        self.start = Start::After(entry_before(&entry));
        self
    }

    /// Events per read per queue (default 500).
    #[must_use]
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, 10_000);
        self
    }

    /// How long a Cluster reader sleeps when a round found nothing
    /// (default 100 ms; single node and Sentinel readers block instead).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// Reads through consumer group `group` as consumer `consumer`: each
    /// event goes to one consumer of the group and stays pending until
    /// acknowledged ([`EventGroup::ack`]); events a consumer left pending
    /// longer than [`EventGroup::claim_after`] (it died) are claimed by
    /// another. The group is created on first use, at this reader's start
    /// (now by default, or [`EventReader::from_start`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long name.
    pub fn group(self, group: &str, consumer: &str) -> Result<EventGroup> {
        for (what, name) in [("group", group), ("consumer", consumer)] {
            if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "event {what} name must be 1 to 200 characters without control characters"
                )));
            }
        }
        Ok(EventGroup {
            reader: self,
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            claim_after: Duration::from_secs(30),
            created: Vec::new(),
            own_pending_done: Vec::new(),
            last_claim: None,
            unacked: Unacked::default(),
        })
    }

    /// The next events, oldest first per queue: waits up to about two
    /// seconds for some, and returns an empty list when none came.
    ///
    /// # Errors
    /// [`Error::Redis`] (the next call reconnects).
    pub async fn next_batch(&mut self) -> Result<Vec<Event>> {
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        Ok(self.buffer.drain(..).collect())
    }

    /// The events as a stream; a Redis error is yielded (then reading goes
    /// on after a short pause).
    pub fn stream(self) -> impl Stream<Item = Result<Event>> {
        futures::stream::unfold(self, |mut reader| async move {
            loop {
                if let Some(event) = reader.buffer.pop_front() {
                    return Some((Ok(event), reader));
                }
                if let Err(err) = reader.fill().await {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Some((Err(err), reader));
                }
            }
        })
    }

    /// Brings the queue list and the cursors up to date.
    async fn prepare(&mut self) -> Result<()> {
        let due = self
            .refreshed
            .is_none_or(|at| at.elapsed() >= QUEUE_REFRESH);
        if !due {
            return Ok(());
        }
        if self.began_ms.is_none() {
            self.began_ms = Some(self.client.redis_time_ms().await?);
        }
        let began = self.began_ms.unwrap_or_default();
        let names = match &self.named {
            Some(names) => names.clone(),
            None => self.client.admin().queue_names().await?,
        };
        for name in names {
            if self.cursors.iter().any(|(k, _)| k.queue == name) {
                continue;
            }
            let cursor = match &self.start {
                Start::Now => format!("{began}-0"),
                Start::After(id) => id.clone(),
                Start::Beginning => "0-0".to_owned(),
            };
            self.cursors
                .push((Arc::new(self.client.queue_keys(&name)?), cursor));
        }
        self.refreshed = Some(tokio::time::Instant::now());
        Ok(())
    }

    /// One read round into the buffer.
    async fn fill(&mut self) -> Result<()> {
        self.prepare().await?;
        if self.cursors.is_empty() {
            tokio::time::sleep(self.poll.max(Duration::from_millis(500))).await;
            return Ok(());
        }
        let head = redis::cmd("XREAD");
        let found = self
            .read_round(&head, "XREAD events", ToOwned::to_owned)
            .await?;
        self.take(found);
        Ok(())
    }

    /// One read over every stream read: `head` (`XREAD` or `XREADGROUP
    /// GROUP g c`), then `COUNT`, then the streams with `id_for(cursor)`
    /// each. On a single node or Sentinel, one command blocking up to
    /// [`BLOCK_FOR`] on this reader's own connection; on Cluster (the
    /// streams live on different nodes) one non-blocking command per
    /// stream in a pipeline, and a pause of `poll` when nothing came.
    async fn read_round(
        &mut self,
        head: &redis::Cmd,
        op: &'static str,
        id_for: impl Fn(&str) -> String,
    ) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        if self.client.topology() == Topology::Cluster {
            let mut pipe = redis::pipe();
            for (keys, cursor) in &self.cursors {
                let mut cmd = head.clone();
                cmd.arg("COUNT")
                    .arg(self.batch)
                    .arg("STREAMS")
                    .arg(&keys.events)
                    .arg(id_for(cursor));
                pipe.add_command(cmd);
            }
            let replies: Vec<redis::Value> = pipe
                .query_async(&mut self.client.connection())
                .await
                .map_err(Error::redis(op))?;
            for reply in replies {
                found.extend(parse_read_reply(reply)?);
            }
            if found.is_empty() {
                tokio::time::sleep(self.poll).await;
            }
            return Ok(found);
        }
        let mut cmd = head.clone();
        cmd.arg("COUNT")
            .arg(self.batch)
            .arg("BLOCK")
            .arg(duration_ms(BLOCK_FOR))
            .arg("STREAMS");
        for (keys, _) in &self.cursors {
            cmd.arg(&keys.events);
        }
        for (_, cursor) in &self.cursors {
            cmd.arg(id_for(cursor));
        }
        parse_read_reply(self.blocking_query(&cmd, op).await?)
    }

    /// Runs a blocking command on this reader's own connection (opened on
    /// first use, dropped after an error).
    async fn blocking_query(&mut self, cmd: &redis::Cmd, op: &'static str) -> Result<redis::Value> {
        if self.blocking.is_none() {
            self.blocking = Some(self.client.dedicated_connection(BLOCK_FOR).await?);
        }
        let conn = self.blocking.as_mut().expect("opened above");
        match cmd.query_async(conn).await {
            Ok(v) => Ok(v),
            Err(err) => {
                self.blocking = None;
                Err(Error::redis(op)(err))
            }
        }
    }

    /// Queues the events of the entries read (stream key, entry id,
    /// fields) in time order and moves the cursors past them; returns each
    /// entry's stream key, id and number of events.
    fn take(&mut self, mut found: Vec<Entry>) -> Vec<(String, String, usize)> {
        found.sort_by_key(|(_, id, _)| entry_order(id));
        let mut taken = Vec::new();
        for (key, id, fields) in found {
            let Some((keys, cursor)) = self.cursors.iter_mut().find(|(k, _)| k.events == key)
            else {
                continue;
            };
            if entry_order(&id) > entry_order(cursor) {
                cursor.clone_from(&id);
            }
            let events = Event::from_entry(&keys.queue, &id, &fields);
            taken.push((key.clone(), id.clone(), events.len()));
            let skip = match &self.skip {
                Some((queue, entry, index)) if *queue == keys.queue && *entry == id => *index + 1,
                Some((_, entry, _)) if entry_order(&id) > entry_order(entry) => {
                    self.skip = None;
                    0
                }
                _ => 0,
            };
            self.buffer.extend(events.into_iter().skip(skip));
        }
        taken
    }
}

/// The entry id just before `entry` (XREAD reads after the id it is given).
fn entry_before(entry: &str) -> String {
    match entry_order(entry) {
        (0, 0) => "0-0".to_owned(),
        (ms, 0) => format!("{}-{}", ms - 1, u64::MAX),
        (ms, seq) => format!("{ms}-{}", seq - 1),
    }
}

/// An entry id as a sortable pair (unparsable ids sort first).
fn entry_order(id: &str) -> (u64, u64) {
    id.split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// Text of a reply value, lossily (another writer may store any bytes).
fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn items(v: redis::Value) -> Vec<redis::Value> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => items,
        redis::Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// One stream entry `[id, [field, value, …]]` (a deleted entry, as
/// `XAUTOCLAIM` of Redis 6.2 returns, has no fields).
fn parse_entry(entry: redis::Value) -> Option<(String, Vec<(String, String)>)> {
    let mut parts = items(entry).into_iter();
    let id = text(&parts.next()?)?;
    let flat = parts.next().map(items).unwrap_or_default();
    let fields = flat
        .chunks_exact(2)
        .filter_map(|pair| Some((text(&pair[0])?, text(&pair[1])?)))
        .collect();
    Some((id, fields))
}

/// An `XREAD`/`XREADGROUP` reply: per stream, its key and entries (nil
/// when nothing came). RESP2 gives `[[key, entries], …]`, RESP3 a map.
fn parse_read_reply(reply: redis::Value) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let per_stream: Vec<(redis::Value, redis::Value)> = match reply {
        redis::Value::Nil => return Ok(out),
        redis::Value::Map(pairs) => pairs,
        redis::Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| {
                let mut kv = items(s).into_iter();
                Some((kv.next()?, kv.next()?))
            })
            .collect(),
        other => {
            return Err(Error::Decode {
                what: "reply of XREAD events".to_owned(),
                reason: format!("unexpected {other:?}"),
            })
        }
    };
    for (key, entries) in per_stream {
        let Some(key) = text(&key) else { continue };
        for entry in items(entries) {
            if let Some((id, fields)) = parse_entry(entry) {
                out.push((key.clone(), id, fields));
            }
        }
    }
    Ok(out)
}

/// A consumer of a consumer group over the event streams: at-least-once
/// processing. Get one with [`EventReader::group`].
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// let mut group = client.events().group("billing", "billing-1")?;
/// loop {
///     let events = group.next_batch().await?;
///     for event in &events {
///         // react to the event; a crash here leaves it pending, and
///         // another consumer claims it after `claim_after`
///     }
///     group.ack(&events).await?;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct EventGroup {
    reader: EventReader,
    group: String,
    consumer: String,
    claim_after: Duration,
    /// Streams the group is known to exist on.
    created: Vec<String>,
    /// Streams where this consumer's own pending entries were re-read.
    own_pending_done: Vec<String>,
    last_claim: Option<tokio::time::Instant>,
    /// Events of each entry read and not yet acknowledged (shared with
    /// the ackers).
    unacked: Unacked,
}

/// Per (stream key, entry id), the events read and not yet acknowledged:
/// an entry is acknowledged (`XACK`) when its last event is.
type Unacked = Arc<std::sync::Mutex<std::collections::HashMap<(String, String), usize>>>;

impl EventGroup {
    /// How long an event may stay pending with a consumer (unacknowledged)
    /// before another consumer of the group claims it (default 30 s).
    #[must_use]
    pub fn claim_after(mut self, idle: Duration) -> Self {
        self.claim_after = idle.max(Duration::from_millis(1));
        self
    }

    /// The next events for this consumer: first the ones it had pending
    /// (after a restart under the same name), then ones other consumers
    /// left pending over [`EventGroup::claim_after`], then new ones (waiting
    /// up to about two seconds). Each stays pending until acknowledged.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn next_batch(&mut self) -> Result<Vec<Event>> {
        self.reader.prepare().await?;
        self.create_groups().await?;
        let mut found = self.own_pending().await?;
        if found.is_empty() {
            found = self.claim().await?;
        }
        if found.is_empty() {
            found = self.read_new().await?;
        }
        let taken = self.reader.take(found);
        let mut unacked = self
            .unacked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, entry, events) in taken {
            unacked.insert((key, entry), events);
        }
        drop(unacked);
        Ok(self.reader.buffer.drain(..).collect())
    }

    /// The events as a stream (acknowledge each with [`EventAcker::ack`],
    /// from [`EventGroup::acker`] taken before).
    pub fn stream(self) -> impl Stream<Item = Result<Event>> {
        futures::stream::unfold(
            (self, VecDeque::new()),
            |(mut group, mut queued)| async move {
                loop {
                    if let Some(event) = queued.pop_front() {
                        return Some((Ok(event), (group, queued)));
                    }
                    match group.next_batch().await {
                        Ok(events) => queued.extend(events),
                        Err(err) => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            return Some((Err(err), (group, queued)));
                        }
                    }
                }
            },
        )
    }

    /// A handle that acknowledges this group's events (cheap to clone).
    #[must_use]
    pub fn acker(&self) -> EventAcker {
        EventAcker {
            client: self.reader.client.clone(),
            group: self.group.clone(),
            unacked: Arc::clone(&self.unacked),
        }
    }

    /// Acknowledges events: they are processed and leave the group's
    /// pending list.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn ack(&self, events: &[Event]) -> Result<u64> {
        self.acker().ack(events).await
    }

    /// The group's start id on a new stream.
    fn start_id(&self) -> String {
        match &self.reader.start {
            Start::Now => self
                .reader
                .began_ms
                .map_or_else(|| "$".to_owned(), |ms| format!("{ms}-0")),
            Start::After(id) => id.clone(),
            Start::Beginning => "0".to_owned(),
        }
    }

    /// `XGROUP CREATE … MKSTREAM` on every stream not known to have the
    /// group (an existing group is left as it is).
    async fn create_groups(&mut self) -> Result<()> {
        let start = self.start_id();
        for (keys, _) in &self.reader.cursors {
            if self.created.contains(&keys.events) {
                continue;
            }
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&keys.events)
                .arg(&self.group)
                .arg(&start)
                .arg("MKSTREAM")
                .query_async(&mut self.reader.client.connection())
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(Error::redis("XGROUP CREATE events")(e)),
            }
            self.created.push(keys.events.clone());
        }
        Ok(())
    }

    /// This consumer's own pending entries (`XREADGROUP … 0`), once per
    /// stream: what it read before a restart and did not acknowledge.
    async fn own_pending(&mut self) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        let todo: Vec<String> = self
            .reader
            .cursors
            .iter()
            .map(|(k, _)| k.events.clone())
            .filter(|k| !self.own_pending_done.contains(k))
            .collect();
        for key in todo {
            let reply: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(self.reader.batch)
                .arg("STREAMS")
                .arg(&key)
                .arg("0")
                .query_async(&mut self.reader.client.connection())
                .await
                .map_err(Error::redis("XREADGROUP events"))?;
            let entries = parse_read_reply(reply)?;
            // Entries trimmed away while pending come back without fields:
            // nothing is left to process, so they leave the pending list.
            let (live, gone): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| !e.2.is_empty());
            if !gone.is_empty() {
                let ids: Vec<&str> = gone.iter().map(|e| e.1.as_str()).collect();
                let _: u64 = redis::cmd("XACK")
                    .arg(&key)
                    .arg(&self.group)
                    .arg(&ids)
                    .query_async(&mut self.reader.client.connection())
                    .await
                    .map_err(Error::redis("XACK events"))?;
            }
            if live.is_empty() && gone.is_empty() {
                self.own_pending_done.push(key);
            } else {
                found.extend(live);
            }
        }
        Ok(found)
    }

    /// Claims entries other consumers left pending too long
    /// (`XAUTOCLAIM`), at most once per half `claim_after`.
    async fn claim(&mut self) -> Result<Vec<Entry>> {
        if self
            .last_claim
            .is_some_and(|at| at.elapsed() < self.claim_after / 2)
        {
            return Ok(Vec::new());
        }
        self.last_claim = Some(tokio::time::Instant::now());
        let mut found = Vec::new();
        let idle = duration_ms(self.claim_after);
        for (keys, _) in &self.reader.cursors {
            let reply: redis::Value = redis::cmd("XAUTOCLAIM")
                .arg(&keys.events)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(idle)
                .arg("0-0")
                .arg("COUNT")
                .arg(self.reader.batch)
                .query_async(&mut self.reader.client.connection())
                .await
                .map_err(Error::redis("XAUTOCLAIM events"))?;
            let mut parts = items(reply).into_iter().skip(1);
            for entry in parts.next().map(items).unwrap_or_default() {
                if let Some((id, fields)) = parse_entry(entry) {
                    if !fields.is_empty() {
                        found.push((keys.events.clone(), id, fields));
                    }
                }
            }
        }
        if !found.is_empty() {
            // Claimed ones still pending here after a crash are re-read as
            // this consumer's own.
            self.own_pending_done.clear();
        }
        Ok(found)
    }

    /// New entries for the group (`XREADGROUP … >`).
    async fn read_new(&mut self) -> Result<Vec<Entry>> {
        let mut head = redis::cmd("XREADGROUP");
        head.arg("GROUP").arg(&self.group).arg(&self.consumer);
        self.reader
            .read_round(&head, "XREADGROUP events", |_| ">".to_owned())
            .await
    }
}

/// Acknowledges events of one consumer group ([`EventGroup::acker`]).
#[derive(Debug, Clone)]
pub struct EventAcker {
    client: Client,
    group: String,
    unacked: Unacked,
}

impl EventAcker {
    /// Acknowledges `events` (one `XACK` per queue, one round trip): an
    /// entry leaves the group's pending list when every event of it that
    /// this consumer read is acknowledged. Returns how many entries left it.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn ack(&self, events: &[Event]) -> Result<u64> {
        let by_queue = self.settle(events)?;
        if by_queue.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for (stream, entries) in &by_queue {
            pipe.cmd("XACK").arg(stream).arg(&self.group).arg(entries);
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("XACK events"))?;
        Ok(counts.into_iter().sum())
    }

    /// Counts `events` as acknowledged; returns, per stream, the entries
    /// whose every event read is now acknowledged.
    fn settle(&self, events: &[Event]) -> Result<Vec<(String, Vec<String>)>> {
        let mut by_stream: Vec<(String, Vec<String>)> = Vec::new();
        let mut unacked = self
            .unacked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in events {
            let stream = self.client.queue_keys(&e.queue)?.events;
            let key = (stream, e.entry_id().to_owned());
            match unacked.get_mut(&key) {
                Some(left) if *left > 1 => {
                    *left -= 1;
                    continue;
                }
                Some(_) => {
                    unacked.remove(&key);
                }
                // Read by another handle (or acknowledged already): the
                // entry is acknowledged as a whole.
                None => {}
            }
            let (stream, entry) = key;
            match by_stream.iter_mut().find(|(s, _)| *s == stream) {
                Some((_, entries)) if entries.contains(&entry) => {}
                Some((_, entries)) => entries.push(entry),
                None => by_stream.push((stream, vec![entry])),
            }
        }
        Ok(by_stream)
    }
}

impl crate::Admin {
    /// Sets which events `queue` writes and the cap of its stream (an
    /// `events_configured` event names this handle's actor). A queue never
    /// configured uses [`EventsConfig::default`].
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for a cap
    /// outside [`EVENTS_MAX_RANGE`]; [`Error::Redis`].
    pub async fn configure_events(&self, queue: &str, config: EventsConfig) -> Result<()> {
        if !EVENTS_MAX_RANGE.contains(&config.max_len) {
            return Err(Error::InvalidArgument(format!(
                "events cap must be {} to {} entries, got {}",
                EVENTS_MAX_RANGE.start(),
                EVENTS_MAX_RANGE.end(),
                config.max_len
            )));
        }
        let k = self.client().queue_keys(queue)?;
        let mut cmd = SCRIPTS.events_config.cmd(&[&k.settings, &k.events]);
        cmd.arg(config.level.as_str())
            .arg(config.max_len)
            .arg(self.actor());
        let _: i64 = scripts::run(&mut self.client().connection(), &cmd)
            .await
            .map_err(Error::redis("configure events"))?;
        self.register_queues(&[queue]).await
    }

    /// The event settings of `queue` (the defaults when never configured,
    /// or when a stored value is not one Spool wrote).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn events_config(&self, queue: &str) -> Result<EventsConfig> {
        let k = self.client().queue_keys(queue)?;
        let (level, max): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&k.settings)
            .arg("events")
            .arg("events_max")
            .query_async(&mut self.client().connection())
            .await
            .map_err(Error::redis("events config"))?;
        let defaults = EventsConfig::default();
        Ok(EventsConfig {
            level: level
                .and_then(|l| EventLevel::parse(&l).ok())
                .unwrap_or(defaults.level),
            max_len: max.and_then(|m| m.parse().ok()).unwrap_or(defaults.max_len),
        })
    }

    /// The newest `limit` events of `queues` (every registered queue when
    /// empty), newest first; with `job`, only that job's (looking through
    /// at most the newest 10,000 entries of each queue).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn recent_events(
        &self,
        queues: &[&str],
        job: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let names: Vec<String> = if queues.is_empty() {
            self.queue_names().await?
        } else {
            queues.iter().map(|q| (*q).to_owned()).collect()
        };
        let count = if job.is_some() { 10_000 } else { limit.max(1) };
        let mut pipe = redis::pipe();
        let mut keys = Vec::new();
        for name in &names {
            let k = self.client().queue_keys(name)?;
            pipe.cmd("XREVRANGE")
                .arg(&k.events)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(count);
            keys.push(k);
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<redis::Value> = pipe
            .query_async(&mut self.client().connection())
            .await
            .map_err(Error::redis("XREVRANGE events"))?;
        let mut out = Vec::new();
        for (k, reply) in keys.iter().zip(replies) {
            for entry in items(reply) {
                let Some((id, fields)) = parse_entry(entry) else {
                    continue;
                };
                for event in Event::from_entry(&k.queue, &id, &fields).into_iter().rev() {
                    if job.is_none_or(|j| event.job_id.as_ref().is_some_and(|id| id.as_str() == j))
                    {
                        out.push(event);
                    }
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((entry_order(e.entry_id()), e.index())));
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_defaults_agree_with_rust() {
        let prelude = include_str!("scripts/prelude.lua");
        assert!(prelude.contains(&format!(
            "local SPOOL_EVENTS_DEFAULT = '{}'",
            EventLevel::DEFAULT.as_str()
        )));
        assert!(prelude.contains(&format!(
            "local SPOOL_EVENTS_MAX_DEFAULT = '{EVENTS_MAX_DEFAULT}'"
        )));
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_kept() {
        for (name, kind) in EventKind::NAMES {
            assert_eq!(EventKind::parse(name), kind);
            assert_eq!(kind.as_str(), name);
        }
        assert_eq!(
            EventKind::parse("exploded"),
            EventKind::Other("exploded".into())
        );
        assert_eq!(EventKind::Other("x".into()).as_str(), "x");
    }

    #[test]
    fn entries_decode_whatever_their_fields() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let batch = Event::from_entry(
            "q",
            "1700000000123-4",
            &fields(&[
                ("event", "succeeded"),
                ("jobs", "a\"1\"t\"b\"2\"\"c"),
                ("error", ""),
            ]),
        );
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].id, "1700000000123-4.0");
        assert_eq!(batch[0].at_ms, 1_700_000_000_123);
        assert_eq!(batch[0].job_id.as_ref().unwrap().as_str(), "a");
        assert_eq!(batch[0].attempt, Some(1));
        assert_eq!(batch[0].job_type.as_deref(), Some("t"));
        assert_eq!(batch[1].job_type, None);
        assert_eq!(batch[2].job_id.as_ref().unwrap().as_str(), "c");
        assert_eq!(batch[2].attempt, None);
        assert_eq!(
            (batch[2].entry_id(), batch[2].index()),
            ("1700000000123-4", 2)
        );
        assert_eq!(batch[0].error, None);

        let single = Event::from_entry(
            "q",
            "5-0",
            &fields(&[("event", "dead"), ("id", "j1"), ("attempt", "x")]),
        );
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].kind, EventKind::Dead);
        assert_eq!(single[0].job_id.as_ref().unwrap().as_str(), "j1");
        assert_eq!(single[0].attempt, None);

        let queue_wide =
            Event::from_entry("q", "6-0", &fields(&[("event", "paused"), ("jobs", "")]));
        assert_eq!(queue_wide.len(), 1);
        assert_eq!(queue_wide[0].job_id, None);
        let junk = Event::from_entry("q", "garbage", &[]);
        assert_eq!(junk[0].kind, EventKind::Other(String::new()));
        assert_eq!(junk[0].at_ms, 0);
    }

    #[test]
    fn event_ids_are_checked() {
        assert_eq!(check_entry_id("17-3").unwrap(), "17-3");
        assert_eq!(check_entry_id("17").unwrap(), "17-0");
        assert_eq!(check_entry_id("17-3.4").unwrap(), "17-3");
        assert!(check_entry_id("17-3.").is_err());
        assert_eq!(entry_before("17-3"), "17-2");
        assert_eq!(entry_before("17-0"), format!("16-{}", u64::MAX));
        for bad in ["", "-", "a-1", "1-b", "1-2-3", "1 -2"] {
            assert!(check_entry_id(bad).is_err(), "{bad:?}");
        }
        assert!(entry_order("2-1") > entry_order("1-99"));
        assert!(entry_order("10-0") > entry_order("9-0"));
    }
}
