//! Cron: periodic jobs defined by a table of [`CronEntry`]s that any number
//! of worker processes share.
//!
//! Where it sits: a cron tick is one more way into the ready list
//! (`cron_tick.lua`, beside `enqueue.lua`, sharing its record builder). The
//! worker's cron service (`spool-worker`'s `maintenance::cron`) plans with
//! [`CronSchedule`] from Redis's clock and calls the runtime protocol in
//! `protocol.rs`; the admin API (`admin/cron.rs`) lists, pauses, resumes
//! and runs entries. `docs/CRON.md` states the guarantee and the keys.
//!
//! This module owns the entry definition and its validation; it never reads
//! the host clock for a schedule decision. Layout:
//!
//! | file | role |
//! | --- | --- |
//! | `parse.rs` | expression → the `cron` crate's schedules (5/6/7 fields, shortcuts, `@every`) |
//! | `schedule.rs` | [`CronSchedule`]: the next tick after an instant |
//! | `dst.rs` | the daylight-saving rule: wall time → instant |
//! | `plan.rs` | [`CronPlan`]: what one pass fires and skips |
//! | `protocol.rs` | the script calls (`cron_register`, `cron_tick`, `cron_pause`, `cron_forget`) |

mod dst;
mod parse;
mod plan;
pub(crate) mod protocol;
mod schedule;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::enqueue::JobDefaults;
use crate::error::{Error, Result};
use crate::job::Job;

pub use plan::CronPlan;
pub use protocol::{CronCursor, CronRegistered, CronTickOutcome};
pub use schedule::CronSchedule;

/// Grace period for a missed tick unless the entry says otherwise (60 s).
pub const CRON_GRACE_DEFAULT: Duration = Duration::from_secs(60);
/// Longest accepted grace period (one day).
pub const CRON_GRACE_MAX: Duration = Duration::from_secs(86_400);
/// Window in which a second "run now" of an entry returns the first job (10 s).
pub const CRON_RUN_NOW_WINDOW: Duration = Duration::from_secs(10);
/// Longest accepted entry name.
pub const CRON_NAME_MAX_LEN: usize = 128;
/// Time zone of entries that do not name one.
pub const CRON_TIMEZONE_DEFAULT: &str = "UTC";

/// One line of a cron table: a unique name, a schedule in a time zone, and
/// the job (type, args, queue, attempts, timeout) to enqueue at each tick.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spool_client::{CronEntry, Job};
///
/// #[derive(Serialize, Deserialize)]
/// struct NightlyReport { recipients: Vec<String> }
/// impl Job for NightlyReport { const TYPE: &'static str = "nightly_report"; }
///
/// let entry = CronEntry::new("nightly-report", "0 3 * * *", &NightlyReport { recipients: vec![] })
///     .timezone("Europe/Berlin")
///     .queue("reports");
/// assert!(entry.validate().is_ok());
///
/// // Untyped, for tools that do not link the job types:
/// let raw = CronEntry::raw("cleanup", "@every 15m", "cleanup", serde_json::json!({"days": 30}));
/// assert!(raw.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronEntry {
    /// Unique name: 1 to 128 characters from `[A-Za-z0-9_.-]`. Names the
    /// entry in Redis, on the dashboard and in every tick key.
    pub name: String,
    /// The schedule (see [`CronSchedule::parse`] for the accepted forms).
    pub schedule: String,
    /// IANA time zone the schedule's wall times are read in. Default `UTC`.
    pub timezone: String,
    /// The job type enqueued at each tick.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The job's args.
    pub args: serde_json::Value,
    /// Target queue. Default: the job type's queue (`default` for untyped entries).
    pub queue: String,
    /// Attempts of each enqueued job. Default: the job type's.
    pub max_attempts: u32,
    /// Handler time limit of each enqueued job. Default: the job type's.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
    /// A tick missed (no worker alive at its time) fires on recovery only if
    /// it is at most this late; older missed ticks are skipped and counted.
    /// Default [`CRON_GRACE_DEFAULT`].
    #[serde(rename = "grace_ms", with = "duration_ms")]
    pub grace: Duration,
    /// Why the typed args could not be serialized (reported by `validate`).
    #[serde(skip)]
    args_error: Option<String>,
    /// The job type is encrypted: refused by `validate` (the cron table
    /// keeps an entry's args in Redis in plain text).
    #[serde(skip)]
    encrypted: bool,
}

impl CronEntry {
    /// An entry enqueuing `job` (with its type's queue, attempts and timeout)
    /// on `schedule`, in UTC.
    #[must_use]
    pub fn new<J: Job>(name: impl Into<String>, schedule: impl Into<String>, job: &J) -> Self {
        let (args, args_error) = match serde_json::to_value(job) {
            Ok(v) => (v, None),
            Err(e) => (serde_json::Value::Null, Some(e.to_string())),
        };
        let mut entry = Self::raw(name, schedule, J::TYPE, args);
        let defaults = JobDefaults::of::<J>();
        entry.queue = defaults.queue;
        entry.max_attempts = defaults.max_attempts;
        entry.timeout = defaults.timeout;
        entry.args_error = args_error;
        entry.encrypted = defaults.encrypted;
        entry
    }

    /// An untyped entry: a job type name and JSON args, with the default
    /// queue, attempts and timeout (for the CLI, the dashboard and tools
    /// that do not link the job types).
    #[must_use]
    pub fn raw(
        name: impl Into<String>,
        schedule: impl Into<String>,
        job_type: impl Into<String>,
        args: serde_json::Value,
    ) -> Self {
        let d = JobDefaults::default();
        Self {
            name: name.into(),
            schedule: schedule.into(),
            timezone: CRON_TIMEZONE_DEFAULT.to_owned(),
            job_type: job_type.into(),
            args,
            queue: d.queue,
            max_attempts: d.max_attempts,
            timeout: d.timeout,
            grace: CRON_GRACE_DEFAULT,
            args_error: None,
            encrypted: false,
        }
    }

    /// Reads the schedule's wall times in this IANA zone (`Europe/Berlin`).
    #[must_use]
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    crate::job::job_option_setters!();

    /// Grace period for missed ticks (1 s to 1 day).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Checks every field and parses the schedule.
    ///
    /// # Errors
    /// [`Error::InvalidCronEntry`] naming the entry and what is wrong: name,
    /// schedule, time zone, queue, job type, args or grace period.
    pub fn validate(&self) -> Result<CronSchedule> {
        let fail = |reason: String| Error::InvalidCronEntry {
            entry: self.name.chars().take(80).collect(),
            reason,
        };
        validate_cron_name(&self.name).map_err(fail)?;
        crate::keys::validate_queue_name(&self.queue).map_err(|e| fail(e.to_string()))?;
        if self.job_type.is_empty() || self.job_type.len() > 256 {
            return Err(fail("job type must be 1 to 256 bytes".to_owned()));
        }
        if let Some(e) = &self.args_error {
            return Err(fail(format!("cannot serialize the job's args: {e}")));
        }
        if self.encrypted {
            return Err(fail(format!(
                "job type {:?} is encrypted, and a cron table keeps its entries' args in Redis in \
                 plain text: enqueue it from a handler of a cron job instead",
                self.job_type
            )));
        }
        if self.grace < Duration::from_secs(1) || self.grace > CRON_GRACE_MAX {
            return Err(fail(format!(
                "grace period must be 1 s to 1 day, got {:?}",
                self.grace
            )));
        }
        CronSchedule::parse(&self.schedule, &self.timezone).map_err(fail)
    }

    /// The job defaults an enqueue of this entry uses.
    pub(crate) fn defaults(&self) -> JobDefaults {
        JobDefaults {
            queue: self.queue.clone(),
            max_attempts: self.max_attempts.max(1),
            timeout: self.timeout,
            keep_outcome: std::time::Duration::ZERO,
            unique: None,
            webhooks: Vec::new(),
            follow_ups: Vec::new(),
            priority: 0,
            encrypted: false,
        }
    }
}

/// Checks a cron entry name: 1 to 128 characters from `[A-Za-z0-9_.-]` (no
/// `:`, so tick keys `…:cron:<name>:<tick>` cannot collide).
///
/// # Errors
/// A readable reason.
pub fn validate_cron_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > CRON_NAME_MAX_LEN {
        return Err(format!(
            "name must be 1 to {CRON_NAME_MAX_LEN} characters, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "name {name:?} may only contain A-Z, a-z, 0-9, '_', '.' and '-'"
        ));
    }
    Ok(())
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(crate::enqueue::duration_ms(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Report {
        day: u32,
    }
    impl Job for Report {
        const TYPE: &'static str = "report";
        fn options() -> crate::JobOptions {
            crate::JobOptions::default()
                .queue("reports")
                .max_attempts(2)
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Payroll {
        iban: String,
    }
    impl Job for Payroll {
        const TYPE: &'static str = "payroll";
        fn options() -> crate::JobOptions {
            crate::JobOptions::default().encrypted(true)
        }
    }

    /// A cron table keeps args in plain text: encrypted types are refused.
    #[test]
    fn cron_entries_of_encrypted_types_are_refused() {
        let e = CronEntry::new("pay", "0 0 1 * *", &Payroll { iban: "x".into() });
        let err = e.validate().expect_err("refused").to_string();
        assert!(err.contains("encrypted"), "{err}");
    }

    /// Issue 8: every cron write is one script (`cron_*.lua`); a direct
    /// write must not creep back into the runtime protocol or the admin API.
    #[test]
    fn cron_code_writes_only_through_scripts() {
        let sources = [
            ("cron/protocol.rs", include_str!("protocol.rs")),
            ("admin/cron.rs", include_str!("../admin/cron.rs")),
        ];
        let writes = [
            "SET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "HSET", "HDEL", "HINCRBY", "SADD", "SREM",
            "ZADD", "ZREM", "LPUSH", "RPUSH", "LTRIM",
        ];
        for (file, src) in sources {
            for w in writes {
                assert!(
                    !src.contains(&format!("\"{w}\"")),
                    "{file} issues {w} outside a script"
                );
            }
        }
    }

    #[test]
    fn typed_entries_take_the_job_types_defaults() {
        let e = CronEntry::new("r", "@daily", &Report { day: 1 });
        assert_eq!(e.queue, "reports");
        assert_eq!(e.max_attempts, 2);
        assert_eq!(e.job_type, "report");
        assert_eq!(e.args, serde_json::json!({"day": 1}));
        assert!(e.validate().is_ok());
    }

    #[test]
    fn definitions_round_trip_through_json() {
        let e = CronEntry::raw("c", "@every 5m", "cleanup", serde_json::json!([1, 2]))
            .timezone("Europe/Berlin")
            .grace(Duration::from_secs(5));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"grace_ms\":5000"), "{json}");
        let back: CronEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn invalid_entries_are_refused_with_their_name() {
        let ok = || CronEntry::raw("nightly", "@daily", "t", serde_json::Value::Null);
        for (entry, needle) in [
            (ok().timezone("Nowhere/City"), "unknown time zone"),
            (
                CronEntry::raw("nightly", "0 0 25 * * *", "t", serde_json::Value::Null),
                "invalid cron expression",
            ),
            (
                CronEntry::raw("night:ly", "@daily", "t", serde_json::Value::Null),
                "may only contain",
            ),
            (ok().queue("a b"), "invalid queue name"),
            (ok().grace(Duration::ZERO), "grace period"),
        ] {
            let err = entry.validate().expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with("cron entry \"night"), "{err}");
        }
    }
}
