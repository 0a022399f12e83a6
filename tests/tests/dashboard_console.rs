//! The operator's daily console (issue 14, items 8–12), over HTTP against a
//! real Redis: the every-queue Scheduled/Retries/Dead views and their
//! actions across queues, the job-id search box, deleting a ready job and
//! clearing a queue, quieting and stopping a worker process through Redis,
//! the Queues page and its links, the job page's "why dead" and way back,
//! and styled error pages (404, 400, Redis down) with a favicon.

// Test helpers: a failed unwrap is a failed test; page walks read best in one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::time::Duration;

use spool_client::{EnqueueOptions, JobState};
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::{DashboardServer, Session};
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};

async fn serve(env: &TestEnv) -> (DashboardServer, Session) {
    let server = DashboardServer::start(spool_dashboard::router(
        env.client.admin(),
        DashboardConfig::default(),
    ))
    .await;
    let session = Session::new(&server.url(), "");
    (server, session)
}

fn html() -> [(&'static str, String); 1] {
    [("accept", "text/html,application/xhtml+xml".to_owned())]
}

/// Scheduled jobs in three queues, `delays` seconds ahead, in this order.
async fn scheduled(env: &TestEnv, placed: &[(&str, u64)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, (queue, secs)) in placed.iter().enumerate() {
        let id = env
            .client
            .enqueue_with(
                &Noop {
                    n: u64::try_from(n).unwrap(),
                },
                EnqueueOptions::new()
                    .queue(*queue)
                    .delay(Duration::from_secs(*secs)),
            )
            .await
            .unwrap();
        ids.push(id.id.to_string());
    }
    ids
}

#[tokio::test]
async fn every_queue_view_merges_the_sets_and_acts_across_queues() {
    let env = TestEnv::start().await;
    let ids = scheduled(
        &env,
        &[("alpha", 300), ("beta", 100), ("gamma", 200), ("beta", 400)],
    )
    .await;
    let (server, mut s) = serve(&env).await;

    // The default is every queue, soonest first, with a Queue column.
    let p = s.get("/scheduled").await;
    assert_eq!(p.status, 200);
    let tabs = p.texts("nav.tabs a");
    assert_eq!(tabs[0], "All queues 4", "{tabs:?}");
    assert_eq!(p.texts("nav.tabs a.active"), vec!["All queues 4"]);
    let shown = p.texts("table.jobs tbody td:nth-child(2) a");
    assert_eq!(
        shown,
        [&ids[1], &ids[2], &ids[0], &ids[3]].map(String::as_str)
    );
    assert_eq!(
        p.texts("table.jobs tbody td:nth-child(3)"),
        vec!["beta", "gamma", "alpha", "beta"]
    );
    // Select-all and the bulk buttons sit above the table too.
    assert_eq!(p.attrs("th.select input[data-select-all]", "type").len(), 1);
    assert_eq!(p.attrs("div.bulk.top button", "value").len(), 4);
    let keys = p.attrs("td.select input", "value");
    assert_eq!(keys[0], format!("beta:{}", ids[1]));
    // One queue still has its own view; paging across queues is bounded.
    let one = s.get("/scheduled?queue=beta").await;
    assert_eq!(one.texts("table.jobs tbody td:nth-child(2) a").len(), 2);
    assert_eq!(one.attrs("td.select input", "value")[0], ids[1]);
    let deep = s.get("/scheduled?page=100&per_page=25").await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    assert!(deep.body.contains("pick one queue"), "{}", deep.body);

    // Run two selected jobs of two queues now.
    let r = s
        .post(
            "/scheduled/actions",
            &[
                ("queue", ""),
                ("id", &format!("gamma:{}", ids[2])),
                ("id", &format!("alpha:{}", ids[0])),
                ("action", "run_selected"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with("/scheduled?queue=&"), "{loc}");
    assert!(loc.contains("done=run&n=2"), "{loc}");
    let admin = env.client.admin();
    for (q, id) in [("gamma", &ids[2]), ("alpha", &ids[0])] {
        let job = admin.job(q, id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Ready, "{q}");
    }
    // A row button of the every-queue page.
    let r = s
        .post(
            "/scheduled/actions",
            &[("queue", ""), ("delete_id", &format!("beta:{}", ids[3]))],
        )
        .await;
    assert!(r.header("location").unwrap().contains("done=delete&n=1"));
    assert!(admin.job("beta", &ids[3]).await.unwrap().is_none());
    // An id without its queue, or with a bad queue, is refused; nothing moves.
    for bad in [ids[1].clone(), format!("no such/q:{}", ids[1])] {
        let r = s
            .post(
                "/scheduled/actions",
                &[("queue", ""), ("id", &bad), ("action", "run_selected")],
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(admin.queue("beta").await.unwrap().scheduled, 1);

    // "All matching" across queues, with a filter.
    scheduled(&env, &[("alpha", 500), ("gamma", 600)]).await;
    let f = s.get("/scheduled?queue=&type=noop").await;
    assert_eq!(f.texts("table.jobs tbody tr").len(), 3);
    let r = s
        .post(
            "/scheduled/actions",
            &[("queue", ""), ("type", "noop"), ("action", "delete_all")],
        )
        .await;
    assert!(r.header("location").unwrap().contains("n=3"));
    for q in ["alpha", "beta", "gamma"] {
        assert_eq!(admin.queue(q).await.unwrap().scheduled, 0, "{q}");
    }
    let empty = s.get("/scheduled").await;
    assert!(empty.body.contains("No scheduled jobs in any queue"));
    server.stop().await;
}

#[tokio::test]
async fn dead_jobs_of_every_queue_show_newest_first_and_say_why_they_died() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let w = RunningWorker::start(
        with_fixtures(env.worker().queue("default", 1).queue("other", 1), &rec)
            .build()
            .unwrap(),
    );
    let permanent = Scripted {
        fail_times: u32::MAX,
        permanent: true,
        ..Scripted::ok("p")
    };
    let exhausted = Scripted {
        fail_times: u32::MAX,
        ..Scripted::ok("x")
    };
    let first = env.client.enqueue(&permanent).await.unwrap().to_string();
    let admin = env.client.admin();
    wait_for("first dead", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    let second = env
        .client
        .enqueue_with(&exhausted, EnqueueOptions::new().queue("other"))
        .await
        .unwrap()
        .id
        .to_string();
    wait_for("second dead", Duration::from_secs(10), || async {
        admin.queue("other").await.unwrap().dead == 1
    })
    .await;
    w.stop().await;
    let (server, mut s) = serve(&env).await;
    let p = s.get("/dead").await;
    assert_eq!(
        p.texts("table.jobs tbody td:nth-child(2) a"),
        [second.as_str(), first.as_str()],
        "most recent first"
    );

    let page = s.get(&format!("/jobs/default/{first}")).await;
    let fields = page.texts("dl.fields dd");
    let labels = page.texts("dl.fields dt");
    let why = labels.iter().position(|l| l == "Why dead").unwrap();
    assert!(
        fields[why].starts_with("failed permanently on attempt 1 of 3"),
        "{fields:?}"
    );
    assert!(!labels.contains(&"Ready since".to_owned()), "{labels:?}");
    assert_eq!(
        page.attrs("p.back-link a", "href"),
        vec!["/dead?queue=default"]
    );
    assert_eq!(page.texts("p.back-link a"), vec!["← Dead of queue default"]);
    let page = s.get(&format!("/jobs/other/{second}")).await;
    assert!(
        page.texts("dl.fields dd")
            .contains(&"attempts exhausted (3 of 3 failed)".to_owned()),
        "{:?}",
        page.texts("dl.fields dd")
    );
    // Times carry a machine-readable UTC stamp for the viewer's zone.
    assert!(!page.attrs("dl.fields time", "datetime").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_search_box_finds_a_job_in_any_queue() {
    let env = TestEnv::start().await;
    let ids = scheduled(&env, &[("beta", 100)]).await;
    let ready = env
        .client
        .enqueue_with(&Noop { n: 9 }, EnqueueOptions::new().queue("gamma"))
        .await
        .unwrap()
        .id
        .to_string();
    let (server, mut s) = serve(&env).await;
    for path in ["/", "/queues", "/dead", "/processes", "/cron", "/events"] {
        let p = s.get(path).await;
        assert_eq!(
            p.attrs("header form.search input[name=id]", "type"),
            vec!["search"],
            "{path}"
        );
    }
    for (id, queue) in [(&ids[0], "beta"), (&ready, "gamma")] {
        let r = s.get(&format!("/search?id=%20{id}%20")).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.header("location").unwrap(), format!("/jobs/{queue}/{id}"));
    }
    let r = s.get("/search?id=0000-no-such-job").await;
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("no job 0000-no-such-job in any queue"),
        "{}",
        r.body
    );
    assert_eq!(s.get("/search?id=").await.status, 400);
    assert_eq!(s.get("/search?id=a/b").await.status, 400);
    // A browser gets the 404 as a styled page with a way back.
    let r = s.get_with("/search?id=0000-no-such-job", &html()).await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.texts("h1"), vec!["Not found (404)"]);
    assert!(r.texts("p.error-message")[0].contains("no job 0000-no-such-job"));
    assert_eq!(r.texts("p.back a"), vec!["← Back", "Overview"]);
    server.stop().await;
}

#[tokio::test]
async fn queue_page_deletes_a_ready_job_and_clears_the_queue() {
    let env = TestEnv::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(env.client.enqueue(&Noop { n }).await.unwrap().to_string());
    }
    let later = scheduled(&env, &[("default", 300)]).await;
    let (server, mut s) = serve(&env).await;
    let q = s.get("/queues/default").await;
    assert_eq!(q.attrs("td.actions input[name=id]", "value"), ids);
    assert_eq!(q.texts("button[data-confirm]")[0], "Clear queue");

    let r = s.post("/queues/default/delete", &[("id", &ids[1])]).await;
    assert_eq!(r.status, 303);
    let after = s.get(&r.header("location").unwrap()).await;
    assert_eq!(after.texts(".notice"), vec!["1 job deleted."]);
    let admin = env.client.admin();
    assert!(admin.job("default", &ids[1]).await.unwrap().is_none());
    let r = s.post("/queues/default/delete", &[("id", &ids[1])]).await;
    assert!(
        r.header("location").unwrap().contains("n=0"),
        "gone already"
    );
    assert_eq!(
        s.post("/queues/default/delete", &[("id", "../x")])
            .await
            .status,
        400
    );

    let r = s.post("/queues/default/clear", &[]).await;
    let after = s.get(&r.header("location").unwrap()).await;
    assert_eq!(
        after.texts(".notice"),
        vec!["2 jobs cleared from ready (deleted)."]
    );
    let info = admin.queue("default").await.unwrap();
    assert_eq!((info.ready, info.scheduled), (0, 1), "scheduled jobs stay");
    assert!(admin.job("default", &later[0]).await.unwrap().is_some());

    // The Queues tab lists it, each count linking to its jobs.
    let list = s.get("/queues").await;
    assert_eq!(list.texts("header nav a.active"), vec!["Queues"]);
    let links = list.attrs("table.queues tbody a", "href");
    for want in [
        "/queues/default",
        "/scheduled?queue=default",
        "/retries?queue=default",
        "/dead?queue=default",
    ] {
        assert!(links.iter().any(|l| l == want), "{want} in {links:?}");
    }
    let home = s.get("/").await;
    assert!(
        home.attrs("a.total", "href")
            .iter()
            .all(|h| !h.starts_with("/api/")),
        "overview cards link to pages"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_worker_process_is_quieted_then_stopped_from_the_processes_page() {
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let w = RunningWorker::start(with_fixtures(env.worker(), &rec).build().unwrap());
    let admin = env.client.admin();
    wait_for("registered", Duration::from_secs(10), || async {
        admin.processes().await.unwrap().len() == 1
    })
    .await;
    let id = admin.processes().await.unwrap()[0].info.id.clone();
    let (server, mut s) = serve(&env).await;
    let p = s.get("/processes").await;
    assert_eq!(p.texts("td.actions button"), vec!["Quiet", "Stop"]);

    let path = format!("/processes/{}", urlencode(&id));
    let r = s.post(&format!("{path}/quiet"), &[]).await;
    assert_eq!(r.status, 303);
    let after = s.get(&r.header("location").unwrap()).await;
    assert!(after.texts(".notice")[0].starts_with("Quiet requested"));
    assert_eq!(after.texts("span.badge.quiet"), vec!["quiet"]);
    // Two heartbeats later the process fetches nothing new, and stays.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let job = env.client.enqueue(&Noop { n: 1 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let view = admin.job("default", job.as_str()).await.unwrap().unwrap();
    assert_eq!(
        view.state,
        JobState::Ready,
        "a quiet process fetches nothing"
    );
    assert!(!w.is_finished());
    assert_eq!(admin.processes().await.unwrap().len(), 1);

    let r = s.post(&format!("{path}/stop"), &[]).await;
    assert!(r.header("location").unwrap().contains("done=stop"));
    wait_for(
        "stopped and unregistered",
        Duration::from_secs(10),
        || async { w.is_finished() && admin.processes().await.unwrap().is_empty() },
    )
    .await;
    w.stop().await;
    // A process that is gone gets nothing and says so.
    let r = s.post(&format!("{path}/quiet"), &[]).await;
    assert!(r.header("location").unwrap().contains("done=gone"));
    assert_eq!(s.post(&format!("{path}/reboot"), &[]).await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn errors_are_styled_pages_for_browsers_and_plain_text_for_tools() {
    let mut env = TestEnv::start().await;
    let (server, mut s) = serve(&env).await;
    let p = s.get_with("/nope", &html()).await;
    assert_eq!(p.status, 404);
    assert!(p.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(p.texts("h1"), vec!["Not found (404)"]);
    assert_eq!(
        p.attrs("link[rel=icon]", "href"),
        vec!["/assets/favicon.svg"]
    );
    let bad = s.get_with("/queues/%3Cb%3E", &html()).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("&#60;b&#62;"), "escaped: {}", bad.body);
    assert!(!bad.body.contains("<b>"));
    // Tools keep plain text: no Accept: text/html, or the JSON API.
    let plain = s.get("/nope").await;
    assert!(plain
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let api = s.get_with("/api/jobs/default/nope", &html()).await;
    assert_eq!(api.status, 404);
    assert!(api
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    for icon in ["/favicon.ico", "/assets/favicon.svg"] {
        let i = s.get(icon).await;
        assert_eq!(i.status, 200);
        assert_eq!(i.header("content-type").unwrap(), "image/svg+xml");
    }
    // Redis down: a 503 page that says so, with "try again".
    if let spool_tests::TestServer::Single(_) = env.redis {
        env.redis.kill();
        let down = s.get_with("/", &html()).await;
        assert_eq!(down.status, 503, "{}", down.body);
        assert_eq!(down.texts("h1"), vec!["Redis is not reachable (503)"]);
        assert!(down.texts("p.back a").contains(&"Try again".to_owned()));
    }
    server.stop().await;
}

/// Every byte percent-encoded (a process id has `:`).
fn urlencode(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "%{b:02X}");
        out
    })
}
