//! Dashboard and CLI against hostile requests and hostile stored data
//! (issue 9): DNS rebinding (Host allow-list), unbounded stored strings,
//! deeply nested args, a bad queue name in the registry, non-canonical
//! numbers, non-UTF-8 parameters and announced oversize bodies. Records are
//! written raw, in docs/PROTOCOL.md's shapes, as another producer would.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use spool_dashboard::cli::{EXIT_OK, EXIT_USAGE};
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::{spool_cli, DashboardProcess, DashboardServer, Session};
use spool_tests::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(env: &TestEnv, config: DashboardConfig) -> (DashboardServer, Session) {
    let server = DashboardServer::start(spool_dashboard::router(env.client.admin(), config)).await;
    let session = Session::new(&server.url(), "");
    (server, session)
}

/// One ready job, then the dashboard with the default config.
async fn serve_with_a_job(env: &TestEnv) -> (DashboardServer, Session) {
    env.client
        .enqueue(&spool_tests::handlers::Noop { n: 1 })
        .await
        .unwrap();
    serve(env, DashboardConfig::default()).await
}

/// A record in PROTOCOL.md's shape; `job_type`, `key` are JSON-encoded here.
fn record(id: &str, queue: &str, job_type: &str, args: &str, key: Option<&str>) -> String {
    let key = key.map_or_else(String::new, |k| {
        format!(r#","idempotency_key":{}"#, serde_json::json!(k))
    });
    format!(
        r#"{{"id":"{id}","attempt":1,"max_attempts":3,"enqueued_ms":1,"type":{},"queue":"{queue}","args":{args},"created_ms":1{key}}}"#,
        serde_json::json!(job_type)
    )
}

async fn cmd(raw: &mut spool_client::Connection, args: &[&str]) {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    let _: redis::Value = c.query_async(raw).await.unwrap();
}

/// Puts a dead job (record, died-at, error history) in `queue` by hand.
async fn raw_dead(env: &TestEnv, queue: &str, id: &str, rec: &str, error: &str) {
    let mut raw = env.raw().await;
    let errors = serde_json::json!([{ "at_ms": 1, "attempt": 1, "error": error }]).to_string();
    cmd(&mut raw, &["SADD", "{spool}:queues", queue]).await;
    cmd(
        &mut raw,
        &["ZADD", &format!("spool:{{{queue}}}:dead"), "1", id],
    )
    .await;
    cmd(
        &mut raw,
        &["HSET", &format!("spool:{{{queue}}}:jobs"), id, rec],
    )
    .await;
    cmd(
        &mut raw,
        &["HSET", &format!("spool:{{{queue}}}:errors"), id, &errors],
    )
    .await;
}

// ------------------------------------------------------------ DNS rebinding

/// A foreign `Host` gets 421 and no CSRF token, on GET and on a POST that
/// is otherwise perfect (cookie, token, matching Origin); the queue stays
/// unpaused. Configured names work; `*` turns the check off.
#[tokio::test]
async fn dns_rebinding_foreign_host_is_refused() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve_with_a_job(&env).await;
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");
    let p = s.get_with("/dead", &[("host", evil.clone())]).await;
    assert_eq!(p.status, 421, "{}", p.body);
    assert!(p.body.contains("allowed hosts"), "{}", p.body);
    assert!(!p.body.contains("csrf"), "{}", p.body);
    assert!(p.header("content-security-policy").is_some());

    // A real token and cookie, replayed under the attacker's Host.
    assert_eq!(s.get("/dead").await.status, 200);
    let token = s.csrf.clone().unwrap();
    let r = s
        .post_raw(
            "/queues/default/pause",
            &[("csrf", token.as_str())],
            &[
                ("host", evil.clone()),
                ("origin", format!("http://{evil}")),
                ("sec-fetch-site", "same-origin".to_owned()),
            ],
        )
        .await;
    assert_eq!(r.status, 421);
    // Origin is checked against the allow-list, not against the Host.
    let r = s
        .post_raw(
            "/queues/default/pause",
            &[("csrf", token.as_str())],
            &[("origin", format!("http://{evil}"))],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!env.client.admin().queue("default").await.unwrap().paused);
    // Loopback names and IP literals pass.
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        assert_eq!(
            s.get_with("/", &[("host", host.clone())]).await.status,
            200,
            "{host}"
        );
    }
    server.stop().await;

    let (server, mut s) = serve(
        &env,
        DashboardConfig::default().allow_hosts(["ops.example.com"]),
    )
    .await;
    let ops = "ops.example.com".to_owned();
    assert_eq!(s.get_with("/", &[("host", ops.clone())]).await.status, 200);
    assert_eq!(s.get_with("/", &[("host", evil.clone())]).await.status, 421);
    let token = s.csrf.clone().unwrap();
    let r = s
        .post_raw(
            "/queues/default/pause",
            &[("csrf", token.as_str())],
            &[
                ("host", ops.clone()),
                ("origin", "https://ops.example.com".into()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(env.client.admin().queue("default").await.unwrap().paused);
    server.stop().await;

    let (server, mut s) = serve(&env, DashboardConfig::default().allow_hosts(["*"])).await;
    assert_eq!(s.get_with("/", &[("host", evil)]).await.status, 200);
    server.stop().await;
}

// ---------------------------------------------------------- bounded strings

/// 10 MiB error, type, idempotency key and process host, written raw: every
/// page, listing and CLI line stays small and says it cut; the job page
/// links the full error; the single-job JSON has it whole.
#[tokio::test]
async fn huge_stored_strings_are_truncated_everywhere() {
    let env = TestEnv::start().await;
    let big = |c: &str| c.repeat(10 * 1024 * 1024);
    let id = "huge-1";
    let rec = record(id, "big", &big("t"), r#"{"a":1}"#, Some(&big("k")));
    raw_dead(&env, "big", id, &rec, &big("e")).await;
    // An id no job path accepts, 1 MiB long: listed bounded, linked nowhere.
    let long_id = "i".repeat(1024 * 1024);
    let rec2 = record(&long_id, "big", "t", "{}", None);
    raw_dead(&env, "big", &long_id, &rec2, "e").await;
    let mut raw = env.raw().await;
    let info = serde_json::json!({
        "id": "proc-1", "host": big("h"), "pid": 1, "queues": ["big"],
        "concurrency": 1, "version": "0"
    })
    .to_string();
    let now = env.client.redis_time_ms().await.unwrap().to_string();
    cmd(&mut raw, &["ZADD", "{spool}:processes", &now, "proc-1"]).await;
    cmd(
        &mut raw,
        &[
            "HSET",
            "{spool}:process:proc-1",
            "info",
            &info,
            "busy",
            "[]",
            "started_ms",
            &now,
            "beat_ms",
            &now,
        ],
    )
    .await;

    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let limit = 300 * 1024;
    for path in [
        format!("/jobs/big/{id}"),
        "/dead?queue=big".to_owned(),
        "/processes".to_owned(),
        "/api/sets/dead?queue=big".to_owned(),
        "/api/processes".to_owned(),
        "/".to_owned(),
    ] {
        let p = s.get(&path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(p.body.len() < limit, "{path}: {} bytes", p.body.len());
        if path != "/" {
            assert!(p.body.contains("bytes, truncated)"), "{path}");
        }
    }
    let dead = s.get("/dead?queue=big").await;
    assert!(dead.attrs("a", "href").iter().all(|h| h.len() < 1024));
    let job = s.get(&format!("/jobs/big/{id}")).await;
    let links = job.attrs("a", "href");
    assert!(links.contains(&format!("/api/jobs/big/{id}")), "{links:?}");
    let full = s.get(&format!("/api/jobs/big/{id}")).await;
    assert!(full.body.len() > 30 * 1024 * 1024);
    for json in [false, true] {
        let mut args = vec!["dead", "list", "--queue", "big"];
        if json {
            args.push("--json");
        }
        let (code, out, _) = spool_cli(&env, &args).await;
        assert_eq!(code, EXIT_OK);
        assert!(out.len() < 16 * 1024, "{} bytes", out.len());
    }
    server.stop().await;
}

// ----------------------------------------------------------- deep nesting

/// Args nested 5,000 deep, written raw to the ready list and the dead set:
/// every listing, page and CLI command answers (the admin helper may also
/// refuse such args at enqueue; the dashboard must not depend on it).
#[tokio::test]
async fn deeply_nested_args_render_everywhere() {
    let env = TestEnv::start().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut raw = env.raw().await;
    cmd(&mut raw, &["SADD", "{spool}:queues", "deep"]).await;
    let ready = record("deep-ready", "deep", "t", &deep, None);
    cmd(&mut raw, &["LPUSH", "spool:{deep}:ready", &ready]).await;
    raw_dead(
        &env,
        "deep",
        "deep-dead",
        &record("deep-dead", "deep", "t", &deep, None),
        "x",
    )
    .await;
    // Through the CLI, as the issue did: accepted or refused, never a crash.
    let (code, _, err) = spool_cli(&env, &["enqueue", "deep", "t", &deep]).await;
    assert!(code == EXIT_OK || code == EXIT_USAGE, "{code}: {err}");

    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    for path in [
        "/api/queues/deep/jobs",
        "/api/sets/dead?queue=deep",
        "/api/jobs/deep/deep-ready",
        "/api/jobs/deep/deep-dead",
        "/queues/deep",
        "/dead?queue=deep",
        "/jobs/deep/deep-ready",
        "/jobs/deep/deep-dead",
        "/jobs/deep/deep-dead/raw",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        if path.starts_with("/api/") && !path.starts_with("/api/jobs") {
            let _: serde_json::Value = serde_json::from_str(&p.body).expect(path);
        }
    }
    let p = s.get("/api/queues/deep/jobs").await;
    let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert!(v["items"][0]["args_preview"]
        .as_str()
        .unwrap()
        .ends_with("bytes, truncated)"));
    for args in [
        vec!["dead", "list", "--json"],
        vec!["dead", "list"],
        vec!["dead", "list", "--grep", "x", "--json"],
    ] {
        let (code, out, err) = spool_cli(&env, &args).await;
        assert_eq!(code, EXIT_OK, "{args:?}: {err}");
        assert!(out.contains("deep-dead"), "{args:?}");
    }
    server.stop().await;
}

// --------------------------------------------------- bad registry members

/// `SADD {spool}:queues a:b` (and a 10 KiB name) no longer takes the
/// console down: pages and API answer, the overview warns, the CLI warns
/// and exits 0.
#[tokio::test]
async fn bad_queue_names_in_the_registry_are_skipped_and_reported() {
    let env = TestEnv::start().await;
    env.client
        .enqueue(&spool_tests::handlers::Noop { n: 1 })
        .await
        .unwrap();
    let mut raw = env.raw().await;
    let long = "x".repeat(10 * 1024);
    cmd(&mut raw, &["SADD", "{spool}:queues", "a:b", &long]).await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    for path in [
        "/",
        "/metrics",
        "/api/stats",
        "/api/queues",
        "/dead",
        "/scheduled",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert!(p.body.len() < 64 * 1024, "{path}");
    }
    let home = s.get("/").await;
    assert!(home.body.contains("not valid queue names"), "{}", home.body);
    assert!(home.body.contains("a:b"));
    assert!(home.body.contains("default"));
    let stats: serde_json::Value = serde_json::from_str(&s.get("/api/stats").await.body).unwrap();
    assert_eq!(stats["ready"], 1);
    assert_eq!(stats["skipped_queues"].as_array().map(Vec::len), Some(2));
    for args in [vec!["stats"], vec!["queues"], vec!["dead", "list"]] {
        let (code, out, err) = spool_cli(&env, &args).await;
        assert_eq!(code, EXIT_OK, "{args:?}: {err}");
        assert!(err.contains("warning: skipped 2"), "{args:?}: {err}");
        assert!(err.len() < 1024, "{args:?}");
        assert!(!out.contains("a:b"));
    }
    server.stop().await;
}

// ------------------------------------------------------ smaller: numbers

/// `page=+1`, `01`, `%2B1` and friends are refused with 400 on every
/// numeric parameter; so is a parameter that is not UTF-8 (named in the
/// message), in the query and in a form body.
#[tokio::test]
async fn non_canonical_numbers_and_non_utf8_parameters_are_refused() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    for path in [
        "/dead?page=%2B1",
        "/dead?page=+1",
        "/dead?page=01",
        "/dead?per_page=%2B5",
        "/queues/default?page=%2B1",
        "/api/queues/default/jobs?per_page=007",
        "/api/sets/dead?queue=default&page=%2B2",
        "/api/history?minutes=%2B5",
        "/api/history?minutes=060",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 400, "{path}: {}", p.body);
    }
    for (path, name) in [
        ("/dead?queue=default&q=%FF", "\"q\""),
        ("/dead?type=%C3%28", "\"type\""),
        ("/api/sets/dead?queue=%FE", "\"queue\""),
        ("/scheduled?page=1&%FF=1", "parameter"),
        ("/?x=%FF", "\"x\""),
        ("/processes?x=%C3", "\"x\""),
        ("/api/jobs/default/x?y=%FF", "\"y\""),
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 400, "{path}");
        assert!(p.body.contains(name), "{path}: {}", p.body);
    }
    assert_eq!(s.get("/dead?page=2&per_page=10").await.status, 200);
    // A form field that is not UTF-8.
    s.get("/dead").await;
    let token = s.csrf.clone().unwrap();
    let body = format!("csrf={token}&queue=default&q=%FF&action=delete_all");
    let r = raw_post(&server, &s, "/dead/actions", &body, None).await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("\"q\""), "{r}");
    // A malformed form is a 400 too, never a panic.
    let body = format!("csrf={token}&queue=default&retry_id=../x");
    let r = raw_post(&server, &s, "/dead/actions", &body, None).await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    server.stop().await;
}

/// Sends a POST over a raw socket (so `Content-Length` can lie) with the
/// session's cookie and a same-origin header; returns what came back within
/// 5 s (the status line first).
async fn raw_post(
    server: &DashboardServer,
    s: &Session,
    path: &str,
    body: &str,
    announced: Option<u64>,
) -> String {
    let mut sock = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let len = announced.unwrap_or(body.len() as u64);
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nsec-fetch-site: same-origin\r\ncookie: {}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {len}\r\n\r\n",
        server.addr,
        s.cookie().unwrap_or_default()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("an answer before the body is sent")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A POST announcing 10 GB gets 413 at once, before any of the body.
#[tokio::test]
async fn announced_oversize_body_is_refused_up_front() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    s.get("/dead").await;
    let token = s.csrf.clone().unwrap();
    let start = format!("csrf={token}&queue=default&");
    let r = raw_post(&server, &s, "/dead/actions", &start, Some(10_000_000_000)).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    let r = raw_post(
        &server,
        &s,
        "/queues/default/pause",
        "",
        Some(256 * 1024 + 1),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    server.stop().await;
}

/// The binary knows its port: `localhost:<that port>` is served, another
/// port or a foreign name gets 421; `--allowed-host` adds a name.
#[tokio::test]
async fn binary_pins_host_and_port() {
    let env = TestEnv::start().await;
    let dashboard = DashboardProcess::start(&env, &["--allowed-host", "ops.example.com"]).await;
    let (port, url) = (dashboard.port, dashboard.url.clone());
    let mut s = Session::new(&url, "");
    for (host, want) in [
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
        ("ops.example.com".to_owned(), 200),
        (format!("localhost:{}", port.wrapping_add(1)), 421),
        (format!("evil.example:{port}"), 421),
    ] {
        assert_eq!(
            s.get_with("/", &[("host", host.clone())]).await.status,
            want,
            "{host}"
        );
    }
}

/// `/metrics` keeps its metric names and types (now via prometheus-client).
#[tokio::test]
async fn metrics_text_keeps_names_and_types() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve_with_a_job(&env).await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    for line in [
        "# TYPE spool_queue_depth gauge",
        "spool_queue_depth{queue=\"default\"} 1\n",
        "# TYPE spool_queue_latency_seconds gauge",
        "spool_queue_latency_seconds{queue=\"default\"} ",
        "spool_queue_busy{queue=\"default\"} 0\n",
        "spool_queue_scheduled{queue=\"default\"} 0\n",
        "spool_queue_retry{queue=\"default\"} 0\n",
        "spool_queue_dead{queue=\"default\"} 0\n",
        "spool_queue_paused{queue=\"default\"} 0\n",
        "# TYPE spool_jobs_processed counter",
        "spool_jobs_processed_total{queue=\"default\"} 0\n",
        "spool_jobs_failed_total{queue=\"default\"} 0\n",
        "# TYPE spool_processes gauge",
        "spool_processes 0\n",
        "# EOF",
    ] {
        assert!(m.body.contains(line), "{line:?} in\n{}", m.body);
    }
    server.stop().await;
}
