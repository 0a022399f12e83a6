//! Cron: once per tick across processes (with a SIGKILL and restart),
//! Redis's clock over the host's, misfire grace, a DST gap, pause/resume, run-now,
//! refusal of bad entries, listing and forgetting entries.
//!
//! Ticks are verified by reading the enqueued jobs (each carries its entry
//! and tick in `cron`), never by timing how long something took.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use spool_client::{Client, CronEntry, Error, JobRecord};
use spool_tests::handlers::{Noop, Recorder};
use spool_tests::{cron_test_table, wait_for, RunningWorker, TestEnv, CRON_QUEUE};
use spool_worker::testing::Cron;
use spool_worker::CronConfig;

/// Child processes of one test, `SIGKILLed` and reaped when dropped (also
/// when the test panics).
struct Children(Vec<Option<Child>>);

impl Children {
    fn spawn(&mut self, env: &TestEnv, slot: usize, offset_ms: i64) {
        let log = std::fs::File::create(env.redis.dir().join(format!("cron-worker-{slot}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cron-worker"))
            .arg(env.redis.url())
            .arg(offset_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cron-worker");
        if self.0.len() <= slot {
            self.0.resize_with(slot + 1, || None);
        }
        self.0[slot] = Some(child);
    }

    fn kill(&mut self, slot: usize) {
        if let Some(mut child) = self.0[slot].take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for slot in 0..self.0.len() {
            self.kill(slot);
        }
    }
}

/// Every job record in `queue`'s ready list, oldest first.
async fn ready_jobs(env: &TestEnv, queue: &str) -> Vec<JobRecord> {
    let keys = env.client.queue_keys(queue).expect("valid queue name");
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(&keys.ready)
        .arg(0)
        .arg(-1)
        .query_async(&mut env.raw().await)
        .await
        .expect("LRANGE");
    raw.iter()
        .rev()
        .map(|r| JobRecord::from_json(r).expect("cron job record decodes"))
        .collect()
}

/// The tick of each cron job of `entry` in `queue` (panics on a job without one).
async fn ticks_of(env: &TestEnv, queue: &str, entry: &str) -> Vec<i64> {
    ready_jobs(env, queue)
        .await
        .into_iter()
        .filter(|r| r.cron.as_ref().is_some_and(|c| c.entry == entry))
        .map(|r| {
            r.cron
                .and_then(|c| c.tick_ms)
                .expect("scheduled cron job has a tick")
        })
        .collect()
}

/// The names of the cron entries the admin API lists, in its order.
async fn entry_names(client: &Client) -> Vec<String> {
    let entries = client.admin().cron_entries().await.expect("cron entries");
    entries.into_iter().map(|e| e.name).collect()
}

fn scheduler(client: &Client, entries: Vec<CronEntry>) -> Cron {
    Cron::new(client, entries, CronConfig::default()).expect("valid cron table")
}

/// Three processes with the same every-second table, one `SIGKILLed` and
/// restarted mid-run (two of them with host clocks off by minutes): every
/// tick from the first to the last is enqueued exactly once, on time by
/// Redis's clock, and none is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_enqueue_every_tick_exactly_once_across_a_kill() {
    let env = TestEnv::start().await;
    let mut children = Children(Vec::new());
    children.spawn(&env, 0, 0);
    children.spawn(&env, 1, 7 * 60_000);
    children.spawn(&env, 2, -13 * 60_000);

    let entry = "every-second";
    wait_for("first tick enqueued", Duration::from_secs(15), || async {
        !ticks_of(&env, CRON_QUEUE, entry).await.is_empty()
    })
    .await;
    let first = ticks_of(&env, CRON_QUEUE, entry).await[0];
    let upto = |n: i64| {
        let env = &env;
        move || async move {
            ticks_of(env, CRON_QUEUE, entry)
                .await
                .last()
                .is_some_and(|&t| t >= first + n * 1000)
        }
    };
    wait_for("12 ticks", Duration::from_secs(30), upto(12)).await;
    children.kill(0);
    wait_for(
        "3 ticks with one process dead",
        Duration::from_secs(10),
        upto(15),
    )
    .await;
    children.spawn(&env, 0, 0);
    wait_for("32 ticks", Duration::from_secs(40), upto(32)).await;
    drop(children);

    let jobs: Vec<JobRecord> = ready_jobs(&env, CRON_QUEUE).await;
    let mut per_tick: BTreeMap<i64, u32> = BTreeMap::new();
    for job in &jobs {
        let origin = job.cron.as_ref().expect("cron origin");
        assert_eq!(origin.entry, entry);
        let tick = origin.tick_ms.expect("tick");
        *per_tick.entry(tick).or_default() += 1;
        assert_eq!(tick % 1000, 0, "ticks are whole seconds");
        // Enqueued (stamped by Redis) at or after its tick, promptly.
        let late = job.enqueued_ms - tick;
        assert!(
            (0..2_000).contains(&late),
            "tick {tick} enqueued {late} ms after its time"
        );
        assert_eq!(job.job_type, "noop");
        assert_eq!(job.args.get(), r#"{"n":1}"#);
    }
    let dupes: Vec<_> = per_tick.iter().filter(|(_, &n)| n > 1).collect();
    assert!(dupes.is_empty(), "ticks enqueued more than once: {dupes:?}");
    let ticks: Vec<i64> = per_tick.keys().copied().collect();
    let (lo, hi) = (ticks[0], ticks[ticks.len() - 1]);
    let missing: Vec<i64> = (lo / 1000..=hi / 1000)
        .map(|s| s * 1000)
        .filter(|t| !per_tick.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "ticks never enqueued: {missing:?}");
    assert!(ticks.len() >= 30, "only {} ticks", ticks.len());

    let view = env
        .client
        .admin()
        .cron_entry(entry)
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(view.skipped, 0, "{view:?}");
    assert_eq!(view.last_tick_ms, Some(hi));
    let last_id = jobs
        .iter()
        .find(|j| j.cron.as_ref().and_then(|c| c.tick_ms) == Some(hi))
        .unwrap()
        .id
        .clone();
    assert_eq!(view.last_job_id, Some(last_id));
}

/// A process whose host clock is an hour behind still fires on Redis's
/// clock: it sees the skew, and its ticks are whole Redis seconds enqueued
/// (by Redis's TIME) within a second of their time.
#[tokio::test]
async fn ticks_follow_redis_time_not_a_wrong_host_clock() {
    let env = TestEnv::start().await;
    let config = CronConfig {
        host_clock_offset_ms: -3_600_000,
        ..CronConfig::default()
    };
    let table = vec![CronEntry::new("skewed", "* * * * * *", &Noop { n: 2 }).queue("skew")];
    let direct = Cron::new(&env.client, table.clone(), config.clone()).unwrap();
    let report = direct.run_once().await.unwrap();
    assert!(
        (report.host_skew_ms + 3_600_000).abs() < 5_000,
        "the service saw its wrong host clock: {report:?}"
    );
    let next = report.next_tick_ms.expect("a next tick");
    assert!(
        next > report.redis_now_ms && next - report.redis_now_ms <= 1000,
        "{report:?}"
    );

    let worker = spool_tests::handlers::with_fixtures(env.worker(), &Recorder::default())
        .configure(|c| c.cron = config)
        .cron(table[0].clone())
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    wait_for("three ticks", Duration::from_secs(10), || async {
        ticks_of(&env, "skew", "skewed").await.len() >= 3
    })
    .await;
    running.stop().await;
    for job in ready_jobs(&env, "skew").await {
        let tick = job.cron.and_then(|c| c.tick_ms).unwrap();
        assert_eq!(tick % 1000, 0);
        assert!(
            (0..1000).contains(&(job.enqueued_ms - tick)),
            "tick {tick} enqueued at {}",
            job.enqueued_ms
        );
    }
}

/// After an outage, the latest missed tick fires once if it is within the
/// grace period and the older ones are skipped and counted, not replayed;
/// a tick missed by more than the grace period is skipped.
#[tokio::test]
async fn missed_ticks_fire_once_within_grace_and_are_skipped_beyond_it() {
    let env = TestEnv::start().await;
    let within = CronEntry::new("within", "* * * * * *", &Noop { n: 3 }).queue("misfire");
    let beyond = CronEntry::new("beyond", "*/10 * * * * *", &Noop { n: 4 })
        .queue("misfire")
        .grace(Duration::from_secs(2));
    let cron = scheduler(&env.client, vec![within.clone(), beyond.clone()]);
    cron.register().await.unwrap();
    // First pass: new entries start their cursor now and fire nothing.
    let r = cron.run_once().await.unwrap();
    assert_eq!(r.fired, 0);
    // Pick a moment 3 to 8 s past a 10 s tick, so "beyond"'s latest tick is
    // older than its 2 s grace.
    wait_for(
        "a moment 3-8 s past a tick",
        Duration::from_secs(11),
        || async {
            let ms = env.client.redis_time_ms().await.unwrap() % 10_000;
            (3_000..8_000).contains(&ms)
        },
    )
    .await;
    // Simulate every worker down for the last 10 minutes.
    let now = env.client.redis_time_ms().await.unwrap();
    let keys = env.client.queue_keys("misfire").unwrap();
    let mut raw = env.raw().await;
    for name in ["within", "beyond"] {
        let _: () = redis::cmd("HSET")
            .arg(keys.cron_state(name))
            .arg("cursor_ms")
            .arg(now - 600_000)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let r = cron.run_once().await.unwrap();
    assert_eq!(r.fired, 1, "{r:?}");
    assert!(r.skipped >= 599 + 60, "{r:?}");

    let within_ticks = ticks_of(&env, "misfire", "within").await;
    assert_eq!(within_ticks.len(), 1, "one catch-up run, no burst");
    assert!(r.redis_now_ms - within_ticks[0] < 1000);
    assert!(ticks_of(&env, "misfire", "beyond").await.is_empty());

    let admin = env.client.admin();
    let w = admin.cron_entry("within").await.unwrap().unwrap();
    assert!(w.skipped >= 599, "{w:?}");
    assert_eq!(w.last_tick_ms, Some(within_ticks[0]));
    assert_eq!(w.last_skipped_ms, Some(within_ticks[0] - 1000));
    let b = admin.cron_entry("beyond").await.unwrap().unwrap();
    assert_eq!(b.skipped, 60, "{b:?}");
    assert_eq!(b.last_skipped_ms, Some(r.redis_now_ms / 10_000 * 10_000));
    assert_eq!(b.last_run_ms, None);
    // Handled: a second pass right away replays nothing. "within" ticks
    // every second, so a pass that lands in a later second (a slow
    // machine) handles the ticks of those seconds, and only those.
    let again = cron.run_once().await.unwrap();
    let new_seconds = again.redis_now_ms / 1000 - r.redis_now_ms / 1000;
    assert!(
        u64::try_from(new_seconds).unwrap() >= again.fired + again.skipped,
        "{again:?} after {r:?}"
    );
}

/// Issue 9 item 7, through the scripts on a real Redis: Berlin springs
/// forward 2026-03-29 02:00 → 03:00. A pass planned from before the gap to
/// just after it enqueues `*/5 * 2 * * *` once, at 03:00:00, and records
/// the 719 other ticks of the gap as skipped (the end-to-end run had fired
/// one and lost the rest without counting them). `30 2 * * *` fires at
/// 03:00:00 with nothing skipped. Tick times are explicit instants (the
/// protocol takes them from the plan), so the test does not wait for March.
#[tokio::test]
async fn a_dst_gap_fires_once_and_counts_the_merged_ticks_as_skipped() {
    let env = TestEnv::start().await;
    let before = 1_774_745_940_000; // 2026-03-29T01:59:00+01:00
    let gap_end = 1_774_746_000_000; // 2026-03-29T03:00:00+02:00
    let grace = Duration::from_secs(60);
    for (name, expr, merged) in [
        ("every-5s", "*/5 * 2 * * *", 720),
        ("daily", "30 2 * * *", 1),
    ] {
        let entry = CronEntry::new(name, expr, &Noop { n: 10 })
            .timezone("Europe/Berlin")
            .queue("dst");
        let schedule = entry.validate().unwrap();
        env.client
            .runtime()
            .cron_register(std::slice::from_ref(&entry), Duration::from_secs(600))
            .await
            .unwrap();
        let start = schedule.plan(None, before, grace).unwrap();
        env.client
            .runtime()
            .cron_tick(&entry, None, &start)
            .await
            .unwrap();
        let plan = schedule.plan(Some(before), gap_end + 400, grace).unwrap();
        let outcome = env
            .client
            .runtime()
            .cron_tick(&entry, Some(before), &plan)
            .await
            .unwrap();
        assert!(
            matches!(
                outcome,
                spool_client::runtime::cron::CronTickOutcome::Fired(_)
            ),
            "{name}: {outcome:?}"
        );
        assert_eq!(ticks_of(&env, "dst", name).await, [gap_end], "{name}");
        let view = env.client.admin().cron_entry(name).await.unwrap().unwrap();
        assert_eq!(view.last_tick_ms, Some(gap_end), "{name}");
        assert_eq!(view.skipped, merged - 1, "{name}: {view:?}");
        let last_skipped = (merged > 1).then_some(gap_end);
        assert_eq!(view.last_skipped_ms, last_skipped, "{name}");
        // The next tick is the next day's 02:00:00 (or 02:30), not a
        // second run in the hour after the gap.
        assert_eq!(
            schedule.plan(Some(gap_end), gap_end + 3_600_000, grace),
            None
        );
    }
}

/// A paused entry skips its ticks (counted) and shows no next run; resumed,
/// it fires again.
#[tokio::test]
async fn paused_entries_skip_ticks_until_resumed() {
    let env = TestEnv::start().await;
    let entry = CronEntry::new("pausable", "* * * * * *", &Noop { n: 5 }).queue("pause");
    let worker = spool_tests::handlers::with_fixtures(env.worker(), &Recorder::default())
        .cron(entry)
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    wait_for("a tick", Duration::from_secs(10), || async {
        !ticks_of(&env, "pause", "pausable").await.is_empty()
    })
    .await;
    let admin = env.client.admin();
    assert!(admin.cron_pause("pausable").await.unwrap());
    // cron_pause.lua stamps the pause with Redis's clock; pausing again
    // keeps the first stamp.
    let state = env
        .client
        .queue_keys("pause")
        .unwrap()
        .cron_state("pausable");
    let paused_at = || async {
        let v: Option<i64> = redis::cmd("HGET")
            .arg(&state)
            .arg("paused")
            .query_async(&mut env.raw().await)
            .await
            .unwrap();
        v.expect("paused is set")
    };
    let first = paused_at().await;
    assert!((env.client.redis_time_ms().await.unwrap() - first).abs() < 5_000);
    assert!(admin.cron_pause("pausable").await.unwrap());
    assert_eq!(paused_at().await, first);
    let at_pause = ticks_of(&env, "pause", "pausable").await.len();
    let skipped_before = admin.cron_entry("pausable").await.unwrap().unwrap().skipped;
    wait_for(
        "two ticks skipped while paused",
        Duration::from_secs(10),
        || async {
            admin.cron_entry("pausable").await.unwrap().unwrap().skipped >= skipped_before + 2
        },
    )
    .await;
    assert_eq!(ticks_of(&env, "pause", "pausable").await.len(), at_pause);
    let view = admin.cron_entry("pausable").await.unwrap().unwrap();
    assert!(view.paused);
    assert_eq!(view.next_run_ms, None);

    assert!(admin.cron_resume("pausable").await.unwrap());
    wait_for(
        "ticks again after resume",
        Duration::from_secs(10),
        || async { ticks_of(&env, "pause", "pausable").await.len() > at_pause },
    )
    .await;
    assert!(!admin.cron_pause("no-such-entry").await.unwrap());
    assert!(!admin.cron_resume("no-such-entry").await.unwrap());
    running.stop().await;
}

/// "Run now" clicked twice enqueues one job; the second call returns the
/// first job's id. It works on a paused entry; an unknown name is an error.
#[tokio::test]
async fn run_now_twice_enqueues_one_job() {
    let env = TestEnv::start().await;
    let entry = CronEntry::new("monthly", "@monthly", &Noop { n: 6 }).queue("now");
    let cron = scheduler(&env.client, vec![entry]);
    cron.register().await.unwrap();
    let admin = env.client.admin();
    assert!(admin.cron_pause("monthly").await.unwrap());

    let a = admin.cron_run_now("monthly").await.unwrap();
    let b = admin.cron_run_now("monthly").await.unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.id, b.id);
    let jobs = ready_jobs(&env, "now").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, a.id);
    let origin = jobs[0].cron.as_ref().unwrap();
    assert_eq!((origin.entry.as_str(), origin.tick_ms), ("monthly", None));
    assert_eq!(jobs[0].job_type, "noop");

    let view = admin.cron_entry("monthly").await.unwrap().unwrap();
    assert_eq!(view.last_job_id, Some(a.id));
    assert!(view.last_run_ms.is_some());
    assert!(matches!(
        admin.cron_run_now("nope").await,
        Err(Error::UnknownCronEntry(name)) if name == "nope"
    ));
}

/// Bad expressions, unknown zones, bad names and duplicate names are
/// refused when the worker is built, with the entry named.
#[tokio::test]
async fn bad_cron_entries_are_refused_at_build_naming_the_entry() {
    let env = TestEnv::start().await;
    let job = Noop { n: 7 };
    for (entry, needle) in [
        (
            CronEntry::new("bad-expr", "61 * * * *", &job),
            "invalid cron expression",
        ),
        (CronEntry::new("bad-fields", "* * *", &job), "fields"),
        (
            CronEntry::new("bad-zone", "@daily", &job).timezone("Mars/Olympus_Mons"),
            "unknown time zone",
        ),
        (
            CronEntry::new("bad-shortcut", "@fortnightly", &job),
            "unknown shortcut",
        ),
        (
            CronEntry::new("bad:name", "@daily", &job),
            "may only contain",
        ),
    ] {
        let name = entry.name.clone();
        let err = spool_tests::handlers::with_fixtures(env.worker(), &Recorder::default())
            .cron(entry)
            .build()
            .expect_err(&name)
            .to_string();
        assert!(err.contains(&format!("cron entry {name:?}")), "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let err = spool_tests::handlers::with_fixtures(env.worker(), &Recorder::default())
        .cron(CronEntry::new("twice", "@daily", &job))
        .cron(CronEntry::new("twice", "@hourly", &job))
        .build()
        .expect_err("duplicate")
        .to_string();
    assert!(err.contains("\"twice\" is listed twice"), "{err}");
}

/// The listing shows schedule, zone, queue, job and next run; an entry
/// that no process announces any more disappears (and its state is
/// deleted) once its stale period passes.
#[tokio::test]
async fn entries_are_listed_and_forgotten_when_no_worker_has_them() {
    let env = TestEnv::start().await;
    let config = CronConfig {
        refresh_interval: Duration::from_millis(100),
        stale_after: Duration::from_millis(500),
        ..CronConfig::default()
    };
    let keep = CronEntry::new("keep", "0 3 * * *", &Noop { n: 8 })
        .timezone("Europe/Berlin")
        .queue("list");
    let drop_me =
        CronEntry::raw("drop-me", "@every 1h", "noop", serde_json::json!({"n": 9})).queue("list");
    let both = Cron::new(&env.client, vec![keep.clone(), drop_me], config.clone()).unwrap();
    both.register().await.unwrap();
    // Announcing the table registers its queue (cron_register.lua), so the
    // dashboard lists it before the first tick.
    let queues: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&env.client.global_keys().queues)
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(queues.contains(&"list".to_owned()), "{queues:?}");
    both.run_once().await.unwrap(); // creates both entries' state
    let admin = env.client.admin();
    let list = admin.cron_entries().await.unwrap();
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["drop-me", "keep"]);
    let k = &list[1];
    assert_eq!(
        (
            k.schedule.as_str(),
            k.timezone.as_str(),
            k.queue.as_str(),
            k.job_type.as_str()
        ),
        ("0 3 * * *", "Europe/Berlin", "list", "noop")
    );
    assert_eq!(k.args, serde_json::json!({"n": 8}));
    let now = env.client.redis_time_ms().await.unwrap();
    let next = k.next_run_ms.expect("next run");
    assert!(next > now && next - now <= 86_400_000);
    assert_eq!(list[0].args, serde_json::json!({"n": 9}));

    let only_keep = Cron::new(&env.client, vec![keep], config).unwrap();
    wait_for("drop-me forgotten", Duration::from_secs(5), || async {
        let r = only_keep.register().await.unwrap();
        r.contains(&"drop-me".to_owned())
    })
    .await;
    let names = entry_names(&env.client).await;
    assert_eq!(names, ["keep"]);
    let keys = env.client.queue_keys("list").unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.cron_state("drop-me"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(!exists, "state of a forgotten entry is deleted");
}

/// The harness table is what the child processes run (guards the test above).
#[test]
fn the_child_table_is_valid() {
    for e in cron_test_table() {
        e.validate().unwrap();
    }
}

/// Bytes that are not UTF-8 (another writer's, or a hand edit) in one
/// entry's state and in the table of entries stop nothing: the scheduler's
/// pass still runs and fires the other entry, the entry whose cursor was
/// spoiled starts again from now, and the admin API still lists the
/// entries it can read.
#[tokio::test]
async fn bytes_that_are_not_text_in_cron_state_stop_no_entry() {
    let env = TestEnv::start().await;
    let good = CronEntry::raw("good", "@every 1s", "noop", serde_json::json!({"n": 1}))
        .queue("poisoned-cron");
    let bad = CronEntry::raw("bad", "@every 1s", "noop", serde_json::json!({"n": 2}))
        .queue("poisoned-cron");
    let cron = scheduler(&env.client, vec![good, bad]);
    cron.register().await.unwrap();
    cron.run_once().await.unwrap(); // creates both entries' state
    let keys = env.client.queue_keys("poisoned-cron").unwrap();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("HSET")
        .arg(keys.cron_state("bad"))
        .arg("cursor_ms")
        .arg(&b"\xff\xfe"[..])
        .arg(&b"\xc3"[..])
        .arg(&b"\x80"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&env.client.global_keys().cron_entries)
        .arg(&b"\xff"[..])
        .arg(&b"\xfe{"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    // The bad entry's cursor reads as none: it starts again from now and
    // fires from its next tick.
    wait_for("a tick of each entry", Duration::from_secs(5), || async {
        cron.run_once().await.unwrap();
        !ticks_of(&env, "poisoned-cron", "good").await.is_empty()
            && !ticks_of(&env, "poisoned-cron", "bad").await.is_empty()
    })
    .await;
    let names = entry_names(&env.client).await;
    assert_eq!(names, ["bad", "good"]);
    assert!(env
        .client
        .admin()
        .cron_entry("good")
        .await
        .unwrap()
        .is_some());
    cron.register().await.unwrap();
}
