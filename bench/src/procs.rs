//! Starting Custody's real binaries for a measurement: found next to the
//! running tool (so a release suite drives release servers), started on
//! loopback port 0, and killed when dropped whatever happens.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// `name` in the directory of the running executable.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("current executable")?;
    let path = exe.parent().context("executable directory")?.join(name);
    if !path.exists() {
        bail!("{} is missing: build the workspace binaries in the same profile", path.display());
    }
    Ok(path)
}

/// A running server, killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its `listening on` URL.
    pub url: String,
}

impl Server {
    /// The process id, for RSS readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (its stderr appended to `log`) and waits up to `wait` for
/// its `listening on URL` line.
pub fn start(cmd: &mut Command, log: &Path, wait: Duration) -> anyhow::Result<Server> {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    match rx.recv_timeout(wait) {
        Ok(url) => Ok(Server { child, url }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not start within {wait:?}; see {}", log.display())
        }
    }
}

/// Runs `cmd` to completion; its stdout, or an error with its stderr.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Resident set size of `pid` in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user and system, seconds) a process has used so far, from
/// `/proc/PID/stat` in clock ticks of `USER_HZ` (100 on Linux).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Bytes on disk under a log's data directory, artifacts (`blobs/`, not
/// entries) left out.
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_name() != "blobs")
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The body of a `GET` of `url` (at most 16 MiB), for scraping a
/// server's `/metrics` from synchronous code.
pub fn http_get(url: &str) -> anyhow::Result<String> {
    let c = custody_client::blocking::Client::new(bench_client_config(None, 1))?;
    let body = c.get(url, 16 << 20)?;
    String::from_utf8(body).with_context(|| format!("GET {url}: not UTF-8"))
}

/// The HTTP client settings every bench tool uses: no retries (a figure
/// must not hide failures), no environment proxy, a keep-alive pool as
/// large as the tool's concurrency, 120 s per request, and `ca_cert` for
/// an https:// server.
pub fn bench_client_config(ca_cert: Option<std::path::PathBuf>, pool: usize) -> custody_client::ClientConfig {
    let mut cfg = custody_client::ClientConfig::new("custody-bench")
        .timeout(Duration::from_secs(120))
        .ca_cert(ca_cert)
        .retry(custody_client::RetryPolicy::never());
    cfg.env_proxy = false;
    cfg.pool_max_idle_per_host = Some(pool.max(1));
    cfg
}

/// The samples of one Prometheus metric in `text`, as (labels, value).
pub fn metric_samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, v) = r.split_once('}')?;
                    (labels.to_owned(), v)
                }
                None if rest.starts_with(' ') => (String::new(), rest),
                None => return None,
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod metric_tests {
    use super::metric_samples;

    #[test]
    fn reads_labelled_and_plain_samples() {
        let text = "# HELP x y\nx_total 3\nx{cf=\"a\"} 1.5\nx{cf=\"b\"} 2\nxy 9\n";
        assert_eq!(
            metric_samples(text, "x"),
            vec![("cf=\"a\"".to_owned(), 1.5), ("cf=\"b\"".to_owned(), 2.0)]
        );
        assert_eq!(metric_samples(text, "x_total"), vec![(String::new(), 3.0)]);
    }
}
