//! Capped exponential backoff with jitter for loops that talk to Redis: an
//! error is logged, the loop waits, and tries again; it never ends the worker.

use std::time::Duration;

use rand::Rng;

/// Backoff state of one loop.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
        }
    }

    /// The default for Redis loops: 50 ms doubling to 1 s, so a worker is
    /// back at work about a second after Redis is.
    pub(crate) fn redis() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// The delay to wait now (with up to 50 % jitter); doubles the next one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base + base.mul_f64(rand::rng().random_range(0.0..0.5))
    }

    /// Call after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// `d` in whole milliseconds, for log fields (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `d` with ±10 % jitter, so periodic work on many hosts does not tick together.
pub(crate) fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(10) && delays[0] < Duration::from_millis(15));
        assert!(delays[5] >= Duration::from_millis(80) && delays[5] < Duration::from_millis(120));
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(15));
    }
}
