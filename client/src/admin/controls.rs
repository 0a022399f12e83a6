//! Fleet controls of a queue, held in Redis so every worker obeys them: the
//! global concurrency limit, the rate limit and the circuit breaker. Set
//! here (and from the dashboard and `spool queue …`), stored in the queue's
//! settings hash by `queue_control.lua`, enforced by `fetch.lua` atomically
//! with each claim; the breaker's window is kept by the scripts that end
//! runs (ack, fail, reap). Their meaning and state machine are in
//! docs/STATES.md ("Fleet controls").

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::scripts::SCRIPTS;

/// A rate limit: at most `jobs` started per `per`, across every worker.
///
/// Kept as a token bucket: a full bucket lets `burst` jobs start at once
/// (default: `jobs`), then one starts every `per / jobs`, so a backlog is
/// drained evenly spaced. Jobs over the limit wait in the ready list, in
/// order; none fails or spends an attempt.
///
/// ```
/// use spool_client::admin::RateLimit;
/// use std::time::Duration;
/// let limit: RateLimit = "100/1s".parse()?;
/// assert_eq!(limit, RateLimit::new(100, Duration::from_secs(1)));
/// assert_eq!(limit.to_string(), "100/1s");
/// let smooth = RateLimit::new(10, Duration::from_secs(60)).with_burst(1);
/// assert_eq!(smooth.to_string(), "10/1m burst 1");
/// # Ok::<(), spool_client::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Jobs per period.
    pub jobs: u32,
    /// The period.
    #[serde(serialize_with = "ser_ms")]
    pub per: Duration,
    /// Jobs that may start at once after a quiet time (default `jobs`).
    pub burst: u32,
}

impl RateLimit {
    /// `jobs` per `per`, with a burst of `jobs`.
    #[must_use]
    pub fn new(jobs: u32, per: Duration) -> Self {
        Self {
            jobs,
            per,
            burst: jobs,
        }
    }

    /// The same limit with another burst (at least 1).
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    fn check(&self) -> Result<()> {
        if self.jobs == 0 || self.per.as_millis() == 0 || self.burst == 0 {
            return Err(Error::InvalidArgument(format!(
                "a rate limit needs at least 1 job per at least 1 ms (and a burst of at least 1), got {self}"
            )));
        }
        Ok(())
    }

    /// The stored form: `jobs/period_ms/burst`.
    fn stored(&self) -> String {
        format!("{}/{}/{}", self.jobs, self.per.as_millis(), self.burst)
    }

    /// The stored form of a limit checked first, or `''` (lift it).
    fn stored_or_none(limit: Option<Self>) -> Result<String> {
        limit.map_or(Ok(String::new()), |l| l.check().map(|()| l.stored()))
    }

    /// Reads the stored form; `None` for anything else.
    fn from_stored(raw: &str) -> Option<Self> {
        let mut parts = raw.split('/');
        let jobs: u32 = parts.next()?.parse().ok()?;
        let per: u64 = parts.next()?.parse().ok()?;
        let burst = match parts.next() {
            Some(b) => b.parse().ok()?,
            None => jobs,
        };
        let limit = Self {
            jobs,
            per: Duration::from_millis(per),
            burst,
        };
        (parts.next().is_none() && limit.check().is_ok()).then_some(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.jobs, humantime::format_duration(self.per))?;
        if self.burst != self.jobs {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for RateLimit {
    type Err = Error;

    /// `JOBS/PERIOD` (`100/1s`, `10/1m`), optionally followed by
    /// ` burst N` or `/N`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "invalid rate limit {s:?}: write JOBS/PERIOD, e.g. 100/1s or 10/1m (optionally \"burst N\")"
            ))
        };
        let (head, burst) = match s.split_once(" burst ") {
            Some((h, b)) => (h.trim(), Some(b.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let (jobs, per) = head.split_once('/').ok_or_else(bad)?;
        let jobs: u32 = jobs.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        let per = humantime::parse_duration(per)
            .or_else(|_| humantime::parse_duration(&format!("1{per}")))
            .map_err(|_| bad())?;
        let mut limit = Self::new(jobs, per);
        if let Some(b) = burst {
            limit.burst = b;
        }
        limit.check()?;
        Ok(limit)
    }
}

/// A circuit breaker: when at least `percent` % of the last `window` runs
/// failed, every worker stops fetching from the queue for `cooldown`, then
/// lets `probes` jobs through (half-open) and closes again when they all
/// succeed (one failure reopens it). Jobs wait in ready while it is open;
/// none is failed by it.
///
/// Failures are runs that ended in an error (retried or dead) or whose
/// worker died; a cancelled run or one snoozed by a rate-limited handler is
/// neither. The window's failures are estimated from two buckets of
/// `window` runs (the current one and the previous one, weighted by how
/// much of it the window still covers), so its state is a few numbers.
///
/// ```
/// use spool_client::admin::Breaker;
/// use std::time::Duration;
/// let b = Breaker::new(50, 100, Duration::from_secs(30), 3);
/// assert_eq!(b.to_string(), "50% of 100, cooldown 30s, 3 probes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Breaker {
    /// Share of failed runs that opens it, 1–100.
    pub percent: u8,
    /// Runs the share is taken over.
    pub window: u32,
    /// How long it stays open before probing.
    #[serde(serialize_with = "ser_ms")]
    pub cooldown: Duration,
    /// Jobs let through half-open; all must succeed to close it.
    pub probes: u32,
}

impl Breaker {
    /// A breaker opening at `percent` % failed runs of the last `window`,
    /// for `cooldown`, closing after `probes` successful probes.
    #[must_use]
    pub fn new(percent: u8, window: u32, cooldown: Duration, probes: u32) -> Self {
        Self {
            percent,
            window,
            cooldown,
            probes,
        }
    }

    /// The form [`str::parse`] reads: `50/100/30s/3`.
    #[must_use]
    pub fn typed(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.percent,
            self.window,
            humantime::format_duration(self.cooldown),
            self.probes
        )
    }

    fn check(&self) -> Result<()> {
        if !(1..=100).contains(&self.percent) || self.window == 0 || self.probes == 0 {
            return Err(Error::InvalidArgument(format!(
                "a breaker needs a percent of 1-100, a window and probes of at least 1, got {self}"
            )));
        }
        Ok(())
    }

    fn stored(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.percent,
            self.window,
            self.cooldown.as_millis(),
            self.probes
        )
    }

    fn from_stored(raw: &str) -> Option<Self> {
        let mut parts = raw.split('/').map(str::parse::<u64>);
        let (Some(Ok(percent)), Some(Ok(window)), Some(Ok(cooldown)), Some(Ok(probes)), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let breaker = Self {
            percent: u8::try_from(percent).ok()?,
            window: u32::try_from(window).ok()?,
            cooldown: Duration::from_millis(cooldown),
            probes: u32::try_from(probes).ok()?,
        };
        breaker.check().is_ok().then_some(breaker)
    }
}

impl fmt::Display for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}% of {}, cooldown {}, {} probe{}",
            self.percent,
            self.window,
            humantime::format_duration(self.cooldown),
            self.probes,
            if self.probes == 1 { "" } else { "s" }
        )
    }
}

impl std::str::FromStr for Breaker {
    type Err = Error;

    /// `PERCENT/WINDOW/COOLDOWN/PROBES`: `50/100/30s/3` opens at 50 % of the
    /// last 100 runs failed, for 30 s, and closes after 3 good probes.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "invalid breaker {s:?}: write PERCENT/WINDOW/COOLDOWN/PROBES, e.g. 50/100/30s/3"
            ))
        };
        let parts: Vec<&str> = s
            .trim()
            .trim_end_matches('%')
            .split('/')
            .map(str::trim)
            .collect();
        let [pct, window, cooldown, probes] = parts.as_slice() else {
            return Err(bad());
        };
        let b = Self::new(
            pct.trim_end_matches('%').parse().map_err(|_| bad())?,
            window.parse().map_err(|_| bad())?,
            humantime::parse_duration(cooldown).map_err(|_| bad())?,
            probes.parse().map_err(|_| bad())?,
        );
        b.check()?;
        Ok(b)
    }
}

/// How a queue's ordered groups run ([`Admin::configure_groups`]).
///
/// ```
/// use spool_client::admin::GroupSettings;
/// let s: GroupSettings = "2/skip".parse()?;
/// assert_eq!(s, GroupSettings { per_group: 2, retry_holds_turn: false });
/// assert_eq!(GroupSettings::default().to_string(), "1/hold");
/// # Ok::<(), spool_client::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupSettings {
    /// Jobs of one group running at once (1: strictly one at a time).
    pub per_group: u32,
    /// A job that failed and will retry keeps its group's turn until it
    /// succeeds or dies (`hold`, the default: strict order); `false`
    /// (`skip`): the group moves on and the retry runs when its turn
    /// comes again.
    pub retry_holds_turn: bool,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            per_group: 1,
            retry_holds_turn: true,
        }
    }
}

impl fmt::Display for GroupSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.retry_holds_turn {
            "hold"
        } else {
            "skip"
        };
        write!(f, "{}/{mode}", self.per_group)
    }
}

impl std::str::FromStr for GroupSettings {
    type Err = Error;

    /// `N/hold` or `N/skip`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "invalid group settings {s:?}: write N/hold or N/skip (N: jobs of a group at once, at least 1)"
            ))
        };
        let (n, mode) = s.trim().split_once('/').ok_or_else(bad)?;
        let per_group: u32 = n.parse().map_err(|_| bad())?;
        let retry_holds_turn = match mode {
            "hold" => true,
            "skip" => false,
            _ => return Err(bad()),
        };
        if per_group == 0 {
            return Err(bad());
        }
        Ok(Self {
            per_group,
            retry_holds_turn,
        })
    }
}

/// Where a circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BreakerState {
    /// Jobs are fetched; runs are counted.
    Closed {
        /// Failed runs in the window (estimate).
        failures: u32,
    },
    /// No job is fetched until the cool-down ends.
    Open {
        /// Time left, by Redis's clock.
        #[serde(serialize_with = "ser_ms")]
        remaining: Duration,
    },
    /// Probe jobs are let through.
    HalfOpen {
        /// Probes handed out so far.
        probes_started: u32,
        /// Probes that succeeded so far.
        probes_succeeded: u32,
    },
}

impl BreakerState {
    /// `closed`, `open` or `half-open`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half-open",
        }
    }
}

/// A queue's fleet controls and their state, read with its [`QueueInfo`](super::QueueInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct QueueControls {
    /// Global concurrency limit ([`Admin::set_concurrency_limit`]).
    pub concurrency_limit: Option<u32>,
    /// Rate limit ([`Admin::set_rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// When the rate limit's bucket is empty: time until the next job may
    /// start (zero when one may start now).
    #[serde(serialize_with = "ser_ms")]
    pub rate_wait: Duration,
    /// Circuit breaker ([`Admin::set_breaker`]) and its state.
    pub breaker: Option<(Breaker, BreakerState)>,
    /// Rate limit of each rate key ([`Admin::set_key_rate_limit`]).
    pub key_rate_limit: Option<RateLimit>,
    /// The queue has had jobs with a group, and how its groups run.
    pub groups: Option<GroupSettings>,
}

/// The settings fields [`QueueControls::from_settings`] reads, in order.
pub(crate) const CONTROL_FIELDS: [&str; 12] = [
    "concurrency",
    "rate",
    "rate_tat",
    "breaker",
    "br_state",
    "br_until",
    "br_f",
    "br_probes",
    "br_ok",
    "key_rate",
    "grouped",
    "groups",
];

impl QueueControls {
    /// Reads [`CONTROL_FIELDS`] (as HMGET returned them) at Redis time
    /// `now_ms`. Anything unreadable counts as unset: another writer's
    /// garbage never fails a page.
    pub(crate) fn from_settings(fields: &[Option<String>], now_ms: i64) -> Self {
        let get = |i: usize| fields.get(i).and_then(Option::as_deref);
        let num = |i: usize| get(i).and_then(|v| v.parse::<f64>().ok());
        let concurrency_limit = get(0)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|l| *l > 0);
        let rate_limit = get(1).and_then(RateLimit::from_stored);
        #[allow(clippy::cast_precision_loss)]
        let now = now_ms as f64;
        let rate_wait = rate_limit.map_or(Duration::ZERO, |r| {
            let interval = r.per.as_secs_f64() * 1000.0 / f64::from(r.jobs);
            let tat = num(2).unwrap_or(0.0).max(now);
            let free_at = tat - f64::from(r.burst.saturating_sub(1)) * interval;
            Duration::from_secs_f64(((free_at - now) / 1000.0).max(0.0))
        });
        let count = |i: usize| get(i).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        let breaker = get(3).and_then(Breaker::from_stored).map(|b| {
            let state = match get(4) {
                Some("open") => BreakerState::Open {
                    remaining: Duration::from_secs_f64(
                        ((num(5).unwrap_or(0.0) - now) / 1000.0).max(0.0),
                    ),
                },
                Some("half") => BreakerState::HalfOpen {
                    probes_started: count(7),
                    probes_succeeded: count(8),
                },
                _ => BreakerState::Closed { failures: count(6) },
            };
            (b, state)
        });
        Self {
            concurrency_limit,
            rate_limit,
            rate_wait,
            breaker,
            key_rate_limit: get(9).and_then(RateLimit::from_stored),
            groups: (get(10).is_some() || get(11).is_some())
                .then(|| get(11).and_then(|g| g.parse().ok()).unwrap_or_default()),
        }
    }

    /// The breaker is open (no job is fetched) or half-open.
    #[must_use]
    pub fn breaker_tripped(&self) -> bool {
        self.breaker
            .is_some_and(|(_, s)| !matches!(s, BreakerState::Closed { .. }))
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Admin {
    /// Sets `queue`'s global concurrency limit: at most `limit` of its jobs
    /// leased at once across every worker (the check is in `fetch.lua`,
    /// atomic with the claim; a lease that expired, its worker dead, frees
    /// its place at once). `None` lifts it. Takes effect at the next fetch;
    /// idle fetchers are woken. Jobs already running past a lowered limit
    /// finish.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// client.admin().set_concurrency_limit("exports", Some(5)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for a limit
    /// of 0 (pause the queue instead); [`Error::Redis`].
    pub async fn set_concurrency_limit(&self, queue: &str, limit: Option<u32>) -> Result<()> {
        if limit == Some(0) {
            return Err(Error::InvalidArgument(
                "a concurrency limit must be at least 1; pause the queue to stop it".to_owned(),
            ));
        }
        let value = limit.map_or_else(String::new, |l| l.to_string());
        self.control(queue, "concurrency", &value, "set concurrency limit")
            .await
    }

    /// Sets `queue`'s rate limit ([`RateLimit`]): across every worker, jobs
    /// start at most at that rate; the rest wait in ready, in order, and
    /// idle workers wait for the next allowed start without polling Redis.
    /// `None` lifts it. Changing it keeps the bucket's level.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// use spool_client::admin::RateLimit;
    /// client.admin().set_rate_limit("emails", Some("100/1s".parse()?)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for a limit
    /// of 0 jobs or a 0 period; [`Error::Redis`].
    pub async fn set_rate_limit(&self, queue: &str, limit: Option<RateLimit>) -> Result<()> {
        let value = RateLimit::stored_or_none(limit)?;
        self.control(queue, "rate", &value, "set rate limit").await
    }

    /// Sets the rate limit each rate key of `queue`'s jobs gets (a tenant,
    /// an account: [`EnqueueOptions::rate_key`](crate::EnqueueOptions::rate_key),
    /// [`Job::rate_key`](crate::Job::rate_key)): each key has a bucket of
    /// its own, so one busy tenant cannot take another's share. A job over
    /// its key's budget is not leased: it waits in the scheduled set for the
    /// next start its key allows (jobs of a key keep their order; none
    /// fails or spends an attempt). Jobs without a key are not limited by
    /// it. `None` lifts it (and forgets the keys' buckets).
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// client.admin().set_key_rate_limit("sync", Some("10/1s".parse()?)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Admin::set_rate_limit`].
    pub async fn set_key_rate_limit(&self, queue: &str, limit: Option<RateLimit>) -> Result<()> {
        let value = RateLimit::stored_or_none(limit)?;
        self.control(queue, "key_rate", &value, "set per-key rate limit")
            .await
    }

    /// Sets how `queue`'s ordered groups run ([`GroupSettings`]: jobs of a
    /// group at once, and whether a retrying job keeps its group's turn);
    /// `None` goes back to the default, one at a time and hold. A raised
    /// limit gives waiting jobs their turns at the next fetch of their
    /// group.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// client.admin().configure_groups("ledger", Some("1/hold".parse()?)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for 0 jobs
    /// per group; [`Error::Redis`].
    pub async fn configure_groups(
        &self,
        queue: &str,
        settings: Option<GroupSettings>,
    ) -> Result<()> {
        if settings.is_some_and(|s| s.per_group == 0) {
            return Err(Error::InvalidArgument(
                "a group runs at least 1 job at a time".to_owned(),
            ));
        }
        let value = settings.map_or_else(String::new, |s| s.to_string());
        self.control(queue, "groups", &value, "configure groups")
            .await
    }

    /// Sets `queue`'s circuit breaker ([`Breaker`]); `None` removes it.
    /// Setting or removing it closes it and forgets its window.
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
    /// use spool_client::admin::Breaker;
    /// use std::time::Duration;
    /// let breaker = Breaker::new(50, 100, Duration::from_secs(30), 3);
    /// client.admin().set_breaker("payments", Some(breaker)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for a
    /// percent outside 1–100 or a window or probes of 0; [`Error::Redis`].
    pub async fn set_breaker(&self, queue: &str, breaker: Option<Breaker>) -> Result<()> {
        if let Some(b) = &breaker {
            b.check()?;
        }
        let value = breaker.map_or_else(String::new, |b| b.stored());
        self.control(queue, "breaker", &value, "set breaker").await
    }

    /// Closes `queue`'s circuit breaker now (an operator decided the
    /// downstream is back) and forgets its window; a `breaker_closed` event
    /// names the actor.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn reset_breaker(&self, queue: &str) -> Result<()> {
        self.control(queue, "breaker_reset", "", "reset breaker")
            .await
    }

    /// One `queue_control.lua` call, then the registry (another slot).
    async fn control(
        &self,
        queue: &str,
        control: &str,
        value: &str,
        what: &'static str,
    ) -> Result<()> {
        let k = self.client.queue_keys(queue)?;
        let mut cmd = SCRIPTS
            .queue_control
            .cmd(&[&k.settings, &k.events, &k.wake]);
        cmd.arg(control).arg(value).arg(self.actor());
        self.write(&cmd, what).await?;
        self.register_queues(&[queue]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_and_print() {
        let r: RateLimit = "50/1s".parse().unwrap();
        assert_eq!((r.jobs, r.per, r.burst), (50, Duration::from_secs(1), 50));
        assert_eq!(r.stored(), "50/1000/50");
        assert_eq!(RateLimit::from_stored("50/1000/50"), Some(r));
        assert_eq!(RateLimit::from_stored("50/1000"), Some(r));
        let m: RateLimit = "10/m burst 2".parse().unwrap();
        assert_eq!((m.jobs, m.per, m.burst), (10, Duration::from_secs(60), 2));
        assert_eq!(m.to_string(), "10/1m burst 2");
        for bad in [
            "",
            "10",
            "0/1s",
            "10/0s",
            "x/1s",
            "10/1s burst 0",
            "10/soon",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        for bad in ["", "0/1000", "5/0", "5/1000/0", "5/1000/1/1", "a/b"] {
            assert_eq!(RateLimit::from_stored(bad), None, "{bad}");
        }
    }

    #[test]
    fn breakers_round_trip_and_reject_garbage() {
        let b = Breaker::new(50, 100, Duration::from_secs(30), 3);
        assert_eq!(b.stored(), "50/100/30000/3");
        assert_eq!(Breaker::from_stored("50/100/30000/3"), Some(b));
        for bad in [
            "",
            "0/100/1/1",
            "101/100/1/1",
            "50/0/1/1",
            "50/1/1/0",
            "50/1/1",
            "x",
        ] {
            assert_eq!(Breaker::from_stored(bad), None, "{bad}");
        }
        assert_eq!("50%/100/30s/3".parse::<Breaker>().unwrap(), b);
        assert_eq!(b.typed().parse::<Breaker>().unwrap(), b);
        for bad in [
            "50/100/30/3",
            "0/100/1s/1",
            "50/100/1s",
            "50/100/1s/0",
            "x/1/1s/1",
        ] {
            assert!(bad.parse::<Breaker>().is_err(), "{bad}");
        }
    }

    #[test]
    fn controls_read_state_and_ignore_garbage() {
        let f = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|s| s.map(str::to_owned)).collect()
        };
        let c = QueueControls::from_settings(
            &f(&[
                Some("5"),
                Some("10/1000/1"),
                Some("2100.5"),
                Some("50/100/30000/3"),
                Some("open"),
                Some("31000"),
                None,
                None,
                None,
                Some("2/1000"),
            ]),
            1000,
        );
        assert_eq!(c.concurrency_limit, Some(5));
        assert_eq!(c.rate_wait, Duration::from_secs_f64(1.1005));
        assert_eq!(
            c.breaker.map(|(_, s)| s),
            Some(BreakerState::Open {
                remaining: Duration::from_secs(30)
            })
        );
        assert!(c.breaker_tripped());
        assert_eq!(c.key_rate_limit.map(|r| r.jobs), Some(2));
        let junk = QueueControls::from_settings(&f(&[Some("-1"), Some("x"), Some("y")]), 5);
        assert_eq!(junk, QueueControls::default());
    }
}
