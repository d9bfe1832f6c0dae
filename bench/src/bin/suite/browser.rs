//! The dashboard's browser figures: a model page with many history rows,
//! loaded in headless Chromium (Debian's package; `scripts/chromium-install`)
//! on loopback. Two figures per load:
//!
//! - time to first render: the page's `first-contentful-paint` performance
//!   entry (ms from the start of navigation);
//! - in-browser verification rate: entries proven per second, from the
//!   `custody:rows-start` / `custody:rows-end` marks `dashboard.js` sets
//!   around the proof of every row (leaf and proof fetched in batches, leaf
//!   hashed, proof walked, fields decoded and compared).
//!
//! The step is skipped, with a message, when Chromium is not installed. It
//! drives Chromium over W3C WebDriver with the bench's own HTTP client: the
//! test kit's driver is a dev-only crate the bench may not depend on.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use custody_bench::procs::bench_client_config;
use custody_bench::stats::Spread;
use custody_client::blocking::Client;
use custody_client::{Method, Request};
use serde_json::{json, Value};

use crate::report::{num, Row};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Largest WebDriver answer read.
const MAX_ANSWER: u64 = 16 << 20;

/// A Chromium session, ended and killed on drop.
struct Session {
    driver: Child,
    base: String,
    http: Client,
    _profile: tempfile::TempDir,
}

impl Session {
    fn start() -> anyhow::Result<Session> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("start chromedriver")?;
        let http = Client::new(bench_client_config(None, 1))?;
        let profile = tempfile::tempdir()?;
        let mut s = Session { driver, base: format!("http://127.0.0.1:{port}"), http, _profile: profile };
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.http.get(&format!("{}/status", s.base), MAX_ANSWER).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The flags the browser tests use (scripts/chromium-flags).
        let mut args: Vec<String> =
            include_str!("../../../../scripts/chromium-flags").lines().map(str::to_owned).collect();
        args.push("--window-size=1280,900".to_owned());
        args.push(format!("--user-data-dir={}", s._profile.path().display()));
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "timeouts": { "script": 600_000, "pageLoad": 600_000 } } } });
        let id = s.call(Method::POST, "/session", &caps)?["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        s.base = format!("{}/session/{id}", s.base);
        Ok(s)
    }

    fn call(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let req =
            Request::new(method, format!("{}{path}", self.base), Some(body.to_string().into()), MAX_ANSWER)
                .header("content-type", "application/json")?
                .timeout(Duration::from_secs(900));
        let reply = self.http.send(&req)?;
        let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if !(200..300).contains(&reply.status) {
            bail!("WebDriver {path}: {} {}", reply.status, v["value"]);
        }
        Ok(v.get("value").cloned().unwrap_or(v))
    }

    fn run(&self, script: &str) -> anyhow::Result<Value> {
        self.call(Method::POST, "/execute/sync", &json!({ "script": script, "args": [] }))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.http.send(&Request::new(Method::DELETE, self.base.clone(), None, MAX_ANSWER));
        let group = self.driver.id();
        if group > 1 {
            let _ = Command::new("kill").args(["-s", "KILL", "--"]).arg(format!("-{group}")).status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// How long a load waits for Chromium's first-contentful-paint entry once
/// the rows are proven.
const FCP_AFTER_ROWS: Duration = Duration::from_secs(10);

/// One load of `url`: (first contentful paint in ms, entries proven, ms
/// they took, rows failed).
fn load(s: &Session, url: &str) -> anyhow::Result<(f64, u64, f64, u64)> {
    s.call(Method::POST, "/url", &json!({ "url": url }))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    // A page whose trust root or checkpoint failed never proves its rows:
    // that ends the wait at once, with the page's own words.
    let probe = "const bad = document.querySelector('#checkpoint-status[data-state=failed], #trust-status[data-state=failed]'); \
        if (bad) return { failed_page: bad.textContent }; \
        const end = performance.getEntriesByName('custody:rows-end')[0]; \
        const start = performance.getEntriesByName('custody:rows-start')[0]; \
        const fcp = performance.getEntriesByName('first-contentful-paint')[0]; \
        if (!end || !start) return null; \
        return { fcp: fcp ? fcp.startTime : null, entries: end.detail.entries, ms: end.startTime - start.startTime, \
          failed: document.querySelectorAll('td.verdict[data-verdict=failed]').length };";
    // Chromium records the first contentful paint after the frame is
    // drawn, which can come after a fast page has already proven its rows.
    let mut rows_done: Option<Instant> = None;
    loop {
        let v = s.run(probe)?;
        if let Some(why) = v.get("failed_page").and_then(Value::as_str) {
            bail!("the page failed before proving its rows: {why}");
        }
        if !v.is_null() {
            let Some(fcp) = v["fcp"].as_f64() else {
                let since = *rows_done.get_or_insert_with(Instant::now);
                if since.elapsed() > FCP_AFTER_ROWS {
                    bail!("no first-contentful-paint entry {FCP_AFTER_ROWS:?} after the rows were proven");
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            return Ok((
                fcp,
                v["entries"].as_u64().unwrap_or(0),
                v["ms"].as_f64().unwrap_or(0.0),
                v["failed"].as_u64().unwrap_or(0),
            ));
        }
        if Instant::now() > deadline {
            bail!("the page did not finish verifying within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Loads `base` + `page` `runs` times in one Chromium session (after a
/// warm-up load) and reports the medians; `Null` with a message when
/// Chromium is not installed.
pub fn measure(base: &str, page: &str, runs: u64) -> anyhow::Result<Value> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "== dashboard browser: skipped, {CHROMIUM} or {CHROMEDRIVER} missing (scripts/chromium-install)"
        );
        return Ok(Value::Null);
    }
    eprintln!("== dashboard browser: {page} in headless Chromium, {runs} loads");
    let s = Session::start()?;
    let url = format!("{base}{page}");
    load(&s, &url)?;
    let (mut fcps, mut rates) = (Vec::new(), Vec::new());
    let mut entries = 0;
    for _ in 0..runs.max(3) {
        let (fcp, n, ms, failed) = load(&s, &url)?;
        if failed > 0 {
            bail!("{failed} rows failed verification on an honest log");
        }
        entries = n;
        fcps.push(fcp);
        rates.push(n as f64 / (ms / 1000.0).max(1e-9));
    }
    let chromium = Command::new(CHROMIUM)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    Ok(json!({
        "chromium": chromium.unwrap_or_default(),
        "entries": entries,
        "first_contentful_paint_ms": Spread::of(&fcps),
        "proofs_per_s": Spread::of(&rates),
    }))
}

/// The rows of docs/performance.md, from the dashboard step's figures.
pub fn rows(dashboard: &Value) -> Vec<Row> {
    let b = &dashboard["browser"];
    let Some(entries) = b["entries"].as_f64() else { return Vec::new() };
    let spread = |k: &str| serde_json::from_value::<Option<Spread>>(b[k].clone()).ok().flatten();
    let rows = num(dashboard["rows"].as_f64().unwrap_or(0.0));
    vec![
        Row {
            figure: format!("dashboard model page with {rows} history rows: time to first render in Chromium (first contentful paint), loopback"),
            target: "",
            measured: spread("first_contentful_paint_ms"),
            unit: "ms",
            limit: None,
            met: None,
            lower_is_better: true,
        },
        Row {
            figure: format!("dashboard in-browser verification: entries proven per second ({} entries, leaf and proof fetched, hashed, walked, decoded, compared)", num(entries)),
            target: "",
            measured: spread("proofs_per_s"),
            unit: "proofs/s",
            limit: None,
            met: None,
            lower_is_better: false,
        },
    ]
}
