//! # spool-client
//!
//! The producer side of Spool and everything that speaks to Redis.
//!
//! Spool moves a job through Redis like this (see `docs/STATES.md`):
//!
//! ```text
//! enqueue ─▶ ready ─fetch+lease─▶ active ─ok─▶ done
//!   │at/in     ▲                    ├─err─▶ retry ─due─┐
//!   ▼          │due                 ├─no attempts left─▶ dead ─operator retry─▶ ready
//! scheduled ───┘◀───────────────────┴─lease expired─▶ (reaper) ready
//! ```
//!
//! Module map:
//! - [`job`](Job): the [`Job`] trait for typed jobs and the wire record [`JobRecord`].
//! - `enqueue`: [`Client::enqueue`] and friends: now, at, in, bulk, idempotent.
//! - `keys`: the key schema (`QueueKeys`, `GlobalKeys`); no key string is built elsewhere.
//! - `scripts`: the Lua scripts, one per state change; the only writers of job state.
//! - `runtime`: the protocol the worker drives (fetch with leases, fenced
//!   completion, extension, reaping, promotion, process record, wake-ups).
//!   Not for application code, so hidden from these docs; producers in
//!   other languages follow docs/PROTOCOL.md and `spool protocol`.
//! - `cron`: periodic jobs: [`CronEntry`] (a line of a cron table), [`CronSchedule`]
//!   (parsing, next tick, DST policy) and the cron runtime protocol
//!   (`runtime::cron`).
//! - `keyring`: payload encryption ([`Keyring`], the envelope that
//!   replaces an encrypted job's args).
//! - [`admin`]: the read model and repair actions for the dashboard and CLI ([`Admin`]).
//! - `testing` (feature `testing`): a recording `FakeClient` for unit tests
//!   and a private `RedisServer` for integration tests.
//!
//! Three handles, one per audience: [`Client`] for producers (enqueue),
//! [`Admin`] for operators' tools (read and repair), `runtime::Runtime` for
//! the worker.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use spool_client::{Client, Job};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
//!
//! # async fn demo() -> spool_client::Result<()> {
//! let client = Client::connect("redis://127.0.0.1:6379").await?;
//! let id = client.enqueue(&SendEmail { to: "ada@example.com".into() }).await?;
//! client.enqueue_in(&SendEmail { to: "bob@example.com".into() }, std::time::Duration::from_secs(60)).await?;
//! # Ok(()) }
//! ```

pub mod admin;
mod batch;
mod client;
mod connection;
mod cron;
mod enqueue;
mod error;
mod events;
mod followup;
mod job;
mod keyring;
mod keys;
pub mod metrics_text;
pub mod middleware;
#[cfg(feature = "otel")]
pub mod otel;
mod outcome;
mod record_decode;
mod redact;
mod retry_policy;
// The protocol `spool-worker` drives: usable (the worker, the dashboard's
// `spool protocol`, the tests), but not for application code, so it is left
// off the front page of the docs.
#[doc(hidden)]
pub mod runtime;
mod scripts;
#[cfg(feature = "testing")]
pub mod testing;
mod waiters;
mod wire;

pub use crate::cron::{
    validate_cron_name, CronEntry, CronSchedule, CRON_GRACE_DEFAULT, CRON_GRACE_MAX,
    CRON_NAME_MAX_LEN, CRON_RUN_NOW_WINDOW, CRON_TIMEZONE_DEFAULT,
};
pub use admin::Admin;
pub use batch::{
    Batch, BatchCallback, BatchCallbackInfo, BatchId, BatchKind, BatchMember, BatchOn, BatchStatus,
    Chain, MemberResult, MemberState, BATCH_KEEP_DEFAULT, CHAIN_LINKS_MAX,
};
pub use client::{
    Client, ClientBuilder, Durability, Retention, ServerCheck, MAX_PAYLOAD_BYTES_DEFAULT,
    RESPONSE_TIMEOUT_DEFAULT,
};
pub use connection::{Connection, TlsFiles, Topology};
pub use enqueue::{
    unique_key_for_args, EnqueueOptions, Enqueued, JobDefaults, Uniqueness,
    IDEMPOTENCY_WINDOW_DEFAULT, RATE_KEY_MAX_BYTES, UNIQUE_LOCK_TTL_DEFAULT,
};
pub use error::{Error, Result};
pub use events::{
    Event, EventAcker, EventGroup, EventKind, EventLevel, EventReader, EventsConfig,
    EVENTS_MAX_DEFAULT, EVENTS_MAX_RANGE,
};
pub use followup::{
    check_webhook_url, FollowUp, FollowUpOn, Parent, PendingFollowUp, WebhookDelivery,
    FOLLOW_UPS_MAX, FOLLOW_UP_DEDUPE, FOLLOW_UP_MOVE_BATCH, WEBHOOK_MAX_ATTEMPTS, WEBHOOK_QUEUE,
};
pub use job::{
    CronOrigin, ErrorEntry, Job, JobId, JobOptions, JobOutput, JobRecord, JobSet, JobState,
    MAX_ATTEMPTS_DEFAULT, PRIORITY_MAX, QUEUE_DEFAULT, TIMEOUT_DEFAULT,
};
pub use keyring::{
    envelope_key_id, DecryptError, Envelope, Keyring, ENVELOPE_PREFIX, KEYRING_ENV,
    KEY_ID_MAX_BYTES,
};
pub use keys::{validate_queue_name, NAMESPACE_DEFAULT, QUEUE_NAME_MAX_LEN};
pub use outcome::{CancelResult, HistoryEntry, JobStatus, Status};
pub use redact::redact_url;
pub use retry_policy::{ExponentialJitter, FixedDelay, RetryPolicy};
pub use wire::{ERROR_TEXT_MAX_BYTES, MAX_ARGS_DEPTH};
// Helpers the worker and dashboard share; not API for applications.
#[doc(hidden)]
pub use wire::{check_args_depth, truncate_utf8};

/// This crate's README (what crates.io shows), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
