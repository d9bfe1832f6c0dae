//! State keys: what a loader or auditor can ask the committed state about.
//!
//! ```text
//! kind  key                     fields (canonical encoding, see codec)
//! 0x01  tag                     name, tag
//! 0x02  version                 name, version
//! 0x03  actor key               key id (32 bytes)
//! 0x04  grant                   actor, role, pattern
//! 0x05  tag protection          name, tag
//! 0x06  hold                    name, u8 0 (the whole name) or 1 then
//!                               version
//! 0x10  entries of a name       name
//! 0x11  entries of a digest     digest (32 bytes)
//! 0x12  entries of an actor     actor
//! ```
//!
//! The map is keyed by `SHA-256("custody-state-key/v1\n" || encoding)`, so
//! keys of different kinds can never collide and a proof names its key by
//! hash only.

use custody_standards::hash::Hash;
use custody_standards::sha256_once::sha256_concat;
use serde::{Deserialize, Serialize};

use crate::actor_key::KeyId;
use crate::commitment::codec::{field, CodecError, Reader, Writer};
use crate::names::{ActorName, Digest, ModelName, Pattern, TagName, Version};
use crate::registry::Role;

/// Domain separation prefix of key hashes.
pub const KEY_DOMAIN: &[u8] = b"custody-state-key/v1\n";

/// Largest canonical key encoding (two capped names plus headers); longer
/// input is refused before parsing.
pub const MAX_KEY_SIZE: usize = 1024;

/// A key of the registry state map. In JSON (the API's batch form), one
/// object with one member named after the kind, e.g.
/// `{"tag": {"name": "acme/model", "tag": "production"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StateKey {
    /// A tag's current move.
    Tag {
        /// Model name.
        name: ModelName,
        /// Tag.
        tag: TagName,
    },
    /// A published version.
    Version {
        /// Model name.
        name: ModelName,
        /// Version.
        version: Version,
    },
    /// An actor key ever bound.
    ActorKey {
        /// Key ID.
        key_id: KeyId,
    },
    /// A role held on a pattern (absent once revoked).
    Grant {
        /// Holder.
        actor: ActorName,
        /// Role.
        role: Role,
        /// Pattern.
        pattern: Pattern,
    },
    /// An admin-defined protection of a tag.
    Protection {
        /// Model name.
        name: ModelName,
        /// Tag.
        tag: TagName,
    },
    /// A hold in force on a name (`version` absent) or one version of it
    /// (absent once released).
    Hold {
        /// Model name.
        name: ModelName,
        /// The held version; absent: the whole name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Version>,
    },
    /// Every entry about a name.
    NameEntries {
        /// Model name.
        name: ModelName,
    },
    /// Every publish and access of a digest.
    DigestEntries {
        /// Digest.
        digest: Digest,
    },
    /// Every entry signed by an actor.
    ActorEntries {
        /// Actor.
        actor: ActorName,
    },
}

const TAG: u8 = 0x01;
const VERSION: u8 = 0x02;
const ACTOR_KEY: u8 = 0x03;
const GRANT: u8 = 0x04;
const PROTECTION: u8 = 0x05;
const HOLD: u8 = 0x06;
const NAME_ENTRIES: u8 = 0x10;
const DIGEST_ENTRIES: u8 = 0x11;
const ACTOR_ENTRIES: u8 = 0x12;

fn role_code(r: Role) -> &'static str {
    r.as_str()
}

fn parse_role(s: &str) -> Result<Role, CodecError> {
    [Role::Reader, Role::Publisher, Role::Maintainer, Role::Approver, Role::Admin]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| CodecError::Field { field: "role", reason: format!("unknown role {s:?}") })
}

pub(crate) fn model_name(r: &mut Reader<'_>) -> Result<ModelName, CodecError> {
    field("name", ModelName::new(r.str("name")?))
}

pub(crate) fn actor_name(r: &mut Reader<'_>) -> Result<ActorName, CodecError> {
    field("actor", ActorName::new(r.str("actor")?))
}

impl StateKey {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            StateKey::Tag { name, tag } => {
                let mut w = Writer::kind(TAG);
                w.str(name.as_str()).str(tag.as_str());
                w
            }
            StateKey::Version { name, version } => {
                let mut w = Writer::kind(VERSION);
                w.str(name.as_str()).str(version.as_str());
                w
            }
            StateKey::ActorKey { key_id } => {
                let mut w = Writer::kind(ACTOR_KEY);
                w.hash(&key_id.0);
                w
            }
            StateKey::Grant { actor, role, pattern } => {
                let mut w = Writer::kind(GRANT);
                w.str(actor.as_str()).str(role_code(*role)).str(&pattern.to_string());
                w
            }
            StateKey::Protection { name, tag } => {
                let mut w = Writer::kind(PROTECTION);
                w.str(name.as_str()).str(tag.as_str());
                w
            }
            StateKey::Hold { name, version } => {
                let mut w = Writer::kind(HOLD);
                w.str(name.as_str());
                match version {
                    None => w.u8(0),
                    Some(v) => w.u8(1).str(v.as_str()),
                };
                w
            }
            StateKey::NameEntries { name } => {
                let mut w = Writer::kind(NAME_ENTRIES);
                w.str(name.as_str());
                w
            }
            StateKey::DigestEntries { digest } => {
                let mut w = Writer::kind(DIGEST_ENTRIES);
                w.hash(&digest.0);
                w
            }
            StateKey::ActorEntries { actor } => {
                let mut w = Writer::kind(ACTOR_ENTRIES);
                w.str(actor.as_str());
                w
            }
        };
        w.0
    }

    /// Strict decode of a canonical encoding: every field valid, nothing
    /// after the last one.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_KEY_SIZE {
            return Err(CodecError::TooLong(bytes.len(), MAX_KEY_SIZE));
        }
        let mut r = Reader::new(bytes);
        let key = match r.u8("kind")? {
            TAG => {
                StateKey::Tag { name: model_name(&mut r)?, tag: field("tag", TagName::new(r.str("tag")?))? }
            }
            VERSION => StateKey::Version {
                name: model_name(&mut r)?,
                version: field("version", Version::new(r.str("version")?))?,
            },
            ACTOR_KEY => StateKey::ActorKey { key_id: KeyId(r.hash("key id")?) },
            GRANT => StateKey::Grant {
                actor: actor_name(&mut r)?,
                role: parse_role(r.str("role")?)?,
                pattern: field("pattern", Pattern::new(r.str("pattern")?))?,
            },
            PROTECTION => StateKey::Protection {
                name: model_name(&mut r)?,
                tag: field("tag", TagName::new(r.str("tag")?))?,
            },
            HOLD => {
                let name = model_name(&mut r)?;
                let version = match r.u8("hold scope")? {
                    0 => None,
                    1 => Some(field("version", Version::new(r.str("version")?))?),
                    f => return Err(CodecError::Field { field: "hold scope", reason: format!("flag {f}") }),
                };
                StateKey::Hold { name, version }
            }
            NAME_ENTRIES => StateKey::NameEntries { name: model_name(&mut r)? },
            DIGEST_ENTRIES => StateKey::DigestEntries { digest: Digest(r.hash("digest")?) },
            ACTOR_ENTRIES => StateKey::ActorEntries { actor: actor_name(&mut r)? },
            k => return Err(CodecError::Kind(k)),
        };
        r.end()?;
        Ok(key)
    }

    /// The map key: `SHA-256("custody-state-key/v1\n" || encoding)`.
    pub fn hash(&self) -> Hash {
        sha256_concat(&[KEY_DOMAIN, &self.encode()])
    }

    /// The kind byte (first byte of the encoding).
    pub fn kind(&self) -> u8 {
        match self {
            StateKey::Tag { .. } => TAG,
            StateKey::Version { .. } => VERSION,
            StateKey::ActorKey { .. } => ACTOR_KEY,
            StateKey::Grant { .. } => GRANT,
            StateKey::Protection { .. } => PROTECTION,
            StateKey::Hold { .. } => HOLD,
            StateKey::NameEntries { .. } => NAME_ENTRIES,
            StateKey::DigestEntries { .. } => DIGEST_ENTRIES,
            StateKey::ActorEntries { .. } => ACTOR_ENTRIES,
        }
    }
}
