//! Job page: everything about one job, wherever it is (one pipelined read;
//! a ready job is found by walking the ready list in bounded chunks). Args
//! are pretty-printed (on the text, never through a recursive
//! `serde_json::Value`) up to `ARGS_PAGE_BYTES`; past that the page shows the
//! start and links to the raw JSON, so a 10 MiB job renders quickly. Every
//! other stored string is bounded too (errors link to the single-job JSON).
//!
//! The timeline comes from `Client::status_in` (`status.lua`). A job no
//! longer stored (done, cancelled, or dead and trimmed) that kept its
//! outcome is shown from that outcome (`job_outcome.html`): state, attempts,
//! times, result, last error, timeline; a job with neither is a 404.
//!
//! Cancel (POST `/jobs/{queue}/{id}/cancel`, behind the same CSRF gate as
//! every action) is `Client::cancel`: a scheduled, ready or retrying job is
//! cancelled at once, a running one is signalled. The redirect carries what
//! happened (`done=cancelled|cancel_signalled|…`) for the notice line.

use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use spool_client::admin::JobView;
use spool_client::{CancelResult, JobId, JobState, JobStatus, Status};

use crate::error::{AppError, AppResult};
use crate::params::{enc, job_id, queue_name, ListQuery, StrictForm, StrictQuery};
use crate::state::{AppState, Ctx, Shared};
use crate::text::{clip, ERROR_PAGE_BYTES, FIELD_BYTES};
use crate::views::{
    cancel_href, fmt_ms, fmt_time, job_href, render, state_class, ErrorRow, Field, JobOutcomePage,
    JobPage, JsonText, Layout, TimelineRow,
};

/// The 404 of a job that is neither stored nor kept as an outcome.
pub(crate) fn not_found(queue: &str, id: &str) -> AppError {
    AppError::NotFound(format!(
        "job {id} is not in queue {queue}: it finished without keeping its outcome, was \
         deleted, or never existed"
    ))
}

/// The stored job, or 404.
pub(crate) async fn find(s: &Shared, queue: &str, id: &str) -> AppResult<JobView> {
    let queue = queue_name(queue)?;
    let id = job_id(id)?;
    s.admin
        .job(queue, id)
        .await?
        .ok_or_else(|| not_found(queue, id))
}

/// Where a job is as `status.lua` reads it (finished states included), or
/// why that read failed, as one bounded line. A failure never takes the
/// page down: the page shows what it has and says the timeline is missing.
pub(crate) async fn status_of(s: &Shared, queue: &str, id: &str) -> Result<JobStatus, String> {
    s.admin
        .client()
        .status_in(queue, &JobId::from(id))
        .await
        .map_err(|e| {
            tracing::warn!(queue, job_id = id, error = %e, "job status read failed");
            clip(&e.to_string(), FIELD_BYTES)
        })
}

/// Whether Cancel applies: a job that has not finished (dead is finished
/// until an operator retries it).
fn cancellable(state: JobState) -> bool {
    matches!(
        state,
        JobState::Scheduled | JobState::Ready | JobState::Retry | JobState::Active
    )
}

/// Whether Cancel applies to a job known by its status.
fn status_cancellable(status: Status) -> bool {
    matches!(
        status,
        Status::Scheduled | Status::Ready | Status::Retry | Status::Active
    )
}

/// Pretty-printed args, or the first `ARGS_PAGE_BYTES` of them.
fn args_text(raw: &str) -> (String, bool) {
    let t = JsonText::new(raw);
    (t.text, t.truncated)
}

/// Why a dead job died, as an operator reads it: out of attempts, or
/// failed permanently (the handler said so, or the job could not be run:
/// its args did not decode, its type had no handler) with attempts left.
fn why_dead(job: &JobView) -> Option<String> {
    if job.state != JobState::Dead {
        return None;
    }
    Some(match job.attempts() {
        Some((a, m)) if a >= m => format!("attempts exhausted ({a} of {m} failed)"),
        Some((a, m)) => format!(
            "failed permanently on attempt {a} of {m} (the handler returned a permanent \
             error, or the job could not be run)"
        ),
        None => "dead".to_owned(),
    })
}

/// The job page's field list: times, timeout, idempotency key, trace, each
/// stored string bounded.
fn fields(job: &JobView) -> Vec<Field> {
    let rec = job.record.as_ref();
    let mut fields = Vec::new();
    if let Some(why) = why_dead(job) {
        fields.push(Field::text("Why dead", why));
    }
    if let Some(at) = job.at_ms {
        let label = match job.state {
            JobState::Scheduled => "Runs at",
            JobState::Retry => "Next retry at",
            JobState::Dead => "Died at",
            JobState::Active => "Lease deadline",
            JobState::Ready => "At",
        };
        fields.push(Field::time(label, at));
    }
    if let Some(r) = rec {
        // "Ready since" only where the job is waiting to run.
        if matches!(job.state, JobState::Ready) {
            fields.push(Field::time("Ready since", r.enqueued_ms));
        }
        fields.push(Field::time("Created", r.created_ms));
        if r.priority != 0 {
            fields.push(Field::text("Priority", format!("{:+}", r.priority)));
        }
        if let Some(t) = r.timeout_ms {
            fields.push(Field::text("Timeout", fmt_ms(t)));
        }
        fields.push(Field::text(
            "Idempotency key",
            r.idempotency_key
                .as_deref()
                .map_or_else(|| "-".to_owned(), |k| clip(k, FIELD_BYTES)),
        ));
        if let Some(trace) = &r.trace {
            let t: Vec<String> = trace.iter().map(|(k, v)| format!("{k}={v}")).collect();
            fields.push(Field::text("Trace", clip(&t.join(", "), FIELD_BYTES)));
        }
    } else {
        let why = job.problem.as_deref().unwrap_or("not a Spool record");
        fields.push(Field::text(
            "Record",
            format!("{} (shown raw)", clip(why, FIELD_BYTES)),
        ));
    }
    fields
}

/// The list a job page leads back to: its set (of its queue), its queue's
/// ready jobs, or Processes for a running job.
fn back_to(base: &str, queue: &str, state: JobState) -> (String, String) {
    let q = enc(queue);
    match JobPage::set_path_for(state) {
        Some(set) => (
            format!("{} of queue {}", capitalised(set), clip(queue, FIELD_BYTES)),
            format!("{base}/{set}?queue={q}"),
        ),
        None if state == JobState::Active => ("Processes".to_owned(), format!("{base}/processes")),
        None => (
            format!("Queue {}", clip(queue, FIELD_BYTES)),
            format!("{base}/queues/{q}"),
        ),
    }
}

fn capitalised(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// GET `/jobs/{queue}/{id}`: the stored job with its timeline, else its
/// kept outcome, else 404.
pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((queue, id)): Path<(String, String)>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let queue = queue_name(&queue)?;
    let id = job_id(&id)?;
    let mut l = Layout::new(&ctx, format!("Job {}", clip(id, FIELD_BYTES)), "");
    l.notice = query.notice();
    if let Some(job) = s.admin.job(queue, id).await? {
        let status = status_of(&s, queue, id).await;
        let status = status.as_ref().map_err(String::as_str);
        let mut page = live_page(&ctx, l, &job, status);
        reveal_args(&s.admin, &job, &mut page);
        // Its children to be: a failed read only leaves the list out.
        page.children = match s.admin.follow_ups(queue, id).await {
            Ok(list) => list
                .iter()
                .map(|f| {
                    (
                        format!(
                            "on {}: {} {} ({})",
                            clip(&f.on, FIELD_BYTES),
                            clip(&f.job_type, FIELD_BYTES),
                            clip(f.id.as_str(), FIELD_BYTES),
                            clip(&f.queue, FIELD_BYTES)
                        ),
                        job_href(&ctx.base, &f.queue, f.id.as_str()),
                    )
                })
                .collect(),
            Err(e) => {
                tracing::warn!(queue, job_id = id, error = %e, "follow-ups unreadable");
                Vec::new()
            }
        };
        return Ok(render(&page));
    }
    match s.admin.client().status_in(queue, &JobId::from(id)).await {
        Ok(st) if st.status == Status::Unknown => Err(not_found(queue, id)),
        Ok(st) => Ok(render(&outcome_page(&ctx, l, queue, id, Ok(&st)))),
        // A kept outcome that is not Spool's JSON (any producer may write
        // one): say so rather than fail the page.
        Err(e @ spool_client::Error::Decode { .. }) => {
            tracing::warn!(queue, job_id = id, error = %e, "kept outcome cannot be decoded");
            let why = format!("The kept outcome cannot be read: {e}");
            Ok(render(&outcome_page(
                &ctx,
                l,
                queue,
                id,
                Err(clip(&why, ERROR_PAGE_BYTES)),
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The batch (or chain) a job belongs to, or the batch whose callback it
/// is: (label, text, link).
fn batch_link(
    base: &str,
    record: Option<&spool_client::JobRecord>,
) -> Option<(&'static str, String, String)> {
    let record = record?;
    let href = |id: &spool_client::BatchId| format!("{base}/batches/{}", id.as_str());
    if let Some(cb) = &record.batch_callback {
        return Some((
            "Callback of",
            format!(
                "batch {} (on {})",
                clip(cb.id.as_str(), FIELD_BYTES),
                cb.on.as_str()
            ),
            href(&cb.id),
        ));
    }
    record
        .batch
        .as_ref()
        .map(|b| ("Batch", clip(b.as_str(), FIELD_BYTES), href(b)))
}

/// Encrypted args on a job page: in plain text when the dashboard's
/// client has the key (`SPOOL_KEYRING`), else `encrypted (key <id>)`, with
/// the reason when a keyring is configured but cannot open them.
fn reveal_args(admin: &spool_client::Admin, job: &JobView, page: &mut JobPage) {
    if job.encrypted_key.is_none() {
        return;
    }
    let marker = job.args_text();
    let t = match admin.reveal_args(job) {
        Some(Ok(args)) => JsonText::new(args.get()),
        Some(Err(spool_client::DecryptError::NoKeyring { .. })) | None => JsonText {
            text: marker.to_owned(),
            truncated: false,
            bytes: marker.len(),
        },
        Some(Err(e)) => JsonText {
            text: format!("{marker}: {e}"),
            truncated: false,
            bytes: marker.len(),
        },
    };
    page.args = t.text;
    page.args_truncated = t.truncated;
    page.args_bytes = t.bytes;
}

/// The page of a stored job (`job.html`).
fn live_page(ctx: &Ctx, l: Layout, job: &JobView, status: Result<&JobStatus, &str>) -> JobPage {
    let raw_args = job.args_text();
    let (args, args_truncated) = args_text(raw_args);
    let href = job_href(&ctx.base, &job.queue, job.id.as_str());
    let (timeline, timeline_note, cancel_requested) = match status {
        Ok(st) => (TimelineRow::all(&st.history), None, st.cancel_requested),
        Err(why) => (
            Vec::new(),
            Some(format!("Timeline unavailable: {why}")),
            false,
        ),
    };
    JobPage {
        l,
        id: clip(job.id.as_str(), FIELD_BYTES),
        queue: clip(&job.queue, FIELD_BYTES),
        queue_href: format!("{}/queues/{}", ctx.base, enc(&job.queue)),
        back: back_to(&ctx.base, &job.queue, job.state),
        state: job.state.to_string(),
        set_path: JobPage::set_path_for(job.state),
        is_scheduled: job.state == JobState::Scheduled,
        job_type: clip(job.job_type(), FIELD_BYTES),
        args,
        args_truncated,
        args_bytes: raw_args.len(),
        raw_href: format!("{href}/raw"),
        parent: job
            .record
            .as_ref()
            .and_then(|r| r.parent.as_ref())
            .map(|p| {
                (
                    format!(
                        "{} ({}, {})",
                        clip(p.id.as_str(), FIELD_BYTES),
                        clip(&p.queue, FIELD_BYTES),
                        clip(&p.state, FIELD_BYTES)
                    ),
                    job_href(&ctx.base, &p.queue, p.id.as_str()),
                )
            }),
        batch: batch_link(&ctx.base, job.record.as_ref()),
        children: Vec::new(),
        api_href: api_href(&ctx.base, &job.queue, job.id.as_str()),
        attempts: job
            .attempts()
            .map_or_else(|| "-".to_owned(), |(a, m)| format!("{a} of {m}")),
        fields: fields(job),
        errors: job
            .errors
            .iter()
            .rev()
            .map(|e| ErrorRow {
                attempt: e.attempt,
                at: fmt_time(e.at_ms),
                error: clip(&e.error, ERROR_PAGE_BYTES),
                truncated: e.error.len() > ERROR_PAGE_BYTES,
            })
            .collect(),
        lease: job.lease.as_ref().map(|l| {
            (
                clip(&l.worker, FIELD_BYTES),
                clip(&l.token, FIELD_BYTES),
                l.deadline_ms.map(fmt_time).unwrap_or_default(),
            )
        }),
        timeline,
        timeline_note,
        cancel_href: cancellable(job.state)
            .then(|| cancel_href(&ctx.base, &job.queue, job.id.as_str()))
            .flatten(),
        cancel_requested,
    }
}

fn api_href(base: &str, queue: &str, id: &str) -> String {
    format!("{base}/api/jobs/{}/{}", enc(queue), enc(id))
}

/// The page of a job known only by its status (`job_outcome.html`); `Err`
/// carries why the kept outcome could not be read.
fn outcome_page(
    ctx: &Ctx,
    l: Layout,
    queue: &str,
    id: &str,
    status: Result<&JobStatus, String>,
) -> JobOutcomePage {
    let (st, problem) = match status {
        Ok(st) => (Some(st), None),
        Err(why) => (None, Some(why)),
    };
    let state = st.map_or(Status::Unknown, |st| st.status);
    let mut fields = Vec::new();
    if let Some(st) = st {
        let ready = (!st.status.is_terminal())
            .then_some(st.enqueued_ms)
            .flatten();
        let times = [
            ("Ready since", ready),
            ("At", st.at_ms),
            ("Started", st.started_ms),
            ("Finished", st.finished_ms),
        ];
        for (label, at) in times {
            if let Some(at) = at {
                fields.push(Field::time_ms(label, at));
            }
        }
        if let Some(w) = &st.worker {
            fields.push(Field::text("Worker", clip(w, FIELD_BYTES)));
        }
        if st.cancel_requested {
            fields.push(Field::text("Cancel", "requested".to_owned()));
        }
        if let Some(left) = st.outcome_expires_in {
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            fields.push(Field::text("Outcome kept for", fmt_ms(ms)));
        }
    }
    let last_error = st.and_then(|st| st.last_error.as_deref());
    JobOutcomePage {
        l,
        id: clip(id, FIELD_BYTES),
        queue: clip(queue, FIELD_BYTES),
        queue_href: format!("{}/queues/{}", ctx.base, enc(queue)),
        state: state.to_string(),
        state_class: state_class(state.as_str()),
        finished: state.is_terminal(),
        job_type: st
            .and_then(|st| st.job_type.as_deref())
            .map_or_else(|| "?".to_owned(), |t| clip(t, FIELD_BYTES)),
        attempts: match st.map(|st| (st.attempt, st.max_attempts)) {
            Some((Some(a), Some(m))) => format!("{a} of {m}"),
            Some((Some(a), None)) => a.to_string(),
            _ => "-".to_owned(),
        },
        fields,
        result: st
            .and_then(|st| st.result.as_deref())
            .map(|r| JsonText::new(r.get())),
        last_error: last_error.map(|e| clip(e, ERROR_PAGE_BYTES)),
        error_truncated: last_error.is_some_and(|e| e.len() > ERROR_PAGE_BYTES),
        api_href: api_href(&ctx.base, queue, id),
        timeline: st
            .map(|st| TimelineRow::all(&st.history))
            .unwrap_or_default(),
        timeline_note: None,
        problem,
        cancel_href: status_cancellable(state)
            .then(|| cancel_href(&ctx.base, queue, id))
            .flatten(),
    }
}

/// The search box's query: `id`.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    id: Option<String>,
}

/// GET `/search?id=`: the page of the job with that id, in whichever queue
/// holds it (`Client::status`: stored or kept as an outcome), else a 404
/// saying it was looked for everywhere.
pub(crate) async fn search(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    StrictQuery(query): StrictQuery<SearchQuery>,
) -> AppResult<Redirect> {
    let raw = query.id.as_deref().unwrap_or("").trim();
    if raw.is_empty() {
        return Err(AppError::BadRequest(
            "type a job id in the search box".to_owned(),
        ));
    }
    let id = job_id(raw)?;
    let status = s.admin.client().status(&JobId::from(id)).await?;
    match status.queue {
        Some(queue) if status.status != Status::Unknown => {
            Ok(Redirect::to(&job_href(&ctx.base, &queue, id)))
        }
        _ => Err(AppError::NotFound(format!(
            "no job {} in any queue: it finished without keeping its outcome, was deleted, \
             or never existed",
            clip(id, FIELD_BYTES)
        ))),
    }
}

/// The Cancel form: `csrf` (read by the gate) and where to go back to
/// (`back=processes`; anything else means the job page).
#[derive(Debug, Deserialize)]
pub(crate) struct CancelForm {
    back: Option<String>,
}

/// POST `/jobs/{queue}/{id}/cancel`: `Client::cancel`, then back to the job
/// page (or the queue page when the job page would now be a 404, or the
/// Processes page) with what happened in the query for the notice.
pub(crate) async fn cancel(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((queue, id)): Path<(String, String)>,
    StrictForm(form): StrictForm<CancelForm>,
) -> AppResult<Redirect> {
    let queue = queue_name(&queue)?;
    let id = job_id(&id)?;
    let job = JobId::from(id);
    let client = s.admin.client();
    let answer = ctx.admin(&s.admin).cancel_in(queue, &job).await?;
    let (done, from, found_in) = match &answer {
        CancelResult::Cancelled { queue, from } => ("cancelled", Some(from.as_str()), Some(queue)),
        CancelResult::Signalled { queue, first, .. } => (
            if *first {
                "cancel_signalled"
            } else {
                "cancel_resignalled"
            },
            None,
            Some(queue),
        ),
        CancelResult::AlreadyFinished { queue, state } => {
            ("cancel_finished", Some(state.as_str()), Some(queue))
        }
        CancelResult::NotFound => ("cancel_not_found", None, None),
    };
    tracing::info!(
        queue,
        job_id = id,
        action = done,
        "job cancel from the dashboard"
    );
    let queue = found_in
        .map(String::as_str)
        .filter(|q| spool_client::validate_queue_name(q).is_ok())
        .unwrap_or(queue);
    let mut query = format!("done={done}");
    if let Some(f) = from {
        query.push_str("&from=");
        query.push_str(f);
    }
    let target = if form.back.as_deref() == Some("processes") {
        format!("{}/processes?{query}", ctx.base)
    } else if client
        .status_in(queue, &job)
        .await
        .is_ok_and(|st| st.status != Status::Unknown)
    {
        format!("{}?{query}", job_href(&ctx.base, queue, id))
    } else {
        // Cancelled without keeping its outcome, or never there: the job
        // page would be a 404.
        format!("{}/queues/{}?{query}", ctx.base, enc(queue))
    };
    Ok(Redirect::to(&target))
}

/// The stored record, exactly as in Redis, as JSON.
pub(crate) async fn raw(
    State(s): AppState,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let job = find(&s, &queue, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        job.raw,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::ARGS_PAGE_BYTES;

    #[test]
    fn small_args_are_pretty_printed_and_large_ones_cut() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(args_text(&deep), (deep.clone(), false));
        assert_eq!(
            args_text(r#"{"a":1}"#),
            ("{\n  \"a\": 1\n}".to_owned(), false)
        );
        let big = format!("\"{}\"", "é".repeat(ARGS_PAGE_BYTES));
        let (text, cut) = args_text(&big);
        assert!(cut);
        assert!(text.len() <= ARGS_PAGE_BYTES);
    }
}
