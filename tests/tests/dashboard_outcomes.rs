//! Dashboard and job outcomes over HTTP against a real Redis: the job
//! page's timeline, the page of a finished job from its kept outcome
//! (result escaped and bounded), the Cancel action on the job page and on
//! the Processes page (CSRF-gated like every action), and the single-job
//! JSON's `status`.

// Test helpers: a failed unwrap is a failed test; a page walk reads best in one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{EnqueueOptions, FixedDelay, Job, JobId, JobOptions, JobOutput, Status};
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::{DashboardServer, Page, Session};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};

const KEEP: Duration = Duration::from_secs(600);

/// One refused-POST case: what it is, form fields, extra headers.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, String)>);

/// Returns its text (kept for ten minutes).
#[derive(Serialize, Deserialize)]
struct Echo {
    text: String,
}

impl Job for Echo {
    const TYPE: &'static str = "echo";
    fn options() -> JobOptions {
        JobOptions::default().keep_outcome(KEEP)
    }
}

impl JobOutput for Echo {
    type Output = String;
}

/// Fails its first two runs with `error`, then succeeds (kept outcome).
#[derive(Serialize, Deserialize)]
struct Flaky {
    error: String,
}

impl Job for Flaky {
    const TYPE: &'static str = "flaky";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(FixedDelay(Duration::from_millis(50)))
            .keep_outcome(KEEP)
    }
}

/// Fails and asks to be retried in an hour: it sits in the retry set.
#[derive(Serialize, Deserialize)]
struct Later;

impl Job for Later {
    const TYPE: &'static str = "later";
}

/// Runs until it is cancelled (at most a minute).
#[derive(Serialize, Deserialize)]
struct Patient;

impl Job for Patient {
    const TYPE: &'static str = "patient";
    fn options() -> JobOptions {
        JobOptions::default()
            .keep_outcome(KEEP)
            .timeout(Duration::from_secs(60))
    }
}

fn worker(env: &TestEnv) -> RunningWorker {
    let w = env
        .worker()
        .register_returning(|_ctx, job: Echo| async move { Ok(job.text) })
        .register(|ctx: JobContext, job: Flaky| async move {
            if ctx.attempt() < 3 {
                return Err(JobError::retry(format!("{} {}", job.error, ctx.attempt())));
            }
            Ok(())
        })
        .register(|_ctx, _job: Later| async move {
            Err(JobError::retry_after("not yet", Duration::from_secs(3600)))
        })
        .register(|ctx: JobContext, _job: Patient| async move {
            ctx.cancellation().cancelled().await;
            Err(JobError::retry("stopped: cancelled"))
        })
        .build()
        .unwrap();
    RunningWorker::start(w)
}

async fn serve(env: &TestEnv, config: DashboardConfig) -> (DashboardServer, Session) {
    let server = DashboardServer::start(spool_dashboard::router(env.client.admin(), config)).await;
    let session = Session::new(&server.url(), "");
    (server, session)
}

async fn wait_status(env: &TestEnv, id: &JobId, want: Status) {
    wait_for(
        &format!("job {id} {want}"),
        Duration::from_secs(10),
        || async { env.client.status(id).await.unwrap().status == want },
    )
    .await;
}

/// The timeline rows' cells: (at, state, attempt, worker, error).
fn timeline(p: &Page) -> Vec<Vec<String>> {
    let html = p.html();
    let row = scraper::Selector::parse("table.timeline tbody tr").unwrap();
    let cell = scraper::Selector::parse("td").unwrap();
    html.select(&row)
        .map(|r| {
            r.select(&cell)
                .map(|c| c.text().collect::<String>().trim().to_owned())
                .collect()
        })
        .collect()
}

fn states(rows: &[Vec<String>]) -> Vec<&str> {
    rows.iter().map(|r| r[2].as_str()).collect()
}

/// A time with milliseconds, as the timeline prints it.
fn has_ms(at: &str) -> bool {
    let Some(t) = at.strip_suffix(" UTC") else {
        return false;
    };
    t.len() == "2025-01-02 03:04:05.123".len() && t.as_bytes()[19] == b'.'
}

/// No element or attribute came from stored data: the only script is
/// app.js, no img, no event handler attribute.
fn assert_no_injection(p: &Page, what: &str) {
    let html = p.html();
    for el in html
        .root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
    {
        let name = el.value().name();
        assert!(!matches!(name, "img" | "iframe"), "{what}: <{name}>");
        if name == "script" {
            assert!(
                el.value()
                    .attr("src")
                    .is_some_and(|s| s.ends_with("/assets/app.js")),
                "{what}: inline script"
            );
        }
        for (attr, _) in el.value().attrs() {
            assert!(!attr.starts_with("on"), "{what}: {attr} on <{name}>");
        }
    }
}

/// A job that failed and waits for its retry shows its timeline on the job
/// page (ready, active, retry; times with milliseconds, attempt, worker,
/// the short error) and a Cancel button; a job that retried twice and then
/// succeeded shows all nine steps on its outcome page.
#[tokio::test]
async fn timeline_is_rendered_for_a_job_that_retried() {
    let env = TestEnv::start().await;
    let w = worker(&env);
    let later = env.client.enqueue(&Later).await.unwrap();
    let flaky = env
        .client
        .enqueue(&Flaky {
            error: "flaky run".into(),
        })
        .await
        .unwrap();
    wait_status(&env, &later, Status::Retry).await;
    wait_status(&env, &flaky, Status::Done).await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;

    let p = s.get(&format!("/jobs/default/{later}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let rows = timeline(&p);
    assert_eq!(states(&rows), ["ready", "active", "retry"], "{rows:?}");
    assert!(rows.iter().all(|r| has_ms(&r[0])), "{rows:?}");
    assert_eq!(rows[1][3], "1", "attempt of the run");
    assert!(!rows[1][4].is_empty(), "the worker of the run");
    assert_eq!(rows[2][5], "not yet", "the error of the failure");
    assert_eq!(
        p.attrs("form[action$='/cancel']", "action"),
        [format!("/jobs/default/{later}/cancel")]
    );

    let p = s.get(&format!("/jobs/default/{flaky}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let rows = timeline(&p);
    assert_eq!(
        states(&rows),
        ["ready", "active", "retry", "ready", "active", "retry", "ready", "active", "done"]
    );
    assert_eq!(rows[2][5], "flaky run 1");
    assert_eq!(rows[5][5], "flaky run 2");
    assert!(p.texts("dd").iter().any(|t| t == "3 of 3"), "attempts");
    assert!(p.attrs("form[action$='/cancel']", "action").is_empty());
    server.stop().await;
}

/// A done job is no longer stored; with a kept outcome its page renders
/// from the outcome (state, attempts, finished time, result, timeline),
/// and the single-job JSON carries `status`. Without a kept outcome, or
/// for an id that never existed, both stay 404.
#[tokio::test]
async fn done_job_with_kept_outcome_renders_its_result() {
    let env = TestEnv::start().await;
    let w = worker(&env);
    let kept = env
        .client
        .enqueue(&Echo {
            text: "hello outcome".into(),
        })
        .await
        .unwrap();
    let gone = env
        .client
        .enqueue_with(
            &Echo {
                text: "gone".into(),
            },
            EnqueueOptions::new().keep_outcome(Duration::ZERO),
        )
        .await
        .unwrap()
        .id;
    wait_status(&env, &kept, Status::Done).await;
    wait_for("the unkept job ran", Duration::from_secs(10), || async {
        env.client
            .admin()
            .job("default", gone.as_str())
            .await
            .unwrap()
            .is_none()
    })
    .await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;

    let p = s.get(&format!("/jobs/default/{kept}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.texts(".fields .badge"), ["done"]);
    assert_eq!(p.texts("pre.result"), ["\"hello outcome\""]);
    let dd = p.texts("dd");
    assert!(dd.iter().any(|t| t == "echo"), "type: {dd:?}");
    // The short form of a job that ran once keeps no max_attempts.
    assert!(dd.iter().any(|t| t == "1"), "attempts: {dd:?}");
    assert!(dd.iter().any(|t| has_ms(t)), "finished time: {dd:?}");
    assert_eq!(states(&timeline(&p)), ["ready", "active", "done"]);
    assert!(p.attrs("form[action$='/cancel']", "action").is_empty());

    let api = s.get(&format!("/api/jobs/default/{kept}")).await;
    assert_eq!(api.status, 200);
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["id"], kept.as_str());
    assert_eq!(v["state"], "done");
    assert_eq!(v["status"]["state"], "done");
    assert_eq!(v["status"]["result"], "hello outcome");
    assert_eq!(v["status"]["attempt"], 1);
    let steps: Vec<&str> = v["status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["ready", "active", "done"]);

    // A stored job keeps its old fields and gains `status`.
    let ready = env.client.enqueue(&Later).await.unwrap();
    let api = s.get(&format!("/api/jobs/default/{ready}")).await;
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["state"], "ready");
    assert_eq!(v["record"]["type"], "later");
    assert!(v["raw"].is_string() && v["errors"].is_array());
    assert_eq!(v["status"]["state"], "ready");
    assert_eq!(v["status"]["timeline"][0]["state"], "ready");

    for id in [gone.to_string(), JobId::new().to_string()] {
        assert_eq!(s.get(&format!("/jobs/default/{id}")).await.status, 404);
        assert_eq!(s.get(&format!("/api/jobs/default/{id}")).await.status, 404);
    }
    server.stop().await;
}

/// The Cancel button of a scheduled job: a same-origin POST with the
/// token cancels it and comes back to the job page (now its outcome) with
/// a notice; a second click says it had already finished; a job that keeps
/// no outcome comes back to its queue page; a GET mutates nothing.
#[tokio::test]
async fn cancel_via_post_cancels_a_scheduled_job() {
    let env = TestEnv::start().await;
    let later = Duration::from_secs(3600);
    let kept = env
        .client
        .enqueue_in(&Echo { text: "k".into() }, later)
        .await
        .unwrap();
    let plain = env
        .client
        .enqueue_with(
            &Echo { text: "p".into() },
            EnqueueOptions::new()
                .delay(later)
                .keep_outcome(Duration::ZERO),
        )
        .await
        .unwrap()
        .id;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let page = format!("/jobs/default/{kept}");
    let p = s.get(&page).await;
    assert_eq!(p.texts(".fields .badge"), ["scheduled"]);
    let action = format!("{page}/cancel");
    assert_eq!(
        p.attrs("form[action$='/cancel']", "action"),
        std::slice::from_ref(&action)
    );
    assert_eq!(
        s.get(&action).await.status,
        405,
        "a GET to the action is refused"
    );
    assert_eq!(
        env.client.status(&kept).await.unwrap().status,
        Status::Scheduled
    );

    let r = s.post(&action, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.header("location").unwrap();
    assert_eq!(back, format!("{page}?done=cancelled&from=scheduled"));
    assert_eq!(
        env.client.status(&kept).await.unwrap().status,
        Status::Cancelled
    );
    let p = s.get(&back).await;
    assert_eq!(p.status, 200);
    assert_eq!(
        p.texts(".notice"),
        ["Job cancelled (it was scheduled): it will not run."]
    );
    assert_eq!(p.texts(".fields .badge"), ["cancelled"]);
    assert_eq!(
        states(&timeline(&p)).last().copied(),
        Some("cancelled"),
        "{}",
        p.body
    );
    assert!(p.attrs("form[action$='/cancel']", "action").is_empty());

    // Again: already finished, nothing changed.
    let r = s.post(&action, &[]).await;
    assert_eq!(
        r.header("location").unwrap(),
        format!("{page}?done=cancel_finished&from=cancelled")
    );
    let p = s.get(&r.header("location").unwrap()).await;
    assert_eq!(
        p.texts(".notice"),
        ["The job had already finished (cancelled): nothing changed."]
    );

    // No kept outcome: the job page would be a 404, so back to the queue.
    s.get(&format!("/jobs/default/{plain}")).await;
    let r = s.post(&format!("/jobs/default/{plain}/cancel"), &[]).await;
    let back = r.header("location").unwrap();
    assert_eq!(back, "/queues/default?done=cancelled&from=scheduled");
    assert!(env
        .client
        .admin()
        .job("default", plain.as_str())
        .await
        .unwrap()
        .is_none());
    let p = s.get(&back).await;
    assert_eq!(
        p.texts(".notice"),
        ["Job cancelled (it was scheduled): it will not run."]
    );

    // An id that is nowhere.
    let r = s
        .post(&format!("/jobs/default/{}/cancel", JobId::new()), &[])
        .await;
    assert_eq!(
        r.header("location").unwrap(),
        "/queues/default?done=cancel_not_found"
    );
    server.stop().await;
}

/// A Cancel POST without the token, with a wrong one, or from another
/// origin is refused with 403 and the job stays scheduled; a read-only
/// dashboard shows no Cancel button and refuses the POST.
#[tokio::test]
async fn cancel_post_without_a_token_is_refused() {
    let env = TestEnv::start().await;
    let id = env
        .client
        .enqueue_in(&Echo { text: "x".into() }, Duration::from_secs(3600))
        .await
        .unwrap();
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let action = format!("/jobs/default/{id}/cancel");
    s.get(&format!("/jobs/default/{id}")).await;
    let token = s.csrf.clone().unwrap();
    let same = ("sec-fetch-site", "same-origin".to_owned());
    let refused: [Case; 4] = [
        ("no token", vec![], vec![same.clone()]),
        ("wrong token", vec![("csrf", "0000")], vec![same.clone()]),
        (
            "cross-site",
            vec![("csrf", token.as_str())],
            vec![("sec-fetch-site", "cross-site".into())],
        ),
        (
            "foreign origin",
            vec![("csrf", token.as_str())],
            vec![("origin", "http://evil.example".into())],
        ),
    ];
    for (what, fields, headers) in refused {
        let r = s.post_raw(&action, &fields, &headers).await;
        assert_eq!(r.status, 403, "{what}");
    }
    assert_eq!(
        env.client.status(&id).await.unwrap().status,
        Status::Scheduled
    );
    server.stop().await;

    let (server, mut s) = serve(&env, DashboardConfig::default().read_only(true)).await;
    let p = s.get(&format!("/jobs/default/{id}")).await;
    assert!(p.attrs("form[action$='/cancel']", "action").is_empty());
    assert_eq!(s.post(&action, &[]).await.status, 403);
    assert_eq!(
        env.client.status(&id).await.unwrap().status,
        Status::Scheduled
    );
    server.stop().await;
}

/// A result, an error and a timeline entry carrying markup come out as
/// text on the outcome page: no injected element or attribute.
#[tokio::test]
async fn hostile_result_and_error_are_escaped() {
    let env = TestEnv::start().await;
    let payload = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>";
    let w = worker(&env);
    let echo = env
        .client
        .enqueue(&Echo {
            text: payload.into(),
        })
        .await
        .unwrap();
    let flaky = env
        .client
        .enqueue(&Flaky {
            error: payload.into(),
        })
        .await
        .unwrap();
    wait_status(&env, &echo, Status::Done).await;
    wait_status(&env, &flaky, Status::Done).await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let p = s.get(&format!("/jobs/default/{echo}")).await;
    assert_eq!(p.status, 200);
    assert_no_injection(&p, "result");
    assert_eq!(
        p.texts("pre.result"),
        [serde_json::to_string(payload).unwrap()]
    );
    assert!(!p.body.contains("<script>alert"), "escaped in the source");
    assert!(
        p.body.contains("&lt;script&gt;") || p.body.contains("&#60;script&#62;"),
        "escaped in the source"
    );
    let p = s.get(&format!("/jobs/default/{flaky}")).await;
    assert_eq!(p.status, 200);
    assert_no_injection(&p, "timeline error");
    assert_eq!(timeline(&p)[2][5], format!("{payload} 1"));
    server.stop().await;
}

/// A result of 300,000 bytes is cut on the page (the first 64 KiB, with a
/// note and a link to the JSON, which has it whole).
#[tokio::test]
async fn huge_result_is_truncated_on_the_page() {
    let env = TestEnv::start().await;
    let w = worker(&env);
    let text = "y".repeat(300_000);
    let id = env
        .client
        .enqueue(&Echo { text: text.clone() })
        .await
        .unwrap();
    wait_status(&env, &id, Status::Done).await;
    w.stop().await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let p = s.get(&format!("/jobs/default/{id}")).await;
    assert_eq!(p.status, 200);
    let shown = &p.texts("pre.result")[0];
    assert_eq!(shown.len(), 64 * 1024, "the first 64 KiB");
    assert_eq!(*shown, format!("\"{}", &text[..64 * 1024 - 1]));
    assert!(
        p.body.contains("Showing the first 65536 of 300002 bytes"),
        "says it was cut"
    );
    assert!(p.body.len() < 100_000, "page is {} bytes", p.body.len());
    let api = s.get(&format!("/api/jobs/default/{id}")).await;
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["status"]["result"].as_str().unwrap().len(), 300_000);
    server.stop().await;
}

/// The Processes page lists each busy job with a Cancel button; clicking it
/// signals the running job, comes back to Processes with a notice, and the
/// job ends cancelled.
#[tokio::test]
async fn cancel_from_the_processes_page_signals_a_running_job() {
    let env = TestEnv::start().await;
    let w = worker(&env);
    let id = env.client.enqueue(&Patient).await.unwrap();
    wait_status(&env, &id, Status::Active).await;
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;
    let action = format!("/jobs/default/{id}/cancel");
    wait_for("busy job listed", Duration::from_secs(10), || {
        let mut s = Session::new(&server.url(), "");
        let action = action.clone();
        async move {
            s.get("/processes")
                .await
                .attrs("form[action$='/cancel']", "action")
                .contains(&action)
        }
    })
    .await;
    let p = s.get("/processes").await;
    assert_eq!(
        p.attrs(
            &format!("form[action='{action}'] input[name=back]"),
            "value"
        ),
        ["processes"]
    );
    // The job page of a running job offers Cancel too.
    let job = s.get(&format!("/jobs/default/{id}")).await;
    assert_eq!(job.texts(".fields .badge"), ["active"]);
    assert_eq!(
        job.attrs("form[action$='/cancel']", "action"),
        std::slice::from_ref(&action)
    );

    let r = s.post(&action, &[("back", "processes")]).await;
    assert_eq!(r.status, 303);
    let back = r.header("location").unwrap();
    assert_eq!(back, "/processes?done=cancel_signalled");
    wait_status(&env, &id, Status::Cancelled).await;
    let p = s.get(&back).await;
    assert!(
        p.texts(".notice")[0].starts_with("Cancel requested"),
        "{:?}",
        p.texts(".notice")
    );
    w.stop().await;
    server.stop().await;
}

/// A kept outcome written by someone else is read as bytes: one that is
/// not Spool's JSON gives a page (and JSON) saying so, never a 500; one
/// whose result nests 5,000 deep renders; markup in either stays text.
#[tokio::test]
async fn foreign_outcomes_render_without_failing() {
    let env = TestEnv::start().await;
    let mut raw = env.raw().await;
    // A bucket of kept outcomes that ends in ten minutes (PROTOCOL.md).
    let end_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 600_000;
    let set = |id: &str, value: String| {
        let mut p = redis::pipe();
        p.cmd("HSET")
            .arg(format!("spool:{{default}}:outcomes:{end_ms}"))
            .arg(id)
            .arg(value)
            .ignore()
            .cmd("ZADD")
            .arg("spool:{default}:outcomes")
            .arg(end_ms.to_string())
            .arg(end_ms.to_string())
            .ignore();
        p
    };
    let garbage = JobId::new();
    let _: () = set(garbage.as_str(), "<script>alert(1)</script>".into())
        .query_async(&mut raw)
        .await
        .unwrap();
    let deep = JobId::new();
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let outcome = format!(
        r#"[2,null,"done",1,null,null,"<b>t</b>",{nested},null,[[1,"<i>odd</i>",0],[2,"done",1]],1]"#
    );
    let _: () = set(deep.as_str(), outcome)
        .query_async(&mut raw)
        .await
        .unwrap();
    let (server, mut s) = serve(&env, DashboardConfig::default()).await;

    let p = s.get(&format!("/jobs/default/{garbage}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_no_injection(&p, "garbage outcome");
    assert!(
        p.body.contains("The kept outcome cannot be read"),
        "{}",
        p.body
    );
    let api = s.get(&format!("/api/jobs/default/{garbage}")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert!(
        v["status"].is_null() && v["status_error"].is_string(),
        "{v}"
    );

    let p = s.get(&format!("/jobs/default/{deep}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_no_injection(&p, "deep outcome");
    assert_eq!(p.texts(".fields .badge"), ["done"]);
    assert_eq!(p.texts("pre.result"), std::slice::from_ref(&nested));
    assert_eq!(states(&timeline(&p)), ["<i>odd</i>", "done"]);
    let api = s.get(&format!("/api/jobs/default/{deep}")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    server.stop().await;
}
