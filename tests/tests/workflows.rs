//! Follow-up jobs against a real Redis: created by the script that ends
//! the parent (on success, on failure, on completion), exactly once even
//! when a move is repeated or the worker is killed (SIGKILL) mid-way, reading the
//! parent's id, state and result; chains of follow-ups pass results along
//! and stop at a dead link.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{EnqueueOptions, EventKind, EventLevel, EventsConfig, FollowUp, Job, JobOutput};
use spool_tests::handlers::Work;
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};

/// Adds; fails for good when `fail` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
    fail: bool,
}

impl Job for Add {
    const TYPE: &'static str = "add";
}

impl JobOutput for Add {
    type Output = i64;
}

/// Adds the parent's result to `b` (a chain link); fails for good past
/// `fail_over`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AddParent {
    b: i64,
    fail_over: i64,
}

impl Job for AddParent {
    const TYPE: &'static str = "add_parent";
}

impl JobOutput for AddParent {
    type Output = i64;
}

/// A job type whose options name a follow-up: every enqueue of it gets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Audited {
    n: u64,
}

impl Job for Audited {
    const TYPE: &'static str = "audited";
    fn options() -> spool_client::JobOptions {
        spool_client::JobOptions::default()
            .follow_up(FollowUp::on_success(&report("type-level")).expect("report serializes"))
    }
}

/// Records that it ran, with its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    tag: String,
}

impl Job for Report {
    const TYPE: &'static str = "report";
}

/// A run of `Report` or `AddParent`: its tag (or job type) and its parent's id,
/// state, result and error.
#[derive(Debug, Clone)]
struct Seen {
    tag: String,
    parent: Option<(String, String, Option<String>, Option<String>)>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn parent_of(ctx: &JobContext) -> Option<(String, String, Option<String>, Option<String>)> {
    ctx.parent().map(|p| {
        (
            p.id.to_string(),
            p.state.clone(),
            p.result.as_ref().map(|r| r.get().to_owned()),
            p.error.clone(),
        )
    })
}

fn worker(env: &TestEnv, log: &Log) -> RunningWorker {
    let (l1, l2) = (log.clone(), log.clone());
    let w = env
        .worker()
        .queue("default", 1)
        .queue("other", 1)
        .register_returning(|_ctx, job: Add| async move {
            if job.fail {
                return Err(JobError::permanent("add refused"));
            }
            Ok(job.a + job.b)
        })
        .register_returning(move |ctx: JobContext, job: AddParent| {
            let log = l1.clone();
            async move {
                let parent = parent_of(&ctx);
                let sum = parent
                    .as_ref()
                    .and_then(|p| p.2.as_deref())
                    .and_then(|r| r.parse::<i64>().ok())
                    .unwrap_or(0)
                    + job.b;
                log.lock().unwrap().push(Seen {
                    tag: "add_parent".into(),
                    parent,
                });
                if sum > job.fail_over {
                    return Err(JobError::permanent(format!("{sum} is too much")));
                }
                Ok(sum)
            }
        })
        .register(|_ctx, _job: Audited| async { Ok(()) })
        .register(move |ctx: JobContext, job: Report| {
            let log = l2.clone();
            async move {
                log.lock().unwrap().push(Seen {
                    tag: job.tag,
                    parent: parent_of(&ctx),
                });
                Ok(())
            }
        })
        .build()
        .unwrap();
    RunningWorker::start(w)
}

fn report(tag: &str) -> Report {
    Report { tag: tag.into() }
}

fn tags(log: &Log) -> Vec<String> {
    let mut t: Vec<String> = log.lock().unwrap().iter().map(|s| s.tag.clone()).collect();
    t.sort();
    t
}

/// A job's follow-ups: those its end triggers run once, with the parent's
/// id, state and result (or error); the others never run. Success, failure
/// and cancellation, on the parent's queue and on another.
#[tokio::test]
async fn follow_ups_run_once_for_the_end_they_wait_for() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let all_three = |prefix: &str| {
        EnqueueOptions::new()
            .follow_up(FollowUp::on_success(&report(&format!("{prefix}-success"))).unwrap())
            .follow_up(
                FollowUp::on_failure(&report(&format!("{prefix}-failure")))
                    .unwrap()
                    .queue("other"),
            )
            .follow_up(FollowUp::on_complete(&report(&format!("{prefix}-complete"))).unwrap())
    };
    let ok = c
        .enqueue_with(
            &Add {
                a: 1,
                b: 2,
                fail: false,
            },
            all_three("ok"),
        )
        .await
        .unwrap()
        .id;
    let bad = c
        .enqueue_with(
            &Add {
                a: 1,
                b: 2,
                fail: true,
            },
            all_three("bad"),
        )
        .await
        .unwrap()
        .id;
    let later = c
        .enqueue_with(
            &Add {
                a: 0,
                b: 0,
                fail: false,
            },
            all_three("cancelled").delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id;
    c.cancel(&later).await.unwrap();
    wait_for("five follow-ups", Duration::from_secs(15), || async {
        log.lock().unwrap().len() >= 5
    })
    .await;
    // Nothing more comes: each ran once, and the failure/success ones of
    // the other ends never.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.stop().await;
    assert_eq!(
        tags(&log),
        [
            "bad-complete",
            "bad-failure",
            "cancelled-complete",
            "ok-complete",
            "ok-success"
        ]
    );
    let seen = log.lock().unwrap().clone();
    let by_tag: HashMap<&str, &Seen> = seen.iter().map(|s| (s.tag.as_str(), s)).collect();
    assert_eq!(
        by_tag["ok-success"].parent,
        Some((ok.to_string(), "done".into(), Some("3".into()), None))
    );
    let (id, state, result, error) = by_tag["bad-failure"].parent.clone().unwrap();
    assert_eq!((id, state, result), (bad.to_string(), "dead".into(), None));
    assert_eq!(error.as_deref(), Some("add refused"));
    let (id, state, ..) = by_tag["cancelled-complete"].parent.clone().unwrap();
    assert_eq!((id, state.as_str()), (later.to_string(), "cancelled"));
    // Every hash entry and outbox entry is gone with the jobs.
    for q in ["default", "other"] {
        let keys = c.queue_keys(q).unwrap();
        let (followups, outbox): (u64, u64) = redis::pipe()
            .cmd("EXISTS")
            .arg(&keys.followups)
            .cmd("LLEN")
            .arg(&keys.outbox)
            .query_async(&mut env.raw().await)
            .await
            .unwrap();
        // The dead parent keeps its follow-ups (retried and dying again
        // would trigger the same ids, which the move refuses).
        assert_eq!(outbox, 0, "{q}");
        assert_eq!(followups, u64::from(q == "default"), "{q}");
    }
}

/// A move repeated after a crash between its two steps (the follow-up
/// enqueued, the outbox entry not yet removed) creates nothing more.
#[tokio::test]
async fn a_repeated_move_creates_the_follow_up_once() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let keys = Arc::new(c.queue_keys("default").unwrap());
    c.enqueue_with(
        &Add {
            a: 1,
            b: 1,
            fail: false,
        },
        EnqueueOptions::new().follow_up(
            FollowUp::on_success(&report("once"))
                .unwrap()
                .queue("other"),
        ),
    )
    .await
    .unwrap();
    let rt = c.runtime();
    let jobs = rt
        .fetch(&keys, 1, Duration::from_secs(30), "test-worker")
        .await
        .unwrap();
    let job = &jobs[0];
    let done = spool_client::runtime::Completion {
        keys: Arc::clone(&keys),
        id: job.id.clone(),
        token: job.token.clone(),
        outcome: spool_client::runtime::Outcome::Returned {
            result: Ok("2".into()),
        },
        run: spool_client::runtime::RunFacts::of(job),
    };
    rt.complete(&[done]).await.unwrap();
    let mut raw = env.raw().await;
    let entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&keys.outbox)
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(rt.move_follow_ups(&keys, 100).await.unwrap(), 1);
    // The crash: the entry is back, as if outbox_done never ran.
    let _: () = redis::cmd("RPUSH")
        .arg(&keys.outbox)
        .arg(&entries[0])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(rt.move_follow_ups(&keys, 100).await.unwrap(), 0);
    let other = c.queue_keys("other").unwrap();
    let ready: Vec<String> = redis::cmd("LRANGE")
        .arg(&other.ready)
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(ready.len(), 1);
    assert!(ready[0].contains(r#""parent":{"id":"#), "{}", ready[0]);
    assert!(
        ready[0].contains(r#""state":"done","result":2"#),
        "{}",
        ready[0]
    );
    let outbox: u64 = redis::cmd("LLEN")
        .arg(&keys.outbox)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(outbox, 0);
}

/// Garbage in an outbox is dropped with a warning, not moved; follow-ups
/// with a bad queue or a uniqueness key of their own are refused at
/// enqueue.
#[tokio::test]
async fn bad_follow_ups_are_refused_and_outbox_garbage_dropped() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let keys = c.queue_keys("default").unwrap();
    let rt = c.runtime();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("RPUSH")
        .arg(&keys.outbox)
        .arg("not a follow-up")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(rt.move_follow_ups(&keys, 100).await.unwrap(), 0);
    // Bad follow-ups are refused at enqueue.
    let refused = c
        .enqueue_with(
            &Add {
                a: 1,
                b: 1,
                fail: false,
            },
            EnqueueOptions::new().follow_up(
                FollowUp::on_success(&report("x"))
                    .unwrap()
                    .queue("bad name"),
            ),
        )
        .await;
    assert!(refused.is_err());
    let keyed = FollowUp::on_success(&report("x"))
        .unwrap()
        .with(EnqueueOptions::new().idempotency_key("k"));
    assert!(c
        .enqueue_with(
            &Add {
                a: 1,
                b: 1,
                fail: false
            },
            EnqueueOptions::new().follow_up(keyed)
        )
        .await
        .is_err());
}

/// A chain A → B → C: each link is created only when the one before
/// succeeds and reads its result; a dead link stops the chain.
#[tokio::test]
async fn chains_pass_results_and_stop_at_a_dead_link() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let link = |b: i64, fail_over: i64| FollowUp::on_success(&AddParent { b, fail_over }).unwrap();
    // 1 + 2 = 3, then 3 + 10 = 13, then 13 + 100 = 113.
    let chain = link(10, 1000)
        .then(link(100, 1000).then(FollowUp::on_success(&report("chain-end")).unwrap()));
    c.enqueue_with(
        &Add {
            a: 1,
            b: 2,
            fail: false,
        },
        EnqueueOptions::new().follow_up(chain),
    )
    .await
    .unwrap();
    // The first link dies (3 + 10 > 5): the next is never created.
    let stopped = link(10, 5).then(FollowUp::on_success(&report("never")).unwrap());
    c.enqueue_with(
        &Add {
            a: 1,
            b: 2,
            fail: false,
        },
        EnqueueOptions::new()
            .follow_up(stopped)
            .follow_up(FollowUp::on_complete(&report("first-done")).unwrap()),
    )
    .await
    .unwrap();
    wait_for("the chain's end", Duration::from_secs(15), || async {
        tags(&log).contains(&"chain-end".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.stop().await;
    let seen = log.lock().unwrap().clone();
    let results: Vec<Option<String>> = seen
        .iter()
        .filter_map(|s| s.parent.as_ref().map(|p| p.2.clone()))
        .collect();
    assert!(results.contains(&Some("3".into())), "{seen:?}");
    assert!(results.contains(&Some("13".into())), "{seen:?}");
    let end = seen.iter().find(|s| s.tag == "chain-end").unwrap();
    assert_eq!(end.parent.as_ref().unwrap().2.as_deref(), Some("113"));
    assert!(!tags(&log).contains(&"never".to_owned()), "{seen:?}");
    assert!(tags(&log).contains(&"first-done".to_owned()));
    // The stopped chain's second link is in the dead set, saying why.
    let dead = c
        .admin()
        .list_set("default", spool_client::JobSet::Dead, 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!(dead.items[0].job_type(), "add_parent");
}

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(url: &str, record: &std::path::Path) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
        .args(["--redis-url", url, "--record"])
        .arg(record)
        .args(["--concurrency", "10", "--lease-ms", "800"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// 150 parents with a follow-up each, the worker process killed (SIGKILL) five
/// times while they run: every follow-up is created exactly once (its
/// `enqueued` event appears once) and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_created_once_across_sigkills() {
    let env = TestEnv::start().await;
    let c = &env.client;
    c.admin()
        .configure_events(
            "chaos",
            EventsConfig {
                level: EventLevel::All,
                max_len: 100_000,
            },
        )
        .await
        .unwrap();
    for n in 0..150 {
        let opts = EnqueueOptions::new().follow_up(
            FollowUp::on_success(&Work {
                n: 10_000 + n,
                sleep_ms: 50,
            })
            .unwrap(),
        );
        c.enqueue_with(&Work { n, sleep_ms: 100 }, opts)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("runs");
    let url = env.redis.url();
    let mut child = spawn_worker(&url, &record);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        child = spawn_worker(&url, &record);
    }
    // Every job ran: 150 parents and the 150 follow-ups they created.
    let events = || async {
        c.admin()
            .recent_events(&["chaos"], None, 1_000_000)
            .await
            .unwrap()
    };
    let ids_of = |events: &[spool_client::Event], kind: EventKind| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.job_id.as_ref().map(ToString::to_string))
            .collect()
    };
    wait_for("every job ran", Duration::from_secs(60), || async {
        let all = events().await;
        let created = ids_of(&all, EventKind::Enqueued);
        let succeeded: std::collections::HashSet<String> =
            ids_of(&all, EventKind::Succeeded).into_iter().collect();
        created.len() >= 300 && created.iter().all(|id| succeeded.contains(id))
    })
    .await;
    let all = events().await;
    let follow_up_ids = ids_of(&all, EventKind::Enqueued);
    // The kills hit running jobs (their leases expired and they ran again).
    assert!(
        ids_of(&all, EventKind::Started).len() > 300,
        "no run was interrupted"
    );
    drop(child);
    let mut created: HashMap<&str, u32> = HashMap::new();
    for id in &follow_up_ids {
        *created.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(created.len(), 300, "150 parents and 150 follow-ups");
    assert!(
        created.values().all(|n| *n == 1),
        "a job was created twice: {:?}",
        created.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

/// A job type's follow-ups (`JobOptions::follow_up`) come with every
/// enqueue of it, before the enqueue's own; the dashboard's page of a
/// follow-up links to its parent.
#[tokio::test]
async fn a_job_types_follow_ups_come_with_every_enqueue() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let first = c.enqueue(&Audited { n: 1 }).await.unwrap();
    c.enqueue_with(
        &Audited { n: 2 },
        EnqueueOptions::new().follow_up(
            FollowUp::on_success(&report("own"))
                .unwrap()
                .with(EnqueueOptions::new().delay(Duration::from_secs(3600))),
        ),
    )
    .await
    .unwrap();
    wait_for("three follow-ups", Duration::from_secs(15), || async {
        let t = tags(&log);
        t.iter().filter(|t| *t == "type-level").count() == 2
    })
    .await;
    w.stop().await;
    let seen = log.lock().unwrap().clone();
    assert!(seen
        .iter()
        .any(|s| s.parent.as_ref().is_some_and(|p| p.0 == first.to_string())));
    // The enqueue's own follow-up waits (a delay of an hour): its page links
    // to the parent.
    let scheduled = c
        .admin()
        .list_set("default", spool_client::JobSet::Scheduled, 0, 10)
        .await
        .unwrap();
    assert_eq!(scheduled.items.len(), 1);
    let child = &scheduled.items[0];
    let parent = child.record.as_ref().unwrap().parent.as_ref().unwrap();
    assert_eq!(parent.state, "done");
    let server = spool_tests::dashboard::DashboardServer::start(spool_dashboard::router(
        c.admin(),
        spool_dashboard::DashboardConfig::default(),
    ))
    .await;
    let mut s = spool_tests::dashboard::Session::new(&server.url(), "");
    let page = s.get(&format!("/jobs/default/{}", child.id)).await;
    assert_eq!(page.status, 200);
    assert!(page
        .attrs("dd a", "href")
        .iter()
        .any(|h| h.ends_with(&format!("/jobs/default/{}", parent.id))));
    server.stop().await;
}
