//! What a cron pass does for one entry: from the entry's cursor (the last
//! tick it handled) and Redis's clock, which due tick to enqueue and which
//! to skip.
//!
//! Pure function of its inputs, like the schedule math: the worker's cron
//! service plans here and applies the plan with one `cron_tick.lua` call.
//! Every wall time of the schedule that comes due is accounted for exactly
//! once: it fires, or it is counted in `skipped` (missed beyond the grace
//! period, overtaken by a later due tick, or one of several wall times that
//! a DST gap made land on one instant).

use std::time::Duration;

use super::schedule::{CronSchedule, Tick};

/// Most due ticks one plan walks one by one before jumping to the grace
/// window (bounds the work after a very long outage of a fine schedule).
pub(super) const PLAN_SCAN_LIMIT: u64 = 100_000;

/// What a cron pass does for one entry (see [`CronSchedule::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronPlan {
    /// The tick to enqueue now (Redis ms), if any.
    pub fire: Option<i64>,
    /// The entry's new cursor: every tick at or before it has been handled.
    pub cursor: i64,
    /// Due wall-clock ticks that will not be enqueued: older than the grace
    /// period, overtaken by a later due tick (no bursts), or merged with
    /// other ticks of a DST gap into the first instant after it (one run
    /// for them all). A lower bound after an outage longer than 100,000
    /// ticks.
    pub skipped: u64,
    /// The instant of the latest skipped tick (for ticks merged after a
    /// DST gap: the instant they were merged into).
    pub last_skipped: Option<i64>,
}

impl CronSchedule {
    /// Decides what to do at Redis time `now_ms` for an entry whose cursor
    /// (last handled tick) is `cursor_ms` (`None`: the entry is new).
    ///
    /// The due ticks are those in `(cursor, now]`. The latest fires if it is
    /// at most `grace` old; every other due tick is skipped (recorded, never
    /// replayed: at most one catch-up run). Wall times that a DST gap maps
    /// to one instant fire once there; the others count as skipped. A new
    /// entry starts its cursor at `now` and fires nothing. Returns `None`
    /// when nothing is due.
    ///
    /// ```
    /// use spool_client::CronSchedule;
    /// use std::time::Duration;
    /// let every_10s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
    /// // Cursor at 0 s, now 35 s: ticks 10, 20, 30 are due; 30 fires, 10 and 20 are skipped.
    /// let plan = every_10s.plan(Some(0), 35_000, Duration::from_secs(60)).unwrap();
    /// assert_eq!((plan.fire, plan.cursor, plan.skipped), (Some(30_000), 30_000, 2));
    /// ```
    #[must_use]
    pub fn plan(&self, cursor_ms: Option<i64>, now_ms: i64, grace: Duration) -> Option<CronPlan> {
        let Some(cursor) = cursor_ms else {
            return Some(CronPlan {
                fire: None,
                cursor: now_ms,
                skipped: 0,
                last_skipped: None,
            });
        };
        if cursor >= now_ms {
            return None;
        }
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut acc = Skips::default();
        let mut latest: Option<Tick> = None;
        let mut from = cursor;
        let mut walked = 0u64;
        while let Some(tick) = self.next_tick(from, true).filter(|t| t.at <= now_ms) {
            if let Some(older) = latest {
                acc.skip(1, older.at);
            }
            // All but one of the wall times merged on this instant.
            acc.skip(tick.walls - 1, tick.at);
            latest = Some(tick);
            from = tick.at;
            walked += 1;
            if walked >= PLAN_SCAN_LIMIT && now_ms - tick.at > grace_ms {
                // Far behind: everything up to the grace window is skipped
                // without counting each tick (the count becomes a lower bound).
                acc.skip(1, tick.at);
                latest = None;
                from = now_ms
                    .saturating_sub(grace_ms)
                    .saturating_sub(1)
                    .max(tick.at);
                walked = 0;
            }
        }
        let fire = match latest {
            Some(tick) if now_ms - tick.at <= grace_ms => Some(tick.at),
            Some(tick) => {
                acc.skip(1, tick.at);
                None
            }
            None if acc.count == 0 => return None,
            None => None,
        };
        Some(CronPlan {
            fire,
            cursor: latest.map_or(from, |t| t.at),
            skipped: acc.count,
            last_skipped: acc.last,
        })
    }
}

/// Skipped ticks counted so far, and the instant of the latest.
#[derive(Debug, Default)]
struct Skips {
    count: u64,
    last: Option<i64>,
}

impl Skips {
    fn skip(&mut self, n: u64, at: i64) {
        if n > 0 {
            self.count = self.count.saturating_add(n);
            self.last = Some(at);
        }
    }
}
