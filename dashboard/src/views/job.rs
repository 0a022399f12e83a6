//! The single-job pages: a stored job (record, errors, timeline) and a
//! finished job shown from its kept outcome.

use askama::Template;
use spool_client::HistoryEntry;

use super::{fmt_ms, fmt_time_ms, Layout};
use crate::params::path_of;
use crate::text::{
    clip, clip_line, prefix, pretty_json, ARGS_PAGE_BYTES, ERROR_PREVIEW_BYTES, FIELD_BYTES,
};

#[derive(Debug, Clone)]
pub(crate) struct ErrorRow {
    pub(crate) attempt: u32,
    pub(crate) at: String,
    pub(crate) error: String,
    /// The error was cut; the raw record has it whole.
    pub(crate) truncated: bool,
}

/// One entry of a job's timeline (oldest first), every stored string bounded.
#[derive(Debug, Clone)]
pub(crate) struct TimelineRow {
    /// When, with milliseconds.
    pub(crate) at: String,
    /// Time since the previous entry (empty for the first).
    pub(crate) after: String,
    /// The state entered.
    pub(crate) state: String,
    /// CSS class of the state badge: the state for a known one, else `other`.
    pub(crate) class: &'static str,
    pub(crate) attempt: u32,
    /// The worker, for `active`; the operator who made the move (retry,
    /// cancel) for other states; empty otherwise.
    pub(crate) worker: String,
    /// The error (one line, short), for failures; empty otherwise.
    pub(crate) error: String,
}

impl TimelineRow {
    /// The rows of a timeline as `status.lua` returned it.
    pub(crate) fn all(history: &[HistoryEntry]) -> Vec<Self> {
        let mut prev: Option<i64> = None;
        history
            .iter()
            .map(|h| {
                let after = prev
                    .and_then(|p| u64::try_from(h.at_ms.saturating_sub(p)).ok())
                    .map(|d| format!("+{}", fmt_ms(d)))
                    .unwrap_or_default();
                prev = Some(h.at_ms);
                Self {
                    at: fmt_time_ms(h.at_ms),
                    after,
                    class: state_class(&h.state),
                    state: clip(&h.state, FIELD_BYTES),
                    attempt: h.attempt,
                    worker: h
                        .worker
                        .as_deref()
                        .map(|w| clip(w, FIELD_BYTES))
                        .unwrap_or_default(),
                    error: h
                        .error
                        .as_deref()
                        .map(|e| clip_line(e, ERROR_PREVIEW_BYTES))
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// The badge class of a state name: known states only (a stored name is
/// never put into a class attribute as is).
pub(crate) fn state_class(state: &str) -> &'static str {
    match state {
        "scheduled" => "scheduled",
        "ready" => "ready",
        "active" => "active",
        "retry" => "retry",
        "dead" => "dead",
        "done" => "done",
        "cancelled" => "cancelled",
        _ => "other",
    }
}

/// Text of a stored JSON value (args, a result) for a job page: pretty-printed
/// up to [`ARGS_PAGE_BYTES`], else its first bytes.
#[derive(Debug, Clone)]
pub(crate) struct JsonText {
    pub(crate) text: String,
    /// Only the first bytes are shown.
    pub(crate) truncated: bool,
    /// Size of the whole value in bytes.
    pub(crate) bytes: usize,
}

impl JsonText {
    pub(crate) fn new(raw: &str) -> Self {
        let truncated = raw.len() > ARGS_PAGE_BYTES;
        Self {
            text: if truncated {
                prefix(raw, ARGS_PAGE_BYTES).to_owned()
            } else {
                pretty_json(raw)
            },
            truncated,
            bytes: raw.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "job.html")]
pub(crate) struct JobPage {
    pub(crate) l: Layout,
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) queue_href: String,
    /// The list this job is in (text, link): its set, its queue's ready
    /// jobs, or Processes for a running one.
    pub(crate) back: (String, String),
    pub(crate) state: String,
    /// The set page and its action form, for jobs in a set.
    pub(crate) set_path: Option<&'static str>,
    pub(crate) is_scheduled: bool,
    pub(crate) job_type: String,
    pub(crate) args: String,
    pub(crate) args_truncated: bool,
    pub(crate) args_bytes: usize,
    pub(crate) raw_href: String,
    /// For a follow-up: its parent (text: id, queue, how it ended) and link.
    pub(crate) parent: Option<(String, String)>,
    /// Its batch or chain, or the batch it is a callback of: (label, text,
    /// link).
    pub(crate) batch: Option<(&'static str, String, String)>,
    /// The follow-ups it will create (text, link).
    pub(crate) children: Vec<(String, String)>,
    /// The single-job JSON (full error texts).
    pub(crate) api_href: String,
    pub(crate) attempts: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) errors: Vec<ErrorRow>,
    pub(crate) lease: Option<(String, String, String)>,
    /// The timeline, oldest first.
    pub(crate) timeline: Vec<TimelineRow>,
    /// Why the timeline is missing, when its read failed.
    pub(crate) timeline_note: Option<String>,
    /// The Cancel form's action, for a job that has not finished.
    pub(crate) cancel_href: Option<String>,
    /// A running job was asked to cancel; its run has not ended yet.
    pub(crate) cancel_requested: bool,
}

/// A job known only by its status: finished (done, cancelled, or dead and
/// trimmed from the dead set) with a kept outcome, and no record left.
#[derive(Template)]
#[template(path = "job_outcome.html")]
pub(crate) struct JobOutcomePage {
    pub(crate) l: Layout,
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) queue_href: String,
    pub(crate) state: String,
    pub(crate) state_class: &'static str,
    /// Done, dead or cancelled (else the job moved between the page's reads).
    pub(crate) finished: bool,
    pub(crate) job_type: String,
    pub(crate) attempts: String,
    /// Times and retention, formatted.
    pub(crate) fields: Vec<Field>,
    /// What the handler returned, when kept.
    pub(crate) result: Option<JsonText>,
    /// The last error (failures), or why a result was not kept.
    pub(crate) last_error: Option<String>,
    /// The error was cut; the single-job JSON has it whole.
    pub(crate) error_truncated: bool,
    /// The single-job JSON (whole result and error).
    pub(crate) api_href: String,
    pub(crate) timeline: Vec<TimelineRow>,
    pub(crate) timeline_note: Option<String>,
    /// Why nothing more is shown (a kept outcome that cannot be decoded).
    pub(crate) problem: Option<String>,
    /// The Cancel form's action, for a job that has not finished (a job
    /// that moved between the two reads of the page).
    pub(crate) cancel_href: Option<String>,
}

/// One line of a job page's field list; `iso` is set for a time (shown
/// in the viewer's zone by the page's script).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) label: &'static str,
    pub(crate) value: String,
    pub(crate) iso: String,
}

impl Field {
    pub(crate) fn text(label: &'static str, value: String) -> Self {
        Self {
            label,
            value,
            iso: String::new(),
        }
    }

    /// A time to the second.
    pub(crate) fn time(label: &'static str, ms: i64) -> Self {
        Self {
            label,
            value: super::fmt_time(ms),
            iso: super::iso(ms),
        }
    }

    /// A time to the millisecond.
    pub(crate) fn time_ms(label: &'static str, ms: i64) -> Self {
        Self {
            label,
            value: super::fmt_time_ms(ms),
            iso: super::iso(ms),
        }
    }
}

impl JobPage {
    pub(crate) fn set_path_for(state: spool_client::JobState) -> Option<&'static str> {
        match state {
            spool_client::JobState::Scheduled => Some(path_of(spool_client::JobSet::Scheduled)),
            spool_client::JobState::Retry => Some(path_of(spool_client::JobSet::Retry)),
            spool_client::JobState::Dead => Some(path_of(spool_client::JobSet::Dead)),
            _ => None,
        }
    }
}
