//! The registry on top of the log: `custody_registry::registry::Registry` (the
//! one definition of what a statement may do, shared with the auditor) held
//! in memory and fed, in sequence order, by the sequencer's [`Admission`]
//! hook.
//!
//! The state is the replay of every leaf of the log through the same state
//! machine, so it can never disagree with the log: the log *is* the
//! registry's database. To start without replaying the whole log, each
//! batch persists what it changed in the same write as its entries
//! ([`crate::registry_state`]); start-up reads that back and replays only
//! entries it does not cover (all of them in a database from before it
//! existed). Replay skips signature checks (each leaf was authenticated
//! before it was sequenced; `fsck` and `custody audit` re-verify them, and
//! `fsck` compares the persisted state with the replay). Secondary indexes that would grow with
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
use custody_registry::log_event::{LogEvent, LogEventBody, SignedLogEvent};
use custody_registry::registry::{Config, Effect, Outcome, Registry, Rejection, Verdict};
use custody_registry::statement::SignedStatement;

use crate::integrity_episodes::{self, IntegrityEpisodes};
pub use crate::registry_index::{
    access_prefix, access_row, actor_prefix, actor_row, digest_prefix, digest_row, index_rows,
    log_event_rows, name_prefix, name_row, row_index, state_row_key, STATE_MAP_PREFIX,
};
use crate::registry_state::{self, BatchChanges, Loaded, NonceRows, RowsChange};
use crate::sequencer::{Admission, AdmissionBatch, Admit, Refusal, Sealed};
use crate::state_snapshots::{StateSnapshots, DEFAULT_RETAINED_VERSIONS};
use crate::store::{IndexRow, StateRow, Store, StoreError};

/// Entries read per store call during replay.
const REPLAY_CHUNK: u64 = 1024;
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
    let mut registry = Registry::new(config);
    let mut committer = StateCommitter::new();
    replay_range(&mut registry, &mut committer, store, 0, store.tree_size()?)?;
    Ok(registry)
}

/// Replays leaves `[start, end)` of `store` into `registry` and its state
/// map `committer`, which must be the replay of `[0, start)`. Each
/// commitment leaf is checked against the map's root, so a log whose
/// commitments disagree with its statements does not load.
pub fn replay_range(
    registry: &mut Registry,
    committer: &mut StateCommitter,
    store: &dyn Store,
    mut start: u64,
    end: u64,
) -> Result<(), RegistryError> {
    while start < end {
        let chunk_end = (start + REPLAY_CHUNK).min(end);
        for (offset, entry) in store.entries(start, chunk_end)?.iter().enumerate() {
            replay_entry(registry, committer, entry, start + offset as u64)?;
        }
        start = chunk_end;
    }
    Ok(())
}

/// Replays entry `index` into `registry` and its state map `committer`:
/// a commitment leaf must commit to the state replayed so far, a statement
/// must apply. Returns the statement's index rows (none for a commitment),
/// for whoever rebuilds them (`custody-log restore`).
pub fn replay_entry(
    registry: &mut Registry,
    committer: &mut StateCommitter,
    entry: &[u8],
    index: u64,
) -> Result<Vec<IndexRow>, RegistryError> {
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
            return Ok(Vec::new());
        }
        // Verified before it was sequenced (and by fsck and audit), like
        // the statements.
        LogLeaf::LogEvent(leaf) => {
            let signed = SignedLogEvent::parse(leaf.envelope).map_err(|e| fail(e.to_string()))?;
            committer.record_log_event(registry, &signed.event, index);
            return Ok(log_event_rows(registry, &signed.event, index));
        }
    };
    let signed = SignedStatement::parse(leaf.envelope).map_err(|e| fail(e.to_string()))?;
    match registry.process(&signed.statement, index, leaf.receive_time_ms) {
        Ok(Outcome::Applied(a)) => {
            committer.record(registry, &signed.statement, &a);
            Ok(index_rows(&signed.statement, &a, index))
        }
        Ok(Outcome::AlreadyLogged { index: original }) => {
            Err(fail(format!("duplicate of entry {original} was logged")))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The tree size ending with the store's last leaf when that leaf is a
/// commitment to `committer`'s root: the state servable at once.
fn committed_size(store: &dyn Store, committer: &StateCommitter) -> Result<Option<u64>, RegistryError> {
    let size = store.tree_size()?;
    let Some(last) = size.checked_sub(1) else { return Ok(None) };
    let entry = store.entry(last)?.unwrap_or_default();
    Ok(match CommitmentLeaf::decode(&entry) {
        Ok(c) if c.index == last && c.root == committer.root() => Some(size),
        Ok(c) => {
            return Err(RegistryError::Replay {
                index: last,
                reason: format!(
                    "state commitment root {} is not the loaded state's {}",
                    c.root,
                    committer.root()
                ),
            })
        }
        Err(_) => None,
    })
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
    /// The nonce rows in the store (see [`crate::registry_state`]); only
    /// touched by batches, which hold the registry's write lock.
    rows: Mutex<NonceRows>,
    /// Set when a failed batch could not be undone by reloading: the
    /// in-memory state may be ahead of the log, so nothing more is
    /// admitted until a restart rebuilds it.
    poisoned: AtomicBool,
    /// Entries replayed at start-up (0 when the persisted state covered
    /// the whole log).
    replayed: u64,
    /// The log's checkpoint key, which signs log events
    /// ([`custody_registry::log_event`]); without it none is admitted.
    log_key: Option<custody_standards::SignerKey>,
    /// Digests with an integrity violation logged and not seen intact
    /// since (one log event per digest per detection episode), durable in
    /// the store ([`crate::integrity_episodes`]).
    episodes: IntegrityEpisodes,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("poisoned", &self.poisoned.load(Ordering::Relaxed))
            .field("replayed", &self.replayed)
            .finish()
    }
}

impl RegistryService {
    /// Loads the registry from its persisted state, replaying only the
    /// entries it does not cover (all of them in a database written before
    /// the state was persisted), and persists the result when it replayed
    /// any, so the next start replays nothing.
    pub fn load(store: &dyn Store, config: Config) -> Result<Self, RegistryError> {
        let started = std::time::Instant::now();
        let Loaded { registry, mut committer, replayed, mut rows } = registry_state::load(store, config)?;
        if replayed > 0 {
            // Statements after the last commitment (a log from before
            // commitments existed) are sealed now; the next batch's
            // commitment covers them.
            committer.seal();
            rows = registry_state::persist(store, &registry, &committer)?;
        }
        let committed = committed_size(store, &committer)?;
        crate::index_check::warn_if_digest_rows_lack_history(store, &registry)?;
        tracing::info!(
            entries = store.tree_size()?,
            replayed,
            nonces = registry.nonces_remembered(),
            secs = started.elapsed().as_secs_f64(),
            "registry loaded"
        );
        let keys = RwLock::new(live_keys(&registry));
        let episodes = IntegrityEpisodes::load(store)?;
        let snapshots = StateSnapshots::new(&committer, committed, DEFAULT_RETAINED_VERSIONS);
        Ok(RegistryService {
            inner: RwLock::new(registry),
            committer: Mutex::new(committer),
            snapshots,
            keys,
            rows: Mutex::new(rows),
            poisoned: AtomicBool::new(false),
            replayed,
            log_key: None,
            episodes,
        })
    }

    /// Lets the log sign and admit log events with its checkpoint key.
    pub fn with_log_key(mut self, key: custody_standards::SignerKey) -> Self {
        self.log_key = Some(key);
        self
    }

    /// The leaf of a log event signed with the log's key, received now;
    /// `None` without a key.
    pub fn sign_log_event(&self, event: &LogEvent) -> Option<Vec<u8>> {
        let key = self.log_key.as_ref()?;
        let public = key.verifier().public_key();
        let envelope = SignedLogEvent::sign(event, &public, |m| key.sign_ed25519(m)).ok()?;
        let leaf =
            custody_registry::log_event::LogEventLeaf { receive_time_ms: now_ms(), envelope: &envelope };
        Some(leaf.encode())
    }

    /// The log's origin (its key's name), if it signs log events.
    pub fn origin(&self) -> Option<&str> {
        self.log_key.as_ref().map(|k| k.name())
    }

    /// The open integrity episodes: which digests' violations are logged
    /// and not seen repaired since.
    pub fn integrity_episodes(&self) -> &IntegrityEpisodes {
        &self.episodes
    }

    /// The committed state, for state proofs.
    pub fn snapshots(&self) -> &StateSnapshots {
        &self.snapshots
    }

    /// Entries replayed at start-up because the persisted state did not
    /// cover them (`custody_registry_replayed_entries_total`).
    pub fn replayed_at_start(&self) -> u64 {
        self.replayed
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
            log_key: self.log_key.as_ref().map(|k| k.verifier()),
            committer: self.committer.lock().unwrap_or_else(|p| p.into_inner()),
            snapshots: &self.snapshots,
            sealed_state: None,
            keys: &self.keys,
            rows: &self.rows,
            poisoned: &self.poisoned,
            changes: BatchChanges::default(),
            sealed: None,
            keys_changed: false,
            episode_rows: Vec::new(),
        })
    }
}

struct RegistryBatch<'a> {
    guard: RwLockWriteGuard<'a, Registry>,
    /// The log's verifier key, for log events.
    log_key: Option<custody_standards::VerifierKey>,
    committer: MutexGuard<'a, StateCommitter>,
    snapshots: &'a StateSnapshots,
    /// What `seal` committed: the tree size ending with the commitment
    /// leaf, and the changed keys.
    sealed_state: Option<(u64, Vec<Change>)>,
    keys: &'a RwLock<KeyCache>,
    rows: &'a Mutex<NonceRows>,
    poisoned: &'a AtomicBool,
    /// What the batch changed: the records and nonces its seal persists.
    changes: BatchChanges,
    /// The nonce rows the sealed write adds and removes, applied to
    /// `rows` once it is durable.
    sealed: Option<RowsChange>,
    /// A key was bound or ended in this batch: refresh the cache once it
    /// is durable.
    keys_changed: bool,
    /// The integrity episodes the batch's log events open, written with
    /// them ([`crate::integrity_episodes`]).
    episode_rows: Vec<StateRow>,
}

impl RegistryBatch<'_> {
    /// A log event: only the log's own key makes one (a forged one is
    /// refused here as it is by the auditor).
    fn admit_log_event(&mut self, entry: &[u8], index: u64) -> Admit {
        let registry = &*self.guard;
        let checked = custody_registry::log_event::check(entry, self.log_key.as_ref(), index, |d| {
            !registry.publishes_of(d).is_empty()
        });
        match checked {
            Ok((_, signed)) => {
                self.committer.record_log_event(registry, &signed.event, index);
                self.changes.note_log_event();
                let LogEventBody::IntegrityViolation(v) = &signed.event.event;
                self.episode_rows.push(integrity_episodes::open_row(&v.digest, index));
                Admit::Append(log_event_rows(registry, &signed.event, index))
            }
            Err(e) => Admit::Reject(Refusal::Malformed(e.to_string())),
        }
    }
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
        if let Ok(LogLeaf::LogEvent(_)) = LogLeaf::decode(entry) {
            return self.admit_log_event(entry, index);
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
            Ok(Verdict::Append(accepted)) => {
                let nonce = accepted.nonce();
                match registry.apply(accepted) {
                    Ok(applied) => {
                        self.changes.note(Registry::records_touched_by(&applied), nonce);
                        self.committer.record(registry, &signed.statement, &applied);
                        self.keys_changed |= matches!(
                            applied.effect,
                            Effect::Genesis { .. }
                                | Effect::Granted { bind_key: true, .. }
                                | Effect::Rotated { .. }
                                | Effect::KeyRevoked { .. }
                        );
                        Admit::Append(index_rows(&signed.statement, &applied, index))
                    }
                    // check and apply run under one lock, so this is a bug.
                    Err(e) => Admit::Reject(Refusal::Unavailable(format!("registry apply failed: {e}"))),
                }
            }
            Ok(Verdict::AlreadyLogged { index }) => Admit::Existing(index),
            Err(r) => Admit::Reject(r.into()),
        }
    }

    /// Ends every batch that applied a statement with a commitment leaf:
    /// the root of the state map after it, so each checkpoint the log can
    /// publish ends with the state it commits to. The persisted state then
    /// covers the commitment leaf too (it changes no state).
    fn seal(&mut self, next_index: u64) -> Sealed {
        if self.changes.is_empty() {
            return Sealed::default();
        }
        let covered = next_index + 1;
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let (mut state_rows, change) = self.changes.seal(&self.guard, &rows, covered);
        self.sealed = Some(change);
        let sealed = self.committer.seal();
        let trailer = CommitmentLeaf { index: next_index, root: sealed.root }.encode();
        state_rows.extend(
            sealed.changes.iter().map(|c| (state_row_key(&c.key), c.after.as_ref().map(|v| v.encode()))),
        );
        self.sealed_state = Some((covered, sealed.changes));
        state_rows.append(&mut self.episode_rows);
        Sealed { trailer: Some(trailer), state_rows }
    }

    fn finish(mut self: Box<Self>, durable: bool, store: &dyn Store) {
        if durable {
            if let Some(change) = self.sealed.take() {
                change.apply(&mut self.rows.lock().unwrap_or_else(|p| p.into_inner()));
            }
            if let Some((size, changes)) = self.sealed_state.take() {
                self.snapshots.push(size, self.committer.tree().clone(), &changes);
            }
            if self.keys_changed {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = live_keys(&self.guard);
            }
            return;
        }
        if self.changes.is_empty() {
            return;
        }
        // The store says what is durable: its persisted state is exactly the
        // registry before this batch (or after it, if the failed write landed
        // after all).
        let config = self.guard.config();
        let reloaded = registry_state::load(store, config).map_err(|e| e.to_string()).and_then(|mut l| {
            let rows = if l.replayed > 0 {
                l.committer.seal();
                registry_state::persist(store, &l.registry, &l.committer).map_err(|e| e.to_string())?
            } else {
                l.rows
            };
            let committed = committed_size(store, &l.committer).map_err(|e| e.to_string())?;
            Ok((l.registry, l.committer, committed, rows))
        });
        match reloaded {
            Ok((registry, committer, committed, rows)) => {
                *self.guard = registry;
                *self.committer = committer;
                self.snapshots.reset(&self.committer, committed);
                *self.rows.lock().unwrap_or_else(|p| p.into_inner()) = rows;
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = live_keys(&self.guard);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reload the registry after a failed write");
                self.poisoned.store(true, Ordering::SeqCst);
            }
        }
    }
}
