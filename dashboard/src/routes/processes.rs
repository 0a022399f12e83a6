//! Processes: live workers (as their heartbeats registered them) and the
//! jobs each is running.

use axum::extract::Extension;
use axum::response::Response;

use super::{AppState, State};
use crate::error::AppResult;
use crate::security::Ctx;
use crate::views::{fmt_rel, job_href, render, BusyRow, Layout, ProcessRow, ProcessesPage};

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
) -> AppResult<Response> {
    let procs = s.admin.processes().await?;
    let now = s.admin.client().redis_time_ms().await?;
    let rows: Vec<ProcessRow> = procs
        .iter()
        .map(|p| ProcessRow {
            id: p.info.id.clone(),
            host: p.info.host.clone(),
            pid: p.info.pid,
            queues: p.info.queues.join(", "),
            concurrency: p.info.concurrency,
            busy: p
                .busy
                .iter()
                .map(|b| BusyRow {
                    id: b.id.clone(),
                    href: job_href(&ctx.base, &b.queue, &b.id),
                    queue: b.queue.clone(),
                    job_type: b.job_type.clone(),
                    started: fmt_rel(b.started_ms, now),
                })
                .collect(),
            started: fmt_rel(p.started_ms, now),
            beat: fmt_rel(p.beat_ms, now),
            version: p.info.version.clone(),
        })
        .collect();
    let busy_total = rows.iter().map(|p| p.busy.len()).sum();
    let mut l = Layout::new(&ctx, "Processes", "processes");
    l.refresh = s.config.refresh_secs;
    Ok(render(&ProcessesPage {
        l,
        procs: rows,
        busy_total,
    }))
}
