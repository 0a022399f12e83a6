//! Processes: live workers (as their heartbeats registered them) and the
//! jobs each is running, each with a Cancel button (POST to the job's
//! `/cancel`, which comes back here with the notice); Quiet and Stop for a
//! process (POST `/processes/{id}/{quiet,stop}`: `Admin::signal_process`,
//! carried out by that process at its next heartbeat).

use axum::extract::{Extension, Path, State};
use axum::response::{Redirect, Response};
use spool_client::admin::ProcessSignal;

use crate::error::{AppError, AppResult};
use crate::params::{enc, ListQuery, StrictQuery};
use crate::state::{AppState, Ctx};
use crate::text::{clip, FIELD_BYTES};
use crate::views::{
    cancel_href, fmt_rel, job_href, render, BusyRow, Layout, ProcessRow, ProcessesPage,
};

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let procs = s.admin.processes().await?;
    let now = s.admin.client().redis_time_ms().await?;
    let rows: Vec<ProcessRow> = procs
        .iter()
        .map(|p| ProcessRow {
            id: clip(&p.info.id, FIELD_BYTES),
            host: clip(&p.info.host, FIELD_BYTES),
            pid: p.info.pid,
            queues: clip(&p.info.queues.join(", "), FIELD_BYTES),
            concurrency: p.info.concurrency,
            busy: p
                .busy
                .iter()
                .map(|b| BusyRow {
                    id: clip(&b.id, FIELD_BYTES),
                    href: job_href(&ctx.base, &b.queue, &b.id),
                    cancel_href: cancel_href(&ctx.base, &b.queue, &b.id),
                    queue: clip(&b.queue, FIELD_BYTES),
                    job_type: clip(&b.job_type, FIELD_BYTES),
                    started: fmt_rel(b.started_ms, now),
                })
                .collect(),
            started: fmt_rel(p.started_ms, now),
            beat: fmt_rel(p.beat_ms, now),
            version: clip(&p.info.version, FIELD_BYTES),
            href: format!("{}/processes/{}", ctx.base, enc(&p.info.id)),
            signal: p.signal.map_or("", ProcessSignal::as_str),
        })
        .collect();
    let busy_total = rows.iter().map(|p| p.busy.len()).sum();
    let mut l = Layout::new(&ctx, "Processes", "processes");
    l.refresh = s.config.refresh_secs;
    l.notice = query.notice();
    Ok(render(&ProcessesPage {
        l,
        procs: rows,
        busy_total,
    }))
}

/// POST `/processes/{id}/{quiet,stop}`: leaves the signal for that process,
/// then back to Processes with a notice.
pub(crate) async fn signal(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((id, signal)): Path<(String, String)>,
) -> AppResult<Redirect> {
    let signal = match signal.as_str() {
        "quiet" => ProcessSignal::Quiet,
        "stop" => ProcessSignal::Stop,
        _ => return Err(AppError::NotFound("no such process action".to_owned())),
    };
    let stored = ctx.admin(&s.admin).signal_process(&id, signal).await?;
    let done = if stored { signal.as_str() } else { "gone" };
    Ok(Redirect::to(&format!(
        "{}/processes?done={done}&n=1",
        ctx.base
    )))
}
