//! The admin API: the read model and repair actions that the dashboard and
//! the CLI are built on (Sidekiq's `api.rb`).
//!
//! Reads are range reads and counters (ZCARD, ZRANGE, and read-only scripts
//! that return a bounded prefix of each listed record), never full scans, so
//! pages stay fast on queues of millions of jobs and of huge jobs; the one
//! exception is finding a *ready* job by id, which walks the list in bounded
//! chunks inside Redis (`find_ready.lua`). Everything read is decoded per job
//! from bytes, so any record from any producer is listed. Every change goes
//! through a script (`requeue.lua`, `delete.lua`, `delete_ready.lua`,
//! `pause.lua`, `resume.lua`, `clear_ready.lua`, `register_queues.lua`).

mod cron;
mod filter;
mod jobs;
mod processes;
mod queues;
mod stats;
mod view;

use serde::Serialize;

pub use cron::CronEntryView;
pub use filter::{FilteredPage, JobFilter, FILTER_TEXT_MAX, SCAN_CHUNK, SCAN_WINDOW_MAX};
pub use jobs::{LISTING_BYTES_MAX, LISTING_RECORD_BYTES_MAX, LISTING_RECORD_BYTES_MIN};
pub use view::{JobView, LeaseView, RecordSummary};
pub use processes::{BusyJob, ProcessInfo, ProcessView};
pub use queues::QueueInfo;
pub use stats::{MinuteStats, QueueStats, STATS_MINUTES_MAX};

use crate::client::Client;
use crate::error::{Error, Result};

/// Largest page the admin API serves.
pub const PAGE_LIMIT_MAX: usize = 1000;

/// One page of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// Items in the whole listing.
    pub total: u64,
    /// Index of the first item of this page.
    pub offset: u64,
    /// The items.
    pub items: Vec<T>,
}

/// Handle to the admin API; get one with [`Client::admin`].
///
/// ```no_run
/// # async fn demo(client: spool_client::Client) -> spool_client::Result<()> {
/// use spool_client::JobSet;
/// let admin = client.admin();
/// for q in admin.queues().await? {
///     println!("{}: {} ready, {} dead, latency {:?}", q.name, q.ready, q.dead, q.latency);
/// }
/// let moved = admin.retry_all("emails", JobSet::Dead).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client this admin handle uses.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

pub(crate) fn check_page(limit: usize) -> Result<()> {
    if limit == 0 || limit > PAGE_LIMIT_MAX {
        return Err(Error::InvalidArgument(format!(
            "page size must be 1 to {PAGE_LIMIT_MAX}, got {limit}"
        )));
    }
    Ok(())
}
