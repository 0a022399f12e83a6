//! Unit tests of the schedule math with explicit instants: the accepted
//! forms, zones, the DST policy at New York and Berlin changes, and plans.
//! Whole years in several zones are checked in `client/tests/cron_dst.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::plan::PLAN_SCAN_LIMIT;
use super::*;
use crate::cron::CronPlan;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .timestamp_millis()
}

fn ticks(s: &CronSchedule, from: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut t = ms(from);
    for _ in 0..n {
        t = s.next_after(t).expect("a next tick");
        out.push(
            DateTime::<Utc>::from_timestamp_millis(t)
                .expect("instant")
                .with_timezone(&s.tz)
                .to_rfc3339(),
        );
    }
    out
}

const MIN: Duration = Duration::from_secs(60);

#[test]
fn five_field_expressions_get_a_zero_seconds_field() {
    let s = CronSchedule::parse("30 3 * * *", "UTC").unwrap();
    assert_eq!(
        ticks(&s, "2024-05-01T00:00:00Z", 2),
        ["2024-05-01T03:30:00+00:00", "2024-05-02T03:30:00+00:00"]
    );
}

#[test]
fn six_field_expressions_have_seconds_first() {
    let s = CronSchedule::parse("*/20 * * * * *", "UTC").unwrap();
    assert_eq!(
        ticks(&s, "2024-05-01T00:00:05Z", 3),
        [
            "2024-05-01T00:00:20+00:00",
            "2024-05-01T00:00:40+00:00",
            "2024-05-01T00:01:00+00:00"
        ]
    );
}

#[test]
fn shortcuts_expand_to_their_standard_meaning() {
    let from = "2024-05-01T10:20:30Z"; // a Wednesday
    let cases = [
        ("@hourly", "2024-05-01T11:00:00+00:00"),
        ("@daily", "2024-05-02T00:00:00+00:00"),
        ("@midnight", "2024-05-02T00:00:00+00:00"),
        ("@weekly", "2024-05-05T00:00:00+00:00"),
        ("@monthly", "2024-06-01T00:00:00+00:00"),
        ("@yearly", "2025-01-01T00:00:00+00:00"),
        ("@annually", "2025-01-01T00:00:00+00:00"),
    ];
    for (expr, want) in cases {
        let s = CronSchedule::parse(expr, "UTC").unwrap();
        assert_eq!(ticks(&s, from, 1), [want], "{expr}");
    }
}

#[test]
fn every_is_a_fixed_interval_from_the_epoch() {
    let s = CronSchedule::parse("@every 1h30m", "America/New_York").unwrap();
    assert_eq!(s.next_after(0), Some(5_400_000));
    assert_eq!(s.next_after(5_400_000), Some(10_800_000));
    let s = CronSchedule::parse("@every 45s", "UTC").unwrap();
    assert_eq!(s.next_after(44_999), Some(45_000));
    assert_eq!(s.next_after(-1), Some(0));
    // humantime's forms: units may be spelled out and separated by spaces.
    for (spec, period) in [("1d", 86_400_000), ("2h 15m", 8_100_000), ("1500ms", 1_500)] {
        let s = CronSchedule::parse(&format!("@every {spec}"), "UTC").unwrap();
        assert_eq!(s.next_after(0), Some(period), "{spec}");
    }
}

#[test]
fn day_of_week_uses_standard_numbering() {
    // 2024-05-05 is a Sunday: 0 and 7 are Sunday, 1 is Monday.
    for (dow, want) in [
        ("0", "2024-05-05"),
        ("7", "2024-05-05"),
        ("1", "2024-05-06"),
        ("sat", "2024-05-04"),
        ("1-5", "2024-05-03"),
        ("5-7", "2024-05-03"),
        ("*/3", "2024-05-04"),
    ] {
        let s = CronSchedule::parse(&format!("0 9 * * {dow}"), "UTC").unwrap();
        let got = ticks(&s, "2024-05-02T12:00:00Z", 1);
        assert!(got[0].starts_with(want), "dow {dow}: {got:?}");
    }
}

#[test]
fn day_of_month_and_day_of_week_combine_with_or() {
    // The 15th, or any Monday (Vixie cron).
    let s = CronSchedule::parse("0 12 15 * mon", "UTC").unwrap();
    assert_eq!(
        ticks(&s, "2024-05-10T00:00:00Z", 3),
        [
            "2024-05-13T12:00:00+00:00",
            "2024-05-15T12:00:00+00:00",
            "2024-05-20T12:00:00+00:00"
        ]
    );
}

#[test]
fn bad_expressions_and_zones_are_refused_with_a_reason() {
    for (expr, tz, needle) in [
        ("61 * * * *", "UTC", "invalid cron expression"),
        ("* * *", "UTC", "3 fields"),
        ("0 0 30 2 *", "UTC", "never fires"),
        ("@fortnightly", "UTC", "unknown shortcut"),
        ("@every 0s", "UTC", "at least 1s"),
        ("@every soon", "UTC", "invalid @every"),
        ("@every 1s500us", "UTC", "whole milliseconds"),
        ("0 9 * * 8", "UTC", "not a day"),
        ("@hourly", "Europe/Atlantis", "unknown time zone"),
        ("@hourly", "", "unknown time zone"),
    ] {
        let err = CronSchedule::parse(expr, tz).expect_err(expr);
        assert!(err.contains(needle), "{expr} in {tz:?}: {err}");
    }
}

#[test]
fn zone_shifts_wall_times() {
    let s = CronSchedule::parse("0 0 3 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        ticks(&s, "2024-01-10T00:00:00Z", 1),
        ["2024-01-10T03:00:00+01:00"]
    );
    assert_eq!(
        s.next_after(ms("2024-01-10T00:00:00Z")),
        Some(ms("2024-01-10T02:00:00Z"))
    );
}

/// New York falls back on 2024-11-03: 01:00–01:59 happens twice.
#[test]
fn dst_repeated_hour_fires_once_at_the_first_occurrence() {
    let s = CronSchedule::parse("30 1 * * *", "America/New_York").unwrap();
    assert_eq!(
        ticks(&s, "2024-11-02T12:00:00-04:00", 3),
        [
            "2024-11-03T01:30:00-04:00",
            "2024-11-04T01:30:00-05:00",
            "2024-11-05T01:30:00-05:00"
        ]
    );
    // Asked from inside the second pass, the next tick is the next day's.
    assert_eq!(
        s.next_after(ms("2024-11-03T01:10:00-05:00")),
        Some(ms("2024-11-04T01:30:00-05:00"))
    );
    // An every-15-minutes schedule runs through the first pass only,
    // then resumes at 02:00 standard time: no tick is enqueued twice.
    let q = CronSchedule::parse("*/15 * * * *", "America/New_York").unwrap();
    assert_eq!(
        ticks(&q, "2024-11-03T01:40:00-04:00", 3),
        [
            "2024-11-03T01:45:00-04:00",
            "2024-11-03T02:00:00-05:00",
            "2024-11-03T02:15:00-05:00"
        ]
    );
}

/// New York springs forward on 2024-03-10: 02:00–02:59 does not exist.
/// Every wall time in it fires at the first instant after the gap, 03:00.
#[test]
fn dst_skipped_wall_times_fire_at_the_first_instant_after_the_gap() {
    let s = CronSchedule::parse("30 2 * * *", "America/New_York").unwrap();
    assert_eq!(
        ticks(&s, "2024-03-09T12:00:00-05:00", 3),
        [
            "2024-03-10T03:00:00-04:00",
            "2024-03-11T02:30:00-04:00",
            "2024-03-12T02:30:00-04:00"
        ]
    );
    // Hourly: the missing 02:00 lands on 03:00, which fires once.
    let h = CronSchedule::parse("0 * * * *", "America/New_York").unwrap();
    assert_eq!(
        ticks(&h, "2024-03-10T00:30:00-05:00", 3),
        [
            "2024-03-10T01:00:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T04:00:00-04:00"
        ]
    );
    // Berlin springs forward 2024-03-31 02:00 → 03:00: 02:00:15 fires at
    // 03:00:00, not 15 s later.
    let b = CronSchedule::parse("15 0 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        ticks(&b, "2024-03-30T12:00:00+01:00", 2),
        ["2024-03-31T03:00:00+02:00", "2024-04-01T02:00:15+02:00"]
    );
}

/// Issue 9 item 7: asked from the hour after the gap, the next tick is the
/// next day's (today's already fired at 03:00), and asked from before the
/// gap it is 03:00, never a day later.
#[test]
fn dst_next_tick_asked_around_the_gap() {
    let s = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
    for (from, want) in [
        ("2026-03-29T01:59:59+01:00", "2026-03-29T03:00:00+02:00"),
        ("2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"),
        ("2026-03-29T03:10:00+02:00", "2026-03-30T02:30:00+02:00"),
        ("2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00"),
    ] {
        assert_eq!(ticks(&s, from, 1), [want], "from {from}");
    }
    // Every 5 s in hour 2: one run at 03:00:00, then the 03:xx hour has no
    // ticks, the next is the next day's 02:00:00.
    let f = CronSchedule::parse("*/5 * 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        ticks(&f, "2026-03-29T01:59:00+01:00", 2),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]
    );
}

/// The 720 wall times of `*/5 * 2 * * *` in the gap fire once at 03:00;
/// the other 719 are counted as skipped, never lost silently. The same for
/// the four quarter hours of `*/15 2 * * *` and the hourly 02:00 + 03:00.
#[test]
fn dst_ticks_merged_by_a_gap_fire_once_and_count_the_rest_as_skipped() {
    let gap_end = ms("2026-03-29T03:00:00+02:00");
    let before = ms("2026-03-29T01:59:00+01:00");
    for (expr, merged) in [
        ("*/5 * 2 * * *", 720),
        ("*/15 2 * * *", 4),
        ("0 * * * *", 2),
        ("30 2 * * *", 1),
        ("20 0 2 * * *", 1),
    ] {
        let s = CronSchedule::parse(expr, "Europe/Berlin").unwrap();
        let p = s.plan(Some(before), gap_end + 500, MIN).unwrap();
        assert_eq!(p.fire, Some(gap_end), "{expr}");
        assert_eq!(p.cursor, gap_end, "{expr}");
        assert_eq!(p.skipped, merged - 1, "{expr}");
        let last = (merged > 1).then_some(gap_end);
        assert_eq!(p.last_skipped, last, "{expr}");
        // Handled: the next pass finds nothing due until the next tick.
        assert_eq!(
            s.plan(Some(p.cursor), gap_end + 60_000, MIN),
            None,
            "{expr}"
        );
    }
}

#[test]
fn every_ignores_dst() {
    let s = CronSchedule::parse("@every 1h", "America/New_York").unwrap();
    let got = ticks(&s, "2024-11-03T00:30:00-04:00", 3);
    assert_eq!(
        got,
        [
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T02:00:00-05:00"
        ]
    );
}

#[test]
fn a_new_entry_starts_its_cursor_now_and_fires_nothing() {
    let s = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let p = s.plan(None, 10_500, MIN).unwrap();
    assert_eq!(
        p,
        CronPlan {
            fire: None,
            cursor: 10_500,
            skipped: 0,
            last_skipped: None
        }
    );
}

#[test]
fn nothing_due_means_no_plan() {
    let s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
    assert_eq!(s.plan(Some(10_000), 19_999, MIN), None);
    // A cursor ahead of now (Redis clock stepped back) fires nothing.
    assert_eq!(s.plan(Some(30_000), 20_000, MIN), None);
}

#[test]
fn the_due_tick_fires_and_moves_the_cursor() {
    let s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
    let p = s.plan(Some(10_000), 20_003, MIN).unwrap();
    assert_eq!(
        p,
        CronPlan {
            fire: Some(20_000),
            cursor: 20_000,
            skipped: 0,
            last_skipped: None
        }
    );
}

#[test]
fn a_tick_missed_by_less_than_grace_fires_once_on_recovery() {
    let s = CronSchedule::parse("0 * * * *", "UTC").unwrap(); // hourly
    let hour = 3_600_000;
    // Down from 10:59:30 to 11:00:45: the 11:00 tick is 45 s late.
    let p = s.plan(Some(10 * hour), 11 * hour + 45_000, MIN).unwrap();
    assert_eq!(p.fire, Some(11 * hour));
    assert_eq!(p.skipped, 0);
    // Down until 11:01:30: 90 s late, beyond the 60 s grace: skipped.
    let p = s.plan(Some(10 * hour), 11 * hour + 90_000, MIN).unwrap();
    assert_eq!(
        p,
        CronPlan {
            fire: None,
            cursor: 11 * hour,
            skipped: 1,
            last_skipped: Some(11 * hour)
        }
    );
}

#[test]
fn many_missed_ticks_fire_at_most_once_without_a_burst() {
    let s = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    // Every second, down for 30 s: only the latest fires, 29 are skipped.
    let p = s.plan(Some(100_000), 130_200, MIN).unwrap();
    assert_eq!(
        p,
        CronPlan {
            fire: Some(130_000),
            cursor: 130_000,
            skipped: 29,
            last_skipped: Some(129_000)
        }
    );
}

#[test]
fn a_very_long_outage_is_bounded_work() {
    let s = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let day = 86_400_000;
    let p = s.plan(Some(0), 10 * day + 500, MIN).unwrap();
    assert_eq!(p.fire, Some(10 * day));
    assert!(p.skipped >= PLAN_SCAN_LIMIT, "{p:?}");
    assert_eq!(p.cursor, 10 * day);
}
