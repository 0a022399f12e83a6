//! Query parameters of listing pages, parsed with bounds: a page number or
//! page size out of range is a 400 with a message, never a huge read.
//! Also the id rule for path segments (`../`, slashes, NUL, very long → 400).

use serde::Deserialize;
use spool_client::admin::JobFilter;
use spool_client::JobSet;

use crate::error::{AppError, AppResult};

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

fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    raw: Option<&str>,
    default: T,
    min: T,
    max: T,
) -> AppResult<T> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    match raw.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(AppError::BadRequest(format!(
            "{name} must be a number from {min} to {max}"
        ))),
    }
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
        let n: u64 = self.n.as_deref()?.parse().ok()?;
        let jobs = if n == 1 { "job" } else { "jobs" };
        let what = match self.done.as_deref()? {
            "retry" => "moved to ready",
            "run" => "moved to ready to run now",
            "delete" => "deleted",
            "pause" => return Some("Queue paused.".to_owned()),
            "resume" => return Some("Queue resumed.".to_owned()),
            "cron" => return Some("Cron entry updated.".to_owned()),
            "cron_run" => return Some("Cron job enqueued.".to_owned()),
            _ => return None,
        };
        Some(format!("{n} {jobs} {what}."))
    }
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
