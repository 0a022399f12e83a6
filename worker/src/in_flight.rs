//! The set of jobs this process holds leases on.
//!
//! Written by the fetcher (insert on lease) and the completer (remove once
//! the outcome is in Redis or given up); read by the heartbeat (extend
//! leases, report busy jobs) and by shutdown (hand back what is left). A std
//! mutex: every critical section is a few map operations and never awaits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use spool_client::lease::LeaseToken;
use spool_client::{JobId, QueueKeys};
use tokio_util::sync::CancellationToken;

/// One leased job.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) keys: Arc<QueueKeys>,
    pub(crate) token: LeaseToken,
    /// Fired on shutdown or when the lease is lost.
    pub(crate) cancel: CancellationToken,
    pub(crate) job_type: String,
    pub(crate) leased_at_ms: i64,
}

/// Jobs leased by this process, by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    jobs: Arc<Mutex<HashMap<JobId, Running>>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Running>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single insert/remove calls), so a poisoned lock is still usable.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, id: JobId, running: Running) {
        self.lock().insert(id, running);
    }

    /// Removes the entry only if it still belongs to `token` (a job can be
    /// re-leased by this same process after its old lease was lost).
    pub(crate) fn remove_if(&self, id: &JobId, token: &LeaseToken) {
        let mut map = self.lock();
        if map.get(id).is_some_and(|r| &r.token == token) {
            map.remove(id);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(JobId, Running)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn cancel(&self, id: &JobId) {
        if let Some(r) = self.lock().get(id) {
            r.cancel.cancel();
        }
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
