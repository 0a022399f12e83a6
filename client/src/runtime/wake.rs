//! Waking idle fetchers without polling: a blocking pop on a queue's wake
//! list, on a connection of its own (a blocking command would stall every
//! other call on the shared multiplexed one). `BLPOP` is the one runtime
//! command that cannot run inside a script; it changes no job state (the
//! scripts that make jobs ready leave the token). Runtime protocol, not for
//! application code.

use std::time::Duration;

use super::Runtime;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;

/// A dedicated connection for blocking waits on wake lists.
pub struct WakeConnection {
    conn: crate::Connection,
}

impl std::fmt::Debug for WakeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeConnection").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens a connection for [`WakeConnection::wait`] calls of up to
    /// `block_for` each.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis cannot be reached.
    pub async fn wake_connection(&self, block_for: Duration) -> Result<WakeConnection> {
        Ok(WakeConnection {
            conn: self.client.dedicated_connection(block_for).await?,
        })
    }
}

impl WakeConnection {
    /// Blocks on the queue's wake list for up to `timeout`. Returns true
    /// when a token arrived: jobs were enqueued, promoted or handed back.
    ///
    /// # Errors
    /// [`Error::Redis`]; the connection should then be replaced.
    pub async fn wait(&mut self, keys: &QueueKeys, timeout: Duration) -> Result<bool> {
        let secs = timeout.as_secs_f64().max(0.01);
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&keys.wake)
            .arg(secs)
            .query_async(&mut self.conn)
            .await
            .map_err(Error::redis("BLPOP wake"))?;
        Ok(popped.is_some())
    }
}
