//! The README's `SendEmail` example tested the way an application would
//! test it with the `testing` feature: the producer code against a
//! `FakeClient`, the handler through the `InlineRunner`. No Redis.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{Client, Job, JobOptions};
use spool_worker::testing::{FakeClient, InlineRunner};
use spool_worker::{JobContext, JobError, Worker, WorkerBuilder};

// ---- the application, as in the README ----

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

impl Job for SendEmail {
    const TYPE: &'static str = "send_email";
    fn options() -> JobOptions {
        JobOptions::default()
            .queue("emails")
            .max_attempts(5)
            .timeout(Duration::from_secs(30))
    }
}

/// Producer code: holds a plain `Client`.
async fn sign_up(client: &Client, email: &str) -> spool_client::Result<()> {
    client
        .enqueue(&SendEmail {
            to: email.to_owned(),
        })
        .await?;
    client
        .enqueue_in(
            &SendEmail {
                to: "bob@example.com".into(),
            },
            Duration::from_secs(60),
        )
        .await?;
    Ok(())
}

/// Worker code: the handlers the application registers.
fn handlers(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .queue("emails", 1)
        .register(|_ctx: JobContext, job: SendEmail| async move {
            if job.to.ends_with("@invalid") {
                return Err(JobError::permanent("no such domain"));
            }
            Ok(())
        })
}

// ---- the application's tests ----

/// Signing up enqueues one `SendEmail` to the new user now, and one to Bob
/// in a minute.
#[tokio::test]
async fn sign_up_enqueues_the_emails() {
    let fake = FakeClient::new();
    sign_up(&fake.client(), "ada@example.com").await.unwrap();

    assert_eq!(
        fake.jobs::<SendEmail>(),
        [
            SendEmail {
                to: "ada@example.com".into()
            },
            SendEmail {
                to: "bob@example.com".into()
            },
        ]
    );
    let jobs = fake.enqueued();
    assert_eq!(jobs[0].queue(), "emails");
    assert!(!jobs[0].is_scheduled());
    assert_eq!(jobs[1].delay, Some(Duration::from_secs(60)));
}

/// The emails are sent; one to an invalid domain is dead at once without
/// retries.
#[tokio::test]
async fn emails_are_sent_and_invalid_domains_die_at_once() {
    let fake = FakeClient::new();
    let runner = InlineRunner::new(handlers(Worker::builder(fake.client()))).unwrap();
    sign_up(&fake.client(), "ada@example.com").await.unwrap();
    sign_up(&fake.client(), "eve@invalid").await.unwrap();

    let report = runner.drain().await.unwrap();
    assert_eq!(report.done().len(), 3);
    let dead = report.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job.args::<SendEmail>().unwrap().to, "eve@invalid");
    assert_eq!(dead[0].dead_error(), Some("no such domain"));
    assert_eq!(dead[0].attempts, 1);
}
