//! The admin API: the read model and repair actions that the dashboard and
//! the CLI are built on (Sidekiq's `api.rb`).
//!
//! Reads are range reads and counters (ZCARD, ZRANGE, and read-only scripts
//! that return a bounded prefix of each listed record), never full scans, so
//! pages stay fast on queues of millions of jobs and of huge jobs; the one
//! exception is finding a *ready* job by id, which walks the list inside
//! Redis one bounded window per script call (`find_ready.lua`). Everything read is decoded per job
//! from bytes, so any record from any producer is listed. Every change goes
//! through a script (`requeue.lua`, `delete.lua`, `delete_ready.lua`,
//! `pause.lua`, `resume.lua`, `clear_ready.lua`, `register_queues.lua`).

mod across;
mod controls;
mod cron;
mod filter;
mod jobs;
mod processes;
mod queues;

pub(crate) use queues::register_queues_cmd;
mod stats;
mod view;

use serde::Serialize;

pub use crate::runtime::ProcessSignal;
pub use across::ACROSS_DEPTH_MAX;
pub use controls::{Breaker, BreakerState, GroupSettings, QueueControls, RateLimit};
pub use cron::CronEntryView;
pub use filter::{FilteredPage, JobFilter, FILTER_TEXT_MAX, SCAN_CHUNK, SCAN_WINDOW_MAX};
pub(crate) use jobs::valid_id;
pub use jobs::{LISTING_BYTES_MAX, LISTING_RECORD_BYTES_MAX, LISTING_RECORD_BYTES_MIN};
pub use processes::{BusyJob, ProcessInfo, ProcessView};
pub use queues::{ForgetQueue, QueueInfo};
pub use stats::{MinuteStats, QueueStats, STATS_MINUTES_MAX};
pub use view::{JobView, LeaseView, RecordSummary, ENCRYPTED_MARKER};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::scripts;

/// Largest page the admin API serves.
pub const PAGE_LIMIT_MAX: usize = 1000;

/// One page of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// Items in the whole listing.
    pub total: u64,
    /// Index of the first item of this page.
    pub offset: u64,
    /// The items.
    pub items: Vec<T>,
}

/// Handle to the admin API; get one with [`Client::admin`].
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::JobSet;
/// let admin = client.admin();
/// for q in admin.queues().await? {
///     println!("{}: {} ready, {} dead, latency {:?}", q.name, q.ready, q.dead, q.latency);
/// }
/// let moved = admin.retry_all("emails", JobSet::Dead).await?;
/// # Ok(()) }
/// ```
///
/// Repairing: look a job up, then act on it where it is. The scheduled,
/// retry and dead sets take [`retry_jobs`](Admin::retry_jobs) (requeue:
/// back to ready now, `requeue.lua`), [`delete_jobs`](Admin::delete_jobs)
/// and their `_all` forms; ready jobs take [`delete_ready`](Admin::delete_ready)
/// and [`clear_ready`](Admin::clear_ready); [`cancel`](Admin::cancel) works
/// wherever the job is, running included. Each returns how many jobs it
/// changed, so a job that moved meanwhile is not touched twice.
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::{CancelResult, JobId, JobSet, JobState};
/// let admin = client.admin().with_actor("alice"); // named in the audit events
///
/// if let Some(job) = admin.job("emails", "0193a1b2-…").await? {
///     println!("{} is {:?}, last error {:?}", job.id, job.state, job.last_error());
///     match job.state {
///         JobState::Dead | JobState::Retry | JobState::Scheduled => {
///             let set = match job.state {
///                 JobState::Dead => JobSet::Dead,
///                 JobState::Retry => JobSet::Retry,
///                 _ => JobSet::Scheduled,
///             };
///             admin.retry_jobs("emails", set, &[job.id.as_str()]).await?; // run it now
///         }
///         JobState::Ready => {
///             admin.delete_ready("emails", job.id.as_str()).await?;
///         }
///         _ => {}
///     }
/// }
/// admin.delete_jobs("emails", JobSet::Dead, &["0193a1b2-…", "0193a1b3-…"]).await?;
/// let cleared = admin.clear_ready("imports").await?; // every ready job of the queue
/// if let CancelResult::Signalled { worker, .. } = admin.cancel(&JobId::from("0193a1b4-…")).await? {
///     println!("running on {worker}: it ends cancelled when its handler stops");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
    actor: std::sync::Arc<str>,
}

/// The actor operator actions name when the caller gives none
/// ([`Admin::with_actor`]).
pub const ACTOR_DEFAULT: &str = "admin-api";

/// Longest actor name kept in events, in bytes.
pub const ACTOR_MAX_BYTES: usize = 200;

impl Admin {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            actor: ACTOR_DEFAULT.into(),
        }
    }

    /// Opens one job's encrypted args with the client's keyring, for a
    /// job page: `None` when the args are not encrypted (or only a prefix
    /// of the record was read, as in listings: [`Admin::job`] reads it
    /// whole). Listings and filters never decrypt.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// if let Some(job) = admin.job("payments", "0193a4c2-7d1e-7b0a-9c1e-3f6d2a9b8c01").await? {
    ///     match admin.reveal_args(&job) {
    ///         Some(Ok(args)) => println!("{}", args.get()),
    ///         Some(Err(e)) => println!("{} ({e})", job.args_text()),
    ///         None => println!("{}", job.args_text()),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn reveal_args(
        &self,
        job: &JobView,
    ) -> Option<std::result::Result<Box<serde_json::value::RawValue>, crate::DecryptError>> {
        let mut record = job.record.clone()?;
        match record.decrypt_args(self.client.keyring()) {
            Ok(true) => Some(Ok(record.args)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// The same handle, naming `actor` (a user, a token's name, `user@host`)
    /// in the audit events of the operator actions it takes: retry, delete,
    /// pause, resume, clear, cancel, run now, event settings. Control
    /// characters are dropped and the name is cut to
    /// [`ACTOR_MAX_BYTES`]; an empty name stands for [`ACTOR_DEFAULT`].
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// let admin = client.admin().with_actor("alice");
    /// admin.pause("emails").await?; // a `paused` event naming alice
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_actor(mut self, actor: &str) -> Self {
        let clean: String = actor.chars().filter(|c| !c.is_control()).collect();
        let clean = crate::wire::truncate_utf8(clean.trim(), ACTOR_MAX_BYTES);
        self.actor = if clean.is_empty() {
            ACTOR_DEFAULT.into()
        } else {
            clean.into()
        };
        self
    }

    /// The actor this handle names in events.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The client this admin handle uses.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Cancels job `id` as [`Client::cancel`] does, naming this handle's
    /// actor in the `cancelled` / `cancel_requested` event and on the job's
    /// timeline.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// use spool_client::{CancelResult, JobId};
    /// match admin.cancel(&JobId::from("0193a1b2-…")).await? {
    ///     CancelResult::Cancelled { queue, from } => println!("cancelled in {queue} (was {from})"),
    ///     CancelResult::Signalled { worker, .. } => println!("{worker} is told to stop it"),
    ///     CancelResult::AlreadyFinished { state, .. } => println!("too late: {state}"),
    ///     CancelResult::NotFound => println!("no such job"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::cancel`].
    pub async fn cancel(&self, id: &crate::JobId) -> Result<crate::CancelResult> {
        let queues = self.queue_names().await?;
        self.client
            .cancel_among(&queues, id.as_str(), &self.actor)
            .await
    }

    /// [`Admin::cancel`] looking only in `queue`.
    ///
    /// # Errors
    /// As [`Client::cancel_in`].
    pub async fn cancel_in(&self, queue: &str, id: &crate::JobId) -> Result<crate::CancelResult> {
        self.client.queue_keys(queue)?;
        self.client
            .cancel_among(&[queue.to_owned()], id.as_str(), &self.actor)
            .await
    }
}

impl Admin {
    /// Runs a pipeline built on [`timed_pipe`] in one round trip (loading
    /// scripts if needed); returns Redis's clock in ms and the other replies.
    async fn run_timed(
        &self,
        pipe: &redis::Pipeline,
        op: &'static str,
    ) -> Result<(i64, std::vec::IntoIter<redis::Value>)> {
        let replies: Vec<redis::Value> = scripts::run(&mut self.client.connection(), pipe)
            .await
            .map_err(Error::redis(op))?;
        let mut it = replies.into_iter();
        let (secs, micros): (i64, i64) =
            redis::from_redis_value(it.next().unwrap_or(redis::Value::Nil))
                .map_err(Error::parse("TIME"))?;
        Ok((secs * 1000 + micros / 1000, it))
    }
}

/// A pipeline whose first command reads Redis's clock, for [`Admin::run_timed`].
fn timed_pipe() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("TIME");
    pipe
}

pub(crate) fn check_page(limit: usize) -> Result<()> {
    if limit == 0 || limit > PAGE_LIMIT_MAX {
        return Err(Error::InvalidArgument(format!(
            "page size must be 1 to {PAGE_LIMIT_MAX}, got {limit}"
        )));
    }
    Ok(())
}
