//! Deterministic waiting: poll a condition until it holds or a deadline
//! passes. No bare sleeps in tests.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns true; panics with `what` after `within`.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
