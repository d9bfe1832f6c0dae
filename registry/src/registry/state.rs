//! What the registry remembers: actors and their keys and grants, names
//! with their versions and tags, and the digest index. Every record
//! carries the leaf indexes that prove it, so a server can answer a query
//! with indexes a client turns into inclusion proofs.
//!
//! Every record (de)serializes with serde: a server persists the ones a
//! batch changed ([`crate::registry::snapshot`]) so that it can start
//! without replaying the log.
//!
//! Access statements change none of this (only the nonce window), so state
//! grows with publishes, tag moves, promotions and grants, not with reads.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::actor_key::{ActorKey, KeyId};
use crate::names::{ActorName, Digest, MediaType, ModelName, TagName, Version};
use crate::registry::lifecycle::{builtin_requirement, Lifecycle, TagRequirement};
use crate::registry::roles::Grant;
use crate::statement::events::Kind;
use crate::statement::metadata::Lineage;

/// How a key stopped being usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyEnd {
    /// Replaced by `rotate` at this leaf.
    Rotated(u64),
    /// Killed by `revoke_key` at this leaf.
    Revoked(u64),
}

/// A key ever bound to an actor. Keys are never forgotten or re-bound, so a
/// key ID always means the same public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The public key.
    pub key: ActorKey,
    /// Its actor.
    pub actor: ActorName,
    /// Leaf of the `grant` (or genesis, or `rotate`) that bound it.
    pub bound_at: u64,
    /// When it died, if it did.
    pub ended: Option<KeyEnd>,
}

/// An actor: its current key, its key history and its grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Name.
    pub name: ActorName,
    /// The live key, if any (none after `revoke_key` until a new grant).
    pub current_key: Option<KeyId>,
    /// Every key the actor has had, oldest first (see [`KeyRecord`]).
    pub keys: Vec<KeyId>,
    /// Roles held now, each with its grant leaf.
    pub grants: Vec<Grant>,
}

/// One lifecycle step of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// New state.
    pub state: Lifecycle,
    /// Leaf that caused it (publish, promote, rollback, or the promote or
    /// rollback of another version that demoted this one).
    pub index: u64,
}

/// One approval of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Approver.
    pub actor: ActorName,
    /// Leaf of the `approve`.
    pub index: u64,
    /// The key that signed it: if that key is later revoked (stolen), the
    /// approval stops counting.
    pub key_id: KeyId,
}

/// A published version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Kind.
    pub kind: Kind,
    /// Media type.
    pub media_type: MediaType,
    /// Publisher.
    pub publisher: ActorName,
    /// Leaf of the `publish` (metadata is in that leaf; the registry does
    /// not keep it).
    pub published_at: u64,
    /// Current state.
    pub state: Lifecycle,
    /// Every state change, first is `development` at `published_at`.
    pub history: Vec<StatusChange>,
    /// Whether it was ever in production (rollback targets must be).
    pub ever_production: bool,
    /// Approvals, in log order.
    pub approvals: Vec<Approval>,
    /// Lineage as published.
    pub lineage: Lineage,
}

impl VersionRecord {
    /// Leaf at which the version last left `production`, if it was ever
    /// there and is not now. Approvals before it are spent.
    pub fn left_production_at(&self) -> Option<u64> {
        let last = self.history.iter().rposition(|c| c.state == Lifecycle::Production)?;
        self.history.get(last + 1).map(|c| c.index)
    }

    /// Approvals made since the version last left production (all of
    /// them if it never did): the ones that can still count.
    pub fn fresh_approvals(&self) -> impl Iterator<Item = &Approval> + '_ {
        let since = self.left_production_at();
        self.approvals.iter().filter(move |a| since.map_or(true, |s| a.index > s))
    }
}

/// One move of a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagMoveRecord {
    /// Leaf of the `tag` statement.
    pub index: u64,
    /// Target digest.
    pub digest: Digest,
}

/// A tag and its full history (a chain: each move's `previous` is the
/// index of the move before).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    /// Moves, oldest first; the last is the current target.
    pub moves: Vec<TagMoveRecord>,
}

impl TagRecord {
    /// The current target.
    pub fn current(&self) -> &TagMoveRecord {
        self.moves.last().expect("a tag record is created with its first move")
    }
}

/// A tag protected by a `protect` statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// The statuses the tag's target may be in (canonical: lifecycle
    /// order, no duplicates, not empty).
    pub statuses: Vec<Lifecycle>,
    /// Leaf of the `protect` that set them.
    pub index: u64,
}

/// A hold in force on a name or one of its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// The held version; `None`: the whole name.
    pub version: Option<Version>,
    /// Leaf of the `hold`.
    pub index: u64,
}

/// A model name. Created by its first publish, or by a `protect` or a
/// `hold` (an admin may protect a tag, an approver hold a name, before
/// anything is published).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Versions by version string.
    pub versions: BTreeMap<Version, VersionRecord>,
    /// Tags by tag name.
    pub tags: BTreeMap<TagName, TagRecord>,
    /// The one version in production, if any.
    pub production: Option<Version>,
    /// Tags protected by `protect` statements (the built-in ones are not
    /// recorded here).
    #[serde(default)]
    pub(crate) protections: BTreeMap<TagName, Protection>,
    /// Holds in force, in the order they were put (at most one for the
    /// name and one per version). Absent from records without holds, so
    /// their encoding is what it was before holds existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) holds: Vec<HoldRecord>,
}

impl ModelRecord {
    /// Tags protected by `protect` statements, with the leaf of the
    /// statement that set each set of statuses.
    pub fn protections(&self) -> &BTreeMap<TagName, Protection> {
        &self.protections
    }

    /// What `tag` requires of its target: the built-in rule, else the
    /// protection a `protect` set, else `None` (an ordinary tag).
    pub fn tag_requirement(&self, tag: &TagName) -> Option<TagRequirement<'_>> {
        tag_requirement(Some(self), tag)
    }

    /// Whether some version with `digest` is in a status `req` allows.
    pub fn qualifies(&self, req: &TagRequirement<'_>, digest: &Digest) -> bool {
        self.versions_with(digest).any(|(_, v)| req.allows(v.state))
    }

    /// Holds in force on the name and its versions.
    pub fn holds(&self) -> &[HoldRecord] {
        &self.holds
    }

    /// The hold in force on exactly this target (`None`: the name's own).
    pub fn hold_on(&self, version: Option<&Version>) -> Option<&HoldRecord> {
        self.holds.iter().find(|h| h.version.as_ref() == version)
    }

    /// The hold that covers `version`: the name's, else the version's own.
    pub fn hold_covering(&self, version: &Version) -> Option<&HoldRecord> {
        self.hold_on(None).or_else(|| self.hold_on(Some(version)))
    }

    /// Versions of this name whose digest is `digest`.
    pub fn versions_with(&self, digest: &Digest) -> impl Iterator<Item = (&Version, &VersionRecord)> + '_ {
        let d = *digest;
        self.versions.iter().filter(move |(_, v)| v.digest == d)
    }
}

/// What `tag` of a name whose record is `model` requires of its target
/// (built-in rule first, then an explicit protection); one definition for
/// tag moves, resolve and the auditor.
pub fn tag_requirement<'a>(model: Option<&'a ModelRecord>, tag: &TagName) -> Option<TagRequirement<'a>> {
    if let Some(statuses) = builtin_requirement(tag.as_str()) {
        return Some(TagRequirement { statuses, protected_at: None });
    }
    model
        .and_then(|m| m.protections.get(tag))
        .map(|p| TagRequirement { statuses: &p.statuses, protected_at: Some(p.index) })
}

/// Everything the registry holds.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub(crate) keys: HashMap<KeyId, KeyRecord>,
    pub(crate) actors: HashMap<ActorName, ActorRecord>,
    pub(crate) models: HashMap<ModelName, ModelRecord>,
    /// Digest to the `(name, version)` pairs that published it.
    pub(crate) digests: HashMap<Digest, Vec<(ModelName, Version)>>,
}

impl State {
    /// Actors with a live key holding admin on `*`.
    pub(crate) fn live_root_admins(&self) -> impl Iterator<Item = &ActorRecord> {
        self.actors.values().filter(|a| {
            a.current_key.is_some()
                && a.grants.iter().any(|g| {
                    g.role == crate::registry::roles::Role::Admin && g.pattern == crate::names::Pattern::All
                })
        })
    }
}
