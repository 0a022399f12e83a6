//! Cron entries: the read model (schedule, zone, next and last run, last
//! job) and the operator actions pause, resume and run now.
//!
//! Definitions come from the namespace's entries hash, written by every
//! worker that has the entry in its table (`cron_register.lua`); firing
//! state comes from the entry's state hash in its queue's slot (written by
//! `cron_tick.lua`, paused and resumed by `cron_pause.lua`). An entry no
//! worker announced within its stale period is not listed (and is deleted
//! by the next worker that registers). Every write is a script call.

use std::collections::HashMap;

use serde::Serialize;

use super::Admin;
use crate::cron::protocol::StoredEntry;
use crate::cron::{CronEntry, CronSchedule};
use crate::enqueue::{duration_ms, Enqueued};
use crate::error::{Error, Result};
use crate::job::JobId;

/// One cron entry as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CronEntryView {
    /// Unique name.
    pub name: String,
    /// The schedule expression as written.
    pub schedule: String,
    /// IANA time zone of the schedule.
    pub timezone: String,
    /// Target queue.
    pub queue: String,
    /// Job type enqueued at each tick.
    pub job_type: String,
    /// The job's args.
    pub args: serde_json::Value,
    /// Paused entries skip their ticks (counted in `skipped`).
    pub paused: bool,
    /// The next tick (Redis ms); `None` while paused or when the schedule
    /// has no further tick.
    pub next_run_ms: Option<i64>,
    /// When the last job of this entry was enqueued (Redis ms), by a tick
    /// or by "run now".
    pub last_run_ms: Option<i64>,
    /// The last job enqueued.
    pub last_job_id: Option<JobId>,
    /// The last tick that was enqueued (Redis ms).
    pub last_tick_ms: Option<i64>,
    /// Ticks that were not enqueued: missed by more than the grace period,
    /// overtaken by a later missed tick, due while paused, or merged with
    /// other ticks of a DST gap into one run (see `docs/CRON.md`).
    pub skipped: u64,
    /// The latest skipped tick (Redis ms).
    pub last_skipped_ms: Option<i64>,
    /// Grace period for missed ticks (ms).
    pub grace_ms: u64,
    /// Attempts of each enqueued job.
    pub max_attempts: u32,
    /// When a worker last announced this entry (Redis ms).
    pub seen_ms: i64,
    /// When the entry will be forgotten unless a worker announces it again.
    pub expires_ms: i64,
}

impl Admin {
    /// Every live cron entry, sorted by name.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// for e in admin.cron_entries().await? {
    ///     println!("{} {} ({}) next {:?} last job {:?}", e.name, e.schedule, e.timezone, e.next_run_ms, e.last_job_id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn cron_entries(&self) -> Result<Vec<CronEntryView>> {
        let now = self.client.redis_time_ms().await?;
        // Entries or states another writer left unreadable (not even
        // UTF-8) are skipped, as entries that do not decode are.
        let raw: HashMap<String, String> = crate::wire::utf8_pairs(
            redis::cmd("HGETALL")
                .arg(&self.client.global_keys().cron_entries)
                .query_async(&mut self.client.connection())
                .await
                .map_err(Error::redis("HGETALL cron entries"))?,
        );
        let mut live: Vec<StoredEntry> = raw
            .values()
            .filter_map(|r| StoredEntry::decode(r).ok())
            .filter(|s| s.expires_ms >= now)
            .collect();
        live.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for s in &live {
            let keys = self.client.queue_keys(&s.entry.queue)?;
            pipe.cmd("HGETALL").arg(keys.cron_state(&s.entry.name));
        }
        let states: Vec<Vec<(Vec<u8>, Vec<u8>)>> = pipe
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("HGETALL cron state"))?;
        let states = states
            .into_iter()
            .map(crate::wire::utf8_pairs::<HashMap<_, _>>);
        Ok(live
            .into_iter()
            .zip(states)
            .map(|(s, state)| view(s, &state, now))
            .collect())
    }

    /// One live cron entry by name.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn cron_entry(&self, name: &str) -> Result<Option<CronEntryView>> {
        Ok(self
            .cron_entries()
            .await?
            .into_iter()
            .find(|e| e.name == name))
    }

    /// Pauses an entry: its ticks are skipped (and counted) until resumed.
    /// Returns `false` when no live entry has this name.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn cron_pause(&self, name: &str) -> Result<bool> {
        self.set_cron_paused(name, true).await
    }

    /// Resumes a paused entry from its next tick (ticks due while paused are
    /// not replayed). Returns `false` when no live entry has this name.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn cron_resume(&self, name: &str) -> Result<bool> {
        self.set_cron_paused(name, false).await
    }

    /// Enqueues the entry's job now, outside its schedule (also when the
    /// entry is paused). Clicking twice within 10 s
    /// ([`CRON_RUN_NOW_WINDOW`](crate::CRON_RUN_NOW_WINDOW)) enqueues one
    /// job: the second call returns the first job's id with `duplicate: true`.
    ///
    /// # Errors
    /// [`Error::UnknownCronEntry`] when no live entry has this name;
    /// [`Error::Redis`].
    pub async fn cron_run_now(&self, name: &str) -> Result<Enqueued> {
        let Some(entry) = self.live_cron_entry(name).await? else {
            return Err(Error::UnknownCronEntry(name.to_owned()));
        };
        self.client.cron_run_now(&entry, self.actor()).await
    }

    async fn live_cron_entry(&self, name: &str) -> Result<Option<CronEntry>> {
        let now = self.client.redis_time_ms().await?;
        let raw: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&self.client.global_keys().cron_entries)
            .arg(name)
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("HGET cron entry"))?;
        Ok(raw
            .and_then(crate::wire::utf8)
            .and_then(|r| StoredEntry::decode(&r).ok())
            .filter(|s| s.expires_ms >= now)
            .map(|s| s.entry))
    }

    async fn set_cron_paused(&self, name: &str, paused: bool) -> Result<bool> {
        let Some(entry) = self.live_cron_entry(name).await? else {
            return Ok(false);
        };
        self.client.cron_set_paused(&entry, paused).await?;
        Ok(true)
    }
}

fn view(stored: StoredEntry, state: &HashMap<String, String>, now: i64) -> CronEntryView {
    let int = |field: &str| state.get(field).and_then(|v| v.parse::<i64>().ok());
    let e = stored.entry;
    let paused = state.contains_key("paused");
    let next_run_ms = if paused {
        None
    } else {
        CronSchedule::parse(&e.schedule, &e.timezone)
            .ok()
            .and_then(|s| s.next_after(now))
    };
    CronEntryView {
        paused,
        next_run_ms,
        last_run_ms: int("last_run_ms"),
        last_job_id: state.get("last_job_id").map(|s| JobId::from(s.as_str())),
        last_tick_ms: int("last_tick_ms"),
        skipped: state
            .get("skipped")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        last_skipped_ms: int("last_skipped_ms"),
        grace_ms: duration_ms(e.grace),
        max_attempts: e.max_attempts,
        seen_ms: stored.seen_ms,
        expires_ms: stored.expires_ms,
        name: e.name,
        schedule: e.schedule,
        timezone: e.timezone,
        queue: e.queue,
        job_type: e.job_type,
        args: e.args,
    }
}
