//! The cron runtime protocol: announce a cron table, read entries' cursors,
//! apply a tick plan (`cron_tick.lua`), and "run now" for the admin API.
//!
//! Runtime protocol, not for application code: the worker's cron service
//! drives these calls, the admin API the pause and run-now ones. Each
//! state change is one script: `cron_register.lua` in the namespace's slot
//! (the table's listing and the queue registry), `cron_tick.lua` in the
//! target queue's slot (uniqueness key, enqueue and entry state together),
//! `cron_pause.lua` and `cron_forget.lua` on the entry's state there.

use std::time::Duration;

use serde::Deserialize;

use super::{CronEntry, CronPlan, CRON_RUN_NOW_WINDOW};
use crate::client::Client;
use crate::enqueue::{duration_ms, EnqueueOptions, Enqueued, Prepared};
use crate::error::{Error, Result};
use crate::job::{CronOrigin, JobId};
use crate::keys::QueueKeys;
use crate::runtime::Runtime;
use crate::scripts::{self, SCRIPTS};

/// How long a tick key outlives the tick beyond the grace period. While a
/// tick key exists, that tick cannot be enqueued again even if the entry's
/// cursor were lost.
const TICK_KEY_MARGIN: Duration = Duration::from_secs(120);

/// A cron entry's cursor: the last tick (Redis ms) it handled; `None` for
/// an entry that never ran.
pub type CronCursor = Option<i64>;

/// What [`Runtime::cron_register`](crate::runtime::Runtime::cron_register) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRegistered {
    /// Redis's clock at registration (ms).
    pub now_ms: i64,
    /// Entries forgotten because no process announced them within their
    /// stale period (their listing and state were removed).
    pub removed: Vec<String>,
}

/// What [`Runtime::cron_tick`](crate::runtime::Runtime::cron_tick) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronTickOutcome {
    /// The planned tick was enqueued as this job.
    Fired(JobId),
    /// The tick already had a job (another process enqueued it).
    Duplicate(JobId),
    /// The entry is paused: the tick was recorded as skipped.
    Paused,
    /// Only the cursor moved (skipped ticks recorded, nothing to enqueue).
    Advanced,
    /// Another process moved the cursor first: plan again from this one.
    Raced(CronCursor),
}

/// The stored form of an entry in the entries hash.
#[derive(Deserialize)]
pub(crate) struct StoredEntry {
    pub(crate) seen_ms: i64,
    pub(crate) expires_ms: i64,
    pub(crate) entry: CronEntry,
}

impl StoredEntry {
    pub(crate) fn decode(raw: &str) -> Result<Self> {
        serde_json::from_str(raw).map_err(|e| Error::Decode {
            what: "cron entry record".to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Cron: the calls the worker's cron service makes.
impl Runtime {
    /// Announces a cron table: writes each entry's definition with a fresh
    /// "seen" time and a forget-after deadline `stale_after` from now (Redis
    /// time), and forgets entries whose deadline passed, deleting their
    /// state. Call it periodically from every process that has the table.
    ///
    /// # Errors
    /// [`Error::Redis`]; [`Error::Serialize`] for an entry whose definition
    /// cannot be encoded.
    pub async fn cron_register(
        &self,
        entries: &[CronEntry],
        stale_after: Duration,
    ) -> Result<CronRegistered> {
        let g = self.client.global_keys();
        let mut cmd = SCRIPTS.cron_register.cmd(&[
            g.cron_entries.as_str(),
            g.cron_expiry.as_str(),
            g.queues.as_str(),
        ]);
        cmd.arg(duration_ms(stale_after));
        for e in entries {
            let def = serde_json::to_string(e).map_err(|source| Error::Serialize {
                job_type: e.job_type.clone(),
                source,
            })?;
            cmd.arg(&e.name).arg(&e.queue).arg(def);
        }
        let reply: Vec<redis::Value> = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("cron_register"))?;
        let mut it = reply.into_iter();
        let now_ms: i64 = it
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(Error::parse("cron_register"))?
            .unwrap_or_default();
        let mut removed = Vec::new();
        let mut forget = redis::pipe();
        for v in it {
            let raw: Vec<u8> = redis::from_redis_value(v).map_err(Error::parse("cron_register"))?;
            // A record that does not decode (or is not even text) has no
            // state we could find.
            let Some(Ok(stored)) = crate::wire::utf8(raw).map(|r| StoredEntry::decode(&r)) else {
                continue;
            };
            if let Ok(keys) = self.client.queue_keys(&stored.entry.queue) {
                // One call per entry: each state lives in its queue's slot.
                forget
                    .add_command(
                        SCRIPTS
                            .cron_forget
                            .cmd(&[keys.cron_state(&stored.entry.name)]),
                    )
                    .ignore();
            }
            removed.push(stored.entry.name);
        }
        if !removed.is_empty() {
            let () = scripts::run(&mut self.client.connection(), &forget)
                .await
                .map_err(Error::redis("cron_forget"))?;
        }
        Ok(CronRegistered { now_ms, removed })
    }

    /// The cursor of each entry (in order), read in one round trip.
    ///
    /// # Errors
    /// [`Error::Redis`], [`Error::InvalidQueueName`].
    pub async fn cron_cursors(&self, entries: &[CronEntry]) -> Result<Vec<CronCursor>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for e in entries {
            let keys = self.client.queue_keys(&e.queue)?;
            pipe.cmd("HGET")
                .arg(keys.cron_state(&e.name))
                .arg("cursor_ms");
        }
        // A cursor that is not a number (not even UTF-8) reads as none:
        // one bad entry never stops the others.
        let raw: Vec<Option<Vec<u8>>> = pipe
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("HGET cron cursor"))?;
        Ok(raw
            .into_iter()
            .map(|v| v.and_then(crate::wire::utf8).and_then(|s| s.parse().ok()))
            .collect())
    }

    /// Applies `plan`, made from cursor `planned_from`, to `entry` in one
    /// script call: moves the cursor (only if it is still `planned_from`),
    /// records skipped ticks, and enqueues the planned tick unless the entry
    /// is paused or the tick already has a job.
    ///
    /// # Errors
    /// [`Error::Redis`]; the enqueue errors of [`Client::enqueue`](crate::Client::enqueue) (payload
    /// size, queue name).
    pub async fn cron_tick(
        &self,
        entry: &CronEntry,
        planned_from: CronCursor,
        plan: &CronPlan,
    ) -> Result<CronTickOutcome> {
        let keys = self.client.queue_keys(&entry.queue)?;
        let tick = plan.fire.unwrap_or(0);
        let ttl = duration_ms(entry.grace + TICK_KEY_MARGIN);
        let mut cmd = Client::cron_cmd(&keys, entry, &keys.cron_tick(&entry.name, tick));
        cmd.arg("tick")
            .arg(planned_from.map(|c| c.to_string()).unwrap_or_default())
            .arg(plan.cursor)
            .arg(tick)
            .arg(plan.skipped)
            .arg(plan.last_skipped.unwrap_or(0))
            .arg(ttl);
        if plan.fire.is_some() {
            self.client.cron_job(entry, plan.fire)?.push_args(&mut cmd);
        }
        let (status, value) = self.client.run_cron_cmd(cmd).await?;
        Ok(match status.as_str() {
            "fired" => CronTickOutcome::Fired(JobId::from(value)),
            "duplicate" => CronTickOutcome::Duplicate(JobId::from(value)),
            "paused" => CronTickOutcome::Paused,
            "raced" => CronTickOutcome::Raced(value.parse().ok()),
            _ => CronTickOutcome::Advanced,
        })
    }
}

impl Client {
    /// Enqueues `entry`'s job at once, outside its schedule. A second call
    /// within [`CRON_RUN_NOW_WINDOW`] returns the first job
    /// (`duplicate: true`) instead of enqueueing again.
    pub(crate) async fn cron_run_now(&self, entry: &CronEntry, actor: &str) -> Result<Enqueued> {
        let keys = self.queue_keys(&entry.queue)?;
        let prepared = self.cron_job(entry, None)?;
        let mut cmd = Self::cron_cmd(&keys, entry, &keys.cron_run_now(&entry.name));
        cmd.arg("now")
            .arg(duration_ms(CRON_RUN_NOW_WINDOW))
            .arg(actor);
        prepared.push_args(&mut cmd);
        let (status, value) = self.run_cron_cmd(cmd).await?;
        Ok(Enqueued {
            id: JobId::from(value),
            duplicate: status != "fired",
        })
    }

    pub(crate) fn cron_cmd(keys: &QueueKeys, entry: &CronEntry, unique_key: &str) -> redis::Cmd {
        let state = keys.cron_state(&entry.name);
        SCRIPTS.cron_tick.cmd(&[
            keys.ready.as_str(),
            keys.wake.as_str(),
            keys.scheduled.as_str(),
            keys.jobs.as_str(),
            state.as_str(),
            unique_key,
            keys.events.as_str(),
            keys.settings.as_str(),
        ])
    }

    pub(crate) fn cron_job(&self, entry: &CronEntry, tick_ms: Option<i64>) -> Result<Prepared> {
        let args =
            serde_json::value::to_raw_value(&entry.args).map_err(|source| Error::Serialize {
                job_type: entry.job_type.clone(),
                source,
            })?;
        let origin = CronOrigin {
            entry: entry.name.clone(),
            tick_ms,
        };
        self.prepare(
            &entry.job_type,
            &args,
            &entry.defaults(),
            &EnqueueOptions::new(),
            &entry.queue,
            Some(&origin),
        )
    }

    /// Runs one `cron_tick.lua` call. The target queue is already in the
    /// queue registry: `cron_register.lua` adds it when the table is
    /// announced, and only announced entries tick or run now.
    pub(crate) async fn run_cron_cmd(&self, cmd: redis::Cmd) -> Result<(String, String)> {
        // Bytes: a value the script read from the entry's state may be
        // another writer's, and is shown, not trusted.
        let (status, value): (Vec<u8>, Vec<u8>) = scripts::run(&mut self.connection(), &cmd)
            .await
            .map_err(Error::redis("cron_tick"))?;
        Ok((
            crate::wire::escape_bytes(&status),
            crate::wire::escape_bytes(&value),
        ))
    }

    /// Pauses (`true`) or resumes an entry's ticks with `cron_pause.lua`;
    /// `false` when it already was.
    pub(crate) async fn cron_set_paused(&self, entry: &CronEntry, paused: bool) -> Result<bool> {
        let keys = self.queue_keys(&entry.queue)?;
        let cmd = SCRIPTS
            .cron_pause
            .cmd(&[keys.cron_state(&entry.name)])
            .arg(if paused { "1" } else { "0" })
            .to_owned();
        let changed: i64 = scripts::run(&mut self.connection(), &cmd)
            .await
            .map_err(Error::redis("cron_pause"))?;
        Ok(changed == 1)
    }
}
