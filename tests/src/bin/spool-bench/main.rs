//! spool-bench: throughput, pick-up latency and memory of Spool on one Redis.
//!
//! 1. Bulk-enqueues N no-op jobs and measures Redis memory per queued job.
//! 2. Drains them with one worker (this process) at concurrency C.
//! 3. Enqueues at a steady rate (default 1,000 jobs/s) and measures pick-up
//!    latency: enqueue call to handler start.
//! 4. Leaves the worker idle (default 10 s) and counts the Redis commands it
//!    sends per second (one queue, default worker settings).
//!
//! With `--keep-outcome S`, every job keeps its outcome for S seconds (and,
//! with `--result`, its handler returns a value kept with it): the report
//! adds `redis_bytes_per_kept_outcome` (the Redis memory that deleting the
//! drained jobs' kept outcomes frees, per job). `--waiters N` adds a phase:
//! N jobs enqueued at the latency rate, each with a `Client::wait`,
//! reporting the time from the handler's return to `wait` returning
//! (`wait_p50_ms`, `wait_p99_ms`: an upper bound of
//! ack-to-wait, since the ack follows the return).
//!
//! With `--args-bytes N`, the bulk-enqueued jobs carry N bytes of args
//! JSON; `--encrypted-args-bytes N` also seals them with a fresh key
//! (`EnqueueOptions::encrypted`) for the worker to open: the two runs side
//! by side give encryption's cost.
//!
//! With `--events off|terminal|all`, the bench queues write that level of
//! job events (default: the queues' default, terminal); the report adds
//! `redis_bytes_per_event` (the memory of the event streams per event).
//!
//! With `--concurrency-limit N`, the bench queues get a global concurrency
//! limit of N (`Admin::set_concurrency_limit`): a generous one measures what
//! the check costs the drain.
//!
//! With `--rate-limit JOBS/PERIOD` the bench queues get a rate limit, with
//! `--key-rate JOBS/PERIOD --rate-keys N` a per-key rate limit over N keys
//! (jobs take them in turn), with `--groups N` the jobs spread over N
//! ordered groups, and with `--priorities` the jobs go to levels 0, 1 and 2
//! in chunks of 1,000: generous limits measure what each costs the drain.
//!
//! With `--poison`, it runs a different scenario instead: 5,000 good jobs
//! drained alone, then the same 5,000 mixed with 90 poison items (bad JSON,
//! unknown types, wrong args, deep nesting, 10 MiB payloads, a panicking
//! handler, a handler that never returns with a 1 s timeout), and prints the
//! rate of the good jobs in both runs and their ratio (see `poison.rs`).
//!
//! `--worker-threads N` sets the threads of the process's tokio runtime
//! (and of each `--workers` process). The default leaves Redis a core when
//! it runs on this machine: one thread fewer than the cores, at least one
//! (on the 2-core bench box, 1; `default_worker_threads`); the report's
//! `worker_threads` says which ran.
//!
//! Prints one JSON line. Without `--redis-url` it starts private servers on
//! free loopback ports (needs `redis-server` on PATH): one node by default,
//! or `--topology tls` (one TLS node), `replica` (a primary and a replica, for
//! `--wait-replicas 1`) or `cluster` (3 primaries). `--queues N` spreads the
//! jobs over N queues, one per primary on such a cluster. Any URL works with
//! `--redis-url` (TLS files from `REDIS_CA_FILE` and friends).
//!
//! ```text
//! cargo run --release --bin spool-bench -- --jobs 100000 --concurrency 200
//! cargo run --release --bin spool-bench -- --topology cluster --queues 3
//! cargo run --release --bin spool-bench -- --topology replica --wait-replicas 1
//! cargo run --release --bin spool-bench -- --jobs N --concurrency C --redis-url redis://127.0.0.1:6379
//! ```

/// The bench's allocator: mimalloc, as we advise for worker binaries (a
/// worker allocates a few dozen small objects per job, and the system
/// allocator's share of its CPU is about a quarter: docs/development.md).
/// `--features system-alloc` measures with the system allocator.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator this build uses, as the report names it.
const ALLOCATOR_NAME: &str = if cfg!(feature = "system-alloc") {
    "system"
} else {
    "mimalloc"
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use spool_client::{Client, Durability, EnqueueOptions, Job, JobId, JobOptions, JobOutput};
use spool_worker::{JobContext, Worker};

mod fleet;
mod lateness;
mod poison;
mod profile;
mod topology;

#[derive(Serialize, Deserialize)]
struct BenchNoop {
    /// Host time of the enqueue call, in µs (latency phase only; 0 otherwise).
    t: u64,
    /// With `--groups N`: the job's ordered group, 1 to N (0: none; not
    /// written then, so the payload is the same as without).
    #[serde(default, skip_serializing_if = "is_zero")]
    g: u64,
    /// With `--rate-keys N`: the job's rate key, 1 to N (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    k: u64,
    /// With `--encrypted-args-bytes N`: padding that makes the args N
    /// bytes of JSON (empty: not written).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    p: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BenchNoop {
    fn plain(t: u64) -> Self {
        Self {
            t,
            g: 0,
            k: 0,
            p: String::new(),
        }
    }
}

impl Job for BenchNoop {
    const TYPE: &'static str = "bench_noop";
    fn options() -> JobOptions {
        JobOptions::default().queue("bench")
    }
    fn group(&self) -> Option<String> {
        (self.g > 0).then(|| format!("g{}", self.g))
    }
    fn rate_key(&self) -> Option<String> {
        (self.k > 0).then(|| format!("k{}", self.k))
    }
}

impl JobOutput for BenchNoop {
    type Output = u64;
}

#[allow(clippy::struct_excessive_bools)] // the flags of a command line
struct Args {
    jobs: u64,
    concurrency: usize,
    redis_url: Option<String>,
    topology: String,
    queues: usize,
    wait_replicas: u32,
    latency_rate: u64,
    latency_seconds: u64,
    idle_seconds: u64,
    poison: bool,
    keep_outcome_s: u64,
    result: bool,
    waiters: u64,
    events: Option<spool_client::EventLevel>,
    concurrency_limit: Option<u32>,
    rate_limit: Option<String>,
    key_rate: Option<String>,
    rate_keys: Option<u64>,
    groups: Option<u64>,
    priorities: bool,
    /// Bytes of args JSON of the bulk-enqueued jobs (padding), and
    /// whether they are sealed (`--encrypted-args-bytes`).
    padding: Option<(usize, bool)>,
    /// Worker processes to drain with (0: this process drains).
    workers: usize,
    /// Jobs of the scheduled-lateness phase (`lateness.rs`; 0: none).
    sched_jobs: u64,
    /// Run every feature profile (`profile.rs`) instead.
    profile: bool,
    /// After the drain, print `spool-bench: drained` to stderr and sleep
    /// this long before the bench's own reads (0: neither).
    pause_after_drain_ms: u64,
    /// Run as one worker process of a fleet (`fleet.rs`): the namespace
    /// and queues to drain.
    worker_process: Option<(String, Vec<String>)>,
    /// Threads of this process's tokio runtime (`--worker-threads`, else
    /// [`default_worker_threads`]).
    worker_threads: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        jobs: 100_000,
        concurrency: 200,
        redis_url: None,
        topology: "single".to_owned(),
        queues: 1,
        wait_replicas: 0,
        latency_rate: 1000,
        latency_seconds: 5,
        idle_seconds: 10,
        poison: false,
        keep_outcome_s: 0,
        result: false,
        waiters: 0,
        events: None,
        concurrency_limit: None,
        rate_limit: None,
        key_rate: None,
        rate_keys: None,
        groups: None,
        priorities: false,
        padding: None,
        workers: 0,
        sched_jobs: 500,
        profile: false,
        pause_after_drain_ms: 0,
        worker_process: None,
        worker_threads: 0,
    };
    let (mut namespace, mut queue_list, mut threads) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => a.jobs = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--redis-url" => a.redis_url = Some(value()?),
            "--topology" => a.topology = value()?,
            "--queues" => a.queues = value()?.parse()?,
            "--wait-replicas" => a.wait_replicas = value()?.parse()?,
            "--latency-rate" => a.latency_rate = value()?.parse()?,
            "--latency-seconds" => a.latency_seconds = value()?.parse()?,
            "--idle-seconds" => a.idle_seconds = value()?.parse()?,
            "--poison" => a.poison = true,
            "--keep-outcome" => a.keep_outcome_s = value()?.parse()?,
            "--result" => a.result = true,
            "--waiters" => a.waiters = value()?.parse()?,
            "--events" => a.events = Some(spool_client::EventLevel::parse(&value()?)?),
            "--concurrency-limit" => a.concurrency_limit = Some(value()?.parse()?),
            "--rate-limit" => a.rate_limit = Some(value()?),
            "--key-rate" => a.key_rate = Some(value()?),
            "--rate-keys" => a.rate_keys = Some(value()?.parse()?),
            "--groups" => a.groups = Some(value()?.parse()?),
            "--priorities" => a.priorities = true,
            "--args-bytes" => a.padding = Some((value()?.parse()?, false)),
            "--encrypted-args-bytes" => a.padding = Some((value()?.parse()?, true)),
            "--workers" => a.workers = value()?.parse()?,
            "--scheduled-jobs" => a.sched_jobs = value()?.parse()?,
            "--profile" => a.profile = true,
            "--pause-after-drain" => a.pause_after_drain_ms = value()?.parse()?,
            "--worker-threads" => threads = Some(value()?.parse()?),
            "--worker-process" => a.worker_process = Some((String::new(), Vec::new())),
            "--namespace" => namespace = Some(value()?),
            "--queue-list" => queue_list = Some(value()?),
            "-h" | "--help" => {
                eprintln!("usage: spool-bench [--jobs N] [--concurrency C] [--redis-url URL | --topology single|tls|replica|cluster] [--queues N] [--workers N] [--wait-replicas N] [--latency-rate R] [--latency-seconds S] [--idle-seconds S] [--scheduled-jobs N] [--keep-outcome S [--result] [--waiters N]] [--events off|terminal|all] [--concurrency-limit N] [--rate-limit JOBS/PERIOD] [--key-rate JOBS/PERIOD --rate-keys N] [--groups N] [--priorities] [--args-bytes N | --encrypted-args-bytes N] [--poison | --profile] [--pause-after-drain MS] [--worker-threads N]");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?} (try --help)"),
        }
    }
    if let Some(process) = &mut a.worker_process {
        let ns = namespace.context("--worker-process needs --namespace")?;
        let queues = queue_list.context("--worker-process needs --queue-list")?;
        *process = (ns, queues.split(',').map(str::to_owned).collect());
    }
    if a.workers > 0 && (a.waiters > 0 || a.topology == "tls") {
        bail!("--workers drains with worker processes: not with --waiters or --topology tls");
    }
    if a.waiters > 0 && a.keep_outcome_s == 0 {
        bail!("--waiters needs --keep-outcome");
    }
    if a.jobs == 0 || a.concurrency == 0 || a.latency_rate == 0 || a.queues == 0 {
        bail!("--jobs, --concurrency, --queues and --latency-rate must be positive");
    }
    a.worker_threads = threads.unwrap_or_else(|| default_worker_threads(a.redis_url.as_deref()));
    if a.worker_threads == 0 {
        bail!("--worker-threads must be positive");
    }
    Ok(a)
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn wait_drained(
    client: &Client,
    queues: &[String],
    started: Instant,
    limit: Duration,
) -> anyhow::Result<()> {
    let admin = client.admin();
    loop {
        let mut left = (0, 0);
        for name in queues {
            let q = admin.queue(name).await?;
            left = (left.0 + q.ready, left.1 + q.active);
        }
        if left == (0, 0) {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!(
                "not drained after {limit:?}: {} ready, {} active",
                left.0,
                left.1
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The runtime threads of a bench or worker process when `--worker-threads`
/// is not given: one core fewer than the machine has (at least one) when
/// Redis runs on this machine (the bench's own servers, or a loopback
/// `--redis-url`), so Redis keeps a core of its own, as we advise for a
/// worker that shares its machine with Redis (docs/development.md,
/// "Runtime threads"); else tokio's default, one per core.
fn default_worker_threads(redis_url: Option<&str>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let local = redis_url.is_none_or(|u| {
        reqwest::Url::parse(u).is_ok_and(|u| match u.host_str() {
            Some(host) => {
                host == "localhost"
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            None => u.scheme() == "unix" || u.scheme() == "redis+unix",
        })
    });
    if local {
        cores.saturating_sub(1).max(1)
    } else {
        cores
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads)
        .enable_all()
        .build()
        .context("building the tokio runtime")?
        .block_on(run(args))
}

#[allow(clippy::too_many_lines)] // the four phases, in order, as the module header lists them
async fn run(args: Args) -> anyhow::Result<()> {
    let (servers, url, tls) = match &args.redis_url {
        Some(u) => (
            topology::Servers::External,
            u.clone(),
            spool_client::TlsFiles::from_env(),
        ),
        None => topology::start(&args.topology)?,
    };
    if let Some((namespace, queues)) = &args.worker_process {
        return fleet::run_worker_process(&url, namespace, queues, args.concurrency).await;
    }
    let queues = topology::queue_names(args.queues);
    if args.profile {
        let mut common: Vec<String> = vec![
            "--jobs".into(),
            args.jobs.to_string(),
            "--concurrency".into(),
            args.concurrency.to_string(),
            "--queues".into(),
            args.queues.to_string(),
            "--workers".into(),
            args.workers.to_string(),
            "--worker-threads".into(),
            args.worker_threads.to_string(),
        ];
        match &args.redis_url {
            Some(u) => common.extend(["--redis-url".into(), u.clone()]),
            None => common.extend(["--topology".into(), args.topology.clone()]),
        }
        drop(servers);
        for line in profile::run(&common)? {
            #[allow(clippy::print_stdout)]
            {
                println!("{line}");
            }
        }
        return Ok(());
    }
    if args.poison {
        let report = poison::run(&url, args.concurrency).await?;
        #[allow(clippy::print_stdout)]
        {
            println!("{report}");
        }
        return Ok(());
    }
    let namespace = format!("bench{}", std::process::id());
    let durability = match args.wait_replicas {
        0 => Durability::Primary,
        replicas => Durability::Replicated {
            replicas,
            timeout: Duration::from_secs(1),
        },
    };
    let encrypt = args.padding.is_some_and(|(_, sealed)| sealed);
    let mut builder = Client::builder(&url)
        .namespace(namespace.as_str())
        .tls(tls)
        .durability(durability);
    if encrypt {
        builder = builder.keyring(spool_client::Keyring::new(
            "bench",
            spool_client::Keyring::generate_key(),
        )?);
    }
    let client = builder.connect().await?;

    if let Some(level) = args.events {
        let config = spool_client::EventsConfig {
            level,
            ..spool_client::EventsConfig::default()
        };
        for q in &queues {
            client.admin().configure_events(q, config).await?;
        }
    }
    let events_level = client.admin().events_config(&queues[0]).await?.level;
    if let Some(limit) = args.concurrency_limit {
        for q in &queues {
            client.admin().set_concurrency_limit(q, Some(limit)).await?;
        }
    }
    for q in &queues {
        if let Some(rate) = &args.rate_limit {
            client
                .admin()
                .set_rate_limit(q, Some(rate.parse()?))
                .await?;
        }
        if let Some(rate) = &args.key_rate {
            client
                .admin()
                .set_key_rate_limit(q, Some(rate.parse()?))
                .await?;
        }
    }

    // 1. Enqueue and memory.
    let jobs: Vec<BenchNoop> = (0..args.jobs)
        .map(|i| BenchNoop {
            t: 0,
            g: args.groups.map_or(0, |n| i % n.max(1) + 1),
            k: args.rate_keys.map_or(0, |n| i % n.max(1) + 1),
            // `{"t":0,"p":""}` is 14 bytes.
            p: "x".repeat(args.padding.map_or(0, |(n, _)| n.saturating_sub(14))),
        })
        .collect();
    // One job in a queue of its own first: the scripts are loaded (and the
    // connection warm) before the memory baseline, so Redis's script cache
    // is not counted as the jobs' memory.
    client
        .enqueue_with(
            &BenchNoop::plain(0),
            EnqueueOptions::new().queue(format!("{}-warmup", queues[0])),
        )
        .await?;
    let mem_before = topology::info_sum(&client, "memory", &["used_memory:"]).await?;
    let keep = Duration::from_secs(args.keep_outcome_s);
    let opts = |queue: &str| {
        let o = EnqueueOptions::new().queue(queue).keep_outcome(keep);
        if encrypt {
            o.encrypted()
        } else {
            o
        }
    };
    let cpu = ["used_cpu_user:", "used_cpu_sys:"];
    let enqueue_cpu_before = (
        topology::info_sum(&client, "cpu", &cpu).await?,
        fleet::cpu_us("self"),
    );
    let t = Instant::now();
    // With --priorities, chunks of 1,000 go to levels 0, 1 and 2 in turn.
    let chunk_len = if args.priorities { 1_000 } else { 10_000 };
    for (i, chunk) in jobs.chunks(chunk_len).enumerate() {
        let queue = &queues[i % queues.len()];
        let level = if args.priorities {
            i8::try_from(i % 3)?
        } else {
            0
        };
        client
            .enqueue_bulk_with(chunk, opts(queue).priority(level))
            .await?;
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    // CPU per job enqueued: Redis's, and this process's (the producer).
    let enqueue_cpu = (
        (topology::info_sum(&client, "cpu", &cpu).await? - enqueue_cpu_before.0) * 1e6
            / args.jobs as f64,
        (fleet::cpu_us("self") - enqueue_cpu_before.1) / args.jobs as f64,
    );
    let mem_after = topology::info_sum(&client, "memory", &["used_memory:"]).await?;
    drop(jobs);
    let bytes_per_job = (mem_after - mem_before) / args.jobs as f64;

    // 2. Drain with one worker.
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let returned_at: Arc<Mutex<std::collections::HashMap<JobId, u64>>> = Arc::default();
    let processed = Arc::new(AtomicU64::new(0));
    let (lat_log, count, returns) = (latencies.clone(), processed.clone(), returned_at.clone());
    let with_result = args.result;
    let mut worker = Worker::builder(client.clone());
    for q in &queues {
        worker = worker.queue(q, 1);
    }
    let worker = worker
        .concurrency(args.concurrency)
        .configure(|c| c.fetch_batch_max = args.concurrency.min(1000));
    // Records what the measurements need; the handler itself does nothing.
    let seen = move |ctx: &JobContext, job: &BenchNoop| {
        if job.t > 1 {
            let lat = now_us().saturating_sub(job.t);
            lat_log.lock().expect("latency lock").push(lat);
        }
        count.fetch_add(1, Ordering::Relaxed);
        if job.t == 1 {
            returns
                .lock()
                .expect("wait lock")
                .insert(ctx.id().clone(), now_us());
        }
    };
    let worker = if with_result {
        worker.register_returning(move |ctx: JobContext, job: BenchNoop| {
            seen(&ctx, &job);
            std::future::ready(Ok(job.t))
        })
    } else {
        worker.register(move |ctx: JobContext, job: BenchNoop| {
            seen(&ctx, &job);
            std::future::ready(Ok(()))
        })
    }
    .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Every command Redis ran (scripts' own commands included), and the
    // script calls among them (what the workers sent).
    let commands = ["total_commands_processed:"];
    let script_calls = ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_fcall:"];
    let cpu_before = topology::info_sum(&client, "cpu", &cpu).await?;
    let commands_before = topology::info_sum(&client, "stats", &commands).await?;
    let scripts_before = topology::info_sum(&client, "commandstats", &script_calls).await?;
    let worker_cpu_before = fleet::cpu_us("self");
    let t = Instant::now();
    let (handle, workers) = if args.workers > 0 {
        drop(worker);
        let fleet = fleet::Fleet::start(
            args.workers,
            &url,
            &namespace,
            &queues,
            args.concurrency,
            args.worker_threads,
        )?;
        (None, Some(fleet))
    } else {
        let run = tokio::spawn(worker.run_until(async {
            let _ = stop_rx.await;
        }));
        (Some(run), None)
    };
    let drain_limit = Duration::from_secs(600);
    if handle.is_some() {
        // This process's handler counts the jobs it ran: wait for them
        // without asking Redis, then for their acks. Asking Redis for the
        // queue's counts every 2 ms through the whole drain cost this
        // process about 4 % of the worker instructions per job it reports
        // (callgrind: the admin reads and their key names).
        while processed.load(Ordering::Relaxed) < args.jobs && t.elapsed() < drain_limit {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    wait_drained(&client, &queues, t, drain_limit).await?;
    let drain_s = t.elapsed().as_secs_f64();
    let per_job = |total: f64| total / args.jobs as f64;
    // Redis CPU per job drained (every primary): what sizes a fleet.
    let cpu_us_per_job =
        per_job((topology::info_sum(&client, "cpu", &cpu).await? - cpu_before) * 1e6);
    let commands_per_job =
        per_job(topology::info_sum(&client, "stats", &commands).await? - commands_before);
    let scripts_per_job =
        per_job(topology::info_sum(&client, "commandstats", &script_calls).await? - scripts_before);
    // The worker processes' CPU (this process's, polling included, when
    // it drains itself).
    let worker_cpu_us_per_job = per_job(match &workers {
        Some(fleet) => fleet.cpu_us(),
        None => fleet::cpu_us("self") - worker_cpu_before,
    });
    let worker_rss_mb = rss_mb();
    if args.pause_after_drain_ms > 0 {
        // scripts/bench-instructions.sh ends its count at this line, before
        // the bench's own reads (the event stream, stats).
        #[allow(clippy::print_stderr)]
        {
            eprintln!("spool-bench: drained");
        }
        tokio::time::sleep(Duration::from_millis(args.pause_after_drain_ms)).await;
    }
    // The fields every run reports (a fleet run reports only these).
    let mut drain = serde_json::json!({
        "topology": if args.redis_url.is_some() { "url" } else { args.topology.as_str() },
        "queues": queues.len(),
        "workers": args.workers,
        "worker_threads": args.worker_threads,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "enqueue_s": round(enqueue_s),
        "enqueue_jobs_per_sec": (args.jobs as f64 / enqueue_s).round(),
        "enqueue_redis_cpu_us_per_job": round(enqueue_cpu.0),
        "enqueue_producer_cpu_us_per_job": round(enqueue_cpu.1),
        "drain_s": round(drain_s),
        "jobs_per_sec": (args.jobs as f64 / drain_s).round(),
        "redis_bytes_per_job": bytes_per_job.round(),
        "redis_cpu_us_per_job": round(cpu_us_per_job),
        "worker_cpu_us_per_job": round(worker_cpu_us_per_job),
        "redis_cmds_per_job": round(commands_per_job),
        "redis_scripts_per_job": round(scripts_per_job),
        "allocator": ALLOCATOR_NAME,
    });
    if let Some(fleet) = workers {
        fleet.stop()?;
        #[allow(clippy::print_stdout)]
        {
            println!("{drain}");
        }
        return Ok(());
    }
    // What the kept outcomes hold: the memory that deleting them frees.
    let bytes_per_kept_outcome = if args.keep_outcome_s > 0 {
        let mem_drained = topology::info_sum(&client, "memory", &["used_memory:"]).await?;
        drop_outcomes(&client, &queues).await?;
        let mem_cleared = topology::info_sum(&client, "memory", &["used_memory:"]).await?;
        Some((mem_drained - mem_cleared) / args.jobs as f64)
    } else {
        None
    };

    let bytes_per_event = event_bytes(&client, &queues).await?;

    // 3. Pick-up latency at a steady rate.
    let total = args.latency_rate * args.latency_seconds;
    let period = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..total {
        tick.tick().await;
        let c = client.clone();
        let opts = EnqueueOptions::new().queue(&queues[0]);
        pending.spawn(async move { c.enqueue_with(&BenchNoop::plain(now_us()), opts).await });
        while let Some(done) = pending.try_join_next() {
            done??;
        }
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (latencies.lock().expect("latency lock").len() as u64) < total {
        if Instant::now() > deadline {
            bail!("latency jobs did not all run");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // 3b. Wait: N jobs, each waited for; handler return to wait return.
    let mut wait_lat: Vec<u64> = Vec::new();
    if args.waiters > 0 {
        let mut waits = tokio::task::JoinSet::new();
        for _ in 0..args.waiters {
            tick.tick().await;
            let c = client.clone();
            let o = opts(&queues[0]);
            waits.spawn(async move {
                let id = c.enqueue_with(&BenchNoop::plain(1), o).await?.id;
                let s = c.wait(&id, Duration::from_secs(30)).await?;
                anyhow::ensure!(s.status.is_terminal(), "wait timed out: {s:?}");
                Ok::<_, anyhow::Error>((id, now_us()))
            });
        }
        while let Some(done) = waits.join_next().await {
            let (id, at) = done??;
            let back = returned_at.lock().expect("wait lock").get(&id).copied();
            if let Some(back) = back {
                wait_lat.push(at.saturating_sub(back));
            }
        }
        wait_lat.sort_unstable();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a rank in 1..=len
    let wait_pct = |p: f64| {
        (!wait_lat.is_empty()).then(|| {
            let i = ((wait_lat.len() as f64 * p).ceil() as usize).clamp(1, wait_lat.len()) - 1;
            round(wait_lat[i] as f64 / 1000.0)
        })
    };

    // 4. Idle cost: Redis commands per second while the worker has nothing to do.
    let idle = if args.idle_seconds > 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Commands the worker sent (script calls and blocking pops), from
        // INFO commandstats: `total_commands_processed` would also count
        // the commands each script runs inside Redis.
        let sent = [
            "cmdstat_evalsha:",
            "cmdstat_eval:",
            "cmdstat_fcall:",
            "cmdstat_blpop:",
        ];
        let before = topology::info_sum(&client, "commandstats", &sent).await?;
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        let after = topology::info_sum(&client, "commandstats", &sent).await?;
        Some((after - before) as f64 / args.idle_seconds as f64 / queues.len() as f64)
    } else {
        None
    };
    let _ = stop_tx.send(());
    if let Some(run) = handle {
        run.await??;
    }
    // 5. Scheduled-job lateness while a worker is busy with a backlog.
    let (sched_late, busy_left) = if args.sched_jobs > 0 {
        let (late, left) = lateness::run(
            &client,
            &queues[0],
            args.sched_jobs,
            args.jobs * 3,
            args.concurrency,
        )
        .await?;
        (late, Some(left))
    } else {
        (Vec::new(), None)
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a rank in 1..=len
    let sched_pct = |p: f64| {
        (!sched_late.is_empty()).then(|| {
            round(
                sched_late[((sched_late.len() as f64 * p).ceil() as usize)
                    .clamp(1, sched_late.len())
                    - 1],
            )
        })
    };
    let mut lat = latencies.lock().expect("latency lock").clone();
    lat.sort_unstable();
    // None without latency jobs (`--latency-seconds 0`).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a rank in 1..=len
    let pct = |p: f64| {
        (!lat.is_empty()).then(|| {
            round(
                lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1] as f64
                    / 1000.0,
            )
        })
    };

    let report = serde_json::json!({
        "wait_replicas": args.wait_replicas,
        "latency_rate_per_sec": args.latency_rate,
        "latency_jobs": lat.len(),
        "latency_p50_ms": pct(0.50),
        "latency_p99_ms": pct(0.99),
        "worker_rss_mb": round(worker_rss_mb),
        "keep_outcome_s": args.keep_outcome_s,
        "result": args.result,
        "redis_bytes_per_kept_outcome": bytes_per_kept_outcome.map(f64::round),
        "events": events_level.as_str(),
        "concurrency_limit": args.concurrency_limit,
        "rate_limit": args.rate_limit,
        "key_rate": args.key_rate,
        "rate_keys": args.rate_keys,
        "groups": args.groups,
        "priorities": args.priorities,
        "args_bytes": args.padding.map(|(n, _)| n),
        "encrypted": encrypt,
        "redis_bytes_per_event": bytes_per_event.map(f64::round),
        "waiters": args.waiters,
        "wait_p50_ms": wait_pct(0.50),
        "wait_p99_ms": wait_pct(0.99),
        "scheduled_jobs": args.sched_jobs,
        "scheduled_late_p50_ms": sched_pct(0.50),
        "scheduled_late_p99_ms": sched_pct(0.99),
        "scheduled_busy_left": busy_left,
        "processed": processed.load(Ordering::Relaxed),
        "idle_commands_per_sec_per_queue": idle.map(round),
    });
    if let (Some(all), Some(more)) = (drain.as_object_mut(), report.as_object()) {
        all.extend(more.clone());
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{drain}");
    }
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The memory of `queues`' event streams (`MEMORY USAGE`, every node
/// sampled) per event they hold (an entry holds a batch), or `None` when
/// they hold fewer than 1,000.
async fn event_bytes(client: &Client, queues: &[String]) -> anyhow::Result<Option<f64>> {
    let mut conn = client.connection();
    let (mut bytes, mut entries) = (0u64, 0u64);
    for queue in queues {
        let keys = client.queue_keys(queue)?;
        let len = client
            .admin()
            .recent_events(&[queue.as_str()], None, 10_000_000)
            .await?
            .len() as u64;
        let used: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&keys.events)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut conn)
            .await?;
        bytes += used.unwrap_or(0);
        entries += len;
    }
    Ok((entries >= 1000).then(|| bytes as f64 / entries as f64))
}

/// Deletes every kept outcome of `queues` (their buckets and index).
async fn drop_outcomes(client: &Client, queues: &[String]) -> anyhow::Result<()> {
    let mut conn = client.connection();
    for queue in queues {
        let keys = client.queue_keys(queue)?;
        let ends: Vec<i64> = redis::cmd("ZRANGE")
            .arg(&keys.outcomes)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        for end in ends {
            let _: () = redis::cmd("DEL")
                .arg(keys.outcome_bucket(end))
                .query_async(&mut conn)
                .await?;
        }
        let _: () = redis::cmd("DEL")
            .arg(&keys.outcomes)
            .query_async(&mut conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_worker_threads;

    /// A Redis on this machine leaves it a core; one elsewhere does not.
    #[test]
    fn the_default_threads_leave_a_local_redis_a_core() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let local = cores.saturating_sub(1).max(1);
        for url in [
            None,
            Some("redis://127.0.0.1:6379"),
            Some("rediss://127.0.0.2:7000/0"),
            Some("redis://localhost"),
            Some("redis://user:secret@[::1]:6380"),
            Some("redis+unix:///tmp/redis.sock"),
            Some("unix:///tmp/redis.sock"),
        ] {
            assert_eq!(default_worker_threads(url), local, "{url:?}");
        }
        for url in [
            "redis://10.0.0.5:6379",
            "rediss://redis.example.com",
            "redis://[2001:db8::1]",
        ] {
            assert_eq!(default_worker_threads(Some(url)), cores, "{url}");
        }
    }
}
