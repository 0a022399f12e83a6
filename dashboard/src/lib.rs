//! # spool-dashboard
//!
//! The operator's window into Spool: server-rendered pages (askama, no
//! JavaScript build step), a JSON API under `/api/`, Prometheus `/metrics`,
//! and the `spool` command-line tool. Everything reads and repairs through
//! [`spool_client::Admin`]; this crate never builds a Redis key or sends a
//! command itself.
//!
//! Module map:
//! - `config`: [`DashboardConfig`] (auth, read-only, origins, filter window)
//!   and [`check_bind`], the "no credentials on a public address" rule.
//! - `security`: the middleware every request passes (security headers,
//!   authentication, same-origin + CSRF check on every POST, the base path
//!   links are built from).
//! - `routes`: the route table and one module per page family.
//! - `views` and `templates/`: one askama struct per page; all data is
//!   escaped by askama, nothing is marked safe.
//! - `charts`: geometry of the server-rendered SVG history charts.
//! - `params`: bounded paging and filter parameters (out of range → 400).
//! - `cli`: the `spool` tool, as a library function the binary wraps.
//!
//! Mount it in your own app under a prefix, with auth:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use spool_dashboard::{Auth, DashboardConfig};
//! let client = spool_client::Client::connect("redis://127.0.0.1:6379").await?;
//! let config = DashboardConfig::default().auth(Auth::basic("ops", "s3cret"));
//! let app = axum::Router::new().nest("/admin/jobs", spool_dashboard::router(client.admin(), config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod charts;
pub mod cli;
mod config;
mod error;
mod params;
mod routes;
mod security;
mod views;

pub use config::{check_bind, Auth, DashboardConfig, FILTER_WINDOW_DEFAULT};
pub use error::Error;
pub use params::{PAGE_MAX, PER_PAGE_DEFAULT, PER_PAGE_MAX};

/// The dashboard as an axum [`Router`](axum::Router), ready to serve or to
/// nest under a prefix (links follow the prefix).
pub fn router(admin: spool_client::Admin, config: DashboardConfig) -> axum::Router {
    routes::router(admin, config)
}
