//! Overview: totals, the queues table and the processed/failed history
//! charts. Reads: one pipeline for all queue counts, one for all stats hashes
//! and the process list; never a scan.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::response::Response;
use spool_client::admin::{BreakerState, MinuteStats, QueueInfo, QueueStats, STATS_MINUTES_MAX};
use spool_client::Admin;

use crate::charts::chart;
use crate::error::AppResult;
use crate::params::enc;
use crate::state::{AppState, Ctx};
use crate::text::{clip, FIELD_BYTES};
use crate::views::{fmt_ms, render, Layout, OverviewPage, QueueRow, Total};

/// Everything the overview, `/api/stats` and `/api/queues` show.
pub(crate) struct Snapshot {
    pub(crate) queues: Vec<QueueInfo>,
    pub(crate) stats: HashMap<String, QueueStats>,
    /// Per-minute sums over all queues, last 24 hours, oldest first.
    pub(crate) minutes: Vec<MinuteStats>,
    pub(crate) processes: usize,
    /// Registry members skipped as invalid queue names.
    pub(crate) skipped: Vec<String>,
}

impl Snapshot {
    pub(crate) async fn read(admin: &Admin, minutes: usize) -> AppResult<Self> {
        let (queues, skipped) = crate::state::queue_list(admin).await?;
        let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
        let per_queue = admin.stats_of(&names, minutes).await?;
        let mut sum = QueueStats::sum(&per_queue).minutes;
        if sum.is_empty() {
            sum = admin.total_stats(minutes).await?.minutes;
        }
        let stats: HashMap<String, QueueStats> = names
            .iter()
            .map(|n| (*n).to_owned())
            .zip(per_queue)
            .collect();
        let processes = admin.processes().await?.len();
        Ok(Self {
            queues,
            stats,
            minutes: sum,
            processes,
            skipped,
        })
    }

    /// The skipped registry members, each bounded, at most 20.
    pub(crate) fn skipped_bounded(&self) -> Vec<String> {
        self.skipped
            .iter()
            .take(20)
            .map(|n| clip(n, FIELD_BYTES))
            .collect()
    }

    pub(crate) fn last_hour(&self, queue: &str) -> (u64, u64) {
        self.stats.get(queue).map_or((0, 0), |s| s.last_minutes(60))
    }

    pub(crate) fn processed(&self) -> u64 {
        self.stats.values().map(|s| s.processed).sum()
    }

    pub(crate) fn failed(&self) -> u64 {
        self.stats.values().map(|s| s.failed).sum()
    }

    pub(crate) fn sum(&self, f: impl Fn(&QueueInfo) -> u64) -> u64 {
        self.queues.iter().map(f).sum()
    }
}

pub(crate) fn queue_row(base: &str, q: &QueueInfo, last_hour: (u64, u64)) -> QueueRow {
    let name = enc(&q.name);
    QueueRow {
        name: q.name.clone(),
        href: format!("{base}/queues/{name}"),
        scheduled_href: format!("{base}/scheduled?queue={name}"),
        retries_href: format!("{base}/retries?queue={name}"),
        dead_href: format!("{base}/dead?queue={name}"),
        ready: q.ready,
        active: q.active,
        scheduled: q.scheduled,
        retry: q.retry,
        dead: q.dead,
        latency: fmt_ms(u64::try_from(q.latency.as_millis()).unwrap_or(u64::MAX)),
        paused: q.paused,
        processed_1h: last_hour.0,
        failed_1h: last_hour.1,
        limit: q
            .controls
            .concurrency_limit
            .map_or_else(String::new, |l| l.to_string()),
        at_limit: q.at_limit(),
        rate: q
            .controls
            .rate_limit
            .map_or_else(String::new, |r| r.to_string()),
        key_rate: q
            .controls
            .key_rate_limit
            .map_or_else(String::new, |r| r.to_string()),
        groups: q
            .controls
            .groups
            .map_or_else(String::new, |g| g.to_string()),
        groups_waiting: q.groups_waiting,
        breaker: q
            .controls
            .breaker
            .map_or_else(String::new, |(b, _)| b.typed()),
        breaker_text: q
            .controls
            .breaker
            .map_or_else(String::new, |(b, _)| b.to_string()),
        breaker_state: q
            .controls
            .breaker
            .map_or_else(String::new, |(_, st)| breaker_state(st)),
        breaker_tripped: q.controls.breaker_tripped(),
        throttled: q.throttled().unwrap_or("").to_owned(),
    }
}

/// A breaker's state as the pages show it.
fn breaker_state(state: BreakerState) -> String {
    match state {
        BreakerState::Closed { failures } => format!("closed ({failures} failed in the window)"),
        BreakerState::Open { remaining } => format!(
            "open, probing in {}",
            fmt_ms(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX))
        ),
        BreakerState::HalfOpen {
            probes_started,
            probes_succeeded,
        } => format!("half-open: {probes_started} probes started, {probes_succeeded} succeeded"),
    }
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
) -> AppResult<Response> {
    let shared: &Arc<_> = &s;
    let snap = Snapshot::read(&shared.admin, STATS_MINUTES_MAX).await?;
    let b = &ctx.base;
    let totals = [
        ("Processed", snap.processed(), "/queues"),
        ("Failed", snap.failed(), "/retries"),
        ("Ready", snap.sum(|q| q.ready), "/queues"),
        ("Busy", snap.sum(|q| q.active), "/processes"),
        ("Scheduled", snap.sum(|q| q.scheduled), "/scheduled"),
        ("Retries", snap.sum(|q| q.retry), "/retries"),
        ("Dead", snap.sum(|q| q.dead), "/dead"),
        ("Processes", snap.processes as u64, "/processes"),
    ]
    .into_iter()
    .map(|(label, value, path)| Total {
        label,
        value,
        href: format!("{b}{path}"),
    })
    .collect();
    let queues = snap
        .queues
        .iter()
        .map(|q| queue_row(b, q, snap.last_hour(&q.name)))
        .collect();
    let n = snap.minutes.len();
    let hour = chart(&snap.minutes[n.saturating_sub(60)..], 1);
    let day = chart(&snap.minutes, 10);
    let mut l = Layout::new(&ctx, "Overview", "overview");
    l.refresh = shared.config.refresh_secs;
    Ok(render(&OverviewPage {
        l,
        skipped: snap.skipped_bounded(),
        totals,
        queues,
        hour,
        day,
    }))
}
