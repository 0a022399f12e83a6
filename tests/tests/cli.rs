//! The `spool` CLI against a real Redis: every command, its output, and the
//! exit codes scripts rely on (0 ok, 1 operational error, 2 usage error).
//! Most tests call `spool_dashboard::cli::run` in-process; one runs the
//! real binary.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use spool_client::JobSet;
use spool_dashboard::cli::{run, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use spool_tests::dashboard::spool_cli;
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv, TestRedis};

/// Makes `n` dead jobs named `{prefix}-{i}` with a real worker.
async fn make_dead(env: &TestEnv, prefix: &str, n: usize) -> Vec<String> {
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let before = env.client.admin().queue("default").await.unwrap().dead;
    let mut ids = Vec::new();
    for i in 0..n {
        let job = Scripted {
            fail_times: u32::MAX,
            permanent: true,
            ..Scripted::ok(&format!("{prefix}-{i}"))
        };
        ids.push(env.client.enqueue(&job).await.unwrap().to_string());
    }
    let admin = env.client.admin();
    wait_for("dead", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().dead == before + n as u64
    })
    .await;
    worker.stop().await;
    ids
}

/// `stats` prints a table, `stats --json` parseable totals; `queues` lists queues.
#[tokio::test]
async fn stats_and_queues_report_counts() {
    let env = TestEnv::start().await;
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    env.client
        .enqueue_in(&Noop { n: 2 }, Duration::from_secs(60))
        .await
        .unwrap();
    let (code, out, _) = spool_cli(&env, &["stats"]).await;
    assert_eq!(code, EXIT_OK);
    assert!(
        out.lines()
            .any(|l| l.starts_with("ready") && l.ends_with(" 1")),
        "{out}"
    );
    let (code, out, _) = spool_cli(&env, &["stats", "--json"]).await;
    assert_eq!(code, EXIT_OK);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["ready"].as_u64(), v["scheduled"].as_u64()),
        (Some(1), Some(1))
    );
    let (code, out, _) = spool_cli(&env, &["queues"]).await;
    assert_eq!(code, EXIT_OK);
    assert!(out.lines().nth(1).unwrap().starts_with("default"), "{out}");
    let (_, out, _) = spool_cli(&env, &["queues", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "default");
}

/// `dead list` shows dead jobs (filterable); `dead retry ID` moves one once;
/// `dead delete --type` deletes by filter; `dead retry --all` moves the rest.
#[tokio::test]
async fn dead_list_retry_and_delete() {
    let env = TestEnv::start().await;
    let ids = make_dead(&env, "job", 3).await;
    let (code, out, _) = spool_cli(&env, &["dead", "list"]).await;
    assert_eq!(code, EXIT_OK);
    for id in &ids {
        assert!(out.contains(id.as_str()), "{out}");
    }
    let (_, out, _) = spool_cli(&env, &["dead", "list", "--grep", "JOB-1", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], ids[1].as_str());

    let (code, out, _) = spool_cli(&env, &["dead", "retry", &ids[0]]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "retried 1 jobs"));
    let (code, _, err) = spool_cli(&env, &["dead", "retry", &ids[0]]).await;
    assert_eq!(code, EXIT_FAILURE, "second retry of the same id");
    assert!(
        err.starts_with("error: 1 of 1 ids were not in a dead set"),
        "{err}"
    );
    let admin = env.client.admin();
    assert_eq!(admin.queue("default").await.unwrap().ready, 1);

    let (code, out, _) = spool_cli(&env, &["dead", "delete", "--grep", "job-2", "--yes"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "deleted 1 jobs"));
    let (code, out, _) = spool_cli(&env, &["dead", "retry", "--all", "--queue", "default"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "retried 1 jobs"));
    let q = admin.queue("default").await.unwrap();
    assert_eq!((q.dead, q.ready), (0, 2));
    let page = admin
        .list_set("default", JobSet::Dead, 0, 10)
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

/// `pause` and `resume` flip the queue's paused flag; a queue Spool does
/// not know is refused (exit 2, nothing written) unless `pause --create`.
#[tokio::test]
async fn pause_and_resume() {
    let env = TestEnv::start().await;
    let (code, out, err) = spool_cli(&env, &["pause", "mail"]).await;
    assert_eq!((code, out.as_str()), (EXIT_USAGE, ""), "{err}");
    assert!(
        err.starts_with(
            "error: no queue named \"mail\" (known: none); pause it anyway with --create"
        ),
        "{err}"
    );
    assert!(!env.client.admin().queue("mail").await.unwrap().paused);
    assert!(env.client.admin().queue_names().await.unwrap().is_empty());
    let (code, _, err) = spool_cli(&env, &["resume", "mail"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    let (code, out, _) = spool_cli(&env, &["pause", "mail", "--create"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "paused mail"));
    let (code, _, err) = spool_cli(&env, &["pause", "mial"]).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(err.contains("(known: mail)"), "{err}");
    assert!(env.client.admin().queue("mail").await.unwrap().paused);
    let (code, _, _) = spool_cli(&env, &["resume", "mail"]).await;
    assert_eq!(code, EXIT_OK);
    assert!(!env.client.admin().queue("mail").await.unwrap().paused);
    let (code, _, err) = spool_cli(&env, &["pause", "bad name"]).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(err.starts_with("error: invalid queue name"), "{err}");
}

/// `enqueue` now, `--in` and `--at`; prints the id; the job lands where expected.
#[tokio::test]
async fn enqueue_now_in_and_at() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let (code, out, _) = spool_cli(
        &env,
        &[
            "enqueue",
            "mail",
            "send_email",
            r#"{"to":"ada@example.com"}"#,
        ],
    )
    .await;
    assert_eq!(code, EXIT_OK);
    let id = out.trim();
    let job = admin.job("mail", id).await.unwrap().unwrap();
    assert_eq!(job.job_type(), "send_email");
    assert_eq!(
        job.record.unwrap().args.get(),
        r#"{"to":"ada@example.com"}"#
    );

    let now = env.client.redis_time_ms().await.unwrap();
    let (code, out, _) = spool_cli(&env, &["enqueue", "mail", "t", "{}", "--in", "1h30m"]).await;
    assert_eq!(code, EXIT_OK);
    let job = admin.job("mail", out.trim()).await.unwrap().unwrap();
    let at = job.at_ms.unwrap();
    assert!(
        (now + 5_390_000..now + 5_410_000).contains(&at),
        "{at} vs {now}"
    );

    let (code, out, _) = spool_cli(
        &env,
        &[
            "enqueue",
            "mail",
            "t",
            "[1,2]",
            "--at",
            "2099-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(code, EXIT_OK);
    let job = admin.job("mail", out.trim()).await.unwrap().unwrap();
    assert_eq!(job.at_ms, Some(4_070_908_800_000));

    let (code, out, _) = spool_cli(
        &env,
        &["enqueue", "mail", "t", "{}", "--idempotency-key", "k1"],
    )
    .await;
    assert_eq!(code, EXIT_OK);
    let (_, again, note) = spool_cli(
        &env,
        &["enqueue", "mail", "t", "{}", "--idempotency-key", "k1"],
    )
    .await;
    // The id alone on stdout, so scripts can capture it; the note on stderr.
    assert_eq!(again, out, "{again}");
    assert!(note.contains("duplicate"), "{note}");
}

/// Usage errors exit 2 with a message on stderr and nothing on stdout.
#[tokio::test]
async fn usage_errors_exit_2() {
    let env = TestEnv::start().await;
    for args in [
        vec!["enqueue", "mail", "t", "{not json"],
        vec!["enqueue", "mail", "t", "{}", "--in", "soon"],
        vec!["enqueue", "mail", "t", "{}", "--at", "tomorrow"],
        vec![
            "enqueue",
            "mail",
            "t",
            "{}",
            "--at",
            "2099-01-01T00:00:00Z",
            "--in",
            "5m",
        ],
        vec!["frobnicate"],
        vec!["dead", "retry"],
        vec!["dead", "retry", "x", "--all"],
        vec!["dead", "list", "--limit", "0"],
        vec![],
    ] {
        let (code, out, err) = spool_cli(&env, &args).await;
        assert_eq!(code, EXIT_USAGE, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(!err.is_empty(), "{args:?}");
    }
    let (code, out, _) = spool_cli(&env, &["--help"]).await;
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("enqueue"));
}

/// Redis unreachable is an operational error: exit 1.
#[tokio::test]
async fn unreachable_redis_exits_1() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        ["spool", "--redis-url", "redis://127.0.0.1:1", "stats"],
        &mut out,
        &mut err,
    )
    .await;
    assert_eq!(code, EXIT_FAILURE);
    assert!(String::from_utf8(err).unwrap().starts_with("error: "));
}

/// `cron list` says there is no cron table; `cron run` of an unknown entry fails with 1.
#[tokio::test]
async fn cron_without_a_table() {
    let env = TestEnv::start().await;
    let (code, out, _) = spool_cli(&env, &["cron", "list"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "no cron table is registered"));
    let (code, _, err) = spool_cli(&env, &["cron", "run", "nightly"]).await;
    assert_eq!(code, EXIT_FAILURE);
    assert!(err.contains("nightly"));
}

/// The real binary: output on stdout, errors on stderr, exit codes as documented.
#[tokio::test]
async fn binary_exit_codes() {
    let env = TestEnv::start().await;
    let bin = {
        let exe = std::env::current_exe().unwrap();
        let path = exe.parent().unwrap().parent().unwrap().join("spool");
        if !path.exists() {
            let ok = std::process::Command::new(env!("CARGO"))
                .args(["build", "-p", "spool-dashboard", "--bins"])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        path
    };
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .env("REDIS_URL", env.redis.url())
            .output()
            .unwrap()
    };
    let ok = run(&["enqueue", "default", "noop", r#"{"n":1}"#]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim().len(), 36);
    let usage = run(&["enqueue", "default", "noop", "nope"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("not valid JSON"));
    let fail = run(&["dead", "retry", "no-such-id"]);
    assert_eq!(fail.status.code(), Some(1));
    let down = std::process::Command::new(&bin)
        .args(["--redis-url", "redis://127.0.0.1:1", "queues"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

/// `cron list` prints the registered entries; `cron run NAME` enqueues its job and prints the id.
#[tokio::test]
async fn cron_list_and_run() {
    let env = TestEnv::start().await;
    let s = spool_worker::testing::Cron::new(
        &env.client,
        vec![spool_client::CronEntry::new("nightly", "0 3 * * *", &Noop { n: 1 }).queue("reports")],
        spool_worker::CronConfig::default(),
    )
    .unwrap();
    s.register().await.unwrap();
    s.run_once().await.unwrap();
    let (code, out, _) = spool_cli(&env, &["cron", "list"]).await;
    assert_eq!(code, EXIT_OK);
    let line = out.lines().nth(1).unwrap();
    assert!(
        line.starts_with("nightly") && line.contains("0 3 * * *") && line.contains("active"),
        "{out}"
    );
    let (code, out, _) = spool_cli(&env, &["cron", "run", "nightly"]).await;
    assert_eq!(code, EXIT_OK);
    let id = out.trim();
    assert!(env
        .client
        .admin()
        .job("reports", id)
        .await
        .unwrap()
        .is_some());
    let (code, _, _) = spool_cli(&env, &["cron", "run", "bad:name"]).await;
    assert_eq!(code, EXIT_USAGE);
}

/// Out-of-range numbers are usage errors (exit 2, a message naming the
/// flag, nothing enqueued), checked before Redis is touched.
#[tokio::test]
async fn out_of_range_numbers_exit_2() {
    let env = TestEnv::start().await;
    for (args, flag) in [
        (vec!["--in", "200000000000d"], "--in"),
        (vec!["--in", "36501d"], "--in"),
        (vec!["--in", "+5m"], "--in"),
        (vec!["--max-attempts", "0"], "--max-attempts"),
        (vec!["--max-attempts", "10001"], "--max-attempts"),
        (vec!["--max-attempts=-1"], "--max-attempts"),
        (vec!["--max-attempts", "+5"], "--max-attempts"),
        (vec!["--max-attempts", "05"], "--max-attempts"),
        (vec!["--at", "+2030-01-01T00:00:00Z"], "--at"),
    ] {
        let mut all = vec!["enqueue", "mail", "t", "{}"];
        all.extend_from_slice(&args);
        let (code, out, err) = spool_cli(&env, &all).await;
        assert_eq!(code, EXIT_USAGE, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    for args in [
        vec!["dead", "list", "--limit", "1001"],
        vec!["dead", "list", "--limit", "+5"],
        vec!["dead", "list", "--limit", "050"],
    ] {
        let (code, _, err) = spool_cli(&env, &args).await;
        assert_eq!(code, EXIT_USAGE, "{args:?}: {err}");
    }
    assert_eq!(env.client.admin().queue("mail").await.unwrap().ready, 0);
    let (code, _, err) = spool_cli(&env, &["enqueue", "mail", "t", "{}", "--in", "36500d"]).await;
    assert_eq!(code, EXIT_OK, "{err}");
}

/// `spool status`, `spool wait` and `spool cancel`: what scripts rely on
/// (the id alone from enqueue, exit codes, JSON).
#[tokio::test]
async fn status_wait_and_cancel_from_the_shell() {
    let env = TestEnv::start().await;
    let (code, id, _) = spool_cli(
        &env,
        &[
            "enqueue",
            "mail",
            "noop",
            r#"{"n":1}"#,
            "--keep-outcome",
            "1h",
        ],
    )
    .await;
    assert_eq!(code, EXIT_OK);
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 36, "the id alone: {id:?}");

    let (code, out, _) = spool_cli(&env, &["status", &id]).await;
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("ready") && out.contains("queue=mail"), "{out}");
    let (code, out, _) = spool_cli(&env, &["status", &id, "--json"]).await;
    assert_eq!(code, EXIT_OK);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["status"], "ready");
    assert_eq!(json["history"][0]["state"], "ready");

    // Nothing runs it: wait times out, exit 1.
    let (code, out, err) = spool_cli(&env, &["wait", &id, "--timeout", "200ms"]).await;
    assert_eq!(code, EXIT_FAILURE, "{out}{err}");
    assert!(err.contains("is ready"), "{err}");

    let (code, out, _) = spool_cli(&env, &["cancel", &id]).await;
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("cancelled"), "{out}");
    let (code, out, _) = spool_cli(&env, &["cancel", &id]).await;
    assert_eq!(code, EXIT_OK);
    assert!(out.contains("already finished"), "{out}");
    let (code, _, err) = spool_cli(&env, &["wait", &id]).await;
    assert_eq!(code, EXIT_FAILURE);
    assert!(err.contains("cancelled"), "{err}");

    // Done: wait exits 0.
    let (_, done, _) = spool_cli(
        &env,
        &[
            "enqueue",
            "default",
            "noop",
            r#"{"n":2}"#,
            "--keep-outcome",
            "1h",
        ],
    )
    .await;
    let rec = Recorder::default();
    let running = RunningWorker::start(spool_tests::handlers::fixture_worker(&env.client, &rec));
    let (code, out, err) = spool_cli(&env, &["wait", done.trim(), "--timeout", "10s"]).await;
    assert_eq!(code, EXIT_OK, "{out}{err}");
    assert!(out.contains("done"), "{out}");
    running.stop().await;

    // Unknown ids and malformed ones.
    let (code, _, err) = spool_cli(&env, &["status", "0193a4c2-7d1e-7b0a-9c1e-3f6d2a9b8c01"]).await;
    assert_eq!(code, EXIT_FAILURE);
    assert!(err.contains("unknown"), "{err}");
    let (code, _, _) = spool_cli(&env, &["cancel", "0193a4c2-7d1e-7b0a-9c1e-3f6d2a9b8c01"]).await;
    assert_eq!(code, EXIT_FAILURE);
    let (code, _, _) = spool_cli(&env, &["status", "a\"b"]).await;
    assert_eq!(code, EXIT_USAGE);
}

/// `spool protocol` needs no Redis: `list` names every script with the
/// SHA-1 of the text `script NAME` prints; an unknown name is a usage error.
#[tokio::test]
async fn protocol_prints_the_scripts_without_a_redis() {
    fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["spool", "--redis-url", "redis://127.0.0.1:1"];
        all.extend_from_slice(a);
        all
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args(&["protocol", "list"]), &mut out, &mut err).await;
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let list = String::from_utf8(out).unwrap();
    let (_, sha) = list
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(name, _)| *name == "fetch")
        .expect("fetch listed");
    let mut text = Vec::new();
    let code = run(args(&["protocol", "script", "fetch"]), &mut text, &mut err).await;
    assert_eq!(code, EXIT_OK);
    assert_eq!(
        redis::Script::new(std::str::from_utf8(&text).unwrap()).get_hash(),
        sha
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args(&["protocol", "script", "nope"]), &mut out, &mut err).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(String::from_utf8_lossy(&err).contains("spool protocol list"));
}

/// Against a Redis with no Spool data, `stats`, `queues` and `dead list`
/// say so on stderr, naming the server with its password hidden, instead
/// of printing a table of zeros; `--json` still prints the (empty) data.
#[tokio::test]
async fn a_redis_without_spool_data_is_named() {
    let redis = TestRedis::builder().requirepass("sekrit-pw").start();
    let url = format!("redis://:sekrit-pw@127.0.0.1:{}", redis.port());
    let cli = |args: &[&str]| {
        let mut command: Vec<String> = vec!["spool".into(), "--redis-url".into(), url.clone()];
        command.extend(args.iter().map(|a| (*a).to_owned()));
        async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run(command, &mut out, &mut err).await;
            (
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        }
    };
    let want = format!(
        "no Spool data at redis://:***@127.0.0.1:{} (namespace \"spool\")",
        redis.port()
    );
    for args in [&["stats"][..], &["queues"], &["dead", "list"]] {
        let (code, out, err) = cli(args).await;
        assert_eq!((code, out.as_str()), (EXIT_OK, ""), "{args:?}: {err}");
        assert!(err.starts_with(&want), "{args:?}: {err}");
        assert!(!err.contains("sekrit-pw"), "{err}");
    }
    let (code, out, err) = cli(&["stats", "--json"]).await;
    assert_eq!(code, EXIT_OK);
    assert!(err.starts_with(&want), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["queues"].as_u64(), Some(0));
}

/// Once any queue exists, `stats` prints its table and says nothing about
/// missing data.
#[tokio::test]
async fn stats_with_data_say_nothing_on_stderr() {
    let env = TestEnv::start().await;
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let (code, _, err) = spool_cli(&env, &["stats"]).await;
    assert_eq!((code, err.as_str()), (EXIT_OK, ""));
}

/// `queue forget` drops an empty queue from the registry (and its paused
/// flag); it refuses (exit 2, nothing changed) a queue with jobs in any
/// state, one a worker serves, and one Spool does not know.
#[tokio::test]
async fn queue_forget_only_forgets_empty_unserved_queues() {
    let env = TestEnv::start().await;
    let admin = env.client.admin();
    let (code, _, _) = spool_cli(&env, &["pause", "typo", "--create"]).await;
    assert_eq!(code, EXIT_OK);
    let (code, out, err) = spool_cli(&env, &["queue", "forget", "typo"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "forgot queue typo"), "{err}");
    assert!(!admin
        .queue_names()
        .await
        .unwrap()
        .contains(&"typo".to_owned()));
    assert!(
        !admin.queue("typo").await.unwrap().paused,
        "paused flag gone"
    );
    let (code, _, err) = spool_cli(&env, &["queue", "forget", "typo"]).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(err.contains("no queue named \"typo\" is known"), "{err}");

    // A scheduled job is a job: refused, and the queue stays registered.
    env.client
        .enqueue_in(&Noop { n: 1 }, Duration::from_secs(600))
        .await
        .unwrap();
    let (code, _, err) = spool_cli(&env, &["queue", "forget", "default"]).await;
    assert_eq!(code, EXIT_USAGE, "{err}");
    assert!(
        err.contains("still has jobs (ready 0, active 0, scheduled 1,"),
        "{err}"
    );
    assert!(admin
        .queue_names()
        .await
        .unwrap()
        .contains(&"default".to_owned()));
    assert_eq!(admin.queue("default").await.unwrap().scheduled, 1);

    // A dead job too.
    admin
        .delete_all("default", JobSet::Scheduled)
        .await
        .unwrap();
    make_dead(&env, "gone", 1).await;
    let (code, _, err) = spool_cli(&env, &["queue", "forget", "default"]).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(err.contains("dead 1"), "{err}");
    admin.delete_all("default", JobSet::Dead).await.unwrap();

    // A worker serving it would register it again.
    let rec = Recorder::default();
    let worker = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    wait_for("process record", Duration::from_secs(10), || async {
        !admin.processes().await.unwrap().is_empty()
    })
    .await;
    let (code, _, err) = spool_cli(&env, &["queue", "forget", "default"]).await;
    assert_eq!(code, EXIT_USAGE);
    assert!(err.contains("is served by 1 running worker(s)"), "{err}");
    worker.stop().await;
    wait_for("process record gone", Duration::from_secs(10), || async {
        admin.processes().await.unwrap().is_empty()
    })
    .await;
    let (code, out, err) = spool_cli(&env, &["queue", "forget", "default"]).await;
    assert_eq!(
        (code, out.trim()),
        (EXIT_OK, "forgot queue default"),
        "{err}"
    );
}

/// Bulk deletes of dead jobs (`--all`, `--grep`, `--type`) say what they
/// would delete and refuse (exit 2) without `--yes`; `--dry-run` only
/// says; deletes by id and retries need no `--yes`.
#[tokio::test]
async fn bulk_deletes_need_yes_and_dry_run_only_says() {
    let env = TestEnv::start().await;
    let ids = make_dead(&env, "bulk", 3).await;
    let admin = env.client.admin();
    let dead = || async { admin.queue("default").await.unwrap().dead };
    for args in [
        &["dead", "delete", "--all"][..],
        &["dead", "delete", "--grep", "bulk-1"],
        &["dead", "delete", "--type", "scripted", "--queue", "default"],
    ] {
        let (code, out, err) = spool_cli(&env, args).await;
        assert_eq!((code, out.as_str()), (EXIT_USAGE, ""), "{args:?}");
        assert!(err.starts_with("error: would delete "), "{args:?}: {err}");
        assert!(err.contains("pass --yes"), "{err}");
    }
    assert_eq!(dead().await, 3, "nothing deleted");
    let (code, out, _) = spool_cli(&env, &["dead", "delete", "--all", "--dry-run"]).await;
    assert_eq!(
        (code, out.trim()),
        (EXIT_OK, "would delete 3 dead jobs (default: 3)")
    );
    let (code, out, _) =
        spool_cli(&env, &["dead", "delete", "--grep", "bulk-1", "--dry-run"]).await;
    assert_eq!(
        (code, out.trim()),
        (EXIT_OK, "would delete 1 dead jobs (default: 1)")
    );
    let (code, out, _) = spool_cli(&env, &["dead", "retry", "--grep", "bulk-1", "--dry-run"]).await;
    assert_eq!(
        (code, out.trim()),
        (EXIT_OK, "would retry 1 dead jobs (default: 1)")
    );
    assert_eq!(dead().await, 3, "dry runs change nothing");
    let (code, _, _) = spool_cli(&env, &["dead", "delete", "--all", "--dry-run", "--yes"]).await;
    assert_eq!(code, EXIT_USAGE, "--dry-run and --yes conflict");

    let (code, out, _) = spool_cli(&env, &["dead", "delete", &ids[0]]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "deleted 1 jobs"));
    let (code, out, _) = spool_cli(&env, &["dead", "delete", "--grep", "bulk-1", "--yes"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "deleted 1 jobs"));
    let (code, out, _) = spool_cli(&env, &["dead", "delete", "--all", "-y"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "deleted 1 jobs"));
    assert_eq!(dead().await, 0);
    // Nothing left: no --yes needed to delete nothing.
    let (code, out, _) = spool_cli(&env, &["dead", "delete", "--all"]).await;
    assert_eq!((code, out.trim()), (EXIT_OK, "deleted 0 jobs"));
}
