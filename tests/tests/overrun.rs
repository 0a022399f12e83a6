//! A handler that blocks its thread (here `std::thread::sleep`) cannot be
//! interrupted by its time limit: tokio cannot preempt it. Spool notices
//! when it returns: the overrun is logged naming the job type and counted
//! in `spool_handler_overruns_total`. Alone in its file: it installs the
//! process-wide metrics recorder.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde::{Deserialize, Serialize};
use spool_client::{Job, JobOptions};
use spool_tests::{wait_for, RunningWorker, TestEnv};

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

fn overruns(snapshotter: &metrics_util::debugging::Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "spool_handler_overruns_total")
        .filter(|(key, ..)| key.key().labels().any(|l| l.value() == "blocking"))
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocking_handler_past_its_timeout_is_recorded_as_an_overrun() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first recorder of this process");
    let env = TestEnv::start().await;
    let worker = env
        .worker()
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
    assert_eq!(
        overruns(&snapshotter),
        1,
        "only the 900 ms run overran 300 ms"
    );
}
