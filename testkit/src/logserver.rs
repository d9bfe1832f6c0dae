//! One `custody-log` alone: initialised as a registry or as a generic log
//! of raw entries, served on port 0 with fast checkpoints, and the usual
//! start of a client test (a log, its log-only policy and its first admin).

use std::path::{Path, PathBuf};
use std::process::Command;

use custody_registry::actor_key::ActorSigner;
use custody_standards::VerifierKey;

use crate::bins::bin;
use crate::cli::{read_signer, User};
use crate::process::{run_ok, spawn_logged, Proc};

/// The origin of logs made by [`init_registry`] and [`init_log`].
pub const ORIGIN: &str = "registry.custody.example/log";

/// `custody-log init --generic` (a log of raw entries); returns the log's
/// verifier key, printed on stdout.
pub fn init_generic(data: &Path, origin: &str) -> VerifierKey {
    let out = run_ok(
        Command::new(bin("custody-log"))
            .args(["init", "--generic", "--origin", origin, "--data-dir"])
            .arg(data)
            .env_remove("CUSTODY_DATA_DIR"),
    );
    VerifierKey::parse(out.trim_end()).unwrap()
}

/// `custody-log init` in registry mode with first admin `root`; returns the
/// log's verifier key line.
pub fn init_log(data: &Path) -> String {
    run_ok(
        Command::new(bin("custody-log"))
            .args(["init", "--origin", ORIGIN, "--admin", "root", "--data-dir"])
            .arg(data)
            .env_remove("CUSTODY_GENERIC"),
    )
    .trim()
    .to_owned()
}

/// [`init_log`]; returns the first admin's key.
pub fn init_registry(data: &Path) -> ActorSigner {
    init_log(data);
    read_signer(&data.join("admin.key"))
}

/// `custody-log serve` on port 0 (checkpoints every 100 ms, 5 ms batches)
/// with `extra` flags; its stderr is kept in `data.stderr`.
pub fn serve(data: &Path, extra: &[&str]) -> Proc {
    spawn_logged(
        Command::new(bin("custody-log"))
            .args(["serve", "--data-dir"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "100", "--batch-wait", "5"])
            .args(extra)
            .env("CUSTODY_LOG", "warn")
            .env_remove("CUSTODY_POLICY"),
        Some(&data.with_extension("stderr")),
    )
}

/// A policy trusting the log alone (`quorum none`), written to `dir/policy`.
pub fn log_only_policy(dir: &Path, vkey: &str) -> PathBuf {
    let p = dir.join("policy");
    std::fs::write(&p, format!("log {vkey}\nquorum none\n")).unwrap();
    p
}

/// A registry log without witnesses (log-only policy) and its first admin,
/// configured to use the admin key `custody-log init` wrote: the start of
/// most client tests.
pub struct LogWithAdmin {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub vkey: String,
    pub server: Proc,
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
    admin.configure(&policy, &server.url);
    admin.use_key(&data.join("admin.key"));
    LogWithAdmin { dir, data, vkey, server, policy, admin }
}
