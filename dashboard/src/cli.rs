//! The `spool` command-line tool, as a library function so tests drive it
//! in-process and the binary stays a shim.
//!
//! ```text
//! spool stats [--json]                 totals across queues
//! spool queues [--json]                one line per queue
//! spool dead list [--queue Q] [--type T] [--grep S] [--limit N] [--json]
//! spool dead retry  (ID… | --all | --type T | --grep S) [--queue Q]
//! spool dead delete (ID… | --all | --type T | --grep S) [--queue Q]
//! spool pause QUEUE | spool resume QUEUE
//! spool cron list | spool cron run NAME
//! spool enqueue QUEUE TYPE JSON_ARGS [--at RFC3339 | --in DURATION]
//! ```
//!
//! Exit codes a script can rely on: 0 success, 1 operational error (Redis
//! unreachable, job not found, nothing to act on by id), 2 usage error (bad
//! flags, malformed JSON, duration or time). Errors go to stderr as one
//! `error: …` line; results go to stdout.

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use spool_client::admin::{JobFilter, JobView};
use spool_client::{Admin, Client, EnqueueOptions, JobDefaults, JobSet};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command was understood but failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line was wrong.
pub const EXIT_USAGE: u8 = 2;

/// Dead-set entries a filtered `dead` command examines per queue.
const DEAD_SCAN_WINDOW: u64 = 1_000_000;

/// Operate and inspect Spool job queues.
#[derive(Debug, Parser)]
#[command(name = "spool", version, about)]
struct Cli {
    /// Redis URL.
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Key namespace.
    #[arg(long, global = true, env = "SPOOL_NAMESPACE", default_value = spool_client::NAMESPACE_DEFAULT)]
    namespace: String,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Totals: processed, failed, ready, busy, scheduled, retry, dead, processes.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every queue with its counts and latency.
    Queues {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and repair the dead sets.
    Dead {
        #[command(subcommand)]
        cmd: DeadCmd,
    },
    /// Stop workers fetching from a queue (enqueues still land).
    Pause {
        /// Queue name.
        queue: String,
    },
    /// Let workers fetch from a paused queue again.
    Resume {
        /// Queue name.
        queue: String,
    },
    /// Cron entries.
    Cron {
        #[command(subcommand)]
        cmd: CronCmd,
    },
    /// Enqueue one job with raw JSON args; prints its id.
    Enqueue {
        /// Queue name.
        queue: String,
        /// Job type name.
        job_type: String,
        /// Args as JSON (e.g. '{"to":"ada@example.com"}').
        json_args: String,
        /// Run at this time (RFC 3339, e.g. 2030-01-01T09:00:00Z).
        #[arg(long, conflicts_with = "delay")]
        at: Option<String>,
        /// Run after this delay (e.g. 90s, 5m, 1h30m, 2d).
        #[arg(long = "in", id = "delay")]
        delay: Option<String>,
        /// Attempts allowed (default 25).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Idempotency key: a second enqueue with the same key returns the first job.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DeadCmd {
    /// List dead jobs, most recent first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Most jobs to print (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move dead jobs back to ready: by id, every one (--all), or by filter.
    Retry(Selection),
    /// Delete dead jobs: by id, every one (--all), or by filter.
    Delete(Selection),
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Only this queue (default: every queue).
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs of this type.
    #[arg(long = "type")]
    job_type: Option<String>,
    /// Only jobs whose args or errors contain this text (case-insensitive).
    #[arg(long)]
    grep: Option<String>,
}

#[derive(Debug, Args)]
struct Selection {
    /// Job ids.
    ids: Vec<String>,
    /// Every dead job (of --queue, or of every queue), or every job matching --type/--grep.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Debug, Subcommand)]
enum CronCmd {
    /// List cron entries.
    List,
    /// Enqueue a cron entry's job now (prints the job id).
    Run {
        /// Entry name.
        name: String,
    },
}

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Op(String),
}

impl From<spool_client::Error> for Failure {
    fn from(e: spool_client::Error) -> Self {
        match e {
            spool_client::Error::InvalidQueueName { .. }
            | spool_client::Error::InvalidArgument(_)
            | spool_client::Error::PayloadTooLarge { .. } => Self::Usage(e.to_string()),
            other => Self::Op(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Op(format!("cannot write output: {e}"))
    }
}

type CliResult = Result<(), Failure>;

/// Runs `spool` with `args` (the program name first), writing results to
/// `out` and errors to `err`. Returns the exit code.
pub async fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(out, "{e}");
                    return EXIT_OK;
                }
                _ => EXIT_USAGE,
            };
            let _ = write!(err, "{}", e.render());
            return code;
        }
    };
    match execute(cli, out).await {
        Ok(()) => EXIT_OK,
        Err(Failure::Usage(m)) => {
            let _ = writeln!(err, "error: {m}");
            EXIT_USAGE
        }
        Err(Failure::Op(m)) => {
            let _ = writeln!(err, "error: {m}");
            EXIT_FAILURE
        }
    }
}

async fn execute(cli: Cli, out: &mut dyn Write) -> CliResult {
    // Validate what can be validated before touching Redis, so a usage
    // error is reported as one even when Redis is down.
    if let Command::Enqueue {
        json_args,
        at,
        delay,
        ..
    } = &cli.cmd
    {
        parse_args_json(json_args)?;
        if let Some(at) = at {
            parse_at(at)?;
        }
        if let Some(d) = delay {
            parse_duration(d)?;
        }
    }
    let client = Client::builder(&cli.redis_url)
        .namespace(&cli.namespace)
        .connect()
        .await
        .map_err(|e| match e {
            spool_client::Error::InvalidArgument(m) => Failure::Usage(m),
            other => Failure::Op(other.to_string()),
        })?;
    let admin = client.admin();
    match cli.cmd {
        Command::Stats { json } => stats(&admin, json, out).await,
        Command::Queues { json } => queues(&admin, json, out).await,
        Command::Dead { cmd } => dead(&admin, cmd, out).await,
        Command::Pause { queue } => {
            admin.pause(&queue).await?;
            writeln!(out, "paused {queue}")?;
            Ok(())
        }
        Command::Resume { queue } => {
            admin.resume(&queue).await?;
            writeln!(out, "resumed {queue}")?;
            Ok(())
        }
        Command::Cron { cmd } => cron(&admin, cmd, out).await,
        Command::Enqueue {
            queue,
            job_type,
            json_args,
            at,
            delay,
            max_attempts,
            idempotency_key,
        } => {
            let args = parse_args_json(&json_args)?;
            let mut opts = EnqueueOptions::new().queue(queue);
            if let Some(at) = at {
                opts = opts.at(parse_at(&at)?);
            }
            if let Some(d) = delay {
                opts = opts.delay(parse_duration(&d)?);
            }
            if let Some(n) = max_attempts {
                opts = opts.max_attempts(n);
            }
            if let Some(k) = idempotency_key {
                opts = opts.idempotency_key(k);
            }
            let e = client
                .enqueue_raw(&job_type, &args, &JobDefaults::default(), opts)
                .await?;
            if e.duplicate {
                writeln!(out, "{} (duplicate: already enqueued with this key)", e.id)?;
            } else {
                writeln!(out, "{}", e.id)?;
            }
            Ok(())
        }
    }
}

fn parse_args_json(s: &str) -> Result<Box<serde_json::value::RawValue>, Failure> {
    serde_json::value::RawValue::from_string(s.to_owned())
        .map_err(|e| Failure::Usage(format!("JSON_ARGS is not valid JSON: {e}")))
}

fn parse_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| Failure::Usage(format!("--at {s:?} is not an RFC 3339 time: {e}")))
}

/// Parses `90s`, `5m`, `1h30m`, `2d`, `250ms` (units ms, s, m, h, d).
fn parse_duration(s: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--in {s:?} is not a duration like 90s, 5m, 1h30m, 2d"
        ))
    };
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            "d" => Duration::from_secs(n.checked_mul(86_400).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(unit).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

async fn stats(admin: &Admin, json: bool, out: &mut dyn Write) -> CliResult {
    let queues = admin.queues().await?;
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let total = spool_client::admin::QueueStats::sum(&admin.stats_of(&names, 1).await?);
    let (processed, failed) = (total.processed, total.failed);
    let processes = admin.processes().await?.len() as u64;
    let sum = |f: fn(&spool_client::admin::QueueInfo) -> u64| queues.iter().map(f).sum::<u64>();
    let rows: [(&str, u64); 9] = [
        ("processed", processed),
        ("failed", failed),
        ("ready", sum(|q| q.ready)),
        ("busy", sum(|q| q.active)),
        ("scheduled", sum(|q| q.scheduled)),
        ("retry", sum(|q| q.retry)),
        ("dead", sum(|q| q.dead)),
        ("processes", processes),
        ("queues", queues.len() as u64),
    ];
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(map))?;
    } else {
        for (k, v) in rows {
            writeln!(out, "{k:<10} {v:>12}")?;
        }
    }
    Ok(())
}

async fn queues(admin: &Admin, json: bool, out: &mut dyn Write) -> CliResult {
    let queues = admin.queues().await?;
    if json {
        writeln!(out, "{}", json!(queues))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>8} {:>10} {:>8} {:>8}  state",
        "queue", "ready", "latency", "busy", "scheduled", "retry", "dead"
    )?;
    for q in queues {
        writeln!(
            out,
            "{:<24} {:>10} {:>9}s {:>8} {:>10} {:>8} {:>8}  {}",
            q.name,
            q.ready,
            q.latency.as_secs(),
            q.active,
            q.scheduled,
            q.retry,
            q.dead,
            if q.paused { "paused" } else { "running" }
        )?;
    }
    Ok(())
}

/// The queues a dead command covers.
async fn target_queues(admin: &Admin, f: &FilterArgs) -> Result<Vec<String>, Failure> {
    match &f.queue {
        Some(q) => {
            spool_client::validate_queue_name(q)?;
            Ok(vec![q.clone()])
        }
        None => Ok(admin.queue_names().await?),
    }
}

async fn dead(admin: &Admin, cmd: DeadCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        DeadCmd::List {
            filter,
            limit,
            json,
        } => {
            let f = JobFilter::new(filter.job_type.as_deref(), filter.grep.as_deref())?;
            let limit = usize::from(limit);
            let mut jobs: Vec<JobView> = Vec::new();
            for q in target_queues(admin, &filter).await? {
                let want = limit - jobs.len();
                if want == 0 {
                    break;
                }
                let items = if f.is_empty() {
                    admin.list_set(&q, JobSet::Dead, 0, want).await?.items
                } else {
                    admin
                        .scan_set(&q, JobSet::Dead, &f, 0, want, DEAD_SCAN_WINDOW)
                        .await?
                        .items
                };
                jobs.extend(items);
            }
            if json {
                writeln!(out, "{}", json!(jobs))?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<16} {:<36} {:<20} {:<24} error",
                "queue", "id", "type", "died"
            )?;
            for j in &jobs {
                let died = j
                    .at_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                let error: String = j
                    .last_error()
                    .map(|e| e.error.replace('\n', " ").chars().take(80).collect())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:<16} {:<36} {:<20} {:<24} {error}",
                    j.queue,
                    j.id,
                    j.job_type(),
                    died
                )?;
            }
            Ok(())
        }
        DeadCmd::Retry(sel) => act(admin, sel, true, out).await,
        DeadCmd::Delete(sel) => act(admin, sel, false, out).await,
    }
}

async fn act(admin: &Admin, sel: Selection, retry: bool, out: &mut dyn Write) -> CliResult {
    let f = JobFilter::new(sel.filter.job_type.as_deref(), sel.filter.grep.as_deref())?;
    if sel.ids.is_empty() && !sel.all && f.is_empty() {
        return Err(Failure::Usage(
            "say which jobs: job ids, --all, or a filter (--type, --grep)".to_owned(),
        ));
    }
    if !sel.ids.is_empty() && !f.is_empty() {
        return Err(Failure::Usage(
            "give job ids or a filter, not both".to_owned(),
        ));
    }
    let verb = if retry { "retried" } else { "deleted" };
    let mut total = 0;
    let queues = target_queues(admin, &sel.filter).await?;
    if !sel.ids.is_empty() {
        let ids: Vec<&str> = sel.ids.iter().map(String::as_str).collect();
        for q in &queues {
            total += if retry {
                admin.retry_jobs(q, JobSet::Dead, &ids).await?
            } else {
                admin.delete_jobs(q, JobSet::Dead, &ids).await?
            };
        }
        writeln!(out, "{verb} {total} jobs")?;
        if total < ids.len() as u64 {
            return Err(Failure::Op(format!(
                "{} of {} ids were not in a dead set (already retried or deleted?)",
                ids.len() as u64 - total,
                ids.len()
            )));
        }
        return Ok(());
    }
    for q in &queues {
        total += if f.is_empty() {
            if retry {
                admin.retry_all(q, JobSet::Dead).await?
            } else {
                admin.delete_all(q, JobSet::Dead).await?
            }
        } else {
            let (ids, _) = admin
                .matching_ids(q, JobSet::Dead, &f, DEAD_SCAN_WINDOW)
                .await?;
            let ids: Vec<&str> = ids.iter().map(spool_client::JobId::as_str).collect();
            if retry {
                admin.retry_jobs(q, JobSet::Dead, &ids).await?
            } else {
                admin.delete_jobs(q, JobSet::Dead, &ids).await?
            }
        };
    }
    writeln!(out, "{verb} {total} jobs")?;
    Ok(())
}

async fn cron(admin: &Admin, cmd: CronCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        CronCmd::List => {
            let entries = admin.cron_entries().await?;
            if entries.is_empty() {
                writeln!(out, "no cron table is registered")?;
                return Ok(());
            }
            let time = |ms: Option<i64>| {
                ms.and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(
                        || "-".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
                    )
            };
            writeln!(
                out,
                "{:<24} {:<18} {:<16} {:<12} {:<20} {:<20} {:<8} last job",
                "name", "schedule", "zone", "queue", "next run (UTC)", "last run (UTC)", "state"
            )?;
            for e in entries {
                writeln!(
                    out,
                    "{:<24} {:<18} {:<16} {:<12} {:<20} {:<20} {:<8} {}",
                    e.name,
                    e.schedule,
                    e.timezone,
                    e.queue,
                    time(e.next_run_ms),
                    time(e.last_run_ms),
                    if e.paused { "paused" } else { "active" },
                    e.last_job_id
                        .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                )?;
            }
            Ok(())
        }
        CronCmd::Run { name } => {
            spool_client::validate_cron_name(&name).map_err(Failure::Usage)?;
            match admin.cron_run_now(&name).await {
                Ok(e) => {
                    if e.duplicate {
                        writeln!(out, "{} (duplicate: run a moment ago)", e.id)?;
                    } else {
                        writeln!(out, "{}", e.id)?;
                    }
                    Ok(())
                }
                Err(spool_client::Error::UnknownCronEntry(n)) => Err(Failure::Op(format!(
                    "no live cron entry {n:?} (is a worker with this cron table running?)"
                ))),
                Err(e) => Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        let d = |s| parse_duration(s).ok();
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "5", "m", "5x", "-5s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
