//! Load for failover and resharding tests: producers that count what was
//! acknowledged, and workers that record what ran, so a test can prove
//! "every acknowledged job ran" across a topology change.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spool_client::{Client, EnqueueOptions, Error};
use spool_worker::Worker;

use crate::handlers::Noop;
use crate::{fast_config, wait_for};

/// When each `Noop { n }` ran (first run), shared by the workers of a test.
#[derive(Clone, Default)]
pub struct Ran(Arc<Mutex<HashMap<u64, Instant>>>);

impl Ran {
    /// Records the first run of job `n`.
    pub fn hit(&self, n: u64) {
        self.0
            .lock()
            .expect("lock")
            .entry(n)
            .or_insert_with(Instant::now);
    }
    /// When job `n` first ran, if it did.
    #[must_use]
    pub fn ran_at(&self, n: u64) -> Option<Instant> {
        self.0.lock().expect("lock").get(&n).copied()
    }

    /// How many distinct jobs ran.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
    /// The jobs of `wanted` that never ran, sorted.
    #[must_use]
    pub fn missing(&self, wanted: &HashSet<u64>) -> Vec<u64> {
        let ran = self.0.lock().expect("lock");
        let mut m: Vec<u64> = wanted
            .iter()
            .filter(|n| !ran.contains_key(n))
            .copied()
            .collect();
        m.sort_unstable();
        m
    }
    /// The earliest run of a job numbered above `n`.
    #[must_use]
    pub fn first_above(&self, n: u64) -> Option<Instant> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(&k, _)| k > n)
            .map(|(_, &t)| t)
            .min()
    }
}

/// A worker on `client` (queues as given, test timings) recording each
/// `Noop`'s number in `ran`.
pub fn recording_worker(
    client: &Client,
    queues: &[&str],
    ran: &Ran,
    configure: impl FnOnce(&mut spool_worker::WorkerConfig),
) -> Worker {
    let ran = ran.clone();
    let mut b = Worker::builder(client.clone())
        .configure(fast_config)
        .configure(configure);
    for q in queues {
        b = b.queue(*q, 1);
    }
    b.register(move |_ctx, job: Noop| {
        let ran = ran.clone();
        async move {
            ran.hit(job.n);
            Ok(())
        }
    })
    .build()
    .expect("lock")
}

/// A producer enqueuing `Noop { n }` (n = 1, 2, ...) into `queue` every 2 ms
/// until stopped; it counts acknowledged ids, errors and records when the
/// first write after `mark` reached a primary and was acknowledged.
pub struct Producer {
    stop: Arc<AtomicBool>,
    /// The last number handed out.
    pub next: Arc<AtomicU64>,
    acked: Arc<Mutex<HashSet<u64>>>,
    errors: Arc<AtomicU64>,
    /// Set by the test: from now on, record the first Ok.
    pub mark: Arc<AtomicBool>,
    /// When the first enqueue after the mark was acknowledged.
    pub first_ok_after_mark: Arc<Mutex<Option<Instant>>>,
    /// When the first enqueue after the mark reached a primary (acknowledged,
    /// or `NotReplicated`).
    pub first_reached_after_mark: Arc<Mutex<Option<Instant>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Starts producing into `queue`, numbering jobs from 1.
    #[must_use]
    pub fn start(client: Client, queue: &'static str) -> Self {
        Self::start_at(client, queue, 0)
    }

    /// Numbers jobs from `base + 1`.
    #[must_use]
    pub fn start_at(client: Client, queue: &'static str, base: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(base));
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let mark = Arc::new(AtomicBool::new(false));
        let first_ok = Arc::new(Mutex::new(None));
        let first_reached = Arc::new(Mutex::new(None));
        let handle = {
            let (stop, next, acked, errors, mark, first_ok, first_reached) = (
                stop.clone(),
                next.clone(),
                acked.clone(),
                errors.clone(),
                mark.clone(),
                first_ok.clone(),
                first_reached.clone(),
            );
            tokio::spawn(async move {
                let mut last_err = String::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed) + 1;
                    let res = client
                        .enqueue_with(&Noop { n }, EnqueueOptions::new().queue(queue))
                        .await;
                    let marked = mark.load(Ordering::Relaxed);
                    match res {
                        Ok(_) => {
                            acked.lock().expect("lock").insert(n);
                            if marked {
                                first_ok
                                    .lock()
                                    .expect("lock")
                                    .get_or_insert_with(Instant::now);
                                first_reached
                                    .lock()
                                    .expect("lock")
                                    .get_or_insert_with(Instant::now);
                            }
                        }
                        Err(e) => {
                            if marked && matches!(e, Error::NotReplicated { .. }) {
                                first_reached
                                    .lock()
                                    .expect("lock")
                                    .get_or_insert_with(Instant::now);
                            }
                            let text = e.to_string();
                            if text != last_err {
                                eprintln!("producer: enqueue {n} failed: {text}");
                                last_err = text;
                            }
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        Self {
            stop,
            next,
            acked,
            errors,
            mark,
            first_ok_after_mark: first_ok,
            first_reached_after_mark: first_reached,
            handle,
        }
    }

    /// How many enqueues were acknowledged so far.
    #[must_use]
    pub fn acked_count(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// How many enqueues failed so far.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Stops producing; returns the acknowledged numbers and the error count.
    pub async fn stop(self) -> (HashSet<u64>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("producer task");
        let acked = self.acked.lock().expect("lock").clone();
        (acked, self.errors.load(Ordering::Relaxed))
    }
}

/// [`wait_for`] with a plain closure.
pub async fn wait_until(what: &str, within: Duration, check: impl Fn() -> bool) {
    wait_for(what, within, || {
        let ok = check();
        async move { ok }
    })
    .await;
}
