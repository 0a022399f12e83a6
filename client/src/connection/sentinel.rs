//! A connection to the primary that Sentinel names, which follows failovers.
//!
//! The redis crate finds the primary through Sentinel (`SentinelClient`) but
//! hands out plain connections that stay on the old server after a
//! failover. This wrapper keeps one multiplexed connection to the current
//! primary and drops it when a call shows the server is gone or demoted
//! (I/O error, timeout, `READONLY`, `MASTERDOWN`); the next call asks the
//! Sentinels again. Like the single-node connection, a call made while no
//! primary answers fails fast and the caller decides whether to retry.

use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// A shared, failover-following connection to a Sentinel-managed primary.
#[derive(Clone)]
pub(crate) struct SentinelConnection {
    shared: Arc<Shared>,
    db: i64,
}

struct Shared {
    sentinel: futures::lock::Mutex<SentinelClient>,
    current: Mutex<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

impl SentinelConnection {
    /// Asks the Sentinels for the primary and connects to it.
    pub(crate) async fn open(
        sentinel: SentinelClient,
        config: AsyncConnectionConfig,
        db: i64,
    ) -> RedisResult<Self> {
        let conn = Self {
            shared: Arc::new(Shared {
                sentinel: futures::lock::Mutex::new(sentinel),
                current: Mutex::new(None),
                config,
            }),
            db,
        };
        conn.primary().await?;
        Ok(conn)
    }

    /// A connection of its own to the current primary (for blocking
    /// commands); it does not follow failovers: replace it on error.
    pub(crate) async fn dedicated(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        let mut sentinel = self.shared.sentinel.lock().await;
        sentinel
            .async_get_client()
            .await?
            .get_multiplexed_async_connection_with_config(config)
            .await
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn primary(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        // One caller asks the Sentinels; the others wait and reuse its answer.
        let mut sentinel = self.shared.sentinel.lock().await;
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let conn = sentinel
            .async_get_client()
            .await?
            .get_multiplexed_async_connection_with_config(&self.shared.config)
            .await?;
        *self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the primary when `err` says it is gone or no longer primary.
    fn after_error(&self, err: &RedisError) {
        let demoted = matches!(err.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"));
        if demoted || err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
            tracing::warn!(error = %err, "the Sentinel primary failed; asking the Sentinels again on the next call");
            *self
                .shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.primary().await?;
            let reply = conn.req_packed_command(cmd).await;
            if let Err(e) = &reply {
                self.after_error(e);
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.primary().await?;
            let reply = conn.req_packed_commands(pipeline, offset, count).await;
            match &reply {
                Err(e) => self.after_error(e),
                // A demoted primary answers each write with READONLY.
                Ok(values) => {
                    if let Some(Value::ServerError(e)) =
                        values.iter().find(|v| matches!(v, Value::ServerError(_)))
                    {
                        if matches!(e.code(), "READONLY" | "MASTERDOWN" | "LOADING") {
                            self.after_error(&RedisError::from(e.clone()));
                        }
                    }
                }
            }
            reply
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}
