//! End-to-end in a real headless Chromium driven over `WebDriver` (plain HTTP
//! to chromedriver): open the Dead page, click Retry on a dead job, see it
//! leave the dead set and get processed by a running worker; and walk the
//! operator's console: the every-queue Dead view, select-all and a bulk
//! delete with its confirmation (dismissed, then accepted), the search box,
//! a styled 404 with its way back, and times shown in the viewer's zone.
//!
//! Skipped with a message only when Chromium or chromedriver is missing and
//! `CI` is not set; in CI a missing browser fails the test.

// Test helpers: a failed unwrap is a failed test; the end-to-end story reads best in one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use spool_client::EnqueueOptions;
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::DashboardServer;
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C `WebDriver`'s key for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver child on a free loopback port, killed on drop.
struct Driver {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver ready", Duration::from_secs(15), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                match http.get(format!("{url}/status")).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                }
            }
        })
        .await;
        Self { child, url, http }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("json");
        assert!(v["value"]["error"].is_null(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn browser_available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// False (after saying so) when the browser is missing outside CI; in CI a
/// missing browser fails the test.
fn browser_or_skip() -> bool {
    if browser_available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: install chromium and chromium-driver"
    );
    eprintln!("SKIPPED: {CHROMIUM} or {CHROMEDRIVER} not found (apt-get install chromium chromium-driver)");
    false
}

/// A headless Chromium session of a [`Driver`].
struct Browser {
    driver: Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let driver = Driver::start().await;
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let session = driver
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        let sid = session["sessionId"].as_str().expect("session id");
        Self {
            session: format!("/session/{sid}"),
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn title(&self) -> String {
        let t = self.call(reqwest::Method::GET, "/title", None).await;
        t.as_str().unwrap_or_default().to_owned()
    }

    async fn url(&self) -> String {
        let u = self.call(reqwest::Method::GET, "/url", None).await;
        u.as_str().unwrap_or_default().to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let e = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        e[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {e}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let t = self
            .call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        t.as_str().unwrap_or_default().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Runs `script` in the page and returns its value.
    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The open confirmation's text, then accepts or dismisses it.
    async fn answer_confirm(&self, accept: bool) -> String {
        let text = self.call(reqwest::Method::GET, "/alert/text", None).await;
        let verb = if accept { "accept" } else { "dismiss" };
        self.call(
            reqwest::Method::POST,
            &format!("/alert/{verb}"),
            Some(json!({})),
        )
        .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn stop(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
        self.driver.stop().await;
    }
}

/// Clicking Retry on the Dead page in a real browser moves the job to ready,
/// and a running worker processes it.
#[tokio::test]
async fn retry_button_in_a_real_browser_requeues_the_dead_job() {
    if !browser_or_skip() {
        return;
    }
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let worker = with_fixtures(env.worker(), &rec).build().unwrap();
    let running = RunningWorker::start(worker);
    // Fails its three attempts, dies, then succeeds on the operator's retry.
    let job = Scripted {
        fail_times: 3,
        ..Scripted::ok("phoenix")
    };
    let id = env.client.enqueue(&job).await.unwrap().to_string();
    let admin = env.client.admin();
    wait_for("job dead", Duration::from_secs(10), || async {
        admin.queue("default").await.unwrap().dead == 1
    })
    .await;
    assert_eq!(rec.count("phoenix"), 3);

    let server = DashboardServer::start(spool_dashboard::router(
        admin.clone(),
        DashboardConfig::default(),
    ))
    .await;
    let b = Browser::start().await;
    b.goto(&format!("{}/dead", server.url())).await;
    assert_eq!(b.title().await, "Dead · Spool");
    // The every-queue view names each job by queue:id.
    b.click(&format!("button[name=retry_id][value='default:{id}']"))
        .await;

    wait_for(
        "job left the dead set and ran",
        Duration::from_secs(10),
        || async { admin.queue("default").await.unwrap().dead == 0 && rec.count("phoenix") == 4 },
    )
    .await;
    wait_for("job acked", Duration::from_secs(5), || async {
        admin.job("default", &id).await.unwrap().is_none()
    })
    .await;
    // The browser followed the redirect to the Dead page with the notice.
    assert_eq!(b.text(".notice").await, "1 job moved to ready.");
    b.stop().await;
    server.stop().await;
    running.stop().await;
}

/// The every-queue Dead view, select-all, a bulk delete confirmed in the
/// browser's dialog (dismissed first: nothing happens), the search box, a
/// styled 404 with "Back", and local times.
#[tokio::test]
async fn console_walk_across_queues_with_search_and_a_confirmed_bulk_delete() {
    if !browser_or_skip() {
        return;
    }
    let env = TestEnv::start().await;
    let rec = Recorder::default();
    let running = RunningWorker::start(
        with_fixtures(env.worker().queue("default", 1).queue("mail", 1), &rec)
            .build()
            .unwrap(),
    );
    let doomed = Scripted {
        fail_times: u32::MAX,
        permanent: true,
        ..Scripted::ok("doomed")
    };
    env.client.enqueue(&doomed).await.unwrap();
    env.client
        .enqueue_with(&doomed, EnqueueOptions::new().queue("mail"))
        .await
        .unwrap();
    let admin = env.client.admin();
    wait_for(
        "two dead in two queues",
        Duration::from_secs(10),
        || async {
            admin.queue("default").await.unwrap().dead == 1
                && admin.queue("mail").await.unwrap().dead == 1
        },
    )
    .await;
    running.stop().await;
    let ready = env
        .client
        .enqueue_with(&Noop { n: 1 }, EnqueueOptions::new().queue("mail"))
        .await
        .unwrap()
        .id
        .to_string();
    let server = DashboardServer::start(spool_dashboard::router(
        admin.clone(),
        DashboardConfig::default(),
    ))
    .await;
    let b = Browser::start().await;
    let base = server.url();

    // Every queue's dead jobs on one page.
    b.goto(&format!("{base}/dead")).await;
    assert_eq!(b.text("nav.tabs a.active").await, "All queues 2");
    let queues = b
        .script("return [...document.querySelectorAll('table.jobs tbody tr td:nth-child(3)')].map(td => td.textContent).sort()")
        .await;
    assert_eq!(queues, json!(["default", "mail"]));
    // Times: the script showed them in the viewer's zone, UTC on hover.
    let hover = b
        .script("return document.querySelector('table.jobs time').getAttribute('title')")
        .await;
    assert!(hover.as_str().unwrap().ends_with("UTC)"), "{hover}");

    // Select all, then Delete selected: dismiss the confirmation first.
    b.click("th.select input[data-select-all]").await;
    let checked = b
        .script("return document.querySelectorAll('input[name=id]:checked').length")
        .await;
    assert_eq!(checked, json!(2));
    b.click("div.bulk.top button[value=delete_selected]").await;
    assert_eq!(b.answer_confirm(false).await, "Delete the selected jobs?");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admin.queue("default").await.unwrap().dead, 1, "dismissed");
    b.click("div.bulk.top button[value=delete_selected]").await;
    assert_eq!(b.answer_confirm(true).await, "Delete the selected jobs?");
    wait_for("both deleted", Duration::from_secs(5), || async {
        admin.queue("default").await.unwrap().dead == 0
            && admin.queue("mail").await.unwrap().dead == 0
    })
    .await;
    assert_eq!(b.text(".notice").await, "2 jobs deleted.");

    // The search box, from any page, finds a job in any queue.
    b.type_into("header form.search input[name=id]", &ready)
        .await;
    b.click("header form.search button").await;
    // A form post navigates: wait for the new page before reading it.
    wait_for("the job page", Duration::from_secs(5), || async {
        b.url().await == format!("{base}/jobs/mail/{ready}")
    })
    .await;
    assert!(b.title().await.starts_with("Job "), "{}", b.title().await);
    b.type_into("header form.search input[name=id]", "no-such-job")
        .await;
    b.click("header form.search button").await;
    wait_for("the 404 page", Duration::from_secs(5), || async {
        b.title().await == "Not found · Spool"
    })
    .await;
    assert_eq!(b.text("h1").await, "Not found (404)");
    b.click("p.back a[data-back]").await;
    wait_for("back on the job page", Duration::from_secs(5), || async {
        b.url().await == format!("{base}/jobs/mail/{ready}")
    })
    .await;

    b.stop().await;
    server.stop().await;
}
