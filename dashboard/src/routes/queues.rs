//! Queue page: one queue's ready jobs in fetch order (LRANGE of one page),
//! its counts, and pause/resume.

use axum::extract::{Extension, Path};
use axum::response::{Redirect, Response};

use crate::error::AppResult;
use crate::params::{enc, queue_name, ListQuery, StrictQuery};
use crate::routes::overview::queue_row;
use crate::state::AppState;
use crate::state::Ctx;
use crate::views::{render, JobRow, Layout, Pager, QueuePage};
use axum::extract::State;

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let queue = queue_name(&queue)?;
    let paging = query.paging()?;
    let info = s.admin.queue(queue).await?;
    let stats = s.admin.stats(queue, 60).await?;
    let jobs = s
        .admin
        .list_ready(queue, paging.offset(), paging.per_page)
        .await?;
    let now = s.admin.client().redis_time_ms().await?;
    let q = queue_row(&ctx.base, &info, stats.last_minutes(60));
    let rows: Vec<JobRow> = jobs
        .items
        .iter()
        .map(|j| JobRow::new(&ctx.base, j, now))
        .collect();
    let href = q.href.clone();
    let per_page = paging.per_page;
    let pager = Pager::new(paging.page, per_page, jobs.total, rows.len(), |p| {
        format!("{href}?page={p}&per_page={per_page}")
    });
    let mut l = Layout::new(&ctx, format!("Queue {queue}"), "overview");
    l.notice = query.notice();
    Ok(render(&QueuePage {
        l,
        q,
        jobs: rows,
        pager,
    }))
}

pub(crate) async fn pause(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    s.admin.pause(queue).await?;
    tracing::info!(queue, "queue paused from the dashboard");
    Ok(Redirect::to(&format!(
        "{}/queues/{}?done=pause&n=1",
        ctx.base,
        enc(queue)
    )))
}

pub(crate) async fn resume(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    s.admin.resume(queue).await?;
    tracing::info!(queue, "queue resumed from the dashboard");
    Ok(Redirect::to(&format!(
        "{}/queues/{}?done=resume&n=1",
        ctx.base,
        enc(queue)
    )))
}
