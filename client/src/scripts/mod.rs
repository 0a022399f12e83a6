//! The Lua scripts, one per arrow of the job life cycle, and the plumbing to
//! run them (EVALSHA, loading on `NOSCRIPT`, pipelining).
//!
//! Runtime protocol, not for application code: `Client`, `Admin` and the
//! lease API in [`crate::lease`] are the only callers. Every script reads
//! `TIME` itself (DESIGN invariant 3) and receives every key it touches in
//! `KEYS` (invariant 7). Each `.lua` file starts with its contract.
//!
//! **Functions.** Redis runs an `EVALSHA` script's whole chunk on every
//! call: each prelude helper it carries is a closure made (and later
//! collected) again, about 70,000 instructions a call for fetch.lua (Redis
//! 7.0, callgrind), as much as 30 jobs' own work. So the worker's per-job
//! scripts (fetch, ack, fail) are also a Redis function library each
//! (`FUNCTION LOAD`, Redis 7.0+), whose helpers are made once per server,
//! and run with `FCALL`. The library is the same Lua: the prelude's
//! per-call state (its lowercase non-function locals, such as caches and
//! the string-function aliases, which a library's load cannot read) is
//! set again at the start of each call, exactly as the chunk would; its
//! `SPOOL_*` constants and functions are made once, and so are its memo
//! tables (`SPOOL_MEMO_*`: caches of pure functions, such as the text of
//! small integers, which then last from call to call). A server that has not
//! the library (restarted, flushed, a new Cluster node) answers `Function
//! not found`: it is loaded, as `NOSCRIPT` loads the scripts. A server
//! that refuses `FCALL` or `FUNCTION LOAD` (older than 7.0, or an ACL user
//! without them) gets the same scripts by `EVALSHA` from then on, in this
//! process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use redis::{FromRedisValue, Pipeline, RedisResult};

use crate::connection::Connection;

/// One Lua script (its source is kept for `SCRIPT LOAD`), and for the
/// worker's per-job scripts the same Lua as a function library.
#[derive(Debug)]
pub(crate) struct LuaScript {
    source: &'static str,
    script: redis::Script,
    function: Option<Function>,
}

/// A script as a Redis function: its library's source (`FUNCTION LOAD`)
/// and the one function it registers, named after the library's SHA-1 so
/// that two Spool versions on one server never replace each other's.
#[derive(Debug)]
struct Function {
    name: String,
    library: String,
}

/// Set once a server refused `FCALL` or `FUNCTION LOAD`: every script then
/// runs by `EVALSHA` in this process (the module's "Functions").
static FUNCTIONS_REFUSED: AtomicBool = AtomicBool::new(false);

impl LuaScript {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            script: redis::Script::new(source),
            function: None,
        }
    }

    /// The script `name` whose body is `body` (after its prelude parts),
    /// run as a function library when the server takes one.
    fn with_function(name: &str, body: &'static str) -> Self {
        let library = as_library(body);
        // The SHA-1 names the function: `redis::Script` computes it.
        let sha = redis::Script::new(&library).get_hash().to_owned();
        let fname = format!("spool_{name}_{}", &sha[..16]);
        Self {
            function: Some(Function {
                library: format!("#!lua name={fname}\n{library}").replace("@FUNCTION@", &fname),
                name: fname,
            }),
            ..Self::new(with_prelude(body))
        }
    }

    /// An `FCALL` (or `EVALSHA`) command with the given keys; add ARGV with
    /// `.arg()`. Every key must carry the same hash tag (one Cluster slot,
    /// DESIGN "Slots decide the shape"); debug builds, hence every test on
    /// a single node too, check it.
    pub(crate) fn cmd<K: AsRef<str>>(&self, keys: &[K]) -> redis::Cmd {
        debug_assert!(
            keys.windows(2)
                .all(|w| hash_tag(w[0].as_ref()) == hash_tag(w[1].as_ref())),
            "script keys span hash slots: {:?}",
            keys.iter().map(AsRef::as_ref).collect::<Vec<_>>()
        );
        let mut cmd = match &self.function {
            Some(f) if !FUNCTIONS_REFUSED.load(Ordering::Relaxed) => {
                let mut cmd = redis::cmd("FCALL");
                cmd.arg(&f.name);
                cmd
            }
            _ => {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(self.script.get_hash());
                cmd
            }
        };
        cmd.arg(keys.len());
        for key in keys {
            cmd.arg(key.as_ref());
        }
        cmd
    }
}

/// The part of `key` Redis Cluster hashes: the text between the first `{`
/// and the next `}` when not empty, else the whole key.
pub(crate) fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

/// `body` after the parts of `prelude.lua` it uses. Every script call runs
/// its whole chunk, so each helper it carries is a closure Redis creates
/// (and later collects) on every call: the whole prelude cost about 90,000
/// instructions per call (callgrind, Redis 7.0), a fetch or an ack of 60
/// jobs about 3 % of its cost. A part is a top-level definition (`local
/// function name` or `local name = …`) with the comments above it; one is
/// kept when the body, or a part kept, names it. Parts that define nothing
/// (top-level statements, if any) are always kept. Built once per process;
/// the result lives as long as the process (the scripts are static).
fn with_prelude(body: &str) -> &'static str {
    let mut source = String::with_capacity(body.len());
    for part in kept_parts(body) {
        source.push_str(part.text);
    }
    source.push_str(body);
    Box::leak(source.into_boxed_str())
}

/// The parts of `prelude.lua` that `body` needs, in the prelude's order
/// (see [`with_prelude`]).
fn kept_parts(body: &str) -> Vec<PreludePart<'static>> {
    let parts = prelude_parts(include_str!("prelude.lua"));
    let mut kept = vec![false; parts.len()];
    let mut used = body.to_owned();
    let mut grew = true;
    while grew {
        grew = false;
        for (part, keep) in parts.iter().zip(kept.iter_mut()) {
            if !*keep && part.names.iter().any(|n| names_word(&used, n)) {
                *keep = true;
                used.push_str(part.text);
                grew = true;
            }
        }
    }
    parts
        .into_iter()
        .zip(kept)
        .filter(|(part, keep)| *keep || part.names.is_empty())
        .map(|(part, _)| part)
        .collect()
}

/// `body` with its prelude parts as a function library's code (without its
/// `#!lua` line; `@FUNCTION@` stands for the function's name): the
/// module's "Functions". The prelude's functions and `SPOOL_*` constants
/// are made once, at `FUNCTION LOAD`; each of its other top-level locals
/// (one line each: caches, flags, the string-function aliases) is declared
/// where the prelude defines it and set at the start of every call, as the
/// chunk of an `EVALSHA` would set it. `KEYS` and `ARGV` are the call's.
fn as_library(body: &str) -> String {
    let mut code = String::from("local KEYS, ARGV\n");
    let mut per_call = String::new();
    for part in kept_parts(body) {
        let per_call_part = part.names.iter().any(|n| !n.starts_with("SPOOL_"))
            && part.text.lines().all(|l| !l.starts_with("local function "));
        if !per_call_part {
            code.push_str(part.text);
            continue;
        }
        for line in part.text.split_inclusive('\n') {
            if let Some((names, value)) =
                line.strip_prefix("local ").and_then(|l| l.split_once('='))
            {
                let names = names.trim();
                code.push_str("local ");
                code.push_str(names);
                code.push('\n');
                per_call.push_str("  ");
                per_call.push_str(names);
                per_call.push_str(" =");
                per_call.push_str(value);
            } else {
                assert!(
                    line.starts_with("--") || line.trim().is_empty(),
                    "a per-call prelude local is set on one line: {line}"
                );
                code.push_str(line);
            }
        }
    }
    code.push_str("local function spool_function_call(keys, args)\n  KEYS, ARGV = keys, args\n");
    code.push_str(&per_call);
    code.push_str(body);
    code.push_str(
        "\nend\nredis.register_function{function_name = '@FUNCTION@',\n  \
         callback = spool_function_call, flags = {'allow-oom'}}\n",
    );
    code
}

/// One top-level part of the prelude: its text (lines with their newlines)
/// and the names it defines.
struct PreludePart<'a> {
    text: &'a str,
    names: Vec<&'a str>,
}

/// Splits `prelude` into parts: a part ends where a top-level comment or
/// `local` starts after the part's own `local` line.
fn prelude_parts(prelude: &str) -> Vec<PreludePart<'_>> {
    let mut parts: Vec<PreludePart<'_>> = Vec::new();
    let (mut start, mut at, mut names) = (0, 0, Vec::new());
    for line in prelude.split_inclusive('\n') {
        let top = line.starts_with("local ") || line.starts_with("--");
        if top && !names.is_empty() {
            parts.push(PreludePart {
                text: &prelude[start..at],
                names: std::mem::take(&mut names),
            });
            start = at;
        }
        names.extend(defined_names(line));
        at += line.len();
    }
    parts.push(PreludePart {
        text: &prelude[start..],
        names,
    });
    parts
}

/// The names a top-level line defines: `local function f(` gives `f`,
/// `local a, b = …` gives `a` and `b`.
fn defined_names(line: &str) -> Vec<&str> {
    let Some(rest) = line.strip_prefix("local ") else {
        return Vec::new();
    };
    if let Some(f) = rest.strip_prefix("function ") {
        return f.split('(').next().map(str::trim).into_iter().collect();
    }
    rest.split_once('=')
        .map(|(names, _)| names.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// Whether `text` holds `name` as a whole Lua identifier.
fn names_word(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name)
        .any(|(i, _)| !text[..i].ends_with(ident) && !text[i + name.len()..].starts_with(ident))
}

/// The scripts that run once or more per job in a worker, run as Redis
/// functions (the module's "Functions").
const FUNCTION_SCRIPTS: [&str; 3] = ["fetch", "ack", "fail"];

/// Script `name` with body `body` (its files, without the prelude).
fn script(name: &str, body: &'static str) -> LuaScript {
    if FUNCTION_SCRIPTS.contains(&name) {
        LuaScript::with_function(name, body)
    } else {
        LuaScript::new(with_prelude(body))
    }
}

/// `name => ["file"]` registers `prelude.lua` (the parts `file.lua` uses:
/// [`with_prelude`]) followed by `file.lua`;
/// `name => ["job_record", "file"]` adds more shared Lua in between. Shared
/// helpers (clock, record parsing, wake-ups, error history) live in
/// `prelude.lua` and the job record builder in `job_record.lua`, so each
/// exists once in the source.
macro_rules! scripts {
    ($($field:ident => [$($file:literal),+]),* $(,)?) => {
        /// Every script Spool runs.
        #[derive(Debug)]
        pub(crate) struct Scripts {
            $(pub(crate) $field: LuaScript,)*
        }

        pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
            $($field: script(stringify!($field), concat!($(include_str!(concat!($file, ".lua"))),+)),)*
        });

        impl Scripts {
            fn all(&self) -> Vec<&LuaScript> {
                vec![$(&self.$field,)*]
            }

            /// The full source of the script named `name` (the `.lua` file
            /// name without extension), shared Lua included.
            pub(crate) fn source(&self, name: &str) -> Option<&'static str> {
                match name {
                    $(stringify!($field) => Some(self.$field.source),)*
                    _ => None,
                }
            }

            /// Every script's name and SHA-1 (hex, as `SCRIPT LOAD`
            /// returns it), in registration order.
            pub(crate) fn names_and_shas(&self) -> Vec<(&'static str, String)> {
                vec![$((stringify!($field), self.$field.script.get_hash().to_owned()),)*]
            }
        }
    };
}

scripts! {
    enqueue => ["job_record", "enqueue"],
    fetch => ["fetch"],
    ack => ["ack"],
    fail => ["fail"],
    extend => ["extend"],
    release => ["release"],
    reap => ["reap"],
    promote => ["promote"],
    requeue => ["requeue"],
    delete => ["delete"],
    trim => ["trim"],
    heartbeat => ["heartbeat"],
    process_signal => ["process_signal"],
    cron_tick => ["job_record", "cron_tick"],
    cron_register => ["cron_register"],
    pause => ["pause"],
    resume => ["resume"],
    clear_ready => ["ready_walk", "clear_ready"],
    register_queues => ["register_queues"],
    unregister_queues => ["unregister_queues"],
    forget_queue => ["forget_queue"],
    peek_ready => ["ready_walk", "peek_ready"],
    peek_set => ["peek_set"],
    find_ready => ["ready_walk", "find_ready"],
    delete_ready => ["ready_walk", "delete_ready"],
    cron_pause => ["cron_pause"],
    cron_forget => ["cron_forget"],
    status => ["status"],
    cancel => ["cancel"],
    cancel_ready => ["ready_walk", "cancel_ready"],
    unwait => ["unwait"],
    events_config => ["events_config"],
    queue_control => ["queue_control"],
    outbox_done => ["outbox_done"],
    batch_open => ["batch_shared", "batch_open"],
    batch_member => ["batch_shared", "batch_member"],
    batch_seal => ["batch_shared", "batch_seal"],
}

/// The script a command of Spool's calls, `EVALSHA sha …` or `FCALL name
/// …`, whether it is an `FCALL`, and the command's arguments after the
/// sha or name; `None` for any other command.
fn called_script(
    cmd: &redis::Cmd,
) -> Option<(&'static LuaScript, bool, impl Iterator<Item = &[u8]>)> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(bytes) => bytes,
        _ => &[][..],
    });
    let verb = args.next()?;
    let fcall = verb.eq_ignore_ascii_case(b"FCALL");
    if !fcall && !verb.eq_ignore_ascii_case(b"EVALSHA") {
        return None;
    }
    let named = args.next()?;
    let script = SCRIPTS.all().into_iter().find(|s| match &s.function {
        Some(f) if fcall => f.name.as_bytes() == named,
        _ => !fcall && s.script.get_hash().as_bytes() == named,
    })?;
    Some((script, fcall, args))
}

/// The library of the function an `FCALL` of Spool's calls, for loading it
/// on a Cluster node that answered `Function not found`.
pub(crate) fn library_called(cmd: &redis::Cmd) -> Option<&'static str> {
    match called_script(cmd)? {
        (script, true, _) => script.function.as_ref().map(|f| f.library.as_str()),
        _ => None,
    }
}

/// A command of Spool's sent again as its script: as `EVAL source n keys…
/// args…` when `eval` (`NOSCRIPT` or `Function not found` on a Cluster
/// node), else an `FCALL` as `EVALSHA sha n keys… args…` (functions
/// refused, or not loaded). `None` for any other command, and for an
/// `EVALSHA` when not `eval` (it is one already).
pub(crate) fn as_script(cmd: &redis::Cmd, eval: bool) -> Option<redis::Cmd> {
    let (script, fcall, args) = called_script(cmd)?;
    if !fcall && !eval {
        return None;
    }
    let mut again = redis::cmd(if eval { "EVAL" } else { "EVALSHA" });
    if eval {
        again.arg(script.source);
    } else {
        again.arg(script.script.get_hash());
    }
    for a in args {
        again.arg(a);
    }
    Some(again)
}

/// Turns the function libraries off in this process: every script runs by
/// `EVALSHA` from now on (a server refused `FCALL` or `FUNCTION LOAD`).
pub(crate) fn refuse_functions(why: &str) {
    if !FUNCTIONS_REFUSED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "Redis refused Spool's function libraries ({why}); the worker's scripts run by \
             EVALSHA instead (slower per call: grant FCALL and FUNCTION LOAD, see README)"
        );
    }
}

/// What to do about a script command's error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Nothing: it is the answer.
    No,
    /// Load the scripts and libraries (`NOSCRIPT`, `Function not found`),
    /// then send it again.
    Load,
    /// Send it again by `EVALSHA` (the server refuses functions).
    AsScript,
}

impl Retry {
    /// For the error with code `code` and text `detail` of `cmd`.
    fn of(code: Option<&str>, detail: Option<&str>, cmd: &redis::Cmd) -> Self {
        let fcall = cmd.args_iter().next().is_some_and(
            |a| matches!(a, redis::Arg::Simple(b) if b.eq_ignore_ascii_case(b"FCALL")),
        );
        let detail = detail.unwrap_or("");
        match code {
            Some("NOSCRIPT") => Self::Load,
            Some("ERR") if fcall && detail.starts_with("Function not found") => {
                if FUNCTIONS_REFUSED.load(Ordering::Relaxed) {
                    Self::AsScript
                } else {
                    Self::Load
                }
            }
            _ if fcall && is_refusal(code, detail) => Self::AsScript,
            _ => Self::No,
        }
    }

    /// For `reply`, one reply of a pipeline, to `cmd`.
    fn of_value(reply: &redis::Value, cmd: &redis::Cmd) -> Self {
        match reply {
            redis::Value::ServerError(e) => Self::of(Some(e.code()), e.details(), cmd),
            _ => Self::No,
        }
    }
}

/// Whether an error says the server will not run (or load) functions: no
/// permission for the command (not for a key: that is the answer), or a
/// server older than 7.0 that has no such command.
pub(crate) fn is_refusal(code: Option<&str>, detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    match code {
        Some("NOPERM") => detail.contains("'fcall'") || detail.contains("'function"),
        Some("ERR") => detail.starts_with("unknown command"),
        _ => false,
    }
}

/// Loads every script into Redis's script cache (needed after a Redis
/// restart, which empties the cache) and every function library (unless
/// functions were refused). Whether the libraries are on the server now:
/// `false` when they were refused, or not loaded for another reason (a
/// server over `maxmemory` refuses `FUNCTION LOAD`, not `SCRIPT LOAD`),
/// and the caller's `FCALL`s go by `EVALSHA` this time.
pub(crate) async fn load_all(conn: &mut Connection) -> RedisResult<bool> {
    let mut pipe = redis::pipe();
    for s in SCRIPTS.all() {
        pipe.cmd("SCRIPT").arg("LOAD").arg(s.source);
    }
    pipe.exec_async(&mut *conn).await?;
    if FUNCTIONS_REFUSED.load(Ordering::Relaxed) {
        return Ok(false);
    }
    // One command each: a refusal is then that command's own error.
    for f in SCRIPTS
        .all()
        .into_iter()
        .filter_map(|s| s.function.as_ref())
    {
        let loaded: RedisResult<()> = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(&f.library)
            .exec_async(&mut *conn)
            .await;
        match loaded {
            Ok(()) => {}
            Err(e) if is_refusal(e.code(), e.detail().unwrap_or("")) => {
                refuse_functions(&e.to_string());
                return Ok(false);
            }
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not load Spool's function libraries; this call goes by EVALSHA");
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A script command or a pipeline of them: what [`run`] sends.
pub(crate) enum ScriptCall<'a> {
    /// One `EVALSHA` or `FCALL`.
    Cmd(&'a redis::Cmd),
    /// Several, in one round trip.
    Pipeline(&'a Pipeline),
}

impl<'a> From<&'a redis::Cmd> for ScriptCall<'a> {
    fn from(cmd: &'a redis::Cmd) -> Self {
        Self::Cmd(cmd)
    }
}

impl<'a> From<&'a Pipeline> for ScriptCall<'a> {
    fn from(pipe: &'a Pipeline) -> Self {
        Self::Pipeline(pipe)
    }
}

/// Most times one command is sent: `FCALL` (`Function not found`), again
/// after loading (refused: the server turned functions away meanwhile), as
/// `EVALSHA` (`NOSCRIPT`), again after loading.
const SENDS_MAX: usize = 4;

/// Runs one script command, or a pipeline of them in one round trip,
/// loading the scripts and libraries when Redis answers `NOSCRIPT` or
/// `Function not found` (its script cache is empty after a restart or a
/// failover; a restart without persistence loses the libraries too) and
/// sending again exactly the commands so answered: they did not run, so
/// nothing is applied twice. A server that refuses functions gets those
/// commands again by `EVALSHA` (the module's "Functions"). The commands
/// of a pipeline that did run keep their replies. A pipeline can be half
/// `NOSCRIPT` even on one server: another process may be loading the
/// scripts while it is executed (and on Cluster each node has its own
/// cache; the connection resends such a command as `EVAL` itself).
pub(crate) async fn run<T: FromRedisValue>(
    conn: &mut Connection,
    call: impl Into<ScriptCall<'_>>,
) -> RedisResult<T> {
    match call.into() {
        ScriptCall::Cmd(cmd) => {
            let mut again: Option<redis::Cmd> = None;
            for sent in 1..=SENDS_MAX {
                let current = again.as_ref().unwrap_or(cmd);
                let reply = current.query_async(conn).await;
                let retry = match &reply {
                    Err(e) if sent < SENDS_MAX => Retry::of(e.code(), e.detail(), current),
                    _ => Retry::No,
                };
                match retry {
                    Retry::No => return reply,
                    Retry::Load => {
                        if !load_all(conn).await? {
                            again = as_script(current, false).or(again);
                        }
                    }
                    Retry::AsScript => {
                        let Some(script) = as_script(current, false) else {
                            return reply;
                        };
                        refuse_functions(&reply.err().map(|e| e.to_string()).unwrap_or_default());
                        again = Some(script);
                    }
                }
            }
            unreachable!("the last send returns its reply")
        }
        ScriptCall::Pipeline(pipe) => {
            use redis::aio::ConnectionLike as _;
            let mut replies = conn.req_packed_commands(pipe, 0, pipe.len()).await?;
            // What each command is now sent as (copied only for a resend).
            let mut commands: Vec<redis::Cmd> = Vec::new();
            for _ in 1..SENDS_MAX {
                let retries: Vec<(usize, Retry)> = replies
                    .iter()
                    .zip(pipe.cmd_iter())
                    .enumerate()
                    .map(|(i, (reply, cmd))| {
                        (i, Retry::of_value(reply, commands.get(i).unwrap_or(cmd)))
                    })
                    .filter(|(_, r)| *r != Retry::No)
                    .collect();
                if retries.is_empty() {
                    break;
                }
                if commands.is_empty() {
                    commands = pipe.cmd_iter().cloned().collect();
                }
                let loaded =
                    !retries.iter().any(|(_, r)| *r == Retry::Load) || load_all(conn).await?;
                let mut again = redis::pipe();
                for &(i, retry) in &retries {
                    if retry == Retry::Load && !loaded {
                        if let Some(script) = as_script(&commands[i], false) {
                            commands[i] = script;
                        }
                    }
                    if retry == Retry::AsScript {
                        if let Some(script) = as_script(&commands[i], false) {
                            refuse_functions("a pipelined FCALL was refused");
                            commands[i] = script;
                        }
                    }
                    again.add_command(commands[i].clone());
                }
                let fresh = conn.req_packed_commands(&again, 0, again.len()).await?;
                for ((i, _), value) in retries.into_iter().zip(fresh) {
                    replies[i] = value;
                }
            }
            // The pipeline composes its own answer (ignored commands left
            // out, a server error returned as the error) from the replies.
            pipe.query_async(&mut Replay(Some(replies))).await
        }
    }
}

/// Hands a pipeline the replies [`run`] collected, so the pipeline's own
/// composition applies to them.
struct Replay(Option<Vec<redis::Value>>);

impl redis::aio::ConnectionLike for Replay {
    fn req_packed_command<'a>(
        &'a mut self,
        _cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async {
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "replay holds pipeline replies only",
            )))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _cmd: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        let replies = self.0.take().unwrap_or_default();
        Box::pin(async move { Ok(replies) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{hash_tag, SCRIPTS};

    /// Every `spool_*` helper a script calls is a `local function` defined
    /// earlier in its full source. Lua resolves a call to a local defined
    /// later as a global, which is nil: the script fails at run time, and
    /// Redis keeps the writes made before the failure (a job could be
    /// half-moved). This reads each script's full text, in order.
    #[test]
    fn every_helper_is_defined_before_it_is_called() {
        for script in SCRIPTS.all() {
            let mut defined: Vec<&str> = Vec::new();
            for line in script.source.lines() {
                let code = line.split("--").next().unwrap_or("");
                let mut rest = code;
                while let Some(at) = rest.find("spool_") {
                    let tail = &rest[at..];
                    let end = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(tail.len());
                    let name = &tail[..end];
                    let is_call = tail[end..].starts_with('(');
                    // `local function f(` or `local a, b = …` (a name left of the `=`).
                    let before = code.len() - rest.len() + at;
                    let is_def = rest[..at].trim_end().ends_with("local function")
                        || (code.starts_with("local ")
                            && code.find('=').is_some_and(|eq| before < eq));
                    if is_def {
                        defined.push(name);
                    } else if is_call {
                        assert!(
                            defined.contains(&name),
                            "{name} is called before it is defined in:\n{}",
                            &script.source[..script.source.len().min(200)]
                        );
                    }
                    rest = &tail[end..];
                }
            }
        }
    }

    /// Every Spool name a script uses (`spool_*` helpers and tables,
    /// `SPOOL_*` constants) is defined in its source: `with_prelude` keeps
    /// the parts of the prelude a script names, and a part it missed would
    /// be a nil global at run time.
    #[test]
    fn the_prelude_parts_kept_cover_every_name_used() {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for (name, _) in SCRIPTS.names_and_shas() {
            let source = SCRIPTS.source(name).unwrap();
            let mut defined = std::collections::HashSet::new();
            for line in source.lines() {
                let Some(rest) = line.trim_start().strip_prefix("local ") else {
                    continue;
                };
                let rest = rest.strip_prefix("function ").unwrap_or(rest);
                let names = rest.split(['=', '(']).next().unwrap_or("");
                defined.extend(names.split(',').map(str::trim));
            }
            for line in source.lines() {
                let code = line.split("--").next().unwrap_or("");
                for word in code.split(|c: char| !ident(c)) {
                    if word.starts_with("spool_") || word.starts_with("SPOOL_") {
                        assert!(
                            defined.contains(word),
                            "{word} is not defined in script {name}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_prelude_keeps_only_what_a_script_uses() {
        let fetch = SCRIPTS.source("fetch").unwrap();
        assert!(fetch.contains("local function spool_record_id("));
        assert!(!fetch.contains("local function spool_outbox_push("));
        let parts = super::prelude_parts(include_str!("prelude.lua"));
        let whole: String = parts.iter().map(|p| p.text).collect();
        assert_eq!(
            whole,
            include_str!("prelude.lua"),
            "parts cover the prelude"
        );
        assert!(parts
            .iter()
            .any(|p| p.names == ["SPOOL_TERMINAL", "SPOOL_ALL"]));
    }

    /// A function library makes the prelude's functions and constants once
    /// and sets its other locals (caches, flags, the string aliases, which
    /// a library's load cannot read) at the start of each call, before the
    /// script's own code.
    #[test]
    fn a_library_sets_the_per_call_state_at_each_call() {
        let f = SCRIPTS
            .fetch
            .function
            .as_ref()
            .expect("fetch is a function");
        let lib = &f.library;
        assert!(lib.starts_with(&format!("#!lua name={}\n", f.name)));
        assert!(f.name.starts_with("spool_fetch_") && f.name.len() == "spool_fetch_".len() + 16);
        let call = lib
            .find("local function spool_function_call(keys, args)")
            .unwrap();
        let body = lib.find("-- fetch.lua:").unwrap();
        let per_call = &lib[call..body];
        for set in [
            "KEYS, ARGV = keys, args",
            "spool_find, spool_sub, spool_byte = string.find, string.sub, string.byte",
            "spool_group_woken = false",
            "spool_prefixes = {}",
        ] {
            assert!(per_call.contains(set), "{set} missing in:\n{per_call}");
        }
        assert!(lib[..call].contains("\nlocal spool_group_woken\n"));
        assert!(lib[..call].contains("\nlocal SPOOL_TWO_DIGITS = {[0] = '00',"));
        assert!(!per_call.contains("SPOOL_"));
        assert!(lib.ends_with(&format!(
            "redis.register_function{{function_name = '{}',\n  callback = spool_function_call, \
             flags = {{'allow-oom'}}}}\n",
            f.name
        )));
        for name in super::FUNCTION_SCRIPTS {
            let script = SCRIPTS.all().into_iter().find(|s| {
                s.function
                    .as_ref()
                    .is_some_and(|f| f.name.starts_with(&format!("spool_{name}_")))
            });
            assert!(script.is_some(), "{name} has no library");
        }
        assert!(SCRIPTS.enqueue.function.is_none());
    }

    /// A library makes the prelude's `SPOOL_*` constants once per server,
    /// so no script may change one: no assignment to a constant or to a
    /// field of one (a table) outside its `local` definition. The memo
    /// tables (`SPOOL_MEMO_*`, prelude.lua) are the exception: each keeps
    /// what a pure function computed from its key.
    #[test]
    fn no_script_changes_a_constant() {
        for (name, _) in SCRIPTS.names_and_shas() {
            for line in SCRIPTS.source(name).unwrap().lines() {
                let code = line.split("--").next().unwrap_or("").trim_start();
                if code.starts_with("local ") {
                    continue;
                }
                let mut rest = code;
                while let Some(at) = rest.find("SPOOL_") {
                    let tail = &rest[at..];
                    let end = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(tail.len());
                    if tail.starts_with("SPOOL_MEMO_") {
                        rest = &tail[end..];
                        continue;
                    }
                    let mut after = tail[end..].trim_start();
                    if after.starts_with('[') {
                        after = after.split_once(']').map_or("", |(_, a)| a).trim_start();
                    }
                    assert!(
                        !after.starts_with('=') || after.starts_with("=="),
                        "{name} changes a constant: {line}"
                    );
                    rest = &tail[end..];
                }
            }
        }
    }

    /// An `FCALL` of a Spool function goes again as the same script, with
    /// its keys and arguments in place, and an `EVALSHA` as `EVAL`; any
    /// other command does not.
    #[test]
    fn an_fcall_goes_again_as_its_script() {
        let mut cmd = SCRIPTS.ack.cmd(&["{q}:a", "{q}:b"]);
        cmd.arg("x").arg(7);
        let args = |c: &redis::Cmd| -> Vec<Vec<u8>> {
            c.args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => b.to_vec(),
                    _ => Vec::new(),
                })
                .collect()
        };
        assert_eq!(args(&cmd)[0], b"FCALL");
        let again = super::as_script(&cmd, false).unwrap();
        let sha = SCRIPTS.ack.script.get_hash().as_bytes().to_vec();
        let tail: Vec<Vec<u8>> = ["2", "{q}:a", "{q}:b", "x", "7"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(
            args(&again),
            [vec![b"EVALSHA".to_vec(), sha], tail.clone()].concat()
        );
        let eval = super::as_script(&cmd, true).unwrap();
        assert_eq!(args(&eval)[1], SCRIPTS.ack.source.as_bytes());
        assert_eq!(args(&eval)[2..], tail[..]);
        assert!(super::as_script(&SCRIPTS.enqueue.cmd(&["k"]), false).is_none());
        // An EVALSHA goes again as EVAL (NOSCRIPT on a Cluster node).
        let eval = super::as_script(&SCRIPTS.enqueue.cmd(&["k"]), true).unwrap();
        assert_eq!(args(&eval)[0], b"EVAL");
        assert_eq!(args(&eval)[1], SCRIPTS.enqueue.source.as_bytes());
        assert_eq!(args(&eval)[2..], [b"1".to_vec(), b"k".to_vec()]);
        assert_eq!(
            super::library_called(&cmd),
            SCRIPTS.ack.function.as_ref().map(|f| f.library.as_str())
        );
        assert!(super::library_called(&SCRIPTS.enqueue.cmd(&["k"])).is_none());
        assert!(super::as_script(redis::cmd("GET").arg("k"), false).is_none());
    }

    /// How an error reply to a script command is handled.
    #[test]
    fn script_errors_load_switch_or_stand() {
        use super::Retry;
        let fcall = SCRIPTS.fetch.cmd(&["k"]);
        let evalsha = SCRIPTS.enqueue.cmd(&["k"]);
        assert_eq!(
            Retry::of(Some("NOSCRIPT"), Some("No matching script"), &evalsha),
            Retry::Load
        );
        assert_eq!(
            Retry::of(Some("ERR"), Some("Function not found"), &fcall),
            Retry::Load
        );
        assert_eq!(
            Retry::of(
                Some("NOPERM"),
                Some("User spool has no permissions to run the 'fcall' command"),
                &fcall
            ),
            Retry::AsScript
        );
        assert_eq!(
            Retry::of(
                Some("ERR"),
                Some("unknown command 'FCALL', with args beginning with: "),
                &fcall
            ),
            Retry::AsScript
        );
        // The same errors of anything but an FCALL are the answer.
        assert_eq!(Retry::of(Some("NOPERM"), Some("no"), &evalsha), Retry::No);
        // No permission for a key is the answer, FCALL or not.
        let key = Some("No permissions to access a key");
        assert_eq!(Retry::of(Some("NOPERM"), key, &fcall), Retry::No);
        assert!(super::is_refusal(
            Some("NOPERM"),
            "this user has no permissions to run the 'function|load' command"
        ));
        assert_eq!(
            Retry::of(Some("ERR"), Some("Function not found"), &evalsha),
            Retry::No
        );
        assert_eq!(
            Retry::of(Some("ERR"), Some("user_function:3: boom"), &fcall),
            Retry::No
        );
    }

    #[test]
    fn hash_tags_follow_redis_cluster_rules() {
        assert_eq!(hash_tag("spool:{emails}:ready"), "emails");
        assert_eq!(hash_tag("{spool}:queues"), "spool");
        assert_eq!(hash_tag("a{}b{c}"), "a{}b{c}");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("x{y"), "x{y");
    }
}
