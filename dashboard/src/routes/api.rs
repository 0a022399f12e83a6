//! The JSON API (`/api/…`, the same data the pages show, read-only). Same
//! bounds as the pages; listings use the bounded shapes of `json` and are
//! serialized straight from typed values (a stored `RawValue` is written
//! verbatim, never re-parsed, so no nesting depth can fail a response).

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use spool_client::admin::{
    CronEntryView, JobView, MinuteStats, ProcessView, QueueInfo, STATS_MINUTES_MAX,
};
use spool_client::{HistoryEntry, JobId, JobStatus, Status};

use super::overview::Snapshot;
use crate::error::{AppError, AppResult};
use crate::json::{self, Listing};
use crate::params::{job_id, number, queue_name, set_of, ListQuery, StrictQuery};
use crate::state::AppState;
use crate::text::{clip, FIELD_BYTES};

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

/// `/api/jobs/{queue}/{id}`: a stored job's fields as before (the
/// [`JobView`] flattened: full record, errors, lease), or for a job known
/// only by its kept outcome `id`, `queue` and `state` (`done`, `cancelled`,
/// `dead`); plus `status` in both cases (see [`StatusJson`]).
#[derive(Serialize)]
pub(crate) struct JobJson {
    #[serde(flatten)]
    job: Option<JobView>,
    #[serde(flatten)]
    finished: Option<FinishedJson>,
    /// `null` when the status read failed (see `status_error`).
    status: Option<StatusJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_error: Option<String>,
}

/// The top-level fields of a job that is no longer stored.
#[derive(Serialize)]
pub(crate) struct FinishedJson {
    id: JobId,
    queue: String,
    state: Status,
}

/// Where the job is as `Client::status_in` reads it, finished states
/// included, with its timeline (oldest first) and, when kept, its result
/// (written verbatim).
#[derive(Serialize)]
pub(crate) struct StatusJson {
    /// `scheduled`, `ready`, `active`, `retry`, `dead`, `done`, `cancelled`.
    state: Status,
    #[serde(rename = "type")]
    job_type: Option<String>,
    attempt: Option<u32>,
    max_attempts: Option<u32>,
    enqueued_ms: Option<i64>,
    at_ms: Option<i64>,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    worker: Option<String>,
    cancel_requested: bool,
    last_error: Option<String>,
    result: Option<Box<RawValue>>,
    timeline: Vec<HistoryEntry>,
    /// Milliseconds the kept outcome remains (finished jobs).
    outcome_expires_in_ms: Option<u64>,
}

impl From<JobStatus> for StatusJson {
    fn from(st: JobStatus) -> Self {
        Self {
            state: st.status,
            job_type: st.job_type,
            attempt: st.attempt,
            max_attempts: st.max_attempts,
            enqueued_ms: st.enqueued_ms,
            at_ms: st.at_ms,
            started_ms: st.started_ms,
            finished_ms: st.finished_ms,
            worker: st.worker,
            cancel_requested: st.cancel_requested,
            last_error: st.last_error,
            result: st.result,
            timeline: st.history,
            outcome_expires_in_ms: st
                .outcome_expires_in
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// One job, whole (full args, errors and raw record; status and timeline);
/// a finished job by its kept outcome; 404 when neither is there.
pub(crate) async fn job(
    State(s): AppState,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Json<JobJson>> {
    let queue = queue_name(&queue)?;
    let id = job_id(&id)?;
    if let Some(view) = s.admin.job(queue, id).await? {
        let status = super::jobs::status_of(&s, queue, id).await;
        let (status, status_error) = match status {
            Ok(st) => (Some(st.into()), None),
            Err(why) => (None, Some(why)),
        };
        return Ok(Json(JobJson {
            job: Some(view),
            finished: None,
            status,
            status_error,
        }));
    }
    let finished = |state| FinishedJson {
        id: JobId::from(id),
        queue: queue.to_owned(),
        state,
    };
    match s.admin.client().status_in(queue, &JobId::from(id)).await {
        Ok(st) if st.status == Status::Unknown => Err(super::jobs::not_found(queue, id)),
        Ok(st) => Ok(Json(JobJson {
            job: None,
            finished: Some(finished(st.status)),
            status: Some(st.into()),
            status_error: None,
        })),
        // A kept outcome that is not Spool's JSON: say so, as the page does.
        Err(e @ spool_client::Error::Decode { .. }) => Ok(Json(JobJson {
            job: None,
            finished: Some(finished(Status::Unknown)),
            status: None,
            status_error: Some(clip(&e.to_string(), FIELD_BYTES)),
        })),
        Err(e) => Err(e.into()),
    }
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
