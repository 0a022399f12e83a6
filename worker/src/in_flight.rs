//! The leases this process holds: one entry per run, keyed by the lease
//! (job id and token), never by the job id alone.
//!
//! The same job can be leased twice by one process: a run stalls past its
//! lease (a long pause, a blocked thread), the reaper hands the job back and
//! this process fetches it again while the stale run is still going. Keying
//! by lease keeps the two apart, so a lost lease cancels only its own run.
//!
//! Written by the fetcher (insert on lease), the executor (mark finished
//! when the outcome is handed to the completer) and the completer (remove
//! once the outcome is in Redis or given up); read by the heartbeat (extend
//! leases, report busy jobs) and by shutdown (hand back what is left). A std
//! mutex: every critical section is a few map operations and never awaits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use spool_client::runtime::{LeaseToken, QueueKeys};
use spool_client::JobId;
use tokio_util::sync::CancellationToken;

/// A lease: the job and the fence of this run.
pub(crate) type LeaseKey = (JobId, LeaseToken);

/// One leased run.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) keys: Arc<QueueKeys>,
    /// Fired on shutdown or when this lease is lost.
    pub(crate) cancel: CancellationToken,
    pub(crate) job_type: String,
    pub(crate) leased_at_ms: i64,
    /// Set when the run's outcome went to the completer: from then on a
    /// lease that disappears was (most likely) ended by our own ack.
    pub(crate) finished: Arc<AtomicBool>,
}

impl Running {
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// Marks a run finished (see [`Running::finished`]).
pub(crate) fn mark_finished(flag: &AtomicBool) {
    flag.store(true, Ordering::Release);
}

/// Runs holding a lease in this process, by lease.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    runs: Arc<Mutex<HashMap<LeaseKey, Running>>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseKey, Running>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single insert/remove calls), so a poisoned lock is still usable.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, lease: LeaseKey, running: Running) {
        self.lock().insert(lease, running);
    }

    pub(crate) fn remove(&self, lease: &LeaseKey) {
        self.lock().remove(lease);
    }

    /// The run holding `lease`, if it is still tracked.
    pub(crate) fn get(&self, lease: &LeaseKey) -> Option<Running> {
        self.lock().get(lease).cloned()
    }

    pub(crate) fn snapshot(&self) -> Vec<(LeaseKey, Running)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn cancel_all(&self) {
        for r in self.lock().values() {
            r.cancel.cancel();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
