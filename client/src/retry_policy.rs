//! Retry delays: how long a failed job waits in the retry set before its next
//! attempt.
//!
//! Lives in the client because a job type declares its policy next to its
//! other defaults ([`JobOptions`](crate::JobOptions)); the worker applies it
//! when a handler fails. The delay is added to Redis's clock by `fail.lua`.

use std::time::Duration;

use rand::Rng;

/// Chooses the delay before the next attempt. A job type sets its own with
/// [`JobOptions::retry_policy`](crate::JobOptions::retry_policy); without
/// one the default [`ExponentialJitter`] applies. A handler can still ask
/// for a particular delay once with `JobError::retry_after`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spool_client::{FixedDelay, Job, JobOptions, RetryPolicy};
/// use std::time::Duration;
///
/// /// 1 s, 2 s, 3 s, … at most a minute.
/// struct Linear;
/// impl RetryPolicy for Linear {
///     fn delay(&self, attempt: u32) -> Duration {
///         Duration::from_secs(u64::from(attempt).min(60))
///     }
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Poll { url: String }
/// impl Job for Poll {
///     const TYPE: &'static str = "poll";
///     fn options() -> JobOptions {
///         JobOptions::default().max_attempts(10).retry_policy(Linear)
///     }
/// }
/// assert_eq!(Linear.delay(3), Duration::from_secs(3));
/// let _every_30s = JobOptions::default().retry_policy(FixedDelay(Duration::from_secs(30)));
/// ```
pub trait RetryPolicy: Send + Sync {
    /// Delay after failed attempt number `attempt` (1 for the first run).
    fn delay(&self, attempt: u32) -> Duration;
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, capped at `max`,
/// plus a random extra of up to `jitter` of that delay (so failures of many
/// jobs at once do not retry in lock-step).
///
/// The default (15 s base, 6 h cap, 25 % jitter) spreads 25 attempts over
/// about four days, in the spirit of Sidekiq's default.
///
/// ```
/// use spool_client::{ExponentialJitter, RetryPolicy};
/// use std::time::Duration;
/// let policy = ExponentialJitter { base: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.0 };
/// assert_eq!(policy.delay(1), Duration::from_secs(1));
/// assert_eq!(policy.delay(3), Duration::from_secs(4));
/// assert_eq!(policy.delay(30), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialJitter {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound before jitter.
    pub max: Duration,
    /// Extra random fraction (0.0 to 1.0) added on top.
    pub jitter: f64,
}

impl ExponentialJitter {
    /// Default base delay.
    pub const BASE_DEFAULT: Duration = Duration::from_secs(15);
    /// Default cap.
    pub const MAX_DEFAULT: Duration = Duration::from_secs(6 * 3600);
    /// Default jitter fraction.
    pub const JITTER_DEFAULT: f64 = 0.25;
}

impl Default for ExponentialJitter {
    fn default() -> Self {
        Self {
            base: Self::BASE_DEFAULT,
            max: Self::MAX_DEFAULT,
            jitter: Self::JITTER_DEFAULT,
        }
    }
}

impl RetryPolicy for ExponentialJitter {
    fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let raw = self.base.saturating_mul(1u32 << exp.min(31));
        let capped = raw.min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return capped;
        }
        let extra = rand::rng().random_range(0.0..=jitter);
        capped + capped.mul_f64(extra)
    }
}

/// The same delay after every failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedDelay(pub Duration);

impl RetryPolicy for FixedDelay {
    fn delay(&self, _attempt: u32) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_jitter() {
        let p = ExponentialJitter::default();
        let mut last = Duration::ZERO;
        for attempt in 1..=10 {
            let d = p.delay(attempt);
            let floor = (ExponentialJitter::BASE_DEFAULT * (1 << (attempt - 1))).min(p.max);
            assert!(
                d >= floor && d <= floor.mul_f64(1.25),
                "attempt {attempt}: {d:?}"
            );
            assert!(d >= last.mul_f64(0.8));
            last = d;
        }
        assert!(p.delay(100) <= p.max.mul_f64(1.25));
    }
}
