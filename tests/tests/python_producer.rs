//! A producer in another language: `tests/python/producer.py` enqueues jobs
//! with redis-py following docs/PROTOCOL.md only (the script text comes from
//! `spool protocol script enqueue`, its SHA from `spool protocol list`), and
//! a Rust worker runs them: one due now, one scheduled, one idempotent
//! (enqueued twice, run once). redis-py comes from
//! `scripts/install-redis-py.sh` (pinned wheels from the Python package index).

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spool_dashboard::cli::{run, EXIT_OK};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::JobContext;

/// The job the Python producer writes (`"type":"py_greet"`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PyGreet {
    name: String,
    n: u32,
}

impl spool_client::Job for PyGreet {
    const TYPE: &'static str = "py_greet";
    fn options() -> spool_client::JobOptions {
        spool_client::JobOptions::default().queue("from-python")
    }
}

/// What the `spool` CLI prints for `args`.
async fn cli_output(args: &[&str]) -> String {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args.iter().copied(), &mut out, &mut err).await;
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    String::from_utf8(out).unwrap()
}

/// The directory holding redis-py, from the repository's install script.
fn redis_py() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/install-redis-py.sh"))
        .output()
        .expect("run scripts/install-redis-py.sh");
    assert!(
        out.status.success(),
        "scripts/install-redis-py.sh failed (it needs python3 with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_python_producer_following_the_protocol_feeds_a_rust_worker() {
    let env = TestEnv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("enqueue.lua");
    std::fs::write(
        &script,
        cli_output(&["spool", "protocol", "script", "enqueue"]).await,
    )
    .unwrap();
    let list = cli_output(&["spool", "protocol", "list"]).await;
    let sha = list
        .lines()
        .find_map(|l| l.strip_prefix("enqueue "))
        .expect("enqueue in the list")
        .to_owned();

    let producer = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/producer.py");
    let out = Command::new("python3")
        .arg(&producer)
        .args([&env.redis.url(), "from-python"])
        .arg(&script)
        .arg(&sha)
        .env("PYTHONPATH", redis_py())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the Python producer failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: HashMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();

    let queue = env.client.admin().queue("from-python").await.unwrap();
    assert_eq!((queue.ready, queue.scheduled), (2, 1), "{queue:?}");

    let runs: Arc<Mutex<Vec<(String, String, u32)>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let worker = RunningWorker::start(
        env.worker()
            .queue("from-python", 1)
            .register(move |ctx: JobContext, job: PyGreet| {
                seen.lock()
                    .unwrap()
                    .push((ctx.id().to_string(), job.name, job.n));
                std::future::ready(Ok(()))
            })
            .build()
            .unwrap(),
    );
    wait_for("the three jobs", Duration::from_secs(10), || async {
        runs.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    let mut got = runs.lock().unwrap().clone();
    got.sort_by_key(|r| r.2);
    assert_eq!(
        got,
        vec![
            (ids["now"].clone(), "ada".to_owned(), 1),
            (ids["later"].clone(), "grace".to_owned(), 2),
            (ids["unique"].clone(), "alan".to_owned(), 3),
        ],
        "each job once, the idempotent one too"
    );
    let queue = env.client.admin().queue("from-python").await.unwrap();
    assert_eq!((queue.ready, queue.scheduled, queue.dead), (0, 0, 0));
}
