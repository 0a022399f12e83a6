//! Request parameters, parsed strictly: the extractors [`StrictQuery`] and
//! [`StrictForm`] (a parameter that is not UTF-8 once percent-decoded is a
//! 400 naming it, never lossily decoded; a malformed form is a 400, never a
//! panic), numbers in canonical form and within bounds (`page=+1`,
//! `page=01` or a page size out of range is a 400, never a huge read), and
//! the id rule for path segments (`../`, slashes, NUL, very long → 400).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use spool_client::admin::JobFilter;
use spool_client::JobSet;

use crate::error::{AppError, AppResult};
use crate::text::{clip, FIELD_BYTES};

/// A query string deserialized into `T`, refusing non-UTF-8 parameters.
pub(crate) struct StrictQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> AppResult<Self> {
        let query = parts.uri.query().unwrap_or_default();
        utf8_pairs(query.as_bytes())?;
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// A urlencoded form body deserialized into `T` (repeated keys fill a
/// `Vec`), refusing non-UTF-8 fields; malformed → 400.
pub(crate) struct StrictForm<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        utf8_pairs(&bytes)?;
        let req = Request::from_parts(parts, Body::from(bytes));
        axum_extra::extract::Form::<T>::from_request(req, state)
            .await
            .map(|f| Self(f.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// Checks every key and value of a urlencoded string is UTF-8 once
/// percent-decoded; the error names the first parameter that is not.
pub(crate) fn utf8_pairs(raw: &[u8]) -> AppResult<()> {
    for pair in raw.split(|b| *b == b'&') {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let key = percent_decode(kv.next().unwrap_or_default());
        let value = percent_decode(kv.next().unwrap_or_default());
        let name = String::from_utf8_lossy(&key).into_owned();
        if std::str::from_utf8(&key).is_err() || std::str::from_utf8(&value).is_err() {
            return Err(AppError::BadRequest(format!(
                "parameter {:?} is not valid UTF-8",
                clip(&name, FIELD_BYTES)
            )));
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                match (hex(raw[i + 1]), hex(raw[i + 2])) {
                    (Some(h), Some(l)) => {
                        // Two hex digits make one byte: h * 16 + l < 256.
                        out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Rows per page unless `per_page` says otherwise.
pub const PER_PAGE_DEFAULT: usize = 25;
/// Largest `per_page`.
pub const PER_PAGE_MAX: usize = 500;
/// Largest `page` number.
pub const PAGE_MAX: u64 = 100_000;
/// Longest job id accepted in a path.
const ID_MAX: usize = 200;

/// Raw listing parameters as they come in the query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) page: Option<String>,
    pub(crate) per_page: Option<String>,
    pub(crate) queue: Option<String>,
    #[serde(rename = "type")]
    pub(crate) job_type: Option<String>,
    pub(crate) q: Option<String>,
    /// Outcome of the last action, for the notice line (`retry`, `delete`, …).
    pub(crate) done: Option<String>,
    /// How many jobs the last action touched.
    pub(crate) n: Option<String>,
    /// For a cancel: the state the job was cancelled from, or the state it
    /// had already finished in.
    pub(crate) from: Option<String>,
    /// A batch's member state (`/batches/{id}?state=dead`).
    pub(crate) state: Option<String>,
}

/// Validated paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    /// 1-based page number.
    pub(crate) page: u64,
    pub(crate) per_page: usize,
}

impl Paging {
    pub(crate) fn offset(self) -> u64 {
        (self.page - 1) * self.per_page as u64
    }
}

pub(crate) fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    raw: Option<&str>,
    default: T,
    min: T,
    max: T,
) -> AppResult<T> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    canonical(raw, &min, &max)
        .ok_or_else(|| AppError::BadRequest(format!("{name} must be a number from {min} to {max}")))
}

/// `raw` as a number in `min..=max`, written in canonical decimal: `+1`,
/// `01` or ` 1` are refused, not read as 1. Shared with the CLI's flags.
pub(crate) fn canonical<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    raw: &str,
    min: &T,
    max: &T,
) -> Option<T> {
    raw.parse::<T>()
        .ok()
        .filter(|v| v >= min && v <= max && v.to_string() == raw)
}

impl ListQuery {
    pub(crate) fn paging(&self) -> AppResult<Paging> {
        Ok(Paging {
            page: number("page", self.page.as_deref(), 1, 1, PAGE_MAX)?,
            per_page: number(
                "per_page",
                self.per_page.as_deref(),
                PER_PAGE_DEFAULT,
                1,
                PER_PAGE_MAX,
            )?,
        })
    }

    pub(crate) fn filter(&self) -> AppResult<JobFilter> {
        Ok(JobFilter::new(self.job_type.as_deref(), self.q.as_deref())?)
    }

    /// The selected queue, validated; `None` when absent or blank.
    pub(crate) fn queue(&self) -> AppResult<Option<String>> {
        match self.queue.as_deref().filter(|q| !q.is_empty()) {
            None => Ok(None),
            Some(q) => {
                spool_client::validate_queue_name(q)?;
                Ok(Some(q.to_owned()))
            }
        }
    }

    pub(crate) fn notice(&self) -> Option<String> {
        if let Some(text) = cancel_notice(self.done.as_deref()?, self.from.as_deref()) {
            return Some(text);
        }
        let n: u64 = canonical(self.n.as_deref()?, &0, &u64::MAX)?;
        let jobs = if n == 1 { "job" } else { "jobs" };
        let what = match self.done.as_deref()? {
            "retry" => "moved to ready",
            "run" => "moved to ready to run now",
            "delete" => "deleted",
            "clear" => "cleared from ready (deleted)",
            "pause" => return Some("Queue paused.".to_owned()),
            "resume" => return Some("Queue resumed.".to_owned()),
            "limit" => return Some("Concurrency limit saved.".to_owned()),
            "rate" => return Some("Rate limit saved.".to_owned()),
            "key_rate" => return Some("Per-key rate limit saved.".to_owned()),
            "groups" => return Some("Group settings saved.".to_owned()),
            "breaker" => return Some("Circuit breaker saved.".to_owned()),
            "breaker_reset" => return Some("Circuit breaker closed.".to_owned()),
            "cron" => return Some("Cron entry updated.".to_owned()),
            "cron_run" => return Some("Cron job enqueued.".to_owned()),
            "quiet" => {
                return Some(
                    "Quiet requested: the process stops fetching at its next heartbeat and \
                     finishes the jobs it runs."
                        .to_owned(),
                )
            }
            "stop" => {
                return Some(
                    "Stop requested: the process shuts down gracefully at its next heartbeat."
                        .to_owned(),
                )
            }
            "gone" => return Some("That process is gone: nothing was sent.".to_owned()),
            _ => return None,
        };
        Some(format!("{n} {jobs} {what}."))
    }
}

/// The notice after a Cancel (`done` as `routes::jobs::cancel` sets it);
/// `None` for any other action. `from` is printed only when it is a state
/// name.
fn cancel_notice(done: &str, from: Option<&str>) -> Option<String> {
    let from = from.filter(|f| {
        matches!(
            *f,
            "scheduled" | "ready" | "active" | "retry" | "dead" | "done" | "cancelled"
        )
    });
    Some(match (done, from) {
        ("cancelled", Some(f)) => format!("Job cancelled (it was {f}): it will not run."),
        ("cancelled", None) => "Job cancelled: it will not run.".to_owned(),
        ("cancel_signalled", _) => "Cancel requested: the job is running and its worker has \
            been told; it ends cancelled when this run ends."
            .to_owned(),
        ("cancel_resignalled", _) => "Cancel was already requested: the job ends cancelled \
            when its current run ends."
            .to_owned(),
        ("cancel_finished", Some(f)) => {
            format!("The job had already finished ({f}): nothing changed.")
        }
        ("cancel_finished", None) => "The job had already finished: nothing changed.".to_owned(),
        ("cancel_not_found", _) => "No such job (it never existed, or finished without keeping \
            its outcome): nothing changed."
            .to_owned(),
        _ => return None,
    })
}

/// Checks a job id from a path or form: 1 to 200 visible ASCII characters,
/// no slash, backslash, quote or NUL, not `.` or `..`.
pub(crate) fn job_id(id: &str) -> AppResult<&str> {
    let ok = !id.is_empty()
        && id.len() <= ID_MAX
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'\\' | b'"' | b'%'));
    if ok {
        Ok(id)
    } else {
        Err(AppError::BadRequest(
            "job id must be 1 to 200 visible ASCII characters without / \\ \" or %".to_owned(),
        ))
    }
}

/// `/jobs/{queue}/{id}` (relative to the base) when both would be accepted
/// in that path; `None` otherwise.
pub(crate) fn job_path(queue: &str, id: &str) -> Option<String> {
    (spool_client::validate_queue_name(queue).is_ok() && job_id(id).is_ok())
        .then(|| format!("/jobs/{}/{}", enc(queue), enc(id)))
}

/// Checks a queue name from a path.
pub(crate) fn queue_name(q: &str) -> AppResult<&str> {
    spool_client::validate_queue_name(q)?;
    Ok(q)
}

/// The set a page path names.
pub(crate) fn set_of(path: &str) -> Option<JobSet> {
    match path {
        "scheduled" => Some(JobSet::Scheduled),
        "retries" => Some(JobSet::Retry),
        "dead" => Some(JobSet::Dead),
        _ => None,
    }
}

/// The page path of a set.
pub(crate) fn path_of(set: JobSet) -> &'static str {
    match set {
        JobSet::Scheduled => "scheduled",
        JobSet::Retry => "retries",
        JobSet::Dead => "dead",
    }
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(page: &str, per_page: &str) -> ListQuery {
        ListQuery {
            page: Some(page.into()),
            per_page: Some(per_page.into()),
            ..ListQuery::default()
        }
    }

    #[test]
    fn paging_is_bounded() {
        assert_eq!(q("2", "50").paging().unwrap().offset(), 50);
        assert!(q("0", "10").paging().is_err());
        assert!(q("1", "501").paging().is_err());
        assert!(q("1", "-1").paging().is_err());
        assert!(q("100001", "10").paging().is_err());
        assert!(q("99999999999999999999999", "10").paging().is_err());
        for odd in ["+1", "01", " 1", "1 ", "1e2", "0x1"] {
            assert!(q(odd, "10").paging().is_err(), "{odd}");
            assert!(q("1", odd).paging().is_err(), "{odd}");
        }
    }

    #[test]
    fn non_utf8_parameters_are_named() {
        assert!(utf8_pairs(b"q=%C3%A9&type=a+b").is_ok());
        let e = utf8_pairs(b"page=1&q=%FF").unwrap_err();
        assert!(matches!(e, AppError::BadRequest(m) if m.contains("\"q\"")));
        assert!(utf8_pairs(b"%FE=1").is_err());
        assert!(utf8_pairs(b"q=%F").is_ok());
    }

    #[test]
    fn cancel_notices_name_only_known_states() {
        let n = |done: &str, from: Option<&str>| {
            ListQuery {
                done: Some(done.into()),
                from: from.map(Into::into),
                ..ListQuery::default()
            }
            .notice()
        };
        assert_eq!(
            n("cancelled", Some("scheduled")).as_deref(),
            Some("Job cancelled (it was scheduled): it will not run.")
        );
        assert_eq!(
            n("cancelled", Some("<b>")).as_deref(),
            Some("Job cancelled: it will not run.")
        );
        assert!(n("cancel_finished", Some("done"))
            .unwrap()
            .contains("(done)"));
        assert!(n("cancel_not_found", None)
            .unwrap()
            .starts_with("No such job"));
        assert!(n("cancel_signalled", None)
            .unwrap()
            .starts_with("Cancel requested"));
        assert_eq!(n("retry", None), None, "counted actions still need n");
    }

    #[test]
    fn odd_ids_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "a\0b", "a%2Fb", "a b"] {
            assert!(job_id(bad).is_err(), "{bad:?}");
        }
        assert!(job_id(&"x".repeat(201)).is_err());
        assert!(job_id("0190a6f2-7d1c-7b3e-9c4f-2a1b3c4d5e6f").is_ok());
        assert!(job_id("invalid-3").is_ok());
    }
}
