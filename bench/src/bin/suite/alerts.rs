//! `custody monitor --rules`, timed over a whole log of N entries from a
//! fresh home (`--once --from-start`): every entry read in pages, checked
//! against the authenticated tiles and evaluated by the rules.
//!
//! Two rule sets: "quiet" runs every rule with settings the load never
//! trips (the cost of reading, verifying and evaluating: entries per
//! second); "loud" flags every statement (an `unknown_client` allowlist
//! the load generator's statements are not on), so each alert is also
//! written and fsynced to the outbox and printed by the stdout sink
//! (alerts per second, end to end).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use custody_bench::procs::sibling;
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::{num, Row};

const QUIET: &str = r#"
[[sink]]
name = "out"
type = "stdout"

[[rules.outside_hours]]
from = 0
to = 24

[rules.new_environment]
[rules.new_pipeline]

[rules.access_volume]
min_count = 1000000000

[rules.admin_grant]
roles = ["approver"]

[rules.protected_tag_move]
[rules.key_revocation]
[rules.break_glass]
"#;

const LOUD: &str = r#"
[[sink]]
name = "out"
type = "stdout"

[rules.unknown_client]
allow = ["nobody"]
"#;

/// One `monitor --rules --once --from-start` from a fresh home; seconds
/// and alerts printed.
fn once(dir: &Path, policy: &Path, url: &str, rules: &Path, home: &str) -> anyhow::Result<(f64, u64)> {
    let home = dir.join(home);
    let custody = sibling("custody")?;
    let init = Command::new(&custody)
        .args(["init", "--policy", policy.to_str().context("policy path")?, "--log", url])
        .env("CUSTODY_HOME", &home)
        .output()?;
    anyhow::ensure!(init.status.success(), "custody init: {}", String::from_utf8_lossy(&init.stderr));
    let t = Instant::now();
    let out = Command::new(&custody)
        .args(["monitor", "--once", "--from-start", "--rules"])
        .arg(rules)
        .env("CUSTODY_HOME", &home)
        .stderr(Stdio::inherit())
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(out.status.success(), "custody monitor --rules failed");
    let alerts = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    std::fs::remove_dir_all(&home)?;
    Ok((secs, alerts))
}

/// Times both rule sets `runs` times (at most 5) over the log at `url`.
pub fn run(dir: &Path, policy: &Path, url: &str, size: u64, runs: u64) -> anyhow::Result<Value> {
    let mut out = json!({ "entries": size });
    for (name, text) in [("quiet", QUIET), ("loud", LOUD)] {
        let rules = dir.join(format!("alerts-{name}.toml"));
        std::fs::write(&rules, text)?;
        let (mut secs, mut alerts) = (Vec::new(), 0);
        for i in 0..runs.clamp(1, 5) {
            eprintln!("== custody monitor --rules ({name}), run {}", i + 1);
            let (s, a) = once(dir, policy, url, &rules, &format!("alerter-{name}-{i}"))?;
            secs.push(s);
            alerts = a;
        }
        out[name] = json!({ "seconds": Spread::of(&secs), "alerts": alerts });
    }
    Ok(out)
}

/// The rows of docs/performance.md: entries evaluated and alerts
/// delivered per second.
pub fn rows(v: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let Some(entries) = v["entries"].as_f64() else { return rows };
    for (name, label) in [
        ("quiet", "every rule, none fires: entries verified and evaluated"),
        ("loud", "every statement alerts: alerts queued (fsynced) and printed"),
    ] {
        let Ok(m) = serde_json::from_value::<Spread>(v[name]["seconds"].clone()) else { continue };
        let count = if name == "quiet" { entries } else { v[name]["alerts"].as_f64().unwrap_or(0.0) };
        let rate = (m.low > 0.0).then(|| Spread {
            median: count / m.median,
            low: count / m.high,
            high: count / m.low,
            runs: m.runs,
        });
        rows.push(Row {
            figure: format!(
                "`custody monitor --rules --once --from-start` over {} entries, {label} ({} alerts)",
                num(entries),
                num(v[name]["alerts"].as_f64().unwrap_or(0.0))
            ),
            target: "",
            measured: rate,
            unit: if name == "quiet" { "entries/s" } else { "alerts/s" },
            limit: None,
            met: None,
            lower_is_better: false,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_rates_of_the_median_run() {
        let v = json!({
            "entries": 10000,
            "quiet": {"seconds": {"median": 2.0, "low": 1.0, "high": 4.0, "runs": 3}, "alerts": 0},
            "loud": {"seconds": {"median": 5.0, "low": 5.0, "high": 5.0, "runs": 1}, "alerts": 5000},
        });
        let r = rows(&v);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].measured.map(|m| (m.median, m.low, m.high)), Some((5000.0, 2500.0, 10000.0)));
        assert_eq!(r[1].measured.map(|m| m.median), Some(1000.0));
        assert!(rows(&Value::Null).is_empty());
    }
}
