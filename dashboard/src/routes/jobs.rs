//! Job page: everything about one job, wherever it is (one pipelined read;
//! a ready job is found by walking the ready list in bounded chunks). Args
//! are pretty-printed (on the text, never through a recursive
//! `serde_json::Value`) up to `ARGS_PAGE_BYTES`; past that the page shows the
//! start and links to the raw JSON, so a 10 MiB job renders quickly. Every
//! other stored string is bounded too (errors link to the single-job JSON).

use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use spool_client::admin::JobView;

use crate::error::{AppError, AppResult};
use crate::params::{enc, job_id, queue_name};
use crate::state::{AppState, Ctx};
use crate::text::{clip, prefix, pretty_json, ARGS_PAGE_BYTES, ERROR_PAGE_BYTES, FIELD_BYTES};
use crate::views::{fmt_time, job_href, render, ErrorRow, JobPage, Layout};

pub(crate) async fn find(s: &crate::state::Shared, queue: &str, id: &str) -> AppResult<JobView> {
    let queue = queue_name(queue)?;
    let id = job_id(id)?;
    s.admin.job(queue, id).await?.ok_or_else(|| {
        AppError::NotFound(format!(
            "job {id} is not in queue {queue}: it finished, was deleted, or never existed"
        ))
    })
}

/// Pretty-printed args, or the first `ARGS_PAGE_BYTES` of them.
fn args_text(raw: &str) -> (String, bool) {
    if raw.len() <= ARGS_PAGE_BYTES {
        (pretty_json(raw), false)
    } else {
        (prefix(raw, ARGS_PAGE_BYTES).to_owned(), true)
    }
}

/// The job page's field list: times, timeout, idempotency key, trace, each
/// stored string bounded.
fn fields(job: &JobView) -> Vec<(&'static str, String)> {
    let rec = job.record.as_ref();
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    if let Some(at) = job.at_ms {
        let label = match job.state {
            spool_client::JobState::Scheduled => "Runs at",
            spool_client::JobState::Retry => "Next retry at",
            spool_client::JobState::Dead => "Died at",
            spool_client::JobState::Active => "Lease deadline",
            spool_client::JobState::Ready => "At",
        };
        fields.push((label, fmt_time(at)));
    }
    if let Some(r) = rec {
        fields.push(("Ready since", fmt_time(r.enqueued_ms)));
        fields.push(("Created", fmt_time(r.created_ms)));
        if let Some(t) = r.timeout_ms {
            fields.push(("Timeout", format!("{t} ms")));
        }
        fields.push((
            "Idempotency key",
            r.idempotency_key
                .as_deref()
                .map_or_else(|| "-".to_owned(), |k| clip(k, FIELD_BYTES)),
        ));
        if let Some(trace) = &r.trace {
            let t: Vec<String> = trace.iter().map(|(k, v)| format!("{k}={v}")).collect();
            fields.push(("Trace", clip(&t.join(", "), FIELD_BYTES)));
        }
    } else {
        let why = job.problem.as_deref().unwrap_or("not a Spool record");
        fields.push(("Record", format!("{} (shown raw)", clip(why, FIELD_BYTES))));
    }
    fields
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let job = find(&s, &queue, &id).await?;
    let raw_args = job.args_text();
    let (args, args_truncated) = args_text(raw_args);
    let fields = fields(&job);
    let href = job_href(&ctx.base, &job.queue, job.id.as_str());
    let id = clip(job.id.as_str(), FIELD_BYTES);
    let page = JobPage {
        l: Layout::new(&ctx, format!("Job {id}"), ""),
        id,
        queue: clip(&job.queue, FIELD_BYTES),
        queue_href: format!("{}/queues/{}", ctx.base, enc(&job.queue)),
        state: job.state.to_string(),
        set_path: JobPage::set_path_for(job.state),
        is_scheduled: job.state == spool_client::JobState::Scheduled,
        job_type: clip(job.job_type(), FIELD_BYTES),
        args,
        args_truncated,
        args_bytes: raw_args.len(),
        raw_href: format!("{href}/raw"),
        api_href: format!(
            "{}/api/jobs/{}/{}",
            ctx.base,
            enc(&job.queue),
            enc(job.id.as_str())
        ),
        attempts: job
            .attempts()
            .map_or_else(|| "-".to_owned(), |(a, m)| format!("{a} of {m}")),
        fields,
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
    };
    Ok(render(&page))
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
