//! `--profile`: one run per feature the fleet and outcome issues added,
//! each with generous settings, next to a run without any: each feature's
//! cost is one line away from the plain run.
//!
//! Every run is this binary started again with the profile's flags (and
//! the common ones: jobs, concurrency, topology or URL), with a short
//! latency phase and no idle phase; each prints its JSON line with a
//! `profile` field added.

use std::process::Command;

use anyhow::Context;

/// Each profile's name and flags. Limits are far above what one machine
/// drains, so each run measures the cost of the check, not the limit.
pub(crate) const PROFILES: &[(&str, &[&str])] = &[
    ("plain", &[]),
    ("keep_outcome", &["--keep-outcome", "3600"]),
    (
        "keep_outcome_result",
        &["--keep-outcome", "3600", "--result"],
    ),
    ("events_off", &["--events", "off"]),
    ("events_all", &["--events", "all"]),
    ("concurrency_limit", &["--concurrency-limit", "100000"]),
    ("rate_limit", &["--rate-limit", "10000000/1s"]),
    (
        "key_rate",
        &["--key-rate", "10000000/1s", "--rate-keys", "10"],
    ),
    ("groups_1000", &["--groups", "1000"]),
    ("priorities", &["--priorities"]),
    ("args_1k", &["--args-bytes", "1024"]),
    ("encrypted_args_1k", &["--encrypted-args-bytes", "1024"]),
];

/// Runs every profile with `common` flags; returns their JSON lines.
pub(crate) fn run(common: &[String]) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("the bench's own path")?;
    let mut lines = Vec::with_capacity(PROFILES.len());
    for (name, flags) in PROFILES {
        let out = Command::new(&exe)
            .args(common)
            .args([
                "--latency-seconds",
                "1",
                "--idle-seconds",
                "0",
                "--scheduled-jobs",
                "0",
            ])
            .args(*flags)
            .output()
            .with_context(|| format!("running profile {name}"))?;
        anyhow::ensure!(
            out.status.success(),
            "profile {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).context("profile output")?;
        let line = text.lines().last().context("profile printed nothing")?;
        let mut report: serde_json::Value = serde_json::from_str(line)?;
        report["profile"] = serde_json::Value::from(*name);
        lines.push(report.to_string());
    }
    Ok(lines)
}
