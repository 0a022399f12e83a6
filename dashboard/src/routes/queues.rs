//! Queues: the list of every queue (`/queues`), and one queue's page: its
//! ready jobs in fetch order (LRANGE of one page), its counts, pause/resume,
//! its fleet controls, deleting a ready job and clearing the queue.

use axum::extract::{Extension, Path, State};
use axum::response::{Redirect, Response};

use crate::error::AppResult;
use crate::params::{enc, job_id, queue_name, ListQuery, StrictForm, StrictQuery};
use crate::routes::overview::{queue_row, Snapshot};
use crate::state::{AppState, Ctx};
use crate::views::{render, JobRow, Layout, Pager, QueuePage, QueuesPage};

/// GET `/queues`: every queue with its counts, each count linking to its
/// jobs.
pub(crate) async fn list(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
) -> AppResult<Response> {
    let snap = Snapshot::read(&s.admin, 60).await?;
    let queues = snap
        .queues
        .iter()
        .map(|q| queue_row(&ctx.base, q, snap.last_hour(&q.name)))
        .collect();
    let mut l = Layout::new(&ctx, "Queues", "queues");
    l.refresh = s.config.refresh_secs;
    Ok(render(&QueuesPage {
        l,
        skipped: snap.skipped_bounded(),
        queues,
    }))
}

/// GET `/queues/{queue}`.
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
    let mut l = Layout::new(&ctx, format!("Queue {queue}"), "queues");
    l.notice = query.notice();
    Ok(render(&QueuePage {
        l,
        q,
        jobs: rows,
        pager,
    }))
}

/// The form of `POST /queues/{queue}/limit`: `csrf` (read by the gate)
/// and the limit.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct LimitForm {
    /// A positive integer, or empty to lift the limit.
    limit: Option<String>,
}

/// POST `/queues/{queue}/limit`: sets (or, empty, lifts) the queue's
/// global concurrency limit, then back to the queue page.
pub(crate) async fn limit(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
    StrictForm(form): StrictForm<LimitForm>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let raw = form.limit.as_deref().unwrap_or("").trim();
    let limit = if raw.is_empty() || raw == "none" {
        None
    } else {
        Some(crate::params::number("limit", Some(raw), 1, 1, 1_000_000)?)
    };
    ctx.admin(&s.admin)
        .set_concurrency_limit(queue, limit)
        .await?;
    tracing::info!(queue, ?limit, "concurrency limit set from the dashboard");
    Ok(back(&ctx, queue, "limit", 1))
}

/// The form of `POST /queues/{queue}/rate` and `/breaker`: `csrf` (read
/// by the gate) and the value as typed (empty or `none` lifts it).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ControlForm {
    value: Option<String>,
}

/// The value of a control form: `None` to lift it, else parsed.
fn control_value<T>(field: &'static str, form: &ControlForm) -> AppResult<Option<T>>
where
    T: std::str::FromStr<Err = spool_client::Error>,
{
    let raw = form.value.as_deref().unwrap_or("").trim();
    if raw.is_empty() || raw == "none" {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|e| crate::error::AppError::BadRequest(format!("{field}: {e}")))
}

/// POST `/queues/{queue}/{control}` for `rate`, `key-rate`, `breaker` and
/// `groups`: sets (or, with `value` empty or `none`, lifts) that fleet
/// control of the queue, then back to the queue page.
pub(crate) async fn control(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((queue, control)): Path<(String, String)>,
    StrictForm(form): StrictForm<ControlForm>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let admin = ctx.admin(&s.admin);
    let done = match control.as_str() {
        "rate" => {
            admin
                .set_rate_limit(queue, control_value("rate limit", &form)?)
                .await?;
            "rate"
        }
        "key-rate" => {
            admin
                .set_key_rate_limit(queue, control_value("per-key rate limit", &form)?)
                .await?;
            "key_rate"
        }
        "breaker" => {
            admin
                .set_breaker(queue, control_value("breaker", &form)?)
                .await?;
            "breaker"
        }
        "groups" => {
            admin
                .configure_groups(queue, control_value("groups", &form)?)
                .await?;
            "groups"
        }
        _ => {
            return Err(crate::error::AppError::NotFound(format!(
                "no queue control {}",
                crate::text::clip(&control, 40)
            )))
        }
    };
    tracing::info!(queue, control = done, value = ?form.value, "fleet control set from the dashboard");
    Ok(back(&ctx, queue, done, 1))
}

/// POST `/queues/{queue}/breaker/reset`: closes the queue's breaker now.
pub(crate) async fn breaker_reset(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    ctx.admin(&s.admin).reset_breaker(queue).await?;
    tracing::info!(queue, "circuit breaker reset from the dashboard");
    Ok(back(&ctx, queue, "breaker_reset", 1))
}

/// POST `/queues/{queue}/clear`: deletes every ready job of the queue
/// (scheduled, retrying, running and dead jobs stay).
pub(crate) async fn clear(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let n = ctx.admin(&s.admin).clear_ready(queue).await?;
    tracing::info!(queue, jobs = n, "queue cleared from the dashboard");
    Ok(back(&ctx, queue, "clear", n))
}

/// The form of `POST /queues/{queue}/delete`: the ready job's id.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DeleteForm {
    id: String,
}

/// POST `/queues/{queue}/delete`: deletes one ready job.
pub(crate) async fn delete(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
    StrictForm(form): StrictForm<DeleteForm>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let id = job_id(&form.id)?;
    let deleted = ctx.admin(&s.admin).delete_ready(queue, id).await?;
    tracing::info!(
        queue,
        job_id = id,
        deleted,
        "ready job deleted from the dashboard"
    );
    Ok(back(&ctx, queue, "delete", u64::from(deleted)))
}

/// Back to the queue page with the notice of `done` to `n` jobs.
fn back(ctx: &Ctx, queue: &str, done: &str, n: u64) -> Redirect {
    Redirect::to(&format!(
        "{}/queues/{}?done={done}&n={n}",
        ctx.base,
        enc(queue)
    ))
}

pub(crate) async fn pause(s: AppState, c: Extension<Ctx>, q: Path<String>) -> AppResult<Redirect> {
    set_paused(s, c, q, true).await
}

pub(crate) async fn resume(s: AppState, c: Extension<Ctx>, q: Path<String>) -> AppResult<Redirect> {
    set_paused(s, c, q, false).await
}

async fn set_paused(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(queue): Path<String>,
    paused: bool,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let done = if paused {
        ctx.admin(&s.admin).pause(queue).await?;
        "pause"
    } else {
        ctx.admin(&s.admin).resume(queue).await?;
        "resume"
    };
    tracing::info!(
        queue,
        action = done,
        "queue paused or resumed from the dashboard"
    );
    Ok(back(&ctx, queue, done, 1))
}
