//! Registry: job type name → handler, with each type's defaults (timeout,
//! retry policy). A job whose type is not registered is dead at once with a
//! readable error naming the types this worker knows.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use spool_client::{Job, JobOptions, JobRecord};

use futures::FutureExt;

use crate::handler::{ErasedHandler, HandlerFuture, JobContext, Returned};
use crate::outcome::JobError;

/// A handler's return value as JSON, or `Err` with the reason when it does
/// not serialize; `None` for `null`.
pub(crate) fn returned<T: Serialize>(value: &T) -> Returned {
    match serde_json::to_string(value) {
        Ok(json) if json == "null" => None,
        Ok(json) => Some(Ok(json)),
        Err(e) => Some(Err(format!(
            "result not kept: it does not serialize to JSON: {e}"
        ))),
    }
}

/// One registered job type.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) handler: ErasedHandler,
    pub(crate) options: JobOptions,
}

/// Job type name → registration, and the middleware every job runs
/// through.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    by_type: BTreeMap<String, Registration>,
    /// Outermost first ([`crate::middleware`]).
    pub(crate) middleware: Arc<[Arc<dyn crate::middleware::Middleware>]>,
}

impl Registry {
    /// The registered job types.
    pub(crate) fn type_names(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }

    /// Adds `m` inside the middleware added before it.
    pub(crate) fn add_middleware(&mut self, m: Arc<dyn crate::middleware::Middleware>) {
        self.middleware = self
            .middleware
            .iter()
            .cloned()
            .chain(std::iter::once(m))
            .collect();
    }

    /// Registers `handler`; `value` turns what it returns into the value
    /// kept with the outcome (`|_| None` for `()`: nothing is serialized).
    /// Replaces the retry policy of job type `job_type`, if registered.
    pub(crate) fn set_retry_policy(
        &mut self,
        job_type: &str,
        policy: Arc<dyn spool_client::RetryPolicy>,
    ) {
        if let Some(r) = self.by_type.get_mut(job_type) {
            r.options.retry_policy = policy;
        }
    }

    pub(crate) fn register<J, F, Fut, T>(&mut self, handler: F, value: fn(&T) -> Returned)
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, JobError>> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let erased: ErasedHandler = Arc::new(move |ctx, record: &JobRecord| {
            let job: J = record.decode_args().map_err(|e| {
                format!(
                    "unparsable payload: args of job type {:?} do not decode: {e}",
                    J::TYPE
                )
            })?;
            let fut: HandlerFuture = Box::pin(handler(ctx, job).map(move |r| r.map(|v| value(&v))));
            Ok(fut)
        });
        self.by_type.insert(
            J::TYPE.to_owned(),
            Registration {
                handler: erased,
                options: J::options(),
            },
        );
    }

    pub(crate) fn get(&self, job_type: &str) -> Option<&Registration> {
        self.by_type.get(job_type)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// Queues named by the registered types' defaults (deduplicated, sorted).
    pub(crate) fn default_queues(&self) -> Vec<String> {
        let mut q: Vec<String> = self
            .by_type
            .values()
            .map(|r| r.options.queue.clone())
            .collect();
        q.sort();
        q.dedup();
        q
    }

    pub(crate) fn unknown_type_error(&self, job_type: &str) -> String {
        let known: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        format!(
            "unknown job type {job_type:?}: no handler is registered for it in this worker (registered: {})",
            known.join(", ")
        )
    }
}
