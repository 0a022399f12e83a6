//! Jobs: paged listings of the ready list and the three sets, one job's
//! detail, and the repair actions (retry now, run now, delete).

use serde::Serialize;

use super::{check_page, Admin, Page};
use crate::error::{Error, Result};
use crate::job::{ErrorEntry, JobId, JobRecord, JobSet, JobState};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};

/// Ready-list entries examined per round trip when looking a ready job up by id.
const READY_SCAN_CHUNK: isize = 1000;
/// Most ready entries examined when looking a job up by id.
const READY_SCAN_MAX: isize = 1_000_000;
/// Jobs moved or deleted per script call by the "all" actions.
const BULK_ACTION_CHUNK: usize = 1000;

/// Who holds a running job.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LeaseView {
    /// The lease fence.
    pub token: String,
    /// The worker process id.
    pub worker: String,
    /// Lease deadline (Redis ms).
    pub deadline_ms: Option<i64>,
}

/// A job as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Job id.
    pub id: JobId,
    /// Queue.
    pub queue: String,
    /// Where the job is.
    pub state: JobState,
    /// Run-at (scheduled), retry-at (retry), died-at (dead) or lease deadline
    /// (active), in Redis ms.
    pub at_ms: Option<i64>,
    /// The decoded record; `None` for an entry that is not a Spool record.
    pub record: Option<JobRecord>,
    /// The stored JSON exactly as in Redis.
    pub raw: String,
    /// Error history, oldest first.
    pub errors: Vec<ErrorEntry>,
    /// Lease holder while active.
    pub lease: Option<LeaseView>,
}

impl JobView {
    /// The job type, or `"?"` for an entry that is not a Spool record.
    #[must_use]
    pub fn job_type(&self) -> &str {
        self.record.as_ref().map_or("?", |r| r.job_type.as_str())
    }

    /// The most recent error, if any.
    #[must_use]
    pub fn last_error(&self) -> Option<&ErrorEntry> {
        self.errors.last()
    }
}

fn decode_errors(raw: Option<String>) -> Vec<ErrorEntry> {
    raw.and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default()
}

fn view(
    id: JobId,
    queue: &str,
    state: JobState,
    at_ms: Option<i64>,
    raw: String,
    errors: Option<String>,
) -> JobView {
    JobView {
        id,
        queue: queue.to_owned(),
        state,
        at_ms,
        record: JobRecord::from_json(&raw).ok(),
        raw,
        errors: decode_errors(errors),
        lease: None,
    }
}

fn id_of(raw: &str) -> JobId {
    JobId::from(
        raw.strip_prefix("{\"id\":\"")
            .and_then(|r| r.split('"').next())
            .unwrap_or(""),
    )
}

fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 200 || id.contains(['"', '\\', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "job id must be 1 to 200 characters without quotes, backslashes or NUL (got {} bytes)",
            id.len()
        )));
    }
    Ok(())
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
        let start = -(isize::try_from(offset).unwrap_or(isize::MAX - 2000)) - 1;
        let stop = start - isize::try_from(limit).unwrap_or(1) + 1;
        let (total, mut raws): (u64, Vec<String>) = redis::pipe()
            .cmd("LLEN")
            .arg(&k.ready)
            .cmd("LRANGE")
            .arg(&k.ready)
            .arg(stop)
            .arg(start)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("list ready"))?;
        raws.reverse();
        let items = raws
            .into_iter()
            .map(|raw| view(id_of(&raw), queue, JobState::Ready, None, raw, None))
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
        let key = k.set(set);
        let start = offset;
        let stop = offset + limit as u64 - 1;
        let range = if set == JobSet::Dead {
            "ZREVRANGE"
        } else {
            "ZRANGE"
        };
        let (total, entries): (u64, Vec<(String, f64)>) = redis::pipe()
            .cmd("ZCARD")
            .arg(key)
            .cmd(range)
            .arg(key)
            .arg(start)
            .arg(stop)
            .arg("WITHSCORES")
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("list set"))?;
        let items = self.views(&k, set.state(), entries).await?;
        Ok(Page {
            total,
            offset,
            items,
        })
    }

    /// Builds views for `(id, score)` pairs of one set, reading records and
    /// error histories in one round trip. Ids whose record vanished meanwhile
    /// are skipped.
    async fn views(
        &self,
        k: &QueueKeys,
        state: JobState,
        entries: Vec<(String, f64)>,
    ) -> Result<Vec<JobView>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
        let (records, errors): (Vec<Option<String>>, Vec<Option<String>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&k.jobs)
            .arg(&ids)
            .cmd("HMGET")
            .arg(&k.errors)
            .arg(&ids)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("HMGET jobs"))?;
        Ok(entries
            .into_iter()
            .zip(records.into_iter().zip(errors))
            .filter_map(|((id, score), (raw, errs))| {
                #[allow(clippy::cast_possible_truncation)]
                let at = score as i64;
                raw.map(|raw| view(JobId::from(id), &k.queue, state, Some(at), raw, errs))
            })
            .collect())
    }

    /// Everything about one job, wherever it is; `None` when it is gone
    /// (done, deleted, or never existed). Ready jobs are found by walking the
    /// ready list in chunks (at most 1,000,000 entries).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`] for a malformed
    /// id, [`Error::Redis`].
    pub async fn job(&self, queue: &str, id: &str) -> Result<Option<JobView>> {
        valid_id(id)?;
        let k = self.client.queue_keys(queue)?;
        #[allow(clippy::type_complexity)]
        let (raw, errors, lease, active, scheduled, retry, dead): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        ) = redis::pipe()
            .cmd("HGET")
            .arg(&k.jobs)
            .arg(id)
            .cmd("HGET")
            .arg(&k.errors)
            .arg(id)
            .cmd("HGET")
            .arg(&k.leases)
            .arg(id)
            .cmd("ZSCORE")
            .arg(&k.active)
            .arg(id)
            .cmd("ZSCORE")
            .arg(&k.scheduled)
            .arg(id)
            .cmd("ZSCORE")
            .arg(&k.retry)
            .arg(id)
            .cmd("ZSCORE")
            .arg(&k.dead)
            .arg(id)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("job"))?;
        #[allow(clippy::cast_possible_truncation)]
        let placed = [
            (active, JobState::Active),
            (scheduled, JobState::Scheduled),
            (retry, JobState::Retry),
            (dead, JobState::Dead),
        ]
        .into_iter()
        .find_map(|(score, state)| score.map(|s| (state, s as i64)));
        if let (Some(raw), Some((state, at))) = (raw, placed) {
            let mut v = view(JobId::from(id), queue, state, Some(at), raw, errors);
            if state == JobState::Active {
                // A leased record does not count the run in progress yet.
                if let Some(r) = v.record.as_mut() {
                    r.attempt += 1;
                }
                if let Some((token, worker)) = lease.as_deref().and_then(|l| l.split_once('|')) {
                    v.lease = Some(LeaseView {
                        token: token.to_owned(),
                        worker: worker.to_owned(),
                        deadline_ms: Some(at),
                    });
                }
            }
            return Ok(Some(v));
        }
        Ok(self
            .find_ready(&k, id)
            .await?
            .map(|raw| view(JobId::from(id), queue, JobState::Ready, None, raw, errors)))
    }

    /// Walks the ready list from the fetch end looking for `id`.
    async fn find_ready(&self, k: &QueueKeys, id: &str) -> Result<Option<String>> {
        let prefix = format!("{{\"id\":\"{id}\",");
        let mut conn = self.client.conn();
        let mut start: isize = -1;
        while -start <= READY_SCAN_MAX {
            let stop = start - READY_SCAN_CHUNK + 1;
            let chunk: Vec<String> = redis::cmd("LRANGE")
                .arg(&k.ready)
                .arg(stop)
                .arg(start)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("LRANGE ready"))?;
            if let Some(found) = chunk.iter().find(|r| r.starts_with(&prefix)) {
                return Ok(Some(found.clone()));
            }
            if chunk.len() < READY_SCAN_CHUNK.unsigned_abs() {
                break;
            }
            start = stop - 1;
        }
        Ok(None)
    }

    /// Moves jobs of a set to ready now: retry from dead, retry now, run a
    /// scheduled job now. A job already moved (double click) is not moved
    /// twice. Returns how many moved.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`], [`Error::Redis`].
    pub async fn retry_jobs(&self, queue: &str, set: JobSet, ids: &[&str]) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        ids.iter().try_for_each(|id| valid_id(id))?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut moved = 0;
        for chunk in ids.chunks(BULK_ACTION_CHUNK) {
            let mut cmd = SCRIPTS
                .requeue
                .cmd(&[k.set(set), &k.jobs, &k.ready, &k.wake]);
            cmd.arg(chunk);
            moved += scripts::run::<u64>(&mut self.client.conn(), &cmd)
                .await
                .map_err(Error::redis("requeue"))?;
        }
        Ok(moved)
    }

    /// Moves every job of a set to ready, oldest first, 1,000 per script call.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn retry_all(&self, queue: &str, set: JobSet) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        let mut moved = 0;
        loop {
            let mut cmd = SCRIPTS
                .requeue
                .cmd(&[k.set(set), &k.jobs, &k.ready, &k.wake]);
            cmd.arg("*").arg(BULK_ACTION_CHUNK);
            let n: u64 = scripts::run(&mut self.client.conn(), &cmd)
                .await
                .map_err(Error::redis("requeue"))?;
            moved += n;
            if n == 0 {
                return Ok(moved);
            }
        }
    }

    /// Deletes jobs from a set. Returns how many were there.
    ///
    /// # Errors
    /// As [`Admin::retry_jobs`].
    pub async fn delete_jobs(&self, queue: &str, set: JobSet, ids: &[&str]) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        ids.iter().try_for_each(|id| valid_id(id))?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut deleted = 0;
        for chunk in ids.chunks(BULK_ACTION_CHUNK) {
            let mut cmd = SCRIPTS.delete.cmd(&[k.set(set), &k.jobs, &k.errors]);
            cmd.arg(chunk);
            deleted += scripts::run::<u64>(&mut self.client.conn(), &cmd)
                .await
                .map_err(Error::redis("delete"))?;
        }
        Ok(deleted)
    }

    /// Deletes every job of a set, 1,000 per script call.
    ///
    /// # Errors
    /// As [`Admin::retry_all`].
    pub async fn delete_all(&self, queue: &str, set: JobSet) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        let mut deleted = 0;
        loop {
            let mut cmd = SCRIPTS.delete.cmd(&[k.set(set), &k.jobs, &k.errors]);
            cmd.arg("*").arg(BULK_ACTION_CHUNK);
            let n: u64 = scripts::run(&mut self.client.conn(), &cmd)
                .await
                .map_err(Error::redis("delete"))?;
            deleted += n;
            if n == 0 {
                return Ok(deleted);
            }
        }
    }

    /// Deletes one ready job (found as by [`Admin::job`]). Returns whether it
    /// was still there.
    ///
    /// # Errors
    /// As [`Admin::job`].
    pub async fn delete_ready(&self, queue: &str, id: &str) -> Result<bool> {
        valid_id(id)?;
        let k = self.client.queue_keys(queue)?;
        let Some(raw) = self.find_ready(&k, id).await? else {
            return Ok(false);
        };
        let removed: u64 = redis::cmd("LREM")
            .arg(&k.ready)
            .arg(1)
            .arg(raw)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("LREM ready"))?;
        Ok(removed > 0)
    }
}
