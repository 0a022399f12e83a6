//! Bounded JSON shapes of listings, shared by the JSON API and
//! `spool dead list --json`. A listing never carries a stored value whole:
//! strings are cut with `text::clip`, args come as a bounded preview
//! *string* (never parsed: stored args may be nested thousands deep), and
//! each item links to the single-job JSON, which has everything.

use serde::Serialize;
use spool_client::admin::{CronEntryView, FilteredPage, JobView, Page, ProcessView};
use spool_client::JobState;

use crate::params::job_path;
use crate::text::{clip, FIELD_BYTES};

/// Bytes of args in a listing item's preview.
pub(crate) const ARGS_JSON_BYTES: usize = 1024;
/// Bytes of the last error in a listing item.
pub(crate) const ERROR_JSON_BYTES: usize = 1024;

/// One job in a listing.
#[derive(Debug, Serialize)]
pub(crate) struct JobItem {
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) state: JobState,
    pub(crate) at_ms: Option<i64>,
    #[serde(rename = "type")]
    pub(crate) job_type: String,
    pub(crate) attempt: Option<u32>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) enqueued_ms: Option<i64>,
    pub(crate) idempotency_key: Option<String>,
    /// The args' JSON text, cut at [`ARGS_JSON_BYTES`] (for a record the
    /// listing read only the start of, as much as was read).
    pub(crate) args_preview: String,
    /// Size of the whole stored record in bytes.
    pub(crate) size: u64,
    /// Why the record cannot be decoded, if it cannot (bounded).
    pub(crate) problem: Option<String>,
    /// The most recent error, cut at [`ERROR_JSON_BYTES`].
    pub(crate) last_error: Option<String>,
    pub(crate) errors: usize,
    /// Path of the single-job JSON (relative to the dashboard root); `null`
    /// for an id no job path accepts.
    pub(crate) href: Option<String>,
}

impl JobItem {
    pub(crate) fn new(j: &JobView) -> Self {
        let rec = j.record.as_ref();
        Self {
            id: clip(j.id.as_str(), FIELD_BYTES),
            queue: clip(&j.queue, FIELD_BYTES),
            state: j.state,
            at_ms: j.at_ms,
            job_type: clip(j.job_type(), FIELD_BYTES),
            attempt: j.attempts().map(|a| a.0),
            max_attempts: j.attempts().map(|a| a.1),
            enqueued_ms: j.enqueued_ms(),
            idempotency_key: rec
                .and_then(|r| r.idempotency_key.as_deref())
                .map(|k| clip(k, FIELD_BYTES)),
            args_preview: clip(j.args_text(), ARGS_JSON_BYTES),
            size: j.size,
            problem: j.problem.as_deref().map(|p| clip(p, FIELD_BYTES)),
            last_error: j.last_error().map(|e| clip(&e.error, ERROR_JSON_BYTES)),
            errors: j.errors.len(),
            href: job_path(&j.queue, j.id.as_str()).map(|p| format!("/api{p}")),
        }
    }

    pub(crate) fn all(items: &[JobView]) -> Vec<Self> {
        items.iter().map(Self::new).collect()
    }
}

/// A page of jobs; the scan fields only for a filtered listing.
#[derive(Debug, Serialize)]
pub(crate) struct Listing {
    pub(crate) total: u64,
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) matched: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scanned: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) truncated: Option<bool>,
    pub(crate) items: Vec<JobItem>,
}

impl From<Page<JobView>> for Listing {
    fn from(p: Page<JobView>) -> Self {
        Self {
            total: p.total,
            offset: p.offset,
            matched: None,
            scanned: None,
            truncated: None,
            items: JobItem::all(&p.items),
        }
    }
}

impl From<FilteredPage> for Listing {
    fn from(p: FilteredPage) -> Self {
        Self {
            total: p.total,
            offset: p.offset,
            matched: Some(p.matched),
            scanned: Some(p.scanned),
            truncated: Some(p.truncated),
            items: JobItem::all(&p.items),
        }
    }
}

/// A process with its stored strings bounded.
pub(crate) fn process(mut p: ProcessView) -> ProcessView {
    let i = &mut p.info;
    for s in [&mut i.id, &mut i.host, &mut i.version] {
        *s = clip(s, FIELD_BYTES);
    }
    i.queues.truncate(100);
    for q in &mut i.queues {
        *q = clip(q, FIELD_BYTES);
    }
    p.busy.truncate(1000);
    for b in &mut p.busy {
        for s in [&mut b.id, &mut b.queue, &mut b.job_type] {
            *s = clip(s, FIELD_BYTES);
        }
    }
    p
}

/// A cron entry with its stored strings bounded; args longer than
/// [`ARGS_JSON_BYTES`] become a preview string.
pub(crate) fn cron_entry(mut e: CronEntryView) -> CronEntryView {
    for s in [
        &mut e.name,
        &mut e.schedule,
        &mut e.timezone,
        &mut e.queue,
        &mut e.job_type,
    ] {
        *s = clip(s, FIELD_BYTES);
    }
    let args = e.args.to_string();
    if args.len() > ARGS_JSON_BYTES {
        e.args = serde_json::Value::String(clip(&args, ARGS_JSON_BYTES));
    }
    e
}
