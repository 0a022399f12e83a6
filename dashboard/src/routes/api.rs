//! The JSON API (`/api/…`, the same data the pages show, read-only). Same
//! bounds as the pages; listings use the bounded shapes of `json` and are
//! serialized straight from typed values (a stored `RawValue` is written
//! verbatim, never re-parsed, so no nesting depth can fail a response).

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use spool_client::admin::{
    CronEntryView, JobView, MinuteStats, ProcessView, QueueInfo, STATS_MINUTES_MAX,
};

use super::overview::Snapshot;
use crate::error::{AppError, AppResult};
use crate::json::{self, Listing};
use crate::params::{number, queue_name, set_of, ListQuery, StrictQuery};
use crate::state::AppState;

/// Totals, as `/api/stats` and `spool stats --json` print them.
#[derive(Serialize)]
pub(crate) struct StatsJson {
    processed: u64,
    failed: u64,
    ready: u64,
    busy: u64,
    scheduled: u64,
    retry: u64,
    dead: u64,
    processes: usize,
    queues: usize,
    processed_last_hour: u64,
    failed_last_hour: u64,
    /// Registry members skipped as invalid queue names (bounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped_queues: Vec<String>,
}

pub(crate) async fn stats(State(s): AppState) -> AppResult<Json<StatsJson>> {
    let snap = Snapshot::read(&s.admin, 60).await?;
    let (p1, f1) = snap
        .minutes
        .iter()
        .fold((0, 0), |(p, f), m| (p + m.processed, f + m.failed));
    Ok(Json(StatsJson {
        processed: snap.processed(),
        failed: snap.failed(),
        ready: snap.sum(|q| q.ready),
        busy: snap.sum(|q| q.active),
        scheduled: snap.sum(|q| q.scheduled),
        retry: snap.sum(|q| q.retry),
        dead: snap.sum(|q| q.dead),
        processes: snap.processes,
        queues: snap.queues.len(),
        processed_last_hour: p1,
        failed_last_hour: f1,
        skipped_queues: snap.skipped_bounded(),
    }))
}

#[derive(Serialize)]
pub(crate) struct QueueJson {
    #[serde(flatten)]
    info: QueueInfo,
    processed: u64,
    failed: u64,
    processed_last_hour: u64,
    failed_last_hour: u64,
}

pub(crate) async fn queues(State(s): AppState) -> AppResult<Json<Vec<QueueJson>>> {
    let snap = Snapshot::read(&s.admin, 60).await?;
    let out = snap
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
    Ok(Json(out))
}

pub(crate) async fn queue_jobs(
    State(s): AppState,
    Path(queue): Path<String>,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> AppResult<Json<Listing>> {
    let queue = queue_name(&queue)?;
    let p = q.paging()?;
    let page = s.admin.list_ready(queue, p.offset(), p.per_page).await?;
    Ok(Json(page.into()))
}

pub(crate) async fn set(
    State(s): AppState,
    Path(set): Path<String>,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> AppResult<Json<Listing>> {
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
        return Ok(Json(page.into()));
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
    Ok(Json(page.into()))
}

/// One job, whole (full args, errors and raw record).
pub(crate) async fn job(
    State(s): AppState,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Json<JobView>> {
    Ok(Json(super::jobs::find(&s, &queue, &id).await?))
}

pub(crate) async fn processes(State(s): AppState) -> AppResult<Json<Vec<ProcessView>>> {
    let procs = s.admin.processes().await?;
    Ok(Json(procs.into_iter().map(json::process).collect()))
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    minutes: Option<String>,
}

pub(crate) async fn history(
    State(s): AppState,
    StrictQuery(q): StrictQuery<HistoryQuery>,
) -> AppResult<Json<Vec<MinuteStats>>> {
    let minutes = number("minutes", q.minutes.as_deref(), 60, 1, STATS_MINUTES_MAX)?;
    let snap = Snapshot::read(&s.admin, minutes).await?;
    Ok(Json(snap.minutes))
}

pub(crate) async fn cron(State(s): AppState) -> AppResult<Json<Vec<CronEntryView>>> {
    let entries = s.admin.cron_entries().await?;
    Ok(Json(entries.into_iter().map(json::cron_entry).collect()))
}
