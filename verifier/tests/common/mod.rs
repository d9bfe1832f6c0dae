//! Test harness: the real `custody-log` binary on loopback, the `custody`
//! binary under test with its own home directory per actor, a tiny HTTP
//! server for an in-test witness and for a lying proxy in front of the log.

#![allow(dead_code)]

pub mod http;
pub mod witness;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const CUSTODY: &str = env!("CARGO_BIN_EXE_custody");
pub const ORIGIN: &str = "registry.custody.example/log";

/// `custody-log`, built next to this test's executable (`target/debug`).
pub fn log_bin() -> PathBuf {
    sibling_bin("custody-log")
}

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sibling binary of the workspace (`custody-log`, `custody-witness`).
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is missing: build it first: cargo build -p {name}", bin.display());
    bin
}

/// Starts a binary whose stdout announces `listening on URL`; returns it.
pub fn spawn_listening(cmd: &mut Command) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server { child, url: String::new() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.url.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("no `listening on` line in time");
        if let Some(addr) = line.strip_prefix("listening on ") {
            server.url = addr.to_owned();
        }
    }
    server
}

/// `custody-log init` in registry mode; returns the log's vkey.
pub fn init_log(data: &Path) -> String {
    let out = Command::new(log_bin())
        .args(["init", "--origin", ORIGIN, "--admin", "root", "--data-dir"])
        .arg(data)
        .env_remove("CUSTODY_GENERIC")
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `custody-log serve` on port 0.
pub fn serve(data: &Path, extra: &[&str]) -> Server {
    spawn_listening(
        Command::new(log_bin())
            .args(["serve", "--data-dir"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "100", "--batch-wait", "5"])
            .args(extra)
            .env("CUSTODY_LOG", "warn")
            .env_remove("CUSTODY_POLICY"),
    )
}

/// One user of the CLI: a home directory (config, key, state).
pub struct User {
    pub home: PathBuf,
}

/// What a `custody` run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "custody failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "wrong exit code:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}: {}", self.stderr);
        self
    }
}

fn output(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl User {
    pub fn new(root: &Path, name: &str) -> Self {
        let home = root.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        User { home }
    }

    /// Runs `custody ARGS` with this user's home.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(CUSTODY)
            .args(args)
            .env("CUSTODY_HOME", &self.home)
            .env("CUSTODY_WAIT_SECS", "20")
            .env_remove("CUSTODY_LOG_URL")
            .env_remove("CUSTODY_POLICY")
            .env_remove("CUSTODY_KEY")
            .output()
            .unwrap();
        output(out)
    }

    /// `custody init` against `url` trusting `policy`.
    pub fn init(&self, policy: &Path, url: &str) {
        self.run(&["init", "--policy", policy.to_str().unwrap(), "--log", url]).ok();
    }

    /// `custody keygen`; returns the public key line.
    pub fn keygen(&self, actor: &str) -> String {
        self.run(&["keygen", actor]).ok().stdout.trim().to_owned()
    }

    /// Installs an existing key file (e.g. the log's admin key).
    pub fn use_key(&self, file: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        let dst = self.home.join("key");
        std::fs::copy(file, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A policy trusting the log alone (`quorum none`).
pub fn log_only_policy(dir: &Path, vkey: &str) -> PathBuf {
    let p = dir.join("policy");
    std::fs::write(&p, format!("log {vkey}\nquorum none\n")).unwrap();
    p
}

/// A blocking HTTP client for direct API calls in tests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The `index` field of `logged ... at entry N` in a custody run.
pub fn logged_index(run: &Run) -> u64 {
    let at = run.stdout.find("at entry ").expect("no entry index in output");
    run.stdout[at + 9..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// A registry log without witnesses (log-only policy) and its first admin,
/// configured to use the admin key `custody-log init` wrote: the start of
/// most tests.
pub struct LogWithAdmin {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub vkey: String,
    pub server: Server,
    pub policy: PathBuf,
    pub admin: User,
}

pub fn log_with_admin() -> LogWithAdmin {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let vkey = init_log(&data);
    let server = serve(&data, &[]);
    let policy = log_only_policy(dir.path(), &vkey);
    let admin = User::new(dir.path(), "root");
    admin.init(&policy, &server.url);
    admin.use_key(&data.join("admin.key"));
    LogWithAdmin { dir, data, vkey, server, policy, admin }
}
