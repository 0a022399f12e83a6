//! Schedule math for cron entries: parse an expression with its time zone,
//! find the next tick after an instant, and plan what a cron pass does with
//! the ticks that came due since the entry's cursor.
//!
//! Pure functions of their inputs (instants are Redis ms passed in by the
//! caller, never read from the host clock), so every rule here, DST
//! included, is unit-tested with explicit instants. The parsing of the
//! fields is the `cron` crate's; this module adds the 5-field form, the
//! standard day-of-week numbering, the `@every` shortcut, Vixie's
//! day-of-month/day-of-week OR rule, and the DST policy:
//!
//! - a wall time that occurs twice (clocks go back) fires once, at its first
//!   occurrence;
//! - a wall time that does not exist (clocks go forward) is shifted forward
//!   by the length of the gap (02:30 becomes 03:30 in New York on the spring
//!   change), so a daily job still runs that day; ticks that land on the
//!   same instant fire once.
//!
//! `@every <duration>` is a fixed interval in absolute time (multiples of
//! the period since the Unix epoch): DST never affects it.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Most due ticks one plan walks one by one before jumping to the grace
/// window (bounds the work after a very long outage of a fine schedule).
const PLAN_SCAN_LIMIT: u64 = 100_000;

/// Most candidate wall times examined to find one tick (a fall-back hour of
/// a per-second schedule is 3,600 candidates that map before the instant).
const NEXT_SCAN_LIMIT: u32 = 10_000;

/// Shortest `@every` period.
const EVERY_MIN: Duration = Duration::from_secs(1);

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
    tz: Tz,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
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

/// What a cron pass does for one entry (see [`CronSchedule::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronPlan {
    /// The tick to enqueue now (Redis ms), if any.
    pub fire: Option<i64>,
    /// The entry's new cursor: every tick at or before it has been handled.
    pub cursor: i64,
    /// Due ticks that will not be enqueued: older than the grace period, or
    /// overtaken by a later due tick (no bursts). A lower bound after an
    /// outage longer than 100,000 ticks.
    pub skipped: u64,
    /// The latest of the skipped ticks.
    pub last_skipped: Option<i64>,
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
    /// - `@every <duration>` with units `d`, `h`, `m`, `s` (`@every 90s`,
    ///   `@every 1h30m`), at least one second.
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
    #[must_use]
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every(period) => after_ms
                .div_euclid(*period)
                .checked_add(1)?
                .checked_mul(*period),
            Kind::Fields { primary, either } => {
                self.next_fields(primary, either.as_deref(), after_ms)
            }
        }
    }

    fn next_fields(
        &self,
        primary: &::cron::Schedule,
        either: Option<&::cron::Schedule>,
        after_ms: i64,
    ) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        // The `cron` crate walks wall times; we give it the local wall time
        // dressed as UTC (which has no DST) and map each candidate back to
        // an instant with our own DST policy.
        let local = Utc.from_utc_datetime(&after.with_timezone(&self.tz).naive_local());
        let mut a = primary.after(&local);
        let mut b = either.map(|s| s.after(&local));
        let mut head_a = a.next();
        let mut head_b = b.as_mut().and_then(Iterator::next);
        for _ in 0..NEXT_SCAN_LIMIT {
            // Merge the two ascending candidate streams.
            let candidate = match (head_a, head_b) {
                (Some(x), Some(y)) if y < x => {
                    head_b = b.as_mut().and_then(Iterator::next);
                    y
                }
                (Some(x), Some(y)) => {
                    if x == y {
                        head_b = b.as_mut().and_then(Iterator::next);
                    }
                    head_a = a.next();
                    x
                }
                (Some(x), None) => {
                    head_a = a.next();
                    x
                }
                (None, Some(y)) => {
                    head_b = b.as_mut().and_then(Iterator::next);
                    y
                }
                (None, None) => return None,
            };
            // The wall-time → instant map is non-decreasing, so the first
            // candidate past `after` is the next tick. Candidates before it
            // occur while the clock repeats an hour: they map to the first
            // pass, which is already over.
            let instant = self.resolve(candidate.naive_utc())?;
            if instant > after_ms {
                return Some(instant);
            }
        }
        None
    }

    /// Maps a wall time in the zone to an instant (ms) with the DST policy
    /// of the module header.
    fn resolve(&self, wall: NaiveDateTime) -> Option<i64> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.timestamp_millis()),
            // Clocks went back: the first occurrence only.
            LocalResult::Ambiguous(first, _second) => Some(first.timestamp_millis()),
            // Clocks went forward over this wall time: read it with the
            // offset in force before the gap, which lands as far past the
            // gap's end as the wall time was past its start.
            LocalResult::None => {
                let before = (1..=96).find_map(|quarter| {
                    self.tz
                        .from_local_datetime(&(wall - chrono::Duration::minutes(15 * quarter)))
                        .earliest()
                })?;
                let offset = before.offset().fix().local_minus_utc();
                Some(
                    (wall - chrono::Duration::seconds(i64::from(offset)))
                        .and_utc()
                        .timestamp_millis(),
                )
            }
        }
    }

    /// Decides what to do at Redis time `now_ms` for an entry whose cursor
    /// (last handled tick) is `cursor_ms` (`None`: the entry is new).
    ///
    /// The due ticks are those in `(cursor, now]`. The latest fires if it is
    /// at most `grace` old; every other due tick is skipped (recorded, never
    /// replayed: at most one catch-up run). A new entry starts its cursor at
    /// `now` and fires nothing. Returns `None` when nothing is due.
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
        let mut skipped = 0u64;
        let mut last_skipped = None;
        let mut latest: Option<i64> = None;
        let mut from = cursor;
        let mut walked = 0u64;
        while let Some(tick) = self.next_after(from).filter(|&t| t <= now_ms) {
            if let Some(older) = latest {
                skipped += 1;
                last_skipped = Some(older);
            }
            latest = Some(tick);
            from = tick;
            walked += 1;
            if walked >= PLAN_SCAN_LIMIT && now_ms - tick > grace_ms {
                // Far behind: everything up to the grace window is skipped
                // without counting each tick (the count becomes a lower bound).
                skipped += 1;
                last_skipped = Some(tick);
                latest = None;
                from = now_ms.saturating_sub(grace_ms).saturating_sub(1).max(tick);
                walked = 0;
            }
        }
        let fire = match latest {
            Some(tick) if now_ms - tick <= grace_ms => Some(tick),
            Some(tick) => {
                skipped += 1;
                last_skipped = Some(tick);
                None
            }
            None if skipped == 0 => return None,
            None => None,
        };
        Some(CronPlan {
            fire,
            cursor: latest.unwrap_or(from),
            skipped,
            last_skipped,
        })
    }
}

/// Parses `1h30m`, `90s`, `2d` into ms.
fn parse_every(spec: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "invalid @every duration {spec:?} (expected a number and unit, e.g. \"30s\", \"5m\", \"1h30m\", \"1d\")"
        )
    };
    if spec.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = spec;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms = match &rest[..unit_len] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    let min = i64::try_from(EVERY_MIN.as_millis()).unwrap_or(1000);
    if total < min {
        return Err(format!("@every {spec}: the period must be at least 1s"));
    }
    Ok(total)
}

/// Expands a shortcut or a 5/6/7-field expression into `cron::Schedule`s.
fn parse_fields(expr: &str) -> Result<Kind, String> {
    let expanded = match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *".to_owned(),
        "@monthly" => "0 0 0 1 * *".to_owned(),
        "@weekly" => "0 0 0 * * 0".to_owned(),
        "@daily" | "@midnight" => "0 0 0 * * *".to_owned(),
        "@hourly" => "0 0 * * * *".to_owned(),
        other if other.starts_with('@') => {
            return Err(format!(
                "unknown shortcut {expr:?} (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)"
            ))
        }
        _ => expr.to_owned(),
    };
    let mut fields: Vec<String> = expanded.split_whitespace().map(str::to_owned).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_owned()),
        6 | 7 => {}
        n => {
            return Err(format!(
                "schedule {expr:?} has {n} fields; expected 5 (minute hour day-of-month month day-of-week), 6 (seconds first) or 7 (with a year), or a shortcut such as @hourly or @every 30s"
            ))
        }
    }
    let unrestricted = |f: &str| f.starts_with('*') || f == "?";
    let dom_restricted = !unrestricted(&fields[3]);
    let dow_restricted = !unrestricted(&fields[5]);
    fields[5] = standard_days_of_week(&fields[5])
        .map_err(|reason| format!("schedule {expr:?}: day of week {:?}: {reason}", fields[5]))?;
    let compile = |fields: &[String]| {
        ::cron::Schedule::from_str(&fields.join(" "))
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
    };
    if dom_restricted && dow_restricted {
        // Vixie cron: "1 * * 15 mon" runs on the 15th and on Mondays.
        let mut by_dom = fields.clone();
        by_dom[5] = "*".to_owned();
        let mut by_dow = fields;
        by_dow[3] = "*".to_owned();
        Ok(Kind::Fields {
            primary: Box::new(compile(&by_dom)?),
            either: Some(Box::new(compile(&by_dow)?)),
        })
    } else {
        Ok(Kind::Fields {
            primary: Box::new(compile(&fields)?),
            either: None,
        })
    }
}

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Rewrites a day-of-week field from standard cron numbering (0–7, 0 and 7
/// are Sunday) to day names, which the `cron` crate reads unambiguously (its
/// own numbers start at 1 = Sunday). Lists, ranges and steps are expanded.
fn standard_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_owned());
    }
    let day = |s: &str| -> Result<u32, String> {
        if let Ok(n) = s.parse::<u32>() {
            return if n <= 7 {
                Ok(n)
            } else {
                Err(format!("{n} is not a day (0-7)"))
            };
        }
        let lower = s.to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|d| lower.starts_with(&d.to_ascii_lowercase()) && lower.len() >= 3)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| format!("{s:?} is not a day"))
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 {
                    return Err("step must be at least 1".to_owned());
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day(a)?, day(b)?)
        } else {
            let d = day(range)?;
            (d, if item.contains('/') { 6 } else { d })
        };
        if lo > hi {
            return Err(format!("range {range:?} runs backwards"));
        }
        let mut d = lo;
        while d <= hi {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    let names: Vec<&str> = DAY_NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect();
    Ok(names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    #[test]
    fn dst_skipped_hour_shifts_ticks_forward_by_the_gap() {
        let s = CronSchedule::parse("30 2 * * *", "America/New_York").unwrap();
        assert_eq!(
            ticks(&s, "2024-03-09T12:00:00-05:00", 3),
            [
                "2024-03-10T03:30:00-04:00",
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
        // Berlin springs forward 2024-03-31 02:00 → 03:00.
        let b = CronSchedule::parse("0 15 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            ticks(&b, "2024-03-30T12:00:00+01:00", 2),
            ["2024-03-31T03:15:00+02:00", "2024-04-01T02:15:00+02:00"]
        );
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
}
