//! Runs keyed by lease, and records decoded one at a time, against a real
//! worker process (`chaos-worker`) and a real Redis:
//!
//! - a process paused past its leases (SIGSTOP) re-leases its own jobs after
//!   the reaper hands them back; the stale runs are cancelled by their own
//!   lost leases, and the new runs of the same jobs are left alone;
//! - a record with Spool's head but a body that is not UTF-8 goes dead at
//!   once with an error naming the problem, and the good jobs leased in the
//!   same batch run normally.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use spool_tests::handlers::Work;
use spool_tests::{wait_for, TestEnv};
use spool_worker::testing;

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = signal(&self.0, "CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
}

fn spawn_worker(url: &str, dir: &std::path::Path, lease_ms: u64) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", url, "--record"])
        .arg(dir.join("done.log"))
        .arg("--cancel-record")
        .arg(dir.join("cancelled.log"))
        .args(["--concurrency", "16", "--lease-ms", &lease_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn chaos-worker");
    ChildGuard(child)
}

/// `<job id> <attempt> …` lines of a record file, as id → attempts.
fn lines(path: &std::path::Path) -> HashMap<String, Vec<u32>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: HashMap<String, Vec<u32>> = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        if let (Some(id), Some(attempt)) = (parts.next(), parts.next()) {
            runs.entry(id.to_owned())
                .or_default()
                .push(attempt.parse().expect("attempt"));
        }
    }
    runs
}

/// A stalled process's stale runs are cancelled by their own lost leases;
/// its new leases on the same jobs run to success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_run_is_cancelled_by_its_own_lease_not_its_twins() {
    let env = TestEnv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<Work> = (0..4).map(|n| Work { n, sleep_ms: 4000 }).collect();
    let ids = env.client.enqueue_bulk(&jobs).await.unwrap();
    let child = spawn_worker(&env.redis.url(), dir.path(), 1000);
    let admin = env.client.admin();
    wait_for("all four running", Duration::from_secs(10), || async {
        admin.queue("chaos").await.unwrap().active == 4
    })
    .await;

    // Stall the process past its leases, hand the jobs back, resume it: it
    // fetches the same jobs again while its stale runs are still sleeping.
    assert!(signal(&child.0, "STOP").unwrap().success());
    wait_for(
        "leases expired and reaped",
        Duration::from_secs(10),
        || async {
            testing::reap_once(&env.client, &["chaos"])
                .await
                .unwrap()
                .to_ready
                == 4
                || admin.queue("chaos").await.unwrap().ready == 4
        },
    )
    .await;
    assert!(signal(&child.0, "CONT").unwrap().success());

    wait_for("new runs finished", Duration::from_secs(20), || async {
        lines(&dir.path().join("done.log")).len() == 4
    })
    .await;
    let done = lines(&dir.path().join("done.log"));
    let cancelled = lines(&dir.path().join("cancelled.log"));
    for id in &ids {
        assert_eq!(
            done.get(id.as_str()),
            Some(&vec![2]),
            "the second lease of {id} ran to success once; done={done:?} cancelled={cancelled:?}"
        );
        assert_eq!(
            cancelled.get(id.as_str()),
            Some(&vec![1]),
            "the stale first run of {id} (and only it) was cancelled; cancelled={cancelled:?}"
        );
    }
    wait_for("all acked", Duration::from_secs(5), || async {
        let q = admin.queue("chaos").await.unwrap();
        (q.ready, q.active, q.retry, q.dead) == (0, 0, 0, 0)
    })
    .await;
}

/// A record with Spool's head and a body that is not UTF-8, fetched in one
/// batch with nine good jobs: it goes dead at once naming the problem, its
/// bytes unchanged; the nine run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_utf8_record_dies_alone_and_its_batch_runs() {
    let env = TestEnv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<Work> = (0..9).map(|n| Work { n, sleep_ms: 0 }).collect();
    let good = env.client.enqueue_bulk(&jobs[..5]).await.unwrap();
    let bad: Vec<u8> = [
        &br#"{"id":"bad-bytes-1","attempt":0,"max_attempts":5,"enqueued_ms":1,"type":"work","queue":"chaos","args":{"n":99,"sleep_ms":0,"note":""#[..],
        b"\xff\xfe\xc3\x28",
        br#""},"created_ms":1}"#,
    ]
    .concat();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("LPUSH")
        .arg("spool:{chaos}:ready")
        .arg(&bad)
        .query_async(&mut raw)
        .await
        .unwrap();
    let more = env.client.enqueue_bulk(&jobs[5..]).await.unwrap();
    let _child = spawn_worker(&env.redis.url(), dir.path(), 2000);

    wait_for("nine good jobs ran", Duration::from_secs(10), || async {
        lines(&dir.path().join("done.log")).len() == 9
    })
    .await;
    let done = lines(&dir.path().join("done.log"));
    for id in good.iter().chain(&more) {
        assert_eq!(
            done.get(id.as_str()),
            Some(&vec![1]),
            "{id} ran once, first try"
        );
    }
    let admin = env.client.admin();
    wait_for("the bad record is dead", Duration::from_secs(5), || async {
        admin.queue("chaos").await.unwrap().dead == 1
    })
    .await;
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("spool:{chaos}:dead")
        .arg("bad-bytes-1")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(score.is_some(), "dead under its own id");
    let stored: Vec<u8> = redis::cmd("HGET")
        .arg("spool:{chaos}:jobs")
        .arg("bad-bytes-1")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        stored.windows(4).any(|w| w == b"\xff\xfe\xc3\x28"),
        "its bytes are kept unchanged"
    );
    let errors: String = redis::cmd("HGET")
        .arg("spool:{chaos}:errors")
        .arg("bad-bytes-1")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(errors.contains("not valid UTF-8"), "{errors}");
    assert!(!errors.contains("lease expired"), "{errors}");
}
