//! Byte programs of registry statements, shared by the property tests
//! (registry/tests/registry_invariants.rs) and the `registry_ops` fuzz target
//! (fuzz/fuzz_targets/registry_ops.rs includes this file by path).
//!
//! An op is 7 bytes, `[actor, action, a, b, c, d, dt]`, so a seed or a
//! counterexample is a readable scenario:
//!
//! | action (mod 11) | statement by `actor` (mod 5) |
//! |---|---|
//! | 0 | grant role `c` on pattern `d` to actor `a`, binding its key generation `b` |
//! | 1 | revoke role `c` on pattern `d` from actor `a` |
//! | 2 | revoke_key: key generation `b` of actor `a` |
//! | 3 | rotate to the signer's key generation `a` |
//! | 4 | publish name `a`, version `b`, digest `c` |
//! | 5 | access name `a`, version `b`, digest `c` |
//! | 6 | tag name `a`, tag `b`, digest `c`; previous: `d` = 255 none, >= 128 the tag's current move, else `d` |
//! | 7 | promote name `a`, version `b` to lifecycle state `c` |
//! | 8 | approve name `a`, version `b` |
//! | 9 | rollback name `a`, version `b` |
//! | 10 | protect name `a`, tag `b`, statuses: the bits of `c % 31 + 1` over [`STATES`] |
//!
//! `dt` advances the clock by `dt & 31` seconds; with `dt & 0x80` the
//! statement is signed with key generation `(dt >> 5) & 3` instead of the
//! actor's current key (dead, foreign or unbound keys).

#![allow(dead_code)]

use std::sync::OnceLock;

use custody_registry::actor_key::ActorSigner;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Applied, Config, Lifecycle, Registry, Rejection, Role, Verdict};
use custody_registry::statement::events::{
    Access, Approve, GrantRole, Kind, Promote, Protect, Publish, RevokeKey, RevokeRole, Rollback, Rotate,
    TagMove,
};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
use custody_registry::timestamp::Timestamp;

pub const ACTORS: [&str; 5] = ["root", "ann", "ben", "cat", "dan"];
pub const GENERATIONS: u8 = 3;
pub const NAMES: [&str; 4] = ["a/m0", "a/m1", "b/m0", "b/m1"];
pub const PATTERNS: [&str; 5] = ["*", "a/*", "a/m0", "b/*", "b/m1"];
pub const VERSIONS: [&str; 3] = ["1", "2", "3"];
pub const TAGS: [&str; 4] = ["latest", "production", "staging", "release"];
pub const DIGESTS: u8 = 4;
pub const ROLES: [Role; 5] = [Role::Reader, Role::Publisher, Role::Maintainer, Role::Approver, Role::Admin];
pub const STATES: [Lifecycle; 5] = [
    Lifecycle::Development,
    Lifecycle::Staging,
    Lifecycle::Production,
    Lifecycle::Deprecated,
    Lifecycle::Archived,
];
/// 2027-01-15T08:00:00Z.
pub const START_MS: u64 = 1_800_000_000_000;

/// One op (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op(pub [u8; 7]);

/// Ops of a byte program (a trailing partial op is ignored).
pub fn decode(bytes: &[u8]) -> Vec<Op> {
    bytes.chunks_exact(7).map(|c| Op(c.try_into().unwrap())).collect()
}

/// Key generation `gen` of actor `i`: fixed, distinct Ed25519 keys.
pub fn signer(i: usize, gen: u8) -> &'static ActorSigner {
    static KEYS: OnceLock<Vec<Vec<ActorSigner>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..ACTORS.len())
            .map(|a| {
                (0..4u8)
                    .map(|g| {
                        ActorSigner::from_seed(
                            &ActorName::new(ACTORS[a]).unwrap(),
                            &[(a as u8) * 16 + g + 1; 32],
                        )
                    })
                    .collect()
            })
            .collect()
    });
    &keys[i % ACTORS.len()][usize::from(gen) % 4]
}

pub fn digest(i: u8) -> Digest {
    Digest(custody_standards::hash::sha256(&[b'd', i % DIGESTS]))
}

/// The size every publish of digest `i` claims.
pub fn size_of(i: u8) -> u64 {
    1000 + u64::from(i % DIGESTS)
}

pub fn name(i: u8) -> ModelName {
    ModelName::new(NAMES[usize::from(i) % NAMES.len()]).unwrap()
}

pub fn version(i: u8) -> Version {
    Version::new(VERSIONS[usize::from(i) % VERSIONS.len()]).unwrap()
}

pub fn tag(i: u8) -> TagName {
    TagName::new(TAGS[usize::from(i) % TAGS.len()]).unwrap()
}

/// A non-empty, canonical status set: the bits of `i % 31 + 1`.
pub fn statuses(i: u8) -> Vec<Lifecycle> {
    let bits = i % 31 + 1;
    STATES.iter().enumerate().filter(|(k, _)| bits & (1 << k) != 0).map(|(_, s)| *s).collect()
}

pub fn pattern(i: u8) -> Pattern {
    Pattern::new(PATTERNS[usize::from(i) % PATTERNS.len()]).unwrap()
}

pub fn role(i: u8) -> Role {
    ROLES[usize::from(i) % ROLES.len()]
}

pub fn actor_name(i: u8) -> ActorName {
    ActorName::new(ACTORS[usize::from(i) % ACTORS.len()]).unwrap()
}

/// What a step did.
#[derive(Debug)]
pub enum Step {
    /// Accepted and applied at `applied.index`.
    Applied { stmt: Box<Statement>, applied: Box<Applied> },
    /// An idempotent publish: nothing appended.
    AlreadyLogged,
    /// Refused; nothing changed.
    Rejected(Rejection),
}

/// A registry driven by ops, as a log would: check, then apply at the next
/// index. Signatures are not made: `check` does not verify them (a server
/// authenticates first), and keys are what the rules are about.
pub struct Driver {
    pub reg: Registry,
    /// The genesis statement, leaf 0.
    pub genesis: Statement,
    pub now_ms: u64,
    pub next_index: u64,
    nonce: u64,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// A registry whose genesis made `root` (generation 0) admin on `*`.
    pub fn new() -> Self {
        let root = signer(0, 0);
        let genesis = Event::Grant(GrantRole {
            actor: root.actor().clone(),
            key: root.public().clone(),
            role: Role::Admin,
            pattern: Pattern::All,
        });
        let mut d = Driver {
            reg: Registry::new(Config::default()),
            genesis: Statement::new(
                root,
                Timestamp::from_unix_secs(START_MS / 1000).unwrap(),
                Nonce([0; 16]),
                Context::reason(Text::new("genesis").unwrap()),
                genesis.clone(),
            ),
            now_ms: START_MS,
            next_index: 0,
            nonce: 0,
        };
        match d.submit(root, genesis) {
            Step::Applied { stmt, .. } => {
                d.genesis = *stmt;
                d
            }
            other => panic!("genesis refused: {other:?}"),
        }
    }

    /// The generation of the key the registry has bound to actor `i`, live
    /// or not; generation 0 for an actor without keys.
    pub fn current_gen(&self, i: usize) -> u8 {
        let current = self.reg.actor(&actor_name(i as u8)).and_then(|a| a.current_key);
        (0..4).find(|&g| Some(signer(i, g).key_id()) == current).unwrap_or(0)
    }

    /// The statement `op` stands for, and who signs it.
    pub fn statement_of(&self, op: Op) -> (&'static ActorSigner, Event) {
        let [who, action, a, b, c, d, dt] = op.0;
        let who = usize::from(who) % ACTORS.len();
        let gen = if dt & 0x80 != 0 { (dt >> 5) & 3 } else { self.current_gen(who) };
        let by = signer(who, gen);
        let event = match action % 11 {
            0 => {
                let to = signer(usize::from(a), b % GENERATIONS);
                Event::Grant(GrantRole {
                    actor: to.actor().clone(),
                    key: to.public().clone(),
                    role: role(c),
                    pattern: pattern(d),
                })
            }
            1 => Event::Revoke(RevokeRole { actor: actor_name(a), role: role(c), pattern: pattern(d) }),
            2 => Event::RevokeKey(RevokeKey {
                actor: actor_name(a),
                key_id: signer(usize::from(a), b % GENERATIONS).key_id(),
            }),
            3 => Event::Rotate(Rotate { new_key: signer(who, a % GENERATIONS).public().clone() }),
            4 => Event::Publish(Publish {
                name: name(a),
                version: version(b),
                kind: Kind::Model,
                digest: digest(c),
                size: size_of(c),
                media_type: MediaType::new("application/octet-stream").unwrap(),
                metadata: Metadata::default(),
                lineage: Lineage::default(),
            }),
            5 => Event::Access(Access { name: name(a), version: version(b), digest: digest(c) }),
            6 => {
                let tag = tag(b);
                let previous = match d {
                    255 => None,
                    128.. => self.reg.tag(&name(a), &tag).map(|t| t.current().index),
                    n => Some(u64::from(n)),
                };
                Event::Tag(TagMove { name: name(a), tag, digest: digest(c), previous })
            }
            7 => Event::Promote(Promote {
                name: name(a),
                version: version(b),
                to: STATES[usize::from(c) % STATES.len()],
            }),
            8 => Event::Approve(Approve { name: name(a), version: version(b) }),
            9 => Event::Rollback(Rollback { name: name(a), version: version(b) }),
            _ => Event::Protect(Protect { name: name(a), tag: tag(b), statuses: statuses(c) }),
        };
        (by, event)
    }

    /// Advances the clock and submits `op`.
    pub fn step(&mut self, op: Op) -> Step {
        self.now_ms += u64::from(op.0[6] & 31) * 1000;
        let (by, event) = self.statement_of(op);
        self.submit(by, event)
    }

    /// Submits `event` signed (in name) by `by`, now.
    pub fn submit(&mut self, by: &ActorSigner, event: Event) -> Step {
        self.nonce += 1;
        let mut n = [0u8; 16];
        n[8..].copy_from_slice(&self.nonce.to_be_bytes());
        let time = Timestamp::from_unix_secs(self.now_ms / 1000).unwrap();
        let stmt =
            Statement::new(by, time, Nonce(n), Context::reason(Text::new("property test").unwrap()), event);
        match self.reg.check(&stmt, self.next_index, self.now_ms) {
            Ok(Verdict::Append(acc)) => {
                let applied = self.reg.apply(acc).expect("apply right after check succeeds");
                self.next_index += 1;
                Step::Applied { stmt: Box::new(stmt), applied: Box::new(applied) }
            }
            Ok(Verdict::AlreadyLogged { .. }) => Step::AlreadyLogged,
            Err(r) => Step::Rejected(r),
        }
    }
}
