//! How `spool` prints results: aligned tables for people, JSON (`--json`)
//! for scripts. Every stored string goes through `text::clip_line`, so a
//! 10 MiB job type or a multi-line error stays one bounded line; JSON uses
//! the bounded listing shapes of `json` and is written from typed values
//! (a stored `RawValue` is never re-parsed, whatever its nesting).

use std::io::Write;

use serde::Serialize;
use spool_client::admin::{CronEntryView, JobView, QueueInfo};

use crate::json::JobItem;
use crate::text::{clip, clip_line, FIELD_BYTES};
use spool_client::{BatchMember, BatchStatus};

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

/// A Redis-ms time with milliseconds, `2025-01-02 03:04:05.678` (timelines).
pub(crate) fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

/// A Redis-ms time as `2025-01-02 03:04:05`, or `none`.
fn time(ms: Option<i64>, none: &str) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || none.to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// Writes an aligned table: one `(header, width, right-aligned)` per
/// column; the last column is written unpadded.
fn table(
    out: &mut dyn Write,
    columns: &[(&str, usize, bool)],
    rows: impl Iterator<Item = Vec<String>>,
) -> std::io::Result<()> {
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, (_, width, right))) in cells.iter().zip(columns).enumerate() {
            let sep = if i == last { "\n" } else { " " };
            match (i == last, right) {
                (true, _) => write!(out, "{cell}{sep}")?,
                (false, true) => write!(out, "{cell:>width$}{sep}")?,
                (false, false) => write!(out, "{cell:<width$}{sep}")?,
            }
        }
        Ok(())
    };
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    line(out, &header)?;
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

pub(crate) fn queues(out: &mut dyn Write, queues: &[QueueInfo]) -> std::io::Result<()> {
    let columns = [
        ("queue", 24, false),
        ("ready", 10, true),
        ("latency", 10, true),
        ("busy", 8, true),
        ("scheduled", 10, true),
        ("retry", 8, true),
        ("dead", 8, true),
        ("limit", 6, true),
        ("rate", 10, false),
        ("state", 0, false),
    ];
    let rows = queues.iter().map(|q| {
        let state = match (q.throttled(), &q.controls.breaker) {
            (Some(why), _) => why.to_owned(),
            (None, Some((_, b))) => format!("running, breaker {}", b.as_str()),
            (None, None) => "running".to_owned(),
        };
        vec![
            q.name.clone(),
            q.ready.to_string(),
            format!("{}s", q.latency.as_secs()),
            q.active.to_string(),
            q.scheduled.to_string(),
            q.retry.to_string(),
            q.dead.to_string(),
            q.controls
                .concurrency_limit
                .map_or_else(|| "-".to_owned(), |l| l.to_string()),
            q.controls
                .rate_limit
                .map_or_else(|| "-".to_owned(), |r| r.to_string()),
            state,
        ]
    });
    table(out, &columns, rows)
}

pub(crate) fn dead_jobs(
    out: &mut dyn Write,
    jobs: &[JobView],
    as_json: bool,
) -> std::io::Result<()> {
    if as_json {
        return json(out, &JobItem::all(jobs));
    }
    let columns = [
        ("queue", 16, false),
        ("id", 36, false),
        ("type", 20, false),
        ("died", 24, false),
        ("error", 0, false),
    ];
    let rows = jobs.iter().map(|j| {
        vec![
            clip_line(&j.queue, FIELD_BYTES),
            clip_line(j.id.as_str(), FIELD_BYTES),
            clip_line(j.job_type(), FIELD_BYTES),
            time(j.at_ms, ""),
            j.last_error()
                .map(|e| clip_line(&e.error, ERROR_ROW_BYTES))
                .unwrap_or_default(),
        ]
    });
    table(out, &columns, rows)
}

pub(crate) fn cron_entries(out: &mut dyn Write, entries: &[CronEntryView]) -> std::io::Result<()> {
    let columns = [
        ("name", 24, false),
        ("schedule", 18, false),
        ("zone", 16, false),
        ("queue", 12, false),
        ("next run (UTC)", 20, false),
        ("last run (UTC)", 20, false),
        ("state", 8, false),
        ("last job", 0, false),
    ];
    let rows = entries.iter().map(|e| {
        vec![
            clip_line(&e.name, FIELD_BYTES),
            clip_line(&e.schedule, FIELD_BYTES),
            clip_line(&e.timezone, FIELD_BYTES),
            clip_line(&e.queue, FIELD_BYTES),
            time(e.next_run_ms, "-"),
            time(e.last_run_ms, "-"),
            (if e.paused { "paused" } else { "active" }).to_owned(),
            e.last_job_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), |id| clip_line(id.as_str(), FIELD_BYTES)),
        ]
    });
    table(out, &columns, rows)
}

/// One event: a JSON object per line, or
/// `time queue kind id type attempt=N error="…" by=actor (selection)`.
pub(crate) fn event(
    out: &mut dyn Write,
    e: &spool_client::Event,
    as_json: bool,
) -> std::io::Result<()> {
    if as_json {
        return json(out, e);
    }
    write!(
        out,
        "{}  {}  {:<16}",
        time_ms(e.at_ms),
        e.queue,
        clip_line(e.kind.as_str(), FIELD_BYTES)
    )?;
    if let Some(id) = &e.job_id {
        write!(out, "  {}", clip_line(id.as_str(), FIELD_BYTES))?;
    }
    if let Some(t) = &e.job_type {
        write!(out, "  {}", clip_line(t, FIELD_BYTES))?;
    }
    if let Some(a) = e.attempt.filter(|a| *a > 0) {
        write!(out, "  attempt={a}")?;
    }
    if let Some(err) = &e.error {
        write!(out, "  error={:?}", clip_line(err, ERROR_ROW_BYTES))?;
    }
    if let Some(actor) = &e.actor {
        write!(out, "  by={}", clip_line(actor, FIELD_BYTES))?;
        if let Some(sel) = &e.selection {
            write!(out, " ({})", clip_line(sel, FIELD_BYTES))?;
        }
    }
    writeln!(out)
}

/// One line per batch: id, kind, progress, counts, state.
pub(crate) fn batch_line(out: &mut dyn Write, b: &BatchStatus) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  {:<5}  {:>3}%  done {} dead {} cancelled {} pending {} of {}  {}{}",
        b.id,
        b.kind.as_str(),
        b.percent_ended(),
        b.done,
        b.dead,
        b.cancelled,
        b.pending,
        b.total,
        b.state(),
        if b.description.is_empty() {
            String::new()
        } else {
            format!("  {}", clip(&b.description, FIELD_BYTES))
        }
    )
}

/// `spool batch show`: the batch, its callbacks, then its members.
pub(crate) fn batch(
    out: &mut dyn Write,
    b: &BatchStatus,
    members: &[BatchMember],
) -> std::io::Result<()> {
    writeln!(out, "{} {}", b.kind.as_str(), b.id)?;
    if !b.description.is_empty() {
        writeln!(out, "description  {}", clip(&b.description, FIELD_BYTES))?;
    }
    writeln!(out, "state        {}", b.state())?;
    writeln!(
        out,
        "progress     {}% ended: done {}, dead {}, cancelled {}, pending {} of {}",
        b.percent_ended(),
        b.done,
        b.dead,
        b.cancelled,
        b.pending,
        b.total
    )?;
    writeln!(out, "created      {}", time_ms(b.created_ms))?;
    if let Some(ms) = b.finished_ms {
        writeln!(out, "finished     {}", time_ms(ms))?;
    }
    if let Some(id) = &b.first_dead {
        writeln!(out, "first death  {id}")?;
    }
    for cb in &b.callbacks {
        writeln!(
            out,
            "callback     on {}: {} {} ({}) {}",
            cb.on.as_str(),
            clip(&cb.job_type, FIELD_BYTES),
            cb.id,
            clip(&cb.queue, FIELD_BYTES),
            if cb.fired { "created" } else { "not yet" }
        )?;
    }
    if !members.is_empty() {
        writeln!(out)?;
        for m in members {
            writeln!(
                out,
                "{}  {:<9}  {}  {}",
                m.id,
                m.state.as_str(),
                clip(&m.queue, FIELD_BYTES),
                m.ended_ms.map(time_ms).unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
