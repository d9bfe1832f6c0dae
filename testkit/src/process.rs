//! Real processes under test: started with `--listen 127.0.0.1:0`, their
//! address read from the `listening on URL` line they print on stdout (the
//! servers print it once bound, so the port is never guessed or raced),
//! and killed when dropped whatever the test does.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::WAIT;

/// A running process, killed and reaped when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://host:port` from its `listening on` line.
    pub url: String,
    /// Where its stderr goes, when kept ([`spawn_logged`]).
    pub stderr: Option<PathBuf>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of [`Proc::url`], to listen on again after a restart.
    pub fn addr(&self) -> &str {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        rest.trim_end_matches('/')
    }

    /// Sends `sig` (e.g. `HUP`, `TERM`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.pid());
    }

    /// SIGTERM and a bounded wait; true when it exited with status 0.
    pub fn stop_gracefully(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.success();
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the process gracefully (SIGTERM, bounded), else kills it.
    pub fn stop(&mut self) {
        self.stop_gracefully();
        self.kill9();
    }

    /// `kill -9`: SIGKILL, then reap. The `Proc` keeps its URL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the process wrote to its kept stderr so far.
    pub fn log_text(&self) -> String {
        self.stderr.as_ref().map(|p| std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `kill -9` of `p` (see [`Proc::kill9`]).
pub fn kill9(p: &mut Proc) {
    p.kill9();
}

/// Starts `cmd` (stderr discarded) and waits, bounded, for its
/// `listening on URL` line.
pub fn spawn(cmd: &mut Command) -> Proc {
    spawn_logged(cmd, None)
}

/// [`spawn`], with the process's stderr written to `stderr` when given (and
/// shown if it never says where it listens).
pub fn spawn_logged(cmd: &mut Command, stderr: Option<&Path>) -> Proc {
    let err = match stderr {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut child = cmd.stdout(Stdio::piped()).stderr(err).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let mut p = Proc { child, url: String::new(), stderr: stderr.map(Path::to_owned) };
    match rx.recv_timeout(2 * WAIT) {
        Ok(url) => p.url = url,
        Err(_) => panic!("{cmd:?}: no `listening on` line within {:?}: {}", 2 * WAIT, p.log_text()),
    }
    p
}

/// Runs a command to completion; panics with its output unless it exits 0.
/// Returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Process output as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `f` every 50 ms for at most `secs` seconds; panics naming `what`.
pub fn eventually<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Evaluates `$e` (an `Option`, may contain `.await`) every 50 ms until it
/// is `Some`, for at most [`WAIT`](crate::WAIT); yields the value. The
/// async twin of [`eventually`], for `#[tokio::test]`s.
#[macro_export]
macro_rules! eventually {
    ($what:expr, $e:expr) => {{
        let deadline = std::time::Instant::now() + $crate::WAIT;
        loop {
            if let Some(v) = $e {
                break v;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}
