//! What a handler can say about a failure: [`JobError`].
//!
//! A plain error retries with the job type's backoff; `permanent` goes
//! straight to the dead set; `retry_after` picks the delay itself;
//! `rate_limited` runs the job again later without spending an attempt. The
//! executor turns this (or a panic, a timeout, an undecodable payload) into
//! the client's [`Outcome`](spool_client::lease::Outcome).

use std::fmt;
use std::time::Duration;

/// A handler's failure and what to do about it.
///
/// ```
/// use spool_worker::JobError;
/// use std::time::Duration;
/// let e = JobError::retry("smtp timeout");
/// let p = JobError::permanent("address does not exist");
/// let later = JobError::retry_after("flaky upstream", Duration::from_secs(30));
/// let throttled = JobError::rate_limited("429 from the mail API", Duration::from_secs(10));
/// // Any std error converts into a retryable JobError with `?`.
/// fn parse(s: &str) -> Result<u32, JobError> { Ok(s.parse::<u32>()?) }
/// assert!(parse("x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub(crate) message: String,
    pub(crate) kind: JobErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobErrorKind {
    Retry,
    RetryAfter(Duration),
    Snooze(Duration),
    Permanent,
}

impl JobError {
    /// Retry with the job type's retry policy (dead once attempts run out).
    pub fn retry(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            kind: JobErrorKind::Retry,
        }
    }

    /// Fail for good: the job goes to the dead set now.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            kind: JobErrorKind::Permanent,
        }
    }

    /// Retry after `delay` instead of the policy's delay.
    pub fn retry_after(message: impl fmt::Display, delay: Duration) -> Self {
        Self {
            message: message.to_string(),
            kind: JobErrorKind::RetryAfter(delay),
        }
    }

    /// A downstream rate-limited this run (an HTTP 429, a quota): run the
    /// job again after `delay` without counting this run as an attempt, so
    /// a busy downstream never sends it to the dead set; it is not an
    /// error for the circuit breaker either. The timeline shows the run and
    /// `message`.
    pub fn rate_limited(message: impl fmt::Display, delay: Duration) -> Self {
        Self {
            message: message.to_string(),
            kind: JobErrorKind::Snooze(delay),
        }
    }

    /// The error text recorded in the job's history.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for [`JobError::permanent`].
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.kind == JobErrorKind::Permanent
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        Self::retry(e)
    }
}
