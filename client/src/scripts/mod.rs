//! The Lua scripts, one per arrow of the job life cycle, and the plumbing to
//! run them (EVALSHA, loading on `NOSCRIPT`, pipelining).
//!
//! Runtime protocol, not for application code: `Client`, `Admin` and the
//! lease API in [`crate::lease`] are the only callers. Every script reads
//! `TIME` itself (DESIGN invariant 3) and receives every key it touches in
//! `KEYS` (invariant 7). Each `.lua` file starts with its contract.

use std::sync::LazyLock;

use redis::{FromRedisValue, Pipeline, RedisResult};

use crate::connection::Connection;

/// One Lua script (its source is kept for `SCRIPT LOAD`).
#[derive(Debug)]
pub(crate) struct LuaScript {
    source: &'static str,
    script: redis::Script,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            script: redis::Script::new(source),
        }
    }

    /// An `EVALSHA` command with the given keys; add ARGV with `.arg()`.
    /// Every key must carry the same hash tag (one Cluster slot, DESIGN
    /// "Slots decide the shape"); debug builds, hence every test on a
    /// single node too, check it.
    pub(crate) fn cmd<K: AsRef<str>>(&self, keys: &[K]) -> redis::Cmd {
        debug_assert!(
            keys.windows(2)
                .all(|w| hash_tag(w[0].as_ref()) == hash_tag(w[1].as_ref())),
            "script keys span hash slots: {:?}",
            keys.iter().map(AsRef::as_ref).collect::<Vec<_>>()
        );
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(keys.len());
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
    let mut source = String::with_capacity(used.len());
    for (part, keep) in parts.iter().zip(&kept) {
        if *keep || part.names.is_empty() {
            source.push_str(part.text);
        }
    }
    source.push_str(body);
    Box::leak(source.into_boxed_str())
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
            $($field: LuaScript::new(with_prelude(concat!($(include_str!(concat!($file, ".lua"))),+))),)*
        });

        impl Scripts {
            fn all(&self) -> Vec<&LuaScript> {
                vec![$(&self.$field,)*]
            }

            /// The source of the script whose SHA-1 (hex) is `sha`.
            pub(crate) fn source_for_sha(&self, sha: &[u8]) -> Option<&'static str> {
                self.all()
                    .into_iter()
                    .find(|s| s.script.get_hash().as_bytes() == sha)
                    .map(|s| s.source)
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

/// The source of Spool's script with SHA-1 `sha`, for resending an
/// `EVALSHA` answered `NOSCRIPT` as `EVAL` (see `connection::cluster`).
pub(crate) fn source_for_sha(sha: &[u8]) -> Option<&'static str> {
    SCRIPTS.source_for_sha(sha)
}

fn is_noscript(err: &redis::RedisError) -> bool {
    err.code() == Some("NOSCRIPT")
}

/// Loads every script into Redis's script cache (needed after a Redis
/// restart, which empties the cache).
pub(crate) async fn load_all(conn: &mut Connection) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    for s in SCRIPTS.all() {
        pipe.cmd("SCRIPT").arg("LOAD").arg(s.source);
    }
    pipe.exec_async(conn).await
}

/// A script command or a pipeline of them: what [`run`] sends.
pub(crate) enum ScriptCall<'a> {
    /// One `EVALSHA`.
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

/// Runs one script command, or a pipeline of them in one round trip,
/// loading the scripts when Redis answers `NOSCRIPT` (its script cache is
/// empty after a restart or a failover) and sending again exactly the
/// commands that were answered `NOSCRIPT`: they did not run, so nothing is
/// applied twice. The commands of a pipeline that did run keep their
/// replies. A pipeline can be half `NOSCRIPT` even on one server: another
/// process may be loading the scripts while it is executed (and on Cluster
/// each node has its own cache; the connection resends such a command as
/// `EVAL` itself).
pub(crate) async fn run<T: FromRedisValue>(
    conn: &mut Connection,
    call: impl Into<ScriptCall<'_>>,
) -> RedisResult<T> {
    match call.into() {
        ScriptCall::Cmd(cmd) => match cmd.query_async(conn).await {
            Err(e) if is_noscript(&e) => {
                load_all(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        },
        ScriptCall::Pipeline(pipe) => {
            use redis::aio::ConnectionLike as _;
            let mut replies = conn.req_packed_commands(pipe, 0, pipe.len()).await?;
            let missing: Vec<usize> = replies
                .iter()
                .enumerate()
                .filter(
                    |(_, v)| matches!(v, redis::Value::ServerError(e) if e.code() == "NOSCRIPT"),
                )
                .map(|(i, _)| i)
                .collect();
            if !missing.is_empty() {
                load_all(conn).await?;
                let commands: Vec<&redis::Cmd> = pipe.cmd_iter().collect();
                let mut again = redis::pipe();
                for &i in &missing {
                    again.add_command(commands[i].clone());
                }
                let fresh = conn.req_packed_commands(&again, 0, again.len()).await?;
                for (i, value) in missing.into_iter().zip(fresh) {
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

    #[test]
    fn hash_tags_follow_redis_cluster_rules() {
        assert_eq!(hash_tag("spool:{emails}:ready"), "emails");
        assert_eq!(hash_tag("{spool}:queues"), "spool");
        assert_eq!(hash_tag("a{}b{c}"), "a{}b{c}");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("x{y"), "x{y");
    }
}
