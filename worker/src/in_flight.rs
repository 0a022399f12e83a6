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

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use spool_client::runtime::{LeaseToken, QueueKeys};
use spool_client::{JobId, JobRecord};
use tokio_util::sync::CancellationToken;

/// A lease: the job and the fence of this run.
pub(crate) type LeaseKey = (JobId, LeaseToken);

/// One leased run.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) keys: Arc<QueueKeys>,
    /// Fired on shutdown, when this lease is lost, or on a cancel request.
    pub(crate) cancel: CancellationToken,
    /// The record, when it decoded (the busy list shows its type).
    pub(crate) record: Option<Arc<JobRecord>>,
    pub(crate) leased_at_ms: i64,
    /// What the executor, the heartbeat and a cancel share.
    pub(crate) state: Arc<RunState>,
}

/// The flags and the lease expiry a run's tasks share: one allocation per
/// run.
#[derive(Debug)]
pub(crate) struct RunState {
    /// Set (before `cancel` fires) when the job was asked to cancel.
    pub(crate) cancel_asked: AtomicBool,
    /// Set when the run's outcome went to the completer: from then on a
    /// lease that disappears was (most likely) ended by our own ack.
    pub(crate) finished: AtomicBool,
    /// When the lease expires by this process's clock, at the latest (the
    /// fetch or the last extension was sent then plus the lease): past it,
    /// with no extension, the run no longer holds the job.
    lease_until: Mutex<Instant>,
}

impl RunState {
    /// A run whose lease expires at `lease_until`, neither finished nor
    /// asked to cancel.
    pub(crate) fn new(lease_until: Instant) -> Arc<Self> {
        Arc::new(Self {
            cancel_asked: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            lease_until: Mutex::new(lease_until),
        })
    }
}

impl Running {
    /// The job type, `?` when the record did not decode.
    pub(crate) fn job_type(&self) -> &str {
        self.record.as_ref().map_or("?", |r| r.job_type.as_str())
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::Acquire)
    }

    pub(crate) fn lease_until(&self) -> Instant {
        *self
            .state
            .lease_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn extended_to(&self, until: Instant) {
        *self
            .state
            .lease_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }

    /// The job was cancelled: tell the handler (its context says why).
    pub(crate) fn cancel_requested(&self) {
        self.state.cancel_asked.store(true, Ordering::Release);
        self.cancel.cancel();
    }
}

/// Marks a run finished (see [`Running::finished`]).
pub(crate) fn mark_finished(flag: &AtomicBool) {
    flag.store(true, Ordering::Release);
}

/// Job id → the leases this process holds on it, with their runs. Hashed
/// with foldhash, seeded per process: std's `SipHash` cost a few hundred
/// instructions per job here, and ids may come from any producer.
type Runs = HashMap<JobId, Vec<(LeaseToken, Running)>, foldhash::fast::RandomState>;

/// Runs holding a lease in this process. Indexed by job id, then token: a
/// lookup borrows both (no allocation per completion on the hot path), and
/// the rare second lease of one job sits beside the first.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    runs: Arc<Mutex<Runs>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Runs> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single insert/remove calls), so a poisoned lock is still usable.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, (id, token): LeaseKey, running: Running) {
        // Almost every job has one lease here: room for one.
        self.lock()
            .entry(id)
            .or_insert_with(|| Vec::with_capacity(1))
            .push((token, running));
    }

    /// Forgets the runs holding these leases (a completer's batch): one
    /// lock for the batch, and the runs are dropped after it is released.
    pub(crate) fn remove_all<'a>(&self, leases: impl Iterator<Item = (&'a JobId, &'a LeaseToken)>) {
        let mut gone = Vec::new();
        {
            let mut map = self.lock();
            for (id, token) in leases {
                // One lookup (the key is shared, not copied).
                let Entry::Occupied(mut runs) = map.entry(id.clone()) else {
                    continue;
                };
                if let Some(i) = runs.get().iter().position(|(t, _)| t == token) {
                    gone.push(runs.get_mut().swap_remove(i));
                }
                if runs.get().is_empty() {
                    runs.remove();
                }
            }
        }
        drop(gone);
    }

    /// The run holding lease `token` of job `id`, if it is still tracked.
    pub(crate) fn get(&self, id: &JobId, token: &LeaseToken) -> Option<Running> {
        self.lock()
            .get(id)?
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, r)| r.clone())
    }

    pub(crate) fn snapshot(&self) -> Vec<(LeaseKey, Running)> {
        self.lock()
            .iter()
            .flat_map(|(id, runs)| {
                runs.iter()
                    .map(|(token, r)| ((id.clone(), token.clone()), r.clone()))
            })
            .collect()
    }

    pub(crate) fn cancel_all(&self) {
        for (_, r) in self.lock().values().flatten() {
            r.cancel.cancel();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}
