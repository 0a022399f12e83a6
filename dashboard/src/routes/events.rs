//! Events: the latest job events and operator actions of every queue (or
//! one), newest first, filtered by event kind or job type; `/api/events`
//! gives the same as JSON.

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use spool_client::Event;

use crate::error::AppResult;
use crate::params::{ListQuery, StrictQuery};
use crate::state::{AppState, Ctx};
use crate::text::{clip, clip_line, FIELD_BYTES};
use crate::views::{fmt_time_ms, job_href, render, state_class, EventRow, EventsPage, Layout};

/// Events a page shows.
const EVENTS_PAGE: usize = 200;
/// Events read per queue to fill a filtered page.
const EVENTS_SCAN: usize = 5_000;
/// Bytes of an error shown in a row.
const EVENT_ERROR_BYTES: usize = 200;

/// The filter of `?queue=…&type=…` (a kind like `dead`, or a job type).
async fn latest(s: &crate::state::Shared, query: &ListQuery) -> AppResult<Vec<Event>> {
    let queue = query.queue.as_deref().filter(|q| !q.is_empty());
    if let Some(q) = queue {
        spool_client::validate_queue_name(q)?;
    }
    let kind = query.job_type.as_deref().filter(|t| !t.is_empty());
    let queues: Vec<&str> = queue.into_iter().collect();
    let scan = if kind.is_some() {
        EVENTS_SCAN
    } else {
        EVENTS_PAGE
    };
    Ok(s.admin
        .recent_events(&queues, None, scan)
        .await?
        .into_iter()
        .filter(|e| kind.is_none_or(|k| e.kind.as_str() == k || e.job_type.as_deref() == Some(k)))
        .take(EVENTS_PAGE)
        .collect())
}

/// GET `/events`.
pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let events = latest(&s, &query).await?;
    let rows = events
        .iter()
        .map(|e| EventRow {
            at: fmt_time_ms(e.at_ms),
            queue: clip(&e.queue, FIELD_BYTES),
            kind: clip(e.kind.as_str(), FIELD_BYTES),
            class: state_class(match e.kind.as_str() {
                "succeeded" => "done",
                "retrying" => "retry",
                "started" => "active",
                "enqueued" | "retried" | "run_now" => "ready",
                other => other,
            }),
            job: e
                .job_id
                .as_ref()
                .map(|j| clip(j.as_str(), FIELD_BYTES))
                .unwrap_or_default(),
            job_href: e
                .job_id
                .as_ref()
                .map(|j| job_href(&ctx.base, &e.queue, j.as_str())),
            job_type: e
                .job_type
                .as_deref()
                .map(|t| clip(t, FIELD_BYTES))
                .unwrap_or_default(),
            attempt: e
                .attempt
                .filter(|a| *a > 0)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            actor: e
                .actor
                .as_deref()
                .map(|a| clip(a, FIELD_BYTES))
                .unwrap_or_default(),
            selection: e
                .selection
                .as_deref()
                .map(|a| clip(a, FIELD_BYTES))
                .unwrap_or_default(),
            error: e
                .error
                .as_deref()
                .map(|t| clip_line(t, EVENT_ERROR_BYTES))
                .unwrap_or_default(),
        })
        .collect();
    let mut l = Layout::new(&ctx, "Events", "events");
    l.refresh = s.config.refresh_secs;
    Ok(render(&EventsPage {
        l,
        events: rows,
        queue: query.queue.clone().unwrap_or_default(),
        kind: query.job_type.clone().unwrap_or_default(),
        filtered: query.queue.as_deref().is_some_and(|q| !q.is_empty())
            || query.job_type.as_deref().is_some_and(|t| !t.is_empty()),
    }))
}

/// GET `/api/events`: the same events as JSON, newest first.
pub(crate) async fn api(
    State(s): AppState,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    Ok(Json(latest(&s, &query).await?).into_response())
}
