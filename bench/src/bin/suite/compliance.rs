//! `custody report` on the whole registry, timed: what an auditor waits
//! for a compliance report over every entry of a log of N entries.
//!
//! Cold is a fresh home: the full audit the report rests on fetches every
//! tile and bundle and replays every statement, then the report is built
//! and rendered. Warm runs again in the same home: the audit resumes from
//! its saved replay state and reads the bundles from its cache, so what
//! remains is authenticating the entries against the tree, decoding every
//! statement and rendering the rows: the report's own cost.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use custody_bench::procs::{output, sibling};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::{num, Row};

/// A period that holds every entry.
const FROM: &str = "1970-01-01T00:00:00Z";
const TO: &str = "2999-01-01T00:00:00Z";

/// Runs `custody report` (JSON, to a file) with the reporter's home,
/// timed; the report.
fn run_report(dir: &Path) -> anyhow::Result<(f64, Value)> {
    let home = dir.join("reporter");
    let file = dir.join("compliance-report.json");
    let t = Instant::now();
    output(
        Command::new(sibling("custody")?)
            .args(["report", "--from", FROM, "--to", TO, "--format", "json", "-o"])
            .arg(&file)
            .env("CUSTODY_HOME", &home),
    )?;
    let secs = t.elapsed().as_secs_f64();
    let report: Value = serde_json::from_slice(&std::fs::read(&file)?).context("the JSON report")?;
    Ok((secs, report))
}

/// Times the whole-registry report cold, then `runs` times warm (at most 5).
pub fn run(dir: &Path, policy: &Path, url: &str, runs: u64) -> anyhow::Result<Value> {
    output(
        Command::new(sibling("custody")?)
            .args(["init", "--policy", policy.to_str().context("policy path")?, "--log", url])
            .env("CUSTODY_HOME", dir.join("reporter")),
    )?;
    eprintln!("== custody report, whole registry (cold)");
    let (cold, report) = run_report(dir)?;
    let size = report["log"]["size"].as_u64().unwrap_or(0);
    if report["completeness"]["method"] != "audit" || size == 0 {
        bail!("the report is not one of the whole registry: {}", report["completeness"]);
    }
    let events = report["events"].as_array().map_or(0, Vec::len);
    let mut warm = Vec::new();
    for _ in 0..runs.clamp(1, 5) {
        eprintln!("== custody report, whole registry (warm)");
        warm.push(run_report(dir)?.0);
    }
    Ok(json!({
        "entries": size,
        "events": events,
        "cold_seconds": cold,
        "warm_seconds": Spread::of(&warm),
    }))
}

/// The rows of docs/performance.md: seconds, and entries per second.
pub fn rows(v: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let Some(entries) = v["entries"].as_f64() else { return rows };
    let events = v["events"].as_f64().unwrap_or(0.0);
    let cold = v["cold_seconds"].as_f64().and_then(|x| Spread::of(&[x]));
    let warm: Option<Spread> = serde_json::from_value(v["warm_seconds"].clone()).ok();
    for (label, m) in
        [("cold: full audit from a fresh home", cold), ("warm: resumed audit, bundles from the cache", warm)]
    {
        rows.push(Row {
            figure: format!(
                "`custody report` of the whole registry, {} entries ({} events listed), {label}",
                num(entries),
                num(events)
            ),
            target: "",
            measured: m,
            unit: "s",
            limit: None,
            met: None,
            lower_is_better: true,
        });
        let rate = m.filter(|m| m.low > 0.0).map(|m| Spread {
            median: entries / m.median,
            low: entries / m.high,
            high: entries / m.low,
            runs: m.runs,
        });
        rows.push(Row {
            figure: format!("`custody report` of the whole registry, {label}: entries per second"),
            target: "",
            measured: rate,
            unit: "entries/s",
            limit: None,
            met: None,
            lower_is_better: false,
        });
    }
    rows
}
