//! Fixture job types for tests: they record what ran so tests can assert on
//! executions instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use spool_client::{Job, JobOptions};

/// A job that does nothing but carry a number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Noop {
    /// Anything.
    pub n: u64,
}

impl Job for Noop {
    const TYPE: &'static str = "noop";
}

/// The job of the chaos and shutdown tests (run by the `chaos-worker` binary):
/// sleeps `sleep_ms`, then records its run. Queue `chaos`, 50 attempts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Work {
    /// Identifies the job.
    pub n: u64,
    /// How long the handler sleeps.
    pub sleep_ms: u64,
}

impl Job for Work {
    const TYPE: &'static str = "work";
    fn options() -> JobOptions {
        JobOptions::default().queue("chaos").max_attempts(50)
    }
}

/// A job whose handler fails (or panics, or sleeps) as told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scripted {
    /// Identifies the job in the recorder.
    pub name: String,
    /// Fail this many times before succeeding (`u32::MAX`: always).
    pub fail_times: u32,
    /// Panic instead of returning an error.
    pub panic: bool,
    /// Fail permanently instead of retrying.
    pub permanent: bool,
    /// Sleep this long before answering.
    pub sleep_ms: u64,
}

impl Job for Scripted {
    const TYPE: &'static str = "scripted";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(spool_client::FixedDelay(std::time::Duration::from_millis(
                50,
            )))
    }
}

impl Scripted {
    /// A job named `name` that succeeds at once.
    #[must_use]
    pub fn ok(name: &str) -> Self {
        Self {
            name: name.into(),
            fail_times: 0,
            panic: false,
            permanent: false,
            sleep_ms: 0,
        }
    }
}

/// Counts executions per name (thread-safe, cloneable).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    runs: Arc<Mutex<HashMap<String, u32>>>,
}

impl Recorder {
    /// Records one run of `name` and returns its run number (1 for the first).
    #[must_use]
    pub fn hit(&self, name: &str) -> u32 {
        let mut m = self.runs.lock().expect("recorder lock");
        let n = m.entry(name.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// Runs of `name` so far.
    #[must_use]
    pub fn count(&self, name: &str) -> u32 {
        self.runs
            .lock()
            .expect("recorder lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Total runs.
    #[must_use]
    pub fn total(&self) -> u32 {
        self.runs.lock().expect("recorder lock").values().sum()
    }
}

/// Registers the standard fixture handlers (`noop`, `scripted`) on a builder.
#[must_use]
pub fn with_fixtures(
    builder: spool_worker::WorkerBuilder,
    rec: &Recorder,
) -> spool_worker::WorkerBuilder {
    let r1 = rec.clone();
    let r2 = rec.clone();
    builder
        .register(move |_ctx, job: Noop| {
            let r = r1.clone();
            async move {
                let _run = r.hit(&format!("noop-{}", job.n));
                Ok(())
            }
        })
        .register(move |_ctx, job: Scripted| {
            let r = r2.clone();
            async move {
                let run = r.hit(&job.name);
                if job.sleep_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(job.sleep_ms)).await;
                }
                if run <= job.fail_times {
                    assert!(!job.panic, "scripted panic on run {run}");
                    let msg = format!("scripted failure on run {run}");
                    return Err(if job.permanent {
                        spool_worker::JobError::permanent(msg)
                    } else {
                        spool_worker::JobError::retry(msg)
                    });
                }
                Ok(())
            }
        })
}

/// A worker on `client` with the test timings ([`crate::fast_config`]) and
/// every fixture handler recording into `rec`.
#[must_use]
pub fn fixture_worker(client: &spool_client::Client, rec: &Recorder) -> spool_worker::Worker {
    with_fixtures(
        spool_worker::Worker::builder(client.clone()).configure(crate::fast_config),
        rec,
    )
    .build()
    .expect("build the fixture worker")
}
