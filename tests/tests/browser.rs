//! End-to-end in a real headless Chromium driven over `WebDriver` (plain HTTP
//! to chromedriver): open the Dead page, click Retry on a dead job, see it
//! leave the dead set and get processed by a running worker.
//!
//! Skipped with a message only when Chromium or chromedriver is missing and
//! `CI` is not set; in CI a missing browser fails the test.

// Test helpers: a failed unwrap is a failed test; the end-to-end story reads best in one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::DashboardServer;
use spool_tests::handlers::{with_fixtures, Recorder, Scripted};
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

/// Clicking Retry on the Dead page in a real browser moves the job to ready,
/// and a running worker processes it.
#[tokio::test]
async fn retry_button_in_a_real_browser_requeues_the_dead_job() {
    if !browser_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: install chromium and chromium-driver"
        );
        eprintln!("SKIPPED: {CHROMIUM} or {CHROMEDRIVER} not found (apt-get install chromium chromium-driver)");
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
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
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
    let sid = session["sessionId"]
        .as_str()
        .expect("session id")
        .to_owned();
    let s = format!("/session/{sid}");

    driver
        .call(
            reqwest::Method::POST,
            &format!("{s}/url"),
            Some(json!({ "url": format!("{}/dead", server.url()) })),
        )
        .await;
    let title = driver
        .call(reqwest::Method::GET, &format!("{s}/title"), None)
        .await;
    assert_eq!(title, "Dead · Spool");
    let button = driver
        .call(
            reqwest::Method::POST,
            &format!("{s}/element"),
            Some(json!({ "using": "css selector", "value": format!("button[name=retry_id][value='{id}']") })),
        )
        .await;
    let eid = button[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("{button}"))
        .to_owned();
    driver
        .call(
            reqwest::Method::POST,
            &format!("{s}/element/{eid}/click"),
            Some(json!({})),
        )
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
    let notice = driver
        .call(
            reqwest::Method::POST,
            &format!("{s}/element"),
            Some(json!({ "using": "css selector", "value": ".notice" })),
        )
        .await;
    let nid = notice[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("{notice}"))
        .to_owned();
    let text = driver
        .call(
            reqwest::Method::GET,
            &format!("{s}/element/{nid}/text"),
            None,
        )
        .await;
    assert_eq!(text, "1 job moved to ready.");

    driver.call(reqwest::Method::DELETE, &s, None).await;
    driver.stop().await;
    server.stop().await;
    running.stop().await;
}
