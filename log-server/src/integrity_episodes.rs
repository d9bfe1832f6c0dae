//! Which digests are in an open integrity episode ([`crate::api::integrity`]):
//! one row per digest in the store's `state` family, `i` || digest (32
//! bytes) -> the index of the entry that opened the episode (u64 BE).
//!
//! The row is put in the same write as that entry (the admission's seal,
//! [`crate::registry`]) and deleted when a whole read of the digest
//! verifies again, and start-up reads the rows back: after a restart or a
//! crash the set is exactly the violations the log has logged and not
//! seen repaired, so a still-corrupted artifact gets no second entry and a
//! repaired one is not taken for still open.
//!
//! The end of an episode is not an entry, so the rows cannot be derived
//! from the log: a full rewrite of the registry's state keeps them, and
//! `custody-log restore` (which rebuilds a database from entries alone)
//! starts with none, erring towards one more entry, never one fewer.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use custody_registry::names::Digest;
use custody_standards::Hash;

use crate::store::{Batch, StateRow, Store, StoreError};

/// Prefix of the episode rows in the `state` family.
pub const EPISODE_PREFIX: u8 = b'i';
/// Attempts at the state-only write that ends an episode, each of which
/// may lose the race for the tree size to a batch of the sequencer.
const WRITE_ATTEMPTS: usize = 16;

/// The `state` row key of `digest`'s episode.
pub fn row_key(digest: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(EPISODE_PREFIX);
    k.extend_from_slice(&digest.0 .0);
    k
}

/// Whether a `state` row key is an episode row (kept by full rewrites of
/// the registry's state, which does not derive them).
pub fn is_episode_row(key: &[u8]) -> bool {
    key.first() == Some(&EPISODE_PREFIX)
}

/// The row that opens `digest`'s episode with the entry at `index`,
/// written in that entry's batch.
pub fn open_row(digest: &Digest, index: u64) -> StateRow {
    (row_key(digest), Some(index.to_be_bytes().to_vec()))
}

/// Where a digest's episode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Episode {
    /// Its entry is submitted but not yet durable. `end`: a whole read
    /// verified meanwhile, so the row goes as soon as the entry (and the
    /// row, in its batch) has landed; deleting it earlier could let the
    /// batch put it back afterwards.
    Pending { end: bool },
    /// Its entry and row are durable.
    Open,
}

/// The open episodes: the durable rows, plus the entries on their way.
#[derive(Debug, Default)]
pub struct IntegrityEpisodes {
    episodes: Mutex<HashMap<Digest, Episode>>,
}

impl IntegrityEpisodes {
    /// The episodes the store's rows hold open.
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut episodes = HashMap::new();
        for (key, _) in store.scan_state(&[EPISODE_PREFIX])? {
            let digest = key.get(1..).and_then(|d| <[u8; 32]>::try_from(d).ok()).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "integrity episode row {} does not name a digest",
                    hex::encode(&key)
                ))
            })?;
            episodes.insert(Digest(Hash(digest)), Episode::Open);
        }
        Ok(IntegrityEpisodes { episodes: Mutex::new(episodes) })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Digest, Episode>> {
        self.episodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A violation of `digest` was found: true if no episode was open (the
    /// caller logs it, then calls [`Self::logged`] or [`Self::failed`]),
    /// false if one is (nothing to log).
    pub fn begin(&self, digest: Digest) -> bool {
        let mut episodes = self.lock();
        match episodes.get_mut(&digest) {
            None => {
                episodes.insert(digest, Episode::Pending { end: false });
                true
            }
            // Corrupted again after a verified read: the pending entry
            // covers it, and the episode goes on.
            Some(Episode::Pending { end }) => {
                *end = false;
                false
            }
            Some(Episode::Open) => false,
        }
    }

    /// The entry of `digest`'s violation, and its row, are durable.
    pub fn logged(&self, digest: &Digest, store: &dyn Store) {
        let mut episodes = self.lock();
        match episodes.get(digest) {
            Some(Episode::Pending { end: true }) => {
                episodes.insert(*digest, Episode::Open);
                end_open(&mut episodes, digest, store);
            }
            Some(Episode::Pending { end: false }) => {
                episodes.insert(*digest, Episode::Open);
            }
            Some(Episode::Open) | None => {}
        }
    }

    /// Logging `digest`'s violation failed, so nothing was written: a later
    /// violation is logged anew.
    pub fn failed(&self, digest: &Digest) {
        self.lock().remove(digest);
    }

    /// A whole read of `digest` verified: its episode (if any) ends, its
    /// row deleted in a synced write. Called on every verified read, so
    /// the common case (no episode) only looks at the map; the write
    /// happens once per episode, under the lock, so a violation found
    /// right after it opens a new episode only once the row is gone.
    pub fn end(&self, digest: &Digest, store: &dyn Store) {
        let mut episodes = self.lock();
        match episodes.get_mut(digest) {
            None => {}
            Some(Episode::Pending { end }) => *end = true,
            Some(Episode::Open) => end_open(&mut episodes, digest, store),
        }
    }

    /// Whether `digest`'s episode is open (or its entry on the way).
    pub fn is_open(&self, digest: &Digest) -> bool {
        self.lock().contains_key(digest)
    }
}

/// Deletes the row of `digest`'s open episode, then forgets it; a failed
/// write keeps it open, to be retried by the next verified read.
fn end_open(episodes: &mut HashMap<Digest, Episode>, digest: &Digest, store: &dyn Store) {
    match delete_row(store, digest) {
        Ok(()) => {
            episodes.remove(digest);
        }
        Err(e) => tracing::error!(
            %digest,
            error = %e,
            "cannot end the integrity episode; the next verified read retries"
        ),
    }
}

/// A state-only batch at the current tree size deleting `digest`'s row,
/// retried when a batch of entries moved the size in between.
fn delete_row(store: &dyn Store, digest: &Digest) -> Result<(), StoreError> {
    let state_rows = vec![(row_key(digest), None)];
    let mut attempt = 1;
    loop {
        let start = store.tree_size()?;
        match store.append_batch(&Batch { start, state_rows: state_rows.clone(), ..Batch::default() }) {
            Err(StoreError::Conflict { .. }) if attempt < WRITE_ATTEMPTS => attempt += 1,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RocksStore;

    fn digest(b: &[u8]) -> Digest {
        Digest(custody_standards::hash::sha256(b))
    }

    fn put(store: &RocksStore, rows: Vec<StateRow>) {
        let start = store.tree_size().unwrap();
        store.append_batch(&Batch { start, state_rows: rows, ..Batch::default() }).unwrap();
    }

    #[test]
    fn open_episodes_survive_a_reopen_and_an_ended_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (digest(b"a"), digest(b"b"));
        {
            let store = RocksStore::open(&dir.path().join("db")).unwrap();
            let eps = IntegrityEpisodes::load(&store).unwrap();
            assert!(eps.begin(a) && eps.begin(b));
            assert!(!eps.begin(a), "one entry per episode");
            // The admission writes the rows with the entries.
            put(&store, vec![open_row(&a, 3), open_row(&b, 4)]);
            eps.logged(&a, &store);
            eps.logged(&b, &store);
            eps.end(&b, &store);
            assert!(eps.is_open(&a) && !eps.is_open(&b));
        }
        let store = RocksStore::open(&dir.path().join("db")).unwrap();
        let eps = IntegrityEpisodes::load(&store).unwrap();
        assert!(eps.is_open(&a), "an open episode was forgotten");
        assert!(!eps.begin(a), "an open episode was logged again");
        assert!(eps.begin(b), "an ended episode was taken for open");
    }

    #[test]
    fn a_read_verified_while_the_entry_is_on_its_way_ends_the_episode_once_it_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&dir.path().join("db")).unwrap();
        let eps = IntegrityEpisodes::load(&store).unwrap();
        let a = digest(b"a");
        assert!(eps.begin(a));
        eps.end(&a, &store);
        assert!(eps.is_open(&a), "ended before its row was written");
        put(&store, vec![open_row(&a, 7)]);
        eps.logged(&a, &store);
        assert!(!eps.is_open(&a));
        assert!(store.scan_state(&[EPISODE_PREFIX]).unwrap().is_empty(), "the row outlived its episode");
        // Logging failed: nothing open, the next violation is logged.
        assert!(eps.begin(a));
        eps.failed(&a);
        assert!(eps.begin(a));
    }
}
