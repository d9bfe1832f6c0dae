//! Harness for scenario tests: the three real binaries, found next to the
//! test executable, started on loopback port 0 with temporary directories,
//! and killed when dropped whatever happens.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A workspace binary built next to this test (`target/debug/NAME`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path
}

/// A running process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits (bounded) for its `listening on URL` line.
pub fn spawn(cmd: &mut Command) -> Proc {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let mut p = Proc { child, url: String::new() };
    p.url = rx.recv_timeout(Duration::from_secs(60)).expect("no `listening on` line within 60 s");
    p
}

/// Runs a command to completion; panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A log, three witnesses and a 2-of-3 policy, all on loopback.
pub struct Deployment {
    pub log: Proc,
    pub witnesses: Vec<Proc>,
    pub log_vkey: String,
    pub origin: String,
    pub policy: PathBuf,
    pub dir: PathBuf,
}

impl Deployment {
    pub fn start(dir: &Path) -> Deployment {
        let origin = "scenario.custody.example/log".to_owned();
        let out = Command::new(bin("custody-log"))
            .args(["init", "--origin", &origin, "--admin", "admin", "--data-dir"])
            .arg(dir.join("log"))
            .output()
            .unwrap();
        assert!(out.status.success(), "log init: {}", text(&out.stderr));
        let log_vkey = text(&out.stdout).trim().to_owned();
        let list = dir.join("logs.txt");
        std::fs::write(&list, format!("logs/v0\n\nvkey {log_vkey}\norigin none\nqpd 86400\n")).unwrap();
        let mut policy = format!("log {log_vkey}\n");
        let mut witnesses = Vec::new();
        let mut names = Vec::new();
        for i in 1..=3 {
            let name = format!("w{i}.scenario.example");
            let data = dir.join(format!("w{i}"));
            let vkey = run_ok(
                Command::new(bin("custody-witness")).args(["init", "--name", &name, "--data-dir"]).arg(&data),
            );
            let w = spawn(
                Command::new(bin("custody-witness"))
                    .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(&data)
                    .arg("--logs")
                    .arg(&list),
            );
            policy += &format!("witness {name} {} {}\n", vkey.trim(), w.url);
            names.push(name);
            witnesses.push(w);
        }
        policy += &format!("group witnesses 2 {}\nquorum witnesses\n", names.join(" "));
        let policy_path = dir.join("policy.txt");
        std::fs::write(&policy_path, policy).unwrap();
        let log = spawn(
            Command::new(bin("custody-log"))
                .args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval", "200", "--data-dir"])
                .arg(dir.join("log"))
                .arg("--policy")
                .arg(&policy_path),
        );
        Deployment { log, witnesses, log_vkey, origin, policy: policy_path, dir: dir.to_owned() }
    }

    /// A client user with its own home, configured for this deployment.
    pub fn user(&self, name: &str) -> User {
        let u = User { home: self.dir.join(format!("home-{name}")) };
        std::fs::create_dir_all(&u.home).unwrap();
        u.ok(&["init", "--policy", self.policy.to_str().unwrap(), "--log", &self.log.url]);
        u
    }

    /// The first admin, using the key `custody-log init` wrote.
    pub fn admin(&self) -> User {
        let u = self.user("admin");
        let key = u.home.join("key");
        std::fs::copy(self.dir.join("log/admin.key"), &key).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        u
    }
}

/// A `custody` client with its own home directory.
pub struct User {
    pub home: PathBuf,
}

impl User {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin("custody"))
            .args(args)
            .env("CUSTODY_HOME", &self.home)
            .env("CUSTODY_WAIT_SECS", "30")
            .env_remove("CUSTODY_LOG_URL")
            .env_remove("CUSTODY_POLICY")
            .env_remove("CUSTODY_KEY")
            .output()
            .unwrap()
    }

    /// Runs and requires exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "custody {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// `custody keygen`; returns the public key line.
    pub fn keygen(&self, actor: &str) -> String {
        self.ok(&["keygen", actor]).trim().to_owned()
    }
}

/// Polls `f` every 50 ms for at most `secs` seconds.
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
