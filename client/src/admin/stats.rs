//! Stats: processed and failed counts per queue, in total and per minute for
//! the stats window (24 hours by default), plus pick-up latency per minute.
//!
//! Counters are written by the scripts (`ack.lua`: processed; `fail.lua`,
//! `reap.lua`, `fetch.lua` for unparsable entries: failed; `fetch.lua`:
//! fetched count and latency sum) into one hash per queue, keyed by the
//! minute on Redis's clock; the trimmer drops minutes past the window. The
//! field names are in `wire.rs` (`stats_field`).

use std::collections::HashMap;

use serde::Serialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::wire::stats_field;

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

    /// Sums the stats of several queues (per-minute latency is averaged,
    /// weighted by jobs fetched). All inputs must cover the same minutes, as
    /// [`Admin::stats_of`] returns them.
    #[must_use]
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut total = Self::default();
        for other in all {
            total.processed += other.processed;
            total.failed += other.failed;
            if total.minutes.is_empty() {
                total.minutes.clone_from(&other.minutes);
                continue;
            }
            for (a, b) in total.minutes.iter_mut().zip(&other.minutes) {
                let fetched = a.fetched + b.fetched;
                if let Some(avg) = (a.latency_avg_ms * a.fetched + b.latency_avg_ms * b.fetched)
                    .checked_div(fetched)
                {
                    a.latency_avg_ms = avg;
                }
                a.processed += b.processed;
                a.failed += b.failed;
                a.fetched = fetched;
            }
        }
        total
    }

    /// Builds one queue's stats from its hash fields, for the `minutes`
    /// minutes ending with minute number `current` (Redis ms / 60,000).
    fn from_fields(fields: &HashMap<String, u64>, current: i64, minutes: usize) -> Self {
        let get = |name: &str| fields.get(name).copied().unwrap_or(0);
        let at = |name: &str, m: i64| get(&stats_field::minute(name, m));
        let first = current - i64::try_from(minutes).unwrap_or(1) + 1;
        let minutes = (first..=current)
            .map(|m| {
                let fetched = at(stats_field::FETCHED, m);
                MinuteStats {
                    minute_ms: m * 60_000,
                    processed: at(stats_field::PROCESSED, m),
                    failed: at(stats_field::FAILED, m),
                    fetched,
                    latency_avg_ms: at(stats_field::FETCH_LATENCY, m)
                        .checked_div(fetched)
                        .unwrap_or(0),
                }
            })
            .collect();
        Self {
            processed: get(stats_field::PROCESSED),
            failed: get(stats_field::FAILED),
            minutes,
        }
    }
}

impl Admin {
    /// Stats of one queue for the last `minutes` minutes (1 to 1,440).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`], [`Error::Redis`].
    pub async fn stats(&self, queue: &str, minutes: usize) -> Result<QueueStats> {
        let mut all = self.stats_of(&[queue], minutes).await?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Stats of several queues for the same `minutes` minutes (1 to 1,440),
    /// in input order, read in one round trip.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`], [`Error::Redis`].
    pub async fn stats_of<Q: AsRef<str>>(
        &self,
        queues: &[Q],
        minutes: usize,
    ) -> Result<Vec<QueueStats>> {
        Ok(self.read_stats(queues, minutes).await?.1)
    }

    /// The current minute (Redis's clock) and the stats of `queues`, in one
    /// round trip.
    async fn read_stats<Q: AsRef<str>>(
        &self,
        queues: &[Q],
        minutes: usize,
    ) -> Result<(i64, Vec<QueueStats>)> {
        if minutes == 0 || minutes > STATS_MINUTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "stats window must be 1 to {STATS_MINUTES_MAX} minutes"
            )));
        }
        let mut pipe = super::timed_pipe();
        for q in queues {
            pipe.cmd("HGETALL")
                .arg(&self.client.queue_keys(q.as_ref())?.stats);
        }
        let (now, it) = self.run_timed(&pipe, "stats").await?;
        let current = now / 60_000;
        let stats = it
            .map(|reply| {
                // Bytes, and a field that is not a count is ignored: any
                // client may have written to the hash.
                let raw: HashMap<Vec<u8>, Vec<u8>> =
                    redis::from_redis_value(reply).map_err(Error::parse("HGETALL stats"))?;
                let fields: HashMap<String, u64> = raw
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let v = std::str::from_utf8(&v).ok()?.parse().ok()?;
                        Some((String::from_utf8(k).ok()?, v))
                    })
                    .collect();
                Ok(QueueStats::from_fields(&fields, current, minutes))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((current, stats))
    }

    /// Stats of every queue summed, for the last `minutes` minutes. With no
    /// queues yet the window is still dense (zeros).
    ///
    /// # Errors
    /// As [`Admin::stats`].
    pub async fn total_stats(&self, minutes: usize) -> Result<QueueStats> {
        let names = self.queue_names().await?;
        let (current, mut all) = self.read_stats(&names, minutes).await?;
        if all.is_empty() {
            all.push(QueueStats::from_fields(&HashMap::new(), current, minutes));
        }
        Ok(QueueStats::sum(&all))
    }
}
