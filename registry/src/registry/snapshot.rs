//! The registry's state as records, for a server that persists it next to
//! the log so it can start without replaying every leaf.
//!
//! The state splits into one [`Record`] per object: an actor, a key, a
//! model name (its versions and tags), a digest (the names that published
//! it). A statement changes a handful of them
//! ([`Registry::records_touched_by`]), so a server rewrites only those per
//! batch. The replay window is persisted separately as
//! `(fingerprint, expiry)` pairs ([`Registry::nonce_pairs`]), and the
//! scalars as a [`Position`]. [`Registry::restore`] puts the three back
//! together; [`Registry::fingerprint`] is a digest of everything a replay
//! determines, so "the restored registry equals the replay" is one
//! comparison.
//!
//! # Encoding (format [`RECORD_FORMAT`])
//!
//! - record key: one tag byte then the object's identity:
//!   `a ‖ actor name`, `k ‖ key id (32 bytes)`, `m ‖ model name`,
//!   `d ‖ digest (32 bytes)` ([`RecordKey::to_bytes`]);
//! - record value: JSON, `{"type": "actor" | "key" | "model" | "digest",
//!   ...}` with the fields of the state types ([`Record::encode`]);
//! - position: JSON `{"clock_ms", "last_index", "generation"}`.
//!
//! A reader of another format must not guess: it discards the persisted
//! state and replays (the log stays the source of truth).
//!
//! Everything here is pure: the server decides where the bytes live.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::actor_key::KeyId;
use crate::names::{ActorName, Digest, ModelName, Version};
use crate::registry::effect::{Applied, Effect};
use crate::registry::nonces::{NonceId, NonceWindow};
use crate::registry::state::{ActorRecord, KeyRecord, ModelRecord, State};
use crate::registry::{Config, Registry};

/// The version of the record, position and nonce encodings described
/// above; a server stores it with the state and ignores a state of
/// another version.
pub const RECORD_FORMAT: u32 = 1;

/// Which object a [`Record`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    /// An actor.
    Actor(ActorName),
    /// A key ever bound.
    Key(KeyId),
    /// A model name.
    Model(ModelName),
    /// The publishes of a digest.
    Digest(Digest),
}

impl RecordKey {
    /// The key's bytes: a tag byte then the identity (see the module
    /// documentation). Distinct keys have distinct bytes: the tag tells
    /// the kinds apart and each identity is the rest of the bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, id): (u8, &[u8]) = match self {
            RecordKey::Actor(a) => (b'a', a.as_str().as_bytes()),
            RecordKey::Key(k) => (b'k', &k.0 .0),
            RecordKey::Model(m) => (b'm', m.as_str().as_bytes()),
            RecordKey::Digest(d) => (b'd', &d.0 .0),
        };
        let mut out = Vec::with_capacity(1 + id.len());
        out.push(tag);
        out.extend_from_slice(id);
        out
    }
}

/// One object of the registry state, as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// An actor.
    Actor {
        /// The record.
        actor: ActorRecord,
    },
    /// A key ever bound.
    Key {
        /// The record (its id is its key's).
        key: KeyRecord,
    },
    /// A model name.
    Model {
        /// The name.
        name: ModelName,
        /// Its versions, tags and production version.
        model: ModelRecord,
    },
    /// The `(name, version)` pairs that published a digest, in log order.
    Digest {
        /// The digest.
        digest: Digest,
        /// Its publishes.
        publishes: Vec<(ModelName, Version)>,
    },
}

impl Record {
    /// Which object it holds.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Actor { actor } => RecordKey::Actor(actor.name.clone()),
            Record::Key { key } => RecordKey::Key(key.key.id()),
            Record::Model { name, .. } => RecordKey::Model(name.clone()),
            Record::Digest { digest, .. } => RecordKey::Digest(*digest),
        }
    }

    /// The record's bytes (JSON, format [`RECORD_FORMAT`]).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records hold no maps with non-string keys and no floats")
    }

    /// Inverse of [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Record, RestoreError> {
        serde_json::from_slice(bytes).map_err(|e| RestoreError::Decode(e.to_string()))
    }
}

/// The scalars of a registry: with its records and nonces, all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Effective time of the last applied statement, ms.
    pub clock_ms: u64,
    /// Last applied leaf index.
    pub last_index: Option<u64>,
    /// Statements applied (what a check is stamped with).
    pub generation: u64,
}

/// Why persisted records do not make a registry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A record's bytes are not a record of this format.
    #[error("a record does not decode: {0}")]
    Decode(String),
    /// Two records hold the same object.
    #[error("two records for {0:?}")]
    Duplicate(RecordKey),
    /// A record refers to an object no record holds.
    #[error("{0}")]
    Dangling(String),
}

impl Registry {
    /// The records `applied` changed, and nothing else: what a server
    /// rewrites after a batch. Access statements change none.
    pub fn records_touched_by(applied: &Applied) -> Vec<RecordKey> {
        match &applied.effect {
            Effect::Genesis { actor, key } => vec![RecordKey::Actor(actor.clone()), RecordKey::Key(key.id())],
            Effect::Granted { actor, key, bind_key, .. } => {
                let mut v = vec![RecordKey::Actor(actor.clone())];
                if *bind_key {
                    v.push(RecordKey::Key(key.id()));
                }
                v
            }
            Effect::Revoked { actor, .. } => vec![RecordKey::Actor(actor.clone())],
            Effect::KeyRevoked { actor, key_id } => {
                vec![RecordKey::Actor(actor.clone()), RecordKey::Key(*key_id)]
            }
            Effect::Rotated { actor, old, new } => {
                vec![RecordKey::Actor(actor.clone()), RecordKey::Key(*old), RecordKey::Key(new.id())]
            }
            Effect::Published { name, digest, .. } => {
                vec![RecordKey::Model(name.clone()), RecordKey::Digest(*digest)]
            }
            Effect::Accessed { .. } | Effect::Deployed { .. } | Effect::Transferred { .. } => Vec::new(),
            Effect::Tagged { name, .. }
            | Effect::Held { name, .. }
            | Effect::Released { name, .. }
            | Effect::Promoted { name, .. }
            | Effect::Approved { name, .. }
            | Effect::RolledBack { name, .. }
            | Effect::Protected { name, .. } => vec![RecordKey::Model(name.clone())],
        }
    }

    /// The record of one object, `None` if the registry has no such object.
    pub fn export_record(&self, key: &RecordKey) -> Option<Record> {
        let st = &self.state;
        match key {
            RecordKey::Actor(a) => st.actors.get(a).map(|r| Record::Actor { actor: r.clone() }),
            RecordKey::Key(k) => st.keys.get(k).map(|r| Record::Key { key: r.clone() }),
            RecordKey::Model(m) => {
                st.models.get(m).map(|r| Record::Model { name: m.clone(), model: r.clone() })
            }
            RecordKey::Digest(d) => {
                st.digests.get(d).map(|p| Record::Digest { digest: *d, publishes: p.clone() })
            }
        }
    }

    /// Every record, ordered by key bytes.
    pub fn export_records(&self) -> Vec<Record> {
        let st = &self.state;
        let keys = st.actors.keys().cloned().map(RecordKey::Actor);
        let keys = keys.chain(st.keys.keys().copied().map(RecordKey::Key));
        let keys = keys.chain(st.models.keys().cloned().map(RecordKey::Model));
        let keys = keys.chain(st.digests.keys().copied().map(RecordKey::Digest));
        let mut out: Vec<(Vec<u8>, Record)> =
            keys.filter_map(|k| Some((k.to_bytes(), self.export_record(&k)?))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// The replay window's pairs, fingerprint and expiry (ms), sorted.
    pub fn nonce_pairs(&self) -> Vec<(NonceId, u64)> {
        let mut v: Vec<(NonceId, u64)> = self.nonces.pairs().collect();
        v.sort_unstable();
        v
    }

    /// The scalars to persist with the records.
    pub fn position(&self) -> Position {
        Position { clock_ms: self.clock_ms, last_index: self.last_index, generation: self.generation }
    }

    /// A registry from persisted records, nonce pairs and position. The
    /// records must be those of one state (every object once, every
    /// reference resolved); the nonce pairs may repeat a fingerprint (the
    /// latest expiry wins) and may include pairs that expired before
    /// `position.clock_ms`, which are dropped as a live registry would have.
    /// Restoring is fastest with the pairs of one expiry second together.
    pub fn restore(
        config: Config,
        records: impl IntoIterator<Item = Record>,
        nonces: &[(NonceId, u64)],
        position: Position,
    ) -> Result<Registry, RestoreError> {
        let mut st = State::default();
        for record in records {
            let key = record.key();
            let fresh = match record {
                Record::Actor { actor } => st.actors.insert(actor.name.clone(), actor).is_none(),
                Record::Key { key } => st.keys.insert(key.key.id(), key).is_none(),
                Record::Model { name, model } => st.models.insert(name, model).is_none(),
                Record::Digest { digest, publishes } => st.digests.insert(digest, publishes).is_none(),
            };
            if !fresh {
                return Err(RestoreError::Duplicate(key));
            }
        }
        check_references(&st)?;
        let mut window = NonceWindow::default();
        window.restore(nonces);
        window.prune(position.clock_ms);
        Ok(Registry {
            config,
            state: st,
            nonces: window,
            clock_ms: position.clock_ms,
            last_index: position.last_index,
            generation: position.generation,
        })
    }

    /// SHA-256 over everything a replay of the log determines: the
    /// configuration, the position, every record (in key order, as
    /// encoded) and every remembered nonce pair (sorted). Two registries
    /// with equal fingerprints decide every statement alike.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"custody registry state v1\n");
        h.update(self.config.window_ms.to_be_bytes());
        let p = self.position();
        h.update(p.clock_ms.to_be_bytes());
        match p.last_index {
            Some(i) => h.update([&[1u8][..], &i.to_be_bytes()].concat()),
            None => h.update([0u8]),
        }
        h.update(p.generation.to_be_bytes());
        let records = self.export_records();
        h.update((records.len() as u64).to_be_bytes());
        for r in &records {
            for part in [r.key().to_bytes(), r.encode()] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(&part);
            }
        }
        let nonces = self.nonce_pairs();
        h.update((nonces.len() as u64).to_be_bytes());
        for (id, exp) in nonces {
            h.update(id.to_bytes());
            h.update(exp.to_be_bytes());
        }
        h.finalize().into()
    }
}

impl Registry {
    /// The first thing `self` and `other` disagree on, in words (`None`
    /// when their [`Registry::fingerprint`]s are equal): for `fsck`, which
    /// must say which record of a persisted state is not the replay.
    pub fn first_difference(&self, other: &Registry) -> Option<String> {
        if self.config != other.config {
            return Some(format!("configuration {:?} against {:?}", self.config, other.config));
        }
        if self.position() != other.position() {
            return Some(format!("position {:?} against {:?}", self.position(), other.position()));
        }
        let index = |r: &Registry| -> BTreeMap<Vec<u8>, Vec<u8>> {
            r.export_records().iter().map(|rec| (rec.key().to_bytes(), rec.encode())).collect()
        };
        let (mine, theirs) = (index(self), index(other));
        for key in mine.keys().chain(theirs.keys()) {
            if mine.get(key) != theirs.get(key) {
                let what = match (mine.contains_key(key), theirs.contains_key(key)) {
                    (true, true) => "differs",
                    (true, false) => "is only in the first",
                    _ => "is only in the second",
                };
                return Some(format!("record {} {what}", key.escape_ascii()));
            }
        }
        let (a, b) = (self.nonce_pairs(), other.nonce_pairs());
        if a != b {
            let only_a = a.iter().filter(|p| b.binary_search(p).is_err()).count();
            let only_b = b.iter().filter(|p| a.binary_search(p).is_err()).count();
            return Some(format!(
                "replay window: {only_a} nonces only in the first, {only_b} only in the second"
            ));
        }
        None
    }
}

/// Every reference between records resolves: keys to actors, actors to
/// keys, digests to published versions.
fn check_references(st: &State) -> Result<(), RestoreError> {
    let dangling = |m: String| Err(RestoreError::Dangling(m));
    for (id, k) in &st.keys {
        if !st.actors.get(&k.actor).is_some_and(|a| a.keys.contains(id)) {
            return dangling(format!("key {id:?} of {} is not among its actor's keys", k.actor));
        }
    }
    for a in st.actors.values() {
        if let Some(k) = a.keys.iter().chain(&a.current_key).find(|k| !st.keys.contains_key(k)) {
            return dangling(format!("actor {} refers to unknown key {k:?}", a.name));
        }
    }
    for (d, publishes) in &st.digests {
        for (name, version) in publishes {
            if !st.models.get(name).and_then(|m| m.versions.get(version)).is_some_and(|v| v.digest == *d) {
                return dangling(format!("digest {d} names {name}@{version}, which did not publish it"));
            }
        }
    }
    Ok(())
}
