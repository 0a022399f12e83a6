//! Follow-up jobs against a real Redis: created by the script that ends
//! the parent (on success, on failure, on completion), exactly once even
//! when a move is repeated or the worker is killed (SIGKILL) mid-way, reading the
//! parent's id, state and result; chains of follow-ups pass results along
//! and stop at a dead link. Batches: callbacks on success, completion and
//! first death, each created once (1,000 members, 20 worker SIGKILLs),
//! with counts and the members' kept results; chains say where they
//! stopped.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{EnqueueOptions, EventKind, FollowUp, Job, JobOutput, MemberState};
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

/// Succeeds unless `FLAKY_REFUSE` holds its gate (then dies at once).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky {
    gate: u64,
}

impl Job for Flaky {
    const TYPE: &'static str = "flaky";
}

/// The gate `Flaky` jobs refuse (0: none).
static FLAKY_REFUSE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    /// For a batch callback: what it read of its batch.
    callback: Option<spool_client::BatchCallback>,
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
                    callback: None,
                });
                if sum > job.fail_over {
                    return Err(JobError::permanent(format!("{sum} is too much")));
                }
                Ok(sum)
            }
        })
        .register(|_ctx, _job: Audited| async { Ok(()) })
        .register_returning(|_ctx, job: Big| async move {
            let mut text = format!("{}:", job.n);
            text.extend(std::iter::repeat_n('x', job.size));
            Ok(text)
        })
        .register(|_ctx, job: Flaky| async move {
            if FLAKY_REFUSE.load(std::sync::atomic::Ordering::SeqCst) == job.gate {
                return Err(JobError::permanent("flaky refused"));
            }
            Ok(())
        })
        .register(move |ctx: JobContext, job: Report| {
            let log = l2.clone();
            async move {
                log.lock().unwrap().push(Seen {
                    tag: job.tag,
                    parent: parent_of(&ctx),
                    callback: ctx.batch_callback().cloned(),
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

/// Every event of queue `chaos` so far.
async fn chaos_events(c: &spool_client::Client) -> Vec<spool_client::Event> {
    c.admin()
        .recent_events(&["chaos"], None, 1_000_000)
        .await
        .unwrap()
}

/// How many `started` events queue `chaos` has had.
async fn started_count(c: &spool_client::Client) -> usize {
    chaos_events(c)
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Started)
        .count()
}

/// 150 parents with a follow-up each, the worker process killed (SIGKILL) five
/// times while they run: every follow-up is created exactly once (its
/// `enqueued` event appears once) and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_created_once_across_sigkills() {
    let env = TestEnv::start().await;
    let c = &env.client;
    env.all_events("chaos").await;
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
    let events = || chaos_events(c);
    let started = || started_count(c);
    let mut child = spawn_worker(&url, &record);
    for _ in 0..5 {
        // Each kill lands while the new process runs jobs (on a loaded
        // machine it may take longer than the sleep to start one).
        let before = started().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        wait_for(
            "the worker starts a job",
            Duration::from_secs(20),
            || async { started().await > before },
        )
        .await;
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        child = spawn_worker(&url, &record);
    }
    // Every job ran: 150 parents and the 150 follow-ups they created.
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

fn runs_of(log: &Log, tag: &str) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.tag == tag)
        .cloned()
        .collect()
}

/// A batch of 20 members that keep their outcome: success and completion
/// callbacks run once each, after the last member, with the counts and
/// the results in the order the members were added; the death callback
/// never runs; the status says finished.
#[tokio::test]
async fn a_batch_calls_back_once_with_counts_and_results() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let mut batch = spool_client::Batch::new()
        .description("twenty sums")
        .on_success(FollowUp::on_complete(&report("all-done")).unwrap())
        .on_complete(
            FollowUp::on_complete(&report("all-ended"))
                .unwrap()
                .queue("other"),
        )
        .on_death(FollowUp::on_complete(&report("a-death")).unwrap());
    for n in 0..20 {
        batch
            .add_with(
                &Add {
                    a: n,
                    b: 1,
                    fail: false,
                },
                EnqueueOptions::new().keep_outcome(Duration::from_secs(600)),
            )
            .unwrap();
    }
    let id = c.enqueue_batch(batch).await.unwrap();
    assert_eq!(id.home(), "default");
    wait_for("both callbacks", Duration::from_secs(15), || async {
        !runs_of(&log, "all-done").is_empty() && !runs_of(&log, "all-ended").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.stop().await;
    assert_eq!(runs_of(&log, "all-done").len(), 1);
    assert_eq!(runs_of(&log, "all-ended").len(), 1);
    assert!(runs_of(&log, "a-death").is_empty());
    let cb = runs_of(&log, "all-done")[0].callback.clone().unwrap();
    assert_eq!(cb.on, spool_client::BatchOn::Success);
    assert_eq!(cb.id, id);
    assert_eq!((cb.total, cb.done, cb.dead, cb.cancelled), (20, 20, 0, 0));
    let results: Vec<String> = cb
        .results
        .iter()
        .map(|r| r.result.get().to_owned())
        .collect();
    let expected: Vec<String> = (1..=20).map(|n: i64| n.to_string()).collect();
    assert_eq!(
        results, expected,
        "the results come in the order of the members"
    );
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!(status.description, "twenty sums");
    assert_eq!((status.total, status.pending, status.done), (20, 0, 20));
    assert!(status.sealed && status.finished());
    assert_eq!(status.percent_ended(), 100);
    let fired: Vec<(spool_client::BatchOn, bool)> = status
        .callbacks
        .iter()
        .map(|cb| (cb.on, cb.fired))
        .collect();
    assert_eq!(
        fired,
        [
            (spool_client::BatchOn::Success, true),
            (spool_client::BatchOn::Complete, true),
            (spool_client::BatchOn::Death, false)
        ]
    );
    assert_eq!(status.callbacks[1].queue, "other");
    let members = c.batch_members(&id, None, 5, 3).await.unwrap();
    assert_eq!(members.total, 20);
    assert_eq!(members.items.len(), 3);
    assert!(members
        .items
        .iter()
        .all(|m| m.state == MemberState::Done && m.ended_ms.is_some()));
    // The members and their job records name the batch.
    let record = c.status(&members.items[0].id).await.unwrap();
    assert_eq!(record.status, spool_client::Status::Done);
    let listed = c.admin().batches(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
}

/// A member that dies triggers the death callback at once (once), the
/// completion callback when the rest end, and no success; retried from
/// the dead set and done, it moves from dead to done and success follows.
/// A cancelled member counts as cancelled.
#[tokio::test]
async fn a_batch_counts_deaths_cancels_and_retries_from_dead() {
    let env = TestEnv::start().await;
    let log = Log::default();
    FLAKY_REFUSE.store(7, std::sync::atomic::Ordering::SeqCst);
    let w = worker(&env, &log);
    let c = &env.client;
    let mut batch = spool_client::Batch::new()
        .on_success(FollowUp::on_complete(&report("b-success")).unwrap())
        .on_complete(FollowUp::on_complete(&report("b-complete")).unwrap())
        .on_death(FollowUp::on_complete(&report("b-death")).unwrap());
    for gate in [1, 7, 2, 3] {
        batch.add(&Flaky { gate }).unwrap();
    }
    let id = c.enqueue_batch(batch).await.unwrap();
    wait_for("death and completion", Duration::from_secs(15), || async {
        !runs_of(&log, "b-death").is_empty() && !runs_of(&log, "b-complete").is_empty()
    })
    .await;
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!((status.done, status.dead, status.pending), (3, 1, 0));
    let dead_member = status.first_dead.clone().unwrap();
    let death = runs_of(&log, "b-death")[0].callback.clone().unwrap();
    assert_eq!((death.on, death.dead), (spool_client::BatchOn::Death, 1));
    assert_eq!(death.first_dead.as_ref(), Some(&dead_member));
    assert!(runs_of(&log, "b-success").is_empty());
    // Retried from dead, it is done now: success follows, nothing repeats.
    FLAKY_REFUSE.store(0, std::sync::atomic::Ordering::SeqCst);
    c.admin()
        .retry_jobs(
            "default",
            spool_client::JobSet::Dead,
            &[dead_member.as_str()],
        )
        .await
        .unwrap();
    wait_for("success", Duration::from_secs(15), || async {
        !runs_of(&log, "b-success").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!((status.done, status.dead, status.pending), (4, 0, 0));
    assert_eq!(
        (
            runs_of(&log, "b-death").len(),
            runs_of(&log, "b-complete").len(),
            runs_of(&log, "b-success").len()
        ),
        (1, 1, 1)
    );
    // A cancelled member: completion without success.
    let mut batch = spool_client::Batch::new()
        .queue("other")
        .on_success(FollowUp::on_complete(&report("c-success")).unwrap())
        .on_complete(FollowUp::on_complete(&report("c-complete")).unwrap());
    batch.add(&Flaky { gate: 1 }).unwrap();
    batch
        .add_with(
            &Flaky { gate: 2 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .unwrap();
    let id = c.enqueue_batch(batch).await.unwrap();
    assert_eq!(id.home(), "other");
    let later = c.batch_members(&id, None, 1, 1).await.unwrap().items[0]
        .id
        .clone();
    c.cancel(&later).await.unwrap();
    wait_for("completion", Duration::from_secs(15), || async {
        !runs_of(&log, "c-complete").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.stop().await;
    assert!(runs_of(&log, "c-success").is_empty());
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!((status.done, status.cancelled), (1, 1));
    let cancelled = c
        .batch_members(&id, Some(MemberState::Cancelled), 0, 10)
        .await
        .unwrap();
    assert_eq!(cancelled.total, 1);
    assert_eq!(cancelled.items[0].id, later);
}

/// A chain of three passes each result to the next and finishes; a chain
/// whose second link dies stops there, says so, and never creates the
/// third; each link's record names the chain.
#[tokio::test]
async fn chains_report_where_they_stopped() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let chain = spool_client::Chain::new(&Add {
        a: 1,
        b: 2,
        fail: false,
    })
    .unwrap()
    .then(&AddParent {
        b: 10,
        fail_over: 1000,
    })
    .unwrap()
    .then_with(
        &AddParent {
            b: 100,
            fail_over: 1000,
        },
        EnqueueOptions::new()
            .queue("other")
            .keep_outcome(Duration::from_secs(600)),
    )
    .unwrap()
    .description("three sums");
    let ok = c.enqueue_chain(chain).await.unwrap();
    let stops = spool_client::Chain::new(&Add {
        a: 1,
        b: 2,
        fail: false,
    })
    .unwrap()
    .then(&AddParent {
        b: 10,
        fail_over: 5,
    })
    .unwrap()
    .then(&report("never"))
    .unwrap();
    let stopped = c.enqueue_chain(stops).await.unwrap();
    wait_for(
        "the first chain finishes",
        Duration::from_secs(15),
        || async { c.batch_status(&ok).await.unwrap().unwrap().finished() },
    )
    .await;
    wait_for(
        "the second chain stops",
        Duration::from_secs(15),
        || async {
            c.batch_status(&stopped)
                .await
                .unwrap()
                .unwrap()
                .stopped_at
                .is_some()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.stop().await;
    let status = c.batch_status(&ok).await.unwrap().unwrap();
    assert_eq!(status.kind, spool_client::BatchKind::Chain);
    assert_eq!((status.total, status.done, status.stopped_at), (3, 3, None));
    let links = c.batch_members(&ok, None, 0, 10).await.unwrap().items;
    assert_eq!(
        links.iter().map(|l| l.queue.as_str()).collect::<Vec<_>>(),
        ["default", "default", "other"]
    );
    // The last link kept its outcome: 1 + 2 + 10 + 100.
    let last = c.status(&links[2].id).await.unwrap();
    assert_eq!(last.result.unwrap().get(), "113");
    let status = c.batch_status(&stopped).await.unwrap().unwrap();
    let links = c.batch_members(&stopped, None, 0, 10).await.unwrap().items;
    let link_states: Vec<_> = links.iter().map(|l| l.state).collect();
    assert_eq!(
        link_states,
        [MemberState::Done, MemberState::Dead, MemberState::Pending]
    );
    assert_eq!(status.stopped_at.as_ref(), Some(&links[1].id));
    assert!(!status.finished());
    assert!(!tags(&log).contains(&"never".to_owned()));
    // The dead link's record names its chain.
    let dead = c
        .admin()
        .list_set("default", spool_client::JobSet::Dead, 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
}

/// 1,000 members and the worker process killed (SIGKILL) 20 times while
/// they run: the success callback is created once and runs once, after
/// the last member, with the right counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one chaos scenario, step by step
async fn a_batch_of_1000_calls_back_once_across_20_sigkills() {
    let env = TestEnv::start().await;
    let c = &env.client;
    env.all_events("chaos").await;
    let mut batch = spool_client::Batch::new().on_success(
        FollowUp::on_complete(&Work {
            n: 999_999,
            sleep_ms: 0,
        })
        .unwrap(),
    );
    for n in 0..1000 {
        batch.add(&Work { n, sleep_ms: 60 }).unwrap();
    }
    let id = c.enqueue_batch(batch).await.unwrap();
    let callback = c.batch_status(&id).await.unwrap().unwrap().callbacks[0]
        .id
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("runs");
    let url = env.redis.url();
    let events = || chaos_events(c);
    let started = || started_count(c);
    let mut child = spawn_worker(&url, &record);
    for _ in 0..20 {
        // Kill only once the new process has started a job (slow machines).
        let before = started().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        tokio::time::sleep(Duration::from_millis(300)).await;
        while started().await == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        child = spawn_worker(&url, &record);
    }
    wait_for("the callback ran", Duration::from_secs(90), || async {
        events().await.iter().any(|e| {
            e.kind == EventKind::Succeeded
                && e.job_id.as_ref().is_some_and(|j| j.to_string() == callback)
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(child);
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!((status.total, status.done, status.pending), (1000, 1000, 0));
    assert!(status.callbacks[0].fired);
    let all = events().await;
    let of = |kind: EventKind, id: &str| {
        all.iter()
            .filter(|e| e.kind == kind && e.job_id.as_ref().is_some_and(|j| j.to_string() == id))
            .count()
    };
    assert_eq!(of(EventKind::Enqueued, &callback), 1, "created once");
    let starts = all.iter().filter(|e| e.kind == EventKind::Started).count();
    assert!(starts > 1001, "no run was interrupted ({starts} starts)");
    assert_eq!(of(EventKind::Succeeded, &callback), 1, "done once");
    // After the last member: its first start follows every member's success.
    let last_member_done = all
        .iter()
        .filter(|e| {
            e.kind == EventKind::Succeeded
                && e.job_id.as_ref().is_some_and(|j| j.to_string() != callback)
        })
        .map(|e| e.id.clone())
        .max()
        .unwrap();
    let first_start = all
        .iter()
        .filter(|e| {
            e.kind == EventKind::Started
                && e.job_id.as_ref().is_some_and(|j| j.to_string() == callback)
        })
        .map(|e| e.id.clone())
        .min()
        .unwrap();
    assert!(
        first_start > last_member_done,
        "{first_start} after {last_member_done}"
    );
    // Every run of the callback read the full counts.
    let runs = std::fs::read_to_string(&record).unwrap();
    let callback_runs: Vec<&str> = runs.lines().filter(|l| l.contains(" 999999 ")).collect();
    assert!(!callback_runs.is_empty());
    for line in &callback_runs {
        assert!(line.ends_with(" 999999 success 1000 1000 0 0"), "{line}");
    }
    // Members ran: every one of the 1,000 at least once.
    let members: std::collections::HashSet<&str> = runs
        .lines()
        .filter_map(|l| l.split(' ').nth(2))
        .filter(|n| *n != "999999")
        .collect();
    assert_eq!(members.len(), 1000);
}

/// Bad input around batches: a member with a uniqueness key and an
/// over-long chain are refused before Redis; garbage batch reports in an
/// outbox are dropped; an empty batch completes at once; 10,000 members
/// go in three round trips and are all registered.
#[tokio::test]
async fn batches_refuse_bad_input_and_take_ten_thousand() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let mut batch = spool_client::Batch::new();
    batch
        .add_with(&report("x"), EnqueueOptions::new().idempotency_key("k"))
        .unwrap();
    let err = c.enqueue_batch(batch).await.unwrap_err();
    assert!(err.to_string().contains("uniqueness"), "{err}");
    let mut too_long = spool_client::Chain::new(&report("0")).unwrap();
    for n in 0..spool_client::CHAIN_LINKS_MAX {
        too_long = too_long.then(&report(&n.to_string())).unwrap();
    }
    assert!(c.enqueue_chain(too_long).await.is_err());
    assert!(spool_client::BatchId::parse("nope").is_err());
    assert!(c
        .batch_status(&spool_client::BatchId::parse("default~0000").unwrap())
        .await
        .unwrap()
        .is_none());

    // Garbage reports and reports for unknown batches are dropped.
    let keys = c.queue_keys("default").unwrap();
    let mut raw = env.raw().await;
    for entry in [
        "!batch\"default\"nope\"id\"done\"1\"",
        "!batch\"bad queue\"u\"id\"done\"1\"",
        "!batch\"default\"u\"id\"exploded\"1\"",
        "!batch\"default\"u\"id\"done\"-4\"",
        "!batch\"default",
    ] {
        let _: () = redis::cmd("RPUSH")
            .arg(&keys.outbox)
            .arg(entry)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let log = Log::default();
    let w = worker(&env, &log);
    // An empty batch completes at its seal.
    let empty = c
        .enqueue_batch(
            spool_client::Batch::new()
                .on_complete(FollowUp::on_complete(&report("empty")).unwrap()),
        )
        .await
        .unwrap();
    wait_for(
        "the empty batch's callback",
        Duration::from_secs(15),
        || async { !runs_of(&log, "empty").is_empty() },
    )
    .await;
    wait_for("the outbox drained", Duration::from_secs(15), || async {
        let n: u64 = redis::cmd("LLEN")
            .arg(&keys.outbox)
            .query_async(&mut env.raw().await)
            .await
            .unwrap();
        n == 0
    })
    .await;
    w.stop().await;
    assert!(c.batch_status(&empty).await.unwrap().unwrap().finished());

    let mut big = spool_client::Batch::new().queue("bulk");
    for n in 0..10_000 {
        big.add_with(&report(&n.to_string()), EnqueueOptions::new().queue("bulk"))
            .unwrap();
    }
    let id = c.enqueue_batch(big).await.unwrap();
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!(
        (status.total, status.pending, status.sealed),
        (10_000, 10_000, true)
    );
    assert_eq!(c.admin().queue("bulk").await.unwrap().ready, 10_000);
    let page = c.batch_members(&id, None, 9_990, 100).await.unwrap();
    assert_eq!((page.total, page.items.len()), (10_000, 10));
}

/// The Batches page lists a batch with its progress; its page shows the
/// counts, callbacks and members by state, links each member's job page,
/// which links back; a member with follow-ups lists them; a callback's
/// page names its batch. `spool batch show` and `list` print the same;
/// bad ids are a 400 (page) or a usage error (CLI), unknown ones a 404 or
/// exit 1.
#[tokio::test]
async fn batches_show_on_the_dashboard_and_the_cli() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let log = Log::default();
    let w = worker(&env, &log);
    let mut batch = spool_client::Batch::new()
        .description("page test")
        .on_complete(FollowUp::on_complete(&report("page-cb")).unwrap());
    batch.add(&Flaky { gate: 1 }).unwrap();
    batch
        .add_with(
            &Flaky { gate: 2 },
            EnqueueOptions::new()
                .delay(Duration::from_secs(3600))
                .follow_up(FollowUp::on_success(&report("child")).unwrap()),
        )
        .unwrap();
    let id = c.enqueue_batch(batch).await.unwrap();
    wait_for("one member done", Duration::from_secs(15), || async {
        c.batch_status(&id).await.unwrap().unwrap().done == 1
    })
    .await;
    let server = spool_tests::dashboard::DashboardServer::start(spool_dashboard::router(
        c.admin(),
        spool_dashboard::DashboardConfig::default(),
    ))
    .await;
    let mut s = spool_tests::dashboard::Session::new(&server.url(), "");
    let list = s.get("/batches").await;
    assert_eq!(list.status, 200);
    let href = format!("/batches/{}", id.as_str());
    assert!(list
        .attrs("td a", "href")
        .iter()
        .any(|h| h.ends_with(&href)));
    assert!(list.texts("td").iter().any(|t| t == "page test"));
    let page = s.get(&href).await;
    assert_eq!(page.status, 200);
    let text = page.texts("dd").join(" ");
    assert!(
        text.contains("1 done, 0 dead, 0 cancelled, 1 pending of 2"),
        "{text}"
    );
    let members = page.attrs("table.members a", "href");
    assert_eq!(members.len(), 2);
    let pending = s.get(&format!("{href}?state=pending")).await;
    let pending_links = pending.attrs("table.members a", "href");
    assert_eq!(pending_links.len(), 1);
    // The pending member's page links to its batch and lists its follow-up.
    let member = s
        .get(pending_links[0].trim_start_matches(&server.url()))
        .await;
    assert_eq!(member.status, 200);
    assert!(member
        .attrs("dd a", "href")
        .iter()
        .any(|h| h.ends_with(&href)));
    assert!(member
        .texts("dd a")
        .iter()
        .any(|t| t.starts_with("on success: report")));
    for (path, want) in [
        (format!("{href}?state=bogus"), 400),
        ("/batches/not-an-id".to_owned(), 400),
        (
            "/batches/default~00000000-0000-7000-8000-000000000000".to_owned(),
            404,
        ),
        (format!("/api/batches/{}", id.as_str()), 200),
        ("/api/batches".to_owned(), 200),
    ] {
        assert_eq!(s.get(&path).await.status, want, "{path}");
    }
    // Cancel the pending member: the callback runs; its page names the batch.
    let later = c
        .batch_members(&id, Some(MemberState::Pending), 0, 1)
        .await
        .unwrap()
        .items[0]
        .id
        .clone();
    c.cancel(&later).await.unwrap();
    wait_for("the callback", Duration::from_secs(15), || async {
        !runs_of(&log, "page-cb").is_empty()
    })
    .await;
    cli_shows_the_batch(&env, &id).await;
    w.stop().await;
    server.stop().await;
}

/// `spool batch show` and `list` on the finished batch of
/// `batches_show_on_the_dashboard_and_the_cli`; bad and unknown ids.
async fn cli_shows_the_batch(env: &TestEnv, id: &spool_client::BatchId) {
    let (code, out, _) =
        spool_tests::dashboard::spool_cli(env, &["batch", "show", id.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("done 1, dead 0, cancelled 1, pending 0 of 2"),
        "{out}"
    );
    assert!(out.contains("callback     on complete: report"), "{out}");
    assert!(out.contains("cancelled"), "{out}");
    let (code, out, _) = spool_tests::dashboard::spool_cli(
        env,
        &["batch", "show", id.as_str(), "--json", "--state", "done"],
    )
    .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["batch"]["total"], 2);
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
    let (code, out, _) = spool_tests::dashboard::spool_cli(env, &["batch", "list"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains(id.as_str()) && out.contains("finished"),
        "{out}"
    );
    let (code, _, err) = spool_tests::dashboard::spool_cli(env, &["batch", "show", "nope"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = spool_tests::dashboard::spool_cli(
        env,
        &[
            "batch",
            "show",
            "default~00000000-0000-7000-8000-000000000000",
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
    let (code, _, _) =
        spool_tests::dashboard::spool_cli(env, &["batch", "show", id.as_str(), "--state", "weird"])
            .await;
    assert_eq!(code, 2);
}

/// Members an operator deletes before they end (one by id from ready, a
/// scheduled one, the whole ready list cleared) count as cancelled, so the
/// batch still completes, once.
#[tokio::test]
async fn deleted_members_count_as_cancelled() {
    let env = TestEnv::start().await;
    let c = &env.client;
    let admin = c.admin();
    let mut batch = spool_client::Batch::new()
        .queue("default")
        .on_complete(FollowUp::on_complete(&report("deleted-cb")).unwrap());
    for gate in 0..4 {
        batch
            .add_with(&Flaky { gate }, EnqueueOptions::new().queue("held"))
            .unwrap();
    }
    batch
        .add_with(
            &Flaky { gate: 9 },
            EnqueueOptions::new()
                .queue("held")
                .delay(Duration::from_secs(3600)),
        )
        .unwrap();
    let id = c.enqueue_batch(batch).await.unwrap();
    let members = c.batch_members(&id, None, 0, 10).await.unwrap().items;
    assert!(admin
        .delete_ready("held", members[0].id.as_str())
        .await
        .unwrap());
    assert_eq!(
        admin
            .delete_jobs(
                "held",
                spool_client::JobSet::Scheduled,
                &[members[4].id.as_str()]
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(admin.clear_ready("held").await.unwrap(), 3);
    // A worker serving `held` (nothing left to run there) moves the reports.
    let log = Log::default();
    let w = RunningWorker::start(
        env.worker()
            .queue("held", 1)
            .queue("default", 1)
            .register(move |ctx: JobContext, job: Report| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(Seen {
                        tag: job.tag,
                        parent: None,
                        callback: ctx.batch_callback().cloned(),
                    });
                    Ok(())
                }
            })
            .build()
            .unwrap(),
    );
    wait_for("the batch completes", Duration::from_secs(15), || async {
        c.batch_status(&id).await.unwrap().unwrap().finished()
    })
    .await;
    w.stop().await;
    let status = c.batch_status(&id).await.unwrap().unwrap();
    assert_eq!((status.cancelled, status.pending), (5, 0));
    assert!(status.callbacks[0].fired);
}

/// Returns `size` bytes of text (a big result).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Big {
    n: u64,
    size: usize,
}

impl Job for Big {
    const TYPE: &'static str = "big";
}

impl JobOutput for Big {
    type Output = String;
}

/// A chord whose results pass 256 KiB: the callback says they were
/// omitted, and `batch_results` reads every one, in order.
#[tokio::test]
async fn a_chord_too_big_to_carry_reads_its_results_from_the_batch() {
    let env = TestEnv::start().await;
    let log = Log::default();
    let w = worker(&env, &log);
    let c = &env.client;
    let mut batch =
        spool_client::Batch::new().on_success(FollowUp::on_complete(&report("big-cb")).unwrap());
    for n in 0..300 {
        batch
            .add_with(
                &Big { n, size: 1000 },
                EnqueueOptions::new().keep_outcome(Duration::from_secs(600)),
            )
            .unwrap();
    }
    let id = c.enqueue_batch(batch).await.unwrap();
    wait_for("the callback", Duration::from_secs(30), || async {
        !runs_of(&log, "big-cb").is_empty()
    })
    .await;
    w.stop().await;
    let cb = runs_of(&log, "big-cb")[0].callback.clone().unwrap();
    assert!(cb.results_omitted);
    assert!(cb.results.is_empty());
    assert_eq!(cb.done, 300);
    let results = c.batch_results(&id).await.unwrap();
    assert_eq!(results.len(), 300);
    let firsts: Vec<String> = results
        .iter()
        .map(|r| serde_json::from_str::<String>(r.result.get()).unwrap())
        .map(|text| text.split(':').next().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..300).map(|n: u64| n.to_string()).collect();
    assert_eq!(firsts, expected);
}
