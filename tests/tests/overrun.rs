//! A handler that blocks its thread (here `std::thread::sleep`) cannot be
//! interrupted by its time limit: tokio cannot preempt it. Spool notices
//! when it returns: the overrun is logged naming the job type and counted
//! in `spool_handler_overruns_total` (the worker's metrics registry).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{Job, JobOptions};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::prometheus_client::registry::Registry;

#[derive(Serialize, Deserialize)]
struct Blocking {
    ms: u64,
}

impl Job for Blocking {
    const TYPE: &'static str = "blocking";
    fn options() -> JobOptions {
        JobOptions::default().timeout(Duration::from_millis(300))
    }
}

/// The overrun count of the `blocking` type in `registry`'s text.
fn overruns(registry: &Registry) -> u64 {
    let mut text = String::new();
    spool_worker::prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find(|l| l.starts_with(r#"spool_handler_overruns_total{type="blocking"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocking_handler_past_its_timeout_is_recorded_as_an_overrun() {
    let env = TestEnv::start().await;
    let mut registry = Registry::default();
    let worker = env
        .worker()
        .metrics_registry(&mut registry)
        .register(|_ctx, job: Blocking| async move {
            #[allow(clippy::disallowed_methods)] // the point: a blocking handler
            std::thread::sleep(Duration::from_millis(job.ms));
            Ok(())
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    env.client.enqueue(&Blocking { ms: 50 }).await.unwrap();
    env.client.enqueue(&Blocking { ms: 900 }).await.unwrap();
    let admin = env.client.admin();
    wait_for("both processed", Duration::from_secs(10), || async {
        admin.stats("default", 1).await.unwrap().processed == 2
    })
    .await;
    running.stop().await;
    assert_eq!(overruns(&registry), 1, "only the 900 ms run overran 300 ms");
}
