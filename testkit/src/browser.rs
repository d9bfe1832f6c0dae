//! Headless Chromium driven over WebDriver, for the dashboard's browser
//! tests and figures. Debian's `chromium` and `chromedriver` are installed by
//! `scripts/chromium-install` (called from `scripts/test`); nothing is ever
//! downloaded here. A small blocking W3C WebDriver client over the reqwest
//! already in the tree does the driving: it needs no async runtime in the
//! tests and adds no crate.
//!
//! Each [`Browser`] is its own chromedriver on a free loopback port with a
//! fresh profile directory; dropping it ends the session (closing Chromium)
//! and kills chromedriver's whole process group, so no browser outlives its
//! test.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::TempDir;

/// Where the browser binaries are, overridable for other layouts.
fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
}

/// The Chromium binary (`CUSTODY_CHROMIUM`, default `/usr/bin/chromium`).
pub fn chromium_path() -> PathBuf {
    binary("CUSTODY_CHROMIUM", "/usr/bin/chromium")
}

/// The WebDriver server (`CUSTODY_CHROMEDRIVER`, default `/usr/bin/chromedriver`).
pub fn chromedriver_path() -> PathBuf {
    binary("CUSTODY_CHROMEDRIVER", "/usr/bin/chromedriver")
}

/// Whether both binaries are installed (figures skip with a message when
/// not; tests fail with one).
pub fn available() -> bool {
    chromium_path().exists() && chromedriver_path().exists()
}

/// The Chromium flags every session uses, one a line in
/// `scripts/chromium-flags` (shared with the bench suite's browser step):
/// headless, no sandbox (tests may run as root in containers), and nothing
/// that reaches the network on its own (no QUIC, sync, component updates or
/// background fetches).
pub const FLAGS: &str = include_str!("../../scripts/chromium-flags");

/// The viewport a session emulates.
#[derive(Debug, Clone, Copy)]
pub enum Viewport {
    /// A desktop window of this size.
    Desktop { width: u32, height: u32 },
    /// A phone (mobile emulation: this CSS width, touch, device pixel ratio 3).
    Phone { width: u32, height: u32 },
}

/// A running headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    http: Client,
    _profile: TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// A desktop session (1280 x 900).
    pub fn start() -> Browser {
        Browser::with_viewport(Viewport::Desktop { width: 1280, height: 900 })
    }

    /// A session with `viewport`. Panics, naming `scripts/chromium-install`,
    /// when the browser is not installed.
    pub fn with_viewport(viewport: Viewport) -> Browser {
        assert!(
            available(),
            "{} or {} is missing: run scripts/chromium-install (Debian's chromium and chromium-driver)",
            chromium_path().display(),
            chromedriver_path().display()
        );
        let profile = crate::tempdir().unwrap();
        let port = free_port();
        let driver = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Drop can kill Chromium with it.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let http = Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
        let mut b = Browser { driver, base: format!("http://127.0.0.1:{port}"), http, _profile: profile };
        crate::eventually("chromedriver to answer", 30, || {
            b.http.get(format!("{}/status", b.base)).send().ok().filter(|r| r.status().is_success())
        });
        let mut args: Vec<String> = FLAGS.lines().map(str::to_owned).collect();
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let mut options = json!({ "binary": chromium_path(), "args": args });
        match viewport {
            Viewport::Desktop { width, height } => {
                options["args"].as_array_mut().unwrap().push(json!(format!("--window-size={width},{height}")))
            }
            Viewport::Phone { width, height } => {
                options["mobileEmulation"] = json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3.0, "touch": true } })
            }
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": { "browser": "ALL" },
            "timeouts": { "script": 120_000, "pageLoad": 60_000 } } } });
        let session = b.call("POST", "/session", caps);
        let id = session["sessionId"].as_str().expect("a session id").to_owned();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    /// One WebDriver command; its `value`. Panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let resp = req.send().unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "WebDriver {method} {path}: {status} {}", v["value"]);
        v.get("value").cloned().unwrap_or(v)
    }

    /// Loads `url` and waits for the document to load.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns
    /// what it returns; a returned promise is awaited.
    pub fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.call("POST", "/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Waits until the expression `condition` is truthy in the page, then
    /// returns its value. Panics after `timeout` with the last value and the
    /// page's console.
    pub fn wait_for(&self, condition: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        let script = format!("try {{ return ({condition}); }} catch (e) {{ return null; }}");
        loop {
            let v = self.run(&script, vec![]);
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {condition} (last {v}); console:\n{}",
                    self.console()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's console messages since the last call.
    pub fn console(&self) -> String {
        let url = format!("{}/se/log", self.base);
        let Ok(resp) = self.http.post(url).json(&json!({ "type": "browser" })).send() else {
            return String::new();
        };
        let v: Value = resp.json().unwrap_or(Value::Null);
        v["value"]
            .as_array()
            .map(|a| {
                a.iter().map(|m| format!("{} {}", m["level"], m["message"])).collect::<Vec<_>>().join("\n")
            })
            .unwrap_or_default()
    }

    /// Presses Tab `n` times and returns, for each press, a description of
    /// the focused element (`tag#id` plus its text or href).
    pub fn tab_through(&self, n: usize) -> Vec<String> {
        let describe = "const e = document.activeElement; if (!e) return ''; \
            return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + \
            (e.getAttribute('href') || e.textContent.trim().slice(0, 40));";
        (0..n)
            .map(|_| {
                let key = "\u{E004}";
                let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                    { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key } ] }] });
                self.call("POST", "/actions", actions);
                self.run(describe, vec![]).as_str().unwrap_or("").to_owned()
            })
            .collect()
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", Value::Null);
        let png = custody_standards::encoding::decode_base64_strict(b64.as_str().expect("screenshot base64"))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

/// Where tests save screenshots: `$CARGO_TARGET_DIR/screenshots/` (or
/// `target/screenshots/`).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then chromedriver's group goes,
        // taking any Chromium process that did not exit with it.
        let _ = self.http.delete(&self.base).timeout(Duration::from_secs(10)).send();
        let group = self.driver.id();
        if group > 1 {
            let _ = Command::new("kill").args(["-s", "KILL", "--"]).arg(format!("-{group}")).status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
