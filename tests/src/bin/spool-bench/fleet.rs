//! `--workers N`: a fleet of N worker processes on one Redis, and the CPU
//! time a process used (for `worker_cpu_us_per_job`).
//!
//! Each worker process is this binary run with `--worker-process`: it
//! drains the bench queues of the parent's namespace until its standard
//! input closes (the parent drops the pipe), then stops as on SIGTERM.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use spool_client::Client;
use spool_worker::{JobContext, Worker};

use crate::BenchNoop;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`: 100 on every
/// Linux architecture Spool runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system, µs) used so far by process `pid` (`"self"`
/// for this one), from `/proc/<pid>/stat`; 0 where there is no `/proc`.
pub(crate) fn cpu_us(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SEC * 1e6
}

/// The worker processes of one run.
pub(crate) struct Fleet {
    children: Vec<Child>,
}

impl Fleet {
    /// Starts `n` worker processes at `concurrency` each on `queues` of
    /// `namespace` at `url`, each with a runtime of `threads` threads.
    pub(crate) fn start(
        n: usize,
        url: &str,
        namespace: &str,
        queues: &[String],
        concurrency: usize,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("the bench's own path")?;
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            let child = Command::new(&exe)
                .arg("--worker-process")
                .args(["--redis-url", url, "--namespace", namespace])
                .args(["--concurrency", &concurrency.to_string()])
                .args(["--worker-threads", &threads.to_string()])
                .args(["--queue-list", &queues.join(",")])
                .stdin(Stdio::piped())
                .spawn()
                .context("starting a worker process")?;
            children.push(child);
        }
        Ok(Self { children })
    }

    /// CPU time the worker processes used so far, in µs.
    pub(crate) fn cpu_us(&self) -> f64 {
        self.children
            .iter()
            .map(|c| cpu_us(&c.id().to_string()))
            .sum()
    }

    /// Stops every worker process (closes its input) and waits for it.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        for child in &mut self.children {
            let status = child.wait().context("waiting for a worker process")?;
            anyhow::ensure!(status.success(), "a worker process failed: {status}");
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `--worker-process` side: drains `queues` until standard input
/// closes.
pub(crate) async fn run_worker_process(
    url: &str,
    namespace: &str,
    queues: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let client = Client::builder(url)
        .namespace(namespace)
        .tls(spool_client::TlsFiles::from_env())
        .connect()
        .await?;
    let mut worker = Worker::builder(client);
    for q in queues {
        worker = worker.queue(q, 1);
    }
    let worker = worker
        .concurrency(concurrency)
        .configure(|c| c.fetch_batch_max = concurrency.min(1000))
        .register(|_: JobContext, _: BenchNoop| std::future::ready(Ok(())))
        .build()?;
    let closed = tokio::task::spawn_blocking(|| {
        // EOF (or an error) on standard input: the parent is done.
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    });
    worker
        .run_until(async {
            let _ = closed.await;
        })
        .await?;
    Ok(())
}
