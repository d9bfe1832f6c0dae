//! The Python package's overhead: `custody.verify` of a model directory
//! already on disk against the CLI's `custody pull --verify-only` of the
//! same directory, in the same run (bench/python/verify_overhead.py
//! alternates them). Both run the same verifier code; the binding must add
//! under [`MAX_OVERHEAD_MS`] per call. The CLI pays a process start the
//! binding does not, so the binding is usually faster.
//!
//! Needs the venv of `scripts/python-env` with the package installed
//! (`scripts/bench` builds it there); without it the step is skipped with a
//! message and the report says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use custody_bench::procs::{output, sibling};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::Row;

const ORIGIN: &str = "python.bench.custody.example/log";
/// The target: what `custody.verify` may add to the CLI's check, per call.
pub const MAX_OVERHEAD_MS: f64 = 5.0;

/// The venv's interpreter, if the `custody` package imports there.
fn venv_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("CUSTODY_VENV").map_or_else(
        || std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/custody/venv")).unwrap_or_default(),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    let ok = Command::new(&python).args(["-c", "import custody._native"]).output();
    match ok {
        Ok(o) if o.status.success() => Ok(python),
        _ => Err(format!(
            "no venv with the custody package at {} (run scripts/python-env and scripts/python-test, or scripts/bench)",
            venv.display()
        )),
    }
}

/// Publishes a small model directory to a lone log and times both checks
/// `calls` times; `Null` when `--python-verify-calls` is 0, a `skipped`
/// reason without the venv.
pub fn run(args: &crate::Args, dir: &Path) -> anyhow::Result<Value> {
    let calls = args.python_verify_calls;
    if calls == 0 {
        return Ok(Value::Null);
    }
    let python = match venv_python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("== python bindings: skipped: {why}");
            return Ok(json!({ "skipped": why }));
        }
    };
    let data = dir.join("py-log");
    let vkey = output(
        Command::new(sibling("custody-log")?).args(["init", "--origin", ORIGIN, "--data-dir"]).arg(&data),
    )?;
    let policy = dir.join("py.policy");
    std::fs::write(&policy, format!("log {}\nquorum none\n", vkey.trim()))?;
    let log = crate::encryption::serve(&data, &policy, &[])?;
    let home = dir.join("py-client");
    let key = data.join("admin.key");
    crate::models::admin_client(&home, &key, &policy, &log.url)?;
    let run = |a: &[&str]| crate::models::custody(&home, &key, a);
    let model = dir.join("py-model");
    std::fs::create_dir_all(&model)?;
    for i in 0..2 {
        crate::models::write_shard(&model.join(format!("model-{i}.safetensors")), 1 << 20, 20 + i)?;
    }
    std::fs::write(model.join("config.json"), b"{\"model_type\": \"bench\"}")?;
    let m = model.to_str().context("model path")?;
    run(&["publish", m, "--name", "bench/python", "--version", "1"])?;
    // The actor key goes in the home, where both the CLI and the package
    // look for it.
    std::fs::copy(&key, home.join("key"))?;
    eprintln!("== python bindings: {calls} calls of custody.verify and of custody pull --verify-only");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/verify_overhead.py");
    let out = output(
        Command::new(python)
            .arg(script)
            .arg("--custody")
            .arg(sibling("custody")?)
            .arg("--home")
            .arg(&home)
            .args(["--ref", "bench/python@1", "--path", m, "--calls", &calls.to_string()]),
    )?;
    drop(log);
    std::fs::remove_dir_all(&data)?;
    let times: Value = serde_json::from_str(out.trim()).context("verify_overhead.py output")?;
    Ok(json!({ "model_bytes": 2u64 << 20, "python_s": times["python_s"], "cli_s": times["cli_s"] }))
}

/// The report row: `custody.verify` against the CLI in the same run
/// (target: at most [`MAX_OVERHEAD_MS`] more, medians compared).
pub fn rows(v: &Value) -> Vec<Row> {
    let ms = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).map(|s| s * 1e3).collect())
            .unwrap_or_default()
    };
    let figure = "`custody.verify` (Python) of a 3-file 2 MiB model directory on disk".to_owned();
    let target = "≤ CLI + 5 ms";
    if let Some(why) = v["skipped"].as_str() {
        let row = Row {
            figure: format!("{figure} (skipped: {why})"),
            target,
            measured: None,
            unit: "ms",
            limit: None,
            met: None,
            lower_is_better: true,
        };
        return vec![row];
    }
    let (Some(py), Some(cli)) = (Spread::of(&ms("python_s")), Spread::of(&ms("cli_s"))) else {
        return Vec::new();
    };
    vec![Row {
        figure,
        target,
        met: Some(py.median <= cli.median + MAX_OVERHEAD_MS),
        measured: Some(py),
        unit: "ms",
        limit: Some((cli.median, "`custody pull --verify-only`, same run".into())),
        lower_is_better: true,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_compares_medians_against_the_cli() {
        let v = json!({ "python_s": [0.020, 0.021, 0.022], "cli_s": [0.018, 0.019, 0.019] });
        let rows = rows(&v);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].met, Some(true));
        let slow = json!({ "python_s": [0.030], "cli_s": [0.019] });
        assert_eq!(super::rows(&slow)[0].met, Some(false));
        let skipped = super::rows(&json!({ "skipped": "no venv" }));
        assert!(skipped[0].figure.contains("skipped: no venv") && skipped[0].measured.is_none());
        assert!(super::rows(&Value::Null).is_empty());
    }
}
