//! The demo producer (Procfile `producer`): enqueues a mix of demo jobs a few
//! times a second (now, delayed, with idempotency keys) until stopped.
//!
//! `REDIS_URL=redis://127.0.0.1:16379 cargo run -p spool-worker --example demo_producer [-- --count N]`

#[path = "demo/jobs.rs"]
mod jobs;

use std::time::Duration;

use jobs::{ChargeCard, ResizeImage, SendEmail};
use rand::Rng;
use spool_client::EnqueueOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args
        .iter()
        .position(|a| a == "--count")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(u64::MAX), |v| v.parse())?;
    let client = jobs::start().await?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // One listener for the whole run: a SIGTERM or Ctrl-C that arrives
    // during an enqueue is not lost.
    let shutdown = spool_worker::shutdown_signal();
    tokio::pin!(shutdown);
    for n in 0..count {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut shutdown => break,
        }
        let email = SendEmail {
            to: format!("user{n}@example.com"),
            subject: "Welcome".into(),
        };
        let id = match n % 4 {
            0 => client.enqueue(&email).await?,
            1 => {
                client
                    .enqueue(&ResizeImage {
                        image_id: n,
                        width: 640,
                    })
                    .await?
            }
            2 => {
                client
                    .enqueue_in(&email, Duration::from_secs(rand::rng().random_range(5..60)))
                    .await?
            }
            _ => {
                let order = n / 4;
                let opts = EnqueueOptions::new().idempotency_key(format!("order-{order}"));
                client
                    .enqueue_with(
                        &ChargeCard {
                            order_id: order,
                            cents: rand::rng().random_range(100..10_000),
                        },
                        opts,
                    )
                    .await?
                    .id
            }
        };
        tracing::info!(job_id = %id, n, "enqueued");
    }
    Ok(())
}
