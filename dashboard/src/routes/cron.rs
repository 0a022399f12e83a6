//! Cron: the live cron entries (`Admin::cron_entries`: schedule, zone,
//! next and last run, last job, paused) with pause, resume and run now.
//! "Run now" twice within the client's window enqueues one job.

use axum::extract::{Extension, Path, State};
use axum::response::{Redirect, Response};

use crate::error::{AppError, AppResult};
use crate::params::{enc, ListQuery, StrictQuery};
use crate::state::{AppState, Ctx};
use crate::text::{clip, clip_line, ARGS_PREVIEW_BYTES, FIELD_BYTES};
use crate::views::{fmt_time, job_href, render, CronPage, CronRow, LastJob, Layout};

/// The entries as page rows.
pub(crate) async fn entries(s: &crate::state::Shared, base: &str) -> AppResult<Vec<CronRow>> {
    let list = s.admin.cron_entries().await?;
    let mut rows: Vec<CronRow> = list
        .into_iter()
        .map(|e| CronRow {
            // Names the action routes refuse get no working link (and no
            // 10 MiB one).
            name_enc: if spool_client::validate_cron_name(&e.name).is_ok() {
                enc(&e.name)
            } else {
                "-".to_owned()
            },
            schedule: clip(&e.schedule, FIELD_BYTES),
            timezone: clip(&e.timezone, FIELD_BYTES),
            job_type: clip(&e.job_type, FIELD_BYTES),
            args: clip_line(&e.args.to_string(), ARGS_PREVIEW_BYTES),
            paused: e.paused,
            next_run: e.next_run_ms.map_or_else(|| "-".to_owned(), fmt_time),
            last_run: e.last_run_ms.map_or_else(|| "-".to_owned(), fmt_time),
            last_job: e.last_job_id.map(|id| LastJob {
                id: clip(id.as_str(), FIELD_BYTES),
                href: Some(job_href(base, &e.queue, id.as_str())),
                state: String::new(),
            }),
            queue: clip(&e.queue, FIELD_BYTES),
            name: clip(&e.name, FIELD_BYTES),
        })
        .collect();
    // Where each last job is now: a finished job whose outcome was not kept
    // has no page, so it gets no link but says it finished.
    for row in &mut rows {
        let Some(job) = &mut row.last_job else {
            continue;
        };
        let id = spool_client::JobId::from(job.id.as_str());
        match s.admin.client().status_in(&row.queue, &id).await {
            Ok(st) if st.status == spool_client::Status::Unknown => {
                job.href = None;
                "finished; outcome not kept".clone_into(&mut job.state);
            }
            Ok(st) => job.state = st.status.to_string(),
            Err(e) => tracing::warn!(error = %e, "last cron job's status unreadable"),
        }
    }
    Ok(rows)
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    StrictQuery(query): StrictQuery<ListQuery>,
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
            let e = ctx.admin(&s.admin).cron_run_now(&name).await?;
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
