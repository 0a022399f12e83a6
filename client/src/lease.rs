//! The runtime protocol: leased fetch, fenced completion, lease extension,
//! hand-back, reaping, promotion, retention and process registration.
//!
//! Runtime protocol, not for application code: `spool-worker` drives these
//! calls; they are public so the worker never builds a key or a Redis command
//! itself. Every state change is one script call (see `scripts/`), and every
//! call that touches a leased job presents its [`LeaseToken`]: a worker whose
//! lease expired and whose job went to someone else changes nothing.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::{JobId, JobRecord};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};

/// The fence of one lease: a per-queue counter value issued by `fetch.lua`.
/// Ack, fail, extend and release only act while the job's lease still
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// The token as sent to Redis.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
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
    /// holds a readable reason when the stored JSON does not decode (wrong
    /// shape written by another producer).
    pub record: std::result::Result<JobRecord, String>,
    /// Redis's clock when the lease was taken (ms).
    pub leased_at_ms: i64,
}

/// What to do with a finished job.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The handler succeeded: remove the job.
    Ack,
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
    /// The lease was no longer ours: nothing changed.
    LeaseLost,
}

/// What one promotion call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoteReport {
    /// Jobs moved from scheduled/retry to ready.
    pub moved: u64,
    /// Time until the next scheduled or retry job is due, if any.
    pub next_due: Option<Duration>,
}

/// What one reaper call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReapReport {
    /// Expired leases whose jobs went back to ready.
    pub to_ready: u64,
    /// Expired leases whose jobs had no attempts left and went to dead.
    pub to_dead: u64,
}

/// What one retention call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrimReport {
    /// Dead jobs removed (age or size cap).
    pub dead_removed: u64,
    /// Per-minute stats fields removed.
    pub stats_removed: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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

/// Reads the id from a record's script-owned prefix `{"id":"…",`.
fn record_id(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix("{\"id\":\"")?;
    rest.split('"').next()
}

impl Client {
    /// Claims up to `max` jobs from `keys`'s queue with a lease of `lease`
    /// for `worker_id`. Returns nothing when the queue is empty or paused.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn fetch(
        &self,
        keys: &Arc<QueueKeys>,
        max: usize,
        lease: Duration,
        worker_id: &str,
    ) -> Result<Vec<LeasedJob>> {
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
        ]);
        cmd.arg(max.max(1))
            .arg(ms(lease))
            .arg(worker_id.replace('|', "_"));
        let reply: Vec<redis::Value> = scripts::run(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("fetch"))?;
        let mut items = reply.into_iter();
        let now: i64 = match items.next() {
            Some(v) => redis::from_redis_value(v).map_err(Error::parse("fetch"))?,
            None => return Ok(Vec::new()),
        };
        let mut jobs = Vec::new();
        while let (Some(token), Some(raw)) = (items.next(), items.next()) {
            let token: String = redis::from_redis_value(token).map_err(Error::parse("fetch"))?;
            let raw: String = redis::from_redis_value(raw).map_err(Error::parse("fetch"))?;
            let id = JobId::from(record_id(&raw).unwrap_or_default());
            // The stored record counts the runs before this one.
            let record = JobRecord::from_json(&raw)
                .map(|mut r| {
                    r.attempt += 1;
                    r
                })
                .map_err(|e| {
                    format!("unparsable payload: the job record does not have Spool's shape ({e})")
                });
            jobs.push(LeasedJob {
                keys: Arc::clone(keys),
                id,
                token: LeaseToken(token),
                record,
                leased_at_ms: now,
            });
        }
        Ok(jobs)
    }

    /// Applies completions in one round trip: acks of one queue share one
    /// `ack.lua` call; each failure is one `fail.lua` call. Results are in
    /// input order.
    ///
    /// # Errors
    /// [`Error::Redis`]; then nothing is known about which completions landed,
    /// and retrying is safe (a second ack of the same lease is `LeaseLost`).
    pub async fn complete(&self, batch: &[Completion]) -> Result<Vec<Applied>> {
        let retention = self.retention();
        let mut pipe = redis::pipe();
        // (queue ack group) → indexes into `batch`, in the order pipelined.
        let mut plan: Vec<Vec<usize>> = Vec::new();
        let acks = batch
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.outcome, Outcome::Ack))
            .map(|(i, c)| (i, &c.keys));
        for (keys, idx) in by_queue(acks) {
            let mut cmd = SCRIPTS.ack.cmd(&[
                &keys.active,
                &keys.jobs,
                &keys.leases,
                &keys.errors,
                &keys.stats,
            ]);
            for &i in &idx {
                cmd.arg(batch[i].id.as_str()).arg(batch[i].token.as_str());
            }
            pipe.add_command(cmd);
            plan.push(idx);
        }
        for (i, c) in batch.iter().enumerate() {
            let (mode, delay, error) = match &c.outcome {
                Outcome::Ack => continue,
                Outcome::Retry { delay, error } => ("retry", ms(*delay), error),
                Outcome::Dead { error } => ("dead", 0, error),
            };
            let k = &c.keys;
            let mut cmd = SCRIPTS.fail.cmd(&[
                &k.active, &k.jobs, &k.leases, &k.errors, &k.retry, &k.dead, &k.stats,
            ]);
            cmd.arg(c.id.as_str())
                .arg(c.token.as_str())
                .arg(mode)
                .arg(delay)
                .arg(error.as_str())
                .arg(retention.dead_max_jobs)
                .arg(retention.error_history);
            pipe.add_command(cmd);
            plan.push(vec![i]);
        }
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<redis::Value> = scripts::run_pipeline(&mut self.conn(), &pipe)
            .await
            .map_err(Error::redis("complete"))?;
        let mut out = vec![Applied::LeaseLost; batch.len()];
        for (reply, idx) in replies.into_iter().zip(plan) {
            if idx.len() == 1 && !matches!(batch[idx[0]].outcome, Outcome::Ack) {
                let code: i64 = redis::from_redis_value(reply).map_err(Error::parse("fail"))?;
                out[idx[0]] = match code {
                    1 => Applied::Retrying,
                    2 => Applied::Dead,
                    _ => Applied::LeaseLost,
                };
            } else {
                let codes: Vec<i64> =
                    redis::from_redis_value(reply).map_err(Error::parse("ack"))?;
                for (code, i) in codes.into_iter().zip(idx) {
                    out[i] = if code == 1 {
                        Applied::Acked
                    } else {
                        Applied::LeaseLost
                    };
                }
            }
        }
        Ok(out)
    }

    /// Extends the leases of running jobs to Redis's clock + `lease`, one
    /// `extend.lua` call per queue, all in one round trip. Returns the ids
    /// whose lease was lost (their handlers must stop).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn extend(
        &self,
        lease: Duration,
        jobs: &[(Arc<QueueKeys>, JobId, LeaseToken)],
    ) -> Result<Vec<JobId>> {
        let groups = by_queue(jobs.iter().enumerate().map(|(i, (keys, _, _))| (i, keys)));
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (keys, idx) in &groups {
            let mut cmd = SCRIPTS.extend.cmd(&[&keys.active, &keys.leases]);
            cmd.arg(ms(lease));
            for &i in idx {
                cmd.arg(jobs[i].1.as_str()).arg(jobs[i].2.as_str());
            }
            pipe.add_command(cmd);
        }
        let lost: Vec<Vec<String>> = scripts::run_pipeline(&mut self.conn(), &pipe)
            .await
            .map_err(Error::redis("extend"))?;
        Ok(lost.into_iter().flatten().map(JobId::from).collect())
    }

    /// Hands leased jobs back to ready at once (graceful shutdown). Their
    /// attempt is not counted. Returns how many went back.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn release(&self, jobs: &[(Arc<QueueKeys>, JobId, LeaseToken)]) -> Result<u64> {
        let groups = by_queue(jobs.iter().enumerate().map(|(i, (keys, _, _))| (i, keys)));
        if groups.is_empty() {
            return Ok(0);
        }
        // One release.lua call per queue, all in one round trip.
        let mut pipe = redis::pipe();
        for (keys, idx) in &groups {
            let mut cmd = SCRIPTS.release.cmd(&[
                &keys.active,
                &keys.jobs,
                &keys.leases,
                &keys.ready,
                &keys.wake,
            ]);
            for &i in idx {
                cmd.arg(jobs[i].1.as_str()).arg(jobs[i].2.as_str());
            }
            pipe.add_command(cmd);
        }
        let released: Vec<u64> = scripts::run_pipeline(&mut self.conn(), &pipe)
            .await
            .map_err(Error::redis("release"))?;
        Ok(released.into_iter().sum())
    }

    /// Returns up to `limit` jobs whose lease expired to ready (or dead when
    /// that was their last attempt).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn reap(&self, keys: &QueueKeys, limit: usize) -> Result<ReapReport> {
        let retention = self.retention();
        let mut cmd = SCRIPTS.reap.cmd(&[
            &keys.active,
            &keys.jobs,
            &keys.leases,
            &keys.errors,
            &keys.ready,
            &keys.dead,
            &keys.wake,
            &keys.stats,
        ]);
        cmd.arg(limit.max(1))
            .arg(retention.dead_max_jobs)
            .arg(retention.error_history);
        let (to_ready, to_dead): (u64, u64) = scripts::run(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("reap"))?;
        Ok(ReapReport { to_ready, to_dead })
    }

    /// Moves due scheduled and retry jobs (up to `limit` per set) to ready.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn promote(&self, keys: &QueueKeys, limit: usize) -> Result<PromoteReport> {
        let mut cmd = SCRIPTS.promote.cmd(&[
            &keys.scheduled,
            &keys.retry,
            &keys.jobs,
            &keys.ready,
            &keys.wake,
        ]);
        cmd.arg(limit.max(1));
        let (moved, next): (u64, i64) = scripts::run(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("promote"))?;
        Ok(PromoteReport {
            moved,
            next_due: u64::try_from(next).ok().map(Duration::from_millis),
        })
    }

    /// Applies retention to one queue: dead set caps and the stats window.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn trim(&self, keys: &QueueKeys) -> Result<TrimReport> {
        let r = self.retention();
        let mut cmd = SCRIPTS
            .trim
            .cmd(&[&keys.dead, &keys.jobs, &keys.errors, &keys.stats]);
        cmd.arg(r.dead_max_jobs)
            .arg(ms(r.dead_max_age))
            .arg(ms(r.stats_window))
            .arg(1000);
        let (dead_removed, stats_removed): (u64, u64) = scripts::run(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("trim"))?;
        Ok(TrimReport {
            dead_removed,
            stats_removed,
        })
    }

    /// Registers (or refreshes) a worker process for `ttl`. `info` and `busy`
    /// are JSON documents (see `docs/PROTOCOL.md`). Returns Redis's clock.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn heartbeat(
        &self,
        process_id: &str,
        info: &str,
        busy: &str,
        ttl: Duration,
    ) -> Result<i64> {
        let g = self.global_keys();
        let mut cmd = SCRIPTS
            .heartbeat
            .cmd(&[&g.processes, &g.process(process_id)]);
        cmd.arg(process_id).arg(info).arg(busy).arg(ms(ttl).max(1));
        scripts::run(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("heartbeat"))
    }

    /// Removes a worker process's registration (clean shutdown).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn unregister(&self, process_id: &str) -> Result<()> {
        let g = self.global_keys();
        let mut cmd = SCRIPTS
            .heartbeat
            .cmd(&[&g.processes, &g.process(process_id)]);
        cmd.arg(process_id).arg("").arg("").arg("stop");
        scripts::run::<i64>(&mut self.conn(), &cmd)
            .await
            .map_err(Error::redis("heartbeat"))?;
        Ok(())
    }

    /// Blocks on the queue's wake list for up to `timeout` (on a dedicated
    /// connection from [`Client::dedicated_connection`]). Returns true when a
    /// token arrived: jobs were enqueued, promoted or handed back.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn wait_for_wake(
        conn: &mut MultiplexedConnection,
        keys: &QueueKeys,
        timeout: Duration,
    ) -> Result<bool> {
        let secs = timeout.as_secs_f64().max(0.01);
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&keys.wake)
            .arg(secs)
            .query_async(conn)
            .await
            .map_err(Error::redis("BLPOP wake"))?;
        Ok(popped.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::record_id;

    #[test]
    fn record_id_reads_the_prefix() {
        assert_eq!(record_id(r#"{"id":"abc","attempt":1}"#), Some("abc"));
        assert_eq!(record_id("garbage"), None);
    }
}
