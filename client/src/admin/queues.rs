//! Queues: depth, latency, paused flag; pause and resume; clearing ready
//! jobs; the registry of known queues (bad members skipped and reported)
//! and forgetting an empty one. Every write is one script per hash slot:
//! `pause.lua`, `resume.lua`, `clear_ready.lua`, `register_queues.lua`,
//! `unregister_queues.lua`, `forget_queue.lua`.

use std::time::Duration;

use serde::Serialize;

use super::controls::{BreakerState, QueueControls, CONTROL_FIELDS};
use super::Admin;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;
use crate::scripts::{self, SCRIPTS};
use crate::wire::{escape_bytes, record_head};

/// Bytes of the oldest ready record read for the latency: its head.
const HEAD_BYTES: usize = 256;

/// One queue at a glance.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Jobs in the ready list.
    pub ready: u64,
    /// Jobs leased by workers.
    pub active: u64,
    /// Jobs waiting for their time.
    pub scheduled: u64,
    /// Jobs waiting for a retry.
    pub retry: u64,
    /// Dead jobs.
    pub dead: u64,
    /// Whether fetching is paused.
    pub paused: bool,
    /// Age of the oldest ready job (zero when empty), by Redis's clock.
    #[serde(serialize_with = "ser_ms")]
    pub latency: Duration,
    /// Its fleet controls (global concurrency limit, rate limit, circuit
    /// breaker) and their state.
    pub controls: QueueControls,
    /// Ordered groups with jobs waiting for their turn (those jobs count
    /// in `ready`).
    pub groups_waiting: u64,
}

impl QueueInfo {
    /// The queue has a global concurrency limit and as many jobs leased:
    /// ready jobs wait for a place.
    #[must_use]
    pub fn at_limit(&self) -> bool {
        self.controls
            .concurrency_limit
            .is_some_and(|limit| self.active >= u64::from(limit))
    }

    /// Why no job of this queue is being fetched right now although some
    /// are ready (`None` when jobs are fetched or none is ready): `paused`,
    /// `breaker open`, `breaker half-open`, `at concurrency limit`, or
    /// `rate limited`.
    #[must_use]
    pub fn throttled(&self) -> Option<&'static str> {
        if self.ready == 0 {
            return None;
        }
        if self.paused {
            return Some("paused");
        }
        if let Some((_, state)) = self.controls.breaker {
            match state {
                BreakerState::Open { .. } => return Some("breaker open"),
                BreakerState::HalfOpen { .. } => return Some("breaker half-open"),
                BreakerState::Closed { .. } => {}
            }
        }
        if self.at_limit() {
            return Some("at concurrency limit");
        }
        (self.controls.rate_wait > Duration::ZERO).then_some("rate limited")
    }
}

/// What [`Admin::forget_queue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForgetQueue {
    /// The queue had no job and no worker: it is off the registry, and its
    /// paused flag and settings are gone. `registered` says whether the
    /// registry listed it.
    Forgotten {
        /// The registry listed the queue.
        registered: bool,
    },
    /// Refused: the queue still has jobs (counts by state; `outbox`:
    /// triggered follow-ups not yet moved into their queues).
    HasJobs {
        /// Ready jobs, every priority and group included.
        ready: u64,
        /// Leased jobs.
        active: u64,
        /// Scheduled jobs.
        scheduled: u64,
        /// Jobs waiting for a retry.
        retry: u64,
        /// Dead jobs.
        dead: u64,
        /// Follow-ups waiting in the outbox.
        outbox: u64,
    },
    /// Refused: live worker processes (their ids) fetch from the queue, and
    /// would register it again.
    Served {
        /// Ids of the processes serving the queue.
        workers: Vec<String>,
    },
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Admin {
    /// Names of every known queue, sorted. A registry member that is not a
    /// valid queue name (written by hand or by another producer) is skipped
    /// and logged, so one bad member cannot take the overview down; see
    /// [`Admin::invalid_queue_names`] to show them.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn queue_names(&self) -> Result<Vec<String>> {
        let (names, skipped) = self.registry().await?;
        if !skipped.is_empty() {
            // Names as stored can be any size: log a bounded sample.
            let sample: Vec<&str> = skipped
                .iter()
                .take(5)
                .map(|n| crate::truncate_utf8(n, 80))
                .collect();
            tracing::warn!(
                count = skipped.len(),
                sample = ?sample,
                "queue registry holds invalid queue names; skipped them"
            );
        }
        Ok(names)
    }

    /// Members of the queue registry that are not valid queue names (bytes
    /// that are not UTF-8 escaped as `\xNN`), sorted; they are left out of
    /// every listing. Empty when the registry is clean.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn invalid_queue_names(&self) -> Result<Vec<String>> {
        Ok(self.registry().await?.1)
    }

    /// The registry split into valid names and (escaped) invalid members.
    async fn registry(&self) -> Result<(Vec<String>, Vec<String>)> {
        let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(&self.client.global_keys().queues)
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("SMEMBERS queues"))?;
        let (mut names, mut skipped) = (Vec::new(), Vec::new());
        for m in members {
            match String::from_utf8(m) {
                Ok(name) if crate::keys::validate_queue_name(&name).is_ok() => names.push(name),
                Ok(name) => skipped.push(name),
                Err(e) => skipped.push(escape_bytes(e.as_bytes())),
            }
        }
        names.sort();
        skipped.sort();
        Ok((names, skipped))
    }

    /// Every known queue with its counts, in one round trip.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let names = self.queue_names().await?;
        self.queue_infos(&names).await
    }

    /// One queue (which need not be registered yet).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn queue(&self, name: &str) -> Result<QueueInfo> {
        self.client.queue_keys(name)?;
        let mut infos = self.queue_infos(&[name.to_owned()]).await?;
        infos
            .pop()
            .ok_or_else(|| Error::InvalidArgument("no such queue".to_owned()))
    }

    async fn queue_infos(&self, names: &[String]) -> Result<Vec<QueueInfo>> {
        let mut pipe = super::timed_pipe();
        let all_keys: Vec<QueueKeys> = names
            .iter()
            .map(|n| QueueKeys::new(self.client.namespace(), n))
            .collect();
        for k in &all_keys {
            // Length and the oldest job's head only: the record may be huge.
            pipe.add_command(
                SCRIPTS
                    .peek_ready
                    .cmd(&[&k.ready])
                    .arg(0)
                    .arg(1)
                    .arg(HEAD_BYTES)
                    .clone(),
            );
            pipe.cmd("EXISTS").arg(&k.paused);
            // Leased jobs: the leases hash less its guard field (`"`).
            pipe.cmd("HLEN").arg(&k.leases);
            pipe.cmd("HEXISTS").arg(&k.leases).arg("\"");
            pipe.cmd("ZCARD").arg(&k.scheduled);
            pipe.cmd("ZCARD").arg(&k.retry);
            pipe.cmd("ZCARD").arg(&k.dead);
            pipe.cmd("HMGET").arg(&k.settings).arg(&CONTROL_FIELDS[..]);
            pipe.cmd("SCARD").arg(&k.groups_waiting);
        }
        let (now, mut it) = self.run_timed(&pipe, "queues").await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut next = || -> Result<redis::Value> {
                it.next()
                    .ok_or_else(|| Error::InvalidArgument("short pipeline reply".to_owned()))
            };
            let (ready, oldest) = super::jobs::parse_peek_ready(next()?)?;
            let paused: bool = redis::from_redis_value(next()?).map_err(Error::parse("EXISTS"))?;
            let leases: u64 = redis::from_redis_value(next()?).map_err(Error::parse("HLEN"))?;
            let guard: u64 = redis::from_redis_value(next()?).map_err(Error::parse("HEXISTS"))?;
            let active = leases.saturating_sub(guard);
            let scheduled: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let retry: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let dead: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            // Another writer's bytes that are not UTF-8 read as unset, as
            // any other garbage does (QueueControls::from_settings).
            let controls: Vec<Option<Vec<u8>>> =
                redis::from_redis_value(next()?).map_err(Error::parse("HMGET settings"))?;
            let controls: Vec<Option<String>> = controls
                .into_iter()
                .map(|v| v.and_then(crate::wire::utf8))
                .collect();
            let groups_waiting: u64 =
                redis::from_redis_value(next()?).map_err(Error::parse("SCARD"))?;
            let latency = oldest
                .first()
                .and_then(|(_, head)| record_head(head))
                .map_or(Duration::ZERO, |h| {
                    Duration::from_millis(u64::try_from(now - h.enqueued_ms).unwrap_or(0))
                });
            out.push(QueueInfo {
                name: name.clone(),
                ready,
                active,
                scheduled,
                retry,
                dead,
                paused,
                latency,
                controls: QueueControls::from_settings(&controls, now),
                groups_waiting,
            });
        }
        Ok(out)
    }

    /// Adds queues to the registry of known queues (workers do this at
    /// start-up so empty queues show up too).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn register_queues(&self, names: &[&str]) -> Result<()> {
        for n in names {
            crate::keys::validate_queue_name(n)?;
        }
        if names.is_empty() {
            return Ok(());
        }
        let cmd = register_queues_cmd(self.client.global_keys(), names);
        self.write(&cmd, "register queues").await.map(drop)
    }

    /// Pauses a queue: workers stop fetching from it; enqueues still land.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn pause(&self, queue: &str) -> Result<()> {
        let k = self.client.queue_keys(queue)?;
        // Two slots, two scripts: the flag (queue slot), then the registry
        // (namespace slot) so a paused empty queue still shows up.
        // Registering is idempotent, so a crash between them is repaired by
        // the next pause or enqueue.
        let mut cmd = SCRIPTS.pause.cmd(&[&k.paused, &k.events, &k.settings]);
        cmd.arg(self.actor());
        self.write(&cmd, "pause").await?;
        self.register_queues(&[queue]).await
    }

    /// Resumes a paused queue and wakes its fetchers.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn resume(&self, queue: &str) -> Result<()> {
        let k = self.client.queue_keys(queue)?;
        let mut cmd = SCRIPTS
            .resume
            .cmd(&[&k.paused, &k.wake, &k.events, &k.settings]);
        cmd.arg(self.actor());
        self.write(&cmd, "resume").await.map(drop)
    }

    /// Deletes every ready job of a queue; returns how many there were.
    /// Scheduled, retrying, running and dead jobs stay (delete those with
    /// [`Admin::delete_all`]). A `cleared` event names the actor.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// let n = admin.with_actor("alice").clear_ready("imports").await?;
    /// println!("deleted {n} ready jobs");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn clear_ready(&self, queue: &str) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        let mut cmd = SCRIPTS
            .clear_ready
            .cmd(&[[k.ready.as_str()].as_slice(), &k.removing()].concat());
        cmd.arg(&self.client.global_keys().finished_channel)
            .arg(self.actor());
        self.write(&cmd, "clear ready").await
    }

    /// Forgets a queue that has no job in any state and no worker serving
    /// it (a typo, a retired queue): its name leaves the registry, so the
    /// dashboard and `spool queues` stop listing it, and its paused flag
    /// and settings are deleted. Refuses otherwise, changing nothing.
    /// An enqueue racing the forget leaves the queue registered.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// use spool_client::admin::ForgetQueue;
    /// match admin.forget_queue("emials").await? {
    ///     ForgetQueue::Forgotten { .. } => println!("gone"),
    ///     other => println!("kept: {other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn forget_queue(&self, queue: &str) -> Result<ForgetQueue> {
        let k = self.client.queue_keys(queue)?;
        let workers: Vec<String> = self
            .processes()
            .await?
            .into_iter()
            .filter(|p| p.info.queues.iter().any(|q| q == queue))
            .map(|p| p.info.id)
            .collect();
        if !workers.is_empty() {
            return Ok(ForgetQueue::Served { workers });
        }
        // Registry first (its own slot), then the queue's check-and-clean:
        // see forget_queue.lua for why this order survives a racing enqueue.
        let global = self.client.global_keys();
        let mut unregister = SCRIPTS.unregister_queues.cmd(&[&global.queues]);
        unregister.arg(queue);
        let registered = self.write(&unregister, "unregister queue").await? > 0;
        let cmd = SCRIPTS.forget_queue.cmd(&[
            &k.ready,
            &k.active,
            &k.scheduled,
            &k.retry,
            &k.dead,
            &k.outbox,
            &k.paused,
            &k.settings,
            &k.wake,
        ]);
        let reply: Vec<u64> = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("forget queue"))?;
        match reply.as_slice() {
            [1] => Ok(ForgetQueue::Forgotten { registered }),
            [0, ready, active, scheduled, retry, dead, outbox] => {
                if registered {
                    self.register_queues(&[queue]).await?;
                }
                Ok(ForgetQueue::HasJobs {
                    ready: *ready,
                    active: *active,
                    scheduled: *scheduled,
                    retry: *retry,
                    dead: *dead,
                    outbox: *outbox,
                })
            }
            other => {
                if registered {
                    self.register_queues(&[queue]).await?;
                }
                Err(Error::InvalidArgument(format!(
                    "unexpected forget_queue.lua reply {other:?}"
                )))
            }
        }
    }

    /// Runs one admin script that returns a count.
    pub(super) async fn write(&self, cmd: &redis::Cmd, op: &'static str) -> Result<u64> {
        scripts::run(&mut self.client.connection(), cmd)
            .await
            .map_err(Error::redis(op))
    }
}

/// The `register_queues.lua` call adding `names` (already validated) to the
/// registry; enqueues pipeline it after their own script (the registry has
/// its own hash slot, so it cannot be written by the enqueue script).
pub(crate) fn register_queues_cmd(global: &crate::keys::GlobalKeys, names: &[&str]) -> redis::Cmd {
    let mut cmd = SCRIPTS.register_queues.cmd(&[&global.queues]);
    cmd.arg(names);
    cmd
}
