//! The JSON API (`/api/…`, the same data the pages show, read-only) and the
//! Prometheus `/metrics` text. Same bounds as the pages.

use std::fmt::Write as _;

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spool_client::admin::{QueueInfo, STATS_MINUTES_MAX};

use super::overview::Snapshot;
use super::{AppState, State};
use crate::error::{AppError, AppResult};
use crate::params::{queue_name, set_of, ListQuery};

pub(crate) async fn stats(State(s): AppState) -> AppResult<Json<Value>> {
    let snap = Snapshot::read(&s.admin, 60).await?;
    let (p1, f1) = snap
        .minutes
        .iter()
        .fold((0, 0), |(p, f), m| (p + m.processed, f + m.failed));
    Ok(Json(json!({
        "processed": snap.processed(),
        "failed": snap.failed(),
        "ready": snap.sum(|q| q.ready),
        "busy": snap.sum(|q| q.active),
        "scheduled": snap.sum(|q| q.scheduled),
        "retry": snap.sum(|q| q.retry),
        "dead": snap.sum(|q| q.dead),
        "processes": snap.processes,
        "queues": snap.queues.len(),
        "processed_last_hour": p1,
        "failed_last_hour": f1,
    })))
}

#[derive(Serialize)]
struct QueueJson {
    #[serde(flatten)]
    info: QueueInfo,
    processed: u64,
    failed: u64,
    processed_last_hour: u64,
    failed_last_hour: u64,
}

pub(crate) async fn queues(State(s): AppState) -> AppResult<Json<Value>> {
    let snap = Snapshot::read(&s.admin, 60).await?;
    let out: Vec<QueueJson> = snap
        .queues
        .iter()
        .map(|q| {
            let st = snap.stats.get(&q.name);
            let (ph, fh) = snap.last_hour(&q.name);
            QueueJson {
                info: q.clone(),
                processed: st.map_or(0, |s| s.processed),
                failed: st.map_or(0, |s| s.failed),
                processed_last_hour: ph,
                failed_last_hour: fh,
            }
        })
        .collect();
    Ok(Json(json!(out)))
}

pub(crate) async fn queue_jobs(
    State(s): AppState,
    Path(queue): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Value>> {
    let queue = queue_name(&queue)?;
    let p = q.paging()?;
    let page = s.admin.list_ready(queue, p.offset(), p.per_page).await?;
    Ok(Json(json!(page)))
}

pub(crate) async fn set(
    State(s): AppState,
    Path(set): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Value>> {
    let set = set_of(&set)
        .or_else(|| set.parse().ok())
        .ok_or_else(|| AppError::NotFound("no such set (scheduled, retries, dead)".to_owned()))?;
    let p = q.paging()?;
    let filter = q.filter()?;
    let queue = q
        .queue()?
        .ok_or_else(|| AppError::BadRequest("queue is required".to_owned()))?;
    if filter.is_empty() {
        let page = s
            .admin
            .list_set(&queue, set, p.offset(), p.per_page)
            .await?;
        return Ok(Json(json!(page)));
    }
    let page = s
        .admin
        .scan_set(
            &queue,
            set,
            &filter,
            p.offset(),
            p.per_page,
            s.config.filter_window,
        )
        .await?;
    Ok(Json(json!(page)))
}

pub(crate) async fn job(
    State(s): AppState,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let job = super::jobs::find(&s, &queue, &id).await?;
    Ok(Json(json!(job)))
}

pub(crate) async fn processes(State(s): AppState) -> AppResult<Json<Value>> {
    Ok(Json(json!(s.admin.processes().await?)))
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    minutes: Option<String>,
}

pub(crate) async fn history(
    State(s): AppState,
    Query(q): Query<HistoryQuery>,
) -> AppResult<Json<Value>> {
    let minutes = match q.minutes.as_deref() {
        None | Some("") => 60,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| (1..=STATS_MINUTES_MAX).contains(m))
            .ok_or_else(|| {
                AppError::BadRequest(format!("minutes must be 1 to {STATS_MINUTES_MAX}"))
            })?,
    };
    let snap = Snapshot::read(&s.admin, minutes).await?;
    Ok(Json(json!(snap.minutes)))
}

pub(crate) async fn cron(State(s): AppState) -> AppResult<Json<Value>> {
    Ok(Json(json!(s.admin.cron_entries().await?)))
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-queue gauge: name, type, help, value.
type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueInfo) -> f64,
);

pub(crate) async fn metrics(State(s): AppState) -> AppResult<Response> {
    let snap = Snapshot::read(&s.admin, 1).await?;
    let mut out = String::with_capacity(4096);
    let gauges: [Gauge; 7] = [
        (
            "spool_queue_depth",
            "gauge",
            "Jobs in the ready list.",
            |q| q.ready as f64,
        ),
        (
            "spool_queue_latency_seconds",
            "gauge",
            "Age of the oldest ready job.",
            |q| q.latency.as_secs_f64(),
        ),
        (
            "spool_queue_busy",
            "gauge",
            "Jobs leased by workers.",
            |q| q.active as f64,
        ),
        (
            "spool_queue_scheduled",
            "gauge",
            "Jobs in the scheduled set.",
            |q| q.scheduled as f64,
        ),
        (
            "spool_queue_retry",
            "gauge",
            "Jobs in the retry set.",
            |q| q.retry as f64,
        ),
        ("spool_queue_dead", "gauge", "Jobs in the dead set.", |q| {
            q.dead as f64
        }),
        (
            "spool_queue_paused",
            "gauge",
            "1 when the queue is paused.",
            |q| f64::from(u8::from(q.paused)),
        ),
    ];
    for (name, kind, help, f) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for q in &snap.queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", label(&q.name), f(q));
        }
    }
    for (name, help, processed) in [
        ("spool_jobs_processed_total", "Jobs that succeeded.", true),
        ("spool_jobs_failed_total", "Failed runs.", false),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for q in &snap.queues {
            let st = snap.stats.get(&q.name);
            let v = st.map_or(0, |s| if processed { s.processed } else { s.failed });
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {v}", label(&q.name));
        }
    }
    let _ = writeln!(
        out,
        "# HELP spool_processes Live worker processes.\n# TYPE spool_processes gauge\nspool_processes {}",
        snap.processes
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
