//! A real 3-node Garage cluster (S3-compatible, replication factor 3, one
//! zone per node) on 127.0.0.1, for tests of object storage.
//!
//! The cluster is made by `scripts/garage-cluster`, the same script a
//! developer runs by hand, so the tests and docs/operations.md describe one
//! set-up. Nothing is installed or downloaded here: the pinned binary comes
//! from `scripts/garage-install` (which `scripts/test` runs before the
//! tests), and a test that does not find it fails with a message saying so.
//!
//! Each cluster takes nine free ports from a random base (S3, RPC and admin
//! for each node), so tests can run clusters side by side.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{run_ok, text};
use crate::WAIT;

/// The nodes of a cluster, numbered as the script numbers them.
pub const NODES: [usize; 3] = [1, 2, 3];

/// A running 3-node Garage cluster, stopped (SIGTERM, then SIGKILL) when
/// dropped. Node numbers are 1, 2 and 3.
pub struct GarageCluster {
    dir: PathBuf,
    endpoints: Vec<String>,
    /// S3 access key id with read and write on [`GarageCluster::bucket`].
    pub access_key_id: String,
    /// Its secret key.
    pub secret_access_key: String,
    /// The S3 region every node answers to (`garage`).
    pub region: String,
    /// The bucket the cluster was made with.
    pub bucket: String,
    /// The bucket as a static website through node 1 (Garage's web
    /// endpoint; unsigned GETs, as a CDN in front of the bucket would do).
    pub web_url: String,
}

impl GarageCluster {
    /// Configures and starts a cluster under `dir` (ports, secrets, data),
    /// and returns once every node answers signed S3 requests. Panics with
    /// the script's output when it fails, and with what to run when the
    /// Garage binary is not installed.
    pub fn start(dir: &Path) -> GarageCluster {
        let bin = garage_bin();
        assert!(
            bin.is_file(),
            "no garage binary at {}: run ./scripts/garage-install first \
             (it builds the pinned Garage once, about 10 minutes; scripts/test runs it before the tests)",
            bin.display()
        );
        let base = free_port_base();
        run_ok(
            script()
                .arg("start")
                .arg(dir)
                .env("CUSTODY_GARAGE_BIN", &bin)
                .env("CUSTODY_GARAGE_PORT_BASE", base.to_string()),
        );
        let env = std::fs::read_to_string(dir.join("env")).expect("scripts/garage-cluster writes DIR/env");
        let var = |name: &str| -> String {
            env.lines()
                .filter_map(|l| l.strip_prefix("export "))
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("{name} missing from {}", dir.join("env").display()))
                .to_owned()
        };
        GarageCluster {
            dir: dir.to_owned(),
            endpoints: NODES
                .iter()
                .map(|n| format!("http://127.0.0.1:{}", base + 10 * (n - 1) as u16))
                .collect(),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            region: var("AWS_REGION"),
            bucket: var("CUSTODY_TEST_BUCKET"),
            web_url: var("CUSTODY_TEST_WEB_URL"),
        }
    }

    /// The environment a `custody-log serve --store s3://...` needs to
    /// reach the bucket through node 1.
    pub fn s3_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_REGION", &self.region),
            ("AWS_ENDPOINT_URL", self.endpoint(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint of `node` (1-3).
    pub fn endpoint(&self, node: usize) -> &str {
        &self.endpoints[index(node)]
    }

    /// The S3 endpoints of nodes 1, 2 and 3.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The directory of `node`: its `garage.toml`, `log`, `meta/` and `data/`.
    pub fn node_dir(&self, node: usize) -> PathBuf {
        self.dir.join(format!("node{}", index(node) + 1))
    }

    /// SIGKILL to `node`, and a bounded wait until it is gone: no shutdown,
    /// no flush, as in a crash.
    pub fn kill9(&self, node: usize) {
        let Some(pid) = self.pid(node) else { return };
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        let deadline = Instant::now() + WAIT;
        while alive(pid) {
            assert!(Instant::now() < deadline, "node {node} (pid {pid}) still alive after SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `node` again with its data and returns once it answers S3.
    pub fn restart(&self, node: usize) {
        let out = script()
            .arg("start-node")
            .arg(&self.dir)
            .arg((index(node) + 1).to_string())
            .env("CUSTODY_GARAGE_BIN", garage_bin())
            .output()
            .expect("run scripts/garage-cluster");
        assert!(
            out.status.success(),
            "restarting node {node} failed: {}{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.logs()
        );
    }

    /// True when `node`'s process runs.
    pub fn is_running(&self, node: usize) -> bool {
        self.pid(node).is_some_and(alive)
    }

    /// The `garage` CLI talking to `node` over RPC (e.g. `repair`, `status`).
    pub fn cli(&self, node: usize) -> Command {
        let mut cmd = Command::new(garage_bin());
        cmd.arg("-c").arg(self.node_dir(node).join("garage.toml"));
        cmd
    }

    /// Bytes under `node`'s `data/`: the object blocks it holds.
    pub fn data_bytes(&self, node: usize) -> u64 {
        dir_bytes(&self.node_dir(node).join("data"))
    }

    /// The end of every node's log, for assertion messages.
    pub fn logs(&self) -> String {
        NODES
            .iter()
            .map(|&n| {
                let log = std::fs::read_to_string(self.node_dir(n).join("log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- node {n} (last 40 lines) ---\n{}\n", tail.join("\n"))
            })
            .collect()
    }

    fn pid(&self, node: usize) -> Option<u32> {
        std::fs::read_to_string(self.node_dir(node).join("pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        let out = script().arg("stop").arg(&self.dir).output();
        if let Ok(out) = out {
            if !out.status.success() {
                eprintln!("garage-cluster stop: {}{}", text(&out.stdout), text(&out.stderr));
            }
        }
    }
}

/// The binary `scripts/garage-install` installs (`--path` only prints it),
/// or `$CUSTODY_GARAGE_BIN`.
pub fn garage_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CUSTODY_GARAGE_BIN") {
        return PathBuf::from(bin);
    }
    let path = run_ok(Command::new(scripts_dir().join("garage-install")).arg("--path"));
    PathBuf::from(path.trim())
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

fn script() -> Command {
    Command::new(scripts_dir().join("garage-cluster"))
}

fn index(node: usize) -> usize {
    assert!(NODES.contains(&node), "Garage nodes are numbered 1-3, not {node}");
    node - 1
}

/// A base port B such that B..B+30 (three nodes, ports +0 to +3 each)
/// are free now; random so that parallel tests rarely try the same range.
fn free_port_base() -> u16 {
    let seed = RandomState::new().hash_one(std::process::id());
    for attempt in 0..100u64 {
        let base = 20_000 + ((seed.wrapping_add(attempt * 7919) % 1_300) * 30) as u16;
        let free = NODES
            .iter()
            .flat_map(|n| [0, 1, 2, 3].map(|o| base + 10 * (*n as u16 - 1) + o))
            .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free range of 30 ports found on 127.0.0.1 for a Garage cluster");
}

/// True until every thread of `pid` has exited: a SIGKILLed process shows
/// as a zombie (`Z`) as soon as its main thread dies, while its other
/// threads, and the sockets they hold, may take a moment longer.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
    !zombie || threads > 1
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
