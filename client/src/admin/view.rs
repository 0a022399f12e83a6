//! A job as the admin API shows it ([`JobView`]), decoded per job from the
//! stored **bytes**: a record that is cut off (listings read a bounded
//! prefix), not UTF-8, not JSON or not Spool's shape is still shown, with
//! its bytes escaped and a `problem` saying what is wrong with it.

use serde::Serialize;

use crate::job::{ErrorEntry, JobId, JobRecord, JobState};
use crate::wire::{
    attempt_while_leased, check_args_depth, escape_bytes, record_head, MAX_ARGS_DEPTH,
};

/// Who holds a running job.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LeaseView {
    /// The lease fence.
    pub token: String,
    /// The worker process id.
    pub worker: String,
    /// Lease deadline (Redis ms).
    pub deadline_ms: Option<i64>,
    /// When the lease was taken (Redis ms).
    pub started_ms: Option<i64>,
}

/// What can be read from a record's first bytes, even when the record is
/// cut off or not decodable: the script-owned head and the job type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordSummary {
    /// Runs so far (this one included while the job is active).
    pub attempt: u32,
    /// Runs allowed in total.
    pub max_attempts: u32,
    /// When the job last became ready (Redis ms).
    pub enqueued_ms: i64,
    /// The job type, when its field was found in the bytes read.
    pub job_type: Option<String>,
}

/// A job as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Job id.
    pub id: JobId,
    /// Queue.
    pub queue: String,
    /// Where the job is.
    pub state: JobState,
    /// Run-at (scheduled), retry-at (retry), died-at (dead) or lease deadline
    /// (active), in Redis ms.
    pub at_ms: Option<i64>,
    /// The decoded record; `None` when the stored bytes are not a Spool
    /// record (see `problem`) or when a listing read only their first bytes
    /// (see `truncated`; [`Admin::job`](super::Admin::job) reads it whole).
    pub record: Option<JobRecord>,
    /// The head and type, read from the bytes even when `record` is `None`;
    /// `None` for an entry without Spool's head.
    pub summary: Option<RecordSummary>,
    /// The stored bytes read, as text: valid UTF-8 unchanged, other bytes
    /// escaped as `\xNN`. In listings only the first bytes (see `truncated`).
    pub raw: String,
    /// The stored bytes read, exactly (same extent as `raw`).
    #[serde(skip)]
    pub raw_bytes: Vec<u8>,
    /// Length of the whole stored record in bytes.
    pub size: u64,
    /// True when only the first bytes of the record were read.
    pub truncated: bool,
    /// Why the record cannot be decoded (not UTF-8, not JSON, not Spool's
    /// shape); `None` when it can, or when only a prefix was read and that
    /// prefix shows nothing wrong.
    pub problem: Option<String>,
    /// Error history, oldest first.
    pub errors: Vec<ErrorEntry>,
    /// Lease holder while active.
    pub lease: Option<LeaseView>,
    /// The key id when the args are encrypted (an envelope, see
    /// [`JobOptions::encrypted`](crate::JobOptions::encrypted)): previews
    /// and filters then see only `encrypted (key <id>)`
    /// ([`JobView::args_text`]); [`Admin::reveal_args`](super::Admin::reveal_args)
    /// opens them with the client's keyring.
    pub encrypted_key: Option<String>,
    /// `encrypted (key <id>)` for encrypted args.
    #[serde(skip)]
    args_marker: Option<String>,
}

impl JobView {
    /// Builds a view from stored bytes: `raw` is the whole record when
    /// `size` equals its length, else its first bytes.
    pub(super) fn decode(
        id: JobId,
        queue: &str,
        state: JobState,
        at_ms: Option<i64>,
        raw: Vec<u8>,
        size: u64,
    ) -> Self {
        let truncated = (raw.len() as u64) < size;
        let leased = state == JobState::Active;
        let (record, problem) = if truncated {
            let bad_utf8 = std::str::from_utf8(&raw).is_err_and(|e| e.error_len().is_some());
            (
                None,
                bad_utf8.then(|| "record is not valid UTF-8".to_owned()),
            )
        } else {
            match std::str::from_utf8(&raw) {
                Err(e) => (
                    None,
                    Some(format!(
                        "record is not valid UTF-8 (first bad byte at {})",
                        e.valid_up_to()
                    )),
                ),
                Ok(text) => match JobRecord::from_json(text) {
                    // serde_json reads deep args as raw text, but turning the
                    // view into a `serde_json::Value` (as `json!` does) would
                    // fail at its recursion limit: such a record is shown raw.
                    Ok(r) if check_args_depth(r.args.get().as_bytes()).is_err() => (
                        None,
                        Some(format!(
                            "args nest more than {MAX_ARGS_DEPTH} levels of arrays and objects"
                        )),
                    ),
                    Ok(mut r) => {
                        if leased {
                            r.attempt = attempt_while_leased(r.attempt);
                        }
                        (Some(r), None)
                    }
                    Err(e) => (None, Some(format!("not a Spool job record: {e}"))),
                },
            }
        };
        let summary = record_head(&raw).map(|h| RecordSummary {
            attempt: if leased {
                attempt_while_leased(h.attempt)
            } else {
                h.attempt
            },
            max_attempts: h.max_attempts,
            enqueued_ms: h.enqueued_ms,
            job_type: record
                .as_ref()
                .map(|r| r.job_type.clone())
                .or_else(|| string_field(&raw, b",\"type\":\"")),
        });
        let encrypted_key = match &record {
            Some(r) => r.encrypted_key_id(),
            None => args_after_field(&escape_bytes(&raw))
                .and_then(crate::envelope_key_id)
                .map(str::to_owned),
        };
        Self {
            args_marker: encrypted_key
                .as_ref()
                .map(|k| format!("{ENCRYPTED_MARKER} (key {k})")),
            encrypted_key,
            id,
            queue: queue.to_owned(),
            state,
            at_ms,
            record,
            summary,
            raw: escape_bytes(&raw),
            raw_bytes: raw,
            size,
            truncated,
            problem,
            errors: Vec::new(),
            lease: None,
        }
    }

    /// The job type, or `"?"` when it cannot be read.
    #[must_use]
    pub fn job_type(&self) -> &str {
        self.record
            .as_ref()
            .map(|r| r.job_type.as_str())
            .or_else(|| self.summary.as_ref()?.job_type.as_deref())
            .unwrap_or("?")
    }

    /// The args as text for previews and text filters: the decoded args;
    /// else, for a record cut off or not decodable, the stored text from the
    /// `args` field on (it may be cut off); else the whole text read.
    ///
    /// Encrypted args read `encrypted (key <id>)` ([`ENCRYPTED_MARKER`]):
    /// their ciphertext is no use to a reader, and a text filter must never
    /// match what they hide.
    #[must_use]
    pub fn args_text(&self) -> &str {
        if let Some(marker) = &self.args_marker {
            return marker;
        }
        if let Some(r) = &self.record {
            return r.args.get();
        }
        args_after_field(&self.raw).unwrap_or(self.raw.as_str())
    }

    /// `(attempt, max_attempts)`, when the record has Spool's head.
    #[must_use]
    pub fn attempts(&self) -> Option<(u32, u32)> {
        self.summary.as_ref().map(|s| (s.attempt, s.max_attempts))
    }

    /// When the job last became ready (Redis ms), when the record has
    /// Spool's head.
    #[must_use]
    pub fn enqueued_ms(&self) -> Option<i64> {
        self.summary.as_ref().map(|s| s.enqueued_ms)
    }

    /// The most recent error, if any.
    #[must_use]
    pub fn last_error(&self) -> Option<&ErrorEntry> {
        self.errors.last()
    }
}

/// What listings show instead of encrypted args (with the key id).
pub const ENCRYPTED_MARKER: &str = "encrypted";

/// The stored text from the `args` field's value on, if found.
fn args_after_field(raw: &str) -> Option<&str> {
    const FIELD: &str = ",\"args\":";
    raw.find(FIELD).map(|at| &raw[at + FIELD.len()..])
}

/// The JSON string after the first `marker` (which ends with the opening
/// quote), when it is complete and decodes.
fn string_field(raw: &[u8], marker: &[u8]) -> Option<String> {
    let at = raw.windows(marker.len()).position(|w| w == marker)? + marker.len() - 1;
    let rest = &raw[at..];
    let mut escaped = false;
    let end = rest.iter().skip(1).position(|&b| {
        let close = !escaped && b == b'"';
        escaped = !escaped && b == b'\\';
        close
    })? + 2;
    serde_json::from_slice(&rest[..end]).ok()
}

/// A stored error history, tolerating bytes that are not UTF-8 (shown as
/// U+FFFD: an escape would not survive inside a JSON string).
pub(super) fn decode_errors(raw: Option<&[u8]>) -> Vec<ErrorEntry> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    serde_json::from_slice(raw)
        .or_else(|_| serde_json::from_str(&String::from_utf8_lossy(raw)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = br#"{"id":"j","attempt":1,"max_attempts":3,"enqueued_ms":5,"type":"t\"x","queue":"q","args":[1,2],"created_ms":1}"#;

    fn view(raw: &[u8], size: usize, state: JobState) -> JobView {
        JobView::decode(
            JobId::from("j"),
            "q",
            state,
            None,
            raw.to_vec(),
            size as u64,
        )
    }

    #[test]
    fn whole_records_decode_and_leased_ones_count_the_run() {
        let v = view(GOOD, GOOD.len(), JobState::Ready);
        assert_eq!(v.problem, None);
        assert_eq!(v.job_type(), "t\"x");
        assert_eq!(v.args_text(), "[1,2]");
        assert_eq!(v.attempts(), Some((1, 3)));
        let v = view(GOOD, GOOD.len(), JobState::Active);
        assert_eq!(v.attempts(), Some((2, 3)));
        assert_eq!(v.record.map(|r| r.attempt), Some(2));
    }

    #[test]
    fn prefixes_and_bad_bytes_still_show() {
        let v = view(&GOOD[..100], GOOD.len(), JobState::Dead);
        assert!(v.truncated && v.record.is_none() && v.problem.is_none());
        assert_eq!(v.job_type(), "t\"x");
        assert_eq!(v.enqueued_ms(), Some(5));
        assert!(v.args_text().starts_with("[1"));

        let mut bad = GOOD.to_vec();
        bad.splice(90..90, *b"\xff\xfe");
        let v = view(&bad, bad.len(), JobState::Dead);
        assert!(v.problem.as_deref().is_some_and(|p| p.contains("UTF-8")));
        assert!(v.raw.contains("\\xFF\\xFE"));
        assert_eq!(v.raw_bytes, bad);
        assert_eq!(v.job_type(), "t\"x");

        let deep = format!(
            r#"{{"id":"j","attempt":1,"max_attempts":3,"enqueued_ms":5,"type":"t","queue":"q","args":{}{},"created_ms":1}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let v = view(deep.as_bytes(), deep.len(), JobState::Dead);
        assert!(v.record.is_none() && v.problem.is_some());
        serde_json::to_value(&v).expect("a view always converts to a JSON value");

        let v = view(b"not json", 8, JobState::Ready);
        assert!(v.problem.is_some() && v.summary.is_none());
        assert_eq!(v.job_type(), "?");
    }

    #[test]
    fn error_histories_tolerate_bad_bytes() {
        let h = b"[{\"at_ms\":1,\"attempt\":1,\"error\":\"a\xffb\"}]";
        assert_eq!(decode_errors(Some(h))[0].error, "a\u{FFFD}b");
        assert!(decode_errors(Some(b"junk")).is_empty());
    }
}
