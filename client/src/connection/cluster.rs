//! Spool's use of the redis crate's Cluster client.
//!
//! The crate routes each command by its key and follows `MOVED`/`ASK` and
//! topology changes; a pipeline, though, must stay in one slot. Spool's
//! pipelines are batches of independent calls that often span queues (acks
//! of several queues, an enqueue plus the queue registry, an admin page
//! reading many queues), so on Cluster a pipeline is sent as its commands,
//! all at once, each routed by its own key; the replies come back in order,
//! a server error in the place of its command, exactly as a pipeline's.
//!
//! Each node has its own script cache (and a promoted replica starts with
//! an empty one), so an `EVALSHA` answered `NOSCRIPT` is sent again as
//! `EVAL` with the source, on that command only: it had not run, and the
//! `EVAL` caches the script on that node. An `FCALL` answered `Function
//! not found` (a node that never had the library) loads the library on
//! every primary and is sent again; if that is refused, as `EVAL`.

use futures::{StreamExt, TryStreamExt};
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Most commands of one split pipeline in flight at once.
const IN_FLIGHT_MAX: usize = 256;

/// Runs one command; `NOSCRIPT` on an `EVALSHA` of Spool's is retried as
/// `EVAL`, `Function not found` on an `FCALL` of Spool's after loading its
/// library (as `EVAL` if that fails). The cluster client reports a server
/// error either as an `Err` or as an `Ok(Value::ServerError)`: both are
/// looked at.
pub(crate) async fn command(conn: &mut ClusterConnection, cmd: &Cmd) -> RedisResult<Value> {
    let reply = conn.req_packed_command(cmd).await;
    let (code, detail) = match &reply {
        Err(e) => (e.code(), e.detail()),
        Ok(Value::ServerError(e)) => (Some(e.code()), e.details()),
        Ok(_) => return reply,
    };
    if code == Some("NOSCRIPT") {
        return match crate::scripts::as_script(cmd, true) {
            Some(eval) => conn.req_packed_command(&eval).await,
            None => reply,
        };
    }
    if code != Some("ERR") || !detail.is_some_and(|d| d.starts_with("Function not found")) {
        return reply;
    }
    let Some(library) = crate::scripts::library_called(cmd) else {
        return reply;
    };
    // FUNCTION LOAD goes to every primary (the crate routes it so).
    let mut load = redis::cmd("FUNCTION");
    load.arg("LOAD").arg("REPLACE").arg(library);
    let loaded = match conn.req_packed_command(&load).await {
        Ok(Value::ServerError(e)) => {
            Err((Some(e.code().to_owned()), e.details().map(str::to_owned)))
        }
        Ok(_) => Ok(()),
        Err(e) => Err((e.code().map(str::to_owned), e.detail().map(str::to_owned))),
    };
    match loaded {
        Ok(()) => conn.req_packed_command(cmd).await,
        Err((code, detail)) => {
            if crate::scripts::is_refusal(code.as_deref(), detail.as_deref().unwrap_or("")) {
                crate::scripts::refuse_functions("FUNCTION LOAD was refused");
            }
            match crate::scripts::as_script(cmd, true) {
                Some(eval) => conn.req_packed_command(&eval).await,
                None => reply,
            }
        }
    }
}

/// Runs a pipeline's commands concurrently, each routed by its key. A
/// server error becomes that command's reply; losing the connection fails
/// the whole call, as it would a pipeline.
pub(crate) fn pipeline<'a>(
    conn: &'a ClusterConnection,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
) -> RedisFuture<'a, Vec<Value>> {
    Box::pin(async move {
        if pipeline.is_transaction() {
            // MULTI/EXEC must stay together (one slot by construction).
            return conn
                .clone()
                .req_packed_commands(pipeline, offset, count)
                .await;
        }
        let calls: Vec<_> = pipeline
            .cmd_iter()
            .map(|cmd| pipelined(conn.clone(), cmd))
            .collect();
        // Bounded in flight: a request's timeout runs from when it is sent,
        // so 25,000 queued at once would time out at the tail.
        let replies: Vec<Value> = futures::stream::iter(calls)
            .buffered(IN_FLIGHT_MAX)
            .try_collect()
            .await?;
        Ok(replies.into_iter().skip(offset).take(count).collect())
    })
}

/// One command of a split pipeline: a server error becomes its reply.
async fn pipelined(mut conn: ClusterConnection, cmd: &Cmd) -> RedisResult<Value> {
    match command(&mut conn, cmd).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e),
        Err(e) => match e.clone().into_server_errors() {
            Some(errors) if errors.len() == 1 => Ok(Value::ServerError(errors[0].1.clone())),
            _ => Err(e),
        },
    }
}
