//! A registry log alone (no witnesses: its policy's quorum is `none`),
//! started with extra settings through `CUSTODY_*` environment variables,
//! for the attacks on artifact transfers. Settings are passed by
//! environment rather than flags so that an older binary, which ignores
//! variables it does not know, still starts: a hostile test then fails on
//! the old behaviour instead of on a usage error.
//!
//! Included by `#[path = "common/lone.rs"] mod lone;` next to `mod common;`
//! and `#[path = "common/kit.rs"] mod kit;`.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::Digest;
use custody_standards::encoding::encode_base64;

use crate::common::{bin, rss_kib, run_ok, spawn, Proc, User};

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
        ActorSigner::parse(std::fs::read_to_string(self.data.join("admin.key")).unwrap().trim_end()).unwrap()
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
        let pid = self.proc.child.id();
        let rss = rss_kib(pid);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
        (rss, fds)
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

/// An HTTP/1.1 request written by hand on its own connection, so a test
/// controls exactly how fast the body goes out and whether the answer is
/// ever read.
pub struct RawRequest {
    pub stream: TcpStream,
}

impl RawRequest {
    /// Connects to `url` (`http://host:port`) and sends the request head.
    pub fn start(url: &str, method: &str, path: &str, headers: &[(&str, String)]) -> RawRequest {
        let addr = url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        RawRequest { stream }
    }

    /// `PUT /blobs/<digest>` of `len` bytes with `envelope`; the body is
    /// then written by the caller.
    pub fn upload(url: &str, digest: &Digest, len: usize, envelope: &[u8]) -> RawRequest {
        RawRequest::start(
            url,
            "PUT",
            &format!("/blobs/{digest}"),
            &[
                ("Content-Length", len.to_string()),
                ("Custody-Statement", encode_base64(envelope)),
                ("Connection", "close".into()),
            ],
        )
    }

    /// Writes `body` in `pieces` pieces spread over `over`.
    pub fn trickle(&mut self, body: &[u8], pieces: usize, over: Duration) {
        let pieces = pieces.max(1);
        let size = body.len().div_ceil(pieces).max(1);
        for chunk in body.chunks(size) {
            self.stream.write_all(chunk).unwrap();
            std::thread::sleep(over / pieces as u32);
        }
    }

    /// Reads the whole answer (the connection must close after it): status
    /// and body.
    pub fn answer(mut self) -> (u16, String) {
        self.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut raw = Vec::new();
        let _ = self.stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// Reads what has arrived up to `max` bytes (at least the status line)
    /// and returns the status; the rest of the answer is left unread.
    pub fn status_only(&mut self, max: usize) -> u16 {
        self.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; max];
        let mut got = 0;
        while got < 12 {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        let text = String::from_utf8_lossy(&buf[..got]).into_owned();
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// A loopback proxy to `target` (`http://host:port`) that passes what
/// clients send at about `bytes_per_sec` (in 16 KiB pieces) and answers at
/// full speed: a client's upload through it is slow, its small requests
/// barely delayed. Returns the proxy's URL; it runs until the test ends.
pub fn slow_upstream_proxy(target: &str, bytes_per_sec: usize) -> String {
    const PIECE: usize = 16 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let target = target.strip_prefix("http://").unwrap().to_owned();
    let pause = Duration::from_secs_f64(PIECE as f64 / bytes_per_sec.max(1) as f64);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; PIECE];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(pause.mul_f64(n as f64 / PIECE as f64));
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    url
}
