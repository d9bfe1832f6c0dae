//! Registry statements built and signed with `custody-standards` exactly as the
//! `custody` client builds them, so a test can send what a client would
//! send — or what a client never would (a past time, a foreign key, a
//! replayed nonce) — without going through the CLI.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Lifecycle, Role};
use custody_registry::statement::events::{
    Access, Approve, GrantRole, Kind, Promote, Protect, Publish, RevokeKey, Rollback, TagMove,
};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;

/// A key derived from the actor's name: reproducible, never on disk.
pub fn signer(name: &str) -> ActorSigner {
    signer_with_seed(name, name)
}

/// A key for actor `name` holding `signer(seed_of)`'s Ed25519 key (so the
/// same key ID) under another actor name.
pub fn signer_with_seed(name: &str, seed_of: &str) -> ActorSigner {
    let seed = custody_standards::hash::sha256(format!("test actor {seed_of}").as_bytes()).0;
    ActorSigner::from_seed(&ActorName::new(name).unwrap(), &seed)
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// A nonce unique within this test process and, through the process ID and
/// the clock, across the test processes sharing one log.
pub fn nonce() -> Nonce {
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&NONCE.fetch_add(1, Ordering::SeqCst).to_be_bytes());
    n[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    n[12..].copy_from_slice(
        &(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()).to_be_bytes(),
    );
    Nonce(n)
}

/// An unsigned statement by `who` at `secs` (Unix time).
pub fn statement_at(who: &ActorSigner, secs: u64, event: Event) -> Statement {
    let time = Timestamp::from_unix_secs(secs).unwrap();
    Statement::new(who, time, nonce(), Context::reason(Text::new("test").unwrap()), event)
}

/// DSSE envelope bytes of a statement by `who`, now.
pub fn signed(who: &ActorSigner, event: Event) -> Vec<u8> {
    statement_at(who, now_secs(), event).sign(who).unwrap()
}

/// The SHA-256 digest naming a blob.
pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest(custody_standards::hash::sha256(bytes))
}

/// Grants `role` on `pattern` to `to`'s actor and key.
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
    publish_with(name, version, digest, size, Lineage::default())
}

/// A publish of a model directory: `manifest` (its canonical bytes) as
/// `name@version`, with the manifest media type.
pub fn publish_directory(name: &str, version: &str, manifest: &[u8]) -> Event {
    let mut e = publish(name, version, digest_of(manifest), manifest.len() as u64);
    if let Event::Publish(p) = &mut e {
        p.media_type = MediaType::new(custody_registry::manifest::MEDIA_TYPE).expect("a valid media type");
    }
    e
}

/// A publish of `bytes` as `name@version` with `lineage`.
pub fn publish_bytes(name: &str, version: &str, bytes: &[u8], lineage: Lineage) -> Event {
    publish_with(name, version, digest_of(bytes), bytes.len() as u64, lineage)
}

fn publish_with(name: &str, version: &str, digest: Digest, size: u64, lineage: Lineage) -> Event {
    Event::Publish(Publish {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        kind: Kind::Model,
        digest,
        size,
        media_type: MediaType::new("application/octet-stream").unwrap(),
        metadata: Metadata::default(),
        lineage,
    })
}

/// Moves `name:tag` to `digest`; `previous` is the entry it moved from.
pub fn tag(name: &str, tag: &str, digest: Digest, previous: Option<u64>) -> Event {
    Event::Tag(TagMove {
        name: ModelName::new(name).unwrap(),
        tag: TagName::new(tag).unwrap(),
        digest,
        previous,
    })
}

/// Protects `name:tag`: its target must have a version in `statuses`.
pub fn protect(name: &str, tag: &str, statuses: &[Lifecycle]) -> Event {
    Event::Protect(Protect {
        name: ModelName::new(name).unwrap(),
        tag: TagName::new(tag).unwrap(),
        statuses: statuses.to_vec(),
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

/// An `access` of `name@version`, whose blob is `digest`.
pub fn access(name: &str, version: &str, digest: Digest) -> Event {
    Event::Access(Access {
        name: ModelName::new(name).unwrap(),
        version: Version::new(version).unwrap(),
        digest,
    })
}

pub fn revoke_key(of: &ActorSigner) -> Event {
    Event::RevokeKey(RevokeKey { actor: of.actor().clone(), key_id: of.key_id() })
}

/// Deterministic artifact bytes that do not compress (xorshift from
/// `seed`), so a size cap or a streaming bound is tested on real volume.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The leaf bytes of `event` signed by `who`, received now: what a registry
/// would append for it, for tests that feed a generic log raw leaves.
pub fn leaf_now(who: &ActorSigner, event: Event) -> Vec<u8> {
    custody_registry::leaf::Leaf::new(now_secs() * 1000, &signed(who, event)).unwrap().encode()
}

/// The commitment leaf a registry would append after `leaves` (the whole
/// log so far): the root of the state their replay builds, at index
/// `leaves.len()`. Panics if the replay refuses a leaf.
pub fn commitment_after(leaves: &[Vec<u8>]) -> Vec<u8> {
    let mut a = custody_registry::registry::Auditor::new(Default::default());
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    a.feed(&refs).unwrap();
    let mut state = a.state().clone();
    custody_registry::leaf::CommitmentLeaf { index: leaves.len() as u64, root: state.seal().root }.encode()
}
