//! Stats: processed and failed counts per queue, in total and per minute for
//! the stats window (24 hours by default), plus pick-up latency per minute.
//!
//! Counters are written by the scripts (`ack.lua`: processed; `fail.lua`,
//! `reap.lua`, `fetch.lua` for unparsable entries: failed; `fetch.lua`:
//! fetched count and latency sum) into one hash per queue, keyed by the
//! minute on Redis's clock; the trimmer drops minutes past the window.

use std::collections::HashMap;

use serde::Serialize;

use super::Admin;
use crate::error::{Error, Result};

/// Most minutes one stats call returns (24 hours).
pub const STATS_MINUTES_MAX: usize = 24 * 60;

/// Counts of one minute.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct MinuteStats {
    /// Start of the minute (Redis ms).
    pub minute_ms: i64,
    /// Jobs that succeeded.
    pub processed: u64,
    /// Failed runs (each failed attempt counts, including lost leases).
    pub failed: u64,
    /// Jobs fetched.
    pub fetched: u64,
    /// Mean time from ready to fetched, in ms.
    pub latency_avg_ms: u64,
}

/// Stats of one queue (or of all queues summed).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Jobs that succeeded since the queue's stats began.
    pub processed: u64,
    /// Failed runs since the queue's stats began.
    pub failed: u64,
    /// Per-minute counts, oldest first, ending with the current minute.
    pub minutes: Vec<MinuteStats>,
}

impl QueueStats {
    /// Sums the counts of the last `n` minutes: (processed, failed).
    #[must_use]
    pub fn last_minutes(&self, n: usize) -> (u64, u64) {
        self.minutes
            .iter()
            .rev()
            .take(n)
            .fold((0, 0), |(p, f), m| (p + m.processed, f + m.failed))
    }

    fn add(&mut self, other: &Self) {
        self.processed += other.processed;
        self.failed += other.failed;
        if self.minutes.is_empty() {
            self.minutes.clone_from(&other.minutes);
            return;
        }
        for (a, b) in self.minutes.iter_mut().zip(&other.minutes) {
            let fetched = a.fetched + b.fetched;
            if let Some(avg) =
                (a.latency_avg_ms * a.fetched + b.latency_avg_ms * b.fetched).checked_div(fetched)
            {
                a.latency_avg_ms = avg;
            }
            a.processed += b.processed;
            a.failed += b.failed;
            a.fetched = fetched;
        }
    }
}

impl Admin {
    /// Stats of one queue for the last `minutes` minutes (1 to 1,440).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`], [`Error::Redis`].
    pub async fn stats(&self, queue: &str, minutes: usize) -> Result<QueueStats> {
        if minutes == 0 || minutes > STATS_MINUTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "stats window must be 1 to {STATS_MINUTES_MAX} minutes"
            )));
        }
        let k = self.client.queue_keys(queue)?;
        let ((secs, _micros), fields): ((i64, i64), HashMap<String, u64>) = redis::pipe()
            .cmd("TIME")
            .cmd("HGETALL")
            .arg(&k.stats)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("stats"))?;
        let current = secs / 60;
        let get = |name: &str| fields.get(name).copied().unwrap_or(0);
        let first = current - i64::try_from(minutes).unwrap_or(1) + 1;
        let minutes = (first..=current)
            .map(|m| {
                let fetched = get(&format!("fc:{m}"));
                MinuteStats {
                    minute_ms: m * 60_000,
                    processed: get(&format!("p:{m}")),
                    failed: get(&format!("f:{m}")),
                    fetched,
                    latency_avg_ms: get(&format!("fl:{m}")).checked_div(fetched).unwrap_or(0),
                }
            })
            .collect();
        Ok(QueueStats {
            processed: get("p"),
            failed: get("f"),
            minutes,
        })
    }

    /// Stats of every queue summed, for the last `minutes` minutes.
    ///
    /// # Errors
    /// As [`Admin::stats`].
    pub async fn total_stats(&self, minutes: usize) -> Result<QueueStats> {
        let mut total = QueueStats::default();
        for q in self.queue_names().await? {
            total.add(&self.stats(&q, minutes).await?);
        }
        if total.minutes.is_empty() {
            // No queues yet: still return a dense, zeroed window.
            let now = self.client.redis_time_ms().await? / 60_000;
            let n = i64::try_from(minutes.clamp(1, STATS_MINUTES_MAX)).unwrap_or(1);
            total.minutes = (now - n + 1..=now)
                .map(|m| MinuteStats {
                    minute_ms: m * 60_000,
                    ..MinuteStats::default()
                })
                .collect();
        }
        Ok(total)
    }
}
