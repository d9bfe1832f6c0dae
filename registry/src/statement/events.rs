//! Event bodies: what a statement asks the registry to do.
//!
//! In JSON the event is an object with exactly one key, the action, whose
//! value is the body: `"event": {"publish": {...}}`. Every body refuses
//! unknown and duplicate fields.

use serde::{Deserialize, Serialize};

use crate::actor_key::{ActorKey, KeyId};
use crate::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use crate::registry::lifecycle::Lifecycle;
use crate::registry::roles::Role;
use crate::statement::metadata::{Lineage, Metadata};

/// What kind of artifact a version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Model weights or a packaged model.
    Model,
    /// A dataset.
    Dataset,
    /// Anything else (tokenizer, config, evaluation report...).
    Other,
}

/// `publish`: a new immutable version of a name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// Model name.
    pub name: ModelName,
    /// Version, unique per name.
    pub version: Version,
    /// Artifact kind.
    pub kind: Kind,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: MediaType,
    /// Descriptive metadata (optional, capped).
    #[serde(default)]
    pub metadata: Metadata,
    /// Provenance (optional).
    #[serde(default)]
    pub lineage: Lineage,
}

/// `access`: the actor reads `name@version`, whose blob has this digest.
/// Naming the version (not only the digest) makes the reader role checked
/// on the name the request is about, not on any name that happens to have
/// published the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Model name read.
    pub name: ModelName,
    /// Version read; must be published with `digest`.
    pub version: Version,
    /// Digest being read.
    pub digest: Digest,
}

/// `tag`: move `name:tag` to a published digest of that name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagMove {
    /// Model name.
    pub name: ModelName,
    /// Tag.
    pub tag: TagName,
    /// New target; must be a published version of `name`.
    pub digest: Digest,
    /// Leaf index of the tag's current move, `null` for the first move
    /// (compare-and-swap: anything else is stale, 409).
    pub previous: Option<u64>,
}

/// `promote`: move a version along its lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// Model name.
    pub name: ModelName,
    /// Version.
    pub version: Version,
    /// Target state.
    pub to: Lifecycle,
}

/// `approve`: an approver signs off a version for production.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// Model name.
    pub name: ModelName,
    /// Version.
    pub version: Version,
}

/// `rollback`: return production to a version that was in production
/// before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Model name.
    pub name: ModelName,
    /// Version to bring back.
    pub version: Version,
}

/// `protect`: from now on, `name:tag` may only point at a digest with a
/// version of `name` in one of `statuses` (see
/// [`crate::registry::lifecycle`]). Signed by an admin over `name`. A later
/// `protect` of the same tag replaces the set; a set of every status lifts
/// the constraint while keeping the record of who protected what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protect {
    /// Model name.
    pub name: ModelName,
    /// Tag; never `production` or `staging`, whose rules are built in.
    pub tag: TagName,
    /// The statuses the target may be in: non-empty, in lifecycle order
    /// (`development`, `staging`, `production`, `deprecated`, `archived`),
    /// without duplicates, so one set has one spelling.
    pub statuses: Vec<Lifecycle>,
}

/// `grant`: give `actor` (using `key`) a role on a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    /// Receiving actor.
    pub actor: ActorName,
    /// The actor's key (`<actor>+<hex8>+<base64>`): its current key, or a
    /// never-used one if the actor is new or its key was revoked.
    pub key: ActorKey,
    /// Role.
    pub role: Role,
    /// Where it applies.
    pub pattern: Pattern,
}

/// `revoke`: take a role (exactly as granted) from an actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRole {
    /// Actor losing the role.
    pub actor: ActorName,
    /// Role.
    pub role: Role,
    /// Pattern it was granted on.
    pub pattern: Pattern,
}

/// `revoke_key`: kill an actor's key (compromise). Signed by an admin on
/// `*` or by the key itself. The actor keeps its roles but can do nothing
/// until an admin grants it a new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    /// Actor owning the key.
    pub actor: ActorName,
    /// The key to kill.
    pub key_id: KeyId,
}

/// `rotate`: the actor replaces its key. Signed by the old key, which is
/// dead afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// The new key, written for the same actor, never used before.
    pub new_key: ActorKey,
}

/// The event of a statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// See [`Publish`].
    Publish(Publish),
    /// See [`Access`].
    Access(Access),
    /// See [`TagMove`].
    Tag(TagMove),
    /// See [`Promote`].
    Promote(Promote),
    /// See [`Approve`].
    Approve(Approve),
    /// See [`Rollback`].
    Rollback(Rollback),
    /// See [`Protect`].
    Protect(Protect),
    /// See [`GrantRole`].
    Grant(GrantRole),
    /// See [`RevokeRole`].
    Revoke(RevokeRole),
    /// See [`RevokeKey`].
    RevokeKey(RevokeKey),
    /// See [`Rotate`].
    Rotate(Rotate),
}

impl Event {
    /// The action name as written in JSON.
    pub fn action(&self) -> &'static str {
        match self {
            Event::Publish(_) => "publish",
            Event::Access(_) => "access",
            Event::Tag(_) => "tag",
            Event::Promote(_) => "promote",
            Event::Approve(_) => "approve",
            Event::Rollback(_) => "rollback",
            Event::Protect(_) => "protect",
            Event::Grant(_) => "grant",
            Event::Revoke(_) => "revoke",
            Event::RevokeKey(_) => "revoke_key",
            Event::Rotate(_) => "rotate",
        }
    }

    /// The model name the event is about, if any.
    pub fn name(&self) -> Option<&ModelName> {
        match self {
            Event::Publish(e) => Some(&e.name),
            Event::Access(e) => Some(&e.name),
            Event::Tag(e) => Some(&e.name),
            Event::Promote(e) => Some(&e.name),
            Event::Approve(e) => Some(&e.name),
            Event::Rollback(e) => Some(&e.name),
            Event::Protect(e) => Some(&e.name),
            _ => None,
        }
    }

    /// A key this event introduces (`grant` and `rotate`), so an auditor
    /// can learn keys before batch-verifying the statements they sign.
    pub fn introduced_key(&self) -> Option<&ActorKey> {
        match self {
            Event::Grant(g) => Some(&g.key),
            Event::Rotate(r) => Some(&r.new_key),
            _ => None,
        }
    }
}
