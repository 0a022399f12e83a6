//! Cron: the live cron entries (`Admin::cron_entries`: schedule, zone,
//! next and last run, last job, paused) with pause, resume and run now.
//! "Run now" twice within the client's window enqueues one job.

use axum::extract::{Extension, Path};
use axum::response::{Redirect, Response};

use super::{AppState, State};
use crate::error::{AppError, AppResult};
use crate::params::{enc, ListQuery};
use crate::security::Ctx;
use crate::views::{
    fmt_time, job_href, preview, render, CronPage, CronRow, Layout, ARGS_PREVIEW_CHARS,
};

/// The entries as page rows.
pub(crate) async fn entries(s: &super::Shared, base: &str) -> AppResult<Vec<CronRow>> {
    let list = s.admin.cron_entries().await?;
    Ok(list
        .into_iter()
        .map(|e| CronRow {
            name_enc: enc(&e.name),
            schedule: e.schedule,
            timezone: e.timezone,
            job_type: e.job_type,
            args: preview(&e.args.to_string(), ARGS_PREVIEW_CHARS),
            paused: e.paused,
            next_run: e.next_run_ms.map_or_else(|| "-".to_owned(), fmt_time),
            last_run: e.last_run_ms.map_or_else(|| "-".to_owned(), fmt_time),
            last_job: e
                .last_job_id
                .map(|id| (id.to_string(), job_href(base, &e.queue, id.as_str()))),
            queue: e.queue,
            name: e.name,
        })
        .collect())
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> AppResult<Response> {
    let entries = entries(&s, &ctx.base).await?;
    let mut l = Layout::new(&ctx, "Cron", "cron");
    l.notice = query.notice();
    Ok(render(&CronPage { l, entries }))
}

/// POST `/cron/{name}/{pause|resume|run}`.
pub(crate) async fn action(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((name, op)): Path<(String, String)>,
) -> AppResult<Redirect> {
    spool_client::validate_cron_name(&name).map_err(AppError::BadRequest)?;
    let found = match op.as_str() {
        "pause" => s.admin.cron_pause(&name).await?,
        "resume" => s.admin.cron_resume(&name).await?,
        "run" => {
            let e = s.admin.cron_run_now(&name).await?;
            tracing::info!(cron = name, job_id = %e.id, duplicate = e.duplicate, "cron entry run from the dashboard");
            true
        }
        _ => return Err(AppError::NotFound("unknown cron action".to_owned())),
    };
    if !found {
        return Err(AppError::NotFound(format!("no live cron entry {name}")));
    }
    let done = if op == "run" { "cron_run" } else { "cron" };
    Ok(Redirect::to(&format!("{}/cron?done={done}&n=1", ctx.base)))
}
