//! Infrastructure errors of `spool-worker` (configuration, start-up).
//! Handler intent is [`JobError`](crate::JobError), a separate family.

/// Errors that stop a worker from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range; the message names it.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The inline runner (`testing` feature) spent its run budget with
    /// jobs still to run: handlers that keep enqueueing or snoozing.
    #[cfg(feature = "testing")]
    #[error(
        "the inline runner stopped after {runs} runs with jobs left (handlers that keep \
         enqueueing or rate-limiting?); raise InlineRunner::max_runs if that is expected"
    )]
    InlineRunLimit {
        /// The budget that ran out.
        runs: usize,
    },
    /// The Redis server is unsafe or unreachable at start-up.
    #[error(transparent)]
    Client(#[from] spool_client::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
