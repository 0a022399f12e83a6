//! Job page: everything about one job, wherever it is (one pipelined read;
//! a ready job is found by walking the ready list in bounded chunks). Args
//! are pretty-printed up to `ARGS_PAGE_BYTES`; past that the page shows the
//! start and links to the raw JSON, so a 10 MiB job renders quickly.

use axum::extract::{Extension, Path};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use spool_client::admin::JobView;

use super::{AppState, State};
use crate::error::{AppError, AppResult};
use crate::params::{enc, job_id, queue_name};
use crate::security::Ctx;
use crate::views::{fmt_time, job_href, render, ErrorRow, JobPage, Layout, ARGS_PAGE_BYTES};

pub(crate) async fn find(s: &super::Shared, queue: &str, id: &str) -> AppResult<JobView> {
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
        let pretty = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok());
        return (pretty.unwrap_or_else(|| raw.to_owned()), false);
    }
    let mut cut = ARGS_PAGE_BYTES;
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    (raw[..cut].to_owned(), true)
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path((queue, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let job = find(&s, &queue, &id).await?;
    let rec = job.record.as_ref();
    let raw_args = job.args_text();
    let (args, args_truncated) = args_text(raw_args);
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
            r.idempotency_key.clone().unwrap_or_else(|| "-".to_owned()),
        ));
        if let Some(trace) = &r.trace {
            let t: Vec<String> = trace.iter().map(|(k, v)| format!("{k}={v}")).collect();
            fields.push(("Trace", t.join(", ")));
        }
    } else {
        fields.push(("Record", "not a Spool record (shown raw)".to_owned()));
    }
    let href = job_href(&ctx.base, &job.queue, job.id.as_str());
    let page = JobPage {
        l: Layout::new(&ctx, format!("Job {}", job.id), ""),
        id: job.id.to_string(),
        queue: job.queue.clone(),
        queue_href: format!("{}/queues/{}", ctx.base, enc(&job.queue)),
        state: job.state.to_string(),
        set_path: JobPage::set_path_for(job.state),
        is_scheduled: job.state == spool_client::JobState::Scheduled,
        job_type: job.job_type().to_owned(),
        args,
        args_truncated,
        args_bytes: raw_args.len(),
        raw_href: format!("{href}/raw"),
        attempts: rec.map_or_else(
            || "-".to_owned(),
            |r| format!("{} of {}", r.attempt, r.max_attempts),
        ),
        fields,
        errors: job
            .errors
            .iter()
            .rev()
            .map(|e| ErrorRow {
                attempt: e.attempt,
                at: fmt_time(e.at_ms),
                error: e.error.clone(),
            })
            .collect(),
        lease: job.lease.as_ref().map(|l| {
            (
                l.worker.clone(),
                l.token.clone(),
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
