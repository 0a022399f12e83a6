//! Filtered reads over one job set: the dashboard's and CLI's "filter by job
//! type and by a substring of args or error", and the ids an "act on every
//! job matching the filter" action touches.
//!
//! A sorted set has no index on job type or payload, so a filter has to read
//! records. Page renders stay bounded: [`Admin::scan_set`] reads at most a
//! caller-given window of the set (in chunks of [`SCAN_CHUNK`] ids, each chunk
//! one ZRANGE plus one HMGET round trip) and reports how much it looked at, so
//! a page can say "filter applied to the first 10,000 of 2,000,000 jobs".
//! Mutations over a filter ([`Admin::matching_ids`]) walk further, still in
//! chunks and up to a cap, then act through the usual scripts
//! ([`Admin::retry_jobs`], [`Admin::delete_jobs`]) so double actions stay safe.

use serde::Serialize;

use super::{check_page, Admin, JobView};
use crate::error::{Error, Result};
use crate::job::{JobId, JobSet};

/// Ids read per round trip while filtering.
pub const SCAN_CHUNK: usize = 500;
/// Longest accepted filter text or job type, in bytes.
pub const FILTER_TEXT_MAX: usize = 200;
/// Most set entries a filtered read may examine in one call.
pub const SCAN_WINDOW_MAX: u64 = 1_000_000;

/// What to keep while scanning a set. An empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobFilter {
    /// Keep jobs of exactly this type.
    pub job_type: Option<String>,
    /// Keep jobs whose args or error history contain this text
    /// (case-insensitive). Listings read a bounded prefix of each record
    /// (see [`LISTING_RECORD_BYTES_MAX`](super::LISTING_RECORD_BYTES_MAX)),
    /// so text past it in a huge job is not searched.
    pub text: Option<String>,
}

impl JobFilter {
    /// A filter from optional, possibly blank, user input (blank means "any").
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a part is longer than
    /// [`FILTER_TEXT_MAX`] bytes or contains NUL.
    pub fn new(job_type: Option<&str>, text: Option<&str>) -> Result<Self> {
        let clean = |what: &str, v: Option<&str>| -> Result<Option<String>> {
            match v.map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if v.len() > FILTER_TEXT_MAX || v.contains('\0') => {
                    Err(Error::InvalidArgument(format!(
                        "{what} filter must be at most {FILTER_TEXT_MAX} bytes without NUL"
                    )))
                }
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
        Ok(Self {
            job_type: clean("job type", job_type)?,
            text: clean("text", text)?.map(|t| t.to_lowercase()),
        })
    }

    /// True when the filter keeps every job.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.job_type.is_none() && self.text.is_none()
    }

    /// Whether `job` passes the filter.
    #[must_use]
    pub fn matches(&self, job: &JobView) -> bool {
        if let Some(t) = &self.job_type {
            if job.job_type() != t {
                return false;
            }
        }
        if let Some(text) = &self.text {
            // In a listing, a long record's args are its first bytes only.
            let args = job.args_text();
            let hit =
                contains_ci(args, text) || job.errors.iter().any(|e| contains_ci(&e.error, text));
            if !hit {
                return false;
            }
        }
        true
    }
}

/// Case-insensitive containment; `needle` is already lower-case.
fn contains_ci(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.is_empty()
            || h.windows(n.len())
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b));
    }
    haystack.to_lowercase().contains(needle)
}

/// One page of a filtered scan.
#[derive(Debug, Clone, Serialize)]
pub struct FilteredPage {
    /// Entries in the whole set.
    pub total: u64,
    /// Set entries examined (from the start of the set).
    pub scanned: u64,
    /// True when the scan stopped at its window before the end of the set:
    /// more matches may exist further on.
    pub truncated: bool,
    /// Matches found in the scanned part.
    pub matched: u64,
    /// Index of the first returned match among the matches.
    pub offset: u64,
    /// The matches of this page.
    pub items: Vec<JobView>,
}

impl FilteredPage {
    /// A page with nothing scanned yet, starting at match `offset`.
    pub(crate) fn empty(offset: u64) -> Self {
        Self {
            total: 0,
            scanned: 0,
            truncated: false,
            matched: 0,
            offset,
            items: Vec::new(),
        }
    }
}

impl Admin {
    /// Scans the first `window` entries of a set (in the order
    /// [`Admin::list_set`] uses) and returns matches `offset..offset+limit`
    /// plus how many matched in the window.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::InvalidArgument`] for a page
    /// size over [`PAGE_LIMIT_MAX`](super::PAGE_LIMIT_MAX) or a window over
    /// [`SCAN_WINDOW_MAX`], [`Error::Redis`].
    pub async fn scan_set(
        &self,
        queue: &str,
        set: JobSet,
        filter: &JobFilter,
        offset: u64,
        limit: usize,
        window: u64,
    ) -> Result<FilteredPage> {
        check_page(limit)?;
        check_window(window)?;
        let mut page = FilteredPage::empty(offset);
        let end = offset.saturating_add(limit as u64);
        let mut at = 0u64;
        loop {
            let want = usize::try_from((window - at).min(SCAN_CHUNK as u64)).unwrap_or(0);
            if want == 0 {
                break;
            }
            let chunk = self.list_set(queue, set, at, want).await?;
            page.total = chunk.total;
            // Ids that vanished between ZRANGE and HMGET are skipped by
            // list_set; the position still advances by the ids asked for.
            let read = chunk.total.saturating_sub(at).min(want as u64);
            at += read;
            for job in chunk.items {
                if filter.matches(&job) {
                    if page.matched >= offset && page.matched < end {
                        page.items.push(job);
                    }
                    page.matched += 1;
                }
            }
            if read < want as u64 || at >= chunk.total {
                break;
            }
        }
        page.scanned = at;
        page.truncated = at < page.total;
        Ok(page)
    }

    /// Ids of every job in the first `window` entries of a set that match
    /// `filter`, for bulk actions. Returns the ids and whether the window
    /// ended before the set did.
    ///
    /// # Errors
    /// As [`Admin::scan_set`].
    pub async fn matching_ids(
        &self,
        queue: &str,
        set: JobSet,
        filter: &JobFilter,
        window: u64,
    ) -> Result<(Vec<JobId>, bool)> {
        check_window(window)?;
        let mut ids = Vec::new();
        let mut at = 0u64;
        let mut total = 0;
        loop {
            let want = usize::try_from((window - at).min(SCAN_CHUNK as u64)).unwrap_or(0);
            if want == 0 {
                break;
            }
            let chunk = self.list_set(queue, set, at, want).await?;
            total = chunk.total;
            let read = chunk.total.saturating_sub(at).min(want as u64);
            at += read;
            ids.extend(
                chunk
                    .items
                    .into_iter()
                    .filter(|j| filter.matches(j))
                    .map(|j| j.id),
            );
            if read < want as u64 || at >= chunk.total {
                break;
            }
        }
        Ok((ids, at < total))
    }
}

fn check_window(window: u64) -> Result<()> {
    if window == 0 || window > SCAN_WINDOW_MAX {
        return Err(Error::InvalidArgument(format!(
            "scan window must be 1 to {SCAN_WINDOW_MAX} jobs"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_filter_parts_mean_any() {
        let f = JobFilter::new(Some("  "), None).expect("valid");
        assert!(f.is_empty());
        assert!(JobFilter::new(Some(&"x".repeat(201)), None).is_err());
        assert!(JobFilter::new(None, Some("a\0b")).is_err());
    }

    #[test]
    fn text_match_ignores_ascii_case() {
        assert!(contains_ci("Hello World", "world"));
        assert!(!contains_ci("Hello", "world"));
        assert!(contains_ci("Grüße", "grü"));
    }
}
