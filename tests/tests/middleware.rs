//! Middleware against a real Redis (issue 13, item 3): worker middleware
//! runs around every handler in the order added, can refuse a job (it
//! retries like any failure), hands context to the handler in a
//! task-local, and sees results and panics as errors; enqueue middleware
//! stamps options, rewrites the queue, refuses a job (nothing reaches
//! Redis), and keeps a bulk enqueue in one queue.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::middleware::{EnqueueMiddleware, EnqueueRequest};
use spool_client::{Client, EnqueueOptions, Job, JobOptions};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::middleware::{from_fn, Next};
use spool_worker::{JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    n: u32,
    panic: bool,
}

impl Job for Step {
    const TYPE: &'static str = "step";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(2)
            .retry_policy(spool_client::FixedDelay(Duration::from_millis(50)))
    }
}

tokio::task_local! {
    static TENANT: String;
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

#[tokio::test]
async fn worker_middleware_wraps_handlers_in_order_refuses_and_passes_context() {
    let env = TestEnv::start().await;
    let log: Log = Arc::default();
    let (outer, inner, handler) = (log.clone(), log.clone(), log.clone());
    let worker = env
        .worker()
        .middleware(from_fn(move |ctx: JobContext, next: Next| {
            let log = outer.clone();
            async move {
                let n: u32 = ctx.record().args.get()[5..6].parse().unwrap_or(0);
                note(&log, format!("outer before {n}"));
                let result = next.run().await;
                note(
                    &log,
                    format!(
                        "outer after {n}: {}",
                        if result.is_ok() { "ok" } else { "err" }
                    ),
                );
                result
            }
        }))
        .middleware(from_fn(move |ctx: JobContext, next: Next| {
            let log = inner.clone();
            async move {
                let n: u32 = ctx.record().args.get()[5..6].parse().unwrap_or(0);
                if n == 3 {
                    note(&log, "inner refused 3");
                    return Err(JobError::permanent("refused by the tenant gate"));
                }
                note(&log, format!("inner before {n}"));
                TENANT.scope(format!("tenant-{n}"), next.run()).await
            }
        }))
        .register(move |_ctx: JobContext, job: Step| {
            let log = handler.clone();
            async move {
                assert!(!job.panic, "step {} panicked", job.n);
                note(
                    &log,
                    format!("handler {} as {}", job.n, TENANT.with(Clone::clone)),
                );
                Ok(())
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    for (n, panic) in [(1, false), (3, false), (5, true)] {
        env.client.enqueue(&Step { n, panic }).await.unwrap();
    }
    let admin = env.client.admin();
    wait_for("one done, two dead", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().dead == 2
    })
    .await;
    running.stop().await;
    let log = log.lock().unwrap().clone();
    let of = |n: &str| -> Vec<String> { log.iter().filter(|l| l.contains(n)).cloned().collect() };
    assert_eq!(
        of(" 1"),
        [
            "outer before 1",
            "inner before 1",
            "handler 1 as tenant-1",
            "outer after 1: ok"
        ]
    );
    // Refused by the inner middleware: the handler never ran; the outer one saw the error.
    assert_eq!(
        of("3"),
        ["outer before 3", "inner refused 3", "outer after 3: err"]
    );
    // A panicking handler is an error to the middleware around it, twice (max_attempts 2).
    assert_eq!(
        of("5"),
        [
            "outer before 5",
            "inner before 5",
            "outer before 5",
            "inner before 5"
        ]
    );
    let dead = admin
        .list_set("default", spool_client::JobSet::Dead, 0, 10)
        .await
        .unwrap();
    let errors: Vec<String> = dead
        .items
        .iter()
        .filter_map(|j| j.last_error().map(|e| e.error.clone()))
        .collect();
    assert!(
        errors.iter().any(|e| e == "refused by the tenant gate"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("step 5 panicked")),
        "{errors:?}"
    );
}

/// Stamps a tenant, moves `report` jobs to the `reports` queue, refuses
/// jobs whose args mention "forbidden".
struct Gate;

impl EnqueueMiddleware for Gate {
    fn before_enqueue(&self, job: &mut EnqueueRequest<'_>) -> Result<(), String> {
        if job.args().get().contains("forbidden") {
            return Err("args mention something forbidden".to_owned());
        }
        let mut trace = job.options().trace_context().cloned().unwrap_or_default();
        trace.insert("tenant".to_owned(), "acme".to_owned());
        let to_reports = job.job_type() == "report";
        job.update(|o| {
            let o = o.trace(trace);
            if to_reports {
                o.queue("reports")
            } else {
                o
            }
        });
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    name: String,
}

impl Job for Report {
    const TYPE: &'static str = "report";
}

#[tokio::test]
async fn enqueue_middleware_stamps_rewrites_and_refuses() {
    let env = TestEnv::start().await;
    let client = Client::builder(&env.redis.url())
        .middleware(Gate)
        .connect()
        .await
        .unwrap();
    let admin = client.admin();

    let id = client.enqueue(&Step { n: 1, panic: false }).await.unwrap();
    let job = admin.job("default", id.as_str()).await.unwrap().unwrap();
    let trace = job.record.unwrap().trace.unwrap();
    assert_eq!(trace.get("tenant").map(String::as_str), Some("acme"));

    let moved = client
        .enqueue(&Report {
            name: "q3".to_owned(),
        })
        .await
        .unwrap();
    assert!(admin
        .job("reports", moved.as_str())
        .await
        .unwrap()
        .is_some());

    let refused = client
        .enqueue(&Report {
            name: "forbidden".to_owned(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, spool_client::Error::Refused { .. }),
        "{refused}"
    );
    assert!(refused
        .to_string()
        .contains("args mention something forbidden"));
    assert_eq!(
        admin.queue("reports").await.unwrap().ready,
        1,
        "nothing sent"
    );

    // A bulk enqueue: every job passes; one refused refuses them all.
    let ids = client
        .enqueue_bulk(&[Step { n: 1, panic: false }, Step { n: 2, panic: false }])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let err = client
        .enqueue_bulk(&[
            Report {
                name: "a".to_owned(),
            },
            Report {
                name: "forbidden".to_owned(),
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, spool_client::Error::Refused { .. }), "{err}");
    // Moving a bulk enqueue's job to another queue is refused, not split.
    let err = client
        .enqueue_bulk_with(
            &[Report {
                name: "b".to_owned(),
            }],
            EnqueueOptions::new().queue("default"),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a bulk enqueue writes to one queue"),
        "{err}"
    );
    assert_eq!(admin.queue("reports").await.unwrap().ready, 1);
    assert_eq!(admin.queue("default").await.unwrap().ready, 3);
}
