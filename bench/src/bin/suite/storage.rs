//! Scale-out storage, side by side in one run: the same signed load on a
//! log with everything on its own disk (the default), on one that also
//! writes its read path to a real 3-node Garage cluster (`--store s3://`),
//! and on one that acknowledges only after the bucket has each batch
//! (`--recovery-point-zero`); full tiles served by the log process against
//! the same tiles served from the bucket by Garage's static web endpoint;
//! and the time `custody-log restore` takes to rebuild the log from the
//! bucket. Garage runs with fsync on, as the log's RocksDB does.
//!
//! Each log is alone (a log-only policy): the witnesses' cosigning time is
//! the same for every mode and measured by the main deployment.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use custody_bench::procs::{output, sibling, start, Server};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::{num, Row};

const WAIT: Duration = Duration::from_secs(600);
const ORIGIN: &str = "storage.bench.custody.example/log";

/// The Garage cluster script, relative to the repository root
/// (`scripts/bench` runs the suite from there).
fn cluster_script() -> String {
    std::env::var("CUSTODY_GARAGE_CLUSTER").unwrap_or_else(|_| "scripts/garage-cluster".into())
}

/// `KEY=value` pairs from the cluster's `DIR/env`.
fn cluster_env(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(dir.join("env")).context("garage-cluster wrote no env file")?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn var<'a>(env: &'a [(String, String)], name: &str) -> anyhow::Result<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).with_context(|| format!("{name} not set"))
}

/// A free base port for the nine ports of a cluster.
fn port_base() -> u16 {
    (0..200u16)
        .map(|i| 31_000 + i * 30)
        .find(|b| (0..30).all(|o| std::net::TcpListener::bind(("127.0.0.1", b + o)).is_ok()))
        .unwrap_or(31_000)
}

struct Mode {
    name: &'static str,
    flags: Vec<String>,
    tiles_url: Option<String>,
}

fn serve(data: &Path, policy: &Path, mode: &Mode, env: &[(String, String)]) -> anyhow::Result<Server> {
    let mut cmd = Command::new(sibling("custody-log")?);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--policy")
        .arg(policy)
        .args(&mode.flags)
        .env("CUSTODY_RATE_LIMIT_EXEMPT", "127.0.0.1")
        .env("CUSTODY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    start(&mut cmd, &data.with_extension("stderr"), WAIT)
}

/// One mode: a fresh log grown to `entries` by `custody-loadgen`, then,
/// for a bucket, the restore of its data directory from the bucket.
fn measure(dir: &Path, mode: &Mode, env: &[(String, String)], args: &crate::Args) -> anyhow::Result<Value> {
    let data = dir.join(mode.name);
    let vkey = output(
        Command::new(sibling("custody-log")?).args(["init", "--origin", ORIGIN, "--data-dir"]).arg(&data),
    )?;
    let policy = dir.join(format!("{}.policy", mode.name));
    std::fs::write(&policy, format!("log {}\nquorum none\n", vkey.trim()))?;
    let mut log = serve(&data, &policy, mode, env)?;
    eprintln!("== storage ({}): {} signed entries", mode.name, args.storage_entries);
    let mut load = Command::new(sibling("custody-loadgen")?);
    load.args(["--json", "--log", &log.url, "--admin-key"])
        .arg(data.join("admin.key"))
        .args([
            "--entries",
            &args.storage_entries.to_string(),
            "--until-size",
            &args.storage_entries.to_string(),
        ])
        .args(["--concurrency", &args.concurrency.to_string(), "--windows", &args.windows.to_string()])
        .args(["--proofs", "0", "--tiles", &args.storage_tiles.to_string()]);
    if let Some(u) = &mode.tiles_url {
        load.args(["--tiles-url", u]);
    }
    let stage: Value = serde_json::from_str(&output(&mut load)?).context("custody-loadgen output")?;
    let size = stage["tree_size_after"].as_u64().context("tree_size_after")?;
    let mut out = json!({
        "mode": mode.name,
        "size": size,
        "entries_per_s": stage["entries_per_s"],
        "ack_latency_ms": stage["ack_latency_ms"],
        "ack_to_checkpoint_ms": stage["ack_to_checkpoint_ms"],
        "tiles_per_s": stage["tiles_per_s"],
    });
    if args.storage_artifact_mib > 0 {
        out["artifact"] = transfer(dir, &data, &policy, &log.url, mode.name, args.storage_artifact_mib)?;
    }
    let _ = log.child.kill();
    let _ = log.child.wait();
    if let Some(store) = mode.flags.iter().skip_while(|f| *f != "--store").nth(1) {
        let backup = dir.join(format!("{}.key", mode.name));
        std::fs::copy(data.join("log.key"), &backup)?;
        let restored = dir.join(format!("{}-restored", mode.name));
        eprintln!("== storage ({}): restore from the bucket", mode.name);
        let t = Instant::now();
        let mut cmd = Command::new(sibling("custody-log")?);
        cmd.args(["restore", "--store", store, "--key"]).arg(&backup).arg("--data-dir").arg(&restored);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let said = output(&mut cmd)?;
        out["restore"] = json!({"seconds": t.elapsed().as_secs_f64(), "said": said.trim()});
    }
    Ok(out)
}

/// Publishes and pulls one artifact of `mib` MiB with the real client:
/// upload and download rates through this mode's storage.
fn transfer(
    dir: &Path,
    data: &Path,
    policy: &Path,
    url: &str,
    mode: &str,
    mib: u64,
) -> anyhow::Result<Value> {
    let home = dir.join(format!("{mode}-client"));
    let key = data.join("admin.key");
    let run = |args: &[&str]| crate::models::custody(&home, &key, args);
    run(&["init", "--policy", policy.to_str().context("policy")?, "--log", url])?;
    let whoami = run(&["whoami"])?.1;
    let public = whoami.lines().find_map(|l| l.strip_prefix("public key: ")).context("whoami")?.to_owned();
    for role in ["publisher", "reader"] {
        run(&["grant", &public, "--role", role, "--pattern", "bench/*"])?;
    }
    let file = dir.join(format!("{mode}-artifact.bin"));
    crate::models::write_shard(&file, mib << 20, 7)?;
    eprintln!("== storage ({mode}): publish and pull a {mib} MiB artifact");
    let f = file.to_str().context("artifact path")?;
    let (up, ..) = run(&["publish", f, "--name", "bench/artifact", "--version", "1"])?;
    let pulled = dir.join(format!("{mode}-pulled.bin"));
    let (down, ..) = run(&["pull", "bench/artifact@1", "--out", pulled.to_str().context("pull path")?])?;
    std::fs::remove_file(&file)?;
    std::fs::remove_file(&pulled)?;
    let bytes = (mib << 20) as f64;
    Ok(json!({"bytes": bytes, "upload_bytes_per_s": bytes / up, "download_bytes_per_s": bytes / down}))
}

/// Runs the three modes; `Null` when `--storage-entries` is 0.
pub fn run(args: &crate::Args, dir: &Path) -> anyhow::Result<Value> {
    if args.storage_entries == 0 {
        return Ok(Value::Null);
    }
    // A directory of the run's own under `--storage-dir`, removed with it.
    let elsewhere = match &args.storage_dir {
        Some(d) => Some(tempfile::Builder::new().prefix("custody-bench-garage").tempdir_in(d)?),
        None => None,
    };
    let garage = elsewhere.as_ref().map_or(dir.to_path_buf(), |t| t.path().to_path_buf()).join("garage");
    let status = Command::new("bash")
        .arg(cluster_script())
        .arg("start")
        .arg(&garage)
        .env("CUSTODY_GARAGE_FSYNC", args.storage_fsync.to_string())
        .env("CUSTODY_GARAGE_PORT_BASE", port_base().to_string())
        .status()
        .context("cannot run scripts/garage-cluster (run the suite from the repository root)")?;
    if !status.success() {
        bail!("scripts/garage-cluster start failed (is Garage installed? ./scripts/garage-install)");
    }
    let env = cluster_env(&garage)?;
    let bucket = var(&env, "CUSTODY_TEST_BUCKET")?.to_owned();
    let web = var(&env, "CUSTODY_TEST_WEB_URL")?.to_owned();
    let modes = [
        Mode { name: "local", flags: Vec::new(), tiles_url: None },
        Mode {
            name: "s3",
            flags: vec!["--store".into(), format!("s3://{bucket}/s3")],
            tiles_url: Some(format!("{web}/s3/log")),
        },
        Mode {
            name: "s3-rpo0",
            flags: vec!["--store".into(), format!("s3://{bucket}/rpo0"), "--recovery-point-zero".into()],
            tiles_url: None,
        },
    ];
    let mut results = Vec::new();
    for mode in modes.iter().filter(|m| args.storage_modes.iter().any(|n| n == m.name)) {
        let r = measure(dir, mode, &env, args);
        if r.is_err() {
            let _ = Command::new("bash").arg(cluster_script()).arg("stop").arg(&garage).status();
        }
        results.push(r?);
    }
    let _ = Command::new("bash").arg(cluster_script()).arg("stop").arg(&garage).status();
    Ok(json!({
        "entries": args.storage_entries,
        "fsync": args.storage_fsync,
        "store_dir": args.storage_dir,
        "modes": results,
    }))
}

/// The report rows: each mode's entries/s against the local default (the
/// target: at least 0.8 of it with `--store s3://`), the tiles/s of the
/// static read path against the log process, and the restore time.
pub fn rows(v: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let Some(modes) = v["modes"].as_array() else { return rows };
    let find = |name: &str| modes.iter().find(|m| m["mode"] == name);
    let rate = |m: &Value| m["entries_per_s"].as_f64();
    let local = find("local").and_then(rate);
    let n = v["entries"].as_f64().unwrap_or(0.0);
    // Runs before the switches existed synced, on the log's file system.
    let (synced, beside) = (v["fsync"].as_bool().unwrap_or(true), v["store_dir"].is_null());
    let s3 = format!(
        "`--store s3://` (read path to a 3-node Garage, fsync {}{})",
        if synced { "on" } else { "off" },
        if beside {
            String::new()
        } else {
            format!(", its nodes' files in {}", v["store_dir"].as_str().unwrap_or("?"))
        }
    );
    let diagnostic = !(synced && beside);
    for m in modes {
        let (Some(r), name) = (rate(m), m["mode"].as_str().unwrap_or("?")) else { continue };
        let (what, target, min) = match name {
            "local" => ("RocksDB and local disk only (the default)", "", None),
            "s3" if diagnostic => (s3.as_str(), "(a diagnostic: not the target's setting)", None),
            "s3" => (s3.as_str(), "≥ 0.8 of local", Some(0.8)),
            _ => {
                ("`--store s3:// --recovery-point-zero` (each batch in the bucket before its ack)", "", None)
            }
        };
        rows.push(Row {
            figure: format!("signed entries/s to {} entries, {what}", num(n)),
            target,
            measured: Spread::of(&[r]),
            unit: "/s",
            limit: local.filter(|_| name != "local").map(|l| (l, "local, same run".into())),
            met: min.zip(local).map(|(k, l)| r >= k * l),
            lower_is_better: false,
        });
        if let Some(p99) = m["ack_latency_ms"]["p99"].as_f64() {
            rows.push(Row {
                figure: format!("acknowledgement p99 latency, {name}"),
                target: "",
                measured: Spread::of(&[p99]),
                unit: "ms",
                limit: None,
                met: None,
                lower_is_better: true,
            });
        }
    }
    let tiles = |m: Option<&Value>| {
        m.and_then(|m| {
            Spread::of(&m["tiles_per_s"].as_array()?.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
        })
    };
    let log_tiles = tiles(find("local"));
    if let Some(s) = tiles(find("s3")) {
        rows.push(Row {
            figure: "full level-0 tiles/s from the bucket through Garage's static web endpoint".into(),
            target: "",
            measured: Some(s),
            unit: "/s",
            limit: log_tiles.map(|l| (l.median, "the log process, same run".into())),
            met: None,
            lower_is_better: false,
        });
    }
    for (key, what) in
        [("upload_bytes_per_s", "`custody publish`"), ("download_bytes_per_s", "`custody pull` and verify")]
    {
        let local = find("local").and_then(|m| m["artifact"][key].as_f64());
        let Some(s3) = find("s3").and_then(|m| m["artifact"][key].as_f64()) else { continue };
        let mib =
            find("s3").and_then(|m| m["artifact"]["bytes"].as_f64()).unwrap_or(0.0) / f64::from(1u32 << 20);
        rows.push(Row {
            figure: format!("{what} of a {mib:.0} MiB artifact, `--store s3://`"),
            target: "",
            measured: Spread::of(&[s3 / 1e6]),
            unit: "MB/s",
            limit: local.map(|l| (l / 1e6, "local disk, same run".into())),
            met: None,
            lower_is_better: false,
        });
    }
    if let Some(secs) = find("s3").and_then(|m| m["restore"]["seconds"].as_f64()) {
        rows.push(Row {
            figure: format!("`custody-log restore` of {} entries from the bucket", num(n)),
            target: "",
            measured: Spread::of(&[secs]),
            unit: "s",
            limit: None,
            met: None,
            lower_is_better: true,
        });
    }
    rows
}
