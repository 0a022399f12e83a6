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

/// What an operator asked a worker process to do (`Admin::signal_process`),
/// read back by the process's heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSignal {
    /// Stop fetching new jobs; finish the running ones; stay registered.
    Quiet,
    /// Shut down gracefully, as on SIGTERM.
    Stop,
}

impl ProcessSignal {
    /// The stored name (`quiet`, `stop`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quiet => "quiet",
            Self::Stop => "stop",
        }
    }

    /// The signal a stored name means; `None` for anything else.
    #[must_use]
    pub fn parse(raw: &[u8]) -> Option<Self> {
        match raw {
            b"quiet" => Some(Self::Quiet),
            b"stop" => Some(Self::Stop),
            _ => None,
        }
    }
}

/// What a heartbeat read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// Redis's clock at the beat (ms).
    pub at_ms: i64,
    /// The operator's signal for this process, if any.
    pub signal: Option<ProcessSignal>,
}

impl Runtime {
    /// Registers (or refreshes) a worker process for `ttl`. `info` and `busy`
    /// are JSON documents (see `docs/PROTOCOL.md`). Returns Redis's clock
    /// and the signal an operator left for the process.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn heartbeat(
        &self,
        process_id: &str,
        info: &str,
        busy: &str,
        ttl: Duration,
    ) -> Result<Beat> {
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

    async fn process_call(&self, id: &str, info: &str, busy: &str, ttl: &str) -> Result<Beat> {
        let g = self.client.global_keys();
        let mut cmd = SCRIPTS.heartbeat.cmd(&[&g.processes, &g.process(id)]);
        cmd.arg(id).arg(info).arg(busy).arg(ttl);
        let (at_ms, signal): (i64, Vec<u8>) = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("heartbeat"))?;
        Ok(Beat {
            at_ms,
            signal: ProcessSignal::parse(&signal),
        })
    }
}
