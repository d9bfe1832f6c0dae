//! Why the registry refused a statement, and the one HTTP status each
//! reason maps to.
//!
//! | category | status | reasons |
//! |---|---|---|
//! | [`Category::Unauthenticated`] | 401 | unknown key, revoked or rotated key, key of another actor, bad signature, timestamp outside the window, replayed nonce |
//! | [`Category::Forbidden`] | 403 | the actor lacks the role on that name or pattern (for a publish of an already published digest: `reader` on a name that published it); a key bound to an existing actor by a signer without admin over all its roles; a protected tag (built in or by `protect`) moved to a version without a required status |
//! | [`Category::Conflict`] | 409 | the state moved or already holds something else: version exists with another digest, stale tag `previous`, grant already held or absent, key already used or dead, approval already given, tag already protected with the same statuses, hold already in force or absent |
//! | [`Category::Locked`] | 423 | a hold covers the name or version: tag moves, promotions, rollbacks, deploys, transfers and accesses of it are refused until a `release` |
//! | [`Category::Unprocessable`] | 422 | the event breaks a registry rule: bad genesis, unknown lineage or digest or version, tag target not a version of the name, illegal lifecycle transition, missing two-person approval, invalid rollback target, removing the last root admin, key not owned by the actor, `protect` of a built-in protected tag, a `break_glass` whose action bypasses no rule |

use crate::actor_key::KeyId;
use crate::names::{ActorName, Digest, ModelName, Pattern, TagName, Version};
use crate::registry::lifecycle::{describe, Lifecycle};
use crate::registry::roles::Role;
use crate::timestamp::Timestamp;

/// The class of a rejection; each maps to exactly one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// 401: who signed is not established.
    Unauthenticated,
    /// 403: the signer may not do this here.
    Forbidden,
    /// 409: conflicts with the current state.
    Conflict,
    /// 422: breaks an event rule.
    Unprocessable,
    /// 423: a hold is in force on what the statement would touch.
    Locked,
}

impl Category {
    /// The HTTP status code.
    pub fn http_status(self) -> u16 {
        match self {
            Category::Unauthenticated => 401,
            Category::Forbidden => 403,
            Category::Conflict => 409,
            Category::Unprocessable => 422,
            Category::Locked => 423,
        }
    }
}

/// A refused statement. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The key ID is not bound to any actor (401).
    #[error("unknown key {0}")]
    UnknownKey(KeyId),
    /// The key was revoked at that leaf (401).
    #[error("key {key_id} was revoked at leaf {index}")]
    KeyRevoked {
        /// The key.
        key_id: KeyId,
        /// Leaf of the `revoke_key`.
        index: u64,
    },
    /// The key was rotated away at that leaf (401).
    #[error("key {key_id} was replaced at leaf {index}")]
    KeyRotated {
        /// The key.
        key_id: KeyId,
        /// Leaf of the `rotate`.
        index: u64,
    },
    /// The key belongs to another actor than the statement names (401).
    #[error("key {key_id} belongs to {owner}, not to the statement's actor")]
    KeyActorMismatch {
        /// The key.
        key_id: KeyId,
        /// Its actor.
        owner: ActorName,
    },
    /// The envelope signature does not verify with the key (401).
    #[error("signature does not verify")]
    BadSignature,
    /// The statement time is too far from the log's receive time (401).
    #[error("statement time {time} is more than {window_ms} ms from the receive time {now_ms} ms")]
    TimestampOutsideWindow {
        /// Statement time.
        time: Timestamp,
        /// Effective receive time, ms.
        now_ms: u64,
        /// Window, ms.
        window_ms: u64,
    },
    /// The actor's key used this nonce within the window (401).
    #[error("replayed nonce")]
    Replay,
    /// The actor lacks the role (403).
    #[error("{actor} does not hold {} on {scope}", role.as_str())]
    Forbidden {
        /// Actor.
        actor: ActorName,
        /// Role needed.
        role: Role,
        /// Name or pattern.
        scope: String,
    },
    /// A grant binds a new key to an actor the registry already knows, and
    /// the signer is not an admin over `pattern`, one of the patterns the
    /// actor holds a role on (403): the new key would inherit that role.
    #[error("{signer} may not bind a new key to {actor}: {actor} holds a role on {pattern}, where {signer} is not admin")]
    RebindForbidden {
        /// Signer of the grant.
        signer: ActorName,
        /// The existing actor.
        actor: ActorName,
        /// A pattern the actor holds a role on that the signer does not
        /// administer.
        pattern: Pattern,
    },
    /// A protected tag (`production`, `staging`, or one a `protect`
    /// statement protects) moved to a digest with no version of the name in
    /// a status the tag requires (403).
    #[error("{name}:{tag} may only point at a version in {}; {digest} is not", describe(required))]
    TagProtected {
        /// Name.
        name: ModelName,
        /// Tag.
        tag: TagName,
        /// Requested target.
        digest: Digest,
        /// The statuses allowed.
        required: Vec<Lifecycle>,
    },
    /// `name@version` exists with another digest or size (409).
    #[error("{name}@{version} already published at leaf {index} with other content")]
    VersionExists {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
        /// Leaf of the original publish.
        index: u64,
    },
    /// Tag compare-and-swap failed (409).
    #[error("stale tag move: previous is {given:?}, the tag's last move is {current:?}")]
    StaleTag {
        /// `previous` in the statement.
        given: Option<u64>,
        /// Leaf of the tag's last move.
        current: Option<u64>,
    },
    /// The actor already holds this exact grant (409).
    #[error("{actor} already holds {} on {pattern} (leaf {index})", role.as_str())]
    AlreadyGranted {
        /// Actor.
        actor: ActorName,
        /// Role.
        role: Role,
        /// Pattern.
        pattern: Pattern,
        /// Leaf of the existing grant.
        index: u64,
    },
    /// No such grant to revoke (409).
    #[error("{actor} does not hold {} on {pattern}", role.as_str())]
    NoSuchGrant {
        /// Actor.
        actor: ActorName,
        /// Role.
        role: Role,
        /// Pattern.
        pattern: Pattern,
    },
    /// The key is already bound to an actor (409).
    #[error("key {0} is already in use")]
    KeyInUse(KeyId),
    /// The actor has a live key and the grant names another (409): use
    /// `rotate`.
    #[error("{actor} has live key {current}; grants must name it (use rotate to change keys)")]
    KeyMismatch {
        /// Actor.
        actor: ActorName,
        /// Its live key.
        current: KeyId,
    },
    /// The key is already dead (409).
    #[error("key {0} is already revoked or rotated")]
    KeyDead(KeyId),
    /// The tag is already protected with exactly these statuses (409).
    #[error("{name}:{tag} is already protected with these statuses (leaf {index})")]
    AlreadyProtected {
        /// Name.
        name: ModelName,
        /// Tag.
        tag: TagName,
        /// Leaf of the `protect` that set them.
        index: u64,
    },
    /// This actor already approved this version (409).
    #[error("already approved by this actor at leaf {0}")]
    AlreadyApproved(u64),
    /// The log's first statement must be the self-signed admin grant on `*`,
    /// and only then (422).
    #[error("invalid genesis: {0}")]
    InvalidGenesis(&'static str),
    /// A non-external lineage digest not published in the log (422).
    #[error("lineage digest {0} is not published in this log (mark it external?)")]
    UnknownLineage(Digest),
    /// An access to a digest no name published (422).
    #[error("digest {0} is not published")]
    UnknownDigest(Digest),
    /// `name@version` does not exist (422).
    #[error("{name}@{version} is not published")]
    UnknownVersion {
        /// Name.
        name: ModelName,
        /// Version.
        version: Version,
    },
    /// The tag target is not a published version of the name (422).
    #[error("{digest} is not a published version of {name}")]
    TagTarget {
        /// Name.
        name: ModelName,
        /// Digest.
        digest: Digest,
    },
    /// Not an allowed lifecycle transition (422).
    #[error("illegal transition {} -> {}", from.as_str(), to.as_str())]
    IllegalTransition {
        /// Current state.
        from: Lifecycle,
        /// Requested state.
        to: Lifecycle,
    },
    /// Production (by promote or rollback) needs an approval that counts
    /// under the two-person rule (422): see [`crate::registry::lifecycle`].
    #[error("production requires an approval by an approver other than the publisher and the signer, with a key not revoked (for a rollback: made after the version left production)")]
    ApprovalRequired,
    /// Rollback target was never in production, or is not deprecated (422).
    #[error("rollback target must be a deprecated version that was in production before")]
    RollbackTarget,
    /// The change would leave no live-keyed admin on `*` (422).
    #[error("refusing to remove the last admin on * with a live key")]
    LastAdmin,
    /// `revoke_key` names a key the actor does not own (422).
    #[error("{actor} does not own key {key_id}")]
    NotKeyOwner {
        /// Actor.
        actor: ActorName,
        /// Key.
        key_id: KeyId,
    },
    /// `protect` names `production` or `staging`, whose built-in rules no
    /// statement may change (422).
    #[error("{0} is protected by a built-in rule that a protect statement cannot change")]
    BuiltinTag(TagName),
    /// The actor named in a revoke is unknown (422).
    #[error("unknown actor {0}")]
    UnknownActor(ActorName),
    /// A `break_glass` whose action the rules allow without it (422): a
    /// bypass is logged only where there is something to bypass.
    #[error("break_glass is only for an action the rules would refuse; this {0} is allowed as it is")]
    BreakGlassUnneeded(&'static str),
    /// A hold covers the name or version (423): see
    /// [`crate::statement::events::HoldTarget`].
    #[error("{} is held (hold at leaf {index}); a release must lift it first", hold_scope(name, version.as_ref()))]
    Held {
        /// Name.
        name: ModelName,
        /// The held version; `None`: the whole name is held.
        version: Option<Version>,
        /// Leaf of the `hold`.
        index: u64,
    },
    /// The same hold is already in force (409).
    #[error("{} is already held (hold at leaf {index})", hold_scope(name, version.as_ref()))]
    AlreadyHeld {
        /// Name.
        name: ModelName,
        /// Version, `None` for the name.
        version: Option<Version>,
        /// Leaf of the `hold` in force.
        index: u64,
    },
    /// A `release` of a hold that is not in force (409).
    #[error("{} is not held", hold_scope(name, version.as_ref()))]
    NotHeld {
        /// Name.
        name: ModelName,
        /// Version, `None` for the name.
        version: Option<Version>,
    },
}

/// `name` or `name@version`, for messages.
fn hold_scope(name: &ModelName, version: Option<&Version>) -> String {
    match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    }
}

impl Rejection {
    /// The category, hence the HTTP status.
    pub fn category(&self) -> Category {
        use Rejection::*;
        match self {
            UnknownKey(_)
            | KeyRevoked { .. }
            | KeyRotated { .. }
            | KeyActorMismatch { .. }
            | BadSignature
            | TimestampOutsideWindow { .. }
            | Replay => Category::Unauthenticated,
            Forbidden { .. } | RebindForbidden { .. } | TagProtected { .. } => Category::Forbidden,
            VersionExists { .. }
            | StaleTag { .. }
            | AlreadyGranted { .. }
            | NoSuchGrant { .. }
            | KeyInUse(_)
            | KeyMismatch { .. }
            | KeyDead(_)
            | AlreadyApproved(_)
            | AlreadyProtected { .. }
            | AlreadyHeld { .. }
            | NotHeld { .. } => Category::Conflict,
            InvalidGenesis(_)
            | UnknownLineage(_)
            | UnknownDigest(_)
            | UnknownVersion { .. }
            | TagTarget { .. }
            | IllegalTransition { .. }
            | ApprovalRequired
            | RollbackTarget
            | LastAdmin
            | NotKeyOwner { .. }
            | UnknownActor(_)
            | BuiltinTag(_)
            | BreakGlassUnneeded(_) => Category::Unprocessable,
            Held { .. } => Category::Locked,
        }
    }

    /// The HTTP status (shorthand for `category().http_status()`).
    pub fn http_status(&self) -> u16 {
        self.category().http_status()
    }

    /// A stable snake_case code for JSON errors and metrics labels.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            UnknownKey(_) => "unknown_key",
            KeyRevoked { .. } => "key_revoked",
            KeyRotated { .. } => "key_rotated",
            KeyActorMismatch { .. } => "key_actor_mismatch",
            BadSignature => "bad_signature",
            TimestampOutsideWindow { .. } => "timestamp_outside_window",
            Replay => "replay",
            Forbidden { .. } => "forbidden",
            RebindForbidden { .. } => "rebind_forbidden",
            TagProtected { .. } => "tag_protected",
            VersionExists { .. } => "version_exists",
            StaleTag { .. } => "stale_tag",
            AlreadyGranted { .. } => "already_granted",
            NoSuchGrant { .. } => "no_such_grant",
            KeyInUse(_) => "key_in_use",
            KeyMismatch { .. } => "key_mismatch",
            KeyDead(_) => "key_dead",
            AlreadyApproved(_) => "already_approved",
            AlreadyProtected { .. } => "already_protected",
            InvalidGenesis(_) => "invalid_genesis",
            UnknownLineage(_) => "unknown_lineage",
            UnknownDigest(_) => "unknown_digest",
            UnknownVersion { .. } => "unknown_version",
            TagTarget { .. } => "tag_target",
            IllegalTransition { .. } => "illegal_transition",
            ApprovalRequired => "approval_required",
            RollbackTarget => "rollback_target",
            LastAdmin => "last_admin",
            NotKeyOwner { .. } => "not_key_owner",
            UnknownActor(_) => "unknown_actor",
            BuiltinTag(_) => "builtin_tag",
            BreakGlassUnneeded(_) => "break_glass_unneeded",
            Held { .. } => "held",
            AlreadyHeld { .. } => "already_held",
            NotHeld { .. } => "not_held",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_standards::hash::Hash;

    /// One of every variant, with the status and code docs/protocol.md
    /// promises. Codes are unique.
    #[test]
    fn status_and_code_table() {
        let k = KeyId(Hash([1; 32]));
        let a = ActorName::new("a").unwrap();
        let n = ModelName::new("o/m").unwrap();
        let v = Version::new("1").unwrap();
        let d = Digest(Hash([2; 32]));
        let t = Timestamp::from_unix_secs(0).unwrap();
        let (n2, v2) = (n.clone(), v.clone());
        let table: Vec<(Rejection, u16, &str)> = vec![
            (Rejection::UnknownKey(k), 401, "unknown_key"),
            (Rejection::KeyRevoked { key_id: k, index: 1 }, 401, "key_revoked"),
            (Rejection::KeyRotated { key_id: k, index: 1 }, 401, "key_rotated"),
            (Rejection::KeyActorMismatch { key_id: k, owner: a.clone() }, 401, "key_actor_mismatch"),
            (Rejection::BadSignature, 401, "bad_signature"),
            (
                Rejection::TimestampOutsideWindow { time: t, now_ms: 0, window_ms: 0 },
                401,
                "timestamp_outside_window",
            ),
            (Rejection::Replay, 401, "replay"),
            (
                Rejection::Forbidden { actor: a.clone(), role: Role::Reader, scope: "x".into() },
                403,
                "forbidden",
            ),
            (
                Rejection::RebindForbidden { signer: a.clone(), actor: a.clone(), pattern: Pattern::All },
                403,
                "rebind_forbidden",
            ),
            (
                Rejection::TagProtected {
                    name: n.clone(),
                    tag: TagName::new("production").unwrap(),
                    digest: d,
                    required: vec![Lifecycle::Production],
                },
                403,
                "tag_protected",
            ),
            (
                Rejection::VersionExists { name: n.clone(), version: v.clone(), index: 0 },
                409,
                "version_exists",
            ),
            (Rejection::StaleTag { given: None, current: Some(1) }, 409, "stale_tag"),
            (
                Rejection::AlreadyGranted {
                    actor: a.clone(),
                    role: Role::Admin,
                    pattern: Pattern::All,
                    index: 0,
                },
                409,
                "already_granted",
            ),
            (
                Rejection::NoSuchGrant { actor: a.clone(), role: Role::Admin, pattern: Pattern::All },
                409,
                "no_such_grant",
            ),
            (Rejection::KeyInUse(k), 409, "key_in_use"),
            (Rejection::KeyMismatch { actor: a.clone(), current: k }, 409, "key_mismatch"),
            (Rejection::KeyDead(k), 409, "key_dead"),
            (Rejection::AlreadyApproved(3), 409, "already_approved"),
            (
                Rejection::AlreadyProtected {
                    name: n.clone(),
                    tag: TagName::new("release").unwrap(),
                    index: 4,
                },
                409,
                "already_protected",
            ),
            (Rejection::InvalidGenesis("x"), 422, "invalid_genesis"),
            (Rejection::UnknownLineage(d), 422, "unknown_lineage"),
            (Rejection::UnknownDigest(d), 422, "unknown_digest"),
            (Rejection::UnknownVersion { name: n.clone(), version: v }, 422, "unknown_version"),
            (Rejection::TagTarget { name: n, digest: d }, 422, "tag_target"),
            (
                Rejection::IllegalTransition { from: Lifecycle::Archived, to: Lifecycle::Production },
                422,
                "illegal_transition",
            ),
            (Rejection::ApprovalRequired, 422, "approval_required"),
            (Rejection::RollbackTarget, 422, "rollback_target"),
            (Rejection::LastAdmin, 422, "last_admin"),
            (Rejection::NotKeyOwner { actor: a.clone(), key_id: k }, 422, "not_key_owner"),
            (Rejection::UnknownActor(a), 422, "unknown_actor"),
            (Rejection::BuiltinTag(TagName::new("staging").unwrap()), 422, "builtin_tag"),
            (Rejection::BreakGlassUnneeded("promote"), 422, "break_glass_unneeded"),
            (Rejection::Held { name: n2.clone(), version: None, index: 5 }, 423, "held"),
            (
                Rejection::AlreadyHeld { name: n2.clone(), version: Some(v2.clone()), index: 5 },
                409,
                "already_held",
            ),
            (Rejection::NotHeld { name: n2, version: Some(v2) }, 409, "not_held"),
        ];
        let mut codes = std::collections::HashSet::new();
        for (r, status, code) in &table {
            assert_eq!((r.http_status(), r.code()), (*status, *code), "{r:?}");
            assert!(codes.insert(*code), "duplicate code {code}");
            assert!(!r.to_string().is_empty());
        }
        let doc = include_str!("../../../docs/protocol.md");
        for (_, _, code) in &table {
            assert!(doc.contains(&format!("`{code}`")), "docs/protocol.md does not list {code}");
        }
    }
}
