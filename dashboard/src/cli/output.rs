//! How `spool` prints results: aligned tables for people, JSON (`--json`)
//! for scripts. Every stored string goes through `text::clip_line`, so a
//! 10 MiB job type or a multi-line error stays one bounded line; JSON uses
//! the bounded listing shapes of `json` and is written from typed values
//! (a stored `RawValue` is never re-parsed, whatever its nesting).

use std::io::Write;

use serde::Serialize;
use spool_client::admin::{CronEntryView, JobView, QueueInfo};

use crate::json::JobItem;
use crate::text::{clip_line, FIELD_BYTES};

/// Bytes of an error in a `dead list` row.
const ERROR_ROW_BYTES: usize = 80;

/// Writes `value` as one line of JSON.
pub(crate) fn json<T: Serialize>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// `name value` lines of the totals.
pub(crate) fn totals(out: &mut dyn Write, rows: &[(&str, u64)]) -> std::io::Result<()> {
    for (k, v) in rows {
        writeln!(out, "{k:<10} {v:>12}")?;
    }
    Ok(())
}

/// A Redis-ms time as `2025-01-02 03:04:05`, or `none`.
fn time(ms: Option<i64>, none: &str) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || none.to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

pub(crate) fn queues(out: &mut dyn Write, queues: &[QueueInfo]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>8} {:>10} {:>8} {:>8}  state",
        "queue", "ready", "latency", "busy", "scheduled", "retry", "dead"
    )?;
    for q in queues {
        writeln!(
            out,
            "{:<24} {:>10} {:>9}s {:>8} {:>10} {:>8} {:>8}  {}",
            q.name,
            q.ready,
            q.latency.as_secs(),
            q.active,
            q.scheduled,
            q.retry,
            q.dead,
            if q.paused { "paused" } else { "running" }
        )?;
    }
    Ok(())
}

pub(crate) fn dead_jobs(
    out: &mut dyn Write,
    jobs: &[JobView],
    as_json: bool,
) -> std::io::Result<()> {
    if as_json {
        return json(out, &JobItem::all(jobs));
    }
    writeln!(
        out,
        "{:<16} {:<36} {:<20} {:<24} error",
        "queue", "id", "type", "died"
    )?;
    for j in jobs {
        let error = j
            .last_error()
            .map(|e| clip_line(&e.error, ERROR_ROW_BYTES))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<16} {:<36} {:<20} {:<24} {error}",
            clip_line(&j.queue, FIELD_BYTES),
            clip_line(j.id.as_str(), FIELD_BYTES),
            clip_line(j.job_type(), FIELD_BYTES),
            time(j.at_ms, ""),
        )?;
    }
    Ok(())
}

pub(crate) fn cron_entries(out: &mut dyn Write, entries: &[CronEntryView]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:<18} {:<16} {:<12} {:<20} {:<20} {:<8} last job",
        "name", "schedule", "zone", "queue", "next run (UTC)", "last run (UTC)", "state"
    )?;
    for e in entries {
        writeln!(
            out,
            "{:<24} {:<18} {:<16} {:<12} {:<20} {:<20} {:<8} {}",
            clip_line(&e.name, FIELD_BYTES),
            clip_line(&e.schedule, FIELD_BYTES),
            clip_line(&e.timezone, FIELD_BYTES),
            clip_line(&e.queue, FIELD_BYTES),
            time(e.next_run_ms, "-"),
            time(e.last_run_ms, "-"),
            if e.paused { "paused" } else { "active" },
            e.last_job_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), |id| clip_line(id.as_str(), FIELD_BYTES)),
        )?;
    }
    Ok(())
}
