//! Scheduled, Retries and Dead: one page shape over the three job sets of a
//! queue (a tab per queue, with its count from ZCARD), filter by job type and
//! by a substring of args or error, and actions on one job, the selected
//! jobs, or every job matching the filter.
//!
//! Unfiltered pages are one ZRANGE + HMGET. A filtered page scans at most
//! `filter_window` entries from the front of the set and says so when it
//! stopped early; a filtered "all" action scans up to `action_window`.

use axum::extract::{Extension, Path, State};
use axum::response::{Redirect, Response};
use serde::Deserialize;
use spool_client::admin::{JobFilter, JobView};
use spool_client::JobSet;

use crate::error::{AppError, AppResult};
use crate::params::{enc, job_id, path_of, set_of, ListQuery, Paging, StrictForm, StrictQuery};
use crate::state::AppState;
use crate::state::{Ctx, Shared};
use crate::views::{render, JobRow, Layout, Pager, QueueTab, SetPage};

/// Most ids one "selected" action accepts.
const SELECTED_MAX: usize = 1000;

/// The set a path names; any other single-segment path is not found (this
/// route is `/{set}`, after every fixed route).
fn named_set(path: &str) -> AppResult<JobSet> {
    set_of(path).ok_or_else(|| AppError::NotFound("not found".to_owned()))
}

fn count(q: &spool_client::admin::QueueInfo, set: JobSet) -> u64 {
    match set {
        JobSet::Scheduled => q.scheduled,
        JobSet::Retry => q.retry,
        JobSet::Dead => q.dead,
    }
}

/// The link of a set page with its filter (and optionally page, notice).
fn set_href(base: &str, set: JobSet, queue: &str, filter: &JobFilter, extra: &str) -> String {
    let mut href = format!("{base}/{}?queue={}", path_of(set), enc(queue));
    for (name, value) in [("type", &filter.job_type), ("q", &filter.text)] {
        if let Some(v) = value {
            href.push('&');
            href.push_str(name);
            href.push('=');
            href.push_str(&enc(v));
        }
    }
    href.push_str(extra);
    href
}

/// One page of a set: (jobs matching, the page's jobs, a note when the
/// filter stopped scanning before the end of the set).
async fn listing(
    s: &Shared,
    queue: &str,
    set: JobSet,
    filter: &JobFilter,
    paging: Paging,
) -> AppResult<(u64, Vec<JobView>, Option<String>)> {
    if queue.is_empty() {
        return Ok((0, Vec::new(), None));
    }
    if filter.is_empty() {
        let p = s
            .admin
            .list_set(queue, set, paging.offset(), paging.per_page)
            .await?;
        return Ok((p.total, p.items, None));
    }
    let p = s
        .admin
        .scan_set(
            queue,
            set,
            filter,
            paging.offset(),
            paging.per_page,
            s.config.filter_window,
        )
        .await?;
    let note = p.truncated.then(|| {
        format!(
            "The filter looked at the first {} of {} jobs in this set and found {} matches; jobs further on are not searched by this page (actions on all matching jobs search up to {}).",
            p.scanned, p.total, p.matched, s.config.action_window
        )
    });
    Ok((p.matched, p.items, note))
}

/// GET `/{scheduled,retries,dead}`.
pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(set): Path<String>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> AppResult<Response> {
    let set = named_set(&set)?;
    let paging = query.paging()?;
    let filter = query.filter()?;
    let wanted = query.queue()?;
    let (mut queues, _skipped) = crate::state::queue_list(&s.admin).await?;
    if let Some(w) = &wanted {
        if !queues.iter().any(|q| &q.name == w) {
            queues.push(s.admin.queue(w).await?);
        }
    }
    let selected = wanted
        .or_else(|| {
            queues
                .iter()
                .find(|q| count(q, set) > 0)
                .map(|q| q.name.clone())
        })
        .or_else(|| queues.first().map(|q| q.name.clone()));
    let (heading, time_label, nav) = match set {
        JobSet::Scheduled => ("Scheduled", "Runs", "scheduled"),
        JobSet::Retry => ("Retries", "Next retry", "retries"),
        JobSet::Dead => ("Dead", "Died", "dead"),
    };
    let mut l = Layout::new(&ctx, heading, nav);
    l.notice = query.notice();
    let b = ctx.base.as_str();
    let tabs = queues
        .iter()
        .map(|q| QueueTab {
            name: q.name.clone(),
            count: count(q, set),
            href: set_href(b, set, &q.name, &JobFilter::default(), ""),
            active: selected.as_deref() == Some(q.name.as_str()),
        })
        .collect();
    let queue = selected.unwrap_or_default();
    let (total, views, scan_note) = listing(&s, &queue, set, &filter, paging).await?;
    let now = s.admin.client().redis_time_ms().await?;
    let jobs: Vec<JobRow> = views.iter().map(|j| JobRow::new(b, j, now)).collect();
    let per_page = paging.per_page;
    let pager = Pager::new(paging.page, per_page, total, jobs.len(), |p| {
        set_href(
            b,
            set,
            &queue,
            &filter,
            &format!("&page={p}&per_page={per_page}"),
        )
    });
    Ok(render(&SetPage {
        l,
        path: path_of(set),
        heading,
        time_label,
        is_scheduled: set == JobSet::Scheduled,
        tabs,
        filter_type: query.job_type.clone().unwrap_or_default(),
        filter_q: query.q.clone().unwrap_or_default(),
        filtered: !filter.is_empty(),
        queue,
        scan_note,
        matching: total,
        jobs,
        pager,
    }))
}

/// What an action does to the jobs it picks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Move to ready (retry now / run now); `requeue.lua`.
    Requeue {
        run: bool,
    },
    Delete,
}

/// Which jobs an action picks.
enum Pick {
    Ids(Vec<String>),
    AllMatching,
}

/// The action form: `queue`, `type`, `q` (the filter), and either a row
/// button (`retry_id`, `run_id`, `delete_id` = one id) or a bulk button
/// (`action` = `{retry,run,delete}_{selected,all}`, selected ids in `id`).
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    queue: Option<String>,
    #[serde(rename = "type")]
    job_type: Option<String>,
    q: Option<String>,
    #[serde(default)]
    id: Vec<String>,
    retry_id: Option<String>,
    run_id: Option<String>,
    delete_id: Option<String>,
    action: Option<String>,
}

impl ActionForm {
    /// What to do to which jobs: a row button wins over a bulk button.
    fn choice(self) -> AppResult<(Op, Pick)> {
        let row = [
            (self.retry_id, Op::Requeue { run: false }),
            (self.run_id, Op::Requeue { run: true }),
            (self.delete_id, Op::Delete),
        ]
        .into_iter()
        .find_map(|(id, op)| id.map(|id| (op, id)));
        if let Some((op, id)) = row {
            job_id(&id)?;
            return Ok((op, Pick::Ids(vec![id])));
        }
        let action = self
            .action
            .ok_or_else(|| AppError::BadRequest("no action given".to_owned()))?;
        let (op, all) = match action.as_str() {
            "retry_selected" => (Op::Requeue { run: false }, false),
            "run_selected" => (Op::Requeue { run: true }, false),
            "delete_selected" => (Op::Delete, false),
            "retry_all" => (Op::Requeue { run: false }, true),
            "run_all" => (Op::Requeue { run: true }, true),
            "delete_all" => (Op::Delete, true),
            _ => return Err(AppError::BadRequest("unknown action".to_owned())),
        };
        if all {
            return Ok((op, Pick::AllMatching));
        }
        if self.id.len() > SELECTED_MAX {
            return Err(AppError::BadRequest(format!(
                "at most {SELECTED_MAX} jobs per action"
            )));
        }
        for id in &self.id {
            job_id(id)?;
        }
        Ok((op, Pick::Ids(self.id)))
    }
}

/// POST `/{scheduled,retries,dead}/actions`.
pub(crate) async fn action(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(set): Path<String>,
    StrictForm(form): StrictForm<ActionForm>,
) -> AppResult<Redirect> {
    let set = named_set(&set)?;
    let queue = form
        .queue
        .clone()
        .ok_or_else(|| AppError::BadRequest("queue is required".to_owned()))?;
    spool_client::validate_queue_name(&queue)?;
    let filter = JobFilter::new(form.job_type.as_deref(), form.q.as_deref())?;
    let (op, pick) = form.choice()?;
    let admin = &ctx.admin(&s.admin);
    let n = match pick {
        Pick::Ids(ids) => {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            match op {
                Op::Requeue { .. } => admin.retry_jobs(&queue, set, &refs).await?,
                Op::Delete => admin.delete_jobs(&queue, set, &refs).await?,
            }
        }
        Pick::AllMatching if filter.is_empty() => match op {
            Op::Requeue { .. } => admin.retry_all(&queue, set).await?,
            Op::Delete => admin.delete_all(&queue, set).await?,
        },
        Pick::AllMatching => {
            let (ids, _) = admin
                .matching_ids(&queue, set, &filter, s.config.action_window)
                .await?;
            let refs: Vec<&str> = ids.iter().map(spool_client::JobId::as_str).collect();
            match op {
                Op::Requeue { .. } => admin.retry_jobs(&queue, set, &refs).await?,
                Op::Delete => admin.delete_jobs(&queue, set, &refs).await?,
            }
        }
    };
    let done = match op {
        Op::Requeue { run: true } => "run",
        Op::Requeue { run: false } => "retry",
        Op::Delete => "delete",
    };
    tracing::info!(
        queue,
        set = set.as_str(),
        action = done,
        jobs = n,
        "dashboard action"
    );
    Ok(Redirect::to(&set_href(
        &ctx.base,
        set,
        &queue,
        &filter,
        &format!("&done={done}&n={n}"),
    )))
}
