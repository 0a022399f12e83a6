//! Lease notices for running jobs: `cancel.lua` marks the lease and
//! publishes `<token> <id>` on the namespace's cancel channel; `reap.lua`
//! publishes `!lost <token> <id>` for each lease it takes back. A worker
//! subscribes once and fires the run holding that lease. A worker that
//! misses a message (its subscription dropped) learns it from
//! `extend.lua` at its next heartbeat. Runtime protocol, not for
//! application code.

use futures::StreamExt;

use super::{LeaseLoss, LeaseToken, LostLease, Runtime};
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
    /// The next notice: the job and the lease whose run should stop, and
    /// why ([`LeaseLoss::CancelAsked`], or [`LeaseLoss::Gone`] when the
    /// reaper took the lease back). `None` when the subscription ended
    /// (open a new one).
    pub async fn next(&mut self) -> Option<LostLease> {
        loop {
            let msg = self.messages.next().await?;
            if let Some(notice) = std::str::from_utf8(msg.get_payload_bytes())
                .ok()
                .and_then(parse_notice)
            {
                return Some(notice);
            }
        }
    }
}

/// A message of the cancel channel; `None` for anything else.
fn parse_notice(text: &str) -> Option<LostLease> {
    let (why, text) = match text.strip_prefix("!lost ") {
        Some(rest) => (LeaseLoss::Gone, rest),
        None => (LeaseLoss::CancelAsked, text),
    };
    let (token, id) = text.split_once(' ')?;
    (!token.is_empty() && !token.starts_with('!') && !id.is_empty()).then(|| LostLease {
        id: JobId::from(id),
        token: LeaseToken::from(token),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse() {
        let cancel = parse_notice("12 job 1").unwrap();
        assert_eq!((cancel.id.as_str(), cancel.token.as_str()), ("job 1", "12"));
        assert_eq!(cancel.why, LeaseLoss::CancelAsked);
        let lost = parse_notice("!lost 7 abc").unwrap();
        assert_eq!((lost.id.as_str(), lost.token.as_str()), ("abc", "7"));
        assert_eq!(lost.why, LeaseLoss::Gone);
        for junk in ["", "x", "!lost", "!lost 7", "!other 1 2", " 1"] {
            assert!(parse_notice(junk).is_none(), "{junk}");
        }
    }
}
