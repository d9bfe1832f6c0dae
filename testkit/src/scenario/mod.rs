//! Whole deployments for the cross-process scenarios: a registry log,
//! witnesses and a tlog-policy on loopback, client users configured for
//! them, and the faults the scenarios inject (SIGKILL, relaunch on the same
//! address so saved client configurations and the policy stay valid).
//!
//! `use custody_testkit::scenario::*;` brings in everything a scenario
//! usually needs: the deployment, users, statements and the HTTP helpers.

pub mod dos;
pub mod forge;
pub mod ledger;
pub mod lone;
pub mod raw_log;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::bins::bin;
pub use crate::cli::{logged_index, read_signer, Run, User};
pub use crate::files::{files_under, rot, stored_artifact};
pub use crate::http::*;
pub use crate::process::{eventually, kill9, run_ok, spawn, spawn_logged, text, Proc};
pub use crate::procstat::{open_fds, peak_rss_kib, rss_kib};
pub use crate::statements::*;
pub use ledger::*;

/// A log, its witnesses and a policy requiring a quorum of them.
pub struct Deployment {
    pub log: Proc,
    pub witnesses: Vec<Proc>,
    pub log_vkey: String,
    pub origin: String,
    pub policy: PathBuf,
    pub dir: PathBuf,
    /// Name, verifier key and files of each witness, in `witnesses` order.
    pub witness_ids: Vec<WitnessId>,
    /// What every start of the log adds to `custody-log serve`.
    pub log_extra: LogExtra,
}

/// Flags and environment added to every `custody-log serve` of a
/// deployment (e.g. `--store` and the `AWS_*` settings of a bucket).
#[derive(Debug, Clone, Default)]
pub struct LogExtra {
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
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
    /// A log and three witnesses under a 2-of-3 policy, all in `dir`.
    pub fn start(dir: &Path) -> Deployment {
        Deployment::start_with(dir, Setup::default())
    }

    pub fn start_with(dir: &Path, setup: Setup) -> Deployment {
        Deployment::start_with_log(dir, setup, LogExtra::default())
    }

    /// [`Deployment::start_with`], the log started with `log_extra` (every
    /// restart too).
    pub fn start_with_log(dir: &Path, setup: Setup, log_extra: LogExtra) -> Deployment {
        let origin = "scenario.custody.example/log".to_owned();
        let log_vkey = run_ok(
            Command::new(bin("custody-log"))
                .args(["init", "--origin", &origin, "--admin", "admin", "--data-dir"])
                .arg(dir.join("log")),
        )
        .trim()
        .to_owned();
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
            let mut cmd = witness_command(dir, i - 1, "127.0.0.1:0");
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
        let log = spawn(&mut log_command(&dir.join("log"), &policy, "127.0.0.1:0", &log_extra));
        Deployment { log, witnesses, log_vkey, origin, policy, dir: dir.to_owned(), witness_ids, log_extra }
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
        self.log =
            spawn(&mut log_command(&self.dir.join("log"), &self.policy, "127.0.0.1:0", &self.log_extra));
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
        u.use_key(&self.dir.join("log/admin.key"));
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

/// `custody-log serve` on `data` with `policy`, checkpoints every 200 ms,
/// listening on `listen`.
fn log_command(data: &Path, policy: &Path, listen: &str, extra: &LogExtra) -> Command {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["serve", "--listen", listen, "--checkpoint-interval", "200", "--data-dir"])
        .arg(data)
        .arg("--policy")
        .arg(policy)
        .args(&extra.args)
        .envs(extra.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// `custody-witness serve` of witness `i` (0-based) of the deployment in
/// `dir`, listening on `listen`.
fn witness_command(dir: &Path, i: usize, listen: &str) -> Command {
    let mut cmd = Command::new(bin("custody-witness"));
    cmd.args(["serve", "--listen", listen, "--data-dir"])
        .arg(dir.join(format!("w{}", i + 1)))
        .arg("--logs")
        .arg(dir.join("logs.txt"));
    cmd
}

/// Starts `custody-log serve` on the data directory `data` with `policy`
/// (checkpoints every 200 ms).
pub fn serve_log(data: &Path, policy: &Path) -> Proc {
    spawn(&mut log_command(data, policy, "127.0.0.1:0", &LogExtra::default()))
}

/// Starts the log again on its data directory, policy and address (after
/// [`kill9`]).
pub fn relaunch_log(d: &mut Deployment) {
    let listen = d.log.addr().to_owned();
    d.log = spawn(&mut log_command(&d.dir.join("log"), &d.policy, &listen, &d.log_extra));
}

/// Starts witness `i` (0-based) again on its data directory and address.
pub fn relaunch_witness(d: &mut Deployment, i: usize) {
    let listen = d.witnesses[i].addr().to_owned();
    d.witnesses[i] = spawn(&mut witness_command(&d.dir, i, &listen));
}

/// A deployment where alice may publish and maintain `demo/*` and dave may
/// read it: (deployment, admin, alice, dave, alice's public key).
pub fn demo_team(dir: &Path) -> (Deployment, User, User, User, String) {
    let d = Deployment::start(dir);
    let admin = d.admin();
    let (alice, dave) = (d.user("alice"), d.user("dave"));
    let ka = alice.keygen("alice");
    admin.ok(&["grant", &ka, "--role", "publisher", "--pattern", "demo/*"]);
    admin.ok(&["grant", &ka, "--role", "maintainer", "--pattern", "demo/*"]);
    admin.ok(&["grant", &dave.keygen("dave"), "--role", "reader", "--pattern", "demo/*"]);
    (d, admin, alice, dave, ka)
}

/// The key a `custody` user's home holds.
pub fn user_signer(u: &User) -> custody_registry::actor_key::ActorSigner {
    u.signer()
}

/// The first admin's key, written by `custody-log init`.
pub fn admin_signer(d: &Deployment) -> custody_registry::actor_key::ActorSigner {
    read_signer(&d.dir.join("log/admin.key"))
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}
