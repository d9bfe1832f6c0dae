//! State values: what the committed state says about a key.
//!
//! ```text
//! kind  value            fields (canonical encoding, see codec)
//! 0x01  tag              digest, move index
//! 0x02  version          publish index, digest, size, publisher, status,
//!                        status index, u32 count then each approval index
//! 0x03  actor key        actor, bound-at index, end (u8 0 live, 1 rotated,
//!                        2 revoked), end index (0 when live)
//! 0x04  grant            grant index
//! 0x05  tag protection   u8 status set (bit n = status n), protect index
//! 0x06  hold             hold index
//! 0x10  entries          count, last index, chain
//! ```
//!
//! Status numbers: 0 development, 1 staging, 2 production, 3 deprecated,
//! 4 archived. The map stores `SHA-256("custody-state-value/v1\n" ||
//! encoding)`; the server sends the encoding itself with each proof.
//!
//! An entries value proves a list complete: `chain` folds every index in
//! log order, `chain' = SHA-256("custody-state-entries/v1\n" || chain ||
//! index)` from 32 zero bytes, so a client given the list recomputes it and
//! any omitted, added or reordered index changes the result.

use custody_standards::hash::Hash;
use custody_standards::sha256_once::sha256_concat;

use crate::commitment::codec::{CodecError, Reader, Writer};
use crate::commitment::key::{actor_name, StateKey};
use crate::names::{ActorName, Digest};
use crate::registry::{KeyEnd, KeyRecord, Lifecycle, VersionRecord};

/// Domain separation prefix of value hashes.
pub const VALUE_DOMAIN: &[u8] = b"custody-state-value/v1\n";
/// Domain separation prefix of the entries chain.
pub const CHAIN_DOMAIN: &[u8] = b"custody-state-entries/v1\n";
/// Largest canonical value accepted (a version with thousands of
/// approvals still fits).
pub const MAX_VALUE_SIZE: usize = 64 * 1024;

/// A tag's current move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagValue {
    /// Target digest.
    pub digest: Digest,
    /// Leaf of the move.
    pub index: u64,
}

/// A version's publish, status and approvals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionValue {
    /// Leaf of the publish.
    pub publish_index: u64,
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Publisher.
    pub publisher: ActorName,
    /// Current status.
    pub status: Lifecycle,
    /// Leaf that set the current status.
    pub status_index: u64,
    /// Leaves of every approval, in log order.
    pub approvals: Vec<u64>,
}

impl VersionValue {
    /// The committed value of a version's registry record: one derivation
    /// for the sequencer's commitments and for checking a saved state.
    pub fn of(v: &VersionRecord) -> Self {
        VersionValue {
            publish_index: v.published_at,
            digest: v.digest,
            size: v.size,
            publisher: v.publisher.clone(),
            status: v.state,
            status_index: v.history.last().map_or(v.published_at, |c| c.index),
            approvals: v.approvals.iter().map(|a| a.index).collect(),
        }
    }
}

/// An actor key's binding and end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// Owner.
    pub actor: ActorName,
    /// Leaf that bound it.
    pub bound_at: u64,
    /// How and where it ended, if it did.
    pub end: Option<KeyEnd>,
}

impl KeyValue {
    /// The committed value of a key's registry record.
    pub fn of(k: &KeyRecord) -> Self {
        KeyValue { actor: k.actor.clone(), bound_at: k.bound_at, end: k.ended }
    }
}

/// An admin-defined protection of a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectionValue {
    /// Statuses the tag's target may be in, ascending.
    pub statuses: Vec<Lifecycle>,
    /// Leaf of the protecting statement.
    pub index: u64,
}

/// A complete list of entry indexes, as a count and a hash chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntriesValue {
    /// Number of entries.
    pub count: u64,
    /// Last entry (meaningless when `count` is 0).
    pub last: u64,
    /// Chain over every index, see the module docs.
    pub chain: Hash,
}

impl Default for EntriesValue {
    fn default() -> Self {
        EntriesValue { count: 0, last: 0, chain: Hash([0; 32]) }
    }
}

impl EntriesValue {
    /// One step of the chain.
    pub fn step(chain: &Hash, index: u64) -> Hash {
        sha256_concat(&[CHAIN_DOMAIN, &chain.0, &index.to_be_bytes()])
    }

    /// Appends `index`.
    pub fn push(&mut self, index: u64) {
        self.chain = Self::step(&self.chain, index);
        self.count += 1;
        self.last = index;
    }

    /// The value of exactly `indexes`, in the order given.
    pub fn of(indexes: impl IntoIterator<Item = u64>) -> Self {
        let mut v = EntriesValue::default();
        for i in indexes {
            v.push(i);
        }
        v
    }
}

/// A value of the state map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateValue {
    /// See [`TagValue`].
    Tag(TagValue),
    /// See [`VersionValue`].
    Version(VersionValue),
    /// See [`KeyValue`].
    ActorKey(KeyValue),
    /// A grant, by its leaf index.
    Grant(u64),
    /// See [`ProtectionValue`].
    Protection(ProtectionValue),
    /// A hold in force, by the leaf index of its `hold`.
    Hold(u64),
    /// See [`EntriesValue`].
    Entries(EntriesValue),
}

const TAG: u8 = 0x01;
const VERSION: u8 = 0x02;
const ACTOR_KEY: u8 = 0x03;
const GRANT: u8 = 0x04;
const PROTECTION: u8 = 0x05;
const HOLD: u8 = 0x06;
const ENTRIES: u8 = 0x10;

const STATUSES: [Lifecycle; 5] = [
    Lifecycle::Development,
    Lifecycle::Staging,
    Lifecycle::Production,
    Lifecycle::Deprecated,
    Lifecycle::Archived,
];

/// The status number of the encoding.
pub fn status_code(s: Lifecycle) -> u8 {
    STATUSES.iter().position(|x| *x == s).expect("every status is listed") as u8
}

fn status(code: u8) -> Result<Lifecycle, CodecError> {
    STATUSES
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| CodecError::Field { field: "status", reason: format!("unknown status {code}") })
}

impl StateValue {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            StateValue::Tag(t) => {
                let mut w = Writer::kind(TAG);
                w.hash(&t.digest.0).u64(t.index);
                w
            }
            StateValue::Version(v) => {
                let mut w = Writer::kind(VERSION);
                w.u64(v.publish_index)
                    .hash(&v.digest.0)
                    .u64(v.size)
                    .str(v.publisher.as_str())
                    .u8(status_code(v.status))
                    .u64(v.status_index);
                let n = u32::try_from(v.approvals.len()).unwrap_or(u32::MAX);
                w.0.extend_from_slice(&n.to_be_bytes());
                for a in v.approvals.iter().take(n as usize) {
                    w.u64(*a);
                }
                w
            }
            StateValue::ActorKey(k) => {
                let mut w = Writer::kind(ACTOR_KEY);
                let (code, at) = match k.end {
                    None => (0, 0),
                    Some(KeyEnd::Rotated(i)) => (1, i),
                    Some(KeyEnd::Revoked(i)) => (2, i),
                };
                w.str(k.actor.as_str()).u64(k.bound_at).u8(code).u64(at);
                w
            }
            StateValue::Grant(index) => {
                let mut w = Writer::kind(GRANT);
                w.u64(*index);
                w
            }
            StateValue::Protection(p) => {
                let mut w = Writer::kind(PROTECTION);
                let set = p.statuses.iter().fold(0u8, |acc, s| acc | 1 << status_code(*s));
                w.u8(set).u64(p.index);
                w
            }
            StateValue::Hold(index) => {
                let mut w = Writer::kind(HOLD);
                w.u64(*index);
                w
            }
            StateValue::Entries(e) => {
                let mut w = Writer::kind(ENTRIES);
                w.u64(e.count).u64(e.last).hash(&e.chain);
                w
            }
        };
        w.0
    }

    /// Strict decode of a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_VALUE_SIZE {
            return Err(CodecError::TooLong(bytes.len(), MAX_VALUE_SIZE));
        }
        let mut r = Reader::new(bytes);
        let value = match r.u8("kind")? {
            TAG => StateValue::Tag(TagValue { digest: Digest(r.hash("digest")?), index: r.u64("index")? }),
            VERSION => {
                let publish_index = r.u64("publish index")?;
                let digest = Digest(r.hash("digest")?);
                let size = r.u64("size")?;
                let publisher = actor_name(&mut r)?;
                let status = status(r.u8("status")?)?;
                let status_index = r.u64("status index")?;
                let n = u32::from_be_bytes([r.u8("count")?, r.u8("count")?, r.u8("count")?, r.u8("count")?]);
                // Each approval is 8 bytes: a count the input cannot hold is
                // refused before allocating for it.
                let mut approvals = Vec::with_capacity((n as usize).min(bytes.len() / 8));
                for _ in 0..n {
                    approvals.push(r.u64("approval")?);
                }
                StateValue::Version(VersionValue {
                    publish_index,
                    digest,
                    size,
                    publisher,
                    status,
                    status_index,
                    approvals,
                })
            }
            ACTOR_KEY => {
                let actor = actor_name(&mut r)?;
                let bound_at = r.u64("bound at")?;
                let code = r.u8("end")?;
                let at = r.u64("end index")?;
                let end = match (code, at) {
                    (0, 0) => None,
                    (1, i) => Some(KeyEnd::Rotated(i)),
                    (2, i) => Some(KeyEnd::Revoked(i)),
                    _ => {
                        return Err(CodecError::Field { field: "end", reason: format!("end {code} at {at}") })
                    }
                };
                StateValue::ActorKey(KeyValue { actor, bound_at, end })
            }
            GRANT => StateValue::Grant(r.u64("index")?),
            PROTECTION => {
                let set = r.u8("statuses")?;
                if set == 0 || set >> STATUSES.len() != 0 {
                    return Err(CodecError::Field { field: "statuses", reason: format!("set 0x{set:02x}") });
                }
                let statuses =
                    STATUSES.iter().copied().filter(|s| set & (1 << status_code(*s)) != 0).collect();
                StateValue::Protection(ProtectionValue { statuses, index: r.u64("index")? })
            }
            HOLD => StateValue::Hold(r.u64("index")?),
            ENTRIES => StateValue::Entries(EntriesValue {
                count: r.u64("count")?,
                last: r.u64("last")?,
                chain: r.hash("chain")?,
            }),
            k => return Err(CodecError::Kind(k)),
        };
        r.end()?;
        Ok(value)
    }

    /// The map value: `SHA-256("custody-state-value/v1\n" || encoding)`.
    pub fn hash(&self) -> Hash {
        value_hash(&self.encode())
    }

    /// Whether this value has the format of `key`'s kind.
    pub fn fits(&self, key: &StateKey) -> bool {
        matches!(
            (self, key),
            (StateValue::Tag(_), StateKey::Tag { .. })
                | (StateValue::Version(_), StateKey::Version { .. })
                | (StateValue::ActorKey(_), StateKey::ActorKey { .. })
                | (StateValue::Grant(_), StateKey::Grant { .. })
                | (StateValue::Protection(_), StateKey::Protection { .. })
                | (StateValue::Hold(_), StateKey::Hold { .. })
                | (
                    StateValue::Entries(_),
                    StateKey::NameEntries { .. }
                        | StateKey::DigestEntries { .. }
                        | StateKey::ActorEntries { .. }
                )
        )
    }
}

/// The map value of an encoded value.
pub fn value_hash(encoding: &[u8]) -> Hash {
    sha256_concat(&[VALUE_DOMAIN, encoding])
}
