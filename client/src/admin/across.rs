//! One job set (scheduled, retry or dead) of several queues as one listing,
//! in the set's order: each queue is read as [`Admin::list_set`] /
//! [`Admin::scan_set`] read it, from its front, and the pages are merged by
//! time (soonest first; dead most recent first), ties by queue name.
//!
//! Each queue lives in its own hash slot, so there is no cross-queue read in
//! Redis: a page costs one read per queue of `offset + limit` entries. The
//! pages therefore reach the first [`PAGE_LIMIT_MAX`](super::PAGE_LIMIT_MAX)
//! jobs of the merged listing; past that, a caller pages one queue.

use futures::future::try_join_all;

use super::{check_page, Admin, FilteredPage, JobFilter, JobView, Page, PAGE_LIMIT_MAX};
use crate::error::{Error, Result};
use crate::JobSet;

/// How deep a listing across queues reaches (`offset + limit`).
pub const ACROSS_DEPTH_MAX: u64 = PAGE_LIMIT_MAX as u64;

/// The first `offset + limit` of the merged listing, or a clear refusal
/// past [`ACROSS_DEPTH_MAX`].
fn depth(offset: u64, limit: usize) -> Result<usize> {
    check_page(limit)?;
    let end = offset.saturating_add(limit as u64);
    if end > ACROSS_DEPTH_MAX {
        return Err(Error::InvalidArgument(format!(
            "a listing across queues reaches its first {ACROSS_DEPTH_MAX} jobs; pick one \
             queue to page further"
        )));
    }
    usize::try_from(end).map_err(|_| Error::InvalidArgument("page too deep".to_owned()))
}

/// Sorts `jobs` in `set`'s order and keeps `offset..offset+limit`.
fn merge(mut jobs: Vec<JobView>, set: JobSet, offset: u64, limit: usize) -> Vec<JobView> {
    let newest_first = set == JobSet::Dead;
    jobs.sort_by(|a, b| {
        let (at_a, at_b) = (a.at_ms.unwrap_or(0), b.at_ms.unwrap_or(0));
        let by_time = if newest_first {
            at_b.cmp(&at_a)
        } else {
            at_a.cmp(&at_b)
        };
        by_time.then_with(|| a.queue.cmp(&b.queue))
    });
    jobs.into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit)
        .collect()
}

impl Admin {
    /// A page of `set` across `queues`, merged in the set's order (see
    /// [`Admin::list_set`]); `total` counts every queue's set.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// use spool_client::JobSet;
    /// let names = admin.queue_names().await?;
    /// let queues: Vec<&str> = names.iter().map(String::as_str).collect();
    /// let dead = admin.list_set_across(&queues, JobSet::Dead, 0, 25).await?;
    /// for job in &dead.items {
    ///     println!("{} {} {}", job.queue, job.id, job.job_type());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`]; [`Error::InvalidArgument`] for a page
    /// size over [`PAGE_LIMIT_MAX`] or a page past [`ACROSS_DEPTH_MAX`];
    /// [`Error::Redis`].
    pub async fn list_set_across(
        &self,
        queues: &[&str],
        set: JobSet,
        offset: u64,
        limit: usize,
    ) -> Result<Page<JobView>> {
        let end = depth(offset, limit)?;
        let pages = try_join_all(queues.iter().map(|q| self.list_set(q, set, 0, end))).await?;
        let total = pages.iter().map(|p| p.total).sum();
        let jobs = pages.into_iter().flat_map(|p| p.items).collect();
        Ok(Page {
            total,
            offset,
            items: merge(jobs, set, offset, limit),
        })
    }

    /// [`Admin::scan_set`] across `queues`: each queue's first `window`
    /// entries are scanned, the matches merged in the set's order.
    /// `total`, `scanned` and `matched` add up the queues; `truncated` is
    /// true when any queue's scan stopped before its end.
    ///
    /// # Errors
    /// As [`Admin::list_set_across`]; [`Error::InvalidArgument`] for a
    /// window over [`SCAN_WINDOW_MAX`](super::SCAN_WINDOW_MAX).
    pub async fn scan_set_across(
        &self,
        queues: &[&str],
        set: JobSet,
        filter: &JobFilter,
        offset: u64,
        limit: usize,
        window: u64,
    ) -> Result<FilteredPage> {
        let end = depth(offset, limit)?;
        let pages = try_join_all(
            queues
                .iter()
                .map(|q| self.scan_set(q, set, filter, 0, end, window)),
        )
        .await?;
        let mut page = FilteredPage::empty(offset);
        let mut jobs = Vec::new();
        for p in pages {
            page.total += p.total;
            page.scanned += p.scanned;
            page.truncated |= p.truncated;
            page.matched += p.matched;
            jobs.extend(p.items);
        }
        page.items = merge(jobs, set, offset, limit);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(queue: &str, at: i64) -> JobView {
        JobView::decode(
            crate::JobId::from(format!("{queue}-{at}")),
            queue,
            crate::JobState::Dead,
            Some(at),
            b"{}".to_vec(),
            2,
        )
    }

    #[test]
    fn merged_pages_follow_the_sets_order() {
        let jobs = || vec![job("b", 3), job("a", 1), job("a", 3), job("b", 2)];
        let ids = |v: Vec<JobView>| -> Vec<String> {
            v.iter().map(|j| j.id.as_str().to_owned()).collect()
        };
        assert_eq!(
            ids(merge(jobs(), JobSet::Retry, 0, 3)),
            ["a-1", "b-2", "a-3"]
        );
        assert_eq!(ids(merge(jobs(), JobSet::Dead, 1, 2)), ["b-3", "b-2"]);
        assert!(depth(990, 25).is_err());
        assert_eq!(depth(975, 25).ok(), Some(1000));
    }
}
