//! Dashboard test helpers: serve a dashboard router on a free loopback port
//! ([`DashboardServer`], stopped on drop), and a browser-like HTTP session
//! ([`Session`]) that keeps the CSRF cookie and reads tokens out of pages.

// Test helpers: a failed setup step panics on purpose (it fails the test
// that called it), and results are for tests to use or ignore.
#![allow(
    clippy::missing_panics_doc,
    clippy::must_use_candidate,
    clippy::return_self_not_must_use
)]

use std::net::SocketAddr;

use axum::Router;
use reqwest::header::{HeaderMap, HeaderValue};
use scraper::{Html, Selector};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A dashboard served on `127.0.0.1:<free port>`; stops when dropped or on [`DashboardServer::stop`].
pub struct DashboardServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DashboardServer {
    /// Serves `app` (e.g. `spool_dashboard::router(...)`, possibly nested).
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve dashboard");
        });
        Self {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response read in full.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
}

impl Page {
    /// The body parsed as HTML.
    #[must_use]
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Texts of elements matching a CSS selector.
    #[must_use]
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let sel = Selector::parse(selector).expect("selector");
        self.html()
            .select(&sel)
            .map(|e| e.text().collect::<String>())
            .collect()
    }

    /// Values of `attr` on elements matching a CSS selector.
    #[must_use]
    pub fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let sel = Selector::parse(selector).expect("selector");
        self.html()
            .select(&sel)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A browser-like session: keeps the dashboard's CSRF cookie, sends
/// same-origin POSTs with the token from the last page.
pub struct Session {
    /// Base URL including any prefix (`http://127.0.0.1:1234/admin`).
    pub base: String,
    origin: String,
    http: reqwest::Client,
    cookie: Option<String>,
    /// CSRF token of the last page that had one.
    pub csrf: Option<String>,
    auth: Option<String>,
}

impl Session {
    /// A session against `origin` (scheme://host:port) with path `prefix`.
    #[must_use]
    pub fn new(origin: &str, prefix: &str) -> Self {
        Self {
            base: format!("{origin}{prefix}"),
            origin: origin.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("http client"),
            cookie: None,
            csrf: None,
            auth: None,
        }
    }

    /// Sends this `Authorization` header on every request.
    #[must_use]
    pub fn with_auth(mut self, value: &str) -> Self {
        self.auth = Some(value.to_owned());
        self
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.cookie {
            h.insert("cookie", HeaderValue::from_str(c).expect("cookie"));
        }
        if let Some(a) = &self.auth {
            h.insert("authorization", HeaderValue::from_str(a).expect("auth"));
        }
        h
    }

    async fn read(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(c) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = c.split(';').next().map(str::to_owned);
        }
        let body = resp.text().await.expect("body");
        let page = Page {
            status,
            headers,
            body,
        };
        if let Some(t) = page
            .attrs("meta[name=csrf-token]", "content")
            .into_iter()
            .next()
        {
            self.csrf = Some(t);
        }
        page
    }

    /// GET `path` (relative to the base).
    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .expect("GET");
        self.read(resp).await
    }

    /// GET `path` with extra headers (e.g. a foreign `host`).
    pub async fn get_with(&mut self, path: &str, extra: &[(&str, String)]) -> Page {
        let mut h = self.headers();
        for (k, v) in extra {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .headers(h)
            .send()
            .await
            .expect("GET");
        self.read(resp).await
    }

    /// The `Cookie` header this session sends, if it has a cookie.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// A request with any method, no body.
    pub async fn request(&mut self, method: reqwest::Method, path: &str) -> Page {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .expect("request");
        self.read(resp).await
    }

    /// POST a form the way a browser does from a dashboard page: same-origin
    /// fetch metadata, Origin, cookie, and the CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let extra = [
            ("sec-fetch-site", "same-origin".to_owned()),
            ("origin", self.origin.clone()),
        ];
        self.post_raw(path, &all, &extra).await
    }

    /// POST with exactly these fields and extra headers (for refusal tests).
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        extra: &[(&str, String)],
    ) -> Page {
        let mut h = self.headers();
        for (k, v) in extra {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let body: String = form_body(fields);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(h)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.read(resp).await
    }
}

/// Path of a binary of `spool-dashboard` (`spool`, `spool-dashboard`),
/// built once per test process so it is never a stale copy.
pub fn fresh_binary(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "spool-dashboard", "--bins"]);
        // The test's own CARGO_PKG_* / CARGO_MANIFEST_* variables would
        // reach build scripts that watch them (ring's), and every run would
        // rebuild the TLS stack and everything above it.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || matches!(
                    name.as_ref(),
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                )
            {
                cmd.env_remove(name.as_ref());
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the dashboard binaries failed");
    });
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    dir.join(name)
}

/// The `spool-dashboard` binary serving `env`'s Redis on a free loopback
/// port, killed on drop.
pub struct DashboardProcess {
    /// The process.
    pub child: tokio::process::Child,
    /// The port it listens on.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl DashboardProcess {
    /// Starts the binary with `--bind 127.0.0.1:<free port> --redis-url …`
    /// and `extra` flags, and waits until it serves the overview.
    pub async fn start(env: &crate::TestEnv, extra: &[&str]) -> Self {
        Self::start_on(&env.redis.url(), extra).await
    }

    /// As [`DashboardProcess::start`], on the Redis at `redis_url`.
    pub async fn start_on(redis_url: &str, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(fresh_binary("spool-dashboard"))
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--redis-url",
                redis_url,
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn spool-dashboard");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        crate::wait_for("binary serves", std::time::Duration::from_secs(10), || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        Self { child, port, url }
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn hex_byte(b: u8) -> String {
    format!("{b:02X}")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&hex_byte(b));
        }
    }
    out
}

/// Runs `spool ARGS…` in-process against `env`'s Redis: (exit code,
/// stdout, stderr), output decoded lossily (the CLI may print any bytes it
/// read from Redis, escaped or not).
pub async fn spool_cli(env: &crate::TestEnv, args: &[&str]) -> (u8, String, String) {
    let url = env.redis.url();
    let mut command = vec!["spool", "--redis-url", url.as_str()];
    command.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = spool_dashboard::cli::run(command, &mut out, &mut err).await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}
