//! Cancel requests for running jobs: `cancel.lua` marks the lease and
//! publishes `<token> <id>` on the namespace's cancel channel; a worker
//! subscribes once and fires the run holding that lease. A worker that
//! misses a message (its subscription dropped) learns it from
//! `extend.lua` at its next heartbeat. Runtime protocol, not for
//! application code.

use futures::StreamExt;

use super::{LeaseToken, Runtime};
use crate::error::{Error, Result};
use crate::job::JobId;

/// A subscription to the cancel channel.
pub struct CancelSubscription {
    messages: redis::aio::PubSubStream,
}

impl std::fmt::Debug for CancelSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelSubscription").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Subscribes to cancel requests (confirmed when this returns).
    ///
    /// # Errors
    /// [`Error::Connect`] or [`Error::Redis`].
    pub async fn cancel_subscription(&self) -> Result<CancelSubscription> {
        let mut pubsub = self.client.pubsub().await?;
        pubsub
            .subscribe(&self.client.global_keys().cancel_channel)
            .await
            .map_err(Error::redis("SUBSCRIBE cancel"))?;
        Ok(CancelSubscription {
            messages: pubsub.into_on_message(),
        })
    }
}

impl CancelSubscription {
    /// The next request: the job and the lease whose run should stop.
    /// `None` when the subscription ended (open a new one).
    pub async fn next(&mut self) -> Option<(JobId, LeaseToken)> {
        loop {
            let msg = self.messages.next().await?;
            let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) else {
                continue;
            };
            if let Some((token, id)) = text.split_once(' ') {
                return Some((JobId::from(id), LeaseToken::from(token)));
            }
        }
    }
}
