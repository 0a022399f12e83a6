//! Maintenance: the periodic services every worker process runs.
//!
//! - [`Scheduler`]: due scheduled and retry jobs → ready (`promote.lua`).
//! - [`Reaper`]: expired leases → ready, counting the attempt (`reap.lua`).
//! - [`Trimmer`]: retention of the dead set and of per-minute stats (`trim.lua`).
//! - [`CronScheduler`]: cron entries → ready, once per tick (`cron_tick.lua`);
//!   only in processes given a cron table. It wakes at each tick rather than
//!   on a jittered period: processes racing for a tick is the design (the
//!   tick key lets one win), not a load problem.
//!
//! There is no leader: the scripts are atomic and idempotent, so any number
//! of processes may run them at once (each job moves once); periods are
//! jittered so hosts do not tick together. Each service has the same shape:
//! a config, `run_once` returning a report (tests call it directly), and
//! `run` looping until the stop token fires; Redis errors are logged and
//! retried with backoff, never fatal.

mod cron;
mod reaper;
mod scheduler;
mod trimmer;

pub use cron::{CronConfig, CronReport, CronScheduler};
pub use reaper::{Reaper, ReaperReport};
pub use scheduler::{Scheduler, SchedulerReport};
pub use trimmer::{Trimmer, TrimmerReport};
