//! What an accepted statement changes. An [`Effect`] is computed by
//! `check` without touching the state, then `apply` performs exactly it
//! (a `break_glass` statement has the effect of the action it wraps: the
//! bypass is in what was allowed, not in what changed);
//! the server can also index it in its own store (access history per
//! digest, entries per actor, tag history...).

use crate::actor_key::{ActorKey, KeyId};
use crate::names::{ActorName, Digest, MediaType, ModelName, Pattern, TagName, Version};
use crate::registry::lifecycle::Lifecycle;
use crate::registry::roles::Role;
use crate::statement::events::Kind;
use crate::statement::metadata::Lineage;
use crate::statement::text::Text;

/// The change one statement makes.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// The first statement: `actor` with `key` becomes admin on `*`.
    Genesis {
        /// First admin.
        actor: ActorName,
        /// Its key.
        key: ActorKey,
    },
    /// `actor` gains `role` on `pattern`; if `bind_key`, `key` becomes its
    /// live key (new actor, or actor whose key was revoked).
    Granted {
        /// Receiving actor.
        actor: ActorName,
        /// Its key (already live unless `bind_key`).
        key: ActorKey,
        /// Whether this grant binds the key.
        bind_key: bool,
        /// Role.
        role: Role,
        /// Pattern.
        pattern: Pattern,
    },
    /// `actor` loses `role` on `pattern`.
    Revoked {
        /// Actor.
        actor: ActorName,
        /// Role.
        role: Role,
        /// Pattern.
        pattern: Pattern,
    },
    /// `key_id` of `actor` is dead from now on.
    KeyRevoked {
        /// Actor.
        actor: ActorName,
        /// Key.
        key_id: KeyId,
    },
    /// `actor` replaced `old` by `new`.
    Rotated {
        /// Actor.
        actor: ActorName,
        /// Old key (dead from now on).
        old: KeyId,
        /// New key.
        new: ActorKey,
    },
    /// A new version in `development`.
    Published {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
        /// Digest.
        digest: Digest,
        /// Size.
        size: u64,
        /// Kind.
        kind: Kind,
        /// Media type.
        media_type: MediaType,
        /// Lineage.
        lineage: Lineage,
    },
    /// The actor read `digest`. State is unchanged; the server records the
    /// index in the digest's access history.
    Accessed {
        /// Digest read.
        digest: Digest,
    },
    /// `name:tag` now points at `digest`.
    Tagged {
        /// Name.
        name: ModelName,
        /// Tag.
        tag: TagName,
        /// New target.
        digest: Digest,
        /// Leaf of the previous move (`None` for the first).
        previous: Option<u64>,
    },
    /// `name:tag` now requires a target in `statuses` (replacing the set a
    /// previous `protect` gave it, if any).
    Protected {
        /// Name.
        name: ModelName,
        /// Tag.
        tag: TagName,
        /// The statuses allowed (canonical).
        statuses: Vec<Lifecycle>,
        /// Leaf of the `protect` replaced (`None` for the first).
        previous: Option<u64>,
    },
    /// `name@version` moved `from` -> `to`; `demoted` is the former
    /// production version now `deprecated` (only when `to` is production).
    Promoted {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
        /// Old state.
        from: Lifecycle,
        /// New state.
        to: Lifecycle,
        /// Former production version, now deprecated.
        demoted: Option<Version>,
    },
    /// An approval of `name@version` was recorded.
    Approved {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
    },
    /// `name@version` is back in production; `demoted` is the version that
    /// was, now deprecated.
    RolledBack {
        /// Name.
        name: ModelName,
        /// Version now in production.
        version: Version,
        /// Former production version, now deprecated.
        demoted: Option<Version>,
    },
    /// A hold is now in force on `name` (all of it when `version` is
    /// `None`).
    Held {
        /// Name.
        name: ModelName,
        /// Version, `None` for the whole name.
        version: Option<Version>,
    },
    /// The hold on exactly this target was lifted.
    Released {
        /// Name.
        name: ModelName,
        /// Version, `None` for the whole name.
        version: Option<Version>,
    },
    /// `name@version` was deployed to `target`. State is unchanged.
    Deployed {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
        /// Digest.
        digest: Digest,
        /// Target.
        target: Text,
    },
    /// The artifact of `name@version` was copied to `destination`. State
    /// is unchanged.
    Transferred {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
        /// Digest.
        digest: Digest,
        /// Destination.
        destination: Text,
    },
}

/// An applied statement: who, with which key, at which leaf, and what
/// changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// Leaf index.
    pub index: u64,
    /// Signing actor.
    pub actor: ActorName,
    /// Signing key.
    pub key_id: KeyId,
    /// The change.
    pub effect: Effect,
}
