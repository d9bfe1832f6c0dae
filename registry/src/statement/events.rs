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
use crate::statement::text::Text;

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

/// `hold` and `release`: what a hold covers, a whole name or one version
/// of it. While a hold is in force the registry refuses tag moves,
/// promotions, rollbacks, deploys, transfers and accesses of what it covers
/// (423 `held`); a `release` of exactly the same target lifts it. The
/// statement's `context.reason` says why (required, as for every
/// statement).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldTarget {
    /// Model name.
    pub name: ModelName,
    /// One version of it; absent: the whole name, every version present
    /// and future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

/// `deploy`: `name@version` (whose blob has `digest`) was deployed to
/// `target`, an environment or serving target such as `prod-eu/chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Model name.
    pub name: ModelName,
    /// Version deployed; must be published with `digest`.
    pub version: Version,
    /// Digest deployed.
    pub digest: Digest,
    /// Where it was deployed.
    pub target: Text,
}

/// `transfer`: the artifact of `name@version` (digest `digest`) was copied
/// to `destination`, another registry or environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Model name.
    pub name: ModelName,
    /// Version copied; must be published with `digest`.
    pub version: Version,
    /// Digest copied.
    pub digest: Digest,
    /// Where it was copied to.
    pub destination: Text,
}

/// `break_glass`: an admin over the name performs one action the rules
/// would otherwise refuse, on the record: a `promote` to production or a
/// `rollback` without the two-person approval, or a `tag` move of a
/// protected tag to a version without a required status. Exactly one
/// action, written as it would be on its own:
/// `{"break_glass": {"promote": {...}}}`. Only that one rule is bypassed:
/// key, signature, role (admin), version existence, lifecycle transitions,
/// the tag's compare-and-swap and holds all still apply, and a break-glass
/// whose action the rules would allow anyway is refused (422
/// `break_glass_unneeded`), so every logged one marks a real bypass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakGlass {
    /// Promote without the two-person approval.
    Promote(Promote),
    /// Roll back without a fresh two-person approval.
    Rollback(Rollback),
    /// Move a protected tag to a non-qualifying version.
    Tag(TagMove),
}

impl BreakGlass {
    /// The model name the wrapped action is about.
    pub fn name(&self) -> &ModelName {
        match self {
            BreakGlass::Promote(e) => &e.name,
            BreakGlass::Rollback(e) => &e.name,
            BreakGlass::Tag(e) => &e.name,
        }
    }

    /// The wrapped action's name as written in JSON.
    pub fn action(&self) -> &'static str {
        match self {
            BreakGlass::Promote(_) => "promote",
            BreakGlass::Rollback(_) => "rollback",
            BreakGlass::Tag(_) => "tag",
        }
    }
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
    /// Put a hold on a name or version; see [`HoldTarget`].
    Hold(HoldTarget),
    /// Lift a hold; see [`HoldTarget`].
    Release(HoldTarget),
    /// See [`Deploy`].
    Deploy(Deploy),
    /// See [`Transfer`].
    Transfer(Transfer),
    /// See [`BreakGlass`].
    BreakGlass(BreakGlass),
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
            Event::Hold(_) => "hold",
            Event::Release(_) => "release",
            Event::Deploy(_) => "deploy",
            Event::Transfer(_) => "transfer",
            Event::BreakGlass(_) => "break_glass",
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
            Event::Hold(e) | Event::Release(e) => Some(&e.name),
            Event::Deploy(e) => Some(&e.name),
            Event::Transfer(e) => Some(&e.name),
            Event::BreakGlass(e) => Some(e.name()),
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
