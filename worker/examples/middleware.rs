//! Middleware on both sides: the producer's client stamps every job with
//! the tenant it was enqueued for (and refuses jobs without one); the
//! worker times and logs every job, and hands the tenant to the handler in
//! a task-local, the way `tracing` or a database pool would read it.
//!
//! `REDIS_URL=redis://127.0.0.1:16379 cargo run -p spool-worker --example middleware`

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spool_client::middleware::{EnqueueMiddleware, EnqueueRequest};
use spool_client::{Client, Job};
use spool_worker::middleware::{from_fn, Next};
use spool_worker::{JobContext, Worker};

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    name: String,
}

impl Job for Report {
    const TYPE: &'static str = "report";
}

tokio::task_local! {
    /// The tenant of the job being run.
    static TENANT: String;
}

/// Producer side: every job carries the tenant in its trace map.
struct StampTenant(&'static str);

impl EnqueueMiddleware for StampTenant {
    fn before_enqueue(&self, job: &mut EnqueueRequest<'_>) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("no tenant: refusing to enqueue".to_owned());
        }
        let mut trace = job.options().trace_context().cloned().unwrap_or_default();
        trace.insert("tenant".to_owned(), self.0.to_owned());
        job.update(|o| o.trace(trace));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:16379".to_owned());
    let client = Client::builder(&url)
        .middleware(StampTenant("acme"))
        .connect()
        .await?;
    client
        .enqueue(&Report {
            name: "monthly".to_owned(),
        })
        .await?;

    let worker = Worker::builder(client)
        // Outermost: time and log every job.
        .middleware(from_fn(|ctx: JobContext, next: Next| async move {
            let started = Instant::now();
            let result = next.run().await;
            tracing::info!(job_id = %ctx.id(), ok = result.is_ok(), elapsed = ?started.elapsed(), "job finished");
            result
        }))
        // Then: the tenant, for the handler to read.
        .middleware(from_fn(|ctx: JobContext, next: Next| async move {
            let tenant = ctx
                .record()
                .trace
                .as_ref()
                .and_then(|t| t.get("tenant").cloned())
                .unwrap_or_default();
            TENANT.scope(tenant, next.run()).await
        }))
        .register(|_ctx: JobContext, job: Report| async move {
            let tenant = TENANT.with(Clone::clone);
            tracing::info!(report = %job.name, %tenant, "building report");
            Ok(())
        })
        .build()?;
    worker
        .run_until(tokio::time::sleep(Duration::from_secs(3)))
        .await?;
    Ok(())
}
