//! Jobs: paged listings of the ready list and the three sets, one job's
//! detail, and the repair actions (retry now, run now, delete).
//!
//! Listings read a bounded prefix of each record through `peek_ready.lua`
//! and `peek_set.lua` (a page of 10 MiB jobs sends a few KiB per job, within
//! [`LISTING_BYTES_MAX`]); only [`Admin::job`] reads a record whole. Every
//! read is bytes, decoded per job ([`JobView::decode`]), so one record from
//! a buggy producer cannot hide the others.

use super::view::decode_errors;
use super::{check_page, Admin, JobView, LeaseView, Page};
use crate::error::{Error, Result};
use crate::job::{JobId, JobSet, JobState};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::wire::{escape_bytes, parse_lease};

/// Most ready entries examined when looking a job up by id.
const READY_SCAN_MAX: usize = 1_000_000;
/// Ready entries examined per script call when looking a job up by id.
const READY_SCAN_WINDOW: usize = 10_000;
/// Jobs moved or deleted per script call by the "all" actions.
const BULK_ACTION_CHUNK: usize = 1000;

/// Byte budget of one listing page: the records' first bytes read per page
/// (each record gets an equal share, at least [`LISTING_RECORD_BYTES_MIN`]
/// and at most [`LISTING_RECORD_BYTES_MAX`]); error histories get the same
/// share each (longer ones come with texts cut and the oldest entries left
/// out).
pub const LISTING_BYTES_MAX: usize = 1024 * 1024;
/// Most bytes of one record a listing reads; longer records are listed with
/// their first bytes (`truncated`) and read whole by [`Admin::job`].
pub const LISTING_RECORD_BYTES_MAX: usize = 16 * 1024;
/// Fewest bytes of one record a listing reads, whatever the page size.
pub const LISTING_RECORD_BYTES_MIN: usize = 1024;
/// Error text kept per entry when a listed history is over its budget.
const LISTING_ERROR_TEXT_BYTES: usize = 512;

/// Replies of [`Admin::job`]'s pipeline: record, error history and lease
/// (bytes), then the job's score in active, scheduled, retry and dead.
type JobReply = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// The two repair actions on a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Retry,
    Delete,
}

/// Bytes read per record for a page of `limit` jobs.
fn record_budget(limit: usize) -> usize {
    (LISTING_BYTES_MAX / limit.max(1)).clamp(LISTING_RECORD_BYTES_MIN, LISTING_RECORD_BYTES_MAX)
}

fn id_of(raw: &[u8]) -> JobId {
    JobId::from(crate::wire::record_head(raw).map_or("", |h| h.id))
}

pub(crate) fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 200 || id.contains(['"', '\\', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "job id must be 1 to 200 characters without quotes, backslashes or NUL (got {} bytes)",
            id.len()
        )));
    }
    Ok(())
}

/// A listed record: its whole size and its first bytes.
pub(super) type Head = (u64, Vec<u8>);

/// Splits a `peek_ready.lua` reply: the list length and `(size, head)` per job.
pub(super) fn parse_peek_ready(reply: redis::Value) -> Result<(u64, Vec<Head>)> {
    let mut items: Vec<redis::Value> =
        redis::from_redis_value(reply).map_err(Error::parse("peek_ready"))?;
    let mut it = items.drain(..);
    let total: u64 = redis::from_redis_value(it.next().unwrap_or(redis::Value::Int(0)))
        .map_err(Error::parse("peek_ready"))?;
    let mut jobs = Vec::new();
    while let (Some(size), Some(head)) = (it.next(), it.next()) {
        jobs.push((
            redis::from_redis_value(size).map_err(Error::parse("peek_ready"))?,
            redis::from_redis_value(head).map_err(Error::parse("peek_ready"))?,
        ));
    }
    Ok((total, jobs))
}

impl Admin {
    /// A page of ready jobs in the order they will be fetched (next first).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`] for a page
    /// size over [`PAGE_LIMIT_MAX`](super::PAGE_LIMIT_MAX), [`Error::Redis`].
    pub async fn list_ready(
        &self,
        queue: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Page<JobView>> {
        check_page(limit)?;
        let k = self.client.queue_keys(queue)?;
        let mut cmd = SCRIPTS.peek_ready.cmd(&[&k.ready]);
        cmd.arg(offset).arg(limit).arg(record_budget(limit));
        let reply = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("list ready"))?;
        let (total, jobs) = parse_peek_ready(reply)?;
        let items = jobs
            .into_iter()
            .map(|(size, raw)| {
                JobView::decode(id_of(&raw), queue, JobState::Ready, None, raw, size)
            })
            .collect();
        Ok(Page {
            total,
            offset,
            items,
        })
    }

    /// A page of one job set. Scheduled and retry jobs come soonest first,
    /// dead jobs most recent first.
    ///
    /// # Errors
    /// As [`Admin::list_ready`].
    pub async fn list_set(
        &self,
        queue: &str,
        set: JobSet,
        offset: u64,
        limit: usize,
    ) -> Result<Page<JobView>> {
        check_page(limit)?;
        let k = self.client.queue_keys(queue)?;
        let mut cmd = SCRIPTS
            .peek_set
            .cmd(&[k.set(set), k.jobs.as_str(), k.errors.as_str()]);
        cmd.arg(offset)
            .arg(offset.saturating_add(limit as u64 - 1))
            .arg(if set == JobSet::Dead { "1" } else { "0" })
            .arg(record_budget(limit))
            .arg(record_budget(limit))
            .arg(LISTING_ERROR_TEXT_BYTES);
        let reply: Vec<redis::Value> = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("list set"))?;
        let mut it = reply.into_iter();
        let total: u64 = redis::from_redis_value(it.next().unwrap_or(redis::Value::Int(0)))
            .map_err(Error::parse("peek_set"))?;
        let mut items = Vec::new();
        while let (Some(id), Some(score), Some(size), Some(head), Some(errors)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        {
            let parse = Error::parse("peek_set");
            let id: Vec<u8> = redis::from_redis_value(id).map_err(Error::parse("peek_set"))?;
            let score: f64 = redis::from_redis_value(score).map_err(Error::parse("peek_set"))?;
            let size: u64 = redis::from_redis_value(size).map_err(Error::parse("peek_set"))?;
            let head: Option<Vec<u8>> = redis::from_redis_value(head).map_err(parse)?;
            let errors: Option<Vec<u8>> =
                redis::from_redis_value(errors).map_err(Error::parse("peek_set"))?;
            // A record that vanished between ZRANGE and HGET is skipped.
            let Some(head) = head else { continue };
            let id = String::from_utf8(id).unwrap_or_else(|e| escape_bytes(e.as_bytes()));
            #[allow(clippy::cast_possible_truncation)]
            let at = Some(score as i64);
            let mut v = JobView::decode(JobId::from(id), queue, set.state(), at, head, size);
            v.errors = decode_errors(errors.as_deref());
            items.push(v);
        }
        Ok(Page {
            total,
            offset,
            items,
        })
    }

    /// Everything about one job, wherever it is; `None` when it is gone
    /// (done, deleted, or never existed). Ready jobs are found by walking the
    /// ready list in chunks (at most 1,000,000 entries).
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// if let Some(job) = admin.job("emails", "01J9Z8…").await? {
    ///     println!("{} is {} ({:?} attempts)", job.id, job.state, job.attempts());
    ///     if let Some(e) = job.last_error() {
    ///         println!("last error: {}", e.error);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`] for a malformed
    /// id, [`Error::Redis`].
    pub async fn job(&self, queue: &str, id: &str) -> Result<Option<JobView>> {
        valid_id(id)?;
        let k = self.client.queue_keys(queue)?;
        let mut pipe = redis::pipe();
        for hash in [&k.jobs, &k.errors, &k.leases] {
            pipe.cmd("HGET").arg(hash).arg(id);
        }
        for set in [&k.active, &k.scheduled, &k.retry, &k.dead] {
            pipe.cmd("ZSCORE").arg(set).arg(id);
        }
        let (raw, errors, lease, active, scheduled, retry, dead): JobReply = pipe
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("job"))?;
        // A lease's deadline is its claim's (`scripts/prelude.lua`,
        // "Claims"); a lease from before claims has its own member.
        let active = match (active, lease.as_deref().and_then(parse_lease)) {
            (None, Some(l)) => match l.claim() {
                Some(claim) => redis::cmd("ZSCORE")
                    .arg(&k.active)
                    .arg(claim)
                    .query_async(&mut self.client.connection())
                    .await
                    .map_err(Error::redis("job"))?,
                None => None,
            },
            (active, _) => active,
        };
        #[allow(clippy::cast_possible_truncation)]
        let placed = [
            (active, JobState::Active),
            (scheduled, JobState::Scheduled),
            (retry, JobState::Retry),
            (dead, JobState::Dead),
        ]
        .into_iter()
        .find_map(|(score, state)| score.map(|s| (state, s as i64)));
        let (raw, state, at) = match (raw, placed) {
            (Some(raw), Some((state, at))) => (raw, state, Some(at)),
            _ => match self.find_ready(&k, id).await? {
                Some(raw) => (raw, JobState::Ready, None),
                None => return Ok(None),
            },
        };
        let size = raw.len() as u64;
        let mut v = JobView::decode(JobId::from(id), queue, state, at, raw, size);
        v.errors = decode_errors(errors.as_deref());
        if state == JobState::Active {
            v.lease = lease
                .as_deref()
                .and_then(parse_lease)
                .map(|lease| LeaseView {
                    token: lease.token.to_owned(),
                    worker: lease.worker.to_owned(),
                    deadline_ms: at,
                    started_ms: lease.started_ms,
                });
        }
        Ok(Some(v))
    }

    /// Finds a ready job's whole record by id (`find_ready.lua`).
    pub(crate) async fn find_ready(&self, k: &QueueKeys, id: &str) -> Result<Option<Vec<u8>>> {
        let found: Option<Option<Vec<u8>>> = self
            .walk_ready(
                &SCRIPTS.find_ready,
                &[&k.ready],
                &[],
                id,
                "find ready",
                Option::is_some,
            )
            .await?;
        Ok(found.flatten())
    }

    /// Calls `find_ready.lua` or `delete_ready.lua` on one window of the
    /// ready list after another, from the fetch end, until `hit` holds for
    /// its answer, the list ends or [`READY_SCAN_MAX`] entries were examined.
    /// One script call per window lets Redis serve other clients in between.
    /// `keys` start with the ready list; `extra` ARGV follow the window.
    pub(crate) async fn walk_ready<T: redis::FromRedisValue>(
        &self,
        script: &scripts::LuaScript,
        keys: &[&str],
        extra: &[&str],
        id: &str,
        op: &'static str,
        hit: impl Fn(&T) -> bool,
    ) -> Result<Option<T>> {
        let mut from = 0;
        while from < READY_SCAN_MAX {
            let mut cmd = script.cmd(keys);
            cmd.arg(id).arg(from).arg(READY_SCAN_WINDOW).arg(extra);
            let (answer, seen): (T, usize) = scripts::run(&mut self.client.connection(), &cmd)
                .await
                .map_err(Error::redis(op))?;
            if hit(&answer) {
                return Ok(Some(answer));
            }
            if seen < READY_SCAN_WINDOW {
                break;
            }
            from += seen;
        }
        Ok(None)
    }

    /// Moves jobs of a set to ready now: retry from dead, retry now, run a
    /// scheduled job now. A job already moved (double click) is not moved
    /// twice. Returns how many moved.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// use spool_client::JobSet;
    /// // Retry every dead job of "emails" whose error mentions the SMTP outage.
    /// let filter = spool_client::admin::JobFilter::new(None, Some("smtp timeout"))?;
    /// let (ids, _more) = admin.matching_ids("emails", JobSet::Dead, &filter, 100_000).await?;
    /// let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    /// let moved = admin.retry_jobs("emails", JobSet::Dead, &ids).await?;
    /// println!("{moved} jobs back in ready");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`], [`Error::Redis`].
    pub async fn retry_jobs(&self, queue: &str, set: JobSet, ids: &[&str]) -> Result<u64> {
        self.set_action(Action::Retry, queue, set, Some(ids)).await
    }

    /// Moves every job of a set to ready, oldest first, 1,000 per script
    /// call: at most as many as the set held when called, so a job that a
    /// running worker sends straight back (it fails again) is not chased.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn retry_all(&self, queue: &str, set: JobSet) -> Result<u64> {
        self.set_action(Action::Retry, queue, set, None).await
    }

    /// Deletes jobs from a set. Returns how many were there.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// let gone = admin.delete_jobs("emails", spool_client::JobSet::Dead, &["01J9Z8…"]).await?;
    /// assert!(gone <= 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Admin::retry_jobs`].
    pub async fn delete_jobs(&self, queue: &str, set: JobSet, ids: &[&str]) -> Result<u64> {
        self.set_action(Action::Delete, queue, set, Some(ids)).await
    }

    /// Deletes every job of a set, 1,000 per script call (at most as many as
    /// the set held when called).
    ///
    /// # Errors
    /// As [`Admin::retry_all`].
    pub async fn delete_all(&self, queue: &str, set: JobSet) -> Result<u64> {
        self.set_action(Action::Delete, queue, set, None).await
    }

    /// Applies `requeue.lua` or `delete.lua` to the given ids (in chunks of
    /// [`BULK_ACTION_CHUNK`]), or with `None` to the whole set, oldest first,
    /// as many jobs as it held at the start (or until a call finds nothing
    /// left). Returns how many jobs it applied to.
    async fn set_action(
        &self,
        action: Action,
        queue: &str,
        set: JobSet,
        ids: Option<&[&str]>,
    ) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        let (script, keys, op) = match action {
            Action::Retry => (
                &SCRIPTS.requeue,
                vec![
                    k.set(set),
                    &k.jobs,
                    &k.ready,
                    &k.wake,
                    &k.history,
                    &k.outcomes,
                    &k.events,
                    &k.settings,
                ],
                "requeue",
            ),
            Action::Delete => (
                &SCRIPTS.delete,
                [[k.set(set), &k.jobs, &k.errors].as_slice(), &k.removing()].concat(),
                "delete",
            ),
        };
        // Both scripts start with the actor and the selection (for the
        // events); then requeue.lua's argument names the set (a timeline's
        // first state), delete.lua's is the channel its waiters hear on.
        let channel = self.client.global_keys().finished_channel.clone();
        let selection = match ids {
            Some(ids) => format!("{} selected in {}", ids.len(), set.as_str()),
            None => format!("all in {}", set.as_str()),
        };
        let lead: &[&str] = match action {
            Action::Retry => &[self.actor(), &selection, set.as_str()],
            Action::Delete => &[self.actor(), &selection, &channel],
        };
        let keys = keys.as_slice();
        let mut done = 0;
        if let Some(ids) = ids {
            ids.iter().try_for_each(|id| valid_id(id))?;
            for chunk in ids.chunks(BULK_ACTION_CHUNK) {
                let mut cmd = script.cmd(keys);
                cmd.arg(lead).arg(chunk);
                done += self.write(&cmd, op).await?;
            }
            return Ok(done);
        }
        let held: u64 = redis::cmd("ZCARD")
            .arg(keys[0])
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis(op))?;
        while done < held {
            let mut cmd = script.cmd(keys);
            let chunk = (held - done).min(BULK_ACTION_CHUNK as u64);
            cmd.arg(lead).arg("*").arg(chunk);
            let n = self.write(&cmd, op).await?;
            done += n;
            if n == 0 {
                break;
            }
        }
        Ok(done)
    }

    /// Deletes one ready job (found as by [`Admin::job`]). Returns whether it
    /// was still there.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// if !admin.delete_ready("emails", "01J9Z8…").await? {
    ///     println!("already fetched, or never there");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Admin::job`].
    pub async fn delete_ready(&self, queue: &str, id: &str) -> Result<bool> {
        valid_id(id)?;
        let k = self.client.queue_keys(queue)?;
        let removed: Option<u64> = self
            .walk_ready(
                &SCRIPTS.delete_ready,
                &[[k.ready.as_str()].as_slice(), &k.removing()].concat(),
                &[&self.client.global_keys().finished_channel, self.actor()],
                id,
                "delete ready",
                |n| *n > 0,
            )
            .await?;
        Ok(removed.is_some())
    }
}
