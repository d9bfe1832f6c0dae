//! The resource-exhaustion scenarios: a log server started alone (no
//! witnesses) under a chosen open-file limit with its stderr kept, an
//! honest client on another loopback address, and a slowloris attacker on
//! raw sockets.

use std::path::Path;
use std::process::Command;

pub use crate::raw::{addr_of, honest_client, Slowloris};
use crate::{bin, run_ok, spawn_logged, text, Proc};

/// `custody-log init` of a registry (or, with `generic`, a raw-entry log)
/// in `data`; returns the log's verifier key.
pub fn init_log(data: &Path, generic: bool) -> String {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["init", "--origin", "dos.custody.example/log", "--data-dir"]).arg(data);
    if generic {
        cmd.arg("--generic");
    }
    run_ok(&mut cmd).trim().to_owned()
}

/// Runs `custody` with its home in `home`; returns (success, stdout+stderr).
pub fn custody(home: &Path, args: &[&str]) -> (bool, String) {
    let out = crate::cli::User { home: home.to_owned() }.run(args);
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// A server started by [`serve_alone`], with its stderr kept.
pub struct Logged {
    pub proc: Proc,
}

impl Logged {
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}

/// `custody-log serve` on `data` with `args`, checkpoints every 200 ms,
/// stderr into `data.stderr`, and the open-file limit set to `nofile` (the
/// common default of 1024 for services when `Some`).
pub fn serve_alone(data: &Path, args: &[&str], nofile: Option<u32>, env: &[(&str, &str)]) -> Logged {
    let stderr = data.with_extension("stderr");
    let mut cmd = Command::new("sh");
    let limit = nofile.map_or(String::new(), |n| format!("ulimit -n {n} && "));
    cmd.arg("-c").arg(format!("{limit}exec \"$0\" \"$@\"")).arg(bin("custody-log"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval", "200", "--data-dir"]).arg(data);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Logged { proc: spawn_logged(&mut cmd, Some(&stderr)) }
}
