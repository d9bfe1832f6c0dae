//! `custody-log restore`: rebuilds a data directory whose disk was lost
//! from the bucket alone, with the log key from the operator's backup (the
//! bucket never holds a secret).
//!
//! 1. The bucket's `checkpoint` must open with the key: a bucket of
//!    another log, or one whose checkpoint was forged, is refused.
//! 2. Every entry up to its size is read from the entry bundles, each
//!    bundle decoded at its width at that size.
//! 3. With recovery point zero, the write-ahead segments continue the log
//!    past the checkpoint, as far as they chain without a gap.
//! 4. The entries are appended to a fresh database, their tree hashes
//!    computed, and (for a registry) every statement replayed exactly as at
//!    start-up: signatures, authorization, each commitment leaf against the
//!    replayed state, and the secondary index rows rebuilt.
//! 5. The tree's root at the checkpoint's size must equal the checkpoint's
//!    root. Only then is the database moved into place with the
//!    checkpoint recorded as published and as mirrored; on any failure the
//!    data directory is left without a database.

use std::path::{Path, PathBuf};

use custody_registry::commitment::StateCommitter;
use custody_registry::registry::{Config, Registry};
use custody_standards::checkpoint::open_checkpoint;
use custody_standards::entries::decode_bundle;
use custody_standards::tiles::{EntryBundle, CHECKPOINT_PATH, TILE_WIDTH};
use custody_standards::{leaf_hash, tree_hash, Appender, Checkpoint};
use tokio::task::JoinSet;

use crate::bucket::{Bucket, BucketError, READ_PATH, WAL};
use crate::init::{self, InitError, DB_DIR, KEY_FILE, META_MODE, META_ORIGIN, VKEY_FILE};
use crate::registry::{replay_entry, RegistryError};
use crate::store::{Batch, RocksStore, Store, StoreError};
use crate::tile_mirror::META_BUCKET_SIZE;
use crate::wal::{decode_segment, segment_start, SegmentError};

/// Largest checkpoint object read.
const MAX_CHECKPOINT: u64 = 1 << 20;
/// Largest entry bundle (256 entries of at most 65535 bytes).
const MAX_BUNDLE: u64 = 256 * (2 + 65_535);
/// Largest write-ahead segment (a batch of at most a million entries).
const MAX_SEGMENT: u64 = 1 << 36;
/// Bundles fetched at once.
const IN_FLIGHT: usize = 16;
/// Entries per database write.
const BATCH: usize = 4096;

/// Why a restore failed. Nothing is left at `<data-dir>/db`.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The data directory, key or database could not be set up.
    #[error(transparent)]
    Init(#[from] InitError),
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bucket holds no checkpoint.
    #[error("the bucket has no {READ_PATH}/{CHECKPOINT_PATH}: nothing was ever published to it")]
    NoCheckpoint,
    /// The bucket's checkpoint does not open with the key.
    #[error("the bucket's checkpoint is not this log's: {0}")]
    Checkpoint(String),
    /// An object of the read path is missing or malformed.
    #[error("{path}: {reason}")]
    Object {
        /// Object path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A write-ahead segment is malformed or contradicts the bundles.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A segment overlapping the checkpoint holds other entries.
    #[error("write-ahead segment at {start} differs from the logged entry {index}")]
    SegmentConflict {
        /// Segment start.
        start: u64,
        /// First differing entry.
        index: u64,
    },
    /// A statement does not replay.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A background task died.
    #[error("restore task failed: {0}")]
    Task(String),
    /// The rebuilt tree is not the checkpoint's.
    #[error("the entries in the bucket hash to {actual} at size {size}, but the checkpoint says {expected}")]
    RootMismatch {
        /// Checkpoint size.
        size: u64,
        /// Root in the checkpoint.
        expected: String,
        /// Root of the rebuilt tree.
        actual: String,
    },
    /// A proof computation failed on the rebuilt tree.
    #[error("tree hash of the rebuilt log: {0}")]
    Proof(#[from] custody_standards::ProofError),
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// What a restore rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Size of the checkpoint the log was verified against.
    pub checkpoint_size: u64,
    /// Entries restored in all (more than the checkpoint's size when
    /// write-ahead segments continued it).
    pub size: u64,
}

/// Restores `data_dir` (which must hold no log) from `bucket` with the
/// signer key in `key_file`. `registry` is false for a generic log.
pub async fn restore(
    bucket: &Bucket,
    data_dir: &Path,
    key_file: &Path,
    registry: bool,
    config: Config,
) -> Result<Restored, RestoreError> {
    let key = init::read_key_file(key_file)?;
    for p in [data_dir.join(KEY_FILE), data_dir.join(DB_DIR)] {
        if p.exists() {
            return Err(InitError::Exists(p).into());
        }
    }
    let note = bucket
        .get(&format!("{READ_PATH}/{CHECKPOINT_PATH}"), MAX_CHECKPOINT)
        .await?
        .ok_or(RestoreError::NoCheckpoint)?;
    let cp: Checkpoint = open_checkpoint(&note, &key.verifier())
        .map_err(|e| RestoreError::Checkpoint(e.to_string()))?
        .checkpoint;
    let mut entries = bundles(bucket, cp.size).await?;
    segments(bucket, &mut entries).await?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RestoreError::Io { path, source }
    };
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let building = data_dir.join("db.restoring");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(io(&building))?;
    }
    let size = entries.len() as u64;
    let cp_size = cp.size;
    let built = tokio::task::spawn_blocking({
        let building = building.clone();
        move || build(&building, entries, registry, config, &cp, &note)
    })
    .await
    .map_err(|e| RestoreError::Task(e.to_string()));
    if let Err(e) = built.and_then(|r| r) {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    let db = data_dir.join(DB_DIR);
    std::fs::rename(&building, &db).map_err(io(&db))?;
    init::write_secret(&data_dir.join(KEY_FILE), &key.to_private_string())?;
    let vkey = data_dir.join(VKEY_FILE);
    std::fs::write(&vkey, format!("{}\n", key.verifier())).map_err(io(&vkey))?;
    Ok(Restored { checkpoint_size: cp_size, size })
}

/// Every entry below `size`, from the entry bundles.
async fn bundles(bucket: &Bucket, size: u64) -> Result<Vec<Vec<u8>>, RestoreError> {
    let count = size.div_ceil(u64::from(TILE_WIDTH));
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut next = 0u64;
    while next < count {
        let end = (next + IN_FLIGHT as u64 * 4).min(count);
        let mut running = JoinSet::new();
        for index in next..end {
            let bucket = bucket.clone();
            running.spawn(async move {
                let b = EntryBundle::at_size(index, size).ok_or_else(|| RestoreError::Object {
                    path: format!("entry bundle {index}"),
                    reason: "beyond the tree".into(),
                })?;
                let path = format!("{READ_PATH}/{}", b.path());
                let body = bucket
                    .get(&path, MAX_BUNDLE)
                    .await?
                    .ok_or_else(|| RestoreError::Object { path: path.clone(), reason: "missing".into() })?;
                let entries = decode_bundle(&body, usize::from(b.width()))
                    .map_err(|e| RestoreError::Object { path, reason: e.to_string() })?;
                Ok::<_, RestoreError>((index, entries.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()))
            });
        }
        let mut got = Vec::new();
        while let Some(done) = running.join_next().await {
            let r = done.map_err(|e| RestoreError::Task(e.to_string()))?;
            got.push(r?);
        }
        got.sort_unstable_by_key(|(i, _)| *i);
        out.extend(got.into_iter().flat_map(|(_, e)| e));
        next = end;
    }
    Ok(out)
}

/// Appends the entries the write-ahead segments hold past `entries`, in a
/// chain without gaps; checks the part of a segment that overlaps them.
async fn segments(bucket: &Bucket, entries: &mut Vec<Vec<u8>>) -> Result<(), RestoreError> {
    for name in bucket.list(WAL).await? {
        let Some(start) = segment_start(&name) else { continue };
        let size = entries.len() as u64;
        if start > size {
            tracing::warn!(start, size, "write-ahead segment after a gap ignored");
            break;
        }
        let body = bucket.get(&name, MAX_SEGMENT).await?.unwrap_or_default();
        let seg = decode_segment(&name, &body)?;
        for (k, e) in seg.into_iter().enumerate() {
            let index = start + k as u64;
            match entries.get(index as usize) {
                Some(have) if *have == e => {}
                Some(_) => return Err(RestoreError::SegmentConflict { start, index }),
                None => entries.push(e),
            }
        }
    }
    Ok(())
}

/// Writes `entries` into a fresh database at `dir`, checks the tree
/// against `cp` and records it.
fn build(
    dir: &Path,
    entries: Vec<Vec<u8>>,
    registry: bool,
    config: Config,
    cp: &Checkpoint,
    note: &[u8],
) -> Result<(), RestoreError> {
    let store = RocksStore::open(dir)?;
    let mut replay = registry.then(|| (Registry::new(config), StateCommitter::new()));
    let mut appender = Appender::default();
    let mut index = 0u64;
    for chunk in entries.chunks(BATCH) {
        let mut batch = Batch { start: index, ..Batch::default() };
        for e in chunk {
            if let Some((reg, committer)) = replay.as_mut() {
                batch.index_rows.extend(replay_entry(reg, committer, e, index)?);
            }
            let leaf = leaf_hash(e);
            appender.append(leaf, &mut batch.nodes);
            batch.leaf_hashes.push(leaf);
            batch.entries.push(e.clone());
            index += 1;
        }
        store.append_batch(&batch)?;
    }
    let root = tree_hash(cp.size, &store)?;
    if root != cp.root {
        return Err(RestoreError::RootMismatch {
            size: cp.size,
            expected: cp.root.to_string(),
            actual: root.to_string(),
        });
    }
    store.put_meta(META_ORIGIN, cp.origin.as_bytes())?;
    store.put_published_checkpoint(cp.size, note)?;
    store.put_meta(META_BUCKET_SIZE, &cp.size.to_be_bytes())?;
    if let Some((reg, committer)) = replay {
        crate::registry_state::persist(&store, &reg, &committer)?;
        store.put_meta(META_MODE, b"registry")?;
    } else {
        store.put_meta(META_MODE, b"generic")?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
