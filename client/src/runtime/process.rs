//! The worker process record: registered and refreshed with a TTL by each
//! heartbeat (`heartbeat.lua`), removed on clean shutdown. Runtime protocol,
//! not for application code; the dashboard reads it through the admin API.

use std::time::Duration;

use super::Runtime;
use crate::enqueue::duration_ms;
use crate::error::{Error, Result};
use crate::scripts::{self, SCRIPTS};

/// Longest host name stored in a process record; longer ones are cut (a
/// process record is shown on every dashboard page that lists workers).
pub const PROCESS_HOST_MAX_BYTES: usize = 255;

impl Runtime {
    /// Registers (or refreshes) a worker process for `ttl`. `info` and `busy`
    /// are JSON documents (see `docs/PROTOCOL.md`). Returns Redis's clock.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn heartbeat(
        &self,
        process_id: &str,
        info: &str,
        busy: &str,
        ttl: Duration,
    ) -> Result<i64> {
        self.process_call(process_id, info, busy, &duration_ms(ttl).max(1).to_string())
            .await
    }

    /// Removes a worker process's registration (clean shutdown).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn unregister(&self, process_id: &str) -> Result<()> {
        self.process_call(process_id, "", "", "stop").await?;
        Ok(())
    }

    async fn process_call(&self, id: &str, info: &str, busy: &str, ttl: &str) -> Result<i64> {
        let g = self.client.global_keys();
        let mut cmd = SCRIPTS.heartbeat.cmd(&[&g.processes, &g.process(id)]);
        cmd.arg(id).arg(info).arg(busy).arg(ttl);
        scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("heartbeat"))
    }
}
