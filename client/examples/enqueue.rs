//! Enqueue one job now, one in a minute and one at a fixed time.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p spool-client --example enqueue`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{Client, EnqueueOptions, Job, JobOptions};

#[derive(Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

impl Job for SendEmail {
    const TYPE: &'static str = "send_email";
    fn options() -> JobOptions {
        JobOptions::default().queue("emails").max_attempts(5)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = Client::connect(&url).await?;
    let now = client
        .enqueue(&SendEmail {
            to: "ada@example.com".into(),
        })
        .await?;
    let later = client
        .enqueue_in(
            &SendEmail {
                to: "bob@example.com".into(),
            },
            Duration::from_secs(60),
        )
        .await?;
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let timed = client
        .enqueue_at(
            &SendEmail {
                to: "cy@example.com".into(),
            },
            at,
        )
        .await?;
    let once = client
        .enqueue_with(
            &SendEmail {
                to: "dee@example.com".into(),
            },
            EnqueueOptions::new().idempotency_key("welcome-dee"),
        )
        .await?;
    eprintln!("enqueued {now} (now), {later} (in 60 s), {timed} (at {at}), {} (idempotent, duplicate: {})", once.id, once.duplicate);
    Ok(())
}
