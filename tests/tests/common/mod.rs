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

impl Proc {
    /// Sends `sig` (e.g. `HUP`, `TERM`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.child.id());
    }

    /// Stops the process gracefully (SIGTERM, at most 30 s), else kills it.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts `cmd` and waits (bounded) for its `listening on URL` line.
pub fn spawn(cmd: &mut Command) -> Proc {
    spawn_logged(cmd, None)
}

/// [`spawn`], with the process's stderr written to `stderr` when given
/// (and shown if it never says where it listens).
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
    let mut p = Proc { child, url: String::new() };
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => p.url = url,
        Err(_) => {
            let log =
                stderr.map(|path| std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default();
            panic!("no `listening on` line within 60 s: {log}")
        }
    }
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
    /// Name, verifier key and files of each witness, in `witnesses` order.
    pub witness_ids: Vec<WitnessId>,
}

/// Who a witness is and where its files are.
pub struct WitnessId {
    pub name: String,
    pub vkey: String,
    pub data: PathBuf,
    /// Its peers file, when started with gossip.
    pub peers: Option<PathBuf>,
}

/// What [`Deployment::start_with`] starts.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Number of witnesses.
    pub witnesses: usize,
    /// How many of them the policy requires.
    pub quorum: usize,
    /// Start every witness with an (empty) peers file and this gossip
    /// interval in milliseconds; [`Deployment::introduce_witnesses`] then
    /// makes them peers.
    pub gossip_ms: Option<u64>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { witnesses: 3, quorum: 2, gossip_ms: None }
    }
}

impl Deployment {
    pub fn start(dir: &Path) -> Deployment {
        Deployment::start_with(dir, Setup::default())
    }

    pub fn start_with(dir: &Path, setup: Setup) -> Deployment {
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
        let mut witnesses = Vec::new();
        let mut witness_ids = Vec::new();
        for i in 1..=setup.witnesses {
            let name = format!("w{i}.scenario.example");
            let data = dir.join(format!("w{i}"));
            let vkey = run_ok(
                Command::new(bin("custody-witness")).args(["init", "--name", &name, "--data-dir"]).arg(&data),
            );
            let mut cmd = Command::new(bin("custody-witness"));
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data).arg("--logs").arg(&list);
            let peers = setup.gossip_ms.map(|ms| {
                let peers = dir.join(format!("w{i}.peers"));
                std::fs::write(&peers, "peers/v0\n").unwrap();
                cmd.arg("--peers").arg(&peers).args(["--gossip-interval", &ms.to_string()]);
                peers
            });
            witnesses.push(spawn(&mut cmd));
            witness_ids.push(WitnessId { name, vkey: vkey.trim().to_owned(), data, peers });
        }
        let all: Vec<usize> = (0..setup.witnesses).collect();
        let policy = dir.join("policy.txt");
        std::fs::write(&policy, policy_text(&log_vkey, &witness_ids, &witnesses, &all, setup.quorum))
            .unwrap();
        let log = serve_log(&dir.join("log"), &policy);
        Deployment { log, witnesses, log_vkey, origin, policy, dir: dir.to_owned(), witness_ids }
    }

    /// Writes a tlog-policy trusting the log and requiring `quorum` of the
    /// witnesses at positions `which`.
    pub fn write_policy(&self, path: &Path, which: &[usize], quorum: usize) {
        let text = policy_text(&self.log_vkey, &self.witness_ids, &self.witnesses, which, quorum);
        std::fs::write(path, text).unwrap();
    }

    /// Starts the (stopped) log again on its data directory and policy; it
    /// gets a new URL.
    pub fn restart_log(&mut self) {
        self.log.stop();
        self.log = serve_log(&self.dir.join("log"), &self.policy);
    }

    /// Makes every witness started with gossip a peer of all the others
    /// (peers files rewritten, then SIGHUP).
    pub fn introduce_witnesses(&self) {
        for (i, w) in self.witness_ids.iter().enumerate() {
            let Some(peers) = &w.peers else { continue };
            let mut s = String::from("peers/v0\n");
            for (j, p) in self.witness_ids.iter().enumerate().filter(|(j, _)| *j != i) {
                s += &format!("\nwitness {}\nvkey {}\nurl {}\n", p.name, p.vkey, self.witnesses[j].url);
            }
            std::fs::write(peers, s).unwrap();
            self.witnesses[i].signal("HUP");
        }
    }

    /// A client user with its own home, configured for this deployment.
    pub fn user(&self, name: &str) -> User {
        self.user_at(name, &self.log.url)
    }

    /// A client user configured for the log at `url` (this deployment's
    /// policy).
    pub fn user_at(&self, name: &str, url: &str) -> User {
        User::init(&self.dir, name, &self.policy, url)
    }

    /// The first admin, using the key `custody-log init` wrote.
    pub fn admin(&self) -> User {
        self.admin_at("admin", &self.log.url)
    }

    /// Another client holding the first admin's key, named `name`, for the
    /// log at `url`.
    pub fn admin_at(&self, name: &str, url: &str) -> User {
        let u = self.user_at(name, url);
        let key = u.home.join("key");
        std::fs::copy(self.dir.join("log/admin.key"), &key).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        u
    }
}

fn policy_text(log_vkey: &str, ids: &[WitnessId], procs: &[Proc], which: &[usize], quorum: usize) -> String {
    let mut policy = format!("log {log_vkey}\n");
    let mut names = Vec::new();
    for &i in which {
        policy += &format!("witness {} {} {}\n", ids[i].name, ids[i].vkey, procs[i].url);
        names.push(ids[i].name.as_str());
    }
    policy + &format!("group witnesses {quorum} {}\nquorum witnesses\n", names.join(" "))
}

/// Starts `custody-log serve` on the data directory `data` with `policy`
/// (checkpoints every 200 ms).
pub fn serve_log(data: &Path, policy: &Path) -> Proc {
    spawn(
        Command::new(bin("custody-log"))
            .args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval", "200", "--data-dir"])
            .arg(data)
            .arg("--policy")
            .arg(policy),
    )
}

/// A `custody` client with its own home directory.
pub struct User {
    pub home: PathBuf,
}

impl User {
    /// `custody init` in a fresh home `dir/home-NAME`, trusting `policy`
    /// and talking to the log at `url`.
    pub fn init(dir: &Path, name: &str, policy: &Path, url: &str) -> User {
        let u = User { home: dir.join(format!("home-{name}")) };
        std::fs::create_dir_all(&u.home).unwrap();
        u.ok(&["init", "--policy", policy.to_str().unwrap(), "--log", url]);
        u
    }

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
