//! What each `spool` command does, over `spool_client::Admin`. Output
//! formatting lives in `output`; flag checks in `parse`.

use std::io::Write;

use spool_client::admin::{ForgetQueue, JobFilter, JobView, QueueInfo, QueueStats};
use spool_client::{
    Admin, BatchId, CancelResult, Client, EnqueueOptions, Event, JobDefaults, JobId, JobSet,
    JobStatus, Status,
};

use super::output;
use super::parse::{
    BatchCmd, CronCmd, DeadCmd, EnqueueArgs, FilterArgs, ProtocolCmd, QueueCmd, Selection,
};
use super::{CliResult, Failure, Prompt, RedisArgs};
use crate::text::{clip, FIELD_BYTES};

/// Dead-set entries a filtered `dead` command examines per queue.
const DEAD_SCAN_WINDOW: u64 = 1_000_000;

/// Queue names a refusal lists as the known ones.
const KNOWN_SHOWN: usize = 10;

/// What the commands over queues and sets share: the admin handle, where
/// it points (for messages), and whether they may ask on the terminal.
pub(crate) struct Cx<'a> {
    pub(crate) admin: &'a Admin,
    pub(crate) redis: &'a RedisArgs,
    pub(crate) prompt: Prompt,
}

/// `Ok` when `queue` is a valid name in the registry; else a refusal
/// (exit 2) listing the known queues and ending with `hint`.
pub(crate) async fn known_queue(admin: &Admin, queue: &str, hint: &str) -> CliResult {
    spool_client::validate_queue_name(queue)?;
    let names = admin.queue_names().await?;
    if names.iter().any(|n| n == queue) {
        return Ok(());
    }
    let known = if names.is_empty() {
        "none".to_owned()
    } else {
        let shown: Vec<&str> = names.iter().take(KNOWN_SHOWN).map(String::as_str).collect();
        let more = if names.len() > KNOWN_SHOWN {
            ", …"
        } else {
            ""
        };
        format!("{}{more}", shown.join(", "))
    };
    Err(Failure::Usage(format!(
        "no queue named {queue:?} (known: {known}); {hint}"
    )))
}

/// When the Redis asked has no queue registered and no worker running,
/// says so on `err`, naming the server (password hidden) and namespace, and
/// returns true: zeros would look like an idle system.
async fn no_spool_data(
    cx: &Cx<'_>,
    queues: &[QueueInfo],
    err: &mut dyn Write,
) -> Result<bool, Failure> {
    if !queues.is_empty() || !cx.admin.processes().await?.is_empty() {
        return Ok(false);
    }
    writeln!(
        err,
        "no Spool data at {} (namespace {:?}): no queue is registered and no worker is running. \
         Another server or namespace? Set REDIS_URL or --redis-url, SPOOL_NAMESPACE or --namespace.",
        spool_client::redact_url(&cx.redis.redis_url),
        clip(&cx.redis.namespace, FIELD_BYTES)
    )?;
    Ok(true)
}

/// The registered queues, skipping (with one warning line on `err`) members
/// of the registry that are not valid queue names.
async fn queue_list(admin: &Admin, err: &mut dyn Write) -> Result<Vec<QueueInfo>, Failure> {
    let (queues, skipped) = crate::state::queue_list(admin).await?;
    if let Some(first) = skipped.first() {
        writeln!(
            err,
            "warning: skipped {} registry member(s) that are not valid queue names (first: {:?})",
            skipped.len(),
            clip(first, FIELD_BYTES)
        )?;
    }
    Ok(queues)
}

/// `stats` (`totals`) or `queues`, as a table or JSON.
pub(crate) async fn stats_or_queues(
    cx: &Cx<'_>,
    totals: bool,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CliResult {
    let admin = cx.admin;
    let queues = queue_list(admin, err).await?;
    if no_spool_data(cx, &queues, err).await? && !json {
        return Ok(());
    }
    if !totals {
        if json {
            output::json(out, &queues)?;
        } else {
            output::queues(out, &queues)?;
        }
        return Ok(());
    }
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let total = QueueStats::sum(&admin.stats_of(&names, 1).await?);
    let processes = admin.processes().await?.len() as u64;
    let sum = |f: fn(&QueueInfo) -> u64| queues.iter().map(f).sum::<u64>();
    let rows: [(&str, u64); 9] = [
        ("processed", total.processed),
        ("failed", total.failed),
        ("ready", sum(|q| q.ready)),
        ("busy", sum(|q| q.active)),
        ("scheduled", sum(|q| q.scheduled)),
        ("retry", sum(|q| q.retry)),
        ("dead", sum(|q| q.dead)),
        ("processes", processes),
        ("queues", queues.len() as u64),
    ];
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        output::json(out, &map)?;
    } else {
        output::totals(out, &rows)?;
    }
    Ok(())
}

/// The queues a dead command covers.
async fn target_queues(
    admin: &Admin,
    f: &FilterArgs,
    err: &mut dyn Write,
) -> Result<Vec<String>, Failure> {
    match &f.queue {
        Some(q) => {
            spool_client::validate_queue_name(q)?;
            Ok(vec![q.clone()])
        }
        None => Ok(queue_list(admin, err)
            .await?
            .into_iter()
            .map(|q| q.name)
            .collect()),
    }
}

pub(crate) async fn dead(
    cx: &Cx<'_>,
    cmd: DeadCmd,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CliResult {
    let admin = cx.admin;
    let (filter, limit, json) = match cmd {
        DeadCmd::List {
            filter,
            limit,
            json,
        } => (filter, usize::from(limit), json),
        DeadCmd::Retry(sel) => return act(cx, sel, true, out, err).await,
        DeadCmd::Delete(sel) => return act(cx, sel, false, out, err).await,
    };
    let f = JobFilter::new(filter.job_type.as_deref(), filter.grep.as_deref())?;
    let mut jobs: Vec<JobView> = Vec::new();
    let queues = target_queues(admin, &filter, err).await?;
    if filter.queue.is_none() && queues.is_empty() && no_spool_data(cx, &[], err).await? && !json {
        return Ok(());
    }
    for q in queues {
        let want = limit - jobs.len();
        if want == 0 {
            break;
        }
        let items = if f.is_empty() {
            admin.list_set(&q, JobSet::Dead, 0, want).await?.items
        } else {
            admin
                .scan_set(&q, JobSet::Dead, &f, 0, want, DEAD_SCAN_WINDOW)
                .await?
                .items
        };
        jobs.extend(items);
    }
    output::dead_jobs(out, &jobs, json)?;
    Ok(())
}

/// Retries (`retry`) or deletes the selected dead jobs of one queue.
async fn apply(admin: &Admin, q: &str, ids: &[&str], retry: bool) -> Result<u64, Failure> {
    Ok(if retry {
        admin.retry_jobs(q, JobSet::Dead, ids).await?
    } else {
        admin.delete_jobs(q, JobSet::Dead, ids).await?
    })
}

async fn act(
    cx: &Cx<'_>,
    sel: Selection,
    retry: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CliResult {
    let admin = cx.admin;
    let f = JobFilter::new(sel.filter.job_type.as_deref(), sel.filter.grep.as_deref())?;
    if sel.ids.is_empty() && !sel.all && f.is_empty() {
        return Err(Failure::Usage(
            "say which jobs: job ids, --all, or a filter (--type, --grep)".to_owned(),
        ));
    }
    if !sel.ids.is_empty() && !f.is_empty() {
        return Err(Failure::Usage(
            "give job ids or a filter, not both".to_owned(),
        ));
    }
    let verb = if retry { "retried" } else { "deleted" };
    let queues = target_queues(admin, &sel.filter, err).await?;
    if !sel.ids.is_empty() {
        if sel.dry_run {
            return Err(Failure::Usage(
                "--dry-run is for --all and filters; ids name the jobs already".to_owned(),
            ));
        }
        let ids: Vec<&str> = sel.ids.iter().map(String::as_str).collect();
        let mut total = 0;
        for q in &queues {
            total += apply(admin, q, &ids, retry).await?;
        }
        writeln!(out, "{verb} {total} jobs")?;
        if total < ids.len() as u64 {
            return Err(Failure::Op(format!(
                "{} of {} ids were not in a dead set (already retried or deleted?)",
                ids.len() as u64 - total,
                ids.len()
            )));
        }
        return Ok(());
    }
    let plan = bulk_plan(admin, &queues, &f).await?;
    let total: u64 = plan.iter().map(|p| p.count).sum();
    let summary = format!(
        "{total} dead jobs{}",
        if plan.is_empty() {
            String::new()
        } else {
            let per: Vec<String> = plan
                .iter()
                .map(|p| format!("{}: {}", p.queue, p.count))
                .collect();
            format!(" ({})", per.join(", "))
        }
    );
    let infinitive = if retry { "retry" } else { "delete" };
    if sel.dry_run {
        writeln!(out, "would {infinitive} {summary}")?;
        return Ok(());
    }
    if !retry && total > 0 && !sel.yes {
        match confirm(cx.prompt, &format!("delete {summary}?"), err)? {
            Some(true) => {}
            Some(false) => return Err(Failure::Usage("nothing deleted".to_owned())),
            None => {
                return Err(Failure::Usage(format!(
                    "would delete {summary}: pass --yes to delete them (--dry-run only says)"
                )))
            }
        }
    }
    let mut done = 0;
    for p in &plan {
        done += match &p.ids {
            None if retry => admin.retry_all(&p.queue, JobSet::Dead).await?,
            None => admin.delete_all(&p.queue, JobSet::Dead).await?,
            Some(ids) => {
                let ids: Vec<&str> = ids.iter().map(JobId::as_str).collect();
                apply(admin, &p.queue, &ids, retry).await?
            }
        };
    }
    writeln!(out, "{verb} {done} jobs")?;
    Ok(())
}

/// One queue's share of a bulk dead-set command.
struct BulkPart {
    queue: String,
    /// The matching ids (a filter), or `None` for every dead job (`--all`).
    ids: Option<Vec<JobId>>,
    count: u64,
}

/// What `--all` or a filter selects, per queue with any.
async fn bulk_plan(
    admin: &Admin,
    queues: &[String],
    f: &JobFilter,
) -> Result<Vec<BulkPart>, Failure> {
    let mut plan = Vec::new();
    for q in queues {
        let part = if f.is_empty() {
            let count = admin.queue(q).await?.dead;
            BulkPart {
                queue: q.clone(),
                ids: None,
                count,
            }
        } else {
            let (ids, _) = admin
                .matching_ids(q, JobSet::Dead, f, DEAD_SCAN_WINDOW)
                .await?;
            BulkPart {
                queue: q.clone(),
                count: ids.len() as u64,
                ids: Some(ids),
            }
        };
        if part.count > 0 {
            plan.push(part);
        }
    }
    Ok(plan)
}

/// Asks `question` on the terminal: `None` when it may not or cannot ask
/// ([`Prompt::Never`], or stdin or stderr is not a terminal), else whether
/// the answer was yes.
fn confirm(prompt: Prompt, question: &str, err: &mut dyn Write) -> Result<Option<bool>, Failure> {
    use std::io::IsTerminal as _;
    if prompt == Prompt::Never
        || !std::io::stdin().is_terminal()
        || !std::io::stderr().is_terminal()
    {
        return Ok(None);
    }
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(Some(matches!(line.trim(), "y" | "Y" | "yes" | "YES")))
}

pub(crate) async fn cron(admin: &Admin, cmd: CronCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        CronCmd::List => {
            let entries = admin.cron_entries().await?;
            if entries.is_empty() {
                writeln!(out, "no cron table is registered")?;
            } else {
                output::cron_entries(out, &entries)?;
            }
            Ok(())
        }
        CronCmd::Run { name } => {
            spool_client::validate_cron_name(&name).map_err(Failure::Usage)?;
            match admin.cron_run_now(&name).await {
                Ok(e) if e.duplicate => {
                    writeln!(out, "{} (duplicate: run a moment ago)", e.id)?;
                    Ok(())
                }
                Ok(e) => {
                    writeln!(out, "{}", e.id)?;
                    Ok(())
                }
                Err(spool_client::Error::UnknownCronEntry(n)) => Err(Failure::Op(format!(
                    "no live cron entry {:?} (is a worker with this cron table running?)",
                    clip(&n, FIELD_BYTES)
                ))),
                Err(e) => Err(e.into()),
            }
        }
    }
}

pub(crate) async fn enqueue(
    client: &Client,
    a: EnqueueArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CliResult {
    let mut opts = EnqueueOptions::new().queue(a.queue);
    if let Some(at) = a.at {
        opts = opts.at(at);
    }
    if let Some(d) = a.delay {
        opts = opts.delay(d);
    }
    if let Some(n) = a.max_attempts {
        opts = opts.max_attempts(n);
    }
    if let Some(k) = a.idempotency_key {
        opts = opts.idempotency_key(k);
    }
    if let Some(keep) = a.keep_outcome {
        opts = opts.keep_outcome(keep);
    }
    if let Some(level) = a.priority {
        opts = opts.priority(level);
    }
    let e = client
        .enqueue_raw(&a.job_type, &a.json_args, &JobDefaults::default(), opts)
        .await?;
    writeln!(out, "{}", e.id)?;
    if e.duplicate {
        writeln!(
            err,
            "duplicate: a job was already enqueued with this key; that is its id"
        )?;
    }
    Ok(())
}

/// `spool status` / `spool wait`: prints a job's status; `Err` (exit 1)
/// unless `ok` holds for it.
pub(crate) fn print_status(
    s: &JobStatus,
    json: bool,
    out: &mut dyn Write,
    ok: impl Fn(Status) -> bool,
) -> CliResult {
    if json {
        writeln!(out, "{}", serde_json::to_string(s).unwrap_or_default())?;
    } else {
        let field = |v: Option<String>| v.map_or_else(|| "-".to_owned(), |v| clip(&v, FIELD_BYTES));
        // `2/25`, or `1` when the runs allowed are unknown (the short form
        // of a kept outcome does not keep them).
        let attempts = match (s.attempt, s.max_attempts) {
            (Some(a), Some(m)) => Some(format!("{a}/{m}")),
            (a, _) => a.map(|a| a.to_string()),
        };
        writeln!(
            out,
            "{}  {}  queue={}  type={}  attempt={}  worker={}",
            s.id,
            s.status,
            field(s.queue.clone()),
            field(s.job_type.clone()),
            field(attempts),
            field(s.worker.clone()),
        )?;
        if let Some(e) = &s.last_error {
            writeln!(out, "  last error: {}", clip(e, FIELD_BYTES))?;
        }
        if let Some(r) = &s.result {
            writeln!(out, "  result: {}", clip(r.get(), FIELD_BYTES))?;
        }
        for h in &s.history {
            writeln!(
                out,
                "  {}  {:<9} attempt {}{}{}",
                output::time_ms(h.at_ms),
                h.state,
                h.attempt,
                h.worker
                    .as_ref()
                    .map_or(String::new(), |w| format!("  on {}", clip(w, FIELD_BYTES))),
                h.error
                    .as_ref()
                    .map_or(String::new(), |e| format!("  {}", clip(e, FIELD_BYTES))),
            )?;
        }
    }
    if ok(s.status) {
        Ok(())
    } else {
        Err(Failure::Op(format!("job {} is {}", s.id, match s.status {
            Status::Unknown => "unknown: it never existed, or it finished without keeping its outcome (or that expired)",
            other => other.as_str(),
        })))
    }
}

/// `spool cancel` (the event names the CLI's actor).
pub(crate) async fn cancel(admin: &Admin, id: &str, out: &mut dyn Write) -> CliResult {
    match admin.cancel(&JobId::from(id)).await? {
        CancelResult::Cancelled { queue, from } => {
            writeln!(out, "cancelled {id} in {queue} (it was {from})")?;
        }
        CancelResult::Signalled {
            queue,
            worker,
            first,
        } => {
            writeln!(
                out,
                "{} {id} in {queue}: its worker {} is told; it ends cancelled when its run stops",
                if first {
                    "cancelling"
                } else {
                    "already cancelling"
                },
                clip(&worker, FIELD_BYTES)
            )?;
        }
        CancelResult::AlreadyFinished { queue, state } => {
            writeln!(
                out,
                "{id} in {queue} had already finished ({state}): nothing changed"
            )?;
        }
        CancelResult::NotFound => {
            return Err(Failure::Op(format!(
                "job {id} not found (never existed, or finished without keeping its outcome)"
            )));
        }
    }
    Ok(())
}

/// What `spool events` prints: kinds or job types, and queues (empty: all).
#[derive(Debug, Default)]
pub(crate) struct EventFilter {
    pub(crate) types: Vec<String>,
    pub(crate) queues: Vec<String>,
}

impl EventFilter {
    fn matches(&self, e: &Event) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| t == e.kind.as_str() || e.job_type.as_deref() == Some(t.as_str()))
    }
}

/// `spool events [--follow]`: the latest `limit` events oldest first, then
/// (following) each new one as it is read.
pub(crate) async fn events(
    admin: &Admin,
    filter: &EventFilter,
    limit: usize,
    follow: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let queues: Vec<&str> = filter.queues.iter().map(String::as_str).collect();
    for q in &queues {
        spool_client::validate_queue_name(q)?;
    }
    // The latest events, read newest first from every queue, then filtered.
    let mut latest: Vec<Event> = admin
        .recent_events(&queues, None, limit.max(1).saturating_mul(20).min(10_000))
        .await?
        .into_iter()
        .filter(|e| filter.matches(e))
        .take(limit)
        .collect();
    latest.reverse();
    for e in &latest {
        output::event(out, e, json)?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut reader = admin.client().events();
    if !queues.is_empty() {
        reader = reader.queues(&queues)?;
    }
    if let Some(newest) = latest.last() {
        reader = reader.after_event(newest);
    }
    loop {
        for e in reader.next_batch().await? {
            if filter.matches(&e) {
                output::event(out, &e, json)?;
            }
        }
        out.flush()?;
    }
}

/// `spool batch show ID` and `spool batch list`.
pub(crate) async fn batch(admin: &Admin, cmd: BatchCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        BatchCmd::List { limit, json } => {
            let batches = admin.batches(limit.clamp(1, 1000)).await?;
            if json {
                output::json(out, &batches)?;
            } else if batches.is_empty() {
                writeln!(out, "no batches")?;
            } else {
                for b in &batches {
                    output::batch_line(out, b)?;
                }
            }
        }
        BatchCmd::Show {
            id,
            state,
            limit,
            json,
        } => {
            let id = BatchId::parse(&id).map_err(|e| Failure::Usage(e.to_string()))?;
            let client = admin.client();
            let Some(status) = client.batch_status(&id).await? else {
                return Err(Failure::Op(format!(
                    "batch {id} not found (never created, or expired after its retention)"
                )));
            };
            let members = if limit == 0 {
                Vec::new()
            } else {
                client
                    .batch_members(&id, state, 0, limit.min(1000))
                    .await?
                    .items
            };
            if json {
                output::json(
                    out,
                    &serde_json::json!({ "batch": status, "members": members }),
                )?;
            } else {
                output::batch(out, &status, &members)?;
            }
        }
    }
    Ok(())
}

/// `spool queue …`: a queue's fleet controls.
pub(crate) async fn queue(admin: &Admin, cmd: QueueCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        QueueCmd::Limit { queue, limit } => {
            admin.set_concurrency_limit(&queue, limit.0).await?;
            match limit.0 {
                Some(n) => writeln!(out, "{queue}: at most {n} running at once, fleet-wide")?,
                None => writeln!(out, "{queue}: no concurrency limit")?,
            }
            Ok(())
        }
        QueueCmd::Rate { queue, rate } => {
            admin.set_rate_limit(&queue, rate.0).await?;
            match rate.0 {
                Some(r) => writeln!(out, "{queue}: at most {r} started, fleet-wide")?,
                None => writeln!(out, "{queue}: no rate limit")?,
            }
            Ok(())
        }
        QueueCmd::KeyRate { queue, rate } => {
            admin.set_key_rate_limit(&queue, rate.0).await?;
            match rate.0 {
                Some(r) => writeln!(out, "{queue}: at most {r} started per rate key, fleet-wide")?,
                None => writeln!(out, "{queue}: no per-key rate limit")?,
            }
            Ok(())
        }
        QueueCmd::Breaker { queue, breaker } => {
            admin.set_breaker(&queue, breaker.0).await?;
            match breaker.0 {
                Some(b) => writeln!(out, "{queue}: circuit breaker {b}")?,
                None => writeln!(out, "{queue}: no circuit breaker")?,
            }
            Ok(())
        }
        QueueCmd::Groups { queue, settings } => {
            admin.configure_groups(&queue, settings.0).await?;
            let s = settings.0.unwrap_or_default();
            writeln!(out, "{queue}: ordered groups run {s}")?;
            Ok(())
        }
        QueueCmd::BreakerReset { queue } => {
            admin.reset_breaker(&queue).await?;
            writeln!(out, "{queue}: circuit breaker closed")?;
            Ok(())
        }
        QueueCmd::Forget { queue } => forget(admin, &queue, out).await,
    }
}

/// `spool queue forget QUEUE`: refuses (exit 2) a queue with jobs or
/// workers, or one Spool does not know.
async fn forget(admin: &Admin, queue: &str, out: &mut dyn Write) -> CliResult {
    let refusal = match admin.forget_queue(queue).await? {
        ForgetQueue::Forgotten { registered: true } => {
            writeln!(out, "forgot queue {queue}")?;
            return Ok(());
        }
        ForgetQueue::Forgotten { registered: false } => {
            format!("no queue named {queue:?} is known; nothing to forget")
        }
        ForgetQueue::HasJobs {
            ready,
            active,
            scheduled,
            retry,
            dead,
            outbox,
        } => format!(
            "queue {queue} still has jobs (ready {ready}, active {active}, scheduled {scheduled}, \
             retry {retry}, dead {dead}, follow-ups {outbox}): delete or run them first"
        ),
        ForgetQueue::Served { workers } => format!(
            "queue {queue} is served by {} running worker(s) (first: {}), which would register it \
             again: take it out of their configuration first",
            workers.len(),
            clip(workers.first().map_or("", String::as_str), FIELD_BYTES)
        ),
        other => format!("queue {queue} was not forgotten: {other:?}"),
    };
    Err(Failure::Usage(refusal))
}

/// `spool protocol list|script NAME`: the scripts another language loads.
pub(crate) fn protocol(cmd: &ProtocolCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        ProtocolCmd::List => {
            for (name, sha) in spool_client::runtime::scripts() {
                writeln!(out, "{name} {sha}")?;
            }
        }
        ProtocolCmd::Script { name } => {
            let source = spool_client::runtime::script_source(name).ok_or_else(|| {
                Failure::Usage(format!(
                    "no script named {name:?} (`spool protocol list` names them)"
                ))
            })?;
            write!(out, "{source}")?;
        }
    }
    Ok(())
}
