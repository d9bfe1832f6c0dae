//! Helpers for the fault and attack scenarios (witness outage, crash
//! recovery, identity attacks): registry statements signed with
//! `custody-standards` exactly as a client would, a blocking HTTP view of the
//! log, and SIGKILL / relaunch of the real processes on their own address
//! (so saved client configurations and the policy stay valid).
//!
//! Included by `#[path = "common/kit.rs"] mod kit;` next to `mod common;`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::Role;
use custody_registry::statement::events::{GrantRole, Kind, Promote, Publish, RevokeKey, TagMove};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;
use custody_standards::checkpoint::Checkpoint;
use custody_standards::encoding::encode_base64;
use custody_standards::{verify_consistency, verify_inclusion, Hash, Policy};
use serde_json::Value;

use crate::common::{bin, spawn, Deployment, Proc, User};

// ---- processes -------------------------------------------------------------

/// `kill -9`: SIGKILL, then reap. The `Proc` keeps its URL.
pub fn kill9(p: &mut Proc) {
    let _ = p.child.kill();
    let _ = p.child.wait();
}

fn addr(url: &str) -> &str {
    url.strip_prefix("http://").expect("http URL")
}

/// Starts the log again on its data directory, policy and address (after
/// [`kill9`]).
pub fn relaunch_log(d: &mut Deployment) {
    let listen = addr(&d.log.url).to_owned();
    d.log = spawn(
        Command::new(bin("custody-log"))
            .args(["serve", "--listen", &listen, "--checkpoint-interval", "200", "--data-dir"])
            .arg(d.dir.join("log"))
            .arg("--policy")
            .arg(&d.policy),
    );
}

/// Starts witness `i` (0-based) again on its data directory and address.
pub fn relaunch_witness(d: &mut Deployment, i: usize) {
    let listen = addr(&d.witnesses[i].url).to_owned();
    d.witnesses[i] = spawn(
        Command::new(bin("custody-witness"))
            .args(["serve", "--listen", &listen, "--data-dir"])
            .arg(d.dir.join(format!("w{}", i + 1)))
            .arg("--logs")
            .arg(d.dir.join("logs.txt")),
    );
}

// ---- actors and statements ---------------------------------------------------

/// A key derived from the actor's name (reproducible, never on disk).
pub fn signer(name: &str) -> ActorSigner {
    signer_with_seed(name, name)
}

/// A key for actor `name` with `signer(seed_of)`'s Ed25519 key (so the
/// same key ID), written for another actor name.
pub fn signer_with_seed(name: &str, seed_of: &str) -> ActorSigner {
    let seed = custody_standards::hash::sha256(format!("scenario actor {seed_of}").as_bytes()).0;
    ActorSigner::from_seed(&ActorName::new(name).unwrap(), &seed)
}

/// The key a `custody` user's home holds.
pub fn user_signer(u: &User) -> ActorSigner {
    ActorSigner::parse(std::fs::read_to_string(u.home.join("key")).unwrap().trim_end()).unwrap()
}

/// The first admin's key, written by `custody-log init`.
pub fn admin_signer(d: &Deployment) -> ActorSigner {
    ActorSigner::parse(std::fs::read_to_string(d.dir.join("log/admin.key")).unwrap().trim_end()).unwrap()
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// A nonce unique within this test process (and across test processes).
pub fn nonce() -> Nonce {
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&NONCE.fetch_add(1, Ordering::SeqCst).to_be_bytes());
    n[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    n[12..].copy_from_slice(
        &(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()).to_be_bytes(),
    );
    Nonce(n)
}

/// An unsigned statement by `who` at `secs`.
pub fn statement_at(who: &ActorSigner, secs: u64, event: Event) -> Statement {
    let time = Timestamp::from_unix_secs(secs).unwrap();
    Statement::new(who, time, nonce(), Context::reason(Text::new("scenario test").unwrap()), event)
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

/// A publish of `name@version` for `size` bytes with `digest`.
pub fn publish(name: &str, version: &str, digest: Digest, size: u64) -> Event {
    Event::Publish(Publish {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        kind: Kind::Model,
        digest,
        size,
        media_type: MediaType::new("application/octet-stream").unwrap(),
        metadata: Metadata::default(),
        lineage: Lineage::default(),
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

pub fn promote(name: &str, version: &str, to: custody_registry::registry::Lifecycle) -> Event {
    Event::Promote(Promote {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        to,
    })
}

pub fn revoke_key(of: &ActorSigner) -> Event {
    Event::RevokeKey(RevokeKey { actor: of.actor().clone(), key_id: of.key_id() })
}

// ---- HTTP ------------------------------------------------------------------

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Status and JSON body (`Null` if the body is not JSON).
pub fn json(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().unwrap_or_default()).unwrap_or(Value::Null))
}

pub fn get_json(c: &reqwest::blocking::Client, url: &str) -> (u16, Value) {
    json(c.get(url).send().unwrap())
}

/// `POST /statements`.
pub fn post_statement(c: &reqwest::blocking::Client, base: &str, envelope: Vec<u8>) -> (u16, Value) {
    json(c.post(format!("{base}/statements")).body(envelope).send().unwrap())
}

/// `PUT /blobs/<digest>` with the publish statement in `Custody-Statement`.
pub fn upload(c: &reqwest::blocking::Client, base: &str, bytes: &[u8], envelope: &[u8]) -> (u16, Value) {
    let r = c
        .put(format!("{base}/blobs/{}", digest_of(bytes)))
        .header("Custody-Statement", encode_base64(envelope))
        .body(bytes.to_vec())
        .send()
        .unwrap();
    json(r)
}

/// The durable tree size, from `/health` (which answers 503 when degraded).
pub fn tree_size(c: &reqwest::blocking::Client, base: &str) -> u64 {
    let (_, h) = get_json(c, &format!("{base}/health"));
    h["sequencer"]["tree_size"].as_u64().unwrap_or_else(|| panic!("no tree size in /health: {h}"))
}

pub fn get_bytes(c: &reqwest::blocking::Client, url: &str) -> Option<Vec<u8>> {
    let r = c.get(url).send().ok()?;
    r.status().is_success().then(|| r.bytes().ok().map(|b| b.to_vec()))?
}

/// The published checkpoint, verified against the deployment's policy:
/// (checkpoint, cosigner names, note).
pub fn published(
    c: &reqwest::blocking::Client,
    d: &Deployment,
) -> Option<(Checkpoint, Vec<String>, Vec<u8>)> {
    let note = get_bytes(c, &format!("{}/checkpoint", d.log.url))?;
    let v = policy(d).verify_checkpoint(&note).expect("a published checkpoint satisfies the policy");
    Some((v.checkpoint, v.cosigners.into_iter().map(|(n, _)| n).collect(), note))
}

pub fn policy(d: &Deployment) -> Policy {
    Policy::parse(&std::fs::read(&d.policy).unwrap()).unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .expect("proof array")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect()
}

/// Verifies (core) the log's consistency proof between two checkpoints.
pub fn check_consistent(c: &reqwest::blocking::Client, base: &str, old: &Checkpoint, new: &Checkpoint) {
    if old.size == new.size {
        assert_eq!(old.root, new.root, "two checkpoints of size {} with different roots", old.size);
        return;
    }
    let (status, p) = get_json(c, &format!("{base}/proof/consistency?old={}&new={}", old.size, new.size));
    assert_eq!(status, 200, "{p}");
    verify_consistency(old.size, new.size, &hashes(&p["proof"]), &old.root, &new.root).unwrap_or_else(|e| {
        panic!("checkpoint {} is not consistent with earlier {}: {e}", new.size, old.size)
    });
}

/// Fetches entry `index` and verifies (core) its inclusion under `cp`;
/// returns the entry bytes.
pub fn proven_entry(c: &reqwest::blocking::Client, base: &str, index: u64, cp: &Checkpoint) -> Vec<u8> {
    let entry =
        get_bytes(c, &format!("{base}/entries/{index}")).unwrap_or_else(|| panic!("entry {index} is gone"));
    let (status, p) = get_json(c, &format!("{base}/proof/inclusion?index={index}&size={}", cp.size));
    assert_eq!(status, 200, "{p}");
    verify_inclusion(&custody_standards::leaf_hash(&entry), index, cp.size, &hashes(&p["proof"]), &cp.root)
        .unwrap_or_else(|e| panic!("entry {index} is not included in checkpoint {}: {e}", cp.size));
    entry
}

/// The envelope inside a log entry.
pub fn envelope_of(entry: &[u8]) -> Vec<u8> {
    custody_registry::leaf::Leaf::decode(entry).unwrap().envelope.to_vec()
}

/// The entry index in `custody`'s `logged ... at entry N` line.
pub fn logged_index(stdout: &str) -> u64 {
    let line =
        stdout.lines().find(|l| l.starts_with("logged ")).unwrap_or_else(|| panic!("no receipt: {stdout}"));
    let n = line.split(" at entry ").nth(1).unwrap_or_else(|| panic!("{line}"));
    n.split(' ').next().unwrap().parse().unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}
