//! Worker metrics (issue 13, item 2): a worker serving `/metrics` is
//! scraped after 110 runs of 100 jobs (10 retried once, 10 dead): the
//! counters by type and outcome, the duration histogram's count and
//! buckets, fetches and the in-flight gauge match; a second worker asked
//! to serve on the same address refuses to start, saying why.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_client::{Job, JobOptions};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::{JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    n: u32,
}

impl Job for Step {
    const TYPE: &'static str = "step";
    fn options() -> JobOptions {
        JobOptions::default()
            .max_attempts(3)
            .retry_policy(spool_client::FixedDelay(Duration::from_millis(20)))
    }
}

fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The value of the sample `line_start` (name and labels) in `text`.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {line_start} in\n{text}"))
}

#[tokio::test]
async fn a_scrape_after_100_jobs_counts_every_outcome_and_duration() {
    let env = TestEnv::start().await;
    let addr = free_addr();
    let worker = env
        .worker()
        .metrics(addr)
        .register(|ctx: JobContext, job: Step| async move {
            match job.n % 10 {
                0 => Err(JobError::permanent("tenth job fails for good")),
                1 if ctx.attempt() == 1 => Err(JobError::retry("first run fails")),
                _ => Ok(()),
            }
        })
        .build()
        .unwrap();
    let running = RunningWorker::start(worker);
    let jobs: Vec<Step> = (0..100).map(|n| Step { n }).collect();
    env.client.enqueue_bulk(&jobs).await.unwrap();
    let admin = env.client.admin();
    wait_for("90 done, 10 dead", Duration::from_secs(20), || async {
        let s = admin.stats("default", 5).await.unwrap();
        admin.queue("default").await.unwrap().dead == 10 && s.processed >= 90
    })
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{addr}/metrics");
    // The last outcomes are counted when their runs end, just before the
    // completer writes them: wait for the counters to settle.
    let scrape = || {
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().text().await.unwrap() }
    };
    wait_for("110 runs counted", Duration::from_secs(5), || async {
        scrape()
            .await
            .contains(r#"spool_worker_job_duration_seconds_count{type="step"} 110"#)
    })
    .await;
    let text = scrape().await;
    running.stop().await;

    let jobs = |outcome: &str| {
        sample(
            &text,
            &format!(r#"spool_worker_jobs_total{{type="step",outcome="{outcome}"}}"#),
        )
    };
    assert!((jobs("done") - 90.0).abs() < f64::EPSILON, "{text}");
    assert!((jobs("retry") - 10.0).abs() < f64::EPSILON, "{text}");
    assert!((jobs("dead") - 10.0).abs() < f64::EPSILON, "{text}");
    assert!(jobs("snoozed").abs() < f64::EPSILON);
    // Every run is in the histogram: the +Inf bucket and the count agree,
    // and no-op runs land in the smallest buckets.
    let inf = sample(
        &text,
        r#"spool_worker_job_duration_seconds_bucket{le="+Inf",type="step"}"#,
    );
    assert!((inf - 110.0).abs() < f64::EPSILON, "{text}");
    let fast = sample(
        &text,
        r#"spool_worker_job_duration_seconds_bucket{le="0.512",type="step"}"#,
    );
    assert!(fast > 100.0, "{text}");
    assert!(sample(&text, "spool_worker_jobs_fetched_total") >= 110.0);
    assert!(sample(&text, "spool_worker_fetch_duration_seconds_count") >= 1.0);
    assert!(sample(&text, "spool_worker_jobs_in_flight").abs() < f64::EPSILON);
    assert!(
        text.contains("# TYPE spool_worker_lease_losses counter"),
        "{text}"
    );
    // Types this worker has no handler for share one label value.
    assert!(
        text.contains(r#"spool_worker_jobs_total{type="unknown",outcome="done"} 0"#),
        "{text}"
    );

    // The address is free again once the worker stopped; taken, it is refused.
    let holder = std::net::TcpListener::bind(addr).unwrap();
    let second = env
        .worker()
        .metrics(addr)
        .register(|_ctx: JobContext, _job: Step| async { Ok(()) })
        .build()
        .unwrap();
    let err = second
        .run_until(tokio::time::sleep(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot serve metrics on {addr}")),
        "{err}"
    );
    drop(holder);
}
