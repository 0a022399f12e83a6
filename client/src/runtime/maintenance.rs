//! Maintenance calls: due scheduled and retry jobs to ready (`promote.lua`),
//! expired leases back to ready or dead (`reap.lua`), and retention of the
//! dead set and the stats window (`trim.lua`). Runtime protocol, not for
//! application code: the worker's scheduler, reaper and trimmer call these.

use std::time::Duration;

use super::Runtime;
use crate::enqueue::duration_ms;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};

/// Stats fields removed per `trim.lua` call.
const TRIM_STATS_BATCH: u64 = 1000;

/// What one promotion call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoteReport {
    /// Jobs moved from scheduled/retry to ready.
    pub moved: u64,
    /// Time until the next scheduled or retry job is due, if any.
    pub next_due: Option<Duration>,
    /// Triggered follow-ups waiting in the queue's outbox
    /// ([`Runtime::move_follow_ups`]).
    pub follow_ups: u64,
}

/// What one reaper call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReapReport {
    /// Expired leases whose jobs went back to ready.
    pub to_ready: u64,
    /// Expired leases whose jobs had no attempts left and went to dead.
    pub to_dead: u64,
    /// Time until the next lease deadline of the queue (Redis's clock), if
    /// any lease is left.
    pub next_expiry: Option<Duration>,
}

/// What one retention call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrimReport {
    /// Dead jobs removed (age or size cap).
    pub dead_removed: u64,
    /// Per-minute stats fields removed.
    pub stats_removed: u64,
    /// Buckets of kept outcomes whose retention ended, unlinked.
    pub outcome_buckets_removed: u64,
}

impl Runtime {
    /// Returns up to `limit` jobs whose lease expired to ready (or dead when
    /// that was their last attempt).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn reap(&self, keys: &QueueKeys, limit: usize) -> Result<ReapReport> {
        let retention = self.client.retention();
        let mut key_list = vec![
            keys.active.as_str(),
            &keys.jobs,
            &keys.leases,
            &keys.errors,
            &keys.ready,
            &keys.dead,
            &keys.wake,
            &keys.stats,
        ];
        key_list.extend(keys.finishing());
        let mut cmd = SCRIPTS.reap.cmd(&key_list);
        cmd.arg(limit.max(1))
            .arg(retention.dead_max_jobs)
            .arg(retention.error_history)
            .arg(&self.client.global_keys().finished_channel)
            .arg(&self.client.global_keys().cancel_channel);
        let (to_ready, to_dead, next): (u64, u64, i64) =
            scripts::run(&mut self.client.connection(), &cmd)
                .await
                .map_err(Error::redis("reap"))?;
        Ok(ReapReport {
            to_ready,
            to_dead,
            next_expiry: u64::try_from(next).ok().map(Duration::from_millis),
        })
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
            &keys.history,
            &keys.outbox,
            &keys.settings,
        ]);
        cmd.arg(limit.max(1));
        let (moved, next, follow_ups): (u64, i64, u64) =
            scripts::run(&mut self.client.connection(), &cmd)
                .await
                .map_err(Error::redis("promote"))?;
        Ok(PromoteReport {
            moved,
            next_due: u64::try_from(next).ok().map(Duration::from_millis),
            follow_ups,
        })
    }

    /// Applies retention to one queue: dead set caps, the stats window and
    /// the kept outcomes whose retention ended.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn trim(&self, keys: &QueueKeys) -> Result<TrimReport> {
        let r = self.client.retention();
        let mut cmd = SCRIPTS.trim.cmd(&[
            &keys.dead,
            &keys.jobs,
            &keys.errors,
            &keys.stats,
            &keys.history,
            &keys.outcomes,
            &keys.workers,
            &keys.followups,
        ]);
        cmd.arg(r.dead_max_jobs)
            .arg(duration_ms(r.dead_max_age))
            .arg(duration_ms(r.stats_window))
            .arg(TRIM_STATS_BATCH);
        let (dead_removed, stats_removed, outcome_buckets_removed): (u64, u64, u64) =
            scripts::run(&mut self.client.connection(), &cmd)
                .await
                .map_err(Error::redis("trim"))?;
        Ok(TrimReport {
            dead_removed,
            stats_removed,
            outcome_buckets_removed,
        })
    }
}
