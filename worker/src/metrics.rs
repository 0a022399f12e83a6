//! Worker metrics, in Prometheus form, with `prometheus-client` (the crate
//! the dashboard's `/metrics` uses too). Every worker collects them; it
//! serves them when asked ([`WorkerBuilder::metrics`]) or registers them in
//! a registry the application already serves
//! ([`WorkerBuilder::metrics_registry`]).
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `spool_worker_jobs_total` | counter | `type`, `outcome` | runs ended: `done`, `retry`, `dead`, `snoozed`, `handed_back` (shutdown) |
//! | `spool_worker_job_duration_seconds` | histogram | `type` | a run's time from the handler's start to its outcome |
//! | `spool_worker_jobs_in_flight` | gauge | – | runs going on now |
//! | `spool_worker_fetch_duration_seconds` | histogram | – | one fetch (claim) call's round trip |
//! | `spool_worker_jobs_fetched_total` | counter | – | jobs leased |
//! | `spool_worker_lease_losses_total` | counter | – | runs whose lease was lost (reaped, taken, or their outcome fenced off) |
//! | `spool_worker_redis_errors_total` | counter | `op` | failed Redis calls: `fetch`, `complete`, or a service (`heartbeat`, `scheduler`, …) |
//! | `spool_handler_overruns_total` | counter | `type` | runs that returned after their time limit (a blocking handler) |
//!
//! `type` is a registered job type, or `unknown` for every other type (a
//! producer cannot grow the label set). Per job the worker touches one
//! counter, one histogram and the gauge through handles made at start-up:
//! no label lookup, no allocation. `docs/grafana-worker.json` is a Grafana
//! dashboard on these names.
//!
//! [`WorkerBuilder::metrics`]: crate::WorkerBuilder::metrics
//! [`WorkerBuilder::metrics_registry`]: crate::WorkerBuilder::metrics_registry

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use spool_client::runtime::Outcome;
use tokio_util::sync::CancellationToken;

/// The label value of a job of a type this worker has no handler for.
pub const UNKNOWN_TYPE: &str = "unknown";

/// A label value written escaped (job types come from producers).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Text(Arc<str>);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        encoder.write_str(&spool_client::metrics_text::escape_label_value(&self.0))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    r#type: Text,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

/// The outcomes a run is counted under, in [`outcome_index`] order.
const OUTCOMES: [&str; 5] = ["done", "retry", "dead", "snoozed", "handed_back"];

/// A run's outcome as the index of its counter.
fn outcome_index(outcome: Option<&Outcome>) -> usize {
    match outcome {
        Some(Outcome::Ack | Outcome::Returned { .. }) => 0,
        Some(Outcome::Retry { .. }) => 1,
        Some(Outcome::Dead { .. }) => 2,
        Some(Outcome::Snooze { .. }) => 3,
        None => 4,
    }
}

/// Handles for one job type, made once.
#[derive(Clone)]
pub(crate) struct TypeHandles {
    outcomes: [Counter; 5],
    duration: Histogram,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The handles of one job type, made in the families (so they are
/// exported) once.
fn handles(
    jobs: &Family<JobLabels, Counter>,
    durations: &HistogramFamily<TypeLabel>,
    name: &str,
) -> TypeHandles {
    let label = Text(Arc::from(name));
    TypeHandles {
        outcomes: OUTCOMES.map(|outcome| {
            jobs.get_or_create(&JobLabels {
                r#type: label.clone(),
                outcome,
            })
            .clone()
        }),
        duration: durations
            .get_or_create(&TypeLabel {
                r#type: label.clone(),
            })
            .clone(),
    }
}

fn job_duration() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Inner {
    jobs: Family<JobLabels, Counter>,
    durations: HistogramFamily<TypeLabel>,
    /// Looked up for every job: hashed with foldhash, seeded per process
    /// (std's `SipHash` cost about 250 instructions a lookup).
    by_type: HashMap<String, TypeHandles, foldhash::fast::RandomState>,
    unknown: TypeHandles,
    in_flight: Gauge,
    fetch: Histogram,
    fetched: Counter,
    lease_losses: Counter,
    redis_errors: Family<OpLabel, Counter>,
    overruns: Family<TypeLabel, Counter>,
}

/// A worker's metrics (cheap to clone: handles to shared values).
#[derive(Clone)]
pub struct WorkerMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics")
            .field("types", &self.inner.by_type.len())
            .finish_non_exhaustive()
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    /// The metrics of a worker, before its job types are known.
    pub(crate) fn new() -> Self {
        let jobs = Family::<JobLabels, Counter>::default();
        let durations: HistogramFamily<TypeLabel> =
            Family::new_with_constructor(job_duration as fn() -> Histogram);
        let unknown = handles(&jobs, &durations, UNKNOWN_TYPE);
        Self {
            inner: Arc::new(Inner {
                by_type: HashMap::default(),
                unknown,
                jobs,
                durations,
                in_flight: Gauge::default(),
                // 0.1 ms to ~0.8 s.
                fetch: Histogram::new(exponential_buckets(0.0001, 2.0, 14)),
                fetched: Counter::default(),
                lease_losses: Counter::default(),
                redis_errors: Family::default(),
                overruns: Family::default(),
            }),
        }
    }

    /// The same metrics (every value shared, registrations included) with
    /// handles made for `types`.
    pub(crate) fn for_types<'a>(&self, types: impl Iterator<Item = &'a str>) -> Self {
        let m = &self.inner;
        let by_type = types
            .map(|t| (t.to_owned(), handles(&m.jobs, &m.durations, t)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                by_type,
                unknown: m.unknown.clone(),
                jobs: m.jobs.clone(),
                durations: m.durations.clone(),
                in_flight: m.in_flight.clone(),
                fetch: m.fetch.clone(),
                fetched: m.fetched.clone(),
                lease_losses: m.lease_losses.clone(),
                redis_errors: m.redis_errors.clone(),
                overruns: m.overruns.clone(),
            }),
        }
    }

    /// Registers every metric in `registry` (names as in the module docs).
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.inner;
        registry.register(
            "spool_worker_jobs",
            "Job runs ended, by job type and outcome",
            m.jobs.clone(),
        );
        registry.register(
            "spool_worker_job_duration_seconds",
            "Time from a handler's start to its outcome",
            m.durations.clone(),
        );
        registry.register(
            "spool_worker_jobs_in_flight",
            "Job runs going on now",
            m.in_flight.clone(),
        );
        registry.register(
            "spool_worker_fetch_duration_seconds",
            "Round trip of one fetch (claim) call",
            m.fetch.clone(),
        );
        registry.register(
            "spool_worker_jobs_fetched",
            "Jobs leased by this worker",
            m.fetched.clone(),
        );
        registry.register(
            "spool_worker_lease_losses",
            "Runs whose lease was lost (reaped, taken over, or their outcome fenced off)",
            m.lease_losses.clone(),
        );
        registry.register(
            "spool_worker_redis_errors",
            "Failed Redis calls, by operation",
            m.redis_errors.clone(),
        );
        registry.register(
            "spool_handler_overruns",
            "Handler runs that returned after their time limit",
            m.overruns.clone(),
        );
    }

    pub(crate) fn of_type(&self, job_type: &str) -> &TypeHandles {
        self.inner
            .by_type
            .get(job_type)
            .unwrap_or(&self.inner.unknown)
    }

    /// A run started.
    pub(crate) fn run_started(&self) {
        self.inner.in_flight.inc();
    }

    /// A run of the type of `h` ended after `elapsed` with `outcome`
    /// (`None`: handed back at shutdown).
    pub(crate) fn run_ended(&self, h: &TypeHandles, outcome: Option<&Outcome>, elapsed: Duration) {
        h.outcomes[outcome_index(outcome)].inc();
        h.duration.observe(elapsed.as_secs_f64());
        self.inner.in_flight.dec();
    }

    /// One fetch call took `elapsed` and leased `jobs`.
    pub(crate) fn fetched(&self, elapsed: Duration, jobs: usize) {
        self.inner.fetch.observe(elapsed.as_secs_f64());
        self.inner.fetched.inc_by(jobs as u64);
    }

    /// `n` runs lost their lease.
    pub(crate) fn leases_lost(&self, n: u64) {
        self.inner.lease_losses.inc_by(n);
    }

    /// A Redis call of `op` failed.
    pub(crate) fn redis_error(&self, op: &'static str) {
        self.inner.redis_errors.get_or_create(&OpLabel { op }).inc();
    }

    /// A run of `job_type` returned after its time limit.
    pub(crate) fn overrun(&self, job_type: &str) {
        let name = if self.inner.by_type.contains_key(job_type) {
            job_type
        } else {
            UNKNOWN_TYPE
        };
        self.inner
            .overruns
            .get_or_create(&TypeLabel {
                r#type: Text(Arc::from(name)),
            })
            .inc();
    }
}

/// Serves `registry` as Prometheus text at `GET /metrics` on `listener`
/// until `stop` fires.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    use axum::http::header;
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = Arc::clone(&registry);
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(e) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot encode metrics: {e}"),
                    )
                        .into_response(),
                }
            }
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "metrics endpoint stopped");
    }
}

/// Binds the metrics endpoint's address.
pub(crate) async fn bind(addr: SocketAddr) -> crate::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Config(format!("cannot serve metrics on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_by_registered_type_and_outcome() {
        let m = WorkerMetrics::new().for_types(["mail"].into_iter());
        m.run_started();
        m.run_ended(
            m.of_type("mail"),
            Some(&Outcome::Ack),
            Duration::from_millis(3),
        );
        m.run_started();
        m.run_ended(m.of_type("a\"b"), None, Duration::from_millis(3));
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains(r#"spool_worker_jobs_total{type="mail",outcome="done"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"spool_worker_jobs_total{type="unknown",outcome="handed_back"} 1"#),
            "{text}"
        );
        assert!(text.contains("spool_worker_jobs_in_flight 0"), "{text}");
        assert!(
            text.contains(r#"spool_worker_job_duration_seconds_bucket{le="0.004",type="mail"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn the_grafana_dashboard_uses_only_names_the_worker_exports() {
        let m = WorkerMetrics::new().for_types(["mail"].into_iter());
        m.redis_error("fetch");
        m.overrun("mail");
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        let dashboard = include_str!("../../docs/grafana-worker.json");
        let mut names = 0;
        for (at, _) in dashboard.match_indices("spool_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if ["spool_", "spool_worker", "spool_workers"].contains(&name.as_str())
                || name.starts_with("spool_queue")
            {
                continue;
            }
            names += 1;
            assert!(
                text.contains(&format!("\n{name}{{")) || text.contains(&format!("\n{name} ")),
                "{name} is not exported:\n{text}"
            );
        }
        assert!(names >= 10, "{names}");
    }
}
