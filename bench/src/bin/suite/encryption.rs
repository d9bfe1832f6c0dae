//! Encryption at rest: the same artifact published to two fresh logs, one
//! storing it sealed (the default) and one with `--plaintext-artifacts`,
//! then pulled and verified with the real `custody` client a few times
//! each. A sealed pull opens every 64 KiB chunk (AES-256-GCM) on top of
//! the two SHA-256 passes every pull makes; the target is at least 0.7 of
//! the plaintext pull rate.
//!
//! Both logs are alone (a log-only policy) on the same disk, so the only
//! difference between them is the sealing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use custody_bench::procs::{output, sibling, start, Server};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::Row;

const WAIT: Duration = Duration::from_secs(120);
const ORIGIN: &str = "encryption.bench.custody.example/log";
/// The target: sealed pulls at least this fraction of plaintext ones.
pub const MIN_RATIO: f64 = 0.7;

/// `custody-log serve` of `data` under `policy` on a free loopback port,
/// with `flags`.
pub(crate) fn serve(data: &Path, policy: &Path, flags: &[&str]) -> anyhow::Result<Server> {
    let mut cmd = Command::new(sibling("custody-log")?);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--policy")
        .arg(policy)
        .args(flags)
        .env("CUSTODY_RATE_LIMIT_EXEMPT", "127.0.0.1")
        .env("CUSTODY_LOG", "warn");
    start(&mut cmd, &data.with_extension("stderr"), WAIT)
}

/// One log (`name`, started with `flags`): publishes `artifact` and pulls
/// it `pulls` times; the pull rates in bytes/s.
fn measure(dir: &Path, name: &str, flags: &[&str], artifact: &Path, pulls: u64) -> anyhow::Result<Vec<f64>> {
    let data = dir.join(format!("enc-{name}"));
    let vkey = output(
        Command::new(sibling("custody-log")?).args(["init", "--origin", ORIGIN, "--data-dir"]).arg(&data),
    )?;
    let policy = dir.join(format!("enc-{name}.policy"));
    std::fs::write(&policy, format!("log {}\nquorum none\n", vkey.trim()))?;
    let log = serve(&data, &policy, flags)?;
    let home = dir.join(format!("enc-{name}-client"));
    let key = data.join("admin.key");
    let run = |args: &[&str]| crate::models::custody(&home, &key, args);
    crate::models::admin_client(&home, &key, &policy, &log.url)?;
    let f = artifact.to_str().context("artifact path")?;
    run(&["publish", f, "--name", "bench/artifact", "--version", "1"])?;
    let bytes = std::fs::metadata(artifact)?.len() as f64;
    let pulled = dir.join(format!("enc-{name}-pulled.bin"));
    let mut rates = Vec::new();
    for i in 0..pulls {
        eprintln!("== encryption at rest ({name}): pull {}/{pulls}", i + 1);
        let (secs, ..) = run(&["pull", "bench/artifact@1", "--out", pulled.to_str().context("pull path")?])?;
        std::fs::remove_file(&pulled)?;
        rates.push(bytes / secs);
    }
    drop(log);
    std::fs::remove_dir_all(&data)?;
    Ok(rates)
}

/// Runs both logs; `Null` when `--encryption-artifact-mib` is 0.
pub fn run(args: &crate::Args, dir: &Path) -> anyhow::Result<Value> {
    let mib = args.encryption_artifact_mib;
    if mib == 0 {
        return Ok(Value::Null);
    }
    let artifact = dir.join("enc-artifact.bin");
    crate::models::write_shard(&artifact, mib << 20, 11)?;
    let pulls = args.encryption_pulls.max(1);
    let sealed = measure(dir, "sealed", &[], &artifact, pulls)?;
    let plain = measure(dir, "plain", &["--plaintext-artifacts"], &artifact, pulls)?;
    std::fs::remove_file(&artifact)?;
    Ok(json!({
        "bytes": mib << 20,
        "sealed_pull_bytes_per_s": sealed,
        "plaintext_pull_bytes_per_s": plain,
    }))
}

/// The report row: sealed pull rate against the plaintext one of the same
/// run (target: at least [`MIN_RATIO`] of it, medians compared).
pub fn rows(v: &Value) -> Vec<Row> {
    let rates = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).map(|r| r / 1e6).collect())
            .unwrap_or_default()
    };
    let (Some(sealed), Some(plain)) =
        (Spread::of(&rates("sealed_pull_bytes_per_s")), Spread::of(&rates("plaintext_pull_bytes_per_s")))
    else {
        return Vec::new();
    };
    let mib = v["bytes"].as_f64().unwrap_or(0.0) / f64::from(1u32 << 20);
    vec![Row {
        figure: format!(
            "`custody pull` and verify of a {mib:.0} MiB artifact stored encrypted (the default)"
        ),
        target: "≥ 0.7 of plaintext",
        met: Some(sealed.median >= MIN_RATIO * plain.median),
        measured: Some(sealed),
        unit: "MB/s",
        limit: Some((plain.median, "`--plaintext-artifacts`, same run".into())),
        lower_is_better: false,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_compares_medians_against_the_target() {
        let v = json!({
            "bytes": 64u64 << 20,
            "sealed_pull_bytes_per_s": [700e6, 800e6, 900e6],
            "plaintext_pull_bytes_per_s": [1000e6, 1000e6, 1200e6],
        });
        let rows = rows(&v);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].met, Some(true));
        assert_eq!(rows[0].limit.as_ref().map(|l| l.0), Some(1000.0));
        let slow = json!({
            "bytes": 1,
            "sealed_pull_bytes_per_s": [600e6],
            "plaintext_pull_bytes_per_s": [1000e6],
        });
        assert_eq!(rows_met(&slow), Some(false));
        assert!(super::rows(&Value::Null).is_empty());
    }

    fn rows_met(v: &Value) -> Option<bool> {
        super::rows(v).first().and_then(|r| r.met)
    }
}
