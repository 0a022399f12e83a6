//! Batches: the latest batches and chains of every queue with their
//! progress, and one batch's page (counts, callbacks, members by state);
//! `/api/batches` and `/api/batches/{id}` give the same as JSON.

use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use spool_client::admin::Page;
use spool_client::{BatchId, BatchMember, BatchStatus, MemberState};

use crate::error::{AppError, AppResult};
use crate::params::{ListQuery, StrictQuery};
use crate::state::{AppState, Ctx};
use crate::text::{clip, FIELD_BYTES};
use crate::views::{
    fmt_time, fmt_time_ms, job_href, render, state_class, BatchPage, BatchRow, BatchesPage,
    CallbackRow, Layout, MemberRow, Pager,
};

/// Batches the list shows.
const BATCHES_SHOWN: usize = 100;

/// The batch id of a path segment, or a 400 naming the rule.
fn batch_id(raw: &str) -> AppResult<BatchId> {
    BatchId::parse(raw).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// The member state of `?state=`, or none for every member.
fn state_filter(query: &ListQuery) -> AppResult<Option<MemberState>> {
    match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => MemberState::parse(s).map(Some).ok_or_else(|| {
            AppError::BadRequest("state must be pending, done, dead or cancelled".to_owned())
        }),
    }
}

/// A batch id is `<queue>~<uuid>`, URL-safe as it is: no encoding.
fn batch_href(base: &str, id: &BatchId) -> String {
    format!("{base}/batches/{}", id.as_str())
}

fn row(base: &str, b: &BatchStatus) -> BatchRow {
    BatchRow {
        id: clip(b.id.as_str(), FIELD_BYTES),
        href: batch_href(base, &b.id),
        kind: b.kind.as_str(),
        description: clip(&b.description, FIELD_BYTES),
        created: fmt_time(b.created_ms),
        total: b.total,
        done: b.done,
        dead: b.dead,
        cancelled: b.cancelled,
        pending: b.pending,
        percent: b.percent_ended(),
        state: progress_state(b),
    }
}

/// Where the batch is, for people.
fn progress_state(b: &BatchStatus) -> String {
    if b.sealed || b.finished() {
        clip(&b.state(), FIELD_BYTES)
    } else {
        "unsealed (members still being added, or the producer died)".to_owned()
    }
}

/// One batch and a page of its members, as `?state=&page=&per_page=` ask.
struct Read {
    id: BatchId,
    filter: Option<MemberState>,
    paging: crate::params::Paging,
    status: BatchStatus,
    members: Page<BatchMember>,
}

/// Reads batch `raw_id` for its page or its JSON: a 400 for a malformed
/// id or parameter, a 404 for a batch that does not exist (any more).
async fn read(s: &crate::state::Shared, raw_id: &str, query: &ListQuery) -> AppResult<Read> {
    let id = batch_id(raw_id)?;
    let filter = state_filter(query)?;
    let paging = query.paging()?;
    let client = s.admin.client();
    let Some(status) = client.batch_status(&id).await? else {
        return Err(AppError::NotFound(format!(
            "no batch {} (never created, or expired after its retention)",
            clip(id.as_str(), FIELD_BYTES)
        )));
    };
    let members = client
        .batch_members(
            &id,
            filter,
            usize::try_from(paging.offset()).unwrap_or(usize::MAX),
            paging.per_page,
        )
        .await?;
    Ok(Read {
        id,
        filter,
        paging,
        status,
        members,
    })
}

/// GET `/batches`.
pub(crate) async fn list(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
) -> AppResult<Response> {
    let batches = s.admin.batches(BATCHES_SHOWN).await?;
    let mut l = Layout::new(&ctx, "Batches", "batches");
    l.refresh = s.config.refresh_secs;
    Ok(render(&BatchesPage {
        l,
        batches: batches.iter().map(|b| row(&ctx.base, b)).collect(),
    }))
}

/// GET `/batches/{id}`: `?state=` filters the members, `?page=` pages them.
pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let Read {
        id,
        filter,
        paging,
        status,
        members,
    } = read(&s, &id, &query).await?;
    let href = batch_href(&ctx.base, &id);
    let state_param = filter.map_or(String::new(), |f| format!("&state={}", f.as_str()));
    let pager = Pager::new(
        paging.page,
        paging.per_page,
        members.total,
        members.items.len(),
        |p| format!("{href}?page={p}{state_param}"),
    );
    let callbacks = status
        .callbacks
        .iter()
        .map(|cb| CallbackRow {
            on: cb.on.as_str(),
            job_type: clip(&cb.job_type, FIELD_BYTES),
            queue: clip(&cb.queue, FIELD_BYTES),
            id: clip(cb.id.as_str(), FIELD_BYTES),
            href: cb
                .fired
                .then(|| job_href(&ctx.base, &cb.queue, cb.id.as_str())),
        })
        .collect();
    let mut l = Layout::new(
        &ctx,
        format!("Batch {}", clip(id.as_str(), FIELD_BYTES)),
        "batches",
    );
    l.refresh = s.config.refresh_secs;
    Ok(render(&BatchPage {
        l,
        batch: row(&ctx.base, &status),
        sealed: status.sealed,
        finished: status.finished_ms.map(fmt_time).unwrap_or_default(),
        first_dead: status.first_dead.as_ref().map(|j| {
            (
                clip(j.as_str(), FIELD_BYTES),
                members_href(&href, MemberState::Dead),
            )
        }),
        callbacks,
        members: member_rows(&ctx.base, &members),
        filter: filter.map_or("", MemberState::as_str),
        filters: [
            MemberState::Pending,
            MemberState::Done,
            MemberState::Dead,
            MemberState::Cancelled,
        ]
        .into_iter()
        .map(|f| (f.as_str(), members_href(&href, f)))
        .collect(),
        all_href: href.clone(),
        api_href: format!("{}/api/batches/{}", ctx.base, id.as_str()),
        pager,
    }))
}

fn members_href(href: &str, state: MemberState) -> String {
    format!("{href}?state={}", state.as_str())
}

fn member_rows(base: &str, page: &Page<BatchMember>) -> Vec<MemberRow> {
    page.items
        .iter()
        .map(|m| MemberRow {
            id: clip(m.id.as_str(), FIELD_BYTES),
            href: job_href(base, &m.queue, m.id.as_str()),
            queue: clip(&m.queue, FIELD_BYTES),
            state: m.state.as_str(),
            class: state_class(m.state.as_str()),
            ended: m.ended_ms.map(fmt_time_ms).unwrap_or_default(),
        })
        .collect()
}

/// GET `/api/batches`: the latest batches as JSON, newest first.
pub(crate) async fn api_list(State(s): AppState) -> AppResult<Response> {
    Ok(Json(s.admin.batches(BATCHES_SHOWN).await?).into_response())
}

/// The JSON of one batch: its status and a page of members.
#[derive(serde::Serialize)]
struct BatchJson {
    batch: BatchStatus,
    members: Page<BatchMember>,
}

/// GET `/api/batches/{id}`: `?state=` and `?page=` as the page.
pub(crate) async fn api_one(
    State(s): AppState,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let r = read(&s, &id, &query).await?;
    Ok(Json(BatchJson {
        batch: r.status,
        members: r.members,
    })
    .into_response())
}
