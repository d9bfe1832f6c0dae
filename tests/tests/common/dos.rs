//! Helpers for the resource-exhaustion scenarios: a log server started
//! alone (no witnesses) under a chosen open-file limit with its stderr
//! kept, an honest client on another loopback address, the server's RSS,
//! and a slowloris attacker on raw sockets.
//!
//! Included by `#[path = "common/dos.rs"] mod dos;` next to `mod common;`.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{bin, spawn_logged, text, Proc};

/// `custody-log init` of a registry (or, with `generic`, a raw-entry log)
/// in `data`; returns the log's verifier key.
pub fn init_log(data: &Path, generic: bool) -> String {
    let mut cmd = Command::new(bin("custody-log"));
    cmd.args(["init", "--origin", "dos.custody.example/log", "--data-dir"]).arg(data);
    if generic {
        cmd.arg("--generic");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "init: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// Runs `custody` with its home in `home`; returns (success, stdout+stderr).
pub fn custody(home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("custody"))
        .args(args)
        .env("CUSTODY_HOME", home)
        .env_remove("CUSTODY_LOG_URL")
        .env_remove("CUSTODY_POLICY")
        .env_remove("CUSTODY_KEY")
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// A server started by [`serve_alone`], with its stderr file.
pub struct Logged {
    pub proc: Proc,
    pub stderr: PathBuf,
}

impl Logged {
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// `custody-log serve` on `data` with `args`, checkpoints every 200 ms,
/// stderr into `data/../serve.stderr`, and the open-file limit set to
/// `nofile` (the common default of 1024 for services when `Some`).
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
    let proc = spawn_logged(&mut cmd, Some(&stderr));
    Logged { proc, stderr }
}

/// A client that connects from `127.0.0.2` (not the attacker's address),
/// opens a new connection for every request (as a new visitor would) and
/// gives up after `timeout`.
pub fn honest_client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// The server's address from its URL.
pub fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("http://").unwrap().trim_end_matches('/').parse().unwrap()
}

/// Connections that sent a whole request head announcing a body, then
/// trickle that body one byte at a time.
pub struct Slowloris {
    conns: Vec<TcpStream>,
}

impl Slowloris {
    /// Opens up to `n` connections to `addr` within `budget` (each connect
    /// waits at most 500 ms) and sends each a `POST /statements` head with a
    /// 4000-byte body announced and its first byte.
    pub fn open(addr: SocketAddr, n: usize, budget: Duration) -> Slowloris {
        let deadline = Instant::now() + budget;
        let mut conns = Vec::with_capacity(n);
        while conns.len() < n && Instant::now() < deadline {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { continue };
            let head = format!(
                "POST /statements HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: 4000\r\n\r\n{{"
            );
            let _ = s.set_nonblocking(true);
            if s.write_all(head.as_bytes()).is_ok() {
                conns.push(s);
            }
        }
        Slowloris { conns }
    }

    /// Connections opened.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Sends one more body byte on every connection still open; returns
    /// how many the server has not closed.
    pub fn trickle(&mut self) -> usize {
        self.conns.retain_mut(|s| {
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => return false,                                     // closed by the server
                Ok(_) => return false,                                     // answered (408): done
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {} // still waiting
                Err(_) => return false,
            }
            s.write_all(b" ").is_ok()
        });
        self.conns.len()
    }
}
