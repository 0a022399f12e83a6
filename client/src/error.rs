//! Infrastructure errors of `spool-client`.
//!
//! One enum for everything that can go wrong between the application and
//! Redis: bad input caught before Redis (queue names, payload size, JSON),
//! Redis being unreachable or refusing, and records Spool cannot decode.
//! Handler intent (retry, permanent failure) is a different family and lives
//! in `spool-worker`'s `JobError`.

/// Errors returned by [`Client`](crate::Client), [`Admin`](crate::Admin) and the
/// runtime protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A queue name broke the naming rule (`[A-Za-z0-9_.-]`, 1 to 64 characters).
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidQueueName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The serialized job is larger than the client's payload limit.
    #[error("job payload of {size} bytes for queue {queue:?} exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Queue the job was meant for.
        queue: String,
        /// Size of the serialized job body in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// An option or argument is out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A cron entry is malformed: bad name, schedule, time zone or options.
    #[error("cron entry {entry:?}: {reason}")]
    InvalidCronEntry {
        /// The entry's name.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No live cron entry has this name.
    #[error("no cron entry named {0:?}")]
    UnknownCronEntry(String),
    /// Job args could not be serialized to JSON.
    #[error("cannot serialize args of job type {job_type:?}: {source}")]
    Serialize {
        /// The job type being enqueued.
        job_type: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A record read from Redis could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded (with its key or id).
        what: String,
        /// The reason.
        reason: String,
    },
    /// An enqueue middleware refused the job (nothing was sent).
    #[error("enqueue of a {job_type:?} job refused by middleware #{middleware}: {reason}")]
    Refused {
        /// The job type.
        job_type: String,
        /// Which middleware (0 = the first added).
        middleware: usize,
        /// What it said.
        reason: String,
    },
    /// Redis returned an error or could not be reached.
    #[error("redis error during {op}: {source}")]
    Redis {
        /// The operation that failed (script name or command).
        op: &'static str,
        /// The driver's error.
        #[source]
        source: redis::RedisError,
    },
    /// The first connection to Redis failed (unreachable, refused, TLS or
    /// authentication failure). `target` is the URL with any password hidden.
    #[error("cannot connect to redis at {target}: {source}{hint}")]
    Connect {
        /// The URL, password replaced by `***`.
        target: String,
        /// A hint for the likely cause, or empty.
        hint: &'static str,
        /// The driver's error.
        #[source]
        source: redis::RedisError,
    },
    /// A write reached the primary but not enough replicas in time
    /// ([`Durability::Replicated`](crate::Durability)). It may or may not
    /// survive a failover: treat the outcome as unknown.
    #[error(
        "{op}: only {acked} of {wanted} replicas acknowledged the write within {timeout:?}; \
         it is on the primary and may be lost if the primary fails now"
    )]
    NotReplicated {
        /// The operation (enqueue, ack, fail).
        op: &'static str,
        /// Replicas asked for.
        wanted: u32,
        /// Replicas that acknowledged.
        acked: u32,
        /// How long the client waited.
        timeout: std::time::Duration,
    },
    /// The Redis server is configured in a way that would lose jobs.
    #[error("unsafe redis configuration: {0}")]
    UnsafeServer(String),
}

impl Error {
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| Self::Redis { op, source }
    }

    pub(crate) fn parse(op: &'static str) -> impl FnOnce(redis::ParsingError) -> Self {
        move |e| Self::Decode {
            what: format!("reply of {op}"),
            reason: e.to_string(),
        }
    }

    /// True when the error came from the connection to Redis (refused, reset,
    /// timed out) rather than from the request itself. Callers retry these.
    #[must_use]
    pub fn is_connection_error(&self) -> bool {
        match self {
            Self::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
            }
            _ => false,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
