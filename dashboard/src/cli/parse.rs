//! The `spool` command line: clap definitions and the value parsers that
//! check each flag before anything touches Redis (a malformed or
//! out-of-range value is a usage error, exit 2, even with Redis down).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::params::canonical;

/// Longest `--in` delay: 100 years (36500d). Longer is surely a typo
/// (`200000000000d`) and would overflow the millisecond timestamps of the
/// protocol. (`--at` needs no bound: RFC 3339 years end at 9999, which fits.)
pub(crate) const DELAY_MAX: Duration = Duration::from_secs(100 * 365 * 86_400);
/// Largest `--max-attempts`.
pub(crate) const MAX_ATTEMPTS_MAX: u32 = 10_000;

/// Operate and inspect Spool job queues.
#[derive(Debug, Parser)]
#[command(name = "spool", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) redis: super::RedisArgs,
    #[command(subcommand)]
    pub(crate) cmd: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Stop workers fetching from a queue (enqueues still land). Exit 2 for
    /// a queue Spool does not know, unless --create.
    Pause {
        /// Queue name.
        queue: String,
        /// Pause it even though no job or worker has used it yet (it is
        /// registered, and starts paused).
        #[arg(long)]
        create: bool,
    },
    /// Let workers fetch from a paused queue again. Exit 2 for a queue
    /// Spool does not know.
    Resume {
        /// Queue name.
        queue: String,
    },
    /// Fleet-wide settings of a queue.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
    /// Cron entries.
    Cron {
        #[command(subcommand)]
        cmd: CronCmd,
    },
    /// Enqueue one job with raw JSON args; prints its id alone on stdout.
    Enqueue(EnqueueArgs),
    /// Where a job is: state, attempts, times, worker, last error, result,
    /// timeline. Exit 1 when it is unknown.
    Status {
        /// Job id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until a job finishes; exit 0 when done, 1 when dead, cancelled,
    /// unknown or still running at the timeout.
    Wait {
        /// Job id.
        id: String,
        /// Longest wait (e.g. 30s, 5m).
        #[arg(long, default_value = "30s", value_parser = delay)]
        timeout: Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job: at once when queued; a running job's worker is told and
    /// the job ends cancelled when its run stops.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Batches and chains: their progress, callbacks and members.
    Batch {
        #[command(subcommand)]
        cmd: BatchCmd,
    },
    /// The latest job events and operator actions, oldest first; with
    /// --follow, then every new one as it happens (until interrupted).
    Events {
        /// Keep printing new events.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only events of this kind (succeeded, dead, retried, …) or of jobs
        /// of this type; repeat for several.
        #[arg(long = "type", value_name = "T")]
        types: Vec<String>,
        /// Only this queue; repeat for several (default: every queue).
        #[arg(long = "queue", value_name = "Q")]
        queues: Vec<String>,
        /// How many of the latest events to print first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The Lua scripts a producer in another language loads (docs/PROTOCOL.md);
    /// needs no Redis.
    Protocol {
        #[command(subcommand)]
        cmd: ProtocolCmd,
    },
}

/// `spool protocol …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProtocolCmd {
    /// Every script's name and the SHA-1 of its full text (what `SCRIPT LOAD`
    /// returns), one `name sha` line each.
    List,
    /// One script's full text, shared helpers included: load it with `SCRIPT
    /// LOAD` as it is. Exit 2 for an unknown name.
    Script {
        /// The script's name (`enqueue`, `cancel`, … as `list` prints them).
        name: String,
    },
}

/// `spool queue …`.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCmd {
    /// Set the queue's global concurrency limit: at most N of its jobs
    /// running at once across every worker; `none` lifts it.
    Limit {
        /// Queue name.
        queue: String,
        /// The limit (1 to 1000000), or `none`.
        #[arg(value_parser = concurrency_limit)]
        limit: LimitArg,
    },
    /// Set the queue's rate limit: at most JOBS started per PERIOD across
    /// every worker (`100/1s`, `10/1m`, `100/1s burst 10`); `none` lifts it.
    Rate {
        /// Queue name.
        queue: String,
        /// JOBS/PERIOD, or `none`.
        #[arg(value_parser = rate_limit)]
        rate: ControlArg<spool_client::admin::RateLimit>,
    },
    /// Set the rate limit of each rate key of the queue's jobs (a tenant, an
    /// account): JOBS/PERIOD per key; `none` lifts it.
    KeyRate {
        /// Queue name.
        queue: String,
        /// JOBS/PERIOD, or `none`.
        #[arg(value_parser = rate_limit)]
        rate: ControlArg<spool_client::admin::RateLimit>,
    },
    /// Set the queue's circuit breaker, PERCENT/WINDOW/COOLDOWN/PROBES
    /// (`50/100/30s/3`: open at 50% of the last 100 runs failed, for 30s,
    /// close after 3 good probes); `none` removes it.
    Breaker {
        /// Queue name.
        queue: String,
        /// PERCENT/WINDOW/COOLDOWN/PROBES, or `none`.
        #[arg(value_parser = breaker)]
        breaker: ControlArg<spool_client::admin::Breaker>,
    },
    /// Set how the queue's ordered groups run: N/hold (N jobs of a group at
    /// once; a retrying job keeps its group's turn) or N/skip; `none` goes
    /// back to 1/hold.
    Groups {
        /// Queue name.
        queue: String,
        /// N/hold, N/skip or `none`.
        #[arg(value_parser = group_settings)]
        settings: ControlArg<spool_client::admin::GroupSettings>,
    },
    /// Close the queue's circuit breaker now.
    BreakerReset {
        /// Queue name.
        queue: String,
    },
    /// Forget a queue that has no jobs in any state and no worker serving
    /// it (a typo, a retired queue): it leaves `spool queues` and the
    /// dashboard, with its paused flag and settings. Exit 2 otherwise.
    Forget {
        /// Queue name.
        queue: String,
    },
}

/// A fleet control's value, or `none`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControlArg<T>(pub(crate) Option<T>);

fn control<T: std::str::FromStr<Err = spool_client::Error>>(
    raw: &str,
) -> Result<ControlArg<T>, String> {
    if raw == "none" {
        return Ok(ControlArg(None));
    }
    raw.parse::<T>()
        .map(|v| ControlArg(Some(v)))
        .map_err(|e| e.to_string())
}

fn rate_limit(raw: &str) -> Result<ControlArg<spool_client::admin::RateLimit>, String> {
    control(raw)
}

fn breaker(raw: &str) -> Result<ControlArg<spool_client::admin::Breaker>, String> {
    control(raw)
}

fn group_settings(raw: &str) -> Result<ControlArg<spool_client::admin::GroupSettings>, String> {
    control(raw)
}

/// A concurrency limit, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitArg(pub(crate) Option<u32>);

fn concurrency_limit(raw: &str) -> Result<LimitArg, String> {
    if raw == "none" {
        return Ok(LimitArg(None));
    }
    canonical(raw, &1u32, &1_000_000)
        .map(|n| LimitArg(Some(n)))
        .ok_or_else(|| "must be a number from 1 to 1000000, or none".to_owned())
}

/// `spool batch …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BatchCmd {
    /// One batch or chain: counts, state, callbacks, and its members (or
    /// links), all or those in one state. Exit 1 when it is unknown.
    Show {
        /// Batch id (`<queue>~<uuid>`, as `enqueue_batch` returned it).
        id: String,
        /// Only members in this state: pending, done, dead or cancelled.
        #[arg(long, value_parser = member_state)]
        state: Option<spool_client::MemberState>,
        /// Members to print (0 for none).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The latest batches and chains of every queue, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn member_state(raw: &str) -> Result<spool_client::MemberState, String> {
    spool_client::MemberState::parse(raw)
        .ok_or_else(|| "must be pending, done, dead or cancelled".to_owned())
}

/// `spool enqueue`.
#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    /// Queue name.
    pub(crate) queue: String,
    /// Job type name.
    pub(crate) job_type: String,
    /// Args as JSON (e.g. '{"to":"ada@example.com"}').
    #[arg(value_parser = args_json)]
    pub(crate) json_args: Box<serde_json::value::RawValue>,
    /// Run at this time (RFC 3339, e.g. 2030-01-01T09:00:00Z).
    #[arg(long, conflicts_with = "delay", value_parser = at_time)]
    pub(crate) at: Option<chrono::DateTime<chrono::Utc>>,
    /// Run after this delay (e.g. 90s, 5m, 1h30m, 2d; at most 36500d).
    #[arg(long = "in", id = "delay", value_parser = delay)]
    pub(crate) delay: Option<Duration>,
    /// Attempts allowed (default 25; 1 to 10000).
    #[arg(long, value_parser = attempts)]
    pub(crate) max_attempts: Option<u32>,
    /// Idempotency key: a second enqueue with the same key returns the first job.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// Keep the job's outcome this long after it finishes (e.g. 1h), for
    /// `spool status` and `spool wait`.
    #[arg(long, value_parser = delay)]
    pub(crate) keep_outcome: Option<Duration>,
    /// Priority within the queue, -9 to 9 (higher runs first; default 0).
    #[arg(long, value_parser = priority, allow_hyphen_values = true)]
    pub(crate) priority: Option<i8>,
}

fn priority(raw: &str) -> Result<i8, String> {
    let max = spool_client::PRIORITY_MAX;
    canonical(raw, &-max, &max).ok_or_else(|| format!("must be a number from -{max} to {max}"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeadCmd {
    /// List dead jobs, most recent first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Most jobs to print (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = limit)]
        limit: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move dead jobs back to ready: by id, every one (--all), or by filter.
    Retry(Selection),
    /// Delete dead jobs: by id, every one (--all), or by filter. --all and
    /// filters first say how many they would delete, and need --yes (or a
    /// "y" at the prompt on a terminal); --dry-run only says.
    Delete(Selection),
}

#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Only this queue (default: every queue).
    #[arg(long)]
    pub(crate) queue: Option<String>,
    /// Only jobs of this type.
    #[arg(long = "type")]
    pub(crate) job_type: Option<String>,
    /// Only jobs whose args or errors contain this text (case-insensitive).
    #[arg(long)]
    pub(crate) grep: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Selection {
    /// Job ids.
    pub(crate) ids: Vec<String>,
    /// Every dead job (of --queue, or of every queue), or every job matching --type/--grep.
    #[arg(long, conflicts_with = "ids")]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// Say how many jobs of which queues --all or the filter selects, and
    /// change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Act on --all or a filter without asking.
    #[arg(long, short = 'y', conflicts_with = "dry_run")]
    pub(crate) yes: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronCmd {
    /// List cron entries.
    List,
    /// Enqueue a cron entry's job now (prints the job id).
    Run {
        /// Entry name.
        name: String,
    },
}

/// Largest `dead list --limit`.
const LIMIT_MAX: u16 = 1000;

fn attempts(s: &str) -> Result<u32, String> {
    canonical(s, &1, &MAX_ATTEMPTS_MAX)
        .ok_or_else(|| format!("must be a whole number from 1 to {MAX_ATTEMPTS_MAX}"))
}

fn limit(s: &str) -> Result<u16, String> {
    canonical(s, &1, &LIMIT_MAX)
        .ok_or_else(|| format!("must be a whole number from 1 to {LIMIT_MAX}"))
}

fn args_json(s: &str) -> Result<Box<serde_json::value::RawValue>, String> {
    // Kept as raw text: validated, never parsed into a recursive value.
    serde_json::value::RawValue::from_string(s.to_owned())
        .map_err(|e| format!("JSON_ARGS is not valid JSON: {e}"))
}

fn at_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// `humantime` durations (`250ms`, `90s`, `5m`, `1h30m`, `2d`), positive
/// and at most [`DELAY_MAX`].
pub(crate) fn delay(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("not a duration like 90s, 5m, 1h30m, 2d ({e})"))?;
    if d > DELAY_MAX {
        return Err("longer than 100 years (36500d)".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_are_bounded() {
        let d = |s| delay(s).ok();
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("36500d"), Some(DELAY_MAX));
        for bad in ["", "5", "m", "5x", "-5s", "36501d", "200000000000d"] {
            assert!(delay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_times_are_rfc3339() {
        assert!(at_time("9999-12-31T23:59:59Z").is_ok());
        assert!(at_time("tomorrow").is_err());
    }
}
