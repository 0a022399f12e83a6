//! One askama struct per page, and the row types they show. Handlers turn
//! admin data into these (times formatted, every stored string bounded with
//! `text::clip`, links built with the base path); templates only print
//! fields, escaped by askama. Nothing here is ever marked `|safe`.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use spool_client::admin::JobView;

use crate::charts::Chart;
use crate::error::{AppError, ErrorNote};
use crate::params::job_path;
use crate::state::Ctx;
use crate::text::{clip, clip_line, ARGS_PREVIEW_BYTES, ERROR_PREVIEW_BYTES, FIELD_BYTES};

mod job;
pub(crate) use job::*;

/// Renders a template into a response (a 500, logged, if a template fails).
pub(crate) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::Internal(Box::new(e)).into_response(),
    }
}

/// A page saying what went wrong, with a way back.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) l: Layout,
    pub(crate) status: u16,
    pub(crate) message: String,
    /// Redis is down: offer "try again".
    pub(crate) retry: bool,
}

/// `resp` (an error response in plain text) as a styled page: same status
/// and headers (a 401 keeps its challenge), the message escaped.
pub(crate) fn error_page(
    resp: Response,
    base: &str,
    read_only: bool,
    note: &ErrorNote,
) -> Response {
    let (mut parts, _) = resp.into_parts();
    let ctx = Ctx {
        base: base.to_owned(),
        csrf: String::new(),
        read_only,
        actor: String::new(),
    };
    let page = ErrorPage {
        l: Layout::new(&ctx, note.title, ""),
        status: parts.status.as_u16(),
        message: note.message.clone(),
        retry: parts.status == axum::http::StatusCode::SERVICE_UNAVAILABLE,
    };
    let Ok(html) = page.render() else {
        return Response::from_parts(parts, axum::body::Body::from(note.message.clone()));
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, axum::body::Body::from(html))
}

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) base: String,
    /// Link of the overview ("/" at the root, the prefix when nested).
    pub(crate) home: String,
    pub(crate) csrf: String,
    pub(crate) read_only: bool,
    pub(crate) title: String,
    pub(crate) nav: &'static str,
    pub(crate) notice: Option<String>,
    /// Seconds between auto-refreshes of the `#live` part (0: none).
    pub(crate) refresh: u32,
}

impl Layout {
    pub(crate) fn new(ctx: &Ctx, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            home: if ctx.base.is_empty() {
                "/".to_owned()
            } else {
                ctx.base.clone()
            },
            base: ctx.base.clone(),
            csrf: ctx.csrf.clone(),
            read_only: ctx.read_only,
            title: title.into(),
            nav,
            notice: None,
            refresh: 0,
        }
    }
}

/// `2025-01-02 03:04:05 UTC`.
pub(crate) fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `2025-01-02T03:04:05.123Z`, for a `<time datetime>` that the page's
/// script shows in the viewer's zone (the UTC text stays on hover).
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    })
}

/// `2025-01-02 03:04:05.123 UTC`: timelines need the milliseconds (the
/// steps of a run are often a few ms apart).
pub(crate) fn fmt_time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
    )
}

/// `in 5m` / `3h ago`, relative to Redis's `now`.
pub(crate) fn fmt_rel(ms: i64, now: i64) -> String {
    let d = (ms - now).abs() / 1000;
    let amount = match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m", d / 60),
        3600..=86_399 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86_400),
    };
    if ms > now {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// Milliseconds as a duration people read at a glance: `850 ms`, `12.3 s`,
/// `30 min`, `2 min 5 s`, `2 h 5 min`, `3 d 4 h` (two units at most).
pub(crate) fn fmt_ms(ms: u64) -> String {
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    let s = ms / 1000;
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0).replace(".0 s", " s"),
        60_000..=3_599_999 => two(s / 60, "min", s % 60, "s"),
        3_600_000..=86_399_999 => two(s / 3600, "h", s % 3600 / 60, "min"),
        _ => two(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}

/// The action of a job's Cancel form; `None` for a queue or id that no job
/// path accepts.
pub(crate) fn cancel_href(base: &str, queue: &str, id: &str) -> Option<String> {
    job_path(queue, id).map(|p| format!("{base}{p}/cancel"))
}

/// The link of a job page; `#` for a queue or id that no job page accepts
/// (a stored id of 10 MiB would otherwise make a 10 MiB link).
pub(crate) fn job_href(base: &str, queue: &str, id: &str) -> String {
    job_path(queue, id).map_or_else(|| "#".to_owned(), |p| format!("{base}{p}"))
}

/// One job in a list.
#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) href: String,
    pub(crate) job_type: String,
    pub(crate) args: String,
    pub(crate) error: String,
    pub(crate) attempts: String,
    pub(crate) at: String,
    /// `at` for `<time datetime>` (empty: no time).
    pub(crate) at_iso: String,
    pub(crate) at_rel: String,
    pub(crate) enqueued: String,
    pub(crate) enqueued_iso: String,
    pub(crate) enqueued_at: String,
}

impl JobRow {
    pub(crate) fn new(base: &str, j: &JobView, now: i64) -> Self {
        Self {
            id: clip(j.id.as_str(), FIELD_BYTES),
            queue: clip(&j.queue, FIELD_BYTES),
            href: job_href(base, &j.queue, j.id.as_str()),
            job_type: clip(j.job_type(), FIELD_BYTES),
            args: clip_line(j.args_text(), ARGS_PREVIEW_BYTES),
            error: j
                .last_error()
                .map(|e| clip_line(&e.error, ERROR_PREVIEW_BYTES))
                .unwrap_or_default(),
            attempts: j
                .attempts()
                .map_or_else(|| "-".to_owned(), |(a, m)| format!("{a}/{m}")),
            at: j.at_ms.map(fmt_time).unwrap_or_default(),
            at_iso: j.at_ms.map(iso).unwrap_or_default(),
            at_rel: j.at_ms.map(|t| fmt_rel(t, now)).unwrap_or_default(),
            enqueued: j.enqueued_ms().map(|t| fmt_rel(t, now)).unwrap_or_default(),
            enqueued_iso: j.enqueued_ms().map(iso).unwrap_or_default(),
            enqueued_at: j.enqueued_ms().map(fmt_time).unwrap_or_default(),
        }
    }
}

/// Previous/next links of a listing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pager {
    pub(crate) page: u64,
    pub(crate) pages: u64,
    pub(crate) prev: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) summary: String,
}

impl Pager {
    /// `link(page)` builds the URL of another page.
    pub(crate) fn new(
        page: u64,
        per_page: usize,
        total: u64,
        shown: usize,
        link: impl Fn(u64) -> String,
    ) -> Self {
        let pages = total.div_ceil(per_page as u64).max(1);
        let first = (page - 1) * per_page as u64;
        let summary = if shown == 0 {
            format!("0 of {total}")
        } else {
            format!("{}–{} of {total}", first + 1, first + shown as u64)
        };
        Self {
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            summary,
        }
    }
}

/// One queue in the overview table.
#[derive(Debug, Clone)]
pub(crate) struct QueueRow {
    pub(crate) name: String,
    pub(crate) href: String,
    /// The queue's Scheduled, Retries and Dead pages.
    pub(crate) scheduled_href: String,
    pub(crate) retries_href: String,
    pub(crate) dead_href: String,
    pub(crate) ready: u64,
    pub(crate) active: u64,
    pub(crate) scheduled: u64,
    pub(crate) retry: u64,
    pub(crate) dead: u64,
    pub(crate) latency: String,
    pub(crate) paused: bool,
    pub(crate) processed_1h: u64,
    pub(crate) failed_1h: u64,
    /// The global concurrency limit (empty: none).
    pub(crate) limit: String,
    /// As many jobs leased as the limit allows: ready jobs wait.
    pub(crate) at_limit: bool,
    /// The rate limit as typed (`100/1s`; empty: none).
    pub(crate) rate: String,
    /// The per-key rate limit as typed (empty: none).
    pub(crate) key_rate: String,
    /// Ordered groups: settings as typed (empty: no grouped job yet) and
    /// how many groups have jobs waiting for their turn.
    pub(crate) groups: String,
    pub(crate) groups_waiting: u64,
    /// The circuit breaker as typed (`50/100/30s/3`; empty: none), as
    /// read, and its state (`closed`, `open, 12s left`, …).
    pub(crate) breaker: String,
    pub(crate) breaker_text: String,
    pub(crate) breaker_state: String,
    /// The breaker is open or half-open (an operator may reset it).
    pub(crate) breaker_tripped: bool,
    /// Why ready jobs are not fetched now (empty: they are, or none is ready).
    pub(crate) throttled: String,
}

/// A number on the overview with its label and link.
#[derive(Debug, Clone)]
pub(crate) struct Total {
    pub(crate) label: &'static str,
    pub(crate) value: u64,
    pub(crate) href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub(crate) struct OverviewPage {
    pub(crate) l: Layout,
    /// Registry members that are not valid queue names (bounded), skipped.
    pub(crate) skipped: Vec<String>,
    pub(crate) totals: Vec<Total>,
    pub(crate) queues: Vec<QueueRow>,
    pub(crate) hour: Chart,
    pub(crate) day: Chart,
}

#[derive(Template)]
#[template(path = "queues.html")]
pub(crate) struct QueuesPage {
    pub(crate) l: Layout,
    /// Registry members that are not valid queue names (bounded), skipped.
    pub(crate) skipped: Vec<String>,
    pub(crate) queues: Vec<QueueRow>,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub(crate) struct QueuePage {
    pub(crate) l: Layout,
    pub(crate) q: QueueRow,
    pub(crate) jobs: Vec<JobRow>,
    pub(crate) pager: Pager,
}

/// A queue tab on a set page.
#[derive(Debug, Clone)]
pub(crate) struct QueueTab {
    pub(crate) name: String,
    pub(crate) count: u64,
    pub(crate) href: String,
    pub(crate) active: bool,
}

#[derive(Template)]
#[template(path = "set.html")]
pub(crate) struct SetPage {
    pub(crate) l: Layout,
    /// "scheduled", "retries" or "dead" (the path).
    pub(crate) path: &'static str,
    pub(crate) heading: &'static str,
    pub(crate) time_label: &'static str,
    pub(crate) is_scheduled: bool,
    /// No queue is registered yet.
    pub(crate) no_queues: bool,
    /// "All queues" first, then one tab per queue.
    pub(crate) tabs: Vec<QueueTab>,
    /// The queue shown; empty for every queue.
    pub(crate) queue: String,
    pub(crate) filter_type: String,
    pub(crate) filter_q: String,
    pub(crate) filtered: bool,
    /// The same page without the filter.
    pub(crate) clear_href: String,
    pub(crate) scan_note: Option<String>,
    pub(crate) matching: u64,
    pub(crate) jobs: Vec<JobRow>,
    pub(crate) pager: Pager,
}

impl SetPage {
    pub(crate) fn action_href(&self) -> String {
        format!("{}/{}/actions", self.l.base, self.path)
    }

    /// What a row's checkbox and buttons post: the id, or `queue:id` on
    /// the every-queue page.
    pub(crate) fn key(&self, j: &JobRow) -> String {
        if self.queue.is_empty() {
            format!("{}:{}", j.queue, j.id)
        } else {
            j.id.clone()
        }
    }
}

/// One entry of a job's error history.
/// A job a process is running.
#[derive(Debug, Clone)]
pub(crate) struct BusyRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) queue: String,
    pub(crate) job_type: String,
    pub(crate) started: String,
    /// The Cancel form's action; `None` for an id no job path accepts.
    pub(crate) cancel_href: Option<String>,
}

/// One live worker process.
#[derive(Debug, Clone)]
pub(crate) struct ProcessRow {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) queues: String,
    pub(crate) concurrency: usize,
    pub(crate) busy: Vec<BusyRow>,
    pub(crate) started: String,
    pub(crate) beat: String,
    pub(crate) version: String,
    /// Base of its action URLs (`…/processes/{id}`).
    pub(crate) href: String,
    /// The operator's signal: `quiet`, `stop` or empty.
    pub(crate) signal: &'static str,
}

/// One event on the Events page.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub(crate) at: String,
    pub(crate) queue: String,
    pub(crate) kind: String,
    /// CSS class of the kind's badge.
    pub(crate) class: &'static str,
    pub(crate) job: String,
    pub(crate) job_href: Option<String>,
    pub(crate) job_type: String,
    pub(crate) attempt: String,
    pub(crate) actor: String,
    pub(crate) selection: String,
    pub(crate) error: String,
}

#[derive(Template)]
#[template(path = "events.html")]
pub(crate) struct EventsPage {
    pub(crate) l: Layout,
    pub(crate) events: Vec<EventRow>,
    /// The filter as given.
    pub(crate) queue: String,
    pub(crate) kind: String,
    pub(crate) filtered: bool,
}

/// One batch in the Batches list (and the head of its page).
#[derive(Debug, Clone)]
pub(crate) struct BatchRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) kind: &'static str,
    pub(crate) description: String,
    pub(crate) created: String,
    pub(crate) total: u64,
    pub(crate) done: u64,
    pub(crate) dead: u64,
    pub(crate) cancelled: u64,
    pub(crate) pending: u64,
    /// Members ended, 0 to 100.
    pub(crate) percent: u64,
    /// running, finished, stopped at …, unsealed.
    pub(crate) state: String,
}

#[derive(Template)]
#[template(path = "batches.html")]
pub(crate) struct BatchesPage {
    pub(crate) l: Layout,
    pub(crate) batches: Vec<BatchRow>,
}

/// A callback of a batch; `href` once it was created.
#[derive(Debug, Clone)]
pub(crate) struct CallbackRow {
    pub(crate) on: &'static str,
    pub(crate) job_type: String,
    pub(crate) queue: String,
    pub(crate) id: String,
    pub(crate) href: Option<String>,
}

/// A member of a batch (or link of a chain).
#[derive(Debug, Clone)]
pub(crate) struct MemberRow {
    pub(crate) id: String,
    pub(crate) href: String,
    pub(crate) queue: String,
    pub(crate) state: &'static str,
    pub(crate) class: &'static str,
    pub(crate) ended: String,
}

#[derive(Template)]
#[template(path = "batch.html")]
pub(crate) struct BatchPage {
    pub(crate) l: Layout,
    pub(crate) batch: BatchRow,
    pub(crate) sealed: bool,
    /// When every member had ended (empty: not yet).
    pub(crate) finished: String,
    /// The first member that died, and the link to the dead members.
    pub(crate) first_dead: Option<(String, String)>,
    pub(crate) callbacks: Vec<CallbackRow>,
    pub(crate) members: Vec<MemberRow>,
    /// The member state shown ("" for all).
    pub(crate) filter: &'static str,
    /// Each member state and the link showing only it.
    pub(crate) filters: Vec<(&'static str, String)>,
    pub(crate) all_href: String,
    pub(crate) api_href: String,
    pub(crate) pager: Pager,
}

#[derive(Template)]
#[template(path = "processes.html")]
pub(crate) struct ProcessesPage {
    pub(crate) l: Layout,
    pub(crate) procs: Vec<ProcessRow>,
    pub(crate) busy_total: usize,
}

/// One cron entry.
#[derive(Debug, Clone)]
pub(crate) struct CronRow {
    pub(crate) name: String,
    pub(crate) name_enc: String,
    pub(crate) schedule: String,
    pub(crate) timezone: String,
    pub(crate) queue: String,
    pub(crate) job_type: String,
    pub(crate) args: String,
    pub(crate) paused: bool,
    pub(crate) next_run: String,
    pub(crate) last_run: String,
    pub(crate) last_job: Option<LastJob>,
}

/// The job a cron entry enqueued last: its page (none once it finished
/// without keeping its outcome) and where it is now.
#[derive(Debug, Clone)]
pub(crate) struct LastJob {
    pub(crate) id: String,
    pub(crate) href: Option<String>,
    pub(crate) state: String,
}

#[derive(Template)]
#[template(path = "cron.html")]
pub(crate) struct CronPage {
    pub(crate) l: Layout,
    pub(crate) entries: Vec<CronRow>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::ARGS_PAGE_BYTES;
    use spool_client::HistoryEntry;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(fmt_rel(61_000, 0), "in 1m");
        assert_eq!(fmt_rel(0, 7_200_000), "2h ago");
        assert_eq!(fmt_ms(1500), "1.5 s");
        assert_eq!(fmt_ms(850), "850 ms");
        assert_eq!(fmt_ms(30_000), "30 s");
        assert_eq!(fmt_ms(1_800_000), "30 min");
        assert_eq!(fmt_ms(125_000), "2 min 5 s");
        assert_eq!(fmt_ms(7_500_000), "2 h 5 min");
        assert_eq!(fmt_ms(90_000_000), "1 d 1 h");
    }

    #[test]
    fn timelines_show_milliseconds_and_steps() {
        let h = |at_ms, state: &str| HistoryEntry {
            at_ms,
            state: state.to_owned(),
            attempt: 1,
            worker: None,
            error: Some("a\nb".to_owned()),
        };
        let rows = TimelineRow::all(&[h(1_000, "ready"), h(1_250, "<b>x")]);
        assert_eq!(rows[0].at, "1970-01-01 00:00:01.000 UTC");
        assert_eq!(
            (rows[0].after.as_str(), rows[1].after.as_str()),
            ("", "+250 ms")
        );
        assert_eq!((rows[0].class, rows[1].class), ("ready", "other"));
        assert_eq!(rows[1].error, "a b");
        let big = JsonText::new(&format!("\"{}\"", "x".repeat(ARGS_PAGE_BYTES)));
        assert!(big.truncated && big.text.len() == ARGS_PAGE_BYTES);
        assert_eq!(JsonText::new("[1,2]").text, "[\n  1,\n  2\n]");
    }

    #[test]
    fn pager_links_only_existing_pages() {
        let p = Pager::new(1, 10, 25, 10, |n| format!("?page={n}"));
        assert_eq!(
            (p.pages, p.prev.as_deref(), p.next.as_deref()),
            (3, None, Some("?page=2"))
        );
        assert_eq!(p.summary, "1–10 of 25");
        let empty = Pager::new(1, 10, 0, 0, |n| n.to_string());
        assert_eq!((empty.pages, empty.next), (1, None));
    }
}
