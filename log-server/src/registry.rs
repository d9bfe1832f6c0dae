//! The registry on top of the log: `custody_registry::registry::Registry` (the
//! one definition of what a statement may do, shared with the auditor) held
//! in memory and fed, in sequence order, by the sequencer's [`Admission`]
//! hook.
//!
//! The state is rebuilt at start-up by replaying every leaf of the log
//! through the same state machine, so it can never disagree with the log:
//! the log *is* the registry's database. Replay skips signature checks
//! (each leaf was authenticated before it was sequenced; `fsck` and
//! `custody audit` re-verify them). Secondary indexes that would grow with
//! the log (access history per artifact, entries per actor) are not kept in
//! memory but written as `registry_index` rows in the same RocksDB batch as
//! the entries, so they are exactly as durable as the leaves they point at.
//!
//! While a batch is being decided and written, the admission holds the
//! registry's write lock: readers wait a few milliseconds rather than see
//! the effect of an entry a crash could still take back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_registry::actor_key::{ActorKey, KeyId};
use custody_registry::commitment::{Change, StateCommitter};
use custody_registry::leaf::{CommitmentLeaf, Leaf, LogLeaf};
use custody_registry::names::{ActorName, Digest};
use custody_registry::registry::{Config, Effect, Outcome, Registry, Rejection, Verdict};
use custody_registry::statement::SignedStatement;

use crate::sequencer::{Admission, AdmissionBatch, Admit, Refusal, Sealed};
use crate::state_snapshots::{StateSnapshots, DEFAULT_RETAINED_VERSIONS};
use crate::store::{IndexRow, Store, StoreError};

/// Entries read per store call during replay.
const REPLAY_CHUNK: u64 = 1024;
/// Index row prefix: access history of a digest (`a` || digest || index).
const PREFIX_ACCESS: u8 = b'a';
/// Index row prefix: entries of an actor (`u` || len || actor || index).
const PREFIX_ACTOR: u8 = b'u';
/// Index row prefix: entries about a model name (`n` || len || name ||
/// index), the list the committed `NameEntries` chain proves complete.
const PREFIX_NAME: u8 = b'n';

/// Why the registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A logged entry is not a statement the registry accepts: the log was
    /// altered, or the server runs with a different replay window than the
    /// one that accepted it.
    #[error("entry {index} does not replay: {reason}")]
    Replay {
        /// Leaf index.
        index: u64,
        /// What failed.
        reason: String,
    },
}

/// Milliseconds since the Unix epoch: the receive time written into leaves.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Replays leaves `[0, size)` of `store` into a fresh registry.
pub fn replay(store: &dyn Store, config: Config) -> Result<Registry, RegistryError> {
    replay_state(store, config).map(|l| l.registry)
}

/// A registry rebuilt from the log, with its state map.
pub struct Replayed {
    /// The registry after every statement.
    pub registry: Registry,
    /// Its state map, sealed at the last commitment leaf.
    pub committer: StateCommitter,
    /// The tree size ending with the last commitment leaf, when the log
    /// ends with one (what [`StateSnapshots`] can serve at once).
    pub committed_size: Option<u64>,
}

/// Replays every leaf: statements through the state machine and the state
/// map, commitment leaves checked against the map's root, so a log whose
/// commitments disagree with its statements does not load.
pub fn replay_state(store: &dyn Store, config: Config) -> Result<Replayed, RegistryError> {
    let size = store.tree_size()?;
    let mut registry = Registry::new(config);
    let mut committer = StateCommitter::new();
    let mut committed_size = None;
    let mut start = 0;
    while start < size {
        let end = (start + REPLAY_CHUNK).min(size);
        for (offset, entry) in store.entries(start, end)?.iter().enumerate() {
            let index = start + offset as u64;
            let fail = |reason: String| RegistryError::Replay { index, reason };
            let leaf = match LogLeaf::decode(entry).map_err(|e| fail(e.to_string()))? {
                LogLeaf::Statement(leaf) => leaf,
                LogLeaf::Commitment(c) => {
                    let root = committer.seal().root;
                    if c.index != index || c.root != root {
                        return Err(fail(format!(
                            "state commitment (index {}, root {}) is not the replayed state (root {root})",
                            c.index, c.root
                        )));
                    }
                    committed_size = Some(index + 1);
                    continue;
                }
            };
            let signed = SignedStatement::parse(leaf.envelope).map_err(|e| fail(e.to_string()))?;
            match registry.process(&signed.statement, index, leaf.receive_time_ms) {
                Ok(Outcome::Applied(a)) => committer.record(&registry, &signed.statement, &a),
                Ok(Outcome::AlreadyLogged { index: original }) => {
                    return Err(fail(format!("duplicate of entry {original} was logged")))
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        start = end;
    }
    // Statements after the last commitment (a log written before
    // commitments existed) stay pending: the next batch seals them.
    committed_size = committed_size.filter(|s| *s == size);
    Ok(Replayed { registry, committer, committed_size })
}

/// Live actor keys by ID: what authentication needs, kept apart from the
/// registry so that verifying a request never waits for the registry lock
/// (held through each batch's fsync). Rebuilt after every durable batch
/// that bound or ended a key.
type KeyCache = HashMap<KeyId, ActorKey>;

fn live_keys(registry: &Registry) -> KeyCache {
    registry
        .actors()
        .filter_map(|a| a.current_key.as_ref())
        .filter_map(|id| registry.key(id).map(|k| (*id, k.key.clone())))
        .collect()
}

/// The registry held by a running server.
pub struct RegistryService {
    inner: RwLock<Registry>,
    /// The state map, updated with the registry in each batch; locked after
    /// `inner`, only by the sequencer's batch.
    committer: Mutex<StateCommitter>,
    /// Recent sealed versions of the map, for state proofs.
    snapshots: StateSnapshots,
    keys: RwLock<KeyCache>,
    /// Set when a failed batch could not be undone by replay: the in-memory
    /// state may be ahead of the log, so nothing more is admitted until a
    /// restart rebuilds it.
    poisoned: AtomicBool,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService").field("poisoned", &self.poisoned.load(Ordering::Relaxed)).finish()
    }
}

impl RegistryService {
    /// Loads the registry by replaying the whole log.
    pub fn load(store: &dyn Store, config: Config) -> Result<Self, RegistryError> {
        let Replayed { registry, committer, committed_size } = replay_state(store, config)?;
        tracing::info!(entries = store.tree_size()?, "registry replayed");
        let keys = RwLock::new(live_keys(&registry));
        let snapshots = StateSnapshots::new(&committer, committed_size, DEFAULT_RETAINED_VERSIONS);
        Ok(RegistryService {
            inner: RwLock::new(registry),
            committer: Mutex::new(committer),
            snapshots,
            keys,
            poisoned: AtomicBool::new(false),
        })
    }

    /// The committed state, for state proofs.
    pub fn snapshots(&self) -> &StateSnapshots {
        &self.snapshots
    }

    /// Checks that `signed` is signed by a live key of its actor: the key
    /// cache and one Ed25519 verification, without the registry lock, so it
    /// can run on a request thread. On any miss (unknown or dead key, the
    /// genesis statement) it defers to the registry for the exact
    /// rejection. The admission re-checks liveness in log order anyway.
    pub fn authenticate(&self, signed: &SignedStatement) -> Result<(), Rejection> {
        let key = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            keys.get(&signed.statement.key_id).filter(|k| k.actor() == &signed.statement.actor).cloned()
        };
        match key {
            Some(key) => signed.verify(&key).map_err(|_| Rejection::BadSignature),
            None => self.read().authenticate(signed),
        }
    }

    /// Read access for queries and authentication.
    pub fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the state was lost after a failed write (see `/health`).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }
}

impl Admission for RegistryService {
    type Parsed = SignedStatement;

    fn begin(&self) -> Box<dyn AdmissionBatch<SignedStatement> + '_> {
        let guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Box::new(RegistryBatch {
            guard,
            committer: self.committer.lock().unwrap_or_else(|p| p.into_inner()),
            snapshots: &self.snapshots,
            sealed: None,
            keys: &self.keys,
            poisoned: &self.poisoned,
            changed: false,
            keys_changed: false,
        })
    }
}

struct RegistryBatch<'a> {
    guard: RwLockWriteGuard<'a, Registry>,
    committer: MutexGuard<'a, StateCommitter>,
    snapshots: &'a StateSnapshots,
    /// What `seal` committed: the tree size ending with the commitment
    /// leaf, and the changed keys.
    sealed: Option<(u64, Vec<Change>)>,
    keys: &'a RwLock<KeyCache>,
    poisoned: &'a AtomicBool,
    changed: bool,
    /// A key was bound or ended in this batch: refresh the cache once it
    /// is durable.
    keys_changed: bool,
}

impl AdmissionBatch<SignedStatement> for RegistryBatch<'_> {
    fn admit(
        &mut self,
        entry: &[u8],
        index: u64,
        authenticated: bool,
        parsed: Option<&SignedStatement>,
    ) -> Admit {
        if self.poisoned.load(Ordering::SeqCst) {
            return Admit::Reject(Refusal::Unavailable(
                "registry state was lost after a failed write; the server must be restarted".into(),
            ));
        }
        let leaf = match Leaf::decode(entry) {
            Ok(l) => l,
            Err(e) => return Admit::Reject(Refusal::Malformed(e.to_string())),
        };
        // The HTTP handler hands over the statement it parsed from these
        // very bytes; anything else (raw appends) is parsed here.
        let owned;
        let signed = match parsed {
            Some(s) if authenticated => s,
            _ => match SignedStatement::parse(leaf.envelope) {
                Ok(s) => {
                    owned = s;
                    &owned
                }
                Err(e) => return Admit::Reject(Refusal::Malformed(e.to_string())),
            },
        };
        let registry = &mut *self.guard;
        if !authenticated {
            if let Err(r) = registry.authenticate(signed) {
                return Admit::Reject(r.into());
            }
        }
        match registry.check(&signed.statement, index, leaf.receive_time_ms) {
            Ok(Verdict::Append(accepted)) => match registry.apply(accepted) {
                Ok(applied) => {
                    self.changed = true;
                    self.committer.record(registry, &signed.statement, &applied);
                    self.keys_changed |= matches!(
                        applied.effect,
                        Effect::Genesis { .. }
                            | Effect::Granted { bind_key: true, .. }
                            | Effect::Rotated { .. }
                            | Effect::KeyRevoked { .. }
                    );
                    let mut rows = vec![actor_row(&applied.actor, index)];
                    if let Some(name) = signed.statement.event.name() {
                        rows.push(name_row(name, index));
                    }
                    if let Effect::Accessed { digest } = &applied.effect {
                        rows.push(access_row(digest, index));
                    }
                    Admit::Append(rows)
                }
                // check and apply run under one lock, so this is a bug.
                Err(e) => Admit::Reject(Refusal::Unavailable(format!("registry apply failed: {e}"))),
            },
            Ok(Verdict::AlreadyLogged { index }) => Admit::Existing(index),
            Err(r) => Admit::Reject(r.into()),
        }
    }

    /// Ends every batch that applied a statement with a commitment leaf:
    /// the root of the state map after it, so each checkpoint the log can
    /// publish ends with the state it commits to.
    fn seal(&mut self, next_index: u64) -> Sealed {
        if !self.committer.has_pending() {
            return Sealed::default();
        }
        let sealed = self.committer.seal();
        let trailer = CommitmentLeaf { index: next_index, root: sealed.root }.encode();
        let state_rows = sealed
            .changes
            .iter()
            .map(|c| (state_row_key(&c.key), c.after.as_ref().map(|v| v.encode())))
            .collect();
        self.sealed = Some((next_index + 1, sealed.changes));
        Sealed { trailer: Some(trailer), state_rows }
    }

    fn finish(mut self: Box<Self>, durable: bool, store: &dyn Store) {
        if durable {
            if let Some((size, changes)) = self.sealed.take() {
                self.snapshots.push(size, self.committer.tree().clone(), &changes);
            }
            if self.keys_changed {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = live_keys(&self.guard);
            }
            return;
        }
        if !self.changed {
            self.committer.discard_pending();
            return;
        }
        let config = self.guard.config();
        match replay_state(store, config) {
            Ok(r) => {
                *self.guard = r.registry;
                *self.committer = r.committer;
                self.snapshots.reset(&self.committer, r.committed_size);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot rebuild the registry after a failed write");
                self.poisoned.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Prefix of the `state` rows holding the state map's values: `M` || key
/// encoding -> value encoding.
pub const STATE_MAP_PREFIX: u8 = b'M';

fn state_row_key(key: &custody_registry::commitment::StateKey) -> Vec<u8> {
    let enc = key.encode();
    let mut k = Vec::with_capacity(1 + enc.len());
    k.push(STATE_MAP_PREFIX);
    k.extend_from_slice(&enc);
    k
}

fn index_suffix(mut key: Vec<u8>, index: u64) -> Vec<u8> {
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Prefix of the access-history rows of `digest`.
pub fn access_prefix(digest: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(PREFIX_ACCESS);
    k.extend_from_slice(&digest.0 .0);
    k
}

/// Row recording that entry `index` accessed `digest`.
pub fn access_row(digest: &Digest, index: u64) -> IndexRow {
    index_suffix(access_prefix(digest), index)
}

/// Prefix of the rows of `actor`'s entries. Length-prefixed, so one
/// actor's prefix is never a prefix of another's.
pub fn actor_prefix(actor: &ActorName) -> Vec<u8> {
    let name = actor.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + name.len());
    k.push(PREFIX_ACTOR);
    // Actor names are far shorter than 256 bytes (custody_registry::names).
    k.push(name.len().min(255) as u8);
    k.extend_from_slice(name);
    k
}

/// Prefix of the rows of the entries about model `name` (length-prefixed).
pub fn name_prefix(name: &custody_registry::names::ModelName) -> Vec<u8> {
    let n = name.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + n.len());
    k.push(PREFIX_NAME);
    // Model names are capped well below 256 bytes (custody_registry::names).
    k.push(n.len().min(255) as u8);
    k.extend_from_slice(n);
    k
}

/// Row recording that entry `index` is about model `name`.
pub fn name_row(name: &custody_registry::names::ModelName, index: u64) -> IndexRow {
    index_suffix(name_prefix(name), index)
}

/// Row recording that entry `index` was made by `actor`.
pub fn actor_row(actor: &ActorName, index: u64) -> IndexRow {
    index_suffix(actor_prefix(actor), index)
}

/// The leaf index at the end of an index row.
pub fn row_index(row: &[u8]) -> Option<u64> {
    let tail = row.len().checked_sub(8)?;
    crate::store::decode_u64(&row[tail..])
}
