//! The `spool` command-line tool, as a library function so tests drive it
//! in-process and the binary stays a shim.
//!
//! ```text
//! spool stats [--json]                 totals across queues
//! spool queues [--json]                one line per queue
//! spool dead list [--queue Q] [--type T] [--grep S] [--limit N] [--json]
//! spool dead retry  (ID… | --all | --type T | --grep S) [--queue Q] [--dry-run]
//! spool dead delete (ID… | --all | --type T | --grep S) [--queue Q] [--dry-run | --yes]
//! spool pause QUEUE [--create] | spool resume QUEUE
//! spool queue forget QUEUE             an empty queue no worker serves
//! spool cron list | spool cron run NAME
//! spool enqueue QUEUE TYPE JSON_ARGS [--at RFC3339 | --in DURATION]
//! spool protocol list | spool protocol script NAME   (no Redis needed)
//! ```
//!
//! Exit codes a script can rely on: 0 success, 1 operational error (Redis
//! unreachable, job not found, nothing to act on by id), 2 usage error or
//! refusal (bad flags, malformed JSON, duration or time, values out of
//! range; a queue Spool does not know, a bulk delete without `--yes`). A
//! Redis without any Spool data is said on stderr. Errors go
//! to stderr as one `error: …` line with any password in the Redis URL
//! replaced by `***`; results go to stdout.
//!
//! Layout: `parse` (clap definitions and value checks), `commands` (what
//! each command does), `output` (tables and JSON).

mod commands;
mod output;
mod parse;
mod redis_args;

pub use redis_args::RedisArgs;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser as _;

use parse::{Cli, Command};
use spool_client::{JobId, Status};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command was understood but failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line was wrong.
pub const EXIT_USAGE: u8 = 2;

/// Whether a bulk-destructive command may ask on the terminal before it
/// acts without `--yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Never ask: without `--yes` the command refuses (exit 2). What
    /// [`run`] does, so tests and scripts never block on stdin.
    Never,
    /// Ask on stderr and read the answer from stdin when both are
    /// terminals; refuse otherwise. What the `spool` binary does.
    Terminal,
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

/// Hides the password of `url` wherever it occurs in `text`: the URL
/// itself (replaced by its redacted form), and the bare password, which an
/// error message may quote on its own.
#[must_use]
pub fn scrub(text: &str, url: &str) -> String {
    let redacted = spool_client::redact_url(url);
    let mut out = text.replace(url, &redacted);
    for secret in passwords(url) {
        out = out.replace(secret, "***");
    }
    out
}

/// The passwords of a URL-ish string: the user-info's (or a lone
/// user-info) and the values of `…password=` query options.
fn passwords(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    // Query options first: an `@` in their values is not the user-info's end.
    let mut userinfo_end = url.len();
    for (at, _) in url.match_indices(['?', '&']) {
        let option = &url[at + 1..];
        let option = &option[..option.find(['&', '#']).unwrap_or(option.len())];
        if let Some((key, value)) = option.split_once('=') {
            if key.to_ascii_lowercase().ends_with("password") {
                found.push(value);
                userinfo_end = userinfo_end.min(at);
            }
        }
    }
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..userinfo_end.max(start)];
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        found.push(userinfo.split_once(':').map_or(userinfo, |(_, p)| p));
    }
    // Replacing a one- or two-character "password" everywhere would garble
    // the message; such a password is not worth hiding more than the URL is.
    found.retain(|s| s.len() >= 3);
    found
}

/// [`scrub`] for every command-line argument that may carry credentials
/// (anything with an `@`) and for `REDIS_URL`: what both binaries apply to
/// any text they print before they know which argument is the URL (clap
/// errors may quote any argument).
#[must_use]
pub fn scrub_all(text: &str, args: &[OsString]) -> String {
    let env = std::env::var("REDIS_URL").ok();
    args.iter()
        .filter_map(|a| a.to_str())
        .map(|a| a.strip_prefix("--redis-url=").unwrap_or(a))
        .chain(env.as_deref())
        .filter(|a| a.contains('@') || a.to_ascii_lowercase().contains("password="))
        .fold(text.to_owned(), |t, url| scrub(&t, url))
}

/// A tokio runtime for a binary's `main`, or exit code 1 with the reason
/// on stderr.
///
/// # Errors
/// The exit code to return when the runtime cannot start.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {e}");
        std::process::ExitCode::from(EXIT_FAILURE)
    })
}

/// Runs `spool` with `args` (the program name first), writing results to
/// `out` and errors to `err`, never prompting ([`Prompt::Never`]). Returns
/// the exit code.
pub async fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(args, out, err, Prompt::Never).await
}

/// [`run`], asking before bulk-destructive commands as `prompt` says.
pub async fn run_with<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, prompt: Prompt) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let hide = |text: &str| scrub_all(text, &args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = write!(out, "{}", hide(&e.to_string()));
                return EXIT_OK;
            }
            let _ = write!(err, "{}", hide(&e.render().to_string()));
            return EXIT_USAGE;
        }
    };
    let url = cli.redis.redis_url.clone();
    let (code, msg) = match execute(cli, prompt, out, err).await {
        Ok(()) => return EXIT_OK,
        Err(Failure::Usage(m)) => (EXIT_USAGE, m),
        Err(Failure::Op(m)) => (EXIT_FAILURE, m),
    };
    let _ = writeln!(err, "error: {}", hide(&scrub(&msg, &url)));
    code
}

async fn execute(cli: Cli, prompt: Prompt, out: &mut dyn Write, err: &mut dyn Write) -> CliResult {
    if let Command::Protocol { cmd } = &cli.cmd {
        return commands::protocol(cmd, out);
    }
    let client = cli
        .redis
        .client_builder()
        .connect()
        .await
        .map_err(|e| match e {
            spool_client::Error::InvalidArgument(m) => Failure::Usage(m),
            other => Failure::Op(other.to_string()),
        })?;
    let admin = client.admin().with_actor(&cli_actor());
    let cx = commands::Cx {
        admin: &admin,
        redis: &cli.redis,
        prompt,
    };
    match cli.cmd {
        Command::Stats { json } => commands::stats_or_queues(&cx, true, json, out, err).await,
        Command::Queues { json } => commands::stats_or_queues(&cx, false, json, out, err).await,
        Command::Dead { cmd } => commands::dead(&cx, cmd, out, err).await,
        Command::Pause { queue, create } => {
            if !create {
                commands::known_queue(&admin, &queue, "pause it anyway with --create").await?;
            }
            admin.pause(&queue).await?;
            writeln!(out, "paused {queue}")?;
            Ok(())
        }
        Command::Resume { queue } => {
            commands::known_queue(&admin, &queue, "nothing to resume").await?;
            admin.resume(&queue).await?;
            writeln!(out, "resumed {queue}")?;
            Ok(())
        }
        Command::Cron { cmd } => commands::cron(&admin, cmd, out).await,
        Command::Queue { cmd } => commands::queue(&admin, cmd, out).await,
        Command::Enqueue(a) => commands::enqueue(&client, a, out, err).await,
        Command::Status { id, json } => {
            let s = client.status(&JobId::from(id.as_str())).await?;
            commands::print_status(&s, json, out, |st| st != Status::Unknown)
        }
        Command::Wait { id, timeout, json } => {
            let s = client.wait(&JobId::from(id.as_str()), timeout).await?;
            commands::print_status(&s, json, out, |st| st == Status::Done)
        }
        Command::Cancel { id } => commands::cancel(&admin, &id, out).await,
        Command::Batch { cmd } => commands::batch(&admin, cmd, out).await,
        Command::Protocol { cmd } => commands::protocol(&cmd, out),
        Command::Events {
            follow,
            types,
            queues,
            limit,
            json,
        } => {
            let filter = commands::EventFilter { types, queues };
            commands::events(&admin, &filter, limit, follow, json, out).await
        }
    }
}

/// The actor the CLI's operator actions name in events: `cli:user@host`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = hostname::get().map_or_else(
        |_| "unknown-host".to_owned(),
        |h| h.to_string_lossy().into_owned(),
    );
    format!("cli:{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_the_url_and_the_bare_password() {
        let url = "redis://:hunter22@db:6379";
        let msg = format!("redis url {url:?}: bad; also hunter22 alone");
        let s = scrub(&msg, url);
        assert!(!s.contains("hunter22"), "{s}");
        assert!(s.contains("redis://:***@db:6379"), "{s}");
    }
}
