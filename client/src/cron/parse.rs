//! Parsing of schedule expressions into the `cron` crate's schedules: the
//! 5-field form, the shortcuts, standard day-of-week numbering (0 and 7 are
//! Sunday), Vixie cron's day-of-month OR day-of-week rule, and `@every`
//! durations (read by `humantime`).

use std::str::FromStr;
use std::time::Duration;

use super::schedule::Kind;

/// Shortest `@every` period.
const EVERY_MIN: Duration = Duration::from_secs(1);

/// Parses the duration of `@every` (`90s`, `1h30m`, `1d`, `2h 15m`) with
/// `humantime` into whole milliseconds, at least [`EVERY_MIN`].
pub(super) fn parse_every(spec: &str) -> Result<i64, String> {
    let period = humantime::parse_duration(spec).map_err(|e| {
        format!(
            "invalid @every duration {spec:?}: {e} (expected e.g. \"30s\", \"5m\", \"1h30m\", \"1d\")"
        )
    })?;
    if period < EVERY_MIN {
        return Err(format!("@every {spec}: the period must be at least 1s"));
    }
    if period.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "@every {spec}: the period must be whole milliseconds"
        ));
    }
    i64::try_from(period.as_millis()).map_err(|_| format!("@every {spec}: the period is too long"))
}

/// Expands a shortcut or a 5/6/7-field expression into `cron::Schedule`s.
pub(super) fn parse_fields(expr: &str) -> Result<Kind, String> {
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
    let day_of_month_restricted = !unrestricted(&fields[3]);
    let weekday_restricted = !unrestricted(&fields[5]);
    fields[5] = standard_days_of_week(&fields[5])
        .map_err(|reason| format!("schedule {expr:?}: day of week {:?}: {reason}", fields[5]))?;
    let compile = |fields: &[String]| {
        ::cron::Schedule::from_str(&fields.join(" "))
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
    };
    if day_of_month_restricted && weekday_restricted {
        // Vixie cron: "1 * * 15 mon" runs on the 15th and on Mondays.
        let mut by_day_of_month = fields.clone();
        "*".clone_into(&mut by_day_of_month[5]);
        let mut by_weekday = fields;
        "*".clone_into(&mut by_weekday[3]);
        Ok(Kind::Fields {
            primary: Box::new(compile(&by_day_of_month)?),
            either: Some(Box::new(compile(&by_weekday)?)),
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
