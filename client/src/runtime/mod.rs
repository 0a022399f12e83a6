//! The runtime protocol: what `spool-worker` drives, one script call per
//! state change. Runtime protocol, not for application code: producers use
//! [`Client`], operators use [`Admin`](crate::admin::Admin).
//!
//! | module | what it does | scripts |
//! | --- | --- | --- |
//! | [`lease`] | leased fetch, fenced completion, lease extension, hand-back | `fetch`, `ack`, `fail`, `extend`, `release` |
//! | `maintenance` | due jobs to ready, expired leases to ready, retention | `promote`, `reap`, `trim` |
//! | `process` | the worker process record with a TTL | `heartbeat` |
//! | [`cron`] | cron ticks once per tick, the announced cron table (`Runtime::cron_*`, written in `cron/protocol.rs` beside the schedule) | `cron_tick`, `cron_register` |
//! | `wake` | the blocking wait on a queue's wake list | (`BLPOP`, the one command that cannot run in a script) |
//!
//! Every call that touches a leased job presents its [`LeaseToken`]: a
//! worker whose lease expired and whose job went to someone else changes
//! nothing. Get the handle with [`Client::runtime`](crate::Client::runtime).

mod cancel;
pub mod lease;
mod maintenance;
mod process;
mod wake;

pub(crate) use lease::PickupOwed;

use crate::client::Client;

/// The cron runtime protocol: planning ticks, the tick script, announcing
/// the table. The worker's cron service drives it through [`Runtime`].
pub mod cron {
    pub use crate::cron::{CronCursor, CronPlan, CronRegistered, CronTickOutcome};
}

pub use crate::keys::{GlobalKeys, QueueKeys};
pub use cancel::CancelSubscription;
pub use lease::{
    Applied, Claim, Completion, LeaseLoss, LeaseToken, LeasedJob, LostLease, Outcome, RunFacts,
};
pub use maintenance::{PromoteReport, ReapReport, TrimReport};
pub use process::{Beat, ProcessSignal, PROCESS_HOST_MAX_BYTES};
pub use wake::WakeConnection;

/// Handle to the runtime protocol; get one with [`Client::runtime`].
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) client: Client,
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

/// Every script [`script_source`] knows: its name and the SHA-1 (hex) of
/// its full source, which is what `SCRIPT LOAD` returns and `EVALSHA`
/// takes. A producer in another language can check the text it loaded
/// against it.
///
/// ```
/// let all = spool_client::runtime::scripts();
/// let (_, sha) = all.iter().find(|(name, _)| *name == "enqueue").expect("enqueue");
/// assert_eq!(sha.len(), 40);
/// ```
#[must_use]
pub fn scripts() -> Vec<(&'static str, String)> {
    crate::scripts::SCRIPTS.names_and_shas()
}
