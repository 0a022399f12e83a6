//! Dashboard over HTTP against a real Redis: every page and action with jobs
//! in every state, empty states, a 100,000-job queue, mounting under a
//! prefix, and each item of the security list.

// Test helpers: a failed unwrap is a failed test; page walks read best in one function with short names for pages (p, q, …).
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::many_single_char_names
)]

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spool_client::{Client, EnqueueOptions, Job, JobDefaults, JobState};
use spool_dashboard::{check_bind, Auth, DashboardConfig};
use spool_tests::dashboard::{DashboardProcess, DashboardServer, Page, Session};
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::JobError;

/// A job whose handler always asks to be retried in an hour: it sits in the retry set.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Later {
    n: u32,
}

impl Job for Later {
    const TYPE: &'static str = "later";
}

fn start_worker(env: &TestEnv, rec: &Recorder) -> RunningWorker {
    let worker = with_fixtures(env.worker(), rec)
        .register(|_ctx, _job: Later| async move {
            Err(JobError::retry_after("not yet", Duration::from_secs(3600)))
        })
        .build()
        .unwrap();
    RunningWorker::start(worker)
}

async fn serve(env: &TestEnv, config: DashboardConfig) -> (DashboardServer, Session) {
    let server = DashboardServer::start(spool_dashboard::router(env.client.admin(), config)).await;
    let session = Session::new(&server.url(), "");
    (server, session)
}

fn dead_job(name: &str) -> Scripted {
    Scripted {
        fail_times: u32::MAX,
        permanent: true,
        ..Scripted::ok(name)
    }
}

async fn dead_count(env: &TestEnv, queue: &str) -> u64 {
    env.client.admin().queue(queue).await.unwrap().dead
}

/// Puts one job in each state of the default queue: ready, scheduled, retry,
/// dead (by a real worker), and returns their ids.
async fn jobs_in_every_state(env: &TestEnv) -> [String; 4] {
    let rec = Recorder::default();
    let w = start_worker(env, &rec);
    let dead = env.client.enqueue(&dead_job("d1")).await.unwrap();
    let retry = env.client.enqueue(&Later { n: 1 }).await.unwrap();
    let admin = env.client.admin();
    wait_for("dead and retry", Duration::from_secs(10), || async {
        let q = admin.queue("default").await.unwrap();
        q.dead == 1 && q.retry == 1
    })
    .await;
    w.stop().await;
    let ready = env.client.enqueue(&Noop { n: 7 }).await.unwrap();
    let scheduled = env
        .client
        .enqueue_in(&Noop { n: 8 }, Duration::from_secs(600))
        .await
        .unwrap();
    [ready, scheduled, retry, dead].map(|id| id.to_string())
}

fn assert_security_headers(p: &Page) {
    let csp = p.header("content-security-policy").expect("CSP header");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(
        p.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

/// Every page renders in an empty installation, with the empty-state texts.
#[tokio::test]
async fn every_page_renders_when_empty() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let home = s.get("/").await;
    assert_eq!(home.status, 200);
    assert_security_headers(&home);
    assert!(home.body.contains("No queues yet"), "{}", home.body);
    assert_eq!(home.attrs("figure.chart svg", "viewBox").len(), 2);
    for path in ["/scheduled", "/retries", "/dead"] {
        let p = s.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(p.body.contains("No queues yet"), "{path}");
    }
    let procs = s.get("/processes").await;
    assert!(procs.body.contains("No live worker processes"));
    let cron = s.get("/cron").await;
    assert_eq!(cron.status, 200);
    assert!(cron.body.contains("No cron table is registered"));
    let q = s.get("/queues/default").await;
    assert_eq!(q.status, 200);
    assert!(q.body.contains("No ready jobs"));
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.body.contains("spool_processes 0"), "{}", m.body);
    for api in [
        "/api/stats",
        "/api/queues",
        "/api/processes",
        "/api/history",
        "/api/cron",
    ] {
        let p = s.get(api).await;
        assert_eq!(p.status, 200, "{api}");
        let _: serde_json::Value = serde_json::from_str(&p.body).expect("json");
    }
    assert_eq!(s.get("/assets/app.js").await.status, 200);
    assert_eq!(s.get("/assets/style.css").await.status, 200);
    assert_eq!(s.get("/nope").await.status, 404);
    server.stop().await;
}

/// With a job in every state, each page shows it where it belongs: the
/// overview counts, the set pages, the job page (args, errors, times), the
/// queue page, metrics and the JSON API.
#[tokio::test]
async fn pages_show_jobs_in_every_state() {
    let env = TestEnv::start().await;
    let [ready, scheduled, retry, dead] = jobs_in_every_state(&env).await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;

    let home = s.get("/").await;
    let totals: Vec<String> = home.texts(".total");
    let find = |label: &str| {
        totals
            .iter()
            .find(|t| t.ends_with(label))
            .unwrap_or_else(|| panic!("{label} in {totals:?}"))
            .trim_end_matches(label)
            .to_owned()
    };
    assert_eq!(find("Ready"), "1");
    assert_eq!(find("Scheduled"), "1");
    assert_eq!(find("Retries"), "1");
    assert_eq!(find("Dead"), "1");
    assert_eq!(find("Failed"), "2");
    assert_eq!(
        home.texts("table.queues tbody tr td:first-child a"),
        vec!["default"]
    );
    assert!(!home.attrs("svg title", "").is_empty() || home.body.contains("<title>"));

    let q = s.get("/queues/default").await;
    assert!(q.texts("table.jobs a").contains(&ready));
    for (path, id) in [
        ("/scheduled", &scheduled),
        ("/retries", &retry),
        ("/dead", &dead),
    ] {
        let p = s.get(path).await;
        assert_eq!(p.texts("table.jobs tbody td a"), vec![id.clone()], "{path}");
    }
    let d = s.get("/dead").await;
    assert!(d.body.contains("permanent") || d.texts("td.error")[0].contains("scripted failure"));
    // The every-queue view names each job queue:id; one queue's, by id.
    assert_eq!(
        d.attrs("button[name=retry_id]", "value"),
        vec![format!("default:{dead}")]
    );
    let sch = s.get("/scheduled?queue=default").await;
    assert_eq!(
        sch.attrs("button[name=run_id]", "value"),
        vec![scheduled.clone()]
    );

    let job = s.get(&format!("/jobs/default/{dead}")).await;
    assert_eq!(job.status, 200);
    assert!(job.texts(".fields dd").iter().any(|t| t.contains("dead")));
    assert!(job.texts("pre.args")[0].contains("\"name\": \"d1\""));
    assert!(job.texts("table.errors td pre")[0].contains("scripted failure on run 1"));
    assert!(job.texts(".fields dt").contains(&"Died at".to_owned()));
    assert!(job
        .texts(".fields dt")
        .contains(&"Idempotency key".to_owned()));
    let raw = s.get(&format!("/jobs/default/{dead}/raw")).await;
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    let v: serde_json::Value = serde_json::from_str(&raw.body).unwrap();
    assert_eq!(v["id"], dead.as_str());
    assert_eq!(s.get(&format!("/jobs/default/{ready}")).await.status, 200);
    assert_eq!(s.get(&format!("/jobs/default/{retry}")).await.status, 200);

    let m = s.get("/metrics").await.body;
    for line in [
        "spool_queue_depth{queue=\"default\"} 1",
        "spool_queue_dead{queue=\"default\"} 1",
        "spool_queue_retry{queue=\"default\"} 1",
        "spool_queue_scheduled{queue=\"default\"} 1",
        "spool_jobs_failed_total{queue=\"default\"} 2",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    let stats: serde_json::Value = serde_json::from_str(&s.get("/api/stats").await.body).unwrap();
    assert_eq!(
        (stats["dead"].as_u64(), stats["ready"].as_u64()),
        (Some(1), Some(1))
    );
    let api_dead: serde_json::Value =
        serde_json::from_str(&s.get("/api/sets/dead?queue=default").await.body).unwrap();
    assert_eq!(api_dead["items"][0]["id"], dead.as_str());
    let api_job: serde_json::Value =
        serde_json::from_str(&s.get(&format!("/api/jobs/default/{retry}")).await.body).unwrap();
    assert_eq!(api_job["state"], "retry");
    server.stop().await;
}

/// A running job shows on the processes page with its worker, and its job
/// page names the lease holder.
#[tokio::test]
async fn processes_page_shows_workers_and_busy_jobs() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let w = start_worker(&env, &rec);
    let slow = Scripted {
        sleep_ms: 3000,
        ..Scripted::ok("slow")
    };
    let id = env.client.enqueue(&slow).await.unwrap().to_string();
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let admin = env.client.admin();
    wait_for("busy job registered", Duration::from_secs(5), || async {
        admin
            .processes()
            .await
            .unwrap()
            .iter()
            .any(|p| !p.busy.is_empty())
    })
    .await;
    let p = s.get("/processes").await;
    assert_eq!(p.texts("table.processes tr.busy a"), vec![id.clone()]);
    assert!(p.body.contains("1 / "));
    let job = s.get(&format!("/jobs/default/{id}")).await;
    assert!(
        job.texts(".fields dt").contains(&"Lease holder".to_owned()),
        "{}",
        job.body
    );
    assert!(job.texts(".fields dd").iter().any(|t| t.contains("active")));
    let home = s.get("/").await;
    assert!(
        home.texts(".total").iter().any(|t| t == "1Busy"),
        "{:?}",
        home.texts(".total")
    );
    w.stop().await;
    server.stop().await;
}

/// Actions: retry one dead job, delete selected, run a scheduled job now,
/// retry all matching a filter, pause and resume a queue.
#[tokio::test]
async fn actions_change_state_and_redirect_with_a_notice() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let w = start_worker(&env, &rec);
    let mut ids = Vec::new();
    for name in ["a-alpha", "b-alpha", "c-beta", "d-beta"] {
        ids.push(
            env.client
                .enqueue(&dead_job(name))
                .await
                .unwrap()
                .to_string(),
        );
    }
    wait_for("four dead", Duration::from_secs(10), || async {
        dead_count(&env, "default").await == 4
    })
    .await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    s.get("/dead").await;

    let r = s
        .post(
            "/dead/actions",
            &[("queue", "default"), ("retry_id", &ids[0])],
        )
        .await;
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("/dead?queue=default") && loc.contains("done=retry&n=1"),
        "{loc}"
    );
    let after = s.get(&loc).await;
    assert_eq!(after.texts(".notice"), vec!["1 job moved to ready."]);
    assert_eq!(dead_count(&env, "default").await, 3);

    let r = s
        .post(
            "/dead/actions",
            &[
                ("queue", "default"),
                ("id", &ids[1]),
                ("action", "delete_selected"),
            ],
        )
        .await;
    assert!(r.header("location").unwrap().contains("done=delete&n=1"));
    assert_eq!(dead_count(&env, "default").await, 2);

    // Filter by substring of args: only "beta" jobs, then retry all matching.
    let f = s.get("/dead?queue=default&q=BETA").await;
    assert_eq!(f.texts("table.jobs tbody td a").len(), 2);
    let f = s.get("/dead?queue=default&type=noop").await;
    assert!(f.body.contains("No jobs match this filter"));
    let r = s
        .post(
            "/dead/actions",
            &[
                ("queue", "default"),
                ("q", "d-beta"),
                ("action", "retry_all"),
            ],
        )
        .await;
    assert!(
        r.header("location").unwrap().contains("n=1"),
        "{:?}",
        r.header("location")
    );
    assert_eq!(dead_count(&env, "default").await, 1);

    // Run a scheduled job now.
    let sch = env
        .client
        .enqueue_in(&Noop { n: 1 }, Duration::from_secs(3600))
        .await
        .unwrap()
        .to_string();
    let r = s
        .post(
            "/scheduled/actions",
            &[("queue", "default"), ("run_id", &sch)],
        )
        .await;
    assert!(r.header("location").unwrap().contains("done=run&n=1"));
    let job = env
        .client
        .admin()
        .job("default", &sch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Ready);

    // Delete everything left in dead.
    let r = s
        .post(
            "/dead/actions",
            &[("queue", "default"), ("action", "delete_all")],
        )
        .await;
    assert!(r.header("location").unwrap().contains("n=1"));
    assert_eq!(dead_count(&env, "default").await, 0);

    // Pause and resume.
    let q = s.get("/queues/default").await;
    assert_eq!(
        q.texts("main form button")[..6],
        [
            "Pause",
            "Clear queue",
            "Set limit",
            "Set rate",
            "Set per-key rate",
            "Set breaker"
        ]
    );
    let r = s.post("/queues/default/pause", &[]).await;
    assert_eq!(r.status, 303);
    assert!(env.client.admin().queue("default").await.unwrap().paused);
    let q = s.get(&r.header("location").unwrap()).await;
    assert_eq!(
        q.texts("main form button")[..6],
        [
            "Resume",
            "Clear queue",
            "Set limit",
            "Set rate",
            "Set per-key rate",
            "Set breaker"
        ]
    );
    assert_eq!(q.texts(".notice"), vec!["Queue paused."]);
    s.post("/queues/default/resume", &[]).await;
    assert!(!env.client.admin().queue("default").await.unwrap().paused);
    server.stop().await;
}

/// Double-clicking Retry on a dead job re-enqueues it once.
#[tokio::test]
async fn double_retry_of_a_dead_job_enqueues_it_once() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let w = start_worker(&env, &rec);
    let id = env
        .client
        .enqueue(&dead_job("twice"))
        .await
        .unwrap()
        .to_string();
    wait_for("dead", Duration::from_secs(10), || async {
        dead_count(&env, "default").await == 1
    })
    .await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    s.get("/dead").await;
    let form = [("queue", "default"), ("retry_id", id.as_str())];
    let first = s.post("/dead/actions", &form).await;
    let second = s.post("/dead/actions", &form).await;
    assert!(first.header("location").unwrap().contains("n=1"));
    assert!(second.header("location").unwrap().contains("n=0"));
    let q = env.client.admin().queue("default").await.unwrap();
    assert_eq!((q.ready, q.dead), (1, 0));
    server.stop().await;
}

/// A queue of 100,000 jobs pages quickly from both ends; out-of-range pages are empty.
#[tokio::test]
async fn queue_of_100_000_jobs_pages_quickly() {
    let env = TestEnv::start().await;
    let jobs: Vec<Noop> = (0..100_000).map(|n| Noop { n }).collect();
    for chunk in jobs.chunks(20_000) {
        env.client.enqueue_bulk(chunk).await.unwrap();
    }
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let t = Instant::now();
    let home = s.get("/").await;
    assert!(home.texts(".total").contains(&"100000Ready".to_owned()));
    let first = s.get("/queues/default?per_page=500").await;
    assert_eq!(first.texts("table.jobs tbody tr").len(), 500);
    assert!(first.body.contains("Page 1 of 200"));
    let last = s.get("/queues/default?page=200&per_page=500").await;
    assert_eq!(last.texts("table.jobs tbody tr").len(), 500);
    assert!(last
        .texts("table.jobs code")
        .last()
        .unwrap()
        .contains("\"n\":99999"));
    let beyond = s.get("/queues/default?page=5000&per_page=500").await;
    assert_eq!(beyond.status, 200);
    assert!(beyond.body.contains("No ready jobs"));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    server.stop().await;
}

/// Under `Router::nest("/admin/jobs", …)` every link and form points below the prefix, and actions work.
#[tokio::test]
async fn router_mounts_under_a_prefix() {
    let env = TestEnv::start().await;
    let [_, _, _, dead] = jobs_in_every_state(&env).await;
    let app = axum::Router::new().nest(
        "/admin/jobs",
        spool_dashboard::router(env.client.admin(), DashboardConfig::default()),
    );
    let server = DashboardServer::start(app).await;
    let mut s = Session::new(&server.url(), "/admin/jobs");
    let home = s.get("").await;
    assert_eq!(home.status, 200);
    let mut urls = home.attrs("a", "href");
    urls.extend(home.attrs("link", "href"));
    urls.extend(home.attrs("script", "src"));
    for u in &urls {
        assert!(u.starts_with("/admin/jobs"), "{u}");
    }
    let cookie = home.header("set-cookie").unwrap();
    assert!(cookie.contains("Path=/admin/jobs"), "{cookie}");
    let d = s.get("/dead").await;
    for u in d.attrs("form", "action") {
        assert!(u.starts_with("/admin/jobs/"), "{u}");
    }
    let r = s
        .post(
            "/dead/actions",
            &[("queue", "default"), ("retry_id", &dead)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/admin/jobs/dead?"));
    assert_eq!(dead_count(&env, "default").await, 0);
    assert_eq!(s.get("/assets/app.js").await.status, 200);
    server.stop().await;
}

// ---------------------------------------------------------------- security

/// Bound beyond loopback, the dashboard needs credentials.
#[test]
fn non_loopback_bind_requires_credentials() {
    let open = DashboardConfig::default();
    assert!(check_bind("127.0.0.1:7420".parse().unwrap(), &open).is_ok());
    assert!(check_bind("[::1]:7420".parse().unwrap(), &open).is_ok());
    assert!(check_bind("0.0.0.0:7420".parse().unwrap(), &open).is_err());
    assert!(check_bind("192.168.1.10:7420".parse().unwrap(), &open).is_err());
    let basic = DashboardConfig::default().auth(Auth::basic("ops", "pw"));
    assert!(check_bind("0.0.0.0:7420".parse().unwrap(), &basic).is_ok());
}

/// Basic auth and bearer tokens are checked; wrong or missing → 401 with a challenge.
#[tokio::test]
async fn auth_is_required_when_configured() {
    let env = TestEnv::start().await;
    let auth = Auth {
        basic: Some(("ops".into(), "s3cret".into())),
        bearer: Some("token-0123456789abcdef".into()),
    };
    let (server, mut anon) = serve(&env, DashboardConfig::default().auth(auth)).await;
    for path in ["/", "/dead", "/metrics", "/api/stats", "/assets/app.js"] {
        let p = anon.get(path).await;
        assert_eq!(p.status, 401, "{path}");
        assert!(p.header("www-authenticate").unwrap().starts_with("Basic"));
        assert_security_headers(&p);
    }
    let url = server.url();
    // ops:s3cret and ops:wrong
    let mut good = Session::new(&url, "").with_auth("Basic b3BzOnMzY3JldA==");
    assert_eq!(good.get("/").await.status, 200);
    let mut bad = Session::new(&url, "").with_auth("Basic b3BzOndyb25n");
    assert_eq!(bad.get("/").await.status, 401);
    let mut bearer = Session::new(&url, "").with_auth("Bearer token-0123456789abcdef");
    assert_eq!(bearer.get("/metrics").await.status, 200);
    let mut wrong = Session::new(&url, "").with_auth("Bearer token-0123456789abcdeX");
    assert_eq!(wrong.get("/metrics").await.status, 401);
    server.stop().await;
}

/// Read-only mode shows everything but no action control, and refuses POSTs.
#[tokio::test]
async fn read_only_mode_hides_and_refuses_actions() {
    let env = TestEnv::start().await;
    let [_, scheduled, _, dead] = jobs_in_every_state(&env).await;
    let (server, mut s) = serve(&env, DashboardConfig::default().read_only(true)).await;
    for path in [
        "/",
        "/dead",
        "/scheduled",
        "/retries",
        "/queues/default",
        "/cron",
    ] {
        let p = s.get(path).await;
        assert_eq!(p.status, 200);
        assert!(p.attrs("form[method=post]", "action").is_empty(), "{path}");
        assert!(p.attrs("button", "name").is_empty(), "{path}");
    }
    assert!(s.get("/dead").await.texts("table.jobs a").contains(&dead));
    let job = s.get(&format!("/jobs/default/{scheduled}")).await;
    assert!(job.attrs("form[method=post]", "action").is_empty());
    let r = s
        .post(
            "/dead/actions",
            &[("queue", "default"), ("retry_id", &dead)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(s.post("/queues/default/pause", &[]).await.status, 403);
    assert_eq!(dead_count(&env, "default").await, 1);
    assert!(!env.client.admin().queue("default").await.unwrap().paused);
    server.stop().await;
}

/// GET and HEAD never change state: action URLs answer 405, and reading pages moves nothing.
#[tokio::test]
async fn get_and_head_never_mutate() {
    let env = TestEnv::start().await;
    let [_, _, _, dead] = jobs_in_every_state(&env).await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    for path in [
        format!("/dead/actions?queue=default&retry_id={dead}&action=retry_all"),
        "/queues/default/pause".to_owned(),
        "/dead/actions?queue=default&action=delete_all".to_owned(),
    ] {
        assert_eq!(s.get(&path).await.status, 405, "{path}");
        assert_eq!(
            s.request(reqwest::Method::HEAD, &path).await.status,
            405,
            "{path}"
        );
    }
    for path in [
        "/",
        "/dead",
        "/queues/default",
        &format!("/jobs/default/{dead}"),
    ] {
        assert_eq!(s.request(reqwest::Method::HEAD, path).await.status, 200);
    }
    let q = env.client.admin().queue("default").await.unwrap();
    assert_eq!((q.dead, q.ready, q.paused), (1, 1, false));
    server.stop().await;
}

/// One refused-POST case: what it is, form fields, extra headers.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, String)>);

/// A POST is refused unless it is same-origin and carries this session's CSRF token.
#[tokio::test]
async fn posts_need_same_origin_and_csrf_token() {
    let env = TestEnv::start().await;
    let [_, _, _, dead] = jobs_in_every_state(&env).await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    s.get("/dead").await;
    let token = s.csrf.clone().unwrap();
    let origin = server.url();
    let fields = [
        ("csrf", token.as_str()),
        ("queue", "default"),
        ("retry_id", dead.as_str()),
    ];
    let same = ("sec-fetch-site", "same-origin".to_owned());
    let cases: Vec<Case> = vec![
        ("no origin information", fields.to_vec(), vec![]),
        (
            "cross-site fetch",
            fields.to_vec(),
            vec![("sec-fetch-site", "cross-site".into())],
        ),
        (
            "same-site fetch",
            fields.to_vec(),
            vec![("sec-fetch-site", "same-site".into())],
        ),
        (
            "foreign origin",
            fields.to_vec(),
            vec![("origin", "http://evil.example".into())],
        ),
        (
            "null origin",
            fields.to_vec(),
            vec![("origin", "null".into())],
        ),
        ("no token", fields[1..].to_vec(), vec![same.clone()]),
        (
            "wrong token",
            vec![
                ("csrf", "0000"),
                ("queue", "default"),
                ("retry_id", dead.as_str()),
            ],
            vec![same.clone()],
        ),
    ];
    for (what, f, h) in cases {
        let r = s.post_raw("/dead/actions", &f, &h).await;
        assert_eq!(r.status, 403, "{what}");
    }
    // A token from another session (other cookie) does not work either.
    let mut other = Session::new(&origin, "");
    other.get("/dead").await;
    let r = other
        .post_raw("/dead/actions", &fields, std::slice::from_ref(&same))
        .await;
    assert_eq!(r.status, 403, "token of another session");
    assert_eq!(dead_count(&env, "default").await, 1);
    // Origin matching the host works without fetch metadata.
    let r = s
        .post_raw("/dead/actions", &fields, &[("origin", origin.clone())])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(dead_count(&env, "default").await, 0);
    server.stop().await;
}

/// Script and HTML payloads in job type, args, error text and query
/// parameters come out as text: parsing the HTML finds no injected element
/// or attribute.
#[tokio::test]
async fn payloads_in_job_data_are_escaped() {
    let env = TestEnv::start().await;
    let payload = "\"'><script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>";
    let args = serde_json::value::to_raw_value(&serde_json::json!({ "html": payload })).unwrap();
    // An unknown job type with one attempt goes to dead with an error that
    // names the type.
    let evil = env
        .client
        .enqueue_raw(
            payload,
            &args,
            &JobDefaults {
                max_attempts: 1,
                ..JobDefaults::default()
            },
            EnqueueOptions::new(),
        )
        .await
        .unwrap()
        .id
        .to_string();
    let rec = Recorder::default();
    let w = start_worker(&env, &rec);
    wait_for("evil job dead", Duration::from_secs(10), || async {
        dead_count(&env, "default").await == 1
    })
    .await;
    w.stop().await;
    let job = env
        .client
        .admin()
        .job("default", &evil)
        .await
        .unwrap()
        .unwrap();
    assert!(
        job.last_error().unwrap().error.contains("<script>"),
        "{:?}",
        job.errors
    );
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let q = urlencode(payload);
    for path in [
        "/".to_owned(),
        "/dead".to_owned(),
        format!("/dead?queue=default&type={q}"),
        format!("/dead?queue=default&q={}", urlencode("alert")),
        format!("/jobs/default/{evil}"),
        "/queues/default".to_owned(),
    ] {
        let p = s.get(&path).await;
        assert_eq!(p.status, 200, "{path}");
        assert_no_injection(&p, &path);
    }
    let dead = s
        .get(&format!("/dead?queue=default&q={}", urlencode("alert")))
        .await;
    assert!(
        dead.texts("table.jobs td").iter().any(|t| t == payload),
        "type shown as text"
    );
    let page = s.get(&format!("/jobs/default/{evil}")).await;
    assert!(page.texts("table.errors pre")[0].contains("<script>alert(1)</script>"));
    // A queue name with markup is refused before anything renders it.
    let bad = s.get(&format!("/queues/{}", urlencode("<b>x</b>"))).await;
    assert_eq!(bad.status, 400);
    assert!(bad
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let bad = s
        .get(&format!("/dead?queue={}", urlencode("<b>x</b>")))
        .await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "%{b:02X}");
        out
    })
}

fn assert_no_injection(p: &Page, what: &str) {
    let html = p.html();
    for el in html
        .root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
    {
        let name = el.value().name();
        assert!(
            !matches!(name, "img" | "iframe" | "object" | "embed"),
            "{what}: <{name}> injected"
        );
        if name == "script" {
            assert!(
                el.value()
                    .attr("src")
                    .is_some_and(|s| s.ends_with("/assets/app.js")),
                "{what}: inline script"
            );
            assert_eq!(el.text().count(), 0, "{what}: script body");
        }
        if name == "svg" {
            assert!(el.value().attr("viewBox").is_some(), "{what}: injected svg");
        }
        for (attr, _) in el.value().attrs() {
            assert!(!attr.starts_with("on"), "{what}: {attr} on <{name}>");
            assert_ne!(attr, "style", "{what}: style attribute");
        }
    }
}

/// Paging and filter parameters out of range give 400; nothing huge is read.
#[tokio::test]
async fn paging_and_filter_parameters_are_bounded() {
    let env = TestEnv::start().await;
    env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let long = "x".repeat(201);
    for path in [
        "/queues/default?per_page=501".to_owned(),
        "/queues/default?per_page=0".to_owned(),
        "/queues/default?page=0".to_owned(),
        "/queues/default?page=-1".to_owned(),
        "/queues/default?page=abc".to_owned(),
        "/queues/default?page=100001".to_owned(),
        "/queues/default?page=99999999999999999999999999".to_owned(),
        "/dead?per_page=100000000".to_owned(),
        format!("/dead?queue=default&q={long}"),
        format!("/dead?queue=default&type={long}"),
        "/api/sets/dead?queue=default&per_page=501".to_owned(),
        "/api/queues/default/jobs?page=0".to_owned(),
        "/api/history?minutes=1441".to_owned(),
    ] {
        let p = s.get(&path).await;
        assert_eq!(p.status, 400, "{path}: {}", p.body);
    }
    assert_eq!(
        s.get("/queues/default?per_page=500&page=100000")
            .await
            .status,
        200
    );
    server.stop().await;
}

/// Odd ids and queue names in paths (traversal, encoded slashes, NUL, very
/// long) give 400 or 404, never a page or a 500.
#[tokio::test]
async fn odd_ids_are_refused() {
    let env = TestEnv::start().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let long = "a".repeat(5000);
    for path in [
        "/jobs/default/..".to_owned(),
        "/jobs/default/%2e%2e".to_owned(),
        "/jobs/default/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/jobs/default/a%2Fb".to_owned(),
        "/jobs/default/a%5Cb".to_owned(),
        "/jobs/default/a%00b".to_owned(),
        "/jobs/default/a%22b".to_owned(),
        format!("/jobs/default/{long}"),
        "/jobs/..%2F/x".to_owned(),
        "/jobs/default/../../etc/passwd".to_owned(),
        "/jobs/%00/x".to_owned(),
        format!("/queues/{long}"),
        "/queues/a%2Fb".to_owned(),
        "/jobs/default/0190a6f2-0000-7000-8000-000000000000".to_owned(),
        "/jobs/default/0190a6f2-0000-7000-8000-000000000000/raw".to_owned(),
        "/api/jobs/default/%00".to_owned(),
        "/api/sets/nope?queue=default".to_owned(),
    ] {
        let p = s.get(&path).await;
        assert!(p.status == 400 || p.status == 404, "{path}: {}", p.status);
    }
    s.get("/dead").await;
    let r = s
        .post(
            "/dead/actions",
            &[("queue", "default"), ("retry_id", "../x")],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .post(
            "/dead/actions",
            &[
                ("queue", "default"),
                ("id", &long),
                ("action", "retry_selected"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    server.stop().await;
}

/// A 10 MiB job renders quickly: the page shows the start of the args and
/// links to the full JSON, which is served whole.
#[tokio::test]
async fn ten_mib_job_renders_truncated_with_link_to_full_json() {
    let env = TestEnv::start().await;
    let client = Client::builder(&env.redis.url())
        .max_payload_bytes(16 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let blob = "x".repeat(10 * 1024 * 1024);
    let args = serde_json::value::to_raw_value(&serde_json::json!({ "blob": blob })).unwrap();
    let e = client
        .enqueue_raw(
            "big",
            &args,
            &JobDefaults::default(),
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let id = e.id.to_string();
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let t = Instant::now();
    let p = s.get(&format!("/jobs/default/{id}")).await;
    let took = t.elapsed();
    assert_eq!(p.status, 200);
    assert!(p.body.len() < 200 * 1024, "page is {} bytes", p.body.len());
    assert!(p.body.contains("Full JSON"));
    assert!(took < Duration::from_secs(3), "{took:?}");
    let list = s.get("/scheduled?queue=default").await;
    assert_eq!(list.status, 200);
    assert!(list.body.len() < 200 * 1024);
    let full = s.get(&format!("/jobs/default/{id}/raw")).await;
    assert!(full.body.len() > 10 * 1024 * 1024);
    let _: serde_json::Value = serde_json::from_str(&full.body).unwrap();
    server.stop().await;
}

/// The standalone binary refuses a public address without credentials
/// (exit 2, before touching Redis), and on a loopback address serves until
/// SIGTERM, then exits 0.
#[tokio::test]
async fn binary_refuses_public_bind_and_stops_on_sigterm() {
    let bin = spool_tests::dashboard::fresh_binary("spool-dashboard");
    let out = std::process::Command::new(&bin)
        .args(["--bind", "0.0.0.0:0", "--redis-url", "redis://127.0.0.1:1"])
        .env_remove("SPOOL_DASHBOARD_BASIC_AUTH")
        .env_remove("SPOOL_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen"));

    let env = TestEnv::start().await;
    let DashboardProcess { mut child, url, .. } = DashboardProcess::start(&env, &[]).await;
    let mut s = Session::new(&url, "");
    assert_eq!(s.get("/dead").await.status, 200);
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// Registers a cron table the way a worker does and returns the scheduler.
async fn cron_table(env: &TestEnv, entries: Vec<spool_client::CronEntry>) {
    let s =
        spool_worker::testing::Cron::new(&env.client, entries, spool_worker::CronConfig::default())
            .unwrap();
    s.register().await.unwrap();
    s.run_once().await.unwrap();
}

/// The Cron page lists entries with schedule, zone and next run; pause,
/// resume and run now work (run now twice enqueues one job); payloads in
/// cron args and job type stay text.
#[tokio::test]
async fn cron_page_lists_entries_and_controls_them() {
    let env = TestEnv::start().await;
    let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    cron_table(
        &env,
        vec![
            spool_client::CronEntry::new("nightly", "0 3 * * *", &Noop { n: 1 })
                .timezone("Europe/Berlin")
                .queue("reports"),
            spool_client::CronEntry::raw(
                "evil",
                "@daily",
                "noop",
                serde_json::json!({ "h": payload }),
            ),
        ],
    )
    .await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let page = s.get("/cron").await;
    assert_eq!(page.status, 200);
    assert_no_injection(&page, "/cron");
    let rows = page.texts("table.cron tbody tr");
    assert_eq!(rows.len(), 2);
    let nightly = rows.iter().find(|r| r.contains("nightly")).unwrap();
    assert!(
        nightly.contains("0 3 * * *")
            && nightly.contains("Europe/Berlin")
            && nightly.contains("reports")
    );
    assert!(page
        .texts("table.cron code")
        .iter()
        .any(|t| t.contains(payload)));

    let r = s.post("/cron/nightly/pause", &[]).await;
    assert_eq!(r.status, 303);
    let admin = env.client.admin();
    let paused = |v: Vec<spool_client::admin::CronEntryView>| {
        v.iter().find(|e| e.name == "nightly").unwrap().paused
    };
    assert!(paused(admin.cron_entries().await.unwrap()));
    let page = s.get(&r.header("location").unwrap()).await;
    assert_eq!(page.texts(".notice"), vec!["Cron entry updated."]);
    s.post("/cron/nightly/resume", &[]).await;
    assert!(!paused(admin.cron_entries().await.unwrap()));

    let r1 = s.post("/cron/nightly/run", &[]).await;
    let r2 = s.post("/cron/nightly/run", &[]).await;
    assert_eq!((r1.status, r2.status), (303, 303));
    assert_eq!(admin.queue("reports").await.unwrap().ready, 1);
    let page = s.get("/cron").await;
    let last_job = page.attrs("table.cron a", "href");
    assert_eq!(last_job.len(), 1);
    assert_eq!(s.get(&last_job[0]).await.status, 200);
    assert!(page
        .texts("table.cron td .hint")
        .contains(&"(ready)".to_owned()));
    // Once a worker ran it (its outcome not kept) the page says it finished
    // and links nowhere, rather than to a 404.
    let rec = Recorder::default();
    let w = RunningWorker::start(
        with_fixtures(env.worker().queue("reports", 1), &rec)
            .build()
            .unwrap(),
    );
    wait_for("the cron job ran", Duration::from_secs(10), || async {
        rec.count("noop-1") == 1
    })
    .await;
    w.stop().await;
    let page = s.get("/cron").await;
    assert!(page.attrs("table.cron a", "href").is_empty());
    assert!(
        page.texts("table.cron td .hint")
            .contains(&"(finished; outcome not kept)".to_owned()),
        "{:?}",
        page.texts("table.cron td")
    );

    assert_eq!(s.post("/cron/nope/run", &[]).await.status, 404);
    assert_eq!(s.post("/cron/bad%3Aname/run", &[]).await.status, 400);
    assert_eq!(s.post("/cron/nightly/explode", &[]).await.status, 404);
    assert_eq!(s.get("/cron/nightly/run").await.status, 405);
    let api: serde_json::Value = serde_json::from_str(&s.get("/api/cron").await.body).unwrap();
    assert_eq!(api.as_array().unwrap().len(), 2);
    server.stop().await;
}
