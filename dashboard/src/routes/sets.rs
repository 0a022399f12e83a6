//! Scheduled, Retries and Dead: one page shape over the three job sets,
//! every queue's merged by time (the default, `Admin::list_set_across`) or
//! one queue's (a tab per queue, with its count from ZCARD); filter by job
//! type and by a substring of args or error, and actions on one job, the
//! selected jobs, or every job matching the filter.
//!
//! Unfiltered pages are one ZRANGE + HMGET per queue. A filtered page scans
//! at most `filter_window` entries from the front of each set and says so
//! when it stopped early; a filtered "all" action scans up to
//! `action_window` per queue.

use std::collections::BTreeMap;

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

/// The link of a set page with its filter (and optionally page, notice);
/// an empty `queue` is every queue.
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

/// One page of a set, of one queue or (`queue` empty) of `all` queues
/// merged: (jobs matching, the page's jobs, a note when the filter stopped
/// scanning before the end of the set).
async fn listing(
    s: &Shared,
    queue: &str,
    all: &[&str],
    set: JobSet,
    filter: &JobFilter,
    paging: Paging,
) -> AppResult<(u64, Vec<JobView>, Option<String>)> {
    let (offset, per_page, window) = (paging.offset(), paging.per_page, s.config.filter_window);
    if queue.is_empty() && all.is_empty() {
        return Ok((0, Vec::new(), None));
    }
    if filter.is_empty() {
        let p = if queue.is_empty() {
            s.admin.list_set_across(all, set, offset, per_page).await?
        } else {
            s.admin.list_set(queue, set, offset, per_page).await?
        };
        return Ok((p.total, p.items, None));
    }
    let p = if queue.is_empty() {
        s.admin
            .scan_set_across(all, set, filter, offset, per_page, window)
            .await?
    } else {
        s.admin
            .scan_set(queue, set, filter, offset, per_page, window)
            .await?
    };
    let note = p.truncated.then(|| {
        format!(
            "The filter looked at the first {} of {} jobs{} and found {} matches; jobs further on are not searched by this page (actions on all matching jobs search up to {}).",
            p.scanned,
            p.total,
            if queue.is_empty() { " of each queue" } else { " in this set" },
            p.matched,
            s.config.action_window
        )
    });
    Ok((p.matched, p.items, note))
}

/// GET `/{scheduled,retries,dead}`: every queue's jobs merged (the default),
/// or one queue's (`?queue=`).
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
    let (heading, time_label, nav) = match set {
        JobSet::Scheduled => ("Scheduled", "Runs", "scheduled"),
        JobSet::Retry => ("Retries", "Next retry", "retries"),
        JobSet::Dead => ("Dead", "Died", "dead"),
    };
    let mut l = Layout::new(&ctx, heading, nav);
    l.notice = query.notice();
    let b = ctx.base.as_str();
    let queue = wanted.unwrap_or_default();
    let mut tabs = vec![QueueTab {
        name: "All queues".to_owned(),
        count: queues.iter().map(|q| count(q, set)).sum(),
        href: set_href(b, set, "", &filter, ""),
        active: queue.is_empty(),
    }];
    tabs.extend(queues.iter().map(|q| QueueTab {
        name: q.name.clone(),
        count: count(q, set),
        href: set_href(b, set, &q.name, &filter, ""),
        active: queue == q.name,
    }));
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let (total, views, scan_note) = listing(&s, &queue, &names, set, &filter, paging).await?;
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
        no_queues: queues.is_empty(),
        tabs,
        filter_type: query.job_type.clone().unwrap_or_default(),
        filter_q: query.q.clone().unwrap_or_default(),
        filtered: !filter.is_empty(),
        clear_href: set_href(b, set, &queue, &JobFilter::default(), ""),
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

/// The action form: `queue` (empty on the every-queue page), `type`, `q`
/// (the filter), and either a row button (`retry_id`, `run_id`,
/// `delete_id` = one id) or a bulk button (`action` =
/// `{retry,run,delete}_{selected,all}`, selected ids in `id`).
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
        Ok((op, Pick::Ids(self.id)))
    }
}

/// The ids of a form, per queue: with a `queue` they are plain ids of it;
/// on the every-queue page each is `queue:id` (a queue name has no `:`).
fn by_queue(queue: Option<&str>, ids: Vec<String>) -> AppResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in ids {
        let (q, id) = if let Some(q) = queue {
            (q.to_owned(), id)
        } else {
            let (q, id) = id.split_once(':').ok_or_else(|| {
                AppError::BadRequest("a job of the every-queue page is queue:id".to_owned())
            })?;
            spool_client::validate_queue_name(q)?;
            (q.to_owned(), id.to_owned())
        };
        job_id(&id)?;
        out.entry(q).or_default().push(id);
    }
    Ok(out)
}

/// Applies `op` to the jobs `pick` names in `queue`'s `set`; how many moved.
async fn apply(
    s: &Shared,
    admin: &spool_client::Admin,
    queue: &str,
    set: JobSet,
    op: Op,
    pick: Option<&[String]>,
    filter: &JobFilter,
) -> AppResult<u64> {
    let matching;
    let ids: &[String] = match pick {
        Some(ids) => ids,
        None if filter.is_empty() => {
            return Ok(match op {
                Op::Requeue { .. } => admin.retry_all(queue, set).await?,
                Op::Delete => admin.delete_all(queue, set).await?,
            })
        }
        None => {
            let (ids, _) = admin
                .matching_ids(queue, set, filter, s.config.action_window)
                .await?;
            matching = ids
                .iter()
                .map(|j| j.as_str().to_owned())
                .collect::<Vec<_>>();
            &matching
        }
    };
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok(match op {
        Op::Requeue { .. } => admin.retry_jobs(queue, set, &refs).await?,
        Op::Delete => admin.delete_jobs(queue, set, &refs).await?,
    })
}

/// POST `/{scheduled,retries,dead}/actions`: on one queue (`queue`), or on
/// the every-queue page (no `queue`: ids are `queue:id`, "all matching"
/// covers every queue).
pub(crate) async fn action(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
    Path(set): Path<String>,
    StrictForm(form): StrictForm<ActionForm>,
) -> AppResult<Redirect> {
    let set = named_set(&set)?;
    let queue = form.queue.clone().filter(|q| !q.is_empty());
    if let Some(q) = &queue {
        spool_client::validate_queue_name(q)?;
    }
    let filter = JobFilter::new(form.job_type.as_deref(), form.q.as_deref())?;
    let (op, pick) = form.choice()?;
    let admin = &ctx.admin(&s.admin);
    let mut n = 0;
    match pick {
        Pick::Ids(ids) => {
            for (q, ids) in by_queue(queue.as_deref(), ids)? {
                n += apply(&s, admin, &q, set, op, Some(&ids), &filter).await?;
            }
        }
        Pick::AllMatching => {
            let queues = match &queue {
                Some(q) => vec![q.clone()],
                None => s.admin.queue_names().await?,
            };
            for q in &queues {
                n += apply(&s, admin, q, set, op, None, &filter).await?;
            }
        }
    }
    let done = match op {
        Op::Requeue { run: true } => "run",
        Op::Requeue { run: false } => "retry",
        Op::Delete => "delete",
    };
    let queue = queue.unwrap_or_default();
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
