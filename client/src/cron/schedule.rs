//! Schedule math for cron entries: a parsed expression with its time zone,
//! and the next tick after an instant.
//!
//! Pure functions of their inputs (instants are Redis ms passed in by the
//! caller, never read from the host clock), so every rule here, DST
//! included, is tested with explicit instants (unit tests in
//! `schedule/tests.rs`, and `client/tests/cron_dst.rs`, which checks whole
//! years in several zones against an independent reference). The fields are
//! parsed in `parse.rs` (the `cron` crate's parser plus the standard cron
//! conventions); this module walks the matching wall times and maps each to
//! an instant with the DST policy of `dst.rs`; `plan.rs` decides what a
//! cron pass does with the ticks that came due.
//!
//! `@every <duration>` is a fixed interval in absolute time (multiples of
//! the period since the Unix epoch): DST never affects it.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::dst;
use super::parse::{parse_every, parse_fields};

/// Most candidate wall times examined to find one tick (a fall-back hour of
/// a per-second schedule is 3,600 candidates that map before the instant).
const NEXT_SCAN_LIMIT: u32 = 10_000;

/// Most wall times counted as landing on one instant after a gap (a
/// per-second schedule over a whole skipped day is 86,401); past it the
/// count is a lower bound.
const COLLAPSE_COUNT_LIMIT: usize = 100_000;

/// A parsed schedule in its time zone.
///
/// ```
/// use spool_client::CronSchedule;
/// let s = CronSchedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
/// // 2024-01-01T00:07:00Z → the next quarter hour, 00:15 UTC (01:15 in Berlin).
/// assert_eq!(s.next_after(1_704_067_620_000), Some(1_704_068_100_000));
/// assert!(CronSchedule::parse("61 * * * *", "UTC").is_err());
/// assert!(CronSchedule::parse("@hourly", "Mars/Olympus").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub(super) tz: Tz,
    kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// Fixed period in ms, anchored on the Unix epoch.
    Every(i64),
    /// Wall-clock fields. `either` is set when both day-of-month and
    /// day-of-week are restricted: a day matches when either does (Vixie
    /// cron's rule), so the ticks are the union of both schedules.
    Fields {
        primary: Box<::cron::Schedule>,
        either: Option<Box<::cron::Schedule>>,
    },
}

/// One tick: an instant, and how many of the schedule's wall times land on
/// it (more than one only at the first instant after a DST gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tick {
    /// The instant (ms since the Unix epoch).
    pub(super) at: i64,
    /// Wall times of the schedule that fire at `at` (at least 1).
    pub(super) walls: u64,
}

impl CronSchedule {
    /// Parses `expr` in time zone `timezone` (an IANA name such as
    /// `Europe/Berlin`, or `UTC`).
    ///
    /// Accepted forms:
    /// - 5 fields `min hour day-of-month month day-of-week` (standard cron);
    /// - 6 fields with seconds first, or 7 with a year last;
    /// - `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
    ///   (`@midnight`), `@hourly`;
    /// - `@every <duration>` in `humantime`'s syntax (`@every 90s`,
    ///   `@every 1h30m`, `@every 1d`), whole milliseconds, at least one second.
    ///
    /// Day of week is `0`–`7` (0 and 7 are Sunday) or `sun`–`sat`. When
    /// both day fields are restricted a day matches if either does.
    ///
    /// # Errors
    /// A readable reason (the caller adds the entry's name).
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, String> {
        let tz = Tz::from_str(timezone).map_err(|_| {
            format!(
                "unknown time zone {timezone:?} (expected an IANA name such as \"Europe/Berlin\", or \"UTC\")"
            )
        })?;
        let expr = expr.trim();
        let kind = if let Some(rest) = expr.strip_prefix("@every") {
            Kind::Every(parse_every(rest.trim())?)
        } else {
            parse_fields(expr)?
        };
        let schedule = Self { tz, kind };
        // Validation only (not a schedule decision): a schedule must fire
        // at some point from now on, or it is a typo such as "0 0 30 2 *".
        if schedule.next_after(Utc::now().timestamp_millis()).is_none() {
            return Err(format!("schedule {expr:?} never fires"));
        }
        Ok(schedule)
    }

    /// The time zone.
    #[must_use]
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after_ms` (ms since the Unix epoch),
    /// or `None` when the schedule has no more ticks.
    ///
    /// A wall time skipped by a DST change fires at the first instant after
    /// the gap; a repeated one at its first occurrence (see `docs/CRON.md`).
    #[must_use]
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        self.next_tick(after_ms, false).map(|t| t.at)
    }

    /// The first tick strictly after `after_ms`; with `count`, also how
    /// many wall times land on it (otherwise `walls` is 1).
    pub(super) fn next_tick(&self, after_ms: i64, count: bool) -> Option<Tick> {
        match &self.kind {
            Kind::Every(period) => Some(Tick {
                at: after_ms
                    .div_euclid(*period)
                    .checked_add(1)?
                    .checked_mul(*period)?,
                walls: 1,
            }),
            Kind::Fields { primary, either } => {
                self.next_wall_tick(primary, either.as_deref(), after_ms, count)
            }
        }
    }

    fn next_wall_tick(
        &self,
        primary: &::cron::Schedule,
        either: Option<&::cron::Schedule>,
        after_ms: i64,
        count: bool,
    ) -> Option<Tick> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        // Every wall time up to the local reading of `after` maps to an
        // instant at or before `after` (the map is non-decreasing and that
        // reading is not in a gap), so the walk starts there.
        let mut walls =
            WallTimes::after(primary, either, after.with_timezone(&self.tz).naive_local());
        for _ in 0..NEXT_SCAN_LIMIT {
            let wall = walls.next()?;
            let resolved = dst::resolve(self.tz, wall)?;
            // Candidates at or before `after` occur while the clock repeats
            // an hour: they map to the first pass, which is already over.
            if resolved.at <= after_ms {
                continue;
            }
            let mut tick = Tick {
                at: resolved.at,
                walls: 1,
            };
            if let (true, Some(end)) = (count, resolved.gap_end) {
                // The rest of the gap, and the wall time at its end, read
                // the same instant: they fire together with this one.
                let same = walls
                    .take(COLLAPSE_COUNT_LIMIT)
                    .take_while(|w| *w <= end)
                    .count();
                tick.walls += u64::try_from(same).unwrap_or(u64::MAX);
            }
            return Some(tick);
        }
        None
    }
}

/// The schedule's wall times strictly after a local wall time, ascending:
/// the `cron` crate walks them on a zone without DST (UTC stands in for
/// "local"), merging the two schedules of the day-of-month OR day-of-week
/// rule without repeating a wall time both produce.
struct WallTimes<'a> {
    a: ::cron::ScheduleIterator<'a, Utc>,
    b: Option<::cron::ScheduleIterator<'a, Utc>>,
    head_a: Option<DateTime<Utc>>,
    head_b: Option<DateTime<Utc>>,
}

impl<'a> WallTimes<'a> {
    fn after(
        primary: &'a ::cron::Schedule,
        either: Option<&'a ::cron::Schedule>,
        local: NaiveDateTime,
    ) -> Self {
        let local = Utc.from_utc_datetime(&local);
        let mut a = primary.after(&local);
        let mut b = either.map(|s| s.after(&local));
        let head_a = a.next();
        let head_b = b.as_mut().and_then(Iterator::next);
        Self {
            a,
            b,
            head_a,
            head_b,
        }
    }

    fn advance_b(&mut self) {
        self.head_b = self.b.as_mut().and_then(Iterator::next);
    }
}

impl Iterator for WallTimes<'_> {
    type Item = NaiveDateTime;

    fn next(&mut self) -> Option<NaiveDateTime> {
        let out = match (self.head_a, self.head_b) {
            (Some(x), Some(y)) if y < x => {
                self.advance_b();
                y
            }
            (Some(x), y) => {
                if y == Some(x) {
                    self.advance_b();
                }
                self.head_a = self.a.next();
                x
            }
            (None, Some(y)) => {
                self.advance_b();
                y
            }
            (None, None) => return None,
        };
        Some(out.naive_utc())
    }
}

#[cfg(test)]
mod tests;
