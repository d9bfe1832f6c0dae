//! Test harness for registry tests: a real `custody-log` in registry mode on
//! a loopback port, actors with keys, and signed statements built with
//! `custody-standards` exactly as a client would.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::{
    Access, Approve, GrantRole, Kind, Promote, Publish, Rollback, TagMove,
};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::encoding::encode_base64;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_custody-log");
pub const ORIGIN: &str = "registry.custody.example/log";

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn stop_gracefully(&mut self) -> bool {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// `custody-log init --generic` (a log of raw entries); returns the log's
/// verifier key, printed on stdout.
pub fn init_generic(data: &Path, origin: &str) -> custody_standards::VerifierKey {
    let out = Command::new(BIN)
        .args(["init", "--generic", "--origin", origin, "--data-dir"])
        .arg(data)
        .env_remove("CUSTODY_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    custody_standards::VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim_end()).unwrap()
}

/// `custody-log init` in registry mode; returns the admin signer.
pub fn init_registry(data: &Path) -> ActorSigner {
    let out = Command::new(BIN)
        .args(["init", "--origin", ORIGIN, "--admin", "root", "--data-dir"])
        .arg(data)
        .env_remove("CUSTODY_GENERIC")
        .output()
        .unwrap();
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let key = std::fs::read_to_string(data.join("admin.key")).unwrap();
    ActorSigner::parse(key.trim_end()).unwrap()
}

/// Starts `custody-log serve` on port 0 and waits for its address.
pub fn serve(data: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "100", "--batch-wait", "5"])
        .args(extra)
        .env("CUSTODY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server { child, url: String::new(), data: data.to_owned() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.url.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("server did not print its address in time");
        if let Some(addr) = line.strip_prefix("listening on ") {
            server.url = addr.to_owned();
        }
    }
    server
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap()
}

pub fn signer(name: &str) -> ActorSigner {
    let seed = custody_standards::hash::sha256(format!("test actor {name}").as_bytes()).0;
    ActorSigner::from_seed(&ActorName::new(name).unwrap(), &seed)
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// A fresh nonce (unique within the test process).
pub fn nonce() -> Nonce {
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&NONCE.fetch_add(1, Ordering::SeqCst).to_be_bytes());
    n[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    Nonce(n)
}

/// A statement by `who` at time `secs`.
pub fn statement_at(who: &ActorSigner, secs: u64, event: Event) -> Statement {
    let time = Timestamp::from_unix_secs(secs).unwrap();
    Statement::new(who, time, nonce(), Context::reason(Text::new("integration test").unwrap()), event)
}

/// Envelope bytes of a statement by `who`, now.
pub fn signed(who: &ActorSigner, event: Event) -> Vec<u8> {
    statement_at(who, now_secs(), event).sign(who).unwrap()
}

pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest(custody_standards::hash::sha256(bytes))
}

pub fn grant(to: &ActorSigner, role: Role, pattern: &str) -> Event {
    Event::Grant(GrantRole {
        actor: to.actor().clone(),
        key: to.public().clone(),
        role,
        pattern: Pattern::new(pattern).unwrap(),
    })
}

pub fn publish(name: &str, version: &str, bytes: &[u8], lineage: Lineage) -> Event {
    Event::Publish(Publish {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        kind: Kind::Model,
        digest: digest_of(bytes),
        size: bytes.len() as u64,
        media_type: MediaType::new("application/octet-stream").unwrap(),
        metadata: Metadata::default(),
        lineage,
    })
}

pub fn tag(name: &str, tag: &str, digest: Digest, previous: Option<u64>) -> Event {
    Event::Tag(TagMove {
        name: ModelName::new(name).unwrap(),
        tag: TagName::new(tag).unwrap(),
        digest,
        previous,
    })
}

pub fn promote(name: &str, version: &str, to: Lifecycle) -> Event {
    Event::Promote(Promote {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        to,
    })
}

pub fn approve(name: &str, version: &str) -> Event {
    Event::Approve(Approve { name: ModelName::new(name).unwrap(), version: Version::new(version).unwrap() })
}

pub fn rollback(name: &str, version: &str) -> Event {
    Event::Rollback(Rollback { name: ModelName::new(name).unwrap(), version: Version::new(version).unwrap() })
}

pub fn access(name: &str, version: &str, digest: Digest) -> Event {
    Event::Access(Access {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        digest,
    })
}

/// `POST /statements`; returns status and JSON body.
pub async fn post_statement(c: &reqwest::Client, base: &str, envelope: Vec<u8>) -> (u16, Value) {
    let r = c.post(format!("{base}/statements")).body(envelope).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// `PUT /blobs/<digest>` with the publish statement in the header.
pub async fn upload(c: &reqwest::Client, base: &str, bytes: &[u8], envelope: &[u8]) -> (u16, Value) {
    let r = c
        .put(format!("{base}/blobs/{}", digest_of(bytes)))
        .header("Custody-Statement", encode_base64(envelope))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// `GET /blobs/<digest>` with an access statement; returns status, the
/// access leaf index header, and the body.
pub async fn download(
    c: &reqwest::Client,
    base: &str,
    digest: Digest,
    envelope: &[u8],
) -> (u16, Option<u64>, Vec<u8>) {
    let r = c
        .get(format!("{base}/blobs/{digest}"))
        .header("Custody-Statement", encode_base64(envelope))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let index = r.headers().get("Custody-Leaf-Index").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, index, r.bytes().await.unwrap().to_vec())
}

pub async fn get_json(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The durable tree size, from `/health`.
pub async fn tree_size(c: &reqwest::Client, base: &str) -> u64 {
    let (_, h) = get_json(c, format!("{base}/health")).await;
    h["sequencer"]["tree_size"].as_u64().unwrap()
}
