//! The Lua scripts, one per arrow of the job life cycle, and the plumbing to
//! run them (EVALSHA, loading on `NOSCRIPT`, pipelining).
//!
//! Runtime protocol, not for application code: `Client`, `Admin` and the
//! lease API in [`crate::lease`] are the only callers. Every script reads
//! `TIME` itself (DESIGN invariant 3) and receives every key it touches in
//! `KEYS` (invariant 7). Each `.lua` file starts with its contract.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Pipeline, RedisResult};

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
    pub(crate) fn cmd<K: AsRef<str>>(&self, keys: &[K]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(key.as_ref());
        }
        cmd
    }
}

/// `name => ["file"]` registers `prelude.lua` followed by `file.lua`;
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
            $($field: LuaScript::new(concat!(include_str!("prelude.lua"), $(include_str!(concat!($file, ".lua"))),+)),)*
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
    cron_tick => ["job_record", "cron_tick"],
    cron_register => ["cron_register"],
    pause => ["pause"],
    resume => ["resume"],
    clear_ready => ["clear_ready"],
    register_queues => ["register_queues"],
    peek_ready => ["ready_walk", "peek_ready"],
    peek_set => ["peek_set"],
    find_ready => ["ready_walk", "find_ready"],
    delete_ready => ["ready_walk", "delete_ready"],
    cron_pause => ["cron_pause"],
    cron_forget => ["cron_forget"],
}

fn is_noscript(err: &redis::RedisError) -> bool {
    err.code() == Some("NOSCRIPT")
}

/// Loads every script into Redis's script cache (needed after a Redis
/// restart, which empties the cache).
pub(crate) async fn load_all(conn: &mut ConnectionManager) -> RedisResult<()> {
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

impl ScriptCall<'_> {
    async fn query<T: FromRedisValue>(&self, conn: &mut ConnectionManager) -> RedisResult<T> {
        match self {
            Self::Cmd(cmd) => cmd.query_async(conn).await,
            Self::Pipeline(pipe) => pipe.query_async(conn).await,
        }
    }
}

/// Runs one script command, or a pipeline of them in one round trip,
/// loading the scripts and retrying once on `NOSCRIPT`. A `NOSCRIPT` reply
/// to a pipeline means the cache was empty for every script of it (they are
/// always loaded together), so none of them ran and the retry cannot apply
/// anything twice.
pub(crate) async fn run<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    call: impl Into<ScriptCall<'_>>,
) -> RedisResult<T> {
    let call = call.into();
    match call.query(conn).await {
        Err(e) if is_noscript(&e) => {
            load_all(conn).await?;
            call.query(conn).await
        }
        other => other,
    }
}
