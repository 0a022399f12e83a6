//! Fetcher: claims jobs for free slots and starts an executor for each.
//!
//! One loop per worker process: count free slots (global and per-queue
//! semaphores), walk the queues in weighted-random or strict order, claim up
//! to that many jobs per `fetch.lua` call, spawn executors. When every queue
//! came back empty it does not sleep-poll: it raises `want_wake` and the
//! per-queue [`Waker`]s block on Redis (BLPOP on the queue's wake list), so an
//! enqueue reaches an idle worker in a few milliseconds and an idle worker
//! costs about one blocking command per second per queue.
//!
//! A queue held by its rate limit or open circuit breaker (`fetch.lua` says
//! for how long) is skipped, and its waker does not block on Redis, until
//! the hold ends: a throttled idle worker costs no command per enqueue and
//! at most one fetch per idle poll.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use spool_client::runtime::{QueueKeys, Runtime, WakeConnection};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::config::{QueueOrder, WorkerConfig};
use crate::executor::{execute, ExecutorDeps};
use crate::in_flight::{InFlight, RunState, Running};

/// Even with no wake token, an idle fetcher looks at its queues this often
/// (a safety net for a token consumed while this process was busy).
const IDLE_POLL_FACTOR: u32 = 5;

/// Longest wait for a quarter of the slots to free up before fetching again
/// while busy (see [`Fetcher::linger`]).
const FETCH_LINGER: Duration = Duration::from_millis(2);

/// Until when a queue's rate limit or open circuit breaker holds it;
/// shared by the fetcher (which learns it from `fetch.lua`) and the queue's
/// waker (which does not wait for wake-up tokens meanwhile).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hold(Arc<std::sync::Mutex<Option<Instant>>>);

impl Hold {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, hold: Option<Duration>) {
        *self.lock() = hold.map(|d| Instant::now() + d);
    }

    /// The end of the hold, while it lasts.
    fn until(&self) -> Option<Instant> {
        self.lock().filter(|t| *t > Instant::now())
    }
}

/// One queue as the fetcher sees it.
pub(crate) struct FetchQueue {
    pub(crate) keys: Arc<QueueKeys>,
    pub(crate) hold: Hold,
    pub(crate) weight: u32,
    /// Per-queue concurrency limit, if the queue has one.
    pub(crate) limit: Option<Arc<Semaphore>>,
}

pub(crate) struct Fetcher {
    pub(crate) runtime: Runtime,
    pub(crate) config: WorkerConfig,
    pub(crate) worker_id: String,
    pub(crate) queues: Vec<FetchQueue>,
    /// Global concurrency: one permit per running job, held by its executor.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) in_flight: InFlight,
    /// Executors' home; the launcher waits on it at shutdown.
    pub(crate) tracker: TaskTracker,
    pub(crate) deps: ExecutorDeps,
    /// Notified by wakers (a job arrived) and by executors (a slot freed).
    pub(crate) wake: Arc<Notify>,
    /// Wakes the scheduler (jobs deferred to their rate key's next start,
    /// or a queue's due hint sooner than its planned pass).
    pub(crate) scheduler_nudge: Arc<Notify>,
    pub(crate) scheduler_planned: Arc<crate::services::scheduler::PlannedPass>,
    /// True while the fetcher is idle with free slots: wakers block on Redis.
    pub(crate) want_wake: watch::Sender<bool>,
    /// Fired at shutdown: stop claiming jobs.
    pub(crate) stop: CancellationToken,
}

impl Fetcher {
    pub(crate) async fn run(self) {
        let mut backoff = Backoff::redis();
        let idle_poll = self.config.idle_wait * IDLE_POLL_FACTOR;
        while !self.stop.is_cancelled() {
            if self.slots.available_permits() == 0 {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = self.stop.cancelled() => break,
                }
                continue;
            }
            match self.fetch_round().await {
                Ok(claimed) => {
                    backoff.reset();
                    if claimed > 0 {
                        self.linger().await;
                        continue;
                    }
                }
                Err(err) => {
                    self.deps.run.metrics.redis_error("fetch");
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = crate::backoff::millis(delay), "fetch failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => break,
                    }
                    continue;
                }
            }
            // Idle with free slots: let the wakers block on Redis for us,
            // and look again when the first held queue's hold ends.
            self.want_wake.send_replace(true);
            let look_again = self
                .queues
                .iter()
                .filter_map(|q| q.hold.until())
                .fold(Instant::now() + idle_poll, Instant::min);
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(look_again) => {}
                () = self.stop.cancelled() => {}
            }
            self.want_wake.send_replace(false);
        }
        self.want_wake.send_replace(false);
        tracing::info!("fetcher stopped: no new leases");
    }

    /// After a round that found work, wait briefly (at most `FETCH_LINGER`)
    /// for enough free slots to fetch a real batch: under load, fetching one
    /// job per freed slot costs a script call per job and halves throughput;
    /// when idle this is never reached, so pick-up latency is unaffected.
    async fn linger(&self) {
        let low_water = (self.config.concurrency / 4).clamp(1, self.config.fetch_batch_max.max(1));
        if self.slots.available_permits() >= low_water {
            return;
        }
        let deadline = tokio::time::Instant::now() + FETCH_LINGER;
        while self.slots.available_permits() < low_water {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(deadline) => return,
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// The queue order for this round.
    fn order(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.queues.len()).collect();
        if self.config.order == QueueOrder::Weighted && idx.len() > 1 {
            // Weighted random order without replacement (Efraimidis–Spirakis):
            // sort by u^(1/w), largest first.
            let mut rng = rand::rng();
            let mut keyed: Vec<(f64, usize)> = idx
                .iter()
                .map(|&i| {
                    let u: f64 = rng.random_range(f64::EPSILON..1.0);
                    (u.powf(1.0 / f64::from(self.queues[i].weight)), i)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            idx = keyed.into_iter().map(|(_, i)| i).collect();
        }
        idx
    }

    /// One pass over the queues; returns how many jobs were claimed.
    async fn fetch_round(&self) -> spool_client::Result<usize> {
        let mut claimed = 0;
        for i in self.order() {
            let free = self.slots.available_permits();
            if free == 0 {
                break;
            }
            let q = &self.queues[i];
            let queue_free = q.limit.as_ref().map_or(free, |s| s.available_permits());
            let want = free.min(queue_free).min(self.config.fetch_batch_max);
            if want == 0 || q.hold.until().is_some() {
                continue;
            }
            let asked = std::time::Instant::now();
            let claim = self
                .runtime
                .claim(&q.keys, want, self.config.lease, &self.worker_id)
                .await?;
            self.deps
                .run
                .metrics
                .fetched(asked.elapsed(), claim.jobs.len());
            q.hold.set(claim.hold);
            let due_early = claim.due.is_some_and(|due| {
                self.scheduler_planned
                    .misses(std::time::Instant::now() + due)
            });
            if claim.deferred > 0 || due_early {
                // They wait in the scheduled set for their key's next start,
                // or a job due before the scheduler's next pass was added.
                self.scheduler_nudge.notify_one();
            }
            let asked = if asked.elapsed() >= self.config.lease / 2 {
                self.redate(&claim.jobs).await.unwrap_or(asked)
            } else {
                asked
            };
            for job in claim.jobs {
                // Only this loop takes permits, so the ones counted above are
                // still there.
                let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                    tracing::error!("slot accounting broke; job left leased for the reaper");
                    continue;
                };
                let queue_slot = q
                    .limit
                    .as_ref()
                    .and_then(|s| Arc::clone(s).try_acquire_owned().ok());
                let run = Running {
                    keys: Arc::clone(&job.keys),
                    // Cancelled with the others when shutdown begins
                    // (launcher.rs, `stop_fetching`).
                    cancel: CancellationToken::new(),
                    record: job.record.as_ref().ok().map(Arc::clone),
                    leased_at_ms: job.leased_at_ms,
                    state: RunState::new(asked + self.config.lease),
                };
                let (cancel, state) = (run.cancel.clone(), Arc::clone(&run.state));
                self.in_flight
                    .insert((job.id.clone(), job.token.clone()), run);
                let slots = Slots {
                    global: Some(slot),
                    queue: queue_slot,
                    wake: Arc::clone(&self.wake),
                };
                // The executor's own future is the task, boxed: tokio moves
                // a task's future into the task cell as it spawns it and
                // writes the cell over as it ends, so an unboxed future
                // (the run's state, its time limit's timer, the select) was
                // copied whole each time: about 1,300 instructions a job
                // in memcpy (callgrind), where the box costs one allocation.
                self.tracker.spawn(Box::pin(execute(
                    job,
                    cancel,
                    state,
                    self.deps.clone(),
                    slots,
                )));
                claimed += 1;
            }
        }
        Ok(claimed)
    }

    /// After a claim that took half the lease or more (the process was
    /// paused, or Redis slow), when the new leases may be younger than the
    /// time the claim was asked: Redis granted them when the request
    /// arrived, perhaps long after. One extension dates them from now, so
    /// the heartbeat does not stop fresh runs as expired by this process's
    /// clock. `None` (keep the older, safe date) when the extension fails
    /// or a lease is already lost or asked to cancel.
    async fn redate(
        &self,
        jobs: &[spool_client::runtime::LeasedJob],
    ) -> Option<std::time::Instant> {
        if jobs.is_empty() {
            return None;
        }
        let leases: Vec<_> = jobs
            .iter()
            .map(|j| (Arc::clone(&j.keys), j.id.clone(), j.token.clone()))
            .collect();
        let asked = std::time::Instant::now();
        match self.runtime.extend(self.config.lease, &leases).await {
            Ok(lost) if lost.is_empty() => Some(asked),
            _ => None,
        }
    }
}

/// A running job's places (global and per queue): given back when its
/// executor is done with it, and then the fetcher is woken.
pub(crate) struct Slots {
    global: Option<OwnedSemaphorePermit>,
    queue: Option<OwnedSemaphorePermit>,
    wake: Arc<Notify>,
}

impl Drop for Slots {
    fn drop(&mut self) {
        // Given back before the fetcher looks, so it finds them free.
        drop(self.queue.take());
        drop(self.global.take());
        self.wake.notify_one();
    }
}

/// Blocks on one queue's wake list while the fetcher is idle, and wakes the
/// fetcher (and the scheduler, since a wake token can mean "a sooner
/// scheduled job arrived") when a token comes.
pub(crate) struct Waker {
    pub(crate) runtime: Runtime,
    pub(crate) keys: Arc<QueueKeys>,
    pub(crate) hold: Hold,
    pub(crate) idle_wait: Duration,
    pub(crate) want_wake: watch::Receiver<bool>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) scheduler_nudge: Arc<Notify>,
    pub(crate) stop: CancellationToken,
}

impl Waker {
    pub(crate) async fn run(mut self) {
        let mut conn: Option<WakeConnection> = None;
        let mut backoff = Backoff::redis();
        loop {
            tokio::select! {
                r = self.want_wake.wait_for(|w| *w) => if r.is_err() { return },
                () = self.stop.cancelled() => return,
            }
            // A held queue is not fetched before its hold ends (the fetcher
            // looks again then): its wake-up tokens would only spin.
            if let Some(until) = self.hold.until() {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => continue,
                    () = self.stop.cancelled() => return,
                }
            }
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.runtime.wake_connection(self.idle_wait).await {
                    Ok(c) => {
                        // (Re)connected: Redis may be back with jobs whose
                        // wake token was lost while it was away; look now.
                        self.wake.notify_one();
                        self.scheduler_nudge.notify_one();
                        conn.insert(c)
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(queue = %self.keys.queue, error = %err, "wake connection failed; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => continue,
                            () = self.stop.cancelled() => return,
                        }
                    }
                },
            };
            tokio::select! {
                r = c.wait(&self.keys, self.idle_wait) => match r {
                    Ok(true) => {
                        backoff.reset();
                        self.wake.notify_one();
                        self.scheduler_nudge.notify_one();
                    }
                    Ok(false) => backoff.reset(),
                    Err(err) => {
                        conn = None;
                        let delay = backoff.next_delay();
                        tracing::warn!(queue = %self.keys.queue, error = %err, "waiting for jobs failed; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = self.stop.cancelled() => return,
                        }
                    }
                },
                () = self.stop.cancelled() => return,
            }
        }
    }
}
