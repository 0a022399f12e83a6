//! Worker configuration: queues (weights or strict order, per-queue limits),
//! concurrency, lease and heartbeat timing, shutdown grace and the periods of
//! the maintenance services. Every field has a documented default
//! (`*_DEFAULT`) and [`WorkerConfig::validate`] refuses nonsense at start-up.

use std::time::Duration;

use crate::error::{Error, Result};

/// How the fetcher picks among several queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueOrder {
    /// Each fetch round orders queues by weighted random choice (Sidekiq's
    /// weighted mode): a queue with weight 3 comes first three times as often
    /// as one with weight 1, and no queue starves.
    #[default]
    Weighted,
    /// Always in the listed order: a later queue is served only when the
    /// earlier ones are empty (or at their own limit).
    Strict,
}

/// One queue a worker fetches from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queue name.
    pub name: String,
    /// Relative weight in [`QueueOrder::Weighted`] (at least 1). Default 1.
    pub weight: u32,
    /// Most jobs of this queue running at once in this process; `None` means
    /// only the global limit applies.
    pub concurrency: Option<usize>,
}

impl QueueSpec {
    /// A queue with weight 1 and no own limit.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            weight: 1,
            concurrency: None,
        }
    }

    /// Sets the weight.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the per-queue concurrency limit.
    #[must_use]
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = Some(limit);
        self
    }
}

/// Everything a worker process is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Queues to fetch from. Default: the queues the registered job types name.
    pub queues: Vec<QueueSpec>,
    /// Weighted or strict order. Default weighted.
    pub order: QueueOrder,
    /// Most jobs running at once in this process. Default 10.
    pub concurrency: usize,
    /// Most jobs claimed by one fetch call. Default 100.
    pub fetch_batch_max: usize,
    /// Lease length: a job whose worker stops extending it for this long is
    /// given to another worker. Default 15 s.
    pub lease: Duration,
    /// How often running jobs' leases are extended and the process record is
    /// refreshed; must be under a third of `lease`. Default 5 s.
    pub heartbeat_interval: Duration,
    /// How long the process record survives without a heartbeat. Default 30 s.
    pub process_ttl: Duration,
    /// How long an idle fetcher's blocking wait on Redis lasts before it is
    /// issued again (a job arriving ends it at once, so this does not delay
    /// pick-up; it only sets the idle cost). Default 2 s.
    pub idle_wait: Duration,
    /// Longest pause between looks at the scheduled and retry sets (the
    /// scheduler sleeps exactly until the next due job when that is sooner,
    /// and is woken early when a sooner job arrives). Default 5 s.
    pub scheduler_interval: Duration,
    /// How often expired leases are looked for. Default 5 s.
    pub reaper_interval: Duration,
    /// How often retention (dead set caps, stats window) is applied. Default 60 s.
    pub trimmer_interval: Duration,
    /// On shutdown, how long running jobs may take to finish before they are
    /// handed back to ready. Default 25 s.
    pub shutdown_timeout: Duration,
    /// Refuse to start when Redis's `maxmemory-policy` is not `noeviction`.
    /// Default true; turn off only for throwaway experiments.
    pub require_noeviction: bool,
    /// Settings of the cron service (used when the worker has a cron table).
    pub cron: crate::services::CronConfig,
    /// What to do with a job of a type no handler is registered for.
    /// Default [`UnknownTypes::Retry`].
    pub unknown_types: UnknownTypes,
}

impl WorkerConfig {
    /// Default concurrency.
    pub const CONCURRENCY_DEFAULT: usize = 10;
    /// Default fetch batch cap.
    pub const FETCH_BATCH_MAX_DEFAULT: usize = 100;
    /// Default lease.
    pub const LEASE_DEFAULT: Duration = Duration::from_secs(15);
    /// Default heartbeat interval.
    pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
    /// Default process record TTL.
    pub const PROCESS_TTL_DEFAULT: Duration = Duration::from_secs(30);
    /// Default idle wait.
    pub const IDLE_WAIT_DEFAULT: Duration = Duration::from_secs(2);
    /// Default scheduler interval.
    pub const SCHEDULER_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
    /// Default reaper interval.
    pub const REAPER_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
    /// Default trimmer interval.
    pub const TRIMMER_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);
    /// Default shutdown grace.
    pub const SHUTDOWN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(25);

    /// Checks every field; the error names the field and the rule.
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::Config(m));
        if self.queues.is_empty() {
            return fail("at least one queue is required".into());
        }
        let mut seen = std::collections::HashSet::new();
        for q in &self.queues {
            spool_client::validate_queue_name(&q.name).map_err(|e| Error::Config(e.to_string()))?;
            if !seen.insert(q.name.as_str()) {
                return fail(format!("queue {:?} is listed twice", q.name));
            }
            if q.weight == 0 {
                return fail(format!("queue {:?}: weight must be at least 1", q.name));
            }
            if q.concurrency == Some(0) {
                return fail(format!(
                    "queue {:?}: concurrency must be at least 1",
                    q.name
                ));
            }
        }
        if self.concurrency == 0 || self.concurrency > 100_000 {
            return fail("concurrency must be 1 to 100000".into());
        }
        if self.fetch_batch_max == 0 {
            return fail("fetch_batch_max must be at least 1".into());
        }
        if self.lease < Duration::from_millis(100) {
            return fail("lease must be at least 100 ms".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval * 3 > self.lease {
            return fail(format!(
                "heartbeat_interval ({:?}) must be non-zero and at most a third of lease ({:?})",
                self.heartbeat_interval, self.lease
            ));
        }
        if self.process_ttl <= self.heartbeat_interval {
            return fail("process_ttl must be longer than heartbeat_interval".into());
        }
        for (name, d) in [
            ("idle_wait", self.idle_wait),
            ("scheduler_interval", self.scheduler_interval),
            ("reaper_interval", self.reaper_interval),
            ("trimmer_interval", self.trimmer_interval),
        ] {
            if d < Duration::from_millis(10) {
                return fail(format!("{name} must be at least 10 ms"));
            }
        }
        self.cron.validate()
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            order: QueueOrder::Weighted,
            concurrency: Self::CONCURRENCY_DEFAULT,
            fetch_batch_max: Self::FETCH_BATCH_MAX_DEFAULT,
            lease: Self::LEASE_DEFAULT,
            heartbeat_interval: Self::HEARTBEAT_INTERVAL_DEFAULT,
            process_ttl: Self::PROCESS_TTL_DEFAULT,
            idle_wait: Self::IDLE_WAIT_DEFAULT,
            scheduler_interval: Self::SCHEDULER_INTERVAL_DEFAULT,
            reaper_interval: Self::REAPER_INTERVAL_DEFAULT,
            trimmer_interval: Self::TRIMMER_INTERVAL_DEFAULT,
            shutdown_timeout: Self::SHUTDOWN_TIMEOUT_DEFAULT,
            require_noeviction: true,
            cron: crate::services::CronConfig::default(),
            unknown_types: UnknownTypes::default(),
        }
    }
}

/// What a worker does with a job whose type it has no handler for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownTypes {
    /// Retry it with the default backoff ([`ExponentialJitter`](spool_client::ExponentialJitter)),
    /// each run counted as an attempt, with an error naming the type and the
    /// types this worker knows: producers are often deployed before the
    /// workers that handle their new types, and the job runs once one is up
    /// (Sidekiq's behaviour). It goes dead when its attempts are used up.
    #[default]
    Retry,
    /// Move it to the dead set on its first run.
    Dead,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> WorkerConfig {
        WorkerConfig {
            queues: vec![QueueSpec::new("default")],
            ..WorkerConfig::default()
        }
    }

    #[test]
    fn defaults_with_a_queue_are_valid() {
        valid().validate().expect("valid");
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let cases: Vec<(WorkerConfig, &str)> = vec![
            (WorkerConfig::default(), "at least one queue"),
            (
                WorkerConfig {
                    concurrency: 0,
                    ..valid()
                },
                "concurrency",
            ),
            (
                WorkerConfig {
                    heartbeat_interval: Duration::from_secs(10),
                    ..valid()
                },
                "heartbeat_interval",
            ),
            (
                WorkerConfig {
                    queues: vec![QueueSpec::new("a b")],
                    ..valid()
                },
                "invalid queue name",
            ),
            (
                WorkerConfig {
                    queues: vec![QueueSpec::new("a").weight(0)],
                    ..valid()
                },
                "weight",
            ),
            (
                WorkerConfig {
                    queues: vec![QueueSpec::new("a"), QueueSpec::new("a")],
                    ..valid()
                },
                "twice",
            ),
        ];
        for (cfg, needle) in cases {
            let err = cfg.validate().expect_err(needle).to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
