//! `wait`: block until a job finishes, with one subscription per client
//! process for every `wait` in it.
//!
//! A `wait` registers for its job in the `waiters` hash in the same script
//! step that reads its status (`status.lua`), so a finish cannot fall
//! between the read and the registration; the script that finishes the job
//! (ack, fail, reap, release, cancel) then publishes `<state> <id>` on the
//! namespace's finished channel. One task per client holds the
//! subscription and hands each message to the waits for that id. When the
//! subscription drops, messages may have been missed: every wait is told
//! to read the status again. Jobs nobody waits for cost nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{oneshot, watch};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::keys::QueueKeys;
use crate::outcome::{JobStatus, Status};
use crate::scripts::{self, SCRIPTS};

/// What a registered wait hears.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Finished(Status),
    /// The subscription dropped: read the status again.
    Recheck,
}

type Pending = HashMap<String, Vec<(u64, oneshot::Sender<Signal>)>>;

/// The waits of one client and the task holding its subscription.
#[derive(Default)]
pub(crate) struct Waiters {
    pending: Mutex<Pending>,
    next: AtomicU64,
    /// `true` while the task's subscription is confirmed; `None` when no
    /// task runs.
    running: Mutex<Option<watch::Receiver<bool>>>,
}

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters").finish_non_exhaustive()
    }
}

/// How long the subscription task lingers without waits before it stops.
const IDLE_STOP: Duration = Duration::from_secs(30);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, id: &str) -> (u64, oneshot::Receiver<Signal>) {
        let (tx, rx) = oneshot::channel();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(id.to_owned()).or_default().push((n, tx));
        (n, rx)
    }

    fn remove(&self, id: &str, n: u64) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(id) {
            list.retain(|(m, _)| *m != n);
            if list.is_empty() {
                map.remove(id);
            }
        }
    }

    fn deliver(&self, id: &str, signal: Signal) {
        if let Some(list) = self.lock().remove(id) {
            for (_, tx) in list {
                let _ = tx.send(signal);
            }
        }
    }

    fn recheck_all(&self) {
        let all: Vec<_> = self.lock().drain().collect();
        for (_, list) in all {
            for (_, tx) in list {
                let _ = tx.send(Signal::Recheck);
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Parses a finished-channel message `<state> <id>`; an operator's delete
/// (`deleted`) reads as unknown: the job is gone.
fn parse_message(payload: &[u8]) -> Option<(Status, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (state, id) = text.split_once(' ')?;
    let status = match state {
        "deleted" => Status::Unknown,
        other => Status::parse(other)?,
    };
    Some((status, id.to_owned()))
}

impl Client {
    /// Waits until job `id` finishes (done, dead or cancelled) or `timeout`
    /// passes, and returns its status then: check
    /// [`Status::is_terminal`] to tell which. Returns at once for a job
    /// that has finished or is unknown. Every wait of a client shares one
    /// Redis subscription; nobody polls.
    ///
    /// A job that does not keep its outcome still wakes its waiters when it
    /// finishes (the status then carries the state only: a later
    /// [`Client::status`] says unknown).
    ///
    /// ```no_run
    /// # async fn demo(client: spool_client::Client, id: spool_client::JobId) -> spool_client::Result<()> {
    /// let status = client.wait(&id, std::time::Duration::from_secs(30)).await?;
    /// if status.status.is_terminal() {
    ///     println!("finished: {}", status.status);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::status`]; [`Error::Redis`] when the subscription cannot
    /// be opened within 10 s.
    pub async fn wait(&self, id: &JobId, timeout: Duration) -> Result<JobStatus> {
        let deadline = Instant::now() + timeout;
        let first = self.status(id).await?;
        let Some(queue) = first.queue.clone() else {
            return Ok(first);
        };
        if first.status.is_terminal() {
            return Ok(first);
        }
        let keys = self.queue_keys(&queue)?;
        loop {
            self.ensure_subscribed().await?;
            let (n, rx) = self.waiters().add(id.as_str());
            let now = self
                .status_registering(Some(&queue), id.as_str(), true)
                .await;
            let now = match now {
                Ok(s) => s,
                Err(e) => {
                    self.waiters().remove(id.as_str(), n);
                    return Err(e);
                }
            };
            if now.status.is_terminal() || now.status == Status::Unknown {
                self.waiters().remove(id.as_str(), n);
                self.unregister(&keys, id.as_str()).await;
                return Ok(now);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx).await {
                Ok(Ok(Signal::Finished(state))) => {
                    let after = self.status_in(&queue, id).await?;
                    if after.status.is_terminal() {
                        return Ok(after);
                    }
                    // Finished without keeping its outcome: say how.
                    return Ok(JobStatus {
                        queue: Some(queue),
                        status: state,
                        ..JobStatus::unknown(id.as_str())
                    });
                }
                Ok(Ok(Signal::Recheck) | Err(_)) => {
                    self.unregister(&keys, id.as_str()).await;
                }
                Err(_) => {
                    self.waiters().remove(id.as_str(), n);
                    self.unregister(&keys, id.as_str()).await;
                    return self.status_in(&queue, id).await;
                }
            }
        }
    }

    /// Drops one registration of a wait for `id` (`unwait.lua`); best effort:
    /// a registration left behind only costs one message when the job ends.
    async fn unregister(&self, keys: &QueueKeys, id: &str) {
        let mut cmd = SCRIPTS.unwait.cmd(&[&keys.waiters]);
        cmd.arg(id);
        if let Err(e) = scripts::run::<i64>(&mut self.connection(), &cmd).await {
            tracing::debug!(error = %e, job_id = id, "could not drop a wait registration");
        }
    }

    /// Starts the subscription task if none runs, and waits until its
    /// subscription is confirmed.
    async fn ensure_subscribed(&self) -> Result<()> {
        let mut ready = {
            let mut running = self
                .waiters()
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(rx) = running.as_ref() {
                rx.clone()
            } else {
                let (tx, rx) = watch::channel(false);
                *running = Some(rx.clone());
                tokio::spawn(listen(self.clone(), tx));
                rx
            }
        };
        let confirmed =
            tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|up| *up)).await;
        match confirmed {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Redis {
                op: "wait (SUBSCRIBE)",
                source: redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "could not subscribe to the finished channel within 10 s",
                )),
            }),
        }
    }
}

/// The subscription task: (re)subscribes, hands messages to the waits, and
/// stops after [`IDLE_STOP`] without any.
async fn listen(client: Client, up: watch::Sender<bool>) {
    let waiters = Arc::clone(client.waiters());
    let channel = client.global_keys().finished_channel.clone();
    let mut idle_since = Instant::now();
    loop {
        let pubsub = match client.pubsub().await {
            Ok(mut p) => match p.subscribe(&channel).await {
                Ok(()) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "wait: subscribe failed; retrying");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "wait: cannot open the subscription; retrying");
                None
            }
        };
        if let Some(pubsub) = pubsub {
            let _ = up.send(true);
            let mut messages = pubsub.into_on_message();
            loop {
                let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
                match next {
                    Ok(Some(msg)) => {
                        if let Some((state, id)) = parse_message(msg.get_payload_bytes()) {
                            waiters.deliver(&id, Signal::Finished(state));
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
                if waiters.is_idle() {
                    if idle_since.elapsed() > IDLE_STOP {
                        stop(&client, &up);
                        return;
                    }
                } else {
                    idle_since = Instant::now();
                }
            }
            let _ = up.send(false);
            tracing::warn!("wait: subscription lost; waits read their status again");
        }
        waiters.recheck_all();
        if waiters.is_idle() && idle_since.elapsed() > IDLE_STOP {
            stop(&client, &up);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(client: &Client, up: &watch::Sender<bool>) {
    let _ = up.send(false);
    *client
        .waiters()
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    // A wait that registered in between gets a fresh task via Recheck.
    client.waiters().recheck_all();
}

#[cfg(test)]
mod tests {
    use super::parse_message;
    use crate::outcome::Status;

    #[test]
    fn messages_parse_and_garbage_is_ignored() {
        assert_eq!(
            parse_message(b"done 0193-abc"),
            Some((Status::Done, "0193-abc".to_owned()))
        );
        assert_eq!(
            parse_message(b"cancelled a b"),
            Some((Status::Cancelled, "a b".to_owned()))
        );
        assert_eq!(
            parse_message(b"deleted x"),
            Some((Status::Unknown, "x".to_owned()))
        );
        assert_eq!(parse_message(b"bogus x"), None);
        assert_eq!(parse_message(b"\xff x"), None);
        assert_eq!(parse_message(b"done"), None);
    }
}
