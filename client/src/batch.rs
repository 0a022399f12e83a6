//! Batches and chains: work made of many jobs, tracked as one.
//!
//! A [`Batch`] enqueues many jobs (its members, in any queues) under one
//! [`BatchId`], with callbacks (follow-up jobs) on success (every member
//! done), on completion (every member ended: done, dead or cancelled) and
//! on the first death; a callback reads the batch's counts and the results
//! its members kept (a chord). A [`Chain`] runs jobs one after another,
//! each created when the one before succeeds and reading its result; its
//! status says where it stopped.
//!
//! The batch lives in its home queue's slot (`batch_shared.lua`). Each end
//! of a member (a retry from dead and a second end included) is reported by
//! the script that ends it, into the member queue's outbox (one slot); the
//! mover applies the report to the batch (`batch_member.lua`), which
//! ignores repeated and stale reports, and the script that sees the batch
//! reach a callback's condition triggers it once into the home queue's
//! outbox. So each callback is created exactly once, whatever is killed
//! (DESIGN, "Slots decide the shape").
//!
//! A batch is written in three round trips: open (members registered as
//! pending), enqueue (the members), seal. A producer that dies before the
//! seal leaves a batch that never completes (its status says unsealed).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::admin::{Admin, Page, PAGE_LIMIT_MAX};
use crate::client::Client;
use crate::enqueue::{EnqueueOptions, JobDefaults, Prepared};
use crate::error::{Error, Result};
use crate::followup::FollowUp;
use crate::job::{Job, JobId};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};

/// How long a finished batch (or chain) is kept by default.
pub const BATCH_KEEP_DEFAULT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Members registered per `batch_open.lua` call.
const OPEN_CHUNK: usize = 1000;

/// Most links a chain may have (each link carries the rest of the chain).
pub const CHAIN_LINKS_MAX: usize = crate::followup::FOLLOW_UPS_MAX;

/// A batch's (or chain's) id: `<home queue>~<uuid>`. The home queue's
/// slot holds the batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchId(String);

impl BatchId {
    fn new(home: &str) -> Self {
        Self(format!("{home}~{}", uuid::Uuid::now_v7()))
    }

    /// Reads a batch id as [`BatchId::as_str`] wrote it.
    ///
    /// ```
    /// let id = spool_client::BatchId::parse("imports~0193a1b2-aaaa-7bbb-8ccc-123456789abc").unwrap();
    /// assert_eq!(id.home(), "imports");
    /// assert!(spool_client::BatchId::parse("no tilde").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when it is not `<queue>~<uuid>`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "batch id {:?} is not <queue>~<uuid>",
                crate::wire::truncate_utf8(text, 100)
            ))
        };
        let (home, uuid) = text.split_once('~').ok_or_else(bad)?;
        crate::keys::validate_queue_name(home).map_err(|_| bad())?;
        let uuid_ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !uuid_ok {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }

    /// The home queue.
    #[must_use]
    pub fn home(&self) -> &str {
        self.0.split_once('~').map_or("", |(home, _)| home)
    }

    /// The uuid part.
    #[must_use]
    pub fn uuid(&self) -> &str {
        self.0.split_once('~').map_or("", |(_, uuid)| uuid)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BatchId {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<BatchId> for String {
    fn from(id: BatchId) -> Self {
        id.0
    }
}

/// When a batch's callback is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchOn {
    /// Every member is done (a member retried from dead and then done counts).
    Success,
    /// Every member ended: done, dead or cancelled.
    Complete,
    /// A member died (the first one).
    Death,
}

impl BatchOn {
    /// Its name in the batch's callbacks and in a callback's record.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Complete => "complete",
            Self::Death => "death",
        }
    }

    fn letter(self) -> char {
        match self {
            Self::Success => 's',
            Self::Complete => 'c',
            Self::Death => 'd',
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Success, Self::Complete, Self::Death]
            .into_iter()
            .find(|on| on.as_str() == text)
    }
}

/// A job to add to a batch or chain, not yet prepared.
#[derive(Debug, Clone)]
struct Member {
    job_type: String,
    args: Box<RawValue>,
    defaults: JobDefaults,
    opts: EnqueueOptions,
}

impl Member {
    fn typed<J: Job>(job: &J, opts: EnqueueOptions) -> Result<Self> {
        let args = serde_json::value::to_raw_value(job).map_err(|source| Error::Serialize {
            job_type: J::TYPE.to_owned(),
            source,
        })?;
        Ok(Self {
            job_type: J::TYPE.to_owned(),
            args,
            defaults: JobDefaults::of::<J>(),
            opts,
        })
    }

    fn queue(&self) -> &str {
        self.opts.queue_name().unwrap_or(&self.defaults.queue)
    }
}

/// What a batch and a chain share besides their jobs: where they live, a
/// description, and how long they are kept once finished.
#[derive(Debug, Clone, Default)]
struct Tracking {
    home: Option<String>,
    description: String,
    keep: Option<Duration>,
}

impl Tracking {
    /// The home queue: the one given, else `first` (the first job's queue),
    /// else the default queue.
    fn home_or(&self, first: Option<&str>) -> String {
        self.home
            .clone()
            .or_else(|| first.map(str::to_owned))
            .unwrap_or_else(|| JobDefaults::default().queue)
    }
}

/// The setters of [`Tracking`] for [`Batch`] and [`Chain`].
macro_rules! tracking_setters {
    () => {
        /// The queue whose slot holds the state (default: the first job's
        /// queue). Its outbox receives a batch's callbacks: workers serving
        /// it create them.
        #[must_use]
        pub fn queue(mut self, home: impl Into<String>) -> Self {
            self.tracking.home = Some(home.into());
            self
        }

        /// A line for people (shown by the dashboard and `spool batch show`).
        #[must_use]
        pub fn description(mut self, text: impl Into<String>) -> Self {
            self.tracking.description = text.into();
            self
        }

        /// How long the state is kept once finished (default
        /// [`BATCH_KEEP_DEFAULT`]).
        #[must_use]
        pub fn keep(mut self, retention: Duration) -> Self {
            self.tracking.keep = Some(retention);
            self
        }
    };
}

/// Many jobs under one id, with callbacks when they end; enqueue it with
/// [`Client::enqueue_batch`].
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Resize { image: u32 }
/// # impl spool_client::Job for Resize { const TYPE: &'static str = "resize"; }
/// # #[derive(Serialize, Deserialize)] struct Album { id: u32 }
/// # impl spool_client::Job for Album { const TYPE: &'static str = "album"; }
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::{Batch, FollowUp};
/// let mut batch = Batch::new()
///     .description("album 7")
///     .on_success(FollowUp::on_complete(&Album { id: 7 })?);
/// for image in 0..10_000 {
///     batch.add(&Resize { image })?;
/// }
/// let id = client.enqueue_batch(batch).await?;
/// let status = client.batch_status(&id).await?.expect("just created");
/// println!("{} of {} done", status.done, status.total);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch {
    tracking: Tracking,
    callbacks: Vec<(BatchOn, FollowUp)>,
    members: Vec<Member>,
}

impl Batch {
    /// An empty batch (its home is its first member's queue).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    tracking_setters!();

    /// Creates `job` once every member is done; it reads the batch with
    /// its members' kept results (`JobRecord::batch_callback`). The
    /// follow-up's own trigger is ignored: the batch's decides.
    #[must_use]
    pub fn on_success(mut self, job: FollowUp) -> Self {
        self.callbacks.push((BatchOn::Success, job));
        self
    }

    /// Creates `job` once every member ended (done, dead or cancelled).
    #[must_use]
    pub fn on_complete(mut self, job: FollowUp) -> Self {
        self.callbacks.push((BatchOn::Complete, job));
        self
    }

    /// Creates `job` when the first member dies.
    #[must_use]
    pub fn on_death(mut self, job: FollowUp) -> Self {
        self.callbacks.push((BatchOn::Death, job));
        self
    }

    /// Adds a member with its type's defaults.
    ///
    /// # Errors
    /// [`Error::Serialize`] when `job` does not serialize.
    pub fn add<J: Job>(&mut self, job: &J) -> Result<&mut Self> {
        self.add_with(job, EnqueueOptions::new())
    }

    /// Adds a member with options (its queue, attempts, delay, kept
    /// outcome: a member that keeps its outcome passes its result to the
    /// success and completion callbacks). Members take no uniqueness key.
    ///
    /// # Errors
    /// As [`Batch::add`].
    pub fn add_with<J: Job>(&mut self, job: &J, opts: EnqueueOptions) -> Result<&mut Self> {
        self.members.push(Member::typed(job, opts)?);
        Ok(self)
    }

    /// Adds an untyped member (a type name and JSON args).
    pub fn add_raw(
        &mut self,
        job_type: &str,
        args: Box<RawValue>,
        defaults: JobDefaults,
        opts: EnqueueOptions,
    ) -> &mut Self {
        self.members.push(Member {
            job_type: job_type.to_owned(),
            args,
            defaults,
            opts,
        });
        self
    }

    /// Members added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// No member added yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Jobs run one after another: each link is created when the one before
/// is done, and reads its result (`JobContext::parent`). A dead (or
/// cancelled) link stops the chain; [`BatchStatus::stopped_at`] names it.
/// Enqueue it with [`Client::enqueue_chain`].
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Fetch { url: String }
/// # impl spool_client::Job for Fetch { const TYPE: &'static str = "fetch"; }
/// # #[derive(Serialize, Deserialize)] struct Parse;
/// # impl spool_client::Job for Parse { const TYPE: &'static str = "parse"; }
/// # #[derive(Serialize, Deserialize)] struct Store;
/// # impl spool_client::Job for Store { const TYPE: &'static str = "store"; }
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::Chain;
/// let chain = Chain::new(&Fetch { url: "https://example.com".into() })?
///     .then(&Parse)?
///     .then(&Store)?;
/// let id = client.enqueue_chain(chain).await?;
/// let status = client.batch_status(&id).await?.expect("just created");
/// assert_eq!(status.total, 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Chain {
    tracking: Tracking,
    links: Vec<Member>,
}

impl Chain {
    /// A chain starting with `first`.
    ///
    /// # Errors
    /// [`Error::Serialize`] when `first` does not serialize.
    pub fn new<J: Job>(first: &J) -> Result<Self> {
        Self::new_with(first, EnqueueOptions::new())
    }

    /// A chain starting with `first`, enqueued with `opts`.
    ///
    /// # Errors
    /// As [`Chain::new`].
    pub fn new_with<J: Job>(first: &J, opts: EnqueueOptions) -> Result<Self> {
        Ok(Self {
            tracking: Tracking::default(),
            links: vec![Member::typed(first, opts)?],
        })
    }

    /// The next link, created when the last one so far is done.
    ///
    /// # Errors
    /// As [`Chain::new`].
    pub fn then<J: Job>(self, next: &J) -> Result<Self> {
        self.then_with(next, EnqueueOptions::new())
    }

    /// The next link with its options (queue, attempts, delay: a delay
    /// counts from the moment the link before it is done).
    ///
    /// # Errors
    /// As [`Chain::new`].
    pub fn then_with<J: Job>(mut self, next: &J, opts: EnqueueOptions) -> Result<Self> {
        self.links.push(Member::typed(next, opts)?);
        Ok(self)
    }

    tracking_setters!();
}

/// Batch or chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchKind {
    /// Members run independently.
    Batch,
    /// Links run one after another.
    Chain,
}

impl BatchKind {
    /// Its lower-case name, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Chain => "chain",
        }
    }
}

/// Where a member (or link) is, as its batch knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Not ended yet (for a chain: possibly not created yet).
    Pending,
    /// Done.
    Done,
    /// Dead (it may still be retried from the dead set).
    Dead,
    /// Cancelled.
    Cancelled,
}

impl MemberState {
    /// Its lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// Reads a name as [`MemberState::as_str`] writes it.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Done, Self::Dead, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One member of a batch (or link of a chain).
#[derive(Debug, Clone, Serialize)]
pub struct BatchMember {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Where it is.
    pub state: MemberState,
    /// When it ended (Redis ms), if it did.
    pub ended_ms: Option<i64>,
}

/// A callback of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchCallbackInfo {
    /// When it is created.
    pub on: BatchOn,
    /// The job it creates (its id is chosen at enqueue).
    pub id: JobId,
    /// Its type.
    pub job_type: String,
    /// Its queue.
    pub queue: String,
    /// It was triggered.
    pub fired: bool,
}

/// A batch (or chain) as its home slot holds it.
#[derive(Debug, Clone, Serialize)]
pub struct BatchStatus {
    /// The batch.
    pub id: BatchId,
    /// Batch or chain.
    pub kind: BatchKind,
    /// The producer's description.
    pub description: String,
    /// Members (links).
    pub total: u64,
    /// Members not ended.
    pub pending: u64,
    /// Members done.
    pub done: u64,
    /// Members dead.
    pub dead: u64,
    /// Members cancelled.
    pub cancelled: u64,
    /// Every member was enqueued (a batch whose producer died before that
    /// never completes).
    pub sealed: bool,
    /// When it was opened (Redis ms).
    pub created_ms: i64,
    /// When every member had ended (Redis ms).
    pub finished_ms: Option<i64>,
    /// The first member that died.
    pub first_dead: Option<JobId>,
    /// For a chain: the dead or cancelled link where it stopped.
    pub stopped_at: Option<JobId>,
    /// The callbacks and whether they fired.
    pub callbacks: Vec<BatchCallbackInfo>,
}

impl BatchStatus {
    /// Done, dead and cancelled members out of the total, 0 to 100.
    #[must_use]
    pub fn percent_ended(&self) -> u64 {
        if self.total == 0 {
            return 100;
        }
        (self.done + self.dead + self.cancelled).min(self.total) * 100 / self.total
    }

    /// Every member ended (and the batch is sealed).
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished_ms.is_some()
    }

    /// Where it is, in a word or three: `stopped at <link>` (a chain),
    /// `finished`, `running` or `unsealed` (members still being added, or
    /// the producer died before the seal).
    #[must_use]
    pub fn state(&self) -> String {
        match (&self.stopped_at, self.finished(), self.sealed) {
            (Some(at), _, _) => format!("stopped at {at}"),
            (None, true, _) => "finished".to_owned(),
            (None, false, true) => "running".to_owned(),
            (None, false, false) => "unsealed".to_owned(),
        }
    }
}

/// What a batch callback reads of its batch (`JobRecord::batch_callback`),
/// as the batch was when it triggered the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchCallback {
    /// Why it was created.
    pub on: BatchOn,
    /// The batch.
    pub id: BatchId,
    /// Members.
    pub total: u64,
    /// Members done.
    pub done: u64,
    /// Members dead.
    pub dead: u64,
    /// Members cancelled.
    pub cancelled: u64,
    /// The first member that died.
    #[serde(default)]
    pub first_dead: Option<JobId>,
    /// The results of the done members that keep their outcome, in the
    /// order they were added (empty for a death callback, and when
    /// `results_omitted`).
    #[serde(default)]
    pub results: Vec<MemberResult>,
    /// The results were more than 256 KiB: read them with
    /// [`Client::batch_results`] (the batch keeps them until it expires).
    #[serde(default)]
    pub results_omitted: bool,
}

/// One member's result, for a batch callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberResult {
    /// The member.
    pub id: JobId,
    /// What its handler returned (JSON).
    pub result: Box<RawValue>,
}

impl Client {
    /// Enqueues a batch: registers its members, enqueues them (1,000 per
    /// script call, all calls in one pipeline), then seals it. Returns its
    /// id. Three round trips whatever the size.
    ///
    /// # Errors
    /// As [`Client::enqueue`](crate::Client::enqueue) for each member and
    /// callback, checked before Redis is contacted;
    /// [`Error::InvalidArgument`] for a member with a uniqueness key.
    /// A failure after the first round trip leaves an unsealed batch.
    pub async fn enqueue_batch(&self, batch: Batch) -> Result<BatchId> {
        let home = batch
            .tracking
            .home_or(batch.members.first().map(Member::queue));
        let home_keys = self.queue_keys(&home)?;
        let id = BatchId::new(&home);
        let mut prepared: Vec<(String, Prepared)> = Vec::with_capacity(batch.members.len());
        for m in &batch.members {
            if m.opts.has_uniqueness() {
                return Err(Error::InvalidArgument(
                    "a batch member cannot take an idempotency or uniqueness key".to_owned(),
                ));
            }
            let queue = m.queue().to_owned();
            self.queue_keys(&queue)?;
            let mut opts = m.opts.clone();
            opts.batch = Some(id.clone());
            let p = self.prepare(&m.job_type, &m.args, &m.defaults, &opts, &queue, None)?;
            prepared.push((queue, p));
        }
        let callbacks = self.encode_callbacks(&batch.callbacks)?;
        let links: Vec<(&str, &str)> = prepared
            .iter()
            .map(|(q, p)| (q.as_str(), p.id.as_str()))
            .collect();
        let open = OpenBatch {
            kind: BatchKind::Batch,
            tracking: &batch.tracking,
            callbacks: &callbacks,
        };
        self.open_batch(&home_keys, &id, &open, &links).await?;
        let mut pipe = redis::pipe();
        let mut queues: Vec<&str> = vec![&home];
        let mut by_queue: Vec<(&str, Vec<&Prepared>)> = Vec::new();
        for (queue, p) in &prepared {
            match by_queue.iter_mut().find(|(q, _)| q == queue) {
                Some((_, jobs)) => jobs.push(p),
                None => by_queue.push((queue, vec![p])),
            }
        }
        for (queue, jobs) in &by_queue {
            let keys = self.queue_keys(queue)?;
            for chunk in jobs.chunks(crate::enqueue::BULK_CHUNK) {
                pipe.add_command(crate::enqueue::enqueue_cmd(&keys, None, chunk))
                    .ignore();
            }
            if !queues.contains(queue) {
                queues.push(queue);
            }
        }
        pipe.add_command(crate::admin::register_queues_cmd(
            self.global_keys(),
            &queues,
        ))
        .ignore();
        let () = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("enqueue batch members"))?;
        for (queue, _) in &by_queue {
            self.wait_replicated(&self.queue_keys(queue)?.ready, "enqueue")
                .await?;
        }
        self.seal_batch(&home_keys, &id).await?;
        Ok(id)
    }

    /// Enqueues a chain: its first link now, each next one when the one
    /// before is done (a follow-up on success). Returns its id (the chain's
    /// state: [`Client::batch_status`]).
    ///
    /// # Errors
    /// As [`Client::enqueue_batch`]; [`Error::InvalidArgument`] for more
    /// than [`CHAIN_LINKS_MAX`] links.
    pub async fn enqueue_chain(&self, chain: Chain) -> Result<BatchId> {
        if chain.links.len() > CHAIN_LINKS_MAX {
            return Err(Error::InvalidArgument(format!(
                "a chain may have at most {CHAIN_LINKS_MAX} links"
            )));
        }
        let Some(first) = chain.links.first() else {
            return Err(Error::InvalidArgument("a chain needs a link".to_owned()));
        };
        let home = chain.tracking.home_or(Some(first.queue()));
        let home_keys = self.queue_keys(&home)?;
        let id = BatchId::new(&home);
        let ids: Vec<JobId> = chain.links.iter().map(|_| JobId::new()).collect();
        // Built from the last link back: each link carries the next.
        let mut next: Option<FollowUp> = None;
        for (link, link_id) in chain.links.iter().zip(&ids).skip(1).rev() {
            if link.opts.has_uniqueness() {
                return Err(Error::InvalidArgument(
                    "a chain link cannot take an idempotency or uniqueness key".to_owned(),
                ));
            }
            let mut opts = link.opts.clone();
            opts.job_id = Some(link_id.clone());
            opts.batch = Some(id.clone());
            if let Some(n) = next.take() {
                opts = opts.follow_up(n);
            }
            next = Some(
                FollowUp::raw(
                    crate::FollowUpOn::Success,
                    &link.job_type,
                    link.args.clone(),
                    link.defaults.clone(),
                )
                .with(opts),
            );
        }
        let mut opts = first.opts.clone();
        opts.job_id = Some(ids[0].clone());
        opts.batch = Some(id.clone());
        if let Some(n) = next {
            opts = opts.follow_up(n);
        }
        let queue = first.queue().to_owned();
        let keys = self.queue_keys(&queue)?;
        let prepared = self.prepare(
            &first.job_type,
            &first.args,
            &first.defaults,
            &opts,
            &queue,
            None,
        )?;
        let links: Vec<(&str, &str)> = chain
            .links
            .iter()
            .zip(&ids)
            .map(|(l, i)| (l.queue(), i.as_str()))
            .collect();
        let open = OpenBatch {
            kind: BatchKind::Chain,
            tracking: &chain.tracking,
            callbacks: "[]",
        };
        self.open_batch(&home_keys, &id, &open, &links).await?;
        let mut pipe = redis::pipe();
        pipe.add_command(crate::enqueue::enqueue_cmd(&keys, None, &[&prepared]))
            .ignore();
        pipe.add_command(crate::admin::register_queues_cmd(
            self.global_keys(),
            &[&queue, &home],
        ))
        .ignore();
        let () = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("enqueue chain"))?;
        self.wait_replicated(&keys.ready, "enqueue").await?;
        self.seal_batch(&home_keys, &id).await?;
        Ok(id)
    }

    /// The callbacks as `batch_open.lua` stores them: follow-up entries
    /// whose `on` is the batch's (success, complete, death).
    fn encode_callbacks(&self, callbacks: &[(BatchOn, FollowUp)]) -> Result<String> {
        let mut entries = Vec::with_capacity(callbacks.len());
        for (on, f) in callbacks {
            let encoded = self.encode_follow_ups(std::slice::from_ref(f), None)?;
            let mut list: Vec<serde_json::Value> = encoded
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| Error::Decode {
                    what: "batch callback".to_owned(),
                    reason: e.to_string(),
                })?
                .unwrap_or_default();
            for entry in &mut list {
                if let Some(slot) = entry.get_mut(0) {
                    *slot = serde_json::Value::from(on.as_str());
                }
            }
            entries.extend(list);
        }
        Ok(serde_json::Value::from(entries).to_string())
    }

    async fn open_batch(
        &self,
        home: &QueueKeys,
        id: &BatchId,
        open: &OpenBatch<'_>,
        members: &[(&str, &str)],
    ) -> Result<()> {
        let keys = home.batch(id.uuid());
        let mut pipe = redis::pipe();
        let chunks: Vec<&[(&str, &str)]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(OPEN_CHUNK).collect()
        };
        for chunk in chunks {
            let mut cmd =
                SCRIPTS
                    .batch_open
                    .cmd(&[&keys.state, &keys.members, &keys.ids, &home.batches]);
            cmd.arg(open.kind.as_str())
                .arg(crate::enqueue::duration_ms(
                    open.tracking.keep.unwrap_or(BATCH_KEEP_DEFAULT),
                ))
                .arg(open.callbacks)
                .arg(crate::wire::truncate_utf8(&open.tracking.description, 1000))
                .arg(id.uuid());
            for (queue, member) in chunk {
                cmd.arg(*member).arg(*queue);
            }
            pipe.add_command(cmd).ignore();
        }
        let () = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("open batch"))?;
        Ok(())
    }

    async fn seal_batch(&self, home: &QueueKeys, id: &BatchId) -> Result<()> {
        let keys = home.batch(id.uuid());
        let mut cmd = SCRIPTS.batch_seal.cmd(&keys.all());
        cmd.arg(id.as_str());
        let fired: u64 = scripts::run(&mut self.connection(), &cmd)
            .await
            .map_err(Error::redis("seal batch"))?;
        if fired > 0 {
            // Every member ended before the seal: create the callbacks now
            // rather than wait for a worker serving the home queue.
            self.move_outboxes(home, crate::followup::FOLLOW_UP_MOVE_BATCH)
                .await?;
        }
        Ok(())
    }

    /// Batch (or chain) `id` as its home slot holds it, or `None` when it
    /// does not exist (never created, or expired).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batch_status(&self, id: &BatchId) -> Result<Option<BatchStatus>> {
        Ok(self
            .batch_statuses(std::slice::from_ref(id))
            .await?
            .pop()
            .flatten())
    }

    /// Several batches in one round trip (one more per chain, for where
    /// it stopped).
    async fn batch_statuses(&self, ids: &[BatchId]) -> Result<Vec<Option<BatchStatus>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            let keys = self.queue_keys(id.home())?.batch(id.uuid());
            pipe.cmd("HGETALL").arg(&keys.state);
            pipe.cmd("HLEN").arg(&keys.members);
        }
        let replies: Vec<redis::Value> = scripts::run(&mut self.connection(), &pipe)
            .await
            .map_err(Error::redis("batch status"))?;
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (Some(fields), Some(total)) = (replies.next(), replies.next()) else {
                break;
            };
            // Fields another writer left unreadable (not UTF-8) are left out.
            let fields: Vec<(String, String)> = crate::wire::utf8_pairs(
                redis::from_redis_value(fields).map_err(Error::parse("batch status"))?,
            );
            let total: u64 =
                redis::from_redis_value(total).map_err(Error::parse("batch status"))?;
            if fields.is_empty() {
                out.push(None);
                continue;
            }
            let mut status = parse_status(id, &fields, total);
            if status.kind == BatchKind::Chain {
                let links = self.batch_members(id, None, 0, CHAIN_LINKS_MAX).await?;
                status.stopped_at = links
                    .items
                    .iter()
                    .find(|l| matches!(l.state, MemberState::Dead | MemberState::Cancelled))
                    .map(|l| l.id.clone());
            }
            out.push(Some(status));
        }
        Ok(out)
    }

    /// The results batch `id`'s done members kept, in the order the
    /// members were added: what a callback reads, also when it carried
    /// too many to hold ([`BatchCallback::results_omitted`]). Results that
    /// are not JSON are skipped.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batch_results(&self, id: &BatchId) -> Result<Vec<MemberResult>> {
        let keys = self.queue_keys(id.home())?.batch(id.uuid());
        let mut out = Vec::new();
        let mut from = 0usize;
        loop {
            let ids = self.batch_ids(&keys.ids, from).await?;
            if ids.is_empty() {
                return Ok(out);
            }
            from += ids.len();
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&keys.results);
            for (member, _) in &ids {
                hmget.arg(member);
            }
            let values: Vec<Option<Vec<u8>>> = hmget
                .query_async(&mut self.connection())
                .await
                .map_err(Error::redis("batch results"))?;
            for ((member, _), value) in ids.into_iter().zip(values) {
                if let Some(result) = value
                    .and_then(crate::wire::utf8)
                    .and_then(|v| RawValue::from_string(v).ok())
                {
                    out.push(MemberResult {
                        id: JobId::from(member),
                        result,
                    });
                }
            }
        }
    }

    /// Up to [`OPEN_CHUNK`] members (id, queue) of a batch's `ids` list
    /// from `from`.
    async fn batch_ids(&self, key: &str, from: usize) -> Result<Vec<(String, String)>> {
        let entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(key)
            .arg(from)
            .arg(from + OPEN_CHUNK - 1)
            .query_async(&mut self.connection())
            .await
            .map_err(Error::redis("batch members"))?;
        Ok(entries
            .iter()
            .map(|e| {
                let text = String::from_utf8_lossy(e);
                let (id, queue) = text.split_once('"').unwrap_or((&text, ""));
                (id.to_owned(), queue.to_owned())
            })
            .collect())
    }

    /// A page of batch `id`'s members in the order they were added, all
    /// of them or those in `state`.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batch_members(
        &self,
        id: &BatchId,
        state: Option<MemberState>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<BatchMember>> {
        let keys = self.queue_keys(id.home())?.batch(id.uuid());
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let mut items = Vec::new();
        let mut matched = 0usize;
        let mut from = if state.is_none() { offset } else { 0 };
        loop {
            let parsed = self.batch_ids(&keys.ids, from).await?;
            if parsed.is_empty() {
                break;
            }
            let read = parsed.len();
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&keys.members);
            for (member, _) in &parsed {
                hmget.arg(member);
            }
            let states: Vec<Option<Vec<u8>>> = hmget
                .query_async(&mut self.connection())
                .await
                .map_err(Error::redis("batch members"))?;
            let states = states.into_iter().map(|s| s.and_then(crate::wire::utf8));
            for ((member, queue), raw) in parsed.into_iter().zip(states) {
                let (s, ended_ms) = parse_member_state(raw.as_deref());
                if state.is_some_and(|want| want != s) {
                    continue;
                }
                matched += 1;
                if state.is_some() && matched <= offset {
                    continue;
                }
                if items.len() < limit {
                    items.push(BatchMember {
                        id: JobId::from(member),
                        queue,
                        state: s,
                        ended_ms,
                    });
                }
            }
            from += read;
            if items.len() >= limit && state.is_none() {
                break;
            }
        }
        let total = if state.is_none() {
            from as u64
        } else {
            matched as u64
        };
        Ok(Page {
            total: total.max(items.len() as u64),
            offset: offset as u64,
            items,
        })
    }
}

/// What `batch_open.lua` stores besides the members.
struct OpenBatch<'a> {
    kind: BatchKind,
    tracking: &'a Tracking,
    callbacks: &'a str,
}

/// `state"ms` as `batch_member.lua` writes it; anything else is pending.
fn parse_member_state(raw: Option<&str>) -> (MemberState, Option<i64>) {
    let Some((state, ms)) = raw.and_then(|r| r.split_once('"')) else {
        return (MemberState::Pending, None);
    };
    let state = MemberState::parse(state).unwrap_or(MemberState::Pending);
    let ms = ms.parse::<i64>().ok().filter(|ms| *ms > 0);
    (state, ms.filter(|_| state != MemberState::Pending))
}

fn parse_status(id: &BatchId, fields: &[(String, String)], total: u64) -> BatchStatus {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
    let count = |name: &str| number(name).map_or(0, |n| u64::try_from(n).unwrap_or(0));
    let (done, dead, cancelled) = (count("done"), count("dead"), count("cancelled"));
    let fired = get("fired").unwrap_or("");
    BatchStatus {
        id: id.clone(),
        kind: if get("kind") == Some("chain") {
            BatchKind::Chain
        } else {
            BatchKind::Batch
        },
        description: get("description").unwrap_or("").to_owned(),
        total,
        pending: total.saturating_sub(done + dead + cancelled),
        done,
        dead,
        cancelled,
        sealed: get("sealed_ms").is_some(),
        created_ms: number("created_ms").unwrap_or(0),
        finished_ms: number("finished_ms"),
        first_dead: get("first_dead").map(|s| JobId::from(s.to_owned())),
        stopped_at: None,
        callbacks: parse_callbacks(get("callbacks").unwrap_or("[]"), fired),
    }
}

/// The callbacks as `batch_open.lua` stored them (entries that do not
/// parse are skipped: another producer may have written them).
fn parse_callbacks(raw: &str, fired: &str) -> Vec<BatchCallbackInfo> {
    crate::followup::stored_follow_ups(raw)
        .into_iter()
        .filter_map(|f| {
            let on = BatchOn::parse(&f.on)?;
            Some(BatchCallbackInfo {
                on,
                queue: f.queue,
                id: f.id,
                job_type: f.job_type,
                fired: fired.contains(on.letter()),
            })
        })
        .collect()
}

impl Admin {
    /// The newest batches and chains over every known queue (at most
    /// `limit`, newest first); expired ones are skipped.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batches(&self, limit: usize) -> Result<Vec<BatchStatus>> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let client = self.client();
        let names = self.queue_names().await?;
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("ZREVRANGE")
                .arg(QueueKeys::new(client.namespace(), name).batches)
                .arg(0)
                .arg(limit - 1)
                .arg("WITHSCORES");
        }
        let lists: Vec<Vec<(Vec<u8>, f64)>> = scripts::run(&mut client.connection(), &pipe)
            .await
            .map_err(Error::redis("list batches"))?;
        let mut all: Vec<(f64, BatchId)> = Vec::new();
        for (name, list) in names.iter().zip(lists) {
            // A member that is not text is no batch id of ours.
            for (uuid, score) in list {
                let Some(uuid) = crate::wire::utf8(uuid) else {
                    continue;
                };
                if let Ok(id) = BatchId::parse(&format!("{name}~{uuid}")) {
                    all.push((score, id));
                }
            }
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.truncate(limit);
        let ids: Vec<BatchId> = all.into_iter().map(|(_, id)| id).collect();
        Ok(client
            .batch_statuses(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_round_trip_and_garbage_does_not_parse() {
        let id = BatchId::new("imports");
        assert_eq!(id.home(), "imports");
        assert_eq!(BatchId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "~", "q~", "~abc", "bad queue~abc", "q~a\"b", "q~a~b"] {
            assert!(BatchId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_states_parse_leniently() {
        assert_eq!(
            parse_member_state(Some("done\"17")),
            (MemberState::Done, Some(17))
        );
        assert_eq!(
            parse_member_state(Some("pending\"0")),
            (MemberState::Pending, None)
        );
        assert_eq!(
            parse_member_state(Some("junk")),
            (MemberState::Pending, None)
        );
        assert_eq!(parse_member_state(None), (MemberState::Pending, None));
    }

    #[test]
    fn callbacks_parse_and_skip_garbage() {
        let raw = r#"[["success","q","id-1",3,"{\"type\":\"t\"}","",0,0],["nope"],7]"#;
        let list = parse_callbacks(raw, "s");
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].on, list[0].job_type.as_str(), list[0].fired),
            (BatchOn::Success, "t", true)
        );
        assert!(parse_callbacks("not json", "").is_empty());
    }
}
