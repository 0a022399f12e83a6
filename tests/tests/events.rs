//! Job events against a real Redis: every transition is written once and in
//! order by the script that makes it, levels and the cap hold, readers
//! resume and merge queues, operator actions name their actor, a consumer
//! group loses no event when a member is killed (SIGKILL), and garbage in a stream
//! or in the settings is read without failing.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use spool_client::{Event, EventKind, EventLevel, EventsConfig, JobSet};
use spool_tests::dashboard::spool_cli;
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};

fn level(level: EventLevel, max_len: u64) -> EventsConfig {
    EventsConfig { level, max_len }
}

/// Every event of `queue` still in its stream, oldest first.
async fn all_events(env: &TestEnv, queue: &str) -> Vec<Event> {
    let mut out = env
        .client
        .admin()
        .recent_events(&[queue], None, 100_000)
        .await
        .unwrap();
    out.reverse();
    out
}

/// The kinds of job `id`'s events, in order.
fn kinds_of(events: &[Event], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.job_id.as_ref().is_some_and(|j| j.as_str() == id))
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

async fn stream_len(env: &TestEnv, queue: &str) -> u64 {
    let keys = env.client.queue_keys(queue).unwrap();
    redis::cmd("XLEN")
        .arg(&keys.events)
        .query_async(&mut env.raw().await)
        .await
        .unwrap()
}

/// At level all, each job's events are exactly its transitions, in order,
/// with attempts, errors and the operator's name: a job that succeeds, one
/// that fails once, one that dies, is retried by an operator and dies
/// again, and a scheduled one an operator cancels.
#[tokio::test]
async fn every_transition_appears_once_and_in_order_per_job() {
    let env = TestEnv::start().await;
    let admin = env.client.admin().with_actor("ada");
    admin
        .configure_events("default", level(EventLevel::All, 10_000))
        .await
        .unwrap();
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let c = &env.client;
    let ok = c.enqueue(&Scripted::ok("ok")).await.unwrap();
    let flaky = c
        .enqueue(&Scripted {
            fail_times: 1,
            ..Scripted::ok("flaky")
        })
        .await
        .unwrap();
    let doomed = c
        .enqueue(&Scripted {
            fail_times: u32::MAX,
            permanent: true,
            ..Scripted::ok("doomed")
        })
        .await
        .unwrap();
    let later = c
        .enqueue_with(
            &Noop { n: 1 },
            spool_client::EnqueueOptions::new()
                .delay(Duration::from_secs(3600))
                .keep_outcome(Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .id;
    wait_for(
        "ok, flaky done and doomed dead",
        Duration::from_secs(10),
        || async {
            let e = all_events(&env, "default").await;
            kinds_of(&e, ok.as_str()).last().map(String::as_str) == Some("succeeded")
                && kinds_of(&e, flaky.as_str()).last().map(String::as_str) == Some("succeeded")
                && kinds_of(&e, doomed.as_str()).last().map(String::as_str) == Some("dead")
        },
    )
    .await;
    assert_eq!(
        admin
            .retry_jobs("default", JobSet::Dead, &[doomed.as_str()])
            .await
            .unwrap(),
        1
    );
    admin.cancel(&later).await.unwrap();
    wait_for("doomed dead again", Duration::from_secs(10), || async {
        kinds_of(&all_events(&env, "default").await, doomed.as_str()).len() == 6
    })
    .await;
    worker.stop().await;

    let events = all_events(&env, "default").await;
    assert_eq!(events[0].kind, EventKind::EventsConfigured);
    assert_eq!(events[0].actor.as_deref(), Some("ada"));
    assert_eq!(
        kinds_of(&events, ok.as_str()),
        ["enqueued", "started", "succeeded"]
    );
    assert_eq!(
        kinds_of(&events, flaky.as_str()),
        ["enqueued", "started", "retrying", "started", "succeeded"]
    );
    assert_eq!(
        kinds_of(&events, doomed.as_str()),
        ["enqueued", "started", "dead", "retried", "started", "dead"]
    );
    assert_eq!(
        kinds_of(&events, later.as_str()),
        ["scheduled", "cancelled"]
    );

    check_details(&events, flaky.as_str(), doomed.as_str(), later.as_str());
    // The operator's name is on the job's timeline too.
    let status = c.status(&later).await.unwrap();
    assert!(
        status
            .history
            .iter()
            .any(|h| h.state == "cancelled" && h.worker.as_deref() == Some("ada")),
        "{:?}",
        status.history
    );
}

/// The attempts, errors, types and actors of the events of
/// `every_transition_appears_once_and_in_order_per_job`.
fn check_details(events: &[Event], flaky: &str, doomed: &str, later: &str) {
    let of = |id: &str, kind: EventKind| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.kind == kind && e.job_id.as_ref().is_some_and(|j| j.as_str() == id))
            .collect()
    };
    let flaky_runs: Vec<Option<u32>> = of(flaky, EventKind::Started)
        .iter()
        .map(|e| e.attempt)
        .collect();
    assert_eq!(flaky_runs, [Some(1), Some(2)]);
    let retrying = of(flaky, EventKind::Retrying)[0];
    assert_eq!(retrying.error.as_deref(), Some("scripted failure on run 1"));
    assert_eq!(retrying.job_type.as_deref(), Some("scripted"));
    assert_eq!(of(flaky, EventKind::Succeeded)[0].attempt, Some(2));
    let retried = of(doomed, EventKind::Retried)[0];
    assert_eq!(retried.actor.as_deref(), Some("ada"));
    assert_eq!(retried.selection.as_deref(), Some("1 selected in dead"));
    assert_eq!(of(doomed, EventKind::Dead)[1].attempt, Some(2));
    let cancelled = of(later, EventKind::Cancelled)[0];
    assert_eq!(cancelled.actor.as_deref(), Some("ada"));
    assert_eq!(cancelled.job_type.as_deref(), Some("noop"));
    // Stream order is Redis's clock order.
    assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

/// A queue never configured writes terminal events and operator actions
/// only; `off` writes nothing (its own change is the last event).
#[tokio::test]
async fn levels_write_what_they_say() {
    let env = TestEnv::start().await;
    assert_eq!(
        env.client.admin().events_config("default").await.unwrap(),
        EventsConfig::default()
    );
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let admin = env.client.admin().with_actor("ops");
    let ok = env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_for("a succeeded event", Duration::from_secs(10), || async {
        !all_events(&env, "default").await.is_empty()
    })
    .await;
    admin.pause("default").await.unwrap();
    admin.resume("default").await.unwrap();
    let kinds: Vec<String> = all_events(&env, "default")
        .await
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(kinds, ["succeeded", "paused", "resumed"]);
    assert_eq!(
        kinds_of(&all_events(&env, "default").await, ok.as_str()),
        ["succeeded"]
    );

    admin
        .configure_events("default", level(EventLevel::Off, 1000))
        .await
        .unwrap();
    let quiet = env.client.enqueue(&Noop { n: 2 }).await.unwrap();
    wait_for("the job ran", Duration::from_secs(10), || async {
        rec.count("noop-2") == 1
    })
    .await;
    admin.pause("default").await.unwrap();
    worker.stop().await;
    let events = all_events(&env, "default").await;
    assert_eq!(events.last().unwrap().kind, EventKind::EventsConfigured);
    assert_eq!(
        events.last().unwrap().selection.as_deref(),
        Some("events=off max=1000")
    );
    assert!(kinds_of(&events, quiet.as_str()).is_empty());
    assert_eq!(
        admin.events_config("default").await.unwrap(),
        level(EventLevel::Off, 1000)
    );
}

/// The stream stays near its cap (in entries) however many jobs run
/// (approximate trimming: at most one stream node, 100 entries, over).
#[tokio::test]
async fn the_cap_holds() {
    let env = TestEnv::start().await;
    env.client
        .admin()
        .configure_events("default", level(EventLevel::All, 100))
        .await
        .unwrap();
    let jobs: Vec<Noop> = (0..1500).map(|n| Noop { n }).collect();
    env.client.enqueue_bulk(&jobs).await.unwrap();
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    wait_for("1500 jobs done", Duration::from_secs(30), || async {
        rec.total() == 1500
    })
    .await;
    worker.stop().await;
    let len = stream_len(&env, "default").await;
    assert!((100..=200).contains(&len), "stream length {len}");
    // The newest events are the ones kept.
    let newest = all_events(&env, "default").await;
    assert_eq!(newest.last().unwrap().kind, EventKind::Succeeded);
}

/// A reader merges queues, resumes after an event id, and as a stream
/// yields events as they are written.
#[tokio::test]
async fn readers_merge_queues_and_resume_after_an_id() {
    let env = TestEnv::start().await;
    let admin = env.client.admin().with_actor("ops");
    admin.pause("a").await.unwrap();
    admin.pause("b").await.unwrap();
    let mut reader = env
        .client
        .events()
        .queues(&["a", "b"])
        .unwrap()
        .from_start();
    let first = reader.next_batch().await.unwrap();
    let queues: HashSet<&str> = first.iter().map(|e| e.queue.as_str()).collect();
    assert_eq!(queues, HashSet::from(["a", "b"]));
    assert!(first.iter().all(|e| e.kind == EventKind::Paused));

    let resume_from = first.iter().map(|e| e.id.clone()).max().unwrap();
    admin.resume("b").await.unwrap();
    let mut after = env
        .client
        .events()
        .queues(&["a", "b"])
        .unwrap()
        .after(&resume_from)
        .unwrap();
    let next = after.next_batch().await.unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(
        (next[0].queue.as_str(), &next[0].kind),
        ("b", &EventKind::Resumed)
    );

    // From now, as a stream: only what happens after it starts. Every
    // registered queue is read (a, b and the one paused next).
    let mut stream = Box::pin(env.client.events().stream());
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(e) = stream.next().await {
            got.push(e.unwrap());
            if got.len() == 2 {
                return got;
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.resume("a").await.unwrap();
    admin.pause("c").await.unwrap();
    // `c` is new: a reader of every queue finds it within its refresh.
    tokio::time::sleep(Duration::from_secs(6)).await;
    admin.resume("c").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.queue.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(seen[0], ("a", "resumed"));
    assert!(
        seen[1] == ("c", "paused") || seen[1] == ("c", "resumed"),
        "{seen:?}"
    );

    assert!(env.client.events().after("not-an-id").is_err());
    assert!(env.client.events().queues(&["bad name"]).is_err());
}

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn recorded(path: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// A consumer group member killed (SIGKILL) mid-batch: the events it read and did
/// not acknowledge are claimed and processed by another member; every event
/// is processed, none is left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_group_consumer_loses_no_event() {
    let env = TestEnv::start().await;
    let jobs: Vec<Noop> = (0..300).map(|n| Noop { n }).collect();
    env.client.enqueue_bulk(&jobs).await.unwrap();
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    wait_for("300 succeeded events", Duration::from_secs(20), || async {
        all_events(&env, "default").await.len() == 300
    })
    .await;
    worker.stop().await;
    let expected: HashSet<String> = all_events(&env, "default")
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("processed");
    let child = Command::new(env!("CARGO_BIN_EXE_event-consumer"))
        .args(["--redis-url", &env.redis.url(), "--record"])
        .arg(&record)
        .args([
            "--group",
            "billing",
            "--consumer",
            "doomed",
            "--batch",
            "50",
        ])
        .args(["--sleep-ms", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    wait_for(
        "the consumer processed some",
        Duration::from_secs(20),
        || async { recorded(&record).len() >= 70 },
    )
    .await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let before_kill = recorded(&record).len();
    assert!(before_kill < 300, "the consumer finished before the kill");
    // What the killed member left pending: whole entries (a batch of acks
    // each), delivered again as a whole.
    let keys = env.client.queue_keys("default").unwrap();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&keys.events)
        .arg("billing")
        .arg("-")
        .arg("+")
        .arg(1000)
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    let pending_entries: HashSet<String> = pending.into_iter().map(|p| p.0).collect();
    assert!(!pending_entries.is_empty());

    let mut survivor = env
        .client
        .events()
        .from_start()
        .group("billing", "survivor")
        .unwrap()
        .claim_after(Duration::from_millis(300));
    let mut processed: HashMap<String, u32> = HashMap::new();
    for (_, id) in recorded(&record) {
        *processed.entry(id).or_default() += 1;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !expected.iter().all(|id| processed.contains_key(id)) {
        assert!(tokio::time::Instant::now() < deadline, "events lost");
        let batch = survivor.next_batch().await.unwrap();
        for e in &batch {
            *processed.entry(e.id.clone()).or_default() += 1;
        }
        survivor.ack(&batch).await.unwrap();
    }
    // Twice at most, and only for events of the entries the killed member
    // left pending; once for the rest.
    for (id, n) in &processed {
        let entry = id.split_once('.').map_or(id.as_str(), |(e, _)| e);
        assert!(
            *n == 1 || (*n == 2 && pending_entries.contains(entry)),
            "{id} processed {n} times"
        );
    }
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&keys.events)
        .arg("billing")
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert_eq!(pending.first(), Some(&redis::Value::Int(0)), "{pending:?}");
}

/// Entries another writer put in a stream (unknown kinds, missing fields,
/// bytes that are not UTF-8) and nonsense in the settings are read without
/// failing; the defaults stand in for a bad setting.
#[tokio::test]
async fn garbage_in_streams_and_settings_is_read_without_failing() {
    let env = TestEnv::start().await;
    let keys = env.client.queue_keys("default").unwrap();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("HSET")
        .arg(&keys.settings)
        .arg("events")
        .arg("loud")
        .arg("events_max")
        .arg("-5")
        .query_async(&mut raw)
        .await
        .unwrap();
    env.client
        .admin()
        .register_queues(&["default"])
        .await
        .unwrap();
    for fields in [
        vec![b"event".to_vec(), b"exploded".to_vec()],
        vec![b"x".to_vec(), vec![0xff, 0xfe]],
        vec![
            b"event".to_vec(),
            b"dead".to_vec(),
            b"attempt".to_vec(),
            b"-1".to_vec(),
        ],
    ] {
        let _: String = redis::cmd("XADD")
            .arg(&keys.events)
            .arg("*")
            .arg(fields)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let read = env.client.events().from_start().next_batch().await.unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].kind, EventKind::Other("exploded".into()));
    assert_eq!(read[1].kind, EventKind::Other(String::new()));
    assert_eq!(read[2].kind, EventKind::Dead);
    assert_eq!(read[2].attempt, None);
    // The bad setting reads as the default level: the job's end is written.
    assert_eq!(
        env.client.admin().events_config("default").await.unwrap(),
        EventsConfig::default()
    );
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    wait_for("a succeeded event", Duration::from_secs(10), || async {
        stream_len(&env, "default").await == 4
    })
    .await;
    worker.stop().await;
    // A cap outside the range and an unknown level are refused.
    let admin = env.client.admin();
    assert!(admin
        .configure_events("default", level(EventLevel::All, 5))
        .await
        .is_err());
    assert!(EventLevel::parse("loud").is_err());
}

/// `spool events` prints the latest events (filtered by kind, job type or
/// queue; JSON lines with --json) and names the CLI's user in the actions
/// it takes.
#[tokio::test]
async fn cli_prints_events_and_names_its_user() {
    let env = TestEnv::start().await;
    let (code, _, err) = spool_cli(&env, &["pause", "mail", "--create"]).await;
    assert_eq!(code, 0, "{err}");
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let id = env.client.enqueue(&Noop { n: 7 }).await.unwrap();
    wait_for("done", Duration::from_secs(10), || async {
        rec.count("noop-7") == 1
    })
    .await;
    worker.stop().await;

    let (code, out, err) = spool_cli(&env, &["events"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("mail") && lines[0].contains("paused"),
        "{out}"
    );
    assert!(lines[0].contains("by=cli:"), "{out}");
    assert!(
        lines[1].contains("succeeded") && lines[1].contains(id.as_str()),
        "{out}"
    );

    let (_, out, _) = spool_cli(&env, &["events", "--type", "noop", "--json"]).await;
    let parsed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 1, "{out}");
    assert_eq!(parsed[0]["kind"], "succeeded");
    assert_eq!(parsed[0]["job_id"], id.as_str());
    let (_, out, _) = spool_cli(&env, &["events", "--queue", "mail", "--type", "paused"]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, _, _) = spool_cli(&env, &["events", "--queue", "bad name"]).await;
    assert_ne!(code, 0);
}

/// The dashboard names its basic-auth user in the actions it takes; the
/// Events page lists them (filtered by queue and kind) with links to the
/// jobs, `/api/events` gives them as JSON, and a job page's timeline says
/// who retried the job.
#[tokio::test]
async fn dashboard_actions_name_their_user_and_the_events_page_lists_them() {
    use spool_tests::dashboard::{DashboardServer, Session};
    let env = TestEnv::start().await;
    let config =
        spool_dashboard::DashboardConfig::default().auth(spool_dashboard::Auth::basic("ada", "pw"));
    let server = DashboardServer::start(spool_dashboard::router(env.client.admin(), config)).await;
    let mut s = Session::new(&server.url(), "").with_auth("Basic YWRhOnB3");
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let doomed = env
        .client
        .enqueue(&Scripted {
            fail_times: u32::MAX,
            permanent: true,
            ..Scripted::ok("doomed")
        })
        .await
        .unwrap();
    wait_for("dead", Duration::from_secs(10), || async {
        env.client.admin().queue("default").await.unwrap().dead == 1
    })
    .await;
    worker.stop().await;

    assert_eq!(s.get("/dead").await.status, 200);
    let token = s.csrf.clone().unwrap();
    let r = s
        .post(
            "/dead/actions",
            &[
                ("csrf", token.as_str()),
                ("queue", "default"),
                ("retry_id", doomed.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = s
        .post("/queues/default/pause", &[("csrf", token.as_str())])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    let page = s.get("/events").await;
    assert_eq!(page.status, 200);
    let rows = page.texts("table.events tbody tr");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[0].contains("paused") && rows[0].contains("dashboard:ada"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("retried") && rows[1].contains("dashboard:ada"),
        "{rows:?}"
    );
    assert!(
        rows[2].contains("dead") && rows[2].contains("scripted"),
        "{rows:?}"
    );
    let job_href = format!("/jobs/default/{doomed}");
    assert!(page
        .attrs("table.events a", "href")
        .iter()
        .any(|h| h.ends_with(&job_href)));
    let filtered = s.get("/events?queue=default&type=retried").await;
    assert_eq!(filtered.texts("table.events tbody tr").len(), 1);
    assert_eq!(s.get("/events?queue=bad%20name").await.status, 400);

    let api = s.get("/api/events?type=paused").await;
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(json[0]["kind"], "paused");
    assert_eq!(json[0]["actor"], "dashboard:ada");

    let job = s.get(&job_href).await;
    let timeline = job.texts("table.timeline tbody tr");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("ready") && t.contains("by dashboard:ada")),
        "{timeline:?}"
    );
    server.stop().await;
}
