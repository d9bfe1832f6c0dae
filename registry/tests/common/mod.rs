//! A small driver for registry tests: deterministic actors, a log that
//! sequences accepted statements, and a clock the test moves by hand. Every
//! statement takes the full path a server takes: sign, envelope bytes,
//! parse, authenticate, check, leaf encode, apply.

#![allow(dead_code)]

use std::collections::HashMap;

use custody_registry::actor_key::ActorSigner;
use custody_registry::leaf::Leaf;
use custody_registry::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use custody_registry::registry::{Config, Lifecycle, Outcome, Registry, Rejection, Role, Verdict};
use custody_registry::statement::events::{
    Access, Approve, GrantRole, Kind, Promote, Publish, RevokeKey, RevokeRole, Rollback, Rotate, TagMove,
};
use custody_registry::statement::metadata::{Lineage, Metadata};
use custody_registry::statement::{Context, Event, Nonce, SignedStatement, Statement, Text};
use custody_registry::timestamp::Timestamp;

/// 2026-11-23T07:00:00Z in ms.
pub const T0_MS: u64 = 1_795_417_200_000;

pub fn name(s: &str) -> ModelName {
    ModelName::new(s).unwrap()
}
pub fn ver(s: &str) -> Version {
    Version::new(s).unwrap()
}
pub fn actor(s: &str) -> ActorName {
    ActorName::new(s).unwrap()
}
pub fn pat(s: &str) -> Pattern {
    Pattern::new(s).unwrap()
}
pub fn digest(tag: &str) -> Digest {
    Digest(custody_standards::hash::sha256(tag.as_bytes()))
}

/// A deterministic signer: the seed is SHA-256 of the actor name and a
/// generation number (for rotated keys).
pub fn signer(actor_name: &str, generation: u8) -> ActorSigner {
    let mut input = actor_name.as_bytes().to_vec();
    input.push(generation);
    ActorSigner::from_seed(&actor(actor_name), &custody_standards::hash::sha256(&input).0)
}

pub struct World {
    pub reg: Registry,
    pub signers: HashMap<String, ActorSigner>,
    pub now_ms: u64,
    pub next_index: u64,
    pub nonce_counter: u64,
    /// Encoded leaves, by index (what the log would hold).
    pub leaves: Vec<Vec<u8>>,
}

impl World {
    /// An empty registry (no genesis yet).
    pub fn empty() -> Self {
        World {
            reg: Registry::new(Config::default()),
            signers: HashMap::new(),
            now_ms: T0_MS,
            next_index: 0,
            nonce_counter: 0,
            leaves: Vec::new(),
        }
    }

    /// A registry whose genesis made `root` admin on `*`.
    pub fn new() -> Self {
        let mut w = World::empty();
        let root = w.add_signer("root", 0);
        let out = w.submit("root", grant_event("root", &root, Role::Admin, "*")).unwrap();
        assert!(matches!(out, Outcome::Applied(_)));
        w
    }

    pub fn add_signer(&mut self, name: &str, generation: u8) -> ActorSigner {
        let s = signer(name, generation);
        self.signers.insert(name.to_owned(), s.clone());
        s
    }

    pub fn fresh_nonce(&mut self) -> Nonce {
        self.nonce_counter += 1;
        let mut n = [0u8; 16];
        n[8..].copy_from_slice(&self.nonce_counter.to_be_bytes());
        Nonce(n)
    }

    /// A statement by `who`, timed now, with a fresh nonce.
    pub fn statement(&mut self, who: &str, event: Event) -> Statement {
        let s = self.signers[who].clone();
        let time = Timestamp::from_unix_secs(self.now_ms / 1000).unwrap();
        let nonce = self.fresh_nonce();
        Statement::new(&s, time, nonce, Context::reason(Text::new("test").unwrap()), event)
    }

    /// Signs with the actor's current signer and submits.
    pub fn submit(&mut self, who: &str, event: Event) -> Result<Outcome, Rejection> {
        let stmt = self.statement(who, event);
        self.submit_statement(who, &stmt)
    }

    pub fn submit_statement(&mut self, who: &str, stmt: &Statement) -> Result<Outcome, Rejection> {
        let bytes = stmt.sign(&self.signers[who]).unwrap();
        self.submit_bytes(&bytes)
    }

    /// The server path for envelope bytes.
    pub fn submit_bytes(&mut self, bytes: &[u8]) -> Result<Outcome, Rejection> {
        let signed = SignedStatement::parse(bytes).expect("test envelopes parse");
        self.reg.authenticate(&signed)?;
        let before = format!("{:?}", self.reg.model(&name("acme/m")));
        let verdict = self.reg.check(&signed.statement, self.next_index, self.now_ms);
        assert_eq!(before, format!("{:?}", self.reg.model(&name("acme/m"))), "check must not mutate");
        match verdict? {
            Verdict::Append(acc) => {
                let leaf = Leaf::new(self.now_ms, bytes).unwrap().encode();
                self.leaves.push(leaf);
                self.next_index += 1;
                Ok(Outcome::Applied(Box::new(self.reg.apply(acc).unwrap())))
            }
            Verdict::AlreadyLogged { index } => Ok(Outcome::AlreadyLogged { index }),
        }
    }

    /// Submits and expects acceptance; returns the leaf index.
    pub fn ok(&mut self, who: &str, event: Event) -> u64 {
        match self.submit(who, event) {
            Ok(Outcome::Applied(a)) => a.index,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    /// Submits and expects a rejection; checks nothing was appended.
    pub fn reject(&mut self, who: &str, event: Event) -> Rejection {
        let before = (self.next_index, self.reg.last_index(), self.reg.nonces_remembered());
        let r = self.submit(who, event).expect_err("expected a rejection");
        assert_eq!(before, (self.next_index, self.reg.last_index(), self.reg.nonces_remembered()));
        r
    }

    /// Grants `role` on `pattern` to `who` (creating its signer), signed
    /// by `root`.
    pub fn grant(&mut self, who: &str, role: Role, pattern: &str) -> u64 {
        let s = self.signers.get(who).cloned().unwrap_or_else(|| self.add_signer(who, 0));
        self.ok("root", grant_event(who, &s, role, pattern))
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }
}

pub fn grant_event(who: &str, s: &ActorSigner, role: Role, pattern: &str) -> Event {
    Event::Grant(GrantRole { actor: actor(who), key: s.public().clone(), role, pattern: pat(pattern) })
}

pub fn revoke_event(who: &str, role: Role, pattern: &str) -> Event {
    Event::Revoke(RevokeRole { actor: actor(who), role, pattern: pat(pattern) })
}

pub fn revoke_key_event(who: &str, s: &ActorSigner) -> Event {
    Event::RevokeKey(RevokeKey { actor: actor(who), key_id: s.key_id() })
}

pub fn rotate_event(new: &ActorSigner) -> Event {
    Event::Rotate(Rotate { new_key: new.public().clone() })
}

pub fn publish_event(n: &str, v: &str, d: Digest) -> Event {
    publish_with(n, v, d, Lineage::default())
}

pub fn publish_with(n: &str, v: &str, d: Digest, lineage: Lineage) -> Event {
    Event::Publish(Publish {
        name: name(n),
        version: ver(v),
        kind: Kind::Model,
        digest: d,
        size: 1234,
        media_type: MediaType::new("application/octet-stream").unwrap(),
        metadata: Metadata::default(),
        lineage,
    })
}

pub fn access_event(n: &str, v: &str, d: Digest) -> Event {
    Event::Access(Access { name: name(n), version: ver(v), digest: d })
}

pub fn tag_event(n: &str, t: &str, d: Digest, previous: Option<u64>) -> Event {
    Event::Tag(TagMove { name: name(n), tag: TagName::new(t).unwrap(), digest: d, previous })
}

pub fn promote_event(n: &str, v: &str, to: Lifecycle) -> Event {
    Event::Promote(Promote { name: name(n), version: ver(v), to })
}

pub fn approve_event(n: &str, v: &str) -> Event {
    Event::Approve(Approve { name: name(n), version: ver(v) })
}

pub fn rollback_event(n: &str, v: &str) -> Event {
    Event::Rollback(Rollback { name: name(n), version: ver(v) })
}
