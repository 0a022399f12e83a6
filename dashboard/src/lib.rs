//! # spool-dashboard
//!
//! The operator's window into Spool: server-rendered pages (askama, no
//! JavaScript build step), a JSON API under `/api/`, Prometheus `/metrics`,
//! and the `spool` command-line tool. Everything reads and repairs through
//! [`spool_client::Admin`]; this crate never builds a Redis key or sends a
//! command itself.
//!
//! ## Layout
//!
//! | module | role |
//! | --- | --- |
//! | `config` | [`DashboardConfig`] (auth, read-only, allowed hosts and origins, filter window) and [`check_bind`], the "no credentials on a public address" rule |
//! | `state` | what handlers share (`Shared`) and what the middleware hands each request (`Ctx`); the queue list that skips bad registry members |
//! | `host` | the `Host` allow-list (DNS-rebinding defence), also used for `Origin` |
//! | `csrf` | CSRF nonce cookie and HMAC tokens; constant-time comparison |
//! | `security` | the middleware every request passes (host, auth, POST gate) and the security-header layers |
//! | `error` | [`Error`] (configuration) and `AppError`, the one response error (carries its status) |
//! | `params` | strict extractors (`StrictQuery`, `StrictForm`), bounded paging and filter parameters |
//! | `text` | the one truncation helper (`clip`) and a non-recursive JSON pretty-printer |
//! | `json` | bounded JSON shapes of listings (API and CLI) |
//! | `routes` | the route table and one module per page family; `routes::metrics` is `/metrics` |
//! | `views` + `templates/` | one askama struct per page; all data is escaped by askama, nothing is marked safe |
//! | `charts` | geometry of the server-rendered SVG history charts |
//! | `cli` (feature `cli`) | the `spool` tool, as a library function the binary wraps |
//!
//! The `cli` feature (on by default) also builds the `spool` and
//! `spool-dashboard` binaries; without it the library pulls neither clap
//! nor anyhow: `default-features = false` when you only mount the router.
//!
//! Mount it in your own app under a prefix, with auth (and, when users reach
//! it by a host name rather than an IP address, that name: any other `Host`
//! gets 421, the DNS-rebinding defence):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use spool_dashboard::{Auth, DashboardConfig};
//! let client = spool_client::Client::connect("redis://127.0.0.1:6379").await?;
//! let config = DashboardConfig::default()
//!     .auth(Auth::basic("ops", "s3cret"))
//!     .allow_hosts(["ops.example.com"]);
//! let app = axum::Router::new().nest("/admin/jobs", spool_dashboard::router(client.admin(), config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod charts;
#[cfg(feature = "cli")]
// The `spool` and `spool-dashboard` binaries' code (and the CLI tests'
// entry point); applications mount `router` and need none of it.
#[doc(hidden)]
pub mod cli;
mod config;
mod csrf;
mod error;
mod host;
mod json;
mod params;
mod routes;
mod security;
mod state;
mod text;
mod views;

pub use config::{check_bind, Auth, DashboardConfig, FILTER_WINDOW_DEFAULT};
pub use error::Error;
pub use params::{PAGE_MAX, PER_PAGE_DEFAULT, PER_PAGE_MAX};

/// The dashboard as an axum [`Router`](axum::Router), ready to serve or to
/// nest under a prefix (links follow the prefix).
pub fn router(admin: spool_client::Admin, config: DashboardConfig) -> axum::Router {
    routes::router(admin, config)
}
