//! `spool-dashboard`: serves the Spool dashboard on its own.
//!
//! Flags (each also from the environment): `--bind` (default
//! `127.0.0.1:7420`), `--redis-url` (`REDIS_URL`), `--namespace`,
//! `--basic-auth USER:PASS` (`SPOOL_DASHBOARD_BASIC_AUTH`), `--bearer-token`
//! (`SPOOL_DASHBOARD_TOKEN`), `--read-only`, `--base-path`,
//! `--allowed-origin`, `--allowed-host` (`SPOOL_DASHBOARD_ALLOWED_HOSTS`,
//! comma-separated). It refuses to bind beyond loopback without
//! credentials (exit 2), and on SIGTERM/SIGINT stops accepting, finishes
//! in-flight requests, and exits 0. Exit 1 for a runtime failure (Redis
//! unreachable, port taken). The Redis URL's password never reaches the
//! log, stderr or `--help`.

// A binary may talk to its operator on stdout: the URL it serves.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use clap::Parser;
use spool_dashboard::cli::{scrub, scrub_all};
use spool_dashboard::{check_bind, Auth, DashboardConfig};

/// Serve the Spool operator dashboard.
#[derive(Debug, Parser)]
#[command(name = "spool-dashboard", version, about)]
struct Args {
    /// Address to listen on. Non-loopback addresses need credentials.
    #[arg(long, env = "SPOOL_DASHBOARD_BIND", default_value = "127.0.0.1:7420")]
    bind: SocketAddr,
    #[command(flatten)]
    redis: spool_dashboard::cli::RedisArgs,
    /// Require HTTP basic auth, as USER:PASSWORD.
    #[arg(long, env = "SPOOL_DASHBOARD_BASIC_AUTH", hide_env_values = true)]
    basic_auth: Option<String>,
    /// Require `Authorization: Bearer TOKEN` (accepted besides basic auth).
    #[arg(long, env = "SPOOL_DASHBOARD_TOKEN", hide_env_values = true)]
    bearer_token: Option<String>,
    /// Show everything, allow no action.
    #[arg(long, env = "SPOOL_DASHBOARD_READ_ONLY")]
    read_only: bool,
    /// Link prefix when a reverse proxy strips a path prefix (`/ops/jobs`).
    #[arg(long)]
    base_path: Option<String>,
    /// Extra origin allowed to POST (e.g. `https://ops.example.com`), repeatable.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Host name the dashboard answers to besides IP addresses and
    /// `localhost` (a proxy's or DNS name; `name` or `name:port`; `*` turns the
    /// check off), repeatable. Other `Host` headers get 421.
    #[arg(
        long = "allowed-host",
        env = "SPOOL_DASHBOARD_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
}

fn config(args: &Args) -> Result<DashboardConfig, spool_dashboard::Error> {
    let basic = args
        .basic_auth
        .as_deref()
        .map(Auth::parse_basic)
        .transpose()?;
    if args.bearer_token.as_deref().is_some_and(|t| t.len() < 16) {
        return Err(spool_dashboard::Error::InvalidCredentials(
            "the bearer token must be at least 16 characters".to_owned(),
        ));
    }
    let mut c = DashboardConfig::default()
        .read_only(args.read_only)
        .auth(Auth {
            basic,
            bearer: args.bearer_token.clone(),
        });
    c.base_path.clone_from(&args.base_path);
    c.allowed_origins.clone_from(&args.allowed_origins);
    c.allowed_hosts.clone_from(&args.allowed_hosts);
    check_bind(args.bind, &c)?;
    Ok(c)
}

/// One log line per request: method, path, status, time.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(%method, path, status = resp.status().as_u16(), ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "request");
    resp
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

/// `e` and its causes as one line, each cause said once: a cause whose text
/// the message already holds (Spool's errors quote their driver's) is not
/// repeated.
fn sentence(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

async fn serve(args: Args, mut config: DashboardConfig) -> anyhow::Result<()> {
    // The error names the server (password hidden) and says what to check.
    // SPOOL_KEYRING lets job pages show encrypted args in plain text.
    let mut builder = args.redis.client_builder();
    if let Some(keyring) = spool_client::Keyring::from_env()? {
        builder = builder.keyring(keyring);
    }
    let client = builder.connect().await?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr().context("local address")?;
    config.listen_addr = Some(addr);
    let app = spool_dashboard::router(client.admin(), config)
        .layer(axum::middleware::from_fn(log_request));
    tracing::info!(%addr, namespace = %args.redis.namespace, "dashboard listening");
    println!("Spool dashboard: http://{addr}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("dashboard stopped");
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let command_line: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match Args::try_parse_from(&command_line) {
        Ok(a) => a,
        Err(e) => {
            // clap may quote a bad value; hide a password in a Redis URL.
            let text = scrub_all(&e.render().to_string(), &command_line);
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let url = args.redis.redis_url.clone();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "refusing to start");
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match spool_dashboard::cli::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(serve(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = scrub_all(&scrub(&sentence(&e), &url), &command_line);
            tracing::error!(error = msg, "dashboard failed");
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
