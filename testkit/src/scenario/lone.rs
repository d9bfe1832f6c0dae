//! A registry log alone (no witnesses: its policy's quorum is `none`),
//! started with extra settings through `CUSTODY_*` environment variables,
//! for the attacks on artifact transfers. Settings are passed by
//! environment rather than flags so that an older binary, which ignores
//! variables it does not know, still starts: a hostile test then fails on
//! the old behaviour instead of on a usage error.

use std::path::{Path, PathBuf};
use std::process::Command;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::Digest;

pub use crate::raw::{slow_upstream_proxy, RawRequest};
use crate::{bin, cli::read_signer, cli::User, open_fds, rss_kib, run_ok, spawn, Proc};

/// A registry log without witnesses.
pub struct LoneLog {
    pub proc: Proc,
    pub data: PathBuf,
    pub policy: PathBuf,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl LoneLog {
    /// `custody-log init` in `dir/log`, then `serve` with `env` set.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> LoneLog {
        let data = dir.join("log");
        let vkey = run_ok(
            Command::new(bin("custody-log"))
                .args(["init", "--origin", "lone.custody.example/log", "--data-dir"])
                .arg(&data),
        );
        let policy = dir.join("policy.txt");
        std::fs::write(&policy, format!("log {}\nquorum none\n", vkey.trim())).unwrap();
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let proc = serve(&data, &policy, &env);
        LoneLog { proc, data, policy, dir: dir.to_owned(), env }
    }

    pub fn url(&self) -> &str {
        &self.proc.url
    }

    /// A `custody` user configured for this log.
    pub fn user(&self, name: &str) -> User {
        self.user_at(name, &self.proc.url)
    }

    /// A `custody` user configured for this log, reached at `url` (a
    /// proxy in front of it).
    pub fn user_at(&self, name: &str, url: &str) -> User {
        User::init(&self.dir, name, &self.policy, url)
    }

    /// The first admin's key, written by `custody-log init`.
    pub fn admin_signer(&self) -> ActorSigner {
        read_signer(&self.data.join("admin.key"))
    }

    /// Stops the server (SIGTERM, then kill).
    pub fn stop(&mut self) {
        self.proc.stop();
    }

    /// Files in the blob store (the stored artifacts).
    pub fn stored_blobs(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.data.join("blobs/sha256")) else { return out };
        for shard in shards.flatten() {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        out
    }

    /// Where the blob with `digest` is stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.0.to_hex();
        self.data.join("blobs/sha256").join(&hex[..2]).join(hex)
    }

    /// The server's resident memory in KiB and its open descriptors.
    pub fn rss_kib_and_fds(&self) -> (u64, usize) {
        let pid = self.proc.pid();
        (rss_kib(pid), open_fds(pid))
    }
}

/// `custody-log serve` on `data` with `policy` and `env`.
pub fn serve(data: &Path, policy: &Path, env: &[(String, String)]) -> Proc {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval", "200", "--data-dir"])
        .arg(data)
        .arg("--policy")
        .arg(policy);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn(&mut cmd)
}
