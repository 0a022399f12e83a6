//! Lease-notice listener: fires the run of a job someone cancelled while
//! it runs here, or whose lease the reaper took back (the run hung or this
//! process was cut off from Redis past its lease), within moments.
//!
//! One subscription per worker process to the namespace's cancel channel
//! (`cancel.lua` publishes `<token> <id>`, `reap.lua` `!lost <token> <id>`);
//! a cancel for a lease this process holds sets the run's "cancel
//! requested" flag and fires its cancellation token; a lost lease fires the
//! token (the heartbeat's rules: a run that already finished is left
//! alone). Messages for other processes' leases are ignored.
//! When the subscription drops, it is opened again; a request published
//! meanwhile reaches the run through the heartbeat (`extend.lua` reports
//! the cancel mark), so nothing is lost, only later.

use std::time::Duration;

use spool_client::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::in_flight::InFlight;
use crate::services::heartbeat::on_lost;

/// Runs until `stop` fires.
pub(crate) async fn listen_for_cancels(
    runtime: Runtime,
    in_flight: InFlight,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::redis();
    loop {
        let subscription = tokio::select! {
            s = runtime.cancel_subscription() => s,
            () = stop.cancelled() => return,
        };
        match subscription {
            Ok(mut sub) => {
                backoff.reset();
                loop {
                    let next = tokio::select! {
                        n = sub.next() => n,
                        () = stop.cancelled() => return,
                    };
                    let Some(notice) = next else { break };
                    on_lost(&in_flight, &notice);
                }
                tracing::warn!("cancel subscription ended; opening it again");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot subscribe to cancel requests; retrying");
            }
        }
        let delay = backoff.next_delay().max(Duration::from_millis(100));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return,
        }
    }
}
