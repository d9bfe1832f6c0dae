//! Resuming an audit from a saved replay state instead of leaf 0.
//!
//! An auditor that replayed a log up to a commitment leaf can export its
//! state ([`ResumeState`]: the registry's records, replay window and
//! position, and the state map's key/value records). A later audit of a
//! longer checkpoint restores it and replays only the new leaves. The saved
//! state is *not* trusted: [`Auditor::resume`] accepts it only if it is
//! the state the log itself committed to at that leaf, as far as the
//! commitment covers it:
//!
//! 1. the state map rebuilt from the saved map records has exactly the root
//!    of the commitment leaf (which the caller authenticated in the
//!    checkpoint's tree), so every committed value is the log's;
//! 2. the registry rebuilt from the saved records commits to exactly that
//!    map: every committed value a record determines (versions, tags,
//!    protections, grants, bound keys) is derived again from the records
//!    and must be equal, with no committed value left over, so a record
//!    altered in a committed field (a grant's role or leaf, a key's owner,
//!    a version's digest or status) is refused;
//! 3. the position agrees with the committed entry lists: the number of
//!    statements applied is the sum of the actors' entry counts, and the
//!    last applied leaf is the latest of their last entries.
//!
//! What the commitment does not cover cannot be checked this way: the
//! replay window (nonce fingerprints and expiries), the registry's clock,
//! and the parts of records no committed value holds (a tag's earlier
//! moves, a version's earlier statuses, which key of an actor is live).
//! A caller that stores the state must protect those as it protects its
//! other local trust state (see the verifier's documentation).
//!
//! Pure: the caller reads and authenticates the bytes.
//!
//! [`Auditor::resume`]: crate::registry::Auditor::resume

use std::collections::HashMap;

use custody_standards::hash::Hash;

use crate::commitment::{
    KeyValue, ProtectionValue, StateCommitter, StateKey, StateValue, TagValue, VersionValue,
};
use crate::leaf::CommitmentLeaf;
use crate::registry::nonces::NonceId;
use crate::registry::snapshot::{Position, Record, RestoreError};
use crate::registry::{Config, Registry};

/// An auditor's state right after a commitment leaf: what
/// [`crate::registry::Auditor::export`] returns and
/// [`crate::registry::Auditor::resume`] takes.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeState {
    /// Every registry record ([`Registry::export_records`]).
    pub records: Vec<Record>,
    /// The replay window, sorted by expiry
    /// ([`Registry::nonce_pairs_by_expiry`]).
    pub nonces: Vec<(NonceId, u64)>,
    /// The registry's scalars ([`Registry::position`]).
    pub position: Position,
    /// Every key of the state map with its value
    /// ([`StateCommitter::records`]).
    pub map: Vec<(StateKey, StateValue)>,
}

/// Why a saved state is not the state the log committed to.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResumeError {
    /// The commitment leaf names another position than where it is.
    #[error("the commitment at leaf {at} names index {named}")]
    Position {
        /// Where the leaf is.
        at: u64,
        /// The index written in it.
        named: u64,
    },
    /// The registry records do not make one registry.
    #[error("the saved registry does not restore: {0}")]
    Restore(#[from] RestoreError),
    /// A map value has the format of another kind of key.
    #[error("the saved map holds a value of another kind than its key {0:?}")]
    ValueKind(StateKey),
    /// A key appears twice in the saved map.
    #[error("the saved map holds {0:?} twice")]
    DuplicateKey(StateKey),
    /// The saved map is not the committed one.
    #[error("the saved state map has root {restored}, the log committed {committed}")]
    StateRoot {
        /// Root of the saved map.
        restored: Hash,
        /// Root in the commitment leaf.
        committed: Hash,
    },
    /// The saved registry does not commit to the saved map.
    #[error("the saved registry disagrees with the committed map: {0}")]
    Disagrees(String),
}

impl Registry {
    /// The replay window's pairs sorted by expiry (then fingerprint): the
    /// order [`Registry::restore`] is fastest with, one bucket lookup per
    /// expiry second instead of one per pair (millions under load).
    pub fn nonce_pairs_by_expiry(&self) -> Vec<(NonceId, u64)> {
        let mut v: Vec<(NonceId, u64)> = self.nonces.pairs().collect();
        v.sort_unstable_by_key(|&(id, expiry)| (expiry, id));
        v
    }
}

/// A saved state restored into a registry and a state map: the costly
/// part of resuming (the replay window holds millions of pairs under load),
/// which a caller may run while it authenticates the log, before
/// [`crate::registry::Auditor::resume_restored`] checks the result against
/// the commitment leaf. Not checked against anything yet.
#[derive(Debug)]
pub struct Restored {
    registry: Registry,
    committer: StateCommitter,
}

impl ResumeState {
    /// Restores the registry and the map (each key once, each value of its
    /// key's kind, records that make one registry); nothing is compared
    /// with the log yet.
    pub fn restore(self, config: Config) -> Result<Restored, ResumeError> {
        let mut seen = HashMap::with_capacity(self.map.len());
        for (k, v) in &self.map {
            if !v.fits(k) {
                return Err(ResumeError::ValueKind(k.clone()));
            }
            if seen.insert(k.hash(), ()).is_some() {
                return Err(ResumeError::DuplicateKey(k.clone()));
            }
        }
        let committer = StateCommitter::restore(self.map);
        let registry = Registry::restore(config, self.records, &self.nonces, self.position)?;
        Ok(Restored { registry, committer })
    }
}

/// The registry and map of `restored`, checked against `commitment`, the
/// commitment leaf the caller authenticated at leaf `at` (see the module
/// documentation).
pub(crate) fn authenticate(
    restored: Restored,
    at: u64,
    commitment: &CommitmentLeaf,
) -> Result<(Registry, StateCommitter), ResumeError> {
    if commitment.index != at {
        return Err(ResumeError::Position { at, named: commitment.index });
    }
    let Restored { registry, committer } = restored;
    if committer.root() != commitment.root {
        return Err(ResumeError::StateRoot { restored: committer.root(), committed: commitment.root });
    }
    check_records(&registry, &committer)?;
    check_position(&registry, &committer, at)?;
    Ok((registry, committer))
}

/// Every committed value a registry record determines, computed as
/// [`StateCommitter::record`] does after each statement.
fn committed_by_records(reg: &Registry) -> Vec<(StateKey, StateValue)> {
    let mut out = Vec::new();
    for (name, model) in reg.models() {
        for (version, v) in &model.versions {
            out.push((
                StateKey::Version { name: name.clone(), version: version.clone() },
                StateValue::Version(VersionValue::of(v)),
            ));
        }
        for (tag, t) in &model.tags {
            let m = t.current();
            out.push((
                StateKey::Tag { name: name.clone(), tag: tag.clone() },
                StateValue::Tag(TagValue { digest: m.digest, index: m.index }),
            ));
        }
        for h in model.holds() {
            out.push((
                StateKey::Hold { name: name.clone(), version: h.version.clone() },
                StateValue::Hold(h.index),
            ));
        }
        for (tag, p) in model.protections() {
            out.push((
                StateKey::Protection { name: name.clone(), tag: tag.clone() },
                StateValue::Protection(ProtectionValue { statuses: p.statuses.clone(), index: p.index }),
            ));
        }
    }
    for a in reg.actors() {
        for g in &a.grants {
            out.push((
                StateKey::Grant { actor: a.name.clone(), role: g.role, pattern: g.pattern.clone() },
                StateValue::Grant(g.index),
            ));
        }
    }
    for (id, k) in &reg.state.keys {
        out.push((StateKey::ActorKey { key_id: *id }, StateValue::ActorKey(KeyValue::of(k))));
    }
    out
}

fn check_records(reg: &Registry, committer: &StateCommitter) -> Result<(), ResumeError> {
    let derived = committed_by_records(reg);
    for (k, v) in &derived {
        match committer.value(k) {
            Some(c) if c == v => {}
            Some(_) => return Err(ResumeError::Disagrees(format!("{k:?} differs from its committed value"))),
            None => return Err(ResumeError::Disagrees(format!("{k:?} is not committed"))),
        }
    }
    let committed = committer.records().filter(|(_, v)| !matches!(v, StateValue::Entries(_))).count();
    if committed != derived.len() {
        return Err(ResumeError::Disagrees(format!(
            "{committed} committed values are records' values, the records determine {}",
            derived.len()
        )));
    }
    Ok(())
}

fn check_position(reg: &Registry, committer: &StateCommitter, at: u64) -> Result<(), ResumeError> {
    let (mut applied, mut last) = (0u64, None::<u64>);
    for (k, v) in committer.records() {
        if let (StateKey::ActorEntries { .. }, StateValue::Entries(e)) = (k, v) {
            applied = applied.saturating_add(e.count);
            if e.count > 0 {
                last = last.max(Some(e.last));
            }
        }
    }
    let p = reg.position();
    if p.generation != applied || p.last_index != last {
        return Err(ResumeError::Disagrees(format!(
            "position {p:?}: the committed entry lists hold {applied} statements, the last at {last:?}"
        )));
    }
    if last.is_some_and(|l| l >= at) {
        return Err(ResumeError::Disagrees(format!("last applied leaf {last:?} is not before leaf {at}")));
    }
    Ok(())
}
