//! The demo worker (Procfile `worker`): runs the demo jobs on three queues,
//! some of which fail, so the retry and dead sets have something in them,
//! and two cron entries.
//!
//! `REDIS_URL=redis://127.0.0.1:16379 cargo run -p spool-worker --example demo_worker`

#[path = "demo/jobs.rs"]
mod jobs;

use std::time::Duration;

use jobs::{ChargeCard, ResizeImage, SendEmail};
use rand::Rng;
use spool_worker::{CronEntry, JobContext, JobError, QueueSpec, Worker};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = jobs::start().await?;
    let worker = Worker::builder(client)
        .queue_spec(QueueSpec::new("critical").weight(3))
        .queue_spec(QueueSpec::new("default").weight(2))
        .queue_spec(QueueSpec::new("emails").weight(1).concurrency(5))
        .concurrency(10)
        .register(|ctx: JobContext, job: SendEmail| async move {
            let pause = rand::rng().random_range(50..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            tracing::info!(job_id = %ctx.id(), to = %job.to, subject = %job.subject, "email sent");
            Ok(())
        })
        .register(|ctx: JobContext, job: ResizeImage| async move {
            let (pause, fails) = {
                let mut rng = rand::rng();
                (rng.random_range(100..800), rng.random_bool(0.4))
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if fails {
                return Err(JobError::retry(format!(
                    "image store timed out resizing {} (attempt {})",
                    job.image_id,
                    ctx.attempt()
                )));
            }
            Ok(())
        })
        .register(|_ctx: JobContext, job: ChargeCard| async move {
            if job.cents % 7 == 0 {
                return Err(JobError::permanent(format!(
                    "card declined for order {}",
                    job.order_id
                )));
            }
            Ok(())
        })
        // Cron: a report mail every 10 seconds (fires once per tick however
        // many demo workers run), and a nightly resize sweep in Berlin time.
        .cron(CronEntry::new(
            "demo-report",
            "*/10 * * * * *",
            &SendEmail {
                to: "ops@example.com".into(),
                subject: "Queue report".into(),
            },
        ))
        .cron(
            CronEntry::new(
                "nightly-resize",
                "0 3 * * *",
                &ResizeImage {
                    image_id: 0,
                    width: 1024,
                },
            )
            .timezone("Europe/Berlin"),
        )
        .build()?;
    worker.run_until(spool_worker::shutdown_signal()).await?;
    Ok(())
}
