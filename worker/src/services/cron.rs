//! Cron: enqueues each cron entry's job once per tick, however many worker
//! processes run the same table, without a leader.
//!
//! Each pass reads Redis's clock and every entry's cursor (the last tick it
//! handled), plans with [`CronSchedule::plan`] which due tick to enqueue and
//! which to skip, and applies the plan with one `cron_tick.lua` call in the
//! target queue's slot. That call moves the cursor only if it is still the
//! one the plan started from and sets the tick key `SET NX`, so when several
//! processes wake for the same tick exactly one enqueues it and the others
//! see `Raced`/nothing due. The service then sleeps until the next tick by
//! Redis's clock (measured with the monotonic timer, never the wall clock).
//!
//! Every `refresh_interval` the process announces its table
//! (`cron_register.lua`): that keeps the entries listed for the admin API
//! and forgets entries no process has announced for `stale_after`.
//!
//! It deliberately does not run handlers (cron jobs are ordinary jobs in
//! their queue) nor replay missed ticks in a burst.

use std::sync::Arc;
use std::time::Duration;

use spool_client::runtime::cron::{CronRegistered, CronTickOutcome};
use spool_client::runtime::Runtime;
use spool_client::{CronEntry, CronSchedule};
use tokio::time::Instant;

use crate::backoff::jittered;
use crate::error::{Error, Result};

/// Times one entry re-plans in a pass after losing a race for its cursor.
const RACE_RETRIES: usize = 3;

/// Host clock skew above which the service warns (it still fires on Redis time).
const SKEW_WARN_MS: i64 = 1_000;

/// Settings of the cron service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronConfig {
    /// How often this process announces its cron table (refreshing each
    /// entry's "seen" time) and forgets entries nobody announces. Default 30 s.
    pub refresh_interval: Duration,
    /// An entry that no process announced for this long disappears from
    /// the admin listing and its state is deleted. At least twice
    /// `refresh_interval`. Default 10 minutes.
    pub stale_after: Duration,
    /// Longest sleep between two passes even when the next tick is further
    /// away, so a Redis clock step or a long process suspension is noticed.
    /// Default 60 s.
    pub max_sleep: Duration,
    /// Testing aid for the "host clocks do not matter" guarantee: added to
    /// every reading of this host's wall clock that the service makes. The
    /// service reads the wall clock only to report its skew from Redis
    /// ([`CronReport::host_skew_ms`], and a warning above 1 s); ticks and
    /// sleeps are computed from Redis's `TIME`. Default 0.
    pub host_clock_offset_ms: i64,
}

impl CronConfig {
    /// Default refresh interval.
    pub const REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);
    /// Default stale period.
    pub const STALE_AFTER_DEFAULT: Duration = Duration::from_secs(600);
    /// Default longest sleep.
    pub const MAX_SLEEP_DEFAULT: Duration = Duration::from_secs(60);

    /// Checks every field; the error names the field.
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        if self.refresh_interval < Duration::from_millis(10) {
            return Err(Error::Config(
                "cron.refresh_interval must be at least 10 ms".into(),
            ));
        }
        if self.stale_after < self.refresh_interval * 2 {
            return Err(Error::Config(format!(
                "cron.stale_after ({:?}) must be at least twice cron.refresh_interval ({:?})",
                self.stale_after, self.refresh_interval
            )));
        }
        if self.max_sleep < Duration::from_millis(10) {
            return Err(Error::Config(
                "cron.max_sleep must be at least 10 ms".into(),
            ));
        }
        Ok(())
    }
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Self::REFRESH_INTERVAL_DEFAULT,
            stale_after: Self::STALE_AFTER_DEFAULT,
            max_sleep: Self::MAX_SLEEP_DEFAULT,
            host_clock_offset_ms: 0,
        }
    }
}

/// What one cron pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CronReport {
    /// Ticks this process enqueued.
    pub fired: u64,
    /// Ticks found already enqueued (by another process).
    pub duplicates: u64,
    /// Ticks not enqueued: missed beyond the grace period, overtaken by a
    /// later missed tick, or due while paused.
    pub skipped: u64,
    /// Plans abandoned because another process moved the cursor first.
    pub races: u64,
    /// Redis's clock at the start of the pass (ms).
    pub redis_now_ms: i64,
    /// The earliest next tick over all entries (Redis ms).
    pub next_tick_ms: Option<i64>,
    /// This host's wall clock (plus `host_clock_offset_ms`) minus Redis's
    /// clock, in ms; informational only.
    pub host_skew_ms: i64,
}

/// The cron service of one worker process.
#[derive(Debug, Clone)]
pub(crate) struct CronScheduler {
    runtime: Runtime,
    /// The table, validated: each entry with its parsed schedule.
    entries: Arc<Vec<(CronEntry, CronSchedule)>>,
    config: CronConfig,
    /// When the table is next announced (monotonic clock); `None` before
    /// the first announcement.
    refresh_at: Option<Instant>,
    /// The host-clock skew warning is logged once.
    warned_skew: bool,
}

impl CronScheduler {
    /// A cron service for `entries`.
    ///
    /// # Errors
    /// [`Error::Client`] with [`spool_client::Error::InvalidCronEntry`]
    /// naming the first bad entry; [`Error::Config`] for a duplicate name or
    /// a bad `config`.
    pub(crate) fn new(
        runtime: Runtime,
        entries: Vec<CronEntry>,
        config: CronConfig,
    ) -> Result<Self> {
        config.validate()?;
        let mut parsed: Vec<(CronEntry, CronSchedule)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let schedule = entry.validate()?;
            if parsed.iter().any(|(e, _)| e.name == entry.name) {
                return Err(Error::Config(format!(
                    "cron entry {:?} is listed twice",
                    entry.name
                )));
            }
            parsed.push((entry, schedule));
        }
        Ok(Self {
            runtime,
            entries: Arc::new(parsed),
            config,
            refresh_at: None,
            warned_skew: false,
        })
    }

    /// Announces the table (entries listed for the admin API) and forgets
    /// entries nobody announced within `stale_after`.
    ///
    /// # Errors
    /// [`spool_client::Error`] from Redis.
    pub(crate) async fn register(&self) -> spool_client::Result<CronRegistered> {
        let defs: Vec<CronEntry> = self.entries.iter().map(|(e, _)| e.clone()).collect();
        self.runtime
            .cron_register(&defs, self.config.stale_after)
            .await
    }

    /// One pass: enqueue every due tick this process wins, record skipped
    /// ticks. An error on one entry does not stop the others; the first one
    /// is returned after the pass.
    ///
    /// # Errors
    /// [`spool_client::Error`] from Redis.
    pub(crate) async fn run_once(&self) -> spool_client::Result<CronReport> {
        let now = self.runtime.client().redis_time_ms().await?;
        let host_now = chrono::Utc::now().timestamp_millis() + self.config.host_clock_offset_ms;
        let mut report = CronReport {
            redis_now_ms: now,
            host_skew_ms: host_now - now,
            ..CronReport::default()
        };
        let defs: Vec<CronEntry> = self.entries.iter().map(|(e, _)| e.clone()).collect();
        let cursors = self.runtime.cron_cursors(&defs).await?;
        let mut first_err = None;
        for ((entry, schedule), cursor) in self.entries.iter().zip(cursors) {
            if let Err(err) = self
                .tick_entry(entry, schedule, cursor, now, &mut report)
                .await
            {
                tracing::warn!(entry = %entry.name, queue = %entry.queue, error = %err, "cron tick failed");
                first_err.get_or_insert(err);
            }
            let next = schedule.next_after(now);
            report.next_tick_ms = match (report.next_tick_ms, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        match first_err {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }

    async fn tick_entry(
        &self,
        entry: &CronEntry,
        schedule: &CronSchedule,
        mut cursor: Option<i64>,
        now: i64,
        report: &mut CronReport,
    ) -> spool_client::Result<()> {
        for _ in 0..RACE_RETRIES {
            let Some(plan) = schedule.plan(cursor, now, entry.grace) else {
                return Ok(());
            };
            let outcome = self.runtime.cron_tick(entry, cursor, &plan).await?;
            if !matches!(outcome, CronTickOutcome::Raced(_)) {
                report.skipped += plan.skipped;
                if plan.skipped > 0 {
                    tracing::warn!(entry = %entry.name, skipped = plan.skipped,
                        last_skipped_ms = plan.last_skipped, "cron ticks skipped: missed beyond the grace period, or merged into one run by a DST gap");
                }
            }
            match outcome {
                CronTickOutcome::Fired(id) => {
                    report.fired += 1;
                    tracing::info!(entry = %entry.name, queue = %entry.queue, tick_ms = plan.fire, job_id = %id, "cron tick enqueued");
                    return Ok(());
                }
                CronTickOutcome::Duplicate(_) => {
                    report.duplicates += 1;
                    return Ok(());
                }
                CronTickOutcome::Paused => {
                    report.skipped += 1;
                    tracing::debug!(entry = %entry.name, tick_ms = plan.fire, "cron entry paused; tick skipped");
                    return Ok(());
                }
                CronTickOutcome::Advanced => return Ok(()),
                CronTickOutcome::Raced(current) => {
                    // Another process handled these ticks: plan again from
                    // where it left the cursor (usually nothing is due).
                    report.races += 1;
                    cursor = current;
                }
            }
        }
        Ok(())
    }

    /// Announces the table when due, then one pass; returns the time until
    /// the next tick by Redis's clock (+2 ms so the pass finds it due),
    /// capped by the next announcement and `max_sleep`.
    async fn pass(&mut self) -> spool_client::Result<Duration> {
        let mut announce_err = None;
        if self.refresh_at.is_none_or(|at| Instant::now() >= at) {
            match self.register().await {
                Ok(r) => {
                    self.refresh_at = Some(Instant::now() + jittered(self.config.refresh_interval));
                    if !r.removed.is_empty() {
                        tracing::info!(removed = ?r.removed, "forgot cron entries no worker announces any more");
                    }
                }
                Err(err) => announce_err = Some(err),
            }
        }
        let r = self.run_once().await?;
        if let Some(err) = announce_err {
            // Ticks were handled; back off and announce again soon.
            return Err(err);
        }
        if r.host_skew_ms.abs() > SKEW_WARN_MS && !self.warned_skew {
            self.warned_skew = true;
            tracing::warn!(
                host_skew_ms = r.host_skew_ms,
                "this host's clock differs from Redis's; cron follows Redis's clock"
            );
        }
        let until_tick = r.next_tick_ms.map_or(self.config.max_sleep, |t| {
            Duration::from_millis(u64::try_from(t - r.redis_now_ms + 2).unwrap_or(1))
        });
        let until_refresh = self.refresh_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        Ok(until_tick.min(self.config.max_sleep).min(until_refresh))
    }
}

impl super::Service for CronScheduler {
    const NAME: &'static str = "cron";

    async fn pass(&mut self) -> spool_client::Result<Duration> {
        CronScheduler::pass(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_names_the_field() {
        CronConfig::default().validate().expect("defaults valid");
        let stale = CronConfig {
            stale_after: Duration::from_secs(40),
            ..CronConfig::default()
        };
        let err = stale.validate().expect_err("stale too short").to_string();
        assert!(err.contains("cron.stale_after"), "{err}");
        let sleep = CronConfig {
            max_sleep: Duration::ZERO,
            ..CronConfig::default()
        };
        let err = sleep.validate().expect_err("zero sleep").to_string();
        assert!(err.contains("cron.max_sleep"), "{err}");
    }
}
