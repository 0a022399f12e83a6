//! Processes: the live worker processes, as registered by their heartbeat
//! (`heartbeat.lua`): host, pid, queues, concurrency, busy jobs; and the
//! operator's quiet and stop signals to one of them (`process_signal.lua`),
//! which that process carries out at its next heartbeat.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Admin;
use crate::error::{Error, Result};
use crate::runtime::ProcessSignal;
use crate::scripts::{self, SCRIPTS};

/// What a worker process says about itself (written by `spool-worker`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Unique process id (`host:pid:random`).
    pub id: String,
    /// Host name.
    pub host: String,
    /// Operating system process id.
    pub pid: u32,
    /// Queues it fetches from.
    pub queues: Vec<String>,
    /// Its concurrency limit.
    pub concurrency: usize,
    /// Spool version.
    pub version: String,
}

/// One job a process is running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BusyJob {
    /// Job id.
    pub id: String,
    /// Queue.
    pub queue: String,
    /// Job type.
    #[serde(rename = "type")]
    pub job_type: String,
    /// When it was leased (Redis ms).
    pub started_ms: i64,
}

/// A live worker process.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessView {
    /// What the process reported.
    pub info: ProcessInfo,
    /// Jobs running at the last heartbeat.
    pub busy: Vec<BusyJob>,
    /// First heartbeat (Redis ms).
    pub started_ms: i64,
    /// Last heartbeat (Redis ms).
    pub beat_ms: i64,
    /// What an operator asked of it ([`Admin::signal_process`]): a quiet
    /// process fetches nothing new; a stopping one shuts down.
    pub signal: Option<ProcessSignal>,
}

impl Admin {
    /// Live worker processes, most recently started first. A process whose
    /// registration expired (missed heartbeats) is not listed.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn processes(&self) -> Result<Vec<ProcessView>> {
        let g = self.client.global_keys();
        let ids: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(&g.processes)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("ZRANGE processes"))?;
        // Spool's ids are text; a member that is not cannot be one of ours.
        let ids: Vec<String> = ids
            .into_iter()
            .filter_map(|id| String::from_utf8(id).ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(g.process(id));
        }
        // Bytes: a process record is skipped, not fatal, when another
        // client wrote something that does not decode.
        let hashes: Vec<HashMap<Vec<u8>, Vec<u8>>> = pipe
            .query_async(&mut self.client.connection())
            .await
            .map_err(Error::redis("HGETALL process"))?;
        let mut out: Vec<ProcessView> = hashes
            .into_iter()
            .filter_map(|h| {
                let field = |name: &str| h.get(name.as_bytes()).map(Vec::as_slice);
                let number = |name: &str| -> Option<i64> {
                    std::str::from_utf8(field(name)?).ok()?.parse().ok()
                };
                let info: ProcessInfo = serde_json::from_slice(field("info")?).ok()?;
                let busy = field("busy")
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                Some(ProcessView {
                    info,
                    busy,
                    started_ms: number("started_ms")?,
                    beat_ms: number("beat_ms")?,
                    signal: field("signal").and_then(ProcessSignal::parse),
                })
            })
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.started_ms));
        Ok(out)
    }

    /// Asks the live worker process `id` to go quiet (stop fetching, finish
    /// its running jobs, stay registered) or to stop (graceful shutdown, as
    /// on SIGTERM). The process reads the signal at its next heartbeat
    /// (within `heartbeat_interval`). `false` when no such process is
    /// registered. A stop is never turned back into a quiet.
    ///
    /// ```no_run
    /// # async fn demo(admin: spool_client::Admin) -> spool_client::Result<()> {
    /// use spool_client::admin::ProcessSignal;
    /// for p in admin.processes().await? {
    ///     if p.info.host == "old-host" {
    ///         admin.signal_process(&p.info.id, ProcessSignal::Quiet).await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long id, [`Error::Redis`].
    pub async fn signal_process(&self, id: &str, signal: ProcessSignal) -> Result<bool> {
        if id.is_empty() || id.len() > 512 {
            return Err(Error::InvalidArgument(
                "a process id is 1 to 512 bytes".to_owned(),
            ));
        }
        let key = self.client.global_keys().process(id);
        let mut cmd = SCRIPTS.process_signal.cmd(&[&key]);
        cmd.arg(signal.as_str());
        let stored: i64 = scripts::run(&mut self.client.connection(), &cmd)
            .await
            .map_err(Error::redis("process_signal"))?;
        tracing::info!(
            process = id,
            signal = signal.as_str(),
            actor = self.actor(),
            stored = stored == 1,
            "process signal"
        );
        Ok(stored == 1)
    }
}
