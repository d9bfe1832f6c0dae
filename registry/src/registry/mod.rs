//! The registry state machine: decides whether a signed statement is
//! authorized and what it changes, with one definition for the log server
//! (before sequencing) and the auditor (replaying the log).
//!
//! # Flow
//!
//! ```text
//! bytes --SignedStatement::parse--> SignedStatement        (400 / 413)
//!       --Registry::authenticate--> key known, live, signature valid   (401)
//!       --Registry::check(stmt, index, receive_ms)--> Verdict          (401/403/409/422)
//!            Verdict::Append(accepted)  -> sequence the leaf at `index`, then
//!       --Registry::apply(accepted)--> Applied { index, actor, key_id, effect }
//!            Verdict::AlreadyLogged { index } -> append nothing, answer with `index`
//! ```
//!
//! `check` never mutates: a rejected statement leaves no trace. `apply`
//! performs exactly the [`Effect`] that `check` computed, and refuses an
//! `Accepted` computed against an older state ([`ApplyError::Stale`]), so a
//! server must check and apply one statement at a time, in index order.
//!
//! # Signatures are the caller's job
//!
//! `check` does **not** verify the envelope signature, so an auditor can
//! verify a million signatures in batches ([`crate::dsse::verify_batch`])
//! and then replay the state machine. Keys never change meaning (a key ID
//! is bound once, forever), so [`Registry::key`] and
//! [`crate::statement::Event::introduced_key`] give every key an auditor
//! needs. The server calls [`Registry::authenticate`] (lookup plus one
//! verification) right before `check`; [`Auditor`] does the batched
//! verification and replay for a verifier.
//!
//! # Determinism
//!
//! No clock: time is the leaf's receive time, passed in. The effective time
//! is `max(receive time, latest effective time applied)`, so a server clock
//! stepping back cannot reopen the replay window, and an auditor replaying
//! the leaves reaches the same verdict as the server did (with the same
//! [`Config`]).
//!
//! # Order of checks
//!
//! 1. key known (or a valid genesis), live, owned by the statement's actor
//!    (401);
//! 2. statement time within `window_ms` of the effective time (401);
//! 3. role held (403); a `publish` of an already published digest also
//!    needs `reader` on a name that published it, and a `grant` binding a
//!    key to a known actor needs admin over every pattern it holds a role on;
//! 4. `publish` of an existing `name@version` with the same digest and size:
//!    [`Verdict::AlreadyLogged`] with the original index (idempotent, even
//!    for a byte-identical resubmission whose nonce was already used);
//! 5. nonce not used by this key within the window (401 replay);
//! 6. event rules (409 / 422).

mod apply;
pub mod audit;
mod check;
pub mod effect;
mod holds;
pub mod lifecycle;
pub mod nonces;
pub mod reject;
pub mod resume;
pub mod roles;
pub mod snapshot;
pub mod state;

use crate::actor_key::{ActorKey, KeyId};
use crate::names::{ActorName, Digest, ModelName, Reference, TagName, Version};
use crate::statement::{Event, SignedStatement, Statement};

pub use audit::{AuditFinding, AuditProblem, Auditor, Prepared, Preparer};
pub use effect::{Applied, Effect};
pub use lifecycle::Lifecycle;
pub use reject::{Category, Rejection};
pub use resume::{Restored, ResumeError, ResumeState};
pub use roles::{Grant, Role};
pub use snapshot::{Position, Record, RecordKey, RestoreError};
pub use state::{
    ActorRecord, HoldRecord, KeyEnd, KeyRecord, ModelRecord, Protection, TagRecord, VersionRecord,
};

use nonces::NonceWindow;
use state::State;

/// Default replay window: statements must be within 5 minutes of the
/// receive time.
pub const DEFAULT_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Parameters of the state machine. Server and auditor must use the same
/// values, or their verdicts may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest accepted distance between a statement's time and the
    /// effective receive time, in ms.
    pub window_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { window_ms: DEFAULT_WINDOW_MS }
    }
}

/// A statement that passed every check, with the change it will make.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    index: u64,
    now_ms: u64,
    actor: ActorName,
    key_id: KeyId,
    nonce_expiry_ms: u64,
    nonce_id: nonces::NonceId,
    generation: u64,
    effect: Effect,
}

impl Accepted {
    /// The leaf index it was checked for.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// What applying it will change.
    pub fn effect(&self) -> &Effect {
        &self.effect
    }

    /// The nonce fingerprint applying it remembers, and until when (ms):
    /// what a server persists of the replay window.
    pub fn nonce(&self) -> (nonces::NonceId, u64) {
        (self.nonce_id, self.nonce_expiry_ms)
    }
}

/// The verdict on an acceptable statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Append the leaf, then [`Registry::apply`] this.
    Append(Box<Accepted>),
    /// Nothing to append: the same publish is already logged at `index`
    /// (answer 200 with that index).
    AlreadyLogged {
        /// Leaf of the original publish.
        index: u64,
    },
}

/// The result of [`Registry::process`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Applied at its index.
    Applied(Box<Applied>),
    /// Already logged at `index`; nothing changed.
    AlreadyLogged {
        /// Leaf of the original publish.
        index: u64,
    },
}

/// Why [`Registry::apply`] refused an [`Accepted`]: a caller bug, never a
/// statement problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The registry changed since the check.
    #[error("stale check: the registry changed since the statement was checked")]
    Stale,
    /// Leaf indexes must increase.
    #[error("leaf index {given} is not after the last applied index {last}")]
    IndexOrder {
        /// Last applied index.
        last: u64,
        /// Index given.
        given: u64,
    },
}

/// The registry state plus the replay window.
#[derive(Clone, Debug)]
pub struct Registry {
    config: Config,
    state: State,
    nonces: NonceWindow,
    clock_ms: u64,
    last_index: Option<u64>,
    generation: u64,
}

impl Registry {
    /// An empty registry: its first statement must be the genesis grant.
    pub fn new(config: Config) -> Self {
        Registry {
            config,
            state: State::default(),
            nonces: NonceWindow::default(),
            clock_ms: 0,
            last_index: None,
            generation: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The key that must have signed `stmt`: its bound key, or for the
    /// genesis statement of an empty registry, the key the grant introduces.
    /// Refuses unknown, dead and other actors' keys (401).
    pub fn signing_key<'a>(&'a self, stmt: &'a Statement) -> Result<&'a ActorKey, Rejection> {
        if self.state.actors.is_empty() {
            return match &stmt.event {
                Event::Grant(g) if g.key.id() == stmt.key_id => Ok(&g.key),
                _ => Err(Rejection::UnknownKey(stmt.key_id)),
            };
        }
        let rec = self.state.keys.get(&stmt.key_id).ok_or(Rejection::UnknownKey(stmt.key_id))?;
        match rec.ended {
            Some(KeyEnd::Rotated(index)) => return Err(Rejection::KeyRotated { key_id: stmt.key_id, index }),
            Some(KeyEnd::Revoked(index)) => return Err(Rejection::KeyRevoked { key_id: stmt.key_id, index }),
            None => {}
        }
        if rec.actor != stmt.actor {
            return Err(Rejection::KeyActorMismatch { key_id: stmt.key_id, owner: rec.actor.clone() });
        }
        Ok(&rec.key)
    }

    /// [`Registry::signing_key`] plus verification of the envelope
    /// signature: what a server does before [`Registry::check`].
    pub fn authenticate(&self, signed: &SignedStatement) -> Result<(), Rejection> {
        let key = self.signing_key(&signed.statement)?;
        signed.verify(key).map_err(|_| Rejection::BadSignature)
    }

    /// Decides, without changing anything, whether `stmt` (signature
    /// already verified by the caller) may be appended at leaf `index`
    /// received at `receive_time_ms`, and what it would change.
    pub fn check(&self, stmt: &Statement, index: u64, receive_time_ms: u64) -> Result<Verdict, Rejection> {
        check::check(self, stmt, index, receive_time_ms)
    }

    /// Performs a checked statement. Call after the leaf is sequenced at
    /// `accepted.index()`.
    pub fn apply(&mut self, accepted: Box<Accepted>) -> Result<Applied, ApplyError> {
        apply::apply(self, *accepted)
    }

    /// `check` then `apply`: the auditor's replay step.
    pub fn process(
        &mut self,
        stmt: &Statement,
        index: u64,
        receive_time_ms: u64,
    ) -> Result<Outcome, Rejection> {
        match self.check(stmt, index, receive_time_ms)? {
            Verdict::Append(a) => Ok(Outcome::Applied(Box::new(
                self.apply(a).expect("apply right after check cannot be stale"),
            ))),
            Verdict::AlreadyLogged { index } => Ok(Outcome::AlreadyLogged { index }),
        }
    }

    // ---- queries -------------------------------------------------------

    /// An actor, its keys and grants.
    pub fn actor(&self, name: &ActorName) -> Option<&ActorRecord> {
        self.state.actors.get(name)
    }

    /// Every actor (in no particular order).
    pub fn actors(&self) -> impl Iterator<Item = &ActorRecord> {
        self.state.actors.values()
    }

    /// A key ever bound, live or dead.
    pub fn key(&self, id: &KeyId) -> Option<&KeyRecord> {
        self.state.keys.get(id)
    }

    /// A model name's versions, tags and production version.
    pub fn model(&self, name: &ModelName) -> Option<&ModelRecord> {
        self.state.models.get(name)
    }

    /// Every model name (in no particular order).
    pub fn models(&self) -> impl Iterator<Item = (&ModelName, &ModelRecord)> {
        self.state.models.iter()
    }

    /// `name@version`.
    pub fn version(&self, name: &ModelName, version: &Version) -> Option<&VersionRecord> {
        self.model(name)?.versions.get(version)
    }

    /// What `name:tag` requires of its target: a built-in rule or a
    /// `protect` statement's, `None` for an ordinary tag.
    pub fn tag_requirement(&self, name: &ModelName, tag: &TagName) -> Option<lifecycle::TagRequirement<'_>> {
        state::tag_requirement(self.model(name), tag)
    }

    /// `name:tag` with its full history.
    pub fn tag(&self, name: &ModelName, tag: &TagName) -> Option<&TagRecord> {
        self.model(name)?.tags.get(tag)
    }

    /// Every version published as a model directory (its artifact a
    /// [`crate::manifest`] manifest), by name and version.
    pub fn directory_versions(&self) -> impl Iterator<Item = (&ModelName, &Version, &VersionRecord)> + '_ {
        self.models().flat_map(|(name, model)| {
            model
                .versions
                .iter()
                .filter(|(_, v)| v.media_type.as_str() == crate::manifest::MEDIA_TYPE)
                .map(move |(version, v)| (name, version, v))
        })
    }

    /// The `(name, version)` pairs that published `digest`, in log order.
    pub fn publishes_of(&self, digest: &Digest) -> &[(ModelName, Version)] {
        self.state.digests.get(digest).map_or(&[], Vec::as_slice)
    }

    /// Resolves `name@version` or `name:tag` to a digest, with the leaf
    /// indexes that prove it.
    pub fn resolve(&self, reference: &Reference) -> Option<Resolution> {
        match reference {
            Reference::Version(name, version) => {
                let v = self.version(name, version)?;
                Some(Resolution {
                    digest: v.digest,
                    versions: vec![(version.clone(), v.published_at)],
                    tag_move: None,
                    disqualified: None,
                })
            }
            Reference::Tag(name, tag) => {
                let model = self.model(name)?;
                let current = *model.tags.get(tag)?.current();
                let versions: Vec<_> =
                    model.versions_with(&current.digest).map(|(v, r)| (v.clone(), r.published_at)).collect();
                let disqualified = state::tag_requirement(Some(model), tag)
                    .filter(|req| !model.qualifies(req, &current.digest))
                    .map(|req| Disqualified {
                        required: req.statuses.to_vec(),
                        states: model
                            .versions_with(&current.digest)
                            .map(|(v, r)| (v.clone(), r.state))
                            .collect(),
                    });
                Some(Resolution {
                    digest: current.digest,
                    versions,
                    tag_move: Some(current.index),
                    disqualified,
                })
            }
        }
    }

    /// Number of nonces in the replay window (bounded by the statements of
    /// one window).
    pub fn nonces_remembered(&self) -> usize {
        self.nonces.len()
    }

    /// The effective time of the last applied statement, ms.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// The last applied leaf index.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }
}

/// What a reference resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The artifact.
    pub digest: Digest,
    /// Versions of the name with that digest, each with its publish leaf.
    pub versions: Vec<(Version, u64)>,
    /// For a tag: leaf of its current move.
    pub tag_move: Option<u64>,
    /// For a protected tag whose target left the required status: why it
    /// must not be used. The tag is never moved on its own; a maintainer
    /// moves it (to a qualifying version) or the status comes back.
    pub disqualified: Option<Disqualified>,
}

/// Why a protected tag does not resolve (see [`state::tag_requirement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disqualified {
    /// The statuses the tag requires (one is enough).
    pub required: Vec<Lifecycle>,
    /// Every version of the name with the tag's digest, and its status now.
    pub states: Vec<(Version, Lifecycle)>,
}

impl std::fmt::Display for Disqualified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let states: Vec<String> =
            self.states.iter().map(|(v, s)| format!("{} is {}", v.as_str(), s.as_str())).collect();
        write!(
            f,
            "the tag requires a version in {}, but {}",
            lifecycle::describe(&self.required),
            states.join(", ")
        )
    }
}
