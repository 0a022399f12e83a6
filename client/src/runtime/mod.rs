//! The runtime protocol: what `spool-worker` drives, one script call per
//! state change. Runtime protocol, not for application code: producers use
//! [`Client`], operators use [`Admin`](crate::admin::Admin).
//!
//! | module | what it does | scripts |
//! | --- | --- | --- |
//! | [`lease`] | leased fetch, fenced completion, lease extension, hand-back | `fetch`, `ack`, `fail`, `extend`, `release` |
//! | `maintenance` | due jobs to ready, expired leases to ready, retention | `promote`, `reap`, `trim` |
//! | `process` | the worker process record with a TTL | `heartbeat` |
//! | [`cron`] | cron ticks once per tick, the announced cron table | `cron_tick`, `cron_register` |
//! | `wake` | the blocking wait on a queue's wake list | (`BLPOP`, the one command that cannot run in a script) |
//!
//! Every call that touches a leased job presents its [`LeaseToken`]: a
//! worker whose lease expired and whose job went to someone else changes
//! nothing. Get the handle with [`Client::runtime`](crate::Client::runtime).

pub mod lease;
mod maintenance;
mod process;
mod wake;

use std::time::Duration;

use crate::client::Client;
use crate::cron::{CronCursor, CronEntry, CronPlan, CronRegistered, CronTickOutcome};
use crate::error::Result;

/// The cron runtime protocol: planning ticks, the tick script, announcing
/// the table. The worker's cron service drives it through [`Runtime`].
pub mod cron {
    pub use crate::cron::{CronCursor, CronPlan, CronRegistered, CronTickOutcome};
}

pub use crate::keys::{GlobalKeys, QueueKeys};
pub use lease::{Applied, Completion, LeaseToken, LeasedJob, LostLease, Outcome};
pub use maintenance::{PromoteReport, ReapReport, TrimReport};
pub use process::PROCESS_HOST_MAX_BYTES;
pub use wake::WakeConnection;

/// Handle to the runtime protocol; get one with [`Client::runtime`].
#[derive(Debug, Clone)]
pub struct Runtime {
    client: Client,
}

impl Runtime {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client this handle uses.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Cron: the calls the worker's cron service makes (the protocol itself,
/// with its keys and scripts, is in `cron::protocol`).
impl Runtime {
    /// Announces a cron table: writes each entry's definition with a fresh
    /// "seen" time and a forget-after deadline `stale_after` from now (Redis
    /// time), and forgets entries whose deadline passed, deleting their
    /// state. Call it periodically from every process that has the table.
    ///
    /// # Errors
    /// [`crate::Error::Redis`]; [`crate::Error::Serialize`] for an entry
    /// whose definition cannot be encoded.
    pub async fn cron_register(
        &self,
        entries: &[CronEntry],
        stale_after: Duration,
    ) -> Result<CronRegistered> {
        self.client.cron_register(entries, stale_after).await
    }

    /// The cursor of each entry (in order), read in one round trip.
    ///
    /// # Errors
    /// [`crate::Error::Redis`], [`crate::Error::InvalidQueueName`].
    pub async fn cron_cursors(&self, entries: &[CronEntry]) -> Result<Vec<CronCursor>> {
        self.client.cron_cursors(entries).await
    }

    /// Applies `plan`, made from cursor `planned_from`, to `entry` in one
    /// script call: moves the cursor (only if it is still `planned_from`),
    /// records skipped ticks, and enqueues the planned tick unless the entry
    /// is paused or the tick already has a job.
    ///
    /// # Errors
    /// [`crate::Error::Redis`]; the enqueue errors of
    /// [`Client::enqueue`] (payload size, queue name).
    pub async fn cron_tick(
        &self,
        entry: &CronEntry,
        planned_from: CronCursor,
        plan: &CronPlan,
    ) -> Result<CronTickOutcome> {
        self.client.cron_tick(entry, planned_from, plan).await
    }
}

/// The full source of one of Spool's Lua scripts, as Spool sends it to
/// Redis: the shared prelude (and `job_record.lua` for the scripts that
/// create jobs) followed by the script itself. `name` is the file name
/// without `.lua` (`"enqueue"`, `"fetch"`, …). A producer in another
/// language loads this text with `SCRIPT LOAD` (the bare `.lua` files in the
/// repository do not run on their own: they call the prelude's helpers).
///
/// ```
/// let source = spool_client::runtime::script_source("enqueue").expect("a script");
/// assert!(source.contains("local function spool_now()"));
/// assert!(spool_client::runtime::script_source("nope").is_none());
/// ```
#[must_use]
pub fn script_source(name: &str) -> Option<&'static str> {
    crate::scripts::SCRIPTS.source(name)
}
