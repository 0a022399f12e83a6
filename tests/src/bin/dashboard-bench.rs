//! `dashboard-bench`: page render time of the dashboard over a queue of
//! 1,000,000 jobs (by default), against a private redis-server.
//!
//! ```text
//! cargo run --release -p spool-tests --bin dashboard-bench -- [--jobs 1000000] [--samples 20]
//! ```
//!
//! Enqueues the jobs with bulk enqueue (plus a few hundred scheduled and
//! dead-set entries' worth of scheduled jobs), serves the router on a
//! loopback port, and times full HTTP round trips (request to last body
//! byte) of each page: median, p95 and max. The target is under 300 ms.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use spool_client::Client;
use spool_dashboard::DashboardConfig;
use spool_tests::dashboard::Session;
use spool_tests::handlers::Noop;
use spool_tests::TestRedis;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let jobs = arg("--jobs", 1_000_000);
    let samples = arg("--samples", 20).max(1);
    let redis = TestRedis::start();
    let client = Client::connect(&redis.url()).await.expect("connect");

    let t = Instant::now();
    let batch: Vec<Noop> = (0..50_000u64).map(|n| Noop { n }).collect();
    let mut left = jobs;
    while left > 0 {
        let n = left.min(batch.len());
        client
            .enqueue_bulk(&batch[..n])
            .await
            .expect("bulk enqueue");
        left -= n;
    }
    let scheduled: Vec<Noop> = (0..1000u64).map(|n| Noop { n }).collect();
    client
        .enqueue_bulk_with(
            &scheduled,
            spool_client::EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .expect("scheduled");
    println!(
        "enqueued {jobs} ready + 1000 scheduled jobs in {:.1?}",
        t.elapsed()
    );

    let app = spool_dashboard::router(client.admin(), DashboardConfig::default());
    let server = spool_tests::dashboard::DashboardServer::start(app).await;
    let mut s = Session::new(&server.url(), "");
    let last_page = jobs.div_ceil(25).max(1);
    let pages = [
        ("overview", "/".to_owned()),
        ("queue, first page", "/queues/default".to_owned()),
        (
            "queue, last page",
            format!("/queues/default?page={}", last_page.min(100_000)),
        ),
        (
            "queue, 500 per page",
            "/queues/default?per_page=500".to_owned(),
        ),
        ("scheduled", "/scheduled?queue=default".to_owned()),
        (
            "scheduled, filtered",
            "/scheduled?queue=default&q=%22n%22%3A999".to_owned(),
        ),
        ("dead (empty)", "/dead".to_owned()),
        ("metrics", "/metrics".to_owned()),
        ("api/queues", "/api/queues".to_owned()),
    ];
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "page", "median", "p95", "max"
    );
    let mut worst = Duration::ZERO;
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            let p = s.get(path).await;
            times.push(t.elapsed());
            assert_eq!(p.status, 200, "{path}");
        }
        times.sort();
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        let max = times[times.len() - 1];
        worst = worst.max(p95);
        println!("{name:<24} {median:>10.1?} {p95:>10.1?} {max:>10.1?}");
    }
    println!("worst p95 {worst:.1?} (target < 300ms) with {jobs} ready jobs");
    server.stop().await;
}
