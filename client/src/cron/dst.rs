//! The daylight-saving policy: which instant a wall time of a schedule means
//! in its zone. One rule for every schedule (documented in `docs/CRON.md`):
//!
//! - a wall time that occurs once is that instant;
//! - a wall time that occurs twice (clocks go back) is its **first**
//!   occurrence, so the repeated hour fires once;
//! - a wall time that does not exist (clocks go forward) is **the first
//!   instant after the gap** (03:00:00 local for a 02:00 → 03:00 change),
//!   so a daily job still runs that day, and every tick of the gap lands on
//!   that one instant (the schedule fires once there and counts the others
//!   as skipped, see `plan.rs`).
//!
//! Like Vixie cron and cronie, which run the jobs of a skipped hour right
//! after the change, rather than `java.time`'s "shift by the gap's length",
//! which would spread the gap's ticks over the hour after it and fire
//! `20 0 2 * * *` at 03:00:20, a wall time the schedule never names.

use chrono::{LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// Longest gap searched for its end: a whole day (Samoa skipped
/// 2011-12-30); real gaps are 30 minutes to 1 hour.
const GAP_SEARCH_STEPS: u32 = 2 * 96;

/// Step of the coarse search for a gap's end; finer than any gap in the
/// tz database, so the bisection below it brackets exactly one change.
const GAP_SEARCH_STEP_MINUTES: i64 = 15;

/// A wall time mapped to an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The instant (ms since the Unix epoch).
    pub(super) at: i64,
    /// For a wall time inside a gap: the first wall time after the gap,
    /// which reads `at` as well. Every wall time from this one up to and
    /// including `gap_end` lands on the same instant.
    pub(super) gap_end: Option<NaiveDateTime>,
}

/// Maps `wall` in `tz` to an instant with the policy of the module header.
/// `None` only for wall times outside chrono's range.
pub(super) fn resolve(tz: Tz, wall: NaiveDateTime) -> Option<Resolved> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(Resolved {
            at: t.timestamp_millis(),
            gap_end: None,
        }),
        // Clocks went back: the first occurrence only.
        LocalResult::Ambiguous(first, _second) => Some(Resolved {
            at: first.timestamp_millis(),
            gap_end: None,
        }),
        LocalResult::None => {
            let end = gap_end(tz, wall)?;
            let at = tz.from_local_datetime(&end).earliest()?.timestamp_millis();
            Some(Resolved {
                at,
                gap_end: Some(end),
            })
        }
    }
}

fn exists(tz: Tz, wall: NaiveDateTime) -> bool {
    !matches!(tz.from_local_datetime(&wall), LocalResult::None)
}

/// The first wall time after `missing` (which does not exist) that exists:
/// the local reading of the instant the clocks changed. Found by stepping
/// forward to an existing wall time, then bisecting to the second (zone
/// offsets are whole seconds).
fn gap_end(tz: Tz, missing: NaiveDateTime) -> Option<NaiveDateTime> {
    let step = chrono::Duration::minutes(GAP_SEARCH_STEP_MINUTES);
    let mut lo = missing;
    let mut hi = None;
    for _ in 0..GAP_SEARCH_STEPS {
        let next = lo.checked_add_signed(step)?;
        if exists(tz, next) {
            hi = Some(next);
            break;
        }
        lo = next;
    }
    let hi = hi?;
    // Bisect in whole seconds after `lo`: absent at `lo_s`, present at `hi_s`.
    let (mut lo_s, mut hi_s) = (0, GAP_SEARCH_STEP_MINUTES * 60);
    while hi_s - lo_s > 1 {
        let mid = lo_s + (hi_s - lo_s) / 2;
        if exists(tz, lo + chrono::Duration::seconds(mid)) {
            hi_s = mid;
        } else {
            lo_s = mid;
        }
    }
    let end = lo + chrono::Duration::seconds(hi_s);
    debug_assert!(end <= hi);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn wall(ymd: (i32, u32, u32), hms: (u32, u32, u32)) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(ymd.0, ymd.1, ymd.2)
            .and_then(|day| day.and_hms_opt(hms.0, hms.1, hms.2))
            .expect("valid wall time")
    }

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .timestamp_millis()
    }

    #[test]
    fn a_wall_time_in_a_gap_is_the_first_instant_after_it() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = resolve(berlin, wall((2026, 3, 29), (2, 30, 0))).unwrap();
        assert_eq!(r.at, ms("2026-03-29T03:00:00+02:00"));
        assert_eq!(r.gap_end, Some(wall((2026, 3, 29), (3, 0, 0))));
        // Lord Howe moves by 30 minutes: 02:00 → 02:30.
        let lh: Tz = "Australia/Lord_Howe".parse().unwrap();
        let r = resolve(lh, wall((2026, 10, 4), (2, 29, 59))).unwrap();
        assert_eq!(r.at, ms("2026-10-04T02:30:00+11:00"));
        // Santiago springs forward at midnight: 00:00 → 01:00.
        let scl: Tz = "America/Santiago".parse().unwrap();
        let r = resolve(scl, wall((2026, 9, 6), (0, 0, 0))).unwrap();
        assert_eq!(r.at, ms("2026-09-06T01:00:00-03:00"));
        // Samoa skipped a whole day.
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        let r = resolve(apia, wall((2011, 12, 30), (12, 0, 0))).unwrap();
        assert_eq!(r.at, ms("2011-12-31T00:00:00+14:00"));
    }

    #[test]
    fn a_repeated_wall_time_is_its_first_occurrence() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let r = resolve(ny, wall((2026, 11, 1), (1, 30, 0))).unwrap();
        assert_eq!(r.at, ms("2026-11-01T01:30:00-04:00"));
        assert_eq!(r.gap_end, None);
    }
}
