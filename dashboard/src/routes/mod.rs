//! The route table, in one place. Every GET only reads; every mutation is a
//! POST (and passes the CSRF gate in `security`).
//!
//! | path | page |
//! | --- | --- |
//! | `/` | overview: totals, queues, history charts |
//! | `/queues` | every queue with its counts, each linking to its jobs |
//! | `/queues/{queue}` (+ POST `/pause`, `/resume`, `/clear`, `/delete`, controls) | one queue's ready jobs |
//! | `/scheduled`, `/retries`, `/dead` (+ POST `/actions`) | the job sets of every queue or one, filtered |
//! | `/search?id=` | finds a job by id in any queue and shows its page |
//! | `/jobs/{queue}/{id}` (+ `/raw`, POST `/cancel`) | one job, or its kept outcome once finished |
//! | `/processes` (+ POST `/processes/{id}/{quiet,stop}`) | live workers and their busy jobs |
//! | `/events` | the latest job events and operator actions |
//! | `/cron` (+ POST `/cron/{name}/{pause,resume,run}`) | cron entries |
//! | `/metrics`, `/api/…` | Prometheus text (`metrics`) and JSON (`api`) |
//! | `/assets/…`, `/favicon.ico` | the embedded stylesheet, script and icon |

mod api;
mod batches;
mod cron;
mod events;
mod jobs;
mod metrics;
mod overview;
mod processes;
mod queues;
mod sets;

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use spool_client::Admin;

use crate::csrf::CsrfKey;
use crate::error::AppError;
use crate::host::HostPolicy;
use crate::security;
use crate::state::Shared;
use crate::DashboardConfig;

pub(crate) fn router(admin: Admin, config: DashboardConfig) -> Router {
    let shared = Arc::new(Shared {
        admin,
        hosts: HostPolicy::new(&config.allowed_hosts, config.listen_addr),
        config,
        csrf_key: CsrfKey::random(),
    });
    let [csp, nosniff, frames, referrer, cache] = security::header_layers();
    Router::new()
        .route("/", get(overview::page))
        .route("/queues", get(queues::list))
        .route("/queues/{queue}", get(queues::page))
        .route("/queues/{queue}/clear", post(queues::clear))
        .route("/queues/{queue}/delete", post(queues::delete))
        .route("/search", get(jobs::search))
        .route("/queues/{queue}/pause", post(queues::pause))
        .route("/queues/{queue}/resume", post(queues::resume))
        .route("/queues/{queue}/limit", post(queues::limit))
        .route("/queues/{queue}/{control}", post(queues::control))
        .route("/queues/{queue}/breaker/reset", post(queues::breaker_reset))
        // `/scheduled`, `/retries`, `/dead`: fixed routes take precedence.
        .route("/{set}", get(sets::page))
        .route("/{set}/actions", post(sets::action))
        .route("/jobs/{queue}/{id}", get(jobs::page))
        .route("/jobs/{queue}/{id}/raw", get(jobs::raw))
        .route("/jobs/{queue}/{id}/cancel", post(jobs::cancel))
        .route("/processes", get(processes::page))
        .route("/processes/{id}/{signal}", post(processes::signal))
        .route("/events", get(events::page))
        .route("/batches", get(batches::list))
        .route("/batches/{id}", get(batches::page))
        .route("/api/batches", get(batches::api_list))
        .route("/api/batches/{id}", get(batches::api_one))
        .route("/api/events", get(events::api))
        .route("/cron", get(cron::page))
        .route("/cron/{name}/{op}", post(cron::action))
        .route("/metrics", get(metrics::metrics))
        .route("/api/stats", get(api::stats))
        .route("/api/queues", get(api::queues))
        .route("/api/queues/{queue}/jobs", get(api::queue_jobs))
        .route("/api/sets/{set}", get(api::set))
        .route("/api/jobs/{queue}/{id}", get(api::job))
        .route("/api/processes", get(api::processes))
        .route("/api/history", get(api::history))
        .route("/api/cron", get(api::cron))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            security::guard,
        ))
        .layer(csp)
        .layer(nosniff)
        .layer(frames)
        .layer(referrer)
        .layer(cache)
        .with_state(shared)
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/app.js"),
    )
}

/// The icon, also at `/favicon.ico` where browsers look without a `<link>`.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/favicon.svg"),
    )
}

async fn not_found() -> AppError {
    AppError::NotFound("not found".to_owned())
}
