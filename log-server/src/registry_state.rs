//! The registry's persisted state: rows of the store's `state` family,
//! written by each batch's [`crate::sequencer::AdmissionBatch::seal`] in the
//! same synced write as the batch's entries. After any crash the rows are
//! therefore exactly the state a replay of the durable entries builds, and
//! the server starts by reading them instead of replaying the log (47.6 s
//! at 10^7 entries before they existed).
//!
//! | key | value |
//! |---|---|
//! | `c` | cursor, JSON `{"format", "window_ms", "covered", "position"}`: the state covers entries `[0, covered)` |
//! | `r ‖ record key` | one registry object ([`custody_registry::registry::snapshot`] encoding), rewritten when a batch changes it |
//! | `M ‖ state key encoding` | the state map's value of that key (`custody_registry::commitment`), written with the batch's commitment leaf |
//! | `n ‖ expiry second (u64 BE) ‖ batch end (u64 BE)` | the nonces a batch remembered whose expiry falls in that second: 18 bytes each, fingerprint (16) ‖ ms within the second (u16 BE) |
//!
//! The replay window is millions of nonces under load, so it is never
//! rewritten: each batch adds one row per expiry second it touches, and a
//! batch whose clock has passed a whole second deletes that second's rows
//! (the rule of [`NonceWindow::second_expired`], the one the window in
//! memory prunes by), so expired nonces cost nothing at rest once RocksDB
//! compacts the deletions away.
//!
//! A cursor of another format or another replay window (`--window-ms`
//! changed) is not trusted: the state is rebuilt by replay and rewritten.
//!
//! [`NonceWindow::second_expired`]: custody_registry::registry::nonces::NonceWindow::second_expired

use std::collections::{BTreeMap, BTreeSet, HashSet};

use custody_registry::commitment::{StateCommitter, StateKey, StateValue};
use custody_registry::registry::nonces::{NonceId, NonceWindow};
use custody_registry::registry::snapshot::RECORD_FORMAT;
use custody_registry::registry::{Config, Position, Record, RecordKey, Registry, RestoreError};
use serde::{Deserialize, Serialize};

use crate::registry::{replay_range, state_row_key, RegistryError, STATE_MAP_PREFIX};
use crate::store::{Batch, StateRow, Store, StoreError};

/// Key of the cursor row.
const CURSOR: &[u8] = b"c";
/// Prefix of record rows.
const RECORD: u8 = b'r';
/// Prefix of nonce rows.
const NONCE: u8 = b'n';
/// Bytes of one persisted nonce: fingerprint and ms within its second.
const NONCE_BYTES: usize = 18;

/// What the state covers and the registry's scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// [`RECORD_FORMAT`] of every row.
    format: u32,
    /// The replay window the state was built with.
    window_ms: u64,
    /// The state is the replay of entries `[0, covered)`.
    covered: u64,
    /// The registry's clock, last index and generation.
    position: Position,
}

/// Why persisted rows do not make a registry (the server then replays;
/// `fsck` reports it).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading the rows failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row is malformed.
    #[error("state row {key}: {detail}")]
    Row {
        /// The row key, escaped.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The records do not make one state.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

fn bad_row(key: &[u8], detail: impl Into<String>) -> StateError {
    StateError::Row { key: key.escape_ascii().to_string(), detail: detail.into() }
}

/// Keys of the nonce rows in the store, by expiry second: what to delete
/// once a second has expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonceRows(BTreeMap<u64, Vec<Vec<u8>>>);

impl NonceRows {
    /// Rows whose second has expired at `clock_ms`.
    fn expired(&self, clock_ms: u64) -> impl Iterator<Item = (&u64, &Vec<Vec<u8>>)> {
        self.0.iter().take_while(move |(s, _)| NonceWindow::second_expired(**s, clock_ms))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A persisted state read back.
#[derive(Debug)]
pub struct Persisted {
    /// The registry it holds.
    pub registry: Registry,
    /// Its state map.
    pub committer: StateCommitter,
    /// It is the replay of entries `[0, covered)`.
    pub covered: u64,
    /// Its nonce rows.
    pub rows: NonceRows,
}

fn nonce_key(second: u64, end: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(NONCE);
    k.extend_from_slice(&second.to_be_bytes());
    k.extend_from_slice(&end.to_be_bytes());
    k
}

fn record_key(key: &RecordKey) -> Vec<u8> {
    let mut k = vec![RECORD];
    k.extend(key.to_bytes());
    k
}

fn cursor_row(registry: &Registry, covered: u64) -> StateRow {
    let cursor = Cursor {
        format: RECORD_FORMAT,
        window_ms: registry.config().window_ms,
        covered,
        position: registry.position(),
    };
    (CURSOR.to_vec(), Some(serde_json::to_vec(&cursor).expect("a cursor serializes")))
}

/// The rows of `pairs`, one per expiry second, keyed with `end` (the
/// batch's end, so two batches never share a row), skipping seconds
/// already expired at `clock_ms` (the window in memory pruned them too).
fn nonce_rows(pairs: &[(NonceId, u64)], end: u64, clock_ms: u64) -> BTreeMap<u64, (Vec<u8>, Vec<u8>)> {
    let mut rows: BTreeMap<u64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    for (id, expiry) in pairs {
        let second = expiry / 1000;
        if NonceWindow::second_expired(second, clock_ms) {
            continue;
        }
        let (_, value) = rows.entry(second).or_insert_with(|| (nonce_key(second, end), Vec::new()));
        value.extend_from_slice(&id.to_bytes());
        value.extend_from_slice(&((expiry % 1000) as u16).to_be_bytes());
    }
    rows
}

/// What one batch changed, collected while it is admitted.
#[derive(Debug, Default)]
pub struct BatchChanges {
    touched: BTreeSet<RecordKey>,
    nonces: Vec<(NonceId, u64)>,
    /// A log event was admitted: the batch changes the state map (entry
    /// lists), so it ends with a commitment like any other.
    log_events: bool,
}

/// Nonce rows a sealed batch adds and removes, applied to [`NonceRows`]
/// once the batch is durable.
#[derive(Debug, Default)]
pub struct RowsChange {
    added: Vec<(u64, Vec<u8>)>,
    removed_through: Option<u64>,
}

impl RowsChange {
    /// Applies the change to the rows known to be in the store.
    pub fn apply(self, rows: &mut NonceRows) {
        if let Some(last) = self.removed_through {
            rows.0 = rows.0.split_off(&(last + 1));
        }
        for (second, key) in self.added {
            rows.0.entry(second).or_default().push(key);
        }
    }
}

impl BatchChanges {
    /// Records one applied statement: the objects it changed and the
    /// nonce it made the registry remember.
    pub fn note(&mut self, touched: Vec<RecordKey>, nonce: (NonceId, u64)) {
        self.touched.extend(touched);
        self.nonces.push(nonce);
    }

    /// Records that a log event was admitted.
    pub fn note_log_event(&mut self) {
        self.log_events = true;
    }

    /// Whether nothing was applied.
    pub fn is_empty(&self) -> bool {
        self.nonces.is_empty() && !self.log_events
    }

    /// The state rows of the batch ending at `end`: the changed records,
    /// its nonces, the deletion of every nonce row whose second has now
    /// expired, and the cursor.
    pub fn seal(&self, registry: &Registry, rows: &NonceRows, end: u64) -> (Vec<StateRow>, RowsChange) {
        let mut out: Vec<StateRow> = self
            .touched
            .iter()
            .map(|k| (record_key(k), registry.export_record(k).map(|r| r.encode())))
            .collect();
        let clock = registry.clock_ms();
        let mut change = RowsChange::default();
        for (second, keys) in rows.expired(clock) {
            out.extend(keys.iter().map(|k| (k.clone(), None)));
            change.removed_through = Some(*second);
        }
        for (second, (key, value)) in nonce_rows(&self.nonces, end, clock) {
            out.push((key.clone(), Some(value)));
            change.added.push((second, key));
        }
        out.push(cursor_row(registry, end));
        (out, change)
    }
}

/// Reads the persisted state. `Ok(None)`: there is none this build can
/// use (a database from before it existed, another format, another
/// replay window).
pub fn read(store: &dyn Store, config: Config) -> Result<Option<Persisted>, StateError> {
    let Some((_, cursor)) = store.scan_state(CURSOR)?.into_iter().find(|(k, _)| k == CURSOR) else {
        return Ok(None);
    };
    // A cursor of another format may have other fields: read the format
    // alone first.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format: Format = serde_json::from_slice(&cursor).map_err(|e| bad_row(CURSOR, e.to_string()))?;
    if format.format != RECORD_FORMAT {
        return Ok(None);
    }
    let cursor: Cursor = serde_json::from_slice(&cursor).map_err(|e| bad_row(CURSOR, e.to_string()))?;
    if cursor.window_ms != config.window_ms {
        return Ok(None);
    }
    let mut records = Vec::new();
    for (key, value) in store.scan_state(&[RECORD])? {
        let record = Record::decode(&value).map_err(|e| bad_row(&key, e.to_string()))?;
        if key != record_key(&record.key()) {
            return Err(bad_row(&key, "holds the record of another object"));
        }
        records.push(record);
    }
    let nonce_rows = store.scan_state(&[NONCE])?;
    let mut pairs = Vec::with_capacity(nonce_rows.iter().map(|(_, v)| v.len() / NONCE_BYTES).sum());
    let mut rows = NonceRows::default();
    for (key, value) in nonce_rows {
        let second = match key.get(1..9).map(|s| u64::from_be_bytes(s.try_into().expect("8 bytes"))) {
            Some(s) if key.len() == 17 => s,
            _ => return Err(bad_row(&key, "not a nonce row key")),
        };
        if value.is_empty() || value.len() % NONCE_BYTES != 0 {
            return Err(bad_row(&key, format!("{} bytes, not a multiple of {NONCE_BYTES}", value.len())));
        }
        for n in value.chunks_exact(NONCE_BYTES) {
            let id = NonceId::from_bytes(n[..16].try_into().expect("16 bytes"));
            let ms = u64::from(u16::from_be_bytes([n[16], n[17]]));
            if ms >= 1000 {
                return Err(bad_row(&key, "a nonce expiry outside its second"));
            }
            pairs.push((id, second * 1000 + ms));
        }
        rows.0.entry(second).or_default().push(key);
    }
    // A restored window may remember a pair longer than the live one did,
    // never shorter: rows go only when their whole second has expired,
    // and a fingerprint seen twice keeps its latest expiry. Longer is safe
    // because a lookup compares the exact expiry with the clock, so a pair
    // past its expiry never refuses anything, while every pair still in
    // its window is here.
    let registry = Registry::restore(config, records, &pairs, cursor.position)?;
    let mut map = Vec::new();
    for (key, value) in store.scan_state(&[STATE_MAP_PREFIX])? {
        let k = StateKey::decode(&key[1..]).map_err(|e| bad_row(&key, e.to_string()))?;
        let v = StateValue::decode(&value).map_err(|e| bad_row(&key, e.to_string()))?;
        if !v.fits(&k) {
            return Err(bad_row(&key, "a state value of another kind than its key"));
        }
        map.push((k, v));
    }
    let committer = StateCommitter::restore(map);
    Ok(Some(Persisted { registry, committer, covered: cursor.covered, rows }))
}

/// Every row of a full rewrite of `registry`'s state covering `[0, covered)`,
/// deleting every other state row the store holds but the integrity
/// episodes' ([`crate::integrity_episodes`]), and the nonce rows it leaves
/// in the store.
pub(crate) fn full_rows(
    store: &dyn Store,
    registry: &Registry,
    committer: &StateCommitter,
    covered: u64,
) -> Result<(Vec<StateRow>, NonceRows), StoreError> {
    let mut out: Vec<StateRow> =
        registry.export_records().iter().map(|r| (record_key(&r.key()), Some(r.encode()))).collect();
    out.extend(committer.records().map(|(k, v)| (state_row_key(k), Some(v.encode()))));
    let mut rows = NonceRows::default();
    for (second, (key, value)) in nonce_rows(&registry.nonce_pairs(), covered, registry.clock_ms()) {
        out.push((key.clone(), Some(value)));
        rows.0.entry(second).or_default().push(key);
    }
    out.push(cursor_row(registry, covered));
    let written: HashSet<Vec<u8>> = out.iter().map(|(k, _)| k.clone()).collect();
    // Episode rows are not derived from the entries: a rewrite keeps them.
    let stale = store
        .scan_state(b"")?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !written.contains(k) && !crate::integrity_episodes::is_episode_row(k));
    let mut rows_out: Vec<StateRow> = stale.map(|k| (k, None)).collect();
    rows_out.extend(out);
    Ok((rows_out, rows))
}

/// Writes the whole state of `registry`, which must be the replay of the
/// store's every entry, in one synced state-only batch.
pub fn persist(
    store: &dyn Store,
    registry: &Registry,
    committer: &StateCommitter,
) -> Result<NonceRows, StoreError> {
    let size = store.tree_size()?;
    let (state_rows, rows) = full_rows(store, registry, committer, size)?;
    store.append_batch(&Batch { start: size, state_rows, ..Batch::default() })?;
    Ok(rows)
}

/// A registry loaded from the store without writing to it.
#[derive(Debug)]
pub struct Loaded {
    /// The registry: the replay of every entry of the store.
    pub registry: Registry,
    /// Its state map, in step with it (pending changes of statements after
    /// the last commitment leaf included).
    pub committer: StateCommitter,
    /// Entries replayed because the persisted state did not cover them
    /// (every entry when there was none).
    pub replayed: u64,
    /// The nonce rows in the store, valid when `replayed` is 0.
    pub rows: NonceRows,
}

/// The persisted state plus the replay of the entries it does not cover.
/// A state that does not read back is logged and replaced by a replay
/// from the first entry: the log is the source of truth.
pub fn load(store: &dyn Store, config: Config) -> Result<Loaded, RegistryError> {
    let size = store.tree_size()?;
    let fresh = || (Registry::new(config), StateCommitter::new(), 0, NonceRows::default());
    let (mut registry, mut committer, covered, rows) = match read(store, config) {
        Ok(Some(p)) if p.covered <= size => (p.registry, p.committer, p.covered, p.rows),
        Ok(Some(p)) => {
            tracing::warn!(
                covered = p.covered,
                size,
                "the registry state covers entries the log lacks; replaying"
            );
            fresh()
        }
        Ok(None) => fresh(),
        Err(e) => {
            tracing::warn!(error = %e, "the persisted registry state does not read back; replaying");
            fresh()
        }
    };
    replay_range(&mut registry, &mut committer, store, covered, size)?;
    Ok(Loaded { registry, committer, replayed: size - covered, rows })
}

#[cfg(test)]
#[path = "registry_state_tests.rs"]
mod tests;
