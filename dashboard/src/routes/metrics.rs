//! `/metrics`: Prometheus / `OpenMetrics` text built with `prometheus-client`
//! from one snapshot per scrape (a fresh registry each time: the numbers
//! live in Redis, not in this process). Metric names are part of the
//! interface (docs/DASHBOARD.md): per-queue gauges, per-queue counters
//! `spool_jobs_{processed,failed}_total`, and `spool_processes`.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use spool_client::admin::{BreakerState, QueueInfo};

use super::overview::Snapshot;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A queue name as a label value, escaped as the text format requires
/// (`prometheus-client` writes label values verbatim; queue names are
/// validated, but the escape keeps the output well-formed regardless).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct QueueName(String);

impl EncodeLabelValue for QueueName {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        encoder.write_str(&spool_client::metrics_text::escape_label_value(&self.0))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: QueueName,
}

/// A per-queue integer gauge: name, help, value.
type IntGauge = (&'static str, &'static str, fn(&QueueInfo) -> i64);

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const GAUGES: [IntGauge; 13] = [
    ("spool_queue_depth", "Jobs in the ready list", |q| {
        int(q.ready)
    }),
    ("spool_queue_busy", "Jobs leased by workers", |q| {
        int(q.active)
    }),
    ("spool_queue_scheduled", "Jobs in the scheduled set", |q| {
        int(q.scheduled)
    }),
    ("spool_queue_retry", "Jobs in the retry set", |q| {
        int(q.retry)
    }),
    ("spool_queue_dead", "Jobs in the dead set", |q| int(q.dead)),
    ("spool_queue_paused", "1 when the queue is paused", |q| {
        i64::from(q.paused)
    }),
    (
        "spool_queue_concurrency_limit",
        "The queue's global concurrency limit (0: none)",
        |q| i64::from(q.controls.concurrency_limit.unwrap_or(0)),
    ),
    (
        "spool_queue_throttled",
        "1 when ready jobs wait for a fleet control: concurrency limit, rate limit or circuit breaker",
        |q| i64::from(q.throttled().is_some_and(|why| why != "paused")),
    ),
    (
        "spool_queue_rate_limit_jobs",
        "Jobs the queue's rate limit allows per period (0: none); see spool_queue_rate_limit_period_seconds",
        |q| i64::from(q.controls.rate_limit.map_or(0, |r| r.jobs)),
    ),
    (
        "spool_queue_rate_limit_period_seconds",
        "The period of the queue's rate limit, in whole seconds (0: none or under a second)",
        |q| {
            q.controls
                .rate_limit
                .map_or(0, |r| i64::try_from(r.per.as_secs()).unwrap_or(i64::MAX))
        },
    ),
    (
        "spool_queue_key_rate_limit_jobs",
        "Jobs each rate key may start per period of the queue's per-key rate limit (0: none)",
        |q| i64::from(q.controls.key_rate_limit.map_or(0, |r| r.jobs)),
    ),
    (
        "spool_queue_groups_waiting",
        "Ordered groups with jobs waiting for their turn",
        |q| int(q.groups_waiting),
    ),
    (
        "spool_queue_breaker_state",
        "The queue's circuit breaker: 0 closed or none, 1 half-open, 2 open",
        |q| match q.controls.breaker {
            Some((_, BreakerState::Open { .. })) => 2,
            Some((_, BreakerState::HalfOpen { .. })) => 1,
            _ => 0,
        },
    ),
];

/// The registry of one scrape.
fn registry(snap: &Snapshot) -> Registry {
    let mut reg = Registry::default();
    let label = |q: &QueueInfo| QueueLabel {
        queue: QueueName(q.name.clone()),
    };
    for (name, help, value) in GAUGES {
        let family = Family::<QueueLabel, Gauge>::default();
        for q in &snap.queues {
            family.get_or_create(&label(q)).set(value(q));
        }
        reg.register(name, help, family);
    }
    let latency = Family::<QueueLabel, Gauge<f64, AtomicU64>>::default();
    for q in &snap.queues {
        latency
            .get_or_create(&label(q))
            .set(q.latency.as_secs_f64());
    }
    reg.register(
        "spool_queue_latency_seconds",
        "Age of the oldest ready job",
        latency,
    );
    // Counters get their `_total` suffix from the encoder.
    for (name, help, processed) in [
        ("spool_jobs_processed", "Jobs that succeeded", true),
        ("spool_jobs_failed", "Failed runs", false),
    ] {
        let family = Family::<QueueLabel, Counter>::default();
        for q in &snap.queues {
            let st = snap.stats.get(&q.name);
            let v = st.map_or(0, |s| if processed { s.processed } else { s.failed });
            family.get_or_create(&label(q)).inc_by(v);
        }
        reg.register(name, help, family);
    }
    let procs = Gauge::<i64>::default();
    procs.set(i64::try_from(snap.processes).unwrap_or(i64::MAX));
    reg.register("spool_processes", "Live worker processes", procs);
    reg
}

pub(crate) async fn metrics(State(s): AppState) -> AppResult<Response> {
    let snap = Snapshot::read(&s.admin, 1).await?;
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail; a failure would be a bug: a 500.
    prometheus_client::encoding::text::encode(&mut out, &registry(&snap))
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
