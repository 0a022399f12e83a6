//! OpenTelemetry across the queue (issue 13, item 1), with an in-memory
//! exporter: the span that enqueued a job and the job's spans (its first
//! run, its retry, and its follow-up) share one trace id, each job span the
//! child of the producer's span; a job enqueued outside any trace starts
//! its own; a foreign `traceparent` written by another producer is adopted.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};
use spool_client::{EnqueueOptions, FollowUp, Job, JobOptions};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky {
    n: u32,
}

impl Job for Flaky {
    const TYPE: &'static str = "flaky";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(spool_client::FixedDelay(Duration::from_millis(50)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Notify {
    n: u32,
}

impl Job for Notify {
    const TYPE: &'static str = "notify";
}

fn jobs_of(spans: &[SpanData]) -> Vec<&SpanData> {
    spans.iter().filter(|s| s.name == "job").collect()
}

#[tokio::test]
async fn producer_and_job_spans_share_one_trace_retries_and_follow_ups_included() {
    let env = TestEnv::start().await;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("spool-test")));
    // This thread's default: the test runtime is single-threaded, so the
    // worker's tasks report here too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let worker = env
        .worker()
        .register(|ctx: JobContext, job: Flaky| async move {
            if ctx.attempt() == 1 {
                return Err(JobError::retry(format!("first run of {} fails", job.n)));
            }
            Ok(())
        })
        .register(|_ctx: JobContext, _job: Notify| async { Ok(()) })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);

    let request = tracing::info_span!("http_request");
    let client = env.client.clone();
    async move {
        client
            .enqueue_with(
                &Flaky { n: 1 },
                EnqueueOptions::new().follow_up(FollowUp::on_success(&Notify { n: 1 }).unwrap()),
            )
            .await
            .unwrap();
    }
    .instrument(request.clone())
    .await;
    drop(request);
    // Outside any span: a trace of its own.
    env.client.enqueue(&Notify { n: 2 }).await.unwrap();
    // A producer in another language wrote this traceparent.
    let foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    env.client
        .enqueue_with(
            &Notify { n: 3 },
            EnqueueOptions::new().trace(BTreeMap::from([(
                "traceparent".to_owned(),
                foreign.to_owned(),
            )])),
        )
        .await
        .unwrap();

    wait_for("five job spans", Duration::from_secs(10), || {
        let exporter = exporter.clone();
        async move { jobs_of(&exporter.get_finished_spans().unwrap()).len() >= 5 }
    })
    .await;
    running.stop().await;
    let spans = exporter.get_finished_spans().unwrap();
    let producer = spans.iter().find(|s| s.name == "http_request").unwrap();
    let trace = producer.span_context.trace_id();
    let jobs = jobs_of(&spans);
    let in_request: Vec<_> = jobs
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    assert_eq!(
        in_request.len(),
        3,
        "two runs of flaky and its follow-up: {jobs:#?}"
    );
    for s in &in_request {
        assert_eq!(s.parent_span_id, producer.span_context.span_id(), "{s:#?}");
    }
    let attempts: Vec<String> = in_request
        .iter()
        .map(|s| {
            s.attributes
                .iter()
                .filter(|kv| kv.key.as_str() == "job_type" || kv.key.as_str() == "attempt")
                .map(|kv| kv.value.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(attempts.contains(&"flaky 1".to_owned()), "{attempts:?}");
    assert!(attempts.contains(&"flaky 2".to_owned()), "{attempts:?}");
    assert!(attempts.contains(&"notify 1".to_owned()), "{attempts:?}");

    let foreign_trace = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    let adopted: Vec<_> = jobs
        .iter()
        .filter(|s| s.span_context.trace_id() == foreign_trace)
        .collect();
    assert_eq!(adopted.len(), 1);
    assert_eq!(
        adopted[0].parent_span_id,
        SpanId::from_hex("b7ad6b7169203331").unwrap()
    );
    // The untraced enqueue's job is a root span of a trace of its own.
    let roots = jobs
        .iter()
        .filter(|s| s.parent_span_id == SpanId::INVALID)
        .count();
    assert_eq!(roots, 1, "{jobs:#?}");
}
