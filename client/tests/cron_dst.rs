//! Property test of the cron schedule against an independent reference of
//! the rule in `docs/CRON.md`, over whole years (2026 and 2027) in zones
//! with one-hour, 30-minute, midnight and southern-hemisphere changes, and
//! none.
//!
//! The reference knows nothing of the code under test: it finds the zone's
//! offset changes by reading offsets of instants (UTC → local, the one
//! direction that has no ambiguity), walks every matching wall time of the
//! year in order (day by day, then hour, minute and second), and applies the
//! rule literally: a wall time read once is that instant, read twice is its
//! first reading, never read (in a gap) is the instant the clocks changed.
//! Wall times landing on one instant fire once there; the rest are skipped.
//!
//! Queries: every minute (and a random second within it) in the three hours
//! around each change, both sides of every tick in those hours, and random
//! instants over the two years. Checked: `next_after`, and `plan` (what
//! fires, the cursor, how many ticks are skipped), so no tick of a gap is
//! lost without being counted.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use spool_client::runtime::cron::CronPlan;
use spool_client::CronSchedule;

const ZONES: [&str; 7] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/Santiago",
    "Australia/Sydney",
];

const EXPRESSIONS: [&str; 8] = [
    "30 2 * * *",
    "*/15 2 * * *",
    "0 * * * *",
    "20 0 2 * * *",
    "*/5 * 2 * * *",
    "0 0 * * *",
    "45 1 * * *",
    "10,40 0-3 * * *",
];

/// Random instants per zone and expression.
const RANDOM_QUERIES: usize = 300;

/// The reference's view of a zone: offsets in force from each change on.
struct Zone {
    tz: Tz,
    /// `(from_s, offset_s)`, ascending; the first covers everything before.
    segments: Vec<(i64, i64)>,
}

fn offset_at(tz: Tz, at_s: i64) -> i64 {
    let utc = DateTime::<Utc>::from_timestamp(at_s, 0).expect("instant in range");
    i64::from(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

impl Zone {
    /// Finds every offset change in `[from_s, to_s)` by reading the offset
    /// hour by hour, then bisecting to the second where it changed.
    fn new(name: &str, from_s: i64, to_s: i64) -> Self {
        let tz: Tz = name.parse().expect("zone");
        let mut segments = vec![(i64::MIN, offset_at(tz, from_s))];
        let mut at = from_s;
        while at < to_s {
            let (here, next) = (offset_at(tz, at), offset_at(tz, at + 3600));
            if here != next {
                let (mut lo, mut hi) = (at, at + 3600);
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if offset_at(tz, mid) == here {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                segments.push((hi, next));
            }
            at += 3600;
        }
        Self { tz, segments }
    }

    /// The instants of the changes (not the leading open segment).
    fn changes(&self) -> impl Iterator<Item = i64> + '_ {
        self.segments.iter().skip(1).map(|s| s.0)
    }

    /// The rule, literally, for a wall time given as seconds of local time
    /// since 1970-01-01T00:00 local.
    fn instant_of(&self, wall: i64) -> i64 {
        let mut first_reading: Option<i64> = None;
        for (i, &(start, offset)) in self.segments.iter().enumerate() {
            let end = self.segments.get(i + 1).map_or(i64::MAX, |s| s.0);
            let at = wall - offset;
            if at >= start && at < end {
                first_reading = Some(first_reading.map_or(at, |f| f.min(at)));
            }
        }
        if let Some(first) = first_reading {
            return first;
        }
        // Never read: in the gap of the change whose old and new readings
        // bracket it; it fires when the clocks change.
        for pair in self.segments.windows(2) {
            let (before, (change, after)) = (pair[0].1, pair[1]);
            if change + before <= wall && wall < change + after {
                return change;
            }
        }
        panic!("wall time {wall} is neither read nor in a gap");
    }
}

/// A field of the reference's matcher: `*`, `*/n`, `a`, `a-b`, lists.
fn field(spec: &str, max: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for item in spec.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().expect("step")),
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (0, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().expect("lo"), b.parse().expect("hi"))
        } else {
            let v = range.parse().expect("value");
            (v, v)
        };
        out.extend((lo..=hi).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The reference's ticks: `(instant ms, wall times landing on it)`.
fn reference_ticks(zone: &Zone, expr: &str, first: NaiveDate, last: NaiveDate) -> Vec<(i64, u64)> {
    let mut parts: Vec<&str> = expr.split_whitespace().collect();
    if parts.len() == 5 {
        parts.insert(0, "0");
    }
    assert!(
        parts[3..].iter().all(|p| *p == "*"),
        "reference: only time-of-day fields"
    );
    let (secs, mins, hours) = (
        field(parts[0], 59),
        field(parts[1], 59),
        field(parts[2], 23),
    );
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut ticks: Vec<(i64, u64)> = Vec::new();
    for day in first.iter_days().take_while(|d| *d <= last) {
        let day_s = (day - epoch).num_days() * 86_400;
        for h in &hours {
            for m in &mins {
                for s in &secs {
                    let wall = day_s + i64::from(h * 3600 + m * 60 + s);
                    let at = zone.instant_of(wall) * 1000;
                    match ticks.last_mut() {
                        Some((prev, n)) if *prev == at => *n += 1,
                        Some((prev, _)) => {
                            assert!(*prev < at, "{expr}: the rule is monotonic");
                            ticks.push((at, 1));
                        }
                        None => ticks.push((at, 1)),
                    }
                }
            }
        }
    }
    ticks
}

/// What the documented plan rule says for due ticks in `(cursor, now]`.
fn reference_plan(ticks: &[(i64, u64)], cursor: i64, now: i64, grace: i64) -> Option<CronPlan> {
    let due =
        &ticks[ticks.partition_point(|t| t.0 <= cursor)..ticks.partition_point(|t| t.0 <= now)];
    let &(latest, latest_walls) = due.last()?;
    let walls: u64 = due.iter().map(|d| d.1).sum();
    let fires = now - latest <= grace;
    let skipped = walls - u64::from(fires);
    let last_skipped = if !fires || latest_walls > 1 {
        Some(latest)
    } else {
        due.len().checked_sub(2).map(|i| due[i].0)
    };
    Some(CronPlan {
        fire: fires.then_some(latest),
        cursor: latest,
        skipped,
        last_skipped,
    })
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        i64::try_from(self.0 % u64::try_from(n).expect("positive")).expect("fits")
    }
}

fn show(tz: Tz, ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("instant")
        .with_timezone(&tz)
        .to_rfc3339()
}

#[test]
fn schedules_match_the_reference_rule_over_whole_years() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let end = Utc
        .with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let first_day = NaiveDate::from_ymd_opt(2025, 12, 30).unwrap();
    let last_day = NaiveDate::from_ymd_opt(2028, 1, 2).unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d);
    let mut checked = 0usize;
    let mut gaps_seen = 0usize;
    for name in ZONES {
        let zone = Zone::new(name, start - 2 * 86_400, end + 2 * 86_400);
        let changes: Vec<i64> = zone
            .changes()
            .filter(|c| (start..end).contains(c))
            .collect();
        // The zones were picked for their changes: two a year, or none.
        let want = if matches!(name, "UTC" | "Asia/Kolkata") {
            0
        } else {
            4
        };
        assert_eq!(changes.len(), want, "{name}: changes {changes:?}");
        for expr in EXPRESSIONS {
            let schedule = CronSchedule::parse(expr, name).unwrap();
            let ticks = reference_ticks(&zone, expr, first_day, last_day);
            gaps_seen += ticks.iter().filter(|t| t.1 > 1).count();
            let next_ref = |q: i64| ticks[ticks.partition_point(|t| t.0 <= q)].0;
            let mut queries = Vec::new();
            for &c in &changes {
                for minute in -90..=90 {
                    let q = (c + minute * 60) * 1000;
                    queries.extend([q, q - 1, q + rng.below(60_000)]);
                }
                let window = (c - 5400) * 1000..=(c + 5400) * 1000;
                for t in ticks.iter().filter(|t| window.contains(&t.0)) {
                    queries.extend([t.0 - 1, t.0]);
                }
            }
            queries.extend(
                (0..RANDOM_QUERIES).map(|_| start * 1000 + rng.below((end - start) * 1000)),
            );
            for q in queries {
                let got = schedule.next_after(q);
                assert_eq!(
                    got,
                    Some(next_ref(q)),
                    "{expr} in {name}, next after {}: got {:?}, want {}",
                    show(zone.tz, q),
                    got.map(|g| show(zone.tz, g)),
                    show(zone.tz, next_ref(q)),
                );
                checked += 1;
            }
            check_plans(&schedule, &ticks, &changes, expr, name, &mut rng);
        }
    }
    // Every expression with a tick in a gap was met in each spring change.
    assert!(
        gaps_seen > 0,
        "no gap merged ticks: the test lost its point"
    );
    eprintln!("{checked} next_after queries checked");
}

/// Plans from cursors around every change (and random ones) with windows of
/// one second to three hours and two grace periods.
fn check_plans(
    schedule: &CronSchedule,
    ticks: &[(i64, u64)],
    changes: &[i64],
    expr: &str,
    name: &str,
    rng: &mut Rng,
) {
    let mut cursors: Vec<i64> = Vec::new();
    for &c in changes {
        cursors.extend(
            (-90..=90)
                .step_by(7)
                .map(|m| (c + m * 60) * 1000 + rng.below(60_000)),
        );
    }
    for _ in 0..20 {
        let n = i64::try_from(ticks.len()).expect("tick count fits");
        let i = usize::try_from(rng.below(n - 1)).expect("index fits");
        cursors.push(ticks[i].0 - rng.below(3_600_000));
    }
    for cursor in cursors {
        for window in [1_000, 59_000, 300_000, 3_600_000, 10_800_000] {
            for grace in [Duration::from_secs(60), Duration::from_secs(3600)] {
                let now = cursor + window;
                let grace_ms = i64::try_from(grace.as_millis()).expect("grace fits");
                let want = reference_plan(ticks, cursor, now, grace_ms);
                let got = schedule.plan(Some(cursor), now, grace);
                assert_eq!(
                    got,
                    want,
                    "{expr} in {name}: plan from {} to {} (grace {grace:?})",
                    show(schedule.timezone(), cursor),
                    show(schedule.timezone(), now),
                );
            }
        }
    }
}
