//! The `--poison` scenario: does bad input slow good work down?
//!
//! Drains 5,000 good no-op jobs alone, then 5,000 good jobs with 90 poison
//! items spread evenly among them, each run with a fresh worker in a fresh
//! namespace at the same concurrency. The poison is written raw to the ready
//! list, as a buggy producer in another language would: bad JSON, unknown
//! types, args of the wrong shape, args nested 5,000 deep, 10 MiB records,
//! a handler that panics, and a handler that never returns (1 s timeout).
//! Reports the good jobs' rate in both runs and the ratio (target ≥ 0.9).
//! `POISON_KINDS=big,hang` (any of json, type, args, deep, big, panic, hang)
//! limits the poison to those kinds, to find which one costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use spool_client::{Client, Job, JobOptions};
use spool_worker::{JobContext, JobError, Worker};

const GOOD: u64 = 5_000;
const QUEUE: &str = "poison";

#[derive(Serialize, Deserialize)]
struct Good {
    n: u64,
}

impl Job for Good {
    const TYPE: &'static str = "good";
    fn options() -> JobOptions {
        JobOptions::default().queue(QUEUE)
    }
}

#[derive(Serialize, Deserialize)]
struct Panics {}

impl Job for Panics {
    const TYPE: &'static str = "panics";
    fn options() -> JobOptions {
        JobOptions::default().queue(QUEUE)
    }
}

#[derive(Serialize, Deserialize)]
struct Hangs {}

impl Job for Hangs {
    const TYPE: &'static str = "hangs";
    fn options() -> JobOptions {
        JobOptions::default().queue(QUEUE)
    }
}

/// A record as another producer would write it, with Spool's head.
fn record(id: &str, job_type: &str, args: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","attempt":0,"max_attempts":3,"enqueued_ms":0,"type":"{job_type}","queue":"{QUEUE}","args":{args},"created_ms":0{extra}}}"#
    )
    .into_bytes()
}

/// The 90 poison items, in a fixed mix.
fn poison_items() -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let kinds = std::env::var("POISON_KINDS")
        .unwrap_or_else(|_| "json,type,args,deep,big,panic,hang".into());
    let on = |k: &str| kinds.split(',').any(|x| x == k);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let big = format!(r#"{{"n":1,"blob":"{}"}}"#, "x".repeat(10 << 20));
    for i in 0..15 {
        if on("json") {
            items.push(format!(r#"{{"id":"p-json-{i}","attempt":0,"max_attempts":3,"enqueued_ms":0,"type":"good","args":{{"n":"#).into_bytes());
        }
        if on("type") {
            items.push(record(
                &format!("p-type-{i}"),
                "nobody-handles-this",
                r#"{"n":1}"#,
                "",
            ));
        }
        if on("args") {
            items.push(record(
                &format!("p-args-{i}"),
                "good",
                r#"{"n":"not a number"}"#,
                "",
            ));
        }
        if on("deep") {
            items.push(record(&format!("p-deep-{i}"), "good", &deep, ""));
        }
    }
    for i in 0..10 {
        if on("big") {
            items.push(record(&format!("p-big-{i}"), "good", &big, ""));
        }
        if on("panic") {
            items.push(record(&format!("p-panic-{i}"), "panics", "{}", ""));
        }
        if on("hang") {
            items.push(record(
                &format!("p-hang-{i}"),
                "hangs",
                "{}",
                r#","timeout_ms":1000"#,
            ));
        }
    }
    items
}

/// Seconds until the worker ran every good job.
async fn drain(url: &str, concurrency: usize, with_poison: bool) -> anyhow::Result<f64> {
    let namespace = format!("poison{}{}", std::process::id(), u8::from(with_poison));
    let client = Client::builder(url)
        .namespace(namespace.as_str())
        .connect()
        .await?;
    let keys = client.queue_keys(QUEUE)?;
    let mut raw = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let poison = if with_poison {
        poison_items()
    } else {
        Vec::new()
    };
    let good: Vec<Good> = (0..GOOD).map(|n| Good { n }).collect();
    let per_gap = usize::try_from(GOOD)? / (poison.len() + 1);
    let mut chunks = good.chunks(per_gap.max(1));
    for item in &poison {
        if let Some(chunk) = chunks.next() {
            client.enqueue_bulk(chunk).await?;
        }
        let _: () = redis::cmd("LPUSH")
            .arg(&keys.ready)
            .arg(item)
            .query_async(&mut raw)
            .await?;
    }
    for chunk in chunks {
        client.enqueue_bulk(chunk).await?;
    }
    drop(good);

    let done = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&done);
    let worker = Worker::builder(client.clone())
        .queue(QUEUE, 1)
        .concurrency(concurrency)
        .configure(|c| c.fetch_batch_max = concurrency.min(1000))
        .register(move |_ctx: JobContext, _job: Good| {
            d.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok(()))
        })
        .register(|_ctx: JobContext, _job: Panics| async move {
            if true {
                panic!("poison: this handler always panics");
            }
            Ok::<(), JobError>(())
        })
        .register(|_ctx: JobContext, _job: Hangs| std::future::pending())
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stop_rx.await;
    }));
    while done.load(Ordering::Relaxed) < GOOD {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("good jobs not done after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    handle.await??;
    Ok(secs)
}

/// Runs both drains and returns the report.
pub(crate) async fn run(url: &str, concurrency: usize) -> anyhow::Result<serde_json::Value> {
    // Hide the poison's panic messages: they are the point, not news.
    std::panic::set_hook(Box::new(|_| {}));
    let clean = drain(url, concurrency, false).await?;
    let poisoned = drain(url, concurrency, true).await?;
    let rate = |s: f64| (GOOD as f64 / s).round();
    Ok(serde_json::json!({
        "scenario": "poison",
        "good_jobs": GOOD,
        "poison_items": poison_items().len(),
        "concurrency": concurrency,
        "clean_jobs_per_sec": rate(clean),
        "poisoned_jobs_per_sec": rate(poisoned),
        "ratio": ((clean / poisoned) * 1000.0).round() / 1000.0,
    }))
}
