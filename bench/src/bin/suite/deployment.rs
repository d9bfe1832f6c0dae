//! The measured deployment: three real witnesses under a 2-of-3 policy and
//! a registry-mode log server, grown stage by stage with `custody-loadgen`;
//! `custody audit` timed on the way (cold, warm, and again after new
//! entries); a restart at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use custody_bench::procs::{
    cpu_secs, disk_bytes, http_get, metric_samples, output, rss_kib, sibling, start, Server,
};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::Args;

const ORIGIN: &str = "bench.custody.example/log";
/// Where the honest load comes from: exempt from the servers' per-address
/// limits, as the many addresses of real honest clients would each be
/// under them. The attacker comes from [`ATTACK_SOURCE`] and is not.
const HONEST_SOURCE: &str = "127.0.0.1";
/// The attacker's own address.
const ATTACK_SOURCE: &str = "127.0.0.2";
const WAIT: Duration = Duration::from_secs(600);

fn start_log(dir: &Path, policy: &Path) -> anyhow::Result<Server> {
    start(
        Command::new(sibling("custody-log")?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("log"))
            .arg("--policy")
            .arg(policy)
            .env("CUSTODY_RATE_LIMIT_EXEMPT", HONEST_SOURCE)
            .env("CUSTODY_LOG", "warn"),
        &dir.join("log.stderr"),
        WAIT,
    )
}

/// Runs every stage; returns one JSON object per stage plus the audit and
/// restart figures.
pub fn run(args: &Args, dir: &Path) -> anyhow::Result<Value> {
    let vkey = output(
        Command::new(sibling("custody-log")?)
            .args(["init", "--origin", ORIGIN, "--data-dir"])
            .arg(dir.join("log")),
    )?;
    let vkey = vkey.trim();
    let list = dir.join("logs.txt");
    std::fs::write(&list, format!("logs/v0\n\nvkey {vkey}\norigin none\nqpd 86400000\n"))?;
    let mut policy = format!("log {vkey}\n");
    let mut witnesses = Vec::new();
    let mut names = Vec::new();
    for i in 1..=3 {
        let name = format!("w{i}.bench.example");
        let data = dir.join(format!("w{i}"));
        let wkey = output(
            Command::new(sibling("custody-witness")?)
                .args(["init", "--name", &name, "--data-dir"])
                .arg(&data),
        )?;
        let w = start(
            Command::new(sibling("custody-witness")?)
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&data)
                .arg("--logs")
                .arg(&list)
                .env("CUSTODY_RATE_LIMIT_EXEMPT", HONEST_SOURCE)
                .env("CUSTODY_LOG", "warn"),
            &dir.join(format!("w{i}.stderr")),
            WAIT,
        )?;
        policy += &format!("witness {name} {} {}\n", wkey.trim(), w.url);
        names.push(name);
        witnesses.push(w);
    }
    policy += &format!("group witnesses 2 {}\nquorum witnesses\n", names.join(" "));
    let policy_path = dir.join("policy.txt");
    std::fs::write(&policy_path, policy)?;
    let mut log = start_log(dir, &policy_path)?;

    let mut stages = Vec::new();
    let mut audit = Value::Null;
    let mut report = Value::Null;
    let mut alerts = Value::Null;
    let mut size = 0u64;
    // Each load-generator run first grants its clients and publishes one
    // artifact: those entries count towards the stage size.
    let setup_entries = args.concurrency as u64 + 2;
    for &target in &args.sizes {
        let entries = target.saturating_sub(size + setup_entries);
        if entries == 0 {
            continue;
        }
        eprintln!("== log: {size} -> {target} entries");
        let out = output(
            Command::new(sibling("custody-loadgen")?)
                .args(["--json", "--log", &log.url, "--admin-key"])
                .arg(dir.join("log/admin.key"))
                .args(["--entries", &entries.to_string(), "--until-size", &target.to_string()])
                .args(["--concurrency", &args.concurrency.to_string()])
                .args(["--windows", &args.windows.to_string(), "--server-pid", &log.pid().to_string()])
                .arg("--data-dir")
                .arg(dir.join("log")),
        )?;
        let stage: Value = serde_json::from_str(&out).context("custody-loadgen output")?;
        size = stage["tree_size_after"].as_u64().context("tree_size_after")?;
        stages.push(stage);
        if report.is_null() && size >= args.report_at {
            report = crate::compliance::run(dir, &policy_path, &log.url, args.windows)?;
        }
        if alerts.is_null() && size >= args.alerts_at {
            alerts = crate::alerts::run(dir, &policy_path, &log.url, size, args.windows)?;
        }
        if audit.is_null() && size >= args.audit_at {
            audit = time_audit(dir, &policy_path, &log.url, args.windows)?;
            let (again, grown) = time_reaudit(args, dir, &log, size)?;
            audit["again"] = again;
            size = grown;
        }
    }

    let attacks =
        if args.attacks.iter().any(|a| a != "none") { under_attack(args, dir, &log)? } else { Value::Null };

    let models = if args.model_shards > 0 {
        crate::models::run(dir, &policy_path, &log.url, args.model_shards, args.model_shard_mib)?
    } else {
        Value::Null
    };

    // Start-up at the largest size: the registry is loaded from its
    // persisted state (the server reports how many entries it replayed).
    eprintln!("== restart at {size} entries");
    let _ = log.child.kill();
    let _ = log.child.wait();
    let t = Instant::now();
    log = start_log(dir, &policy_path)?;
    let restart_s = t.elapsed().as_secs_f64();
    let rss_after_restart = rss_kib(log.pid()).map(|k| k as f64 / 1024.0);
    // At rest: RocksDB flushes the write-ahead log it recovered at start-up,
    // so the database is SST files only, as it is between bursts in
    // service. The figures during load also count the WAL (a second copy
    // of every entry until its memtable is flushed).
    let at_rest_bytes = disk_bytes(&dir.join("log"));
    let metrics = http_get(&format!("{}/metrics", log.url)).unwrap_or_default();
    let sst: serde_json::Map<String, Value> = metric_samples(&metrics, "custody_store_sst_bytes")
        .into_iter()
        .map(|(labels, v)| (labels.trim_start_matches("cf=").trim_matches('"').to_owned(), json!(v)))
        .collect();
    let replayed =
        metric_samples(&metrics, "custody_registry_replayed_entries_total").first().map(|(_, v)| *v);
    drop(log);
    drop(witnesses);
    Ok(json!({
        "stages": stages,
        "audit": audit,
        "report": report,
        "alerts": alerts,
        "attacks": attacks,
        "models": models,
        "restart": {"size": size, "seconds": restart_s, "rss_mib": rss_after_restart, "replayed_entries": replayed},
        "at_rest": {"size": size, "disk_bytes": at_rest_bytes, "sst_bytes": sst},
    }))
}

/// `custody audit` cold (a fresh home: every tile and bundle fetched), then
/// `runs` times warm (from the cache it keeps).
fn time_audit(dir: &Path, policy: &Path, url: &str, runs: u64) -> anyhow::Result<Value> {
    let custody = |args: &[&str]| auditor_run(dir, args);
    custody(&["init", "--policy", policy.to_str().context("policy path")?, "--log", url])?;
    eprintln!("== custody audit (cold)");
    let (cold, report) = custody(&["audit", "--json"])?;
    let replayed = report["entries_replayed"].as_u64().unwrap_or(0);
    if report["violation"] != Value::Null || replayed == 0 {
        bail!("the audit did not pass: {report}");
    }
    let mut warm = Vec::new();
    for _ in 0..runs.clamp(1, 5) {
        eprintln!("== custody audit (warm)");
        // Warm means a full replay from the cached tiles and bundles: the
        // replay state the audit before saved would skip it.
        forget_replay_state(&dir.join("auditor"))?;
        warm.push(custody(&["audit", "--json"])?.0);
    }
    Ok(json!({
        "entries": replayed,
        "cold_seconds": cold,
        "warm_seconds": Spread::of(&warm),
        "threads": std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    }))
}

/// The seconds since start at which `custody audit --log-level info`
/// reached each phase it logs (`audit: ...` lines with `elapsed_s`), to see
/// where a re-audit's time goes.
fn audit_phases(stderr: &str) -> Value {
    let mut phases = serde_json::Map::new();
    for line in stderr.lines() {
        // Drop terminal colour codes: ESC '[' ... 'm'.
        let mut plain = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                plain.push(c);
            }
        }
        // The message follows the target (`custody_verifier::audit: `).
        let Some(at) = plain.find(" audit: ") else { continue };
        let rest = &plain[at + " audit: ".len()..];
        let phase: Vec<&str> = rest.split_whitespace().take_while(|w| !w.contains('=')).collect();
        let secs = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix("elapsed_s="))
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(secs) = secs {
            phases.insert(phase.join(" "), json!(secs));
        }
    }
    Value::Object(phases)
}

/// Deletes the replay state `custody audit` saved under `home`
/// (`audit/<origin>/state`), keeping its tile and bundle cache.
fn forget_replay_state(home: &Path) -> anyhow::Result<()> {
    for dir in std::fs::read_dir(home.join("audit"))? {
        let state = dir?.path().join("state");
        if state.exists() {
            std::fs::remove_file(&state).with_context(|| format!("removing {}", state.display()))?;
        }
    }
    Ok(())
}

/// Runs `custody` with the auditor's home, timed; its JSON report.
fn auditor_run(dir: &Path, args: &[&str]) -> anyhow::Result<(f64, Value)> {
    let t = Instant::now();
    let out = output(Command::new(sibling("custody")?).args(args).env("CUSTODY_HOME", dir.join("auditor")))?;
    Ok((t.elapsed().as_secs_f64(), serde_json::from_str(&out).unwrap_or(Value::Null)))
}

/// `custody audit` after `--reaudit-entries` more entries, from the
/// replay state the audit before it saved (`windows` rounds, at most 5).
/// Returns the figures and the log's size after the last round.
fn time_reaudit(args: &Args, dir: &Path, log: &Server, mut size: u64) -> anyhow::Result<(Value, u64)> {
    let mut secs = Vec::new();
    let mut replayed = Vec::new();
    let mut phases = Value::Null;
    for _ in 0..args.windows.clamp(1, 5) {
        let target = size + args.reaudit_entries;
        eprintln!("== log: {size} -> {target} entries, then custody audit again");
        let out = output(
            Command::new(sibling("custody-loadgen")?)
                .args(["--json", "--log", &log.url, "--admin-key"])
                .arg(dir.join("log/admin.key"))
                .args(["--entries", &args.reaudit_entries.to_string(), "--until-size", &target.to_string()])
                .args(["--concurrency", &args.concurrency.to_string()])
                .args(["--windows", "1", "--proofs", "0", "--tiles", "0"]),
        )?;
        let stage: Value = serde_json::from_str(&out).context("custody-loadgen output")?;
        size = stage["tree_size_after"].as_u64().context("tree_size_after")?;
        // The audit takes the newest checkpoint, which may lag the tree a
        // little: the entries it replayed are recorded with its time.
        let t0 = Instant::now();
        let out = Command::new(sibling("custody")?)
            .args(["audit", "--json", "--log-level", "info"])
            .env("CUSTODY_HOME", dir.join("auditor"))
            .output()
            .context("cannot run custody audit")?;
        let t = t0.elapsed().as_secs_f64();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        if !out.status.success() || report["violation"] != Value::Null || report["full_replay"] != Value::Null
        {
            bail!("the re-audit did not pass from the saved state: {stdout}{stderr}");
        }
        phases = audit_phases(&stderr);
        secs.push(t);
        let (all, from) = (report["entries_replayed"].as_u64(), report["replay_from"].as_u64());
        replayed.push(all.zip(from).map_or(0, |(a, f)| a.saturating_sub(f)) as f64);
    }
    Ok((
        json!({
            "entries": size,
            "new_entries": Spread::of(&replayed),
            "seconds": Spread::of(&secs),
            "phases_of_last": phases,
        }),
        size,
    ))
}

/// One `custody-loadgen` run of `entries` signed entries and as many
/// inclusion proofs, in one window.
fn honest_load(args: &Args, dir: &Path, log: &Server) -> anyhow::Result<Value> {
    let n = args.attack_entries.to_string();
    let out = output(
        Command::new(sibling("custody-loadgen")?)
            .args(["--json", "--log", &log.url, "--admin-key"])
            .arg(dir.join("log/admin.key"))
            .args(["--entries", &n, "--proofs", &n, "--tiles", "0", "--windows", "1"])
            .args(["--concurrency", &args.concurrency.to_string()]),
    )?;
    let v: Value = serde_json::from_str(&out).context("custody-loadgen output")?;
    let proofs =
        v["inclusion_proofs_per_s"].as_array().and_then(|a| a.first()).cloned().unwrap_or(Value::Null);
    Ok(json!({"entries_per_s": v["entries_per_s"], "proofs_per_s": proofs}))
}

/// The attacker's command: on the last core of its own (`taskset`, where
/// there is one), so that what it burns does not count against the server.
fn attacker_command() -> anyhow::Result<Command> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let taskset = cores > 1
        && Command::new("taskset")
            .arg("-V")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let attackgen = sibling("custody-attackgen")?;
    Ok(if taskset {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &(cores - 1).to_string()]).arg(attackgen);
        cmd
    } else {
        Command::new(attackgen)
    })
}

/// Honest entries/s and proofs/s without an attack, then while each attack
/// of `--attacks` runs (from 127.0.0.2, pinned to a core of its own; the
/// honest load comes from 127.0.0.1, as separate clients would).
fn under_attack(args: &Args, dir: &Path, log: &Server) -> anyhow::Result<Value> {
    eprintln!("== honest load without an attack");
    let unattacked = honest_load(args, dir, log)?;
    let mut rows = Vec::new();
    for mode in args.attacks.iter().filter(|a| *a != "none") {
        eprintln!("== honest load under {mode}");
        let connections = match mode.as_str() {
            "bad-signatures" => (args.attack_connections / 10).max(1),
            _ => args.attack_connections,
        };
        let stderr = std::fs::File::create(dir.join(format!("attack-{mode}.stderr")))?;
        let mut attacker = attacker_command()?
            .args(["--log", &log.url, "--mode", mode, "--seconds", "3600", "--source-ip", ATTACK_SOURCE])
            .args(["--connections", &connections.to_string(), "--admin-key"])
            .arg(dir.join("log/admin.key"))
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start custody-attackgen")?;
        // Let the attack reach its full strength (slow-downloads uploads
        // its artifact first).
        std::thread::sleep(Duration::from_secs(5));
        let early_exit = attacker.try_wait()?;
        // The attacker shares this machine's cores with the server and
        // the honest clients: what it burns is recorded beside each row.
        let (cpu_before, began) = (cpu_secs(attacker.id()), Instant::now());
        let measured = honest_load(args, dir, log);
        let attacker_cores = cpu_secs(attacker.id())
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / began.elapsed().as_secs_f64());
        let _ = attacker.kill();
        let _ = attacker.wait();
        if let Some(status) = early_exit {
            bail!("custody-attackgen --mode {mode} exited early ({status}); see attack-{mode}.stderr");
        }
        let mut row = measured?;
        row["mode"] = json!(mode);
        row["connections"] = json!(connections);
        row["attacker_cores"] = json!(attacker_cores);
        rows.push(row);
    }
    Ok(json!({"unattacked": unattacked, "attacked": rows}))
}
