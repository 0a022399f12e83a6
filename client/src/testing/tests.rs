//! The fake client's own behaviour: what it records, what it refuses, and
//! that calls needing Redis fail with a readable error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::FakeClient;
use crate::{EnqueueOptions, Error, Job, JobOptions};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

impl Job for SendEmail {
    const TYPE: &'static str = "send_email";
    fn options() -> JobOptions {
        JobOptions::default().queue("emails").max_attempts(5)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resize {
    image: u32,
}

impl Job for Resize {
    const TYPE: &'static str = "resize";
}

/// Each enqueue is recorded in order with its type, queue, args and the
/// type's defaults; typed queries return only their type.
#[tokio::test]
async fn enqueues_are_recorded_in_order_and_queryable_by_type() {
    let fake = FakeClient::new();
    let client = fake.client();
    let ada = client
        .enqueue(&SendEmail {
            to: "ada@example.com".into(),
        })
        .await
        .expect("enqueue");
    client.enqueue(&Resize { image: 7 }).await.expect("enqueue");

    let jobs = fake.enqueued();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].id(), &ada);
    assert_eq!(jobs[0].job_type(), "send_email");
    assert_eq!(jobs[0].queue(), "emails");
    assert_eq!(jobs[0].record.max_attempts, 5);
    assert_eq!(jobs[0].record.attempt, 0);
    assert_eq!(
        jobs[0].args_json(),
        serde_json::json!({"to": "ada@example.com"})
    );
    assert!(!jobs[0].is_scheduled());
    assert_eq!(jobs[1].queue(), "default");
    assert_eq!(
        fake.jobs::<SendEmail>(),
        [SendEmail {
            to: "ada@example.com".into()
        }]
    );
    assert_eq!(fake.jobs::<Resize>(), [Resize { image: 7 }]);
    assert_eq!(fake.enqueued_to("emails").len(), 1);
    assert_eq!(
        jobs[1].args::<SendEmail>(),
        None,
        "a Resize is no SendEmail"
    );
}

/// Per-call options land in the record: queue, attempts, timeout, run-at
/// and delay.
#[tokio::test]
async fn options_are_kept() {
    let fake = FakeClient::new();
    let client = fake.client();
    let at = chrono::DateTime::from_timestamp_millis(4_102_444_800_000).expect("a date");
    let opts = EnqueueOptions::new()
        .queue("critical")
        .max_attempts(2)
        .timeout(Duration::from_secs(3))
        .at(at);
    client
        .enqueue_with(&Resize { image: 1 }, opts)
        .await
        .expect("enqueue");
    client
        .enqueue_in(&Resize { image: 2 }, Duration::from_secs(60))
        .await
        .expect("enqueue");

    let jobs = fake.enqueued();
    assert_eq!(jobs[0].queue(), "critical");
    assert_eq!(jobs[0].record.max_attempts, 2);
    assert_eq!(jobs[0].record.timeout_ms, Some(3000));
    assert_eq!(jobs[0].run_at, Some(at));
    assert_eq!(jobs[1].delay, Some(Duration::from_secs(60)));
    assert!(jobs[1].is_scheduled());
}

/// An idempotency key (or uniqueness by args) records one job and gives
/// the duplicate its id, per queue, until `clear`.
#[tokio::test]
async fn idempotency_keys_deduplicate_until_clear() {
    let fake = FakeClient::new();
    let client = fake.client();
    let keyed = || EnqueueOptions::new().idempotency_key("order-42");
    let first = client
        .enqueue_with(&Resize { image: 1 }, keyed())
        .await
        .expect("enqueue");
    let again = client
        .enqueue_with(&Resize { image: 2 }, keyed())
        .await
        .expect("enqueue");
    let other_queue = client
        .enqueue_with(&Resize { image: 3 }, keyed().queue("other"))
        .await
        .expect("enqueue");
    assert!(!first.duplicate && again.duplicate && !other_queue.duplicate);
    assert_eq!(again.id, first.id);
    for _ in 0..2 {
        client
            .enqueue_with(&Resize { image: 9 }, EnqueueOptions::new().unique_by_args())
            .await
            .expect("enqueue");
    }
    assert_eq!(fake.len(), 3);

    fake.clear();
    assert!(fake.is_empty());
    let after = client
        .enqueue_with(&Resize { image: 1 }, keyed())
        .await
        .expect("enqueue");
    assert!(!after.duplicate);
}

/// Bulk enqueues record every job and return their ids in order.
#[tokio::test]
async fn bulk_enqueues_are_recorded() {
    let fake = FakeClient::new();
    let jobs: Vec<Resize> = (0..3).map(|image| Resize { image }).collect();
    let ids = fake.client().enqueue_bulk(&jobs).await.expect("bulk");
    let recorded: Vec<_> = fake.enqueued().iter().map(|j| j.id().clone()).collect();
    assert_eq!(ids, recorded);
    assert_eq!(fake.jobs::<Resize>(), jobs);
}

/// The real checks run before recording: a bad queue name is refused and
/// nothing is recorded.
#[tokio::test]
async fn bad_input_is_refused_as_by_a_real_client() {
    let fake = FakeClient::new();
    let err = fake
        .client()
        .enqueue_with(
            &Resize { image: 1 },
            EnqueueOptions::new().queue("no spaces"),
        )
        .await
        .expect_err("a bad queue name");
    assert!(matches!(err, Error::InvalidQueueName { .. }), "{err}");
    assert!(fake.is_empty());
}

/// What needs Redis fails with an error naming the fake client, never a
/// panic.
#[tokio::test]
async fn calls_needing_redis_fail_with_a_clear_error() {
    let fake = FakeClient::new();
    let client = fake.client();
    let err = client.admin().queues().await.expect_err("no Redis");
    assert!(err.to_string().contains("fake client"), "{err}");
    let id = client.enqueue(&Resize { image: 1 }).await.expect("enqueue");
    let err = client.status(&id).await.expect_err("no Redis");
    assert!(err.to_string().contains("fake client"), "{err}");
    assert!(client.redis_time_ms().await.is_err());
}

/// `take` empties the record; `put_back` puts jobs in front; `of` finds the
/// fake behind a client, and not behind anything else.
#[tokio::test]
async fn take_put_back_and_of() {
    let fake = FakeClient::new();
    let client = fake.client();
    client.enqueue(&Resize { image: 1 }).await.expect("enqueue");
    let taken = fake.take();
    assert!(fake.is_empty());
    client.enqueue(&Resize { image: 2 }).await.expect("enqueue");
    fake.put_back(taken);
    assert_eq!(
        fake.jobs::<Resize>(),
        [Resize { image: 1 }, Resize { image: 2 }]
    );
    let again = FakeClient::of(&client).expect("a fake's client");
    assert_eq!(again.len(), 2);
}
