//! The dashboard's model page with 10^4 history rows, timed on the
//! server: a registry log alone on loopback (no witnesses: this measures
//! the page, not the cosigning), seeded by
//! [`custody_bench::dashboard_seed`], then the model page fetched in full
//! a few times over one keep-alive connection. The figure is the median
//! time from sending the request to the last byte of the HTML; the
//! browser's time to first render of the same page is measured by the
//! browser step.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use custody_bench::dashboard_seed::seed_model_history_blocking;
use custody_bench::procs::{bench_client_config, output, sibling, start};
use custody_bench::stats::Spread;
use serde_json::{json, Value};

use crate::report::{num, Row};

/// Largest page read.
const MAX_PAGE: u64 = 256 << 20;

/// Seeds a fresh log with a model of `rows` history rows and times its
/// page `runs` times (at least 3) after one warm-up.
pub fn run(dir: &Path, rows: u64, runs: u64) -> anyhow::Result<Value> {
    let dir = dir.join("dashboard");
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("log");
    let vkey = output(
        Command::new(sibling("custody-log")?)
            .args(["init", "--origin", "dashboard.bench.example/log", "--data-dir"])
            .arg(&data),
    )?;
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, format!("log {}\nquorum none\n", vkey.trim()))?;
    let log = start(
        Command::new(sibling("custody-log")?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--policy")
            .arg(&policy)
            .env("CUSTODY_RATE_LIMIT_EXEMPT", "127.0.0.1")
            .env("CUSTODY_LOG", "warn"),
        &dir.join("log.stderr"),
        Duration::from_secs(120),
    )?;
    eprintln!("== dashboard: seeding a model with {rows} history rows");
    let seeded = seed_model_history_blocking(&log.url, &data.join("admin.key"), rows, 16)?;
    let c = custody_client::blocking::Client::new(bench_client_config(None, 1))?;
    // The page lists what the published checkpoint covers: wait for it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health: Value = serde_json::from_slice(&c.get(&format!("{}/health", log.url), 1 << 20)?)?;
        if health["checkpoint"]["last_published_size"].as_u64().unwrap_or(0) >= seeded.tree_size {
            break;
        }
        if Instant::now() > deadline {
            bail!("no checkpoint covered the seeded entries: {health}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("{}{}", log.url, seeded.page);
    let fetch = || -> anyhow::Result<(f64, usize)> {
        let t = Instant::now();
        let body = c.get(&url, MAX_PAGE).with_context(|| format!("GET {url}"))?;
        Ok((t.elapsed().as_secs_f64(), body.len()))
    };
    let (_, bytes) = fetch()?;
    let mut secs = Vec::new();
    for _ in 0..runs.max(3) {
        secs.push(fetch()?.0);
    }
    let page = String::from_utf8(c.get(&url, MAX_PAGE)?).context("the page is not UTF-8")?;
    let shown = page.matches("<tr data-entry-index=").count();
    eprintln!(
        "== dashboard: {shown} rows, {bytes} bytes, median {:.3} s",
        Spread::of(&secs).map_or(0.0, |s| s.median)
    );
    let browser = crate::browser::measure(&log.url, &seeded.page, runs)?;
    Ok(json!({ "rows": seeded.rows, "rows_shown": shown, "bytes": bytes, "seconds": Spread::of(&secs),
        "browser": browser }))
}

/// The row of docs/performance.md.
pub fn rows(v: &Value) -> Vec<Row> {
    let Some(rows) = v["rows"].as_f64() else { return Vec::new() };
    let m: Option<Spread> = serde_json::from_value(v["seconds"].clone()).ok();
    let bytes = v["bytes"].as_f64().unwrap_or(0.0);
    let figure = format!(
        "dashboard model page with {} history rows: server time to the full HTML ({:.1} MB), loopback",
        num(rows),
        bytes / 1e6
    );
    vec![Row::seconds(figure, m)]
}
