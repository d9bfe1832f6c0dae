//! A log that applies no registry rule, fed raw leaves by the test: what an
//! operator who bypasses the rules (or a compromised log) would serve.
//! A generic log (`custody-log init --generic`, `--allow-raw-append`)
//! appends whatever it is given, so a test writes exactly the statements
//! and commitment leaves a dishonest registry would, and an auditor whose
//! policy trusts that log alone checks them.

use std::path::Path;

use reqwest::blocking::Client;

use super::dos::{init_log, serve_alone, Logged};
use crate::cli::{Run, User};
use crate::eventually;
use crate::http::{append_raw, http};

/// A generic log started alone, and a `custody` user that audits it.
pub struct RawLog {
    pub server: Logged,
    pub base: String,
    pub http: Client,
    pub auditor: User,
}

impl RawLog {
    /// A fresh log in `dir/name` (checkpoints every 200 ms) and its auditor.
    pub fn start(dir: &Path, name: &str) -> RawLog {
        let data = dir.join(name);
        let vkey = init_log(&data, true);
        let server = serve_alone(&data, &["--allow-raw-append"], None, &[]);
        let base = server.proc.url.clone();
        let policy = dir.join(format!("{name}.policy"));
        std::fs::write(&policy, format!("log {vkey}\nquorum none\n")).unwrap();
        let auditor = User::init(dir, &format!("auditor-{name}"), &policy, &base);
        RawLog { server, base, http: http(), auditor }
    }

    /// Appends `entries`; returns the last one's index.
    pub fn append(&self, entries: &[Vec<u8>]) -> u64 {
        append_raw(&self.http, &self.base, entries)
    }

    /// Waits for a checkpoint of exactly `size`, then runs `custody audit`
    /// with `args`.
    pub fn audit_at(&self, size: u64, args: &[&str]) -> Run {
        eventually("a checkpoint covering every entry", 30, || {
            let note = self.http.get(format!("{}/checkpoint", self.base)).send().ok()?.text().ok()?;
            (note.lines().nth(1)?.parse::<u64>().ok()? == size).then_some(())
        });
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        self.auditor.cli(&all)
    }
}
