//! [`FakeClient`]: a [`Client`] with no Redis behind it whose enqueues are
//! recorded ([`RecordedJob`]) for the test to inspect, or for the worker's
//! inline runner to drain.
//!
//! The enqueue path is the real one up to the Redis call: the same checks
//! (queue name, payload size, args depth, options) run, then the job is
//! appended here instead of going to `enqueue.lua`. Idempotency and
//! uniqueness keys deduplicate until [`FakeClient::clear`] (their windows
//! and TTLs are not simulated). Everything else that needs Redis (admin,
//! status, wait, batches, events) fails with [`Error::Redis`](crate::Error::Redis)
//! naming the fake client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::client::Client;
use crate::enqueue::{Enqueued, Prepared, Uniqueness};
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobRecord};

/// A job a [`FakeClient`] recorded: the record a worker would fetch (first
/// attempt not yet started: `attempt` is 0) and when it was asked to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedJob {
    /// The job as stored: id, type, queue, args, `max_attempts`, timeout,
    /// idempotency key, trace, priority, group.
    pub record: JobRecord,
    /// The time given with [`EnqueueOptions::at`](crate::EnqueueOptions::at).
    pub run_at: Option<DateTime<Utc>>,
    /// The delay given with [`EnqueueOptions::delay`](crate::EnqueueOptions::delay).
    pub delay: Option<Duration>,
}

impl RecordedJob {
    /// The job id.
    #[must_use]
    pub fn id(&self) -> &JobId {
        &self.record.id
    }

    /// The job type name.
    #[must_use]
    pub fn job_type(&self) -> &str {
        &self.record.job_type
    }

    /// The queue.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.record.queue
    }

    /// The args as JSON.
    #[must_use]
    pub fn args_json(&self) -> serde_json::Value {
        serde_json::from_str(self.record.args.get()).unwrap_or(serde_json::Value::Null)
    }

    /// The args decoded as `J`, when the job is of type `J` and they decode.
    #[must_use]
    pub fn args<J: Job>(&self) -> Option<J> {
        (self.record.job_type == J::TYPE)
            .then(|| self.record.decode_args().ok())
            .flatten()
    }

    /// True when the job waits for a time or a delay (not "run now").
    #[must_use]
    pub fn is_scheduled(&self) -> bool {
        self.run_at.is_some() || self.delay.is_some()
    }
}

/// Where a fake client's enqueues go. The mutexes are std ones: never held
/// across an `.await`, each guards one short push or copy.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Recorded jobs, in enqueue order.
    jobs: Mutex<Vec<RecordedJob>>,
    /// (queue, uniqueness key) → the first job's id.
    unique: Mutex<HashMap<(String, String), JobId>>,
}

impl Recorder {
    /// Records one prepared job (or finds its duplicate).
    pub(crate) fn record(
        &self,
        job: &Prepared,
        queue: &str,
        unique: Option<&(String, Uniqueness)>,
    ) -> Result<Enqueued> {
        if let Some((key, _)) = unique {
            let mut seen = self.unique.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (queue.to_owned(), key.clone());
            if let Some(first) = seen.get(&slot) {
                return Ok(Enqueued {
                    id: first.clone(),
                    duplicate: true,
                });
            }
            seen.insert(slot, job.id.clone());
        }
        let record = stored_record(job)?;
        let ms = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
        let recorded = RecordedJob {
            record,
            run_at: (job.at_ms() > 0).then(|| ms(job.at_ms())).flatten(),
            delay: (job.delay_ms() > 0).then(|| Duration::from_millis(job.delay_ms())),
        };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(recorded);
        Ok(Enqueued {
            id: job.id.clone(),
            duplicate: false,
        })
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<RecordedJob>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The record `enqueue.lua` would store: the script-owned fields (id,
/// attempt, `max_attempts`, `enqueued_ms`) in front of the body.
fn stored_record(job: &Prepared) -> Result<JobRecord> {
    let body = job.body();
    let rest = body.strip_prefix('{').unwrap_or(body);
    let id = serde_json::to_string(job.id.as_str()).map_err(|source| Error::Serialize {
        job_type: "job id".to_owned(),
        source,
    })?;
    let json = format!(
        "{{\"id\":{id},\"attempt\":0,\"max_attempts\":{},\"enqueued_ms\":{},{rest}",
        job.max_attempts(),
        Utc::now().timestamp_millis()
    );
    JobRecord::from_json(&json)
}

/// A recording stand-in for [`Client`]: hand [`FakeClient::client`] to the
/// code under test, then assert on what it enqueued. Clones share the
/// record.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Report { id: u64 }
/// # impl spool_client::Job for Report { const TYPE: &'static str = "report"; }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use spool_client::{testing::FakeClient, EnqueueOptions};
/// let fake = FakeClient::new();
/// let client = fake.client();
/// let opts = EnqueueOptions::new().queue("reports").idempotency_key("report-7");
/// let first = client.enqueue_with(&Report { id: 7 }, opts.clone()).await.unwrap();
/// let again = client.enqueue_with(&Report { id: 7 }, opts).await.unwrap();
/// assert!(again.duplicate && again.id == first.id);
/// assert_eq!(fake.len(), 1);
/// // What needs Redis fails with a clear error instead.
/// assert!(client.admin().queues().await.is_err());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FakeClient {
    client: Client,
    recorder: Arc<Recorder>,
}

impl Default for FakeClient {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeClient {
    /// A new fake client with an empty record (namespace `spool`, default
    /// payload limit).
    #[must_use]
    pub fn new() -> Self {
        let recorder = Arc::new(Recorder::default());
        Self {
            client: Client::recording(Arc::clone(&recorder)),
            recorder,
        }
    }

    /// The same fake with a keyring: jobs of encrypted types
    /// ([`JobOptions::encrypted`](crate::JobOptions::encrypted)) are
    /// recorded sealed, as Redis would hold them, [`FakeClient::jobs`]
    /// opens them, and so does an inline runner draining this fake.
    /// Without one, enqueueing an encrypted type fails as on a real client.
    ///
    /// ```
    /// use spool_client::{testing::FakeClient, Keyring};
    /// let fake = FakeClient::new().with_keyring(Keyring::new("test", [7; 32])?);
    /// # Ok::<(), spool_client::Error>(())
    /// ```
    #[must_use]
    pub fn with_keyring(self, keyring: crate::Keyring) -> Self {
        Self {
            client: Client::recording_with(Arc::clone(&self.recorder), Some(keyring)),
            recorder: self.recorder,
        }
    }

    /// The fake behind `client`, when `client` came from a [`FakeClient`].
    #[must_use]
    pub fn of(client: &Client) -> Option<Self> {
        client.recorder().map(|recorder| Self {
            client: client.clone(),
            recorder: Arc::clone(recorder),
        })
    }

    /// The [`Client`] to give the code under test (a cheap clone).
    #[must_use]
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Every job recorded, in enqueue order (duplicates of an idempotency
    /// key are not recorded).
    #[must_use]
    pub fn enqueued(&self) -> Vec<RecordedJob> {
        self.recorder.jobs().clone()
    }

    /// The recorded jobs of type `J`, decoded, in enqueue order.
    #[must_use]
    pub fn jobs<J: Job>(&self) -> Vec<J> {
        self.recorder
            .jobs()
            .iter()
            .filter_map(|job| {
                let mut job = job.clone();
                job.record.decrypt_args(self.client.keyring()).ok()?;
                job.args::<J>()
            })
            .collect()
    }

    /// The recorded jobs sent to `queue`.
    #[must_use]
    pub fn enqueued_to(&self, queue: &str) -> Vec<RecordedJob> {
        self.recorder
            .jobs()
            .iter()
            .filter(|j| j.queue() == queue)
            .cloned()
            .collect()
    }

    /// How many jobs are recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.recorder.jobs().len()
    }

    /// True when nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.recorder.jobs().is_empty()
    }

    /// Removes and returns every recorded job (the inline runner drains
    /// with it); idempotency keys stay remembered.
    #[must_use]
    pub fn take(&self) -> Vec<RecordedJob> {
        std::mem::take(&mut *self.recorder.jobs())
    }

    /// Puts jobs back at the front of the record, before any recorded since
    /// (the inline runner returns the jobs it could not run).
    pub fn put_back(&self, jobs: impl IntoIterator<Item = RecordedJob>) {
        let mut recorded = self.recorder.jobs();
        let rest = std::mem::take(&mut *recorded);
        recorded.extend(jobs);
        recorded.extend(rest);
    }

    /// Forgets every recorded job and idempotency key.
    pub fn clear(&self) {
        self.recorder.jobs().clear();
        self.recorder
            .unique
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
