//! The static read path: every published checkpoint, with the tiles and
//! entry bundles a client of that checkpoint needs, written to the bucket
//! in C2SP tlog-tiles layout under [`crate::bucket::READ_PATH`].
//!
//! Order makes the bucket a consistent read path at every moment: the new
//! full tiles, the partial tiles and the entry bundles of a checkpoint's
//! size are written first, the `checkpoint` object last, so whoever reads
//! a checkpoint from the bucket finds every object it needs (tlog-tiles:
//! "Logs MUST serve partial tiles corresponding to tree sizes for which a
//! checkpoint was produced"). The checkpointer publishes a checkpoint only
//! after its mirror succeeded, so the log's own `/checkpoint` is never
//! ahead of the bucket either, and every published size has its partial
//! tiles there. Full tiles never change and are marked immutable for
//! caches; partial tiles are prefixes of their final tile and never change
//! either. The size mirrored so far is kept in the store's meta
//! [`META_BUCKET_SIZE`], so a restart writes only what is new.

use std::sync::Arc;

use custody_standards::entries::{encode_bundle, EntryError};
use custody_standards::tile_data::{read_tile_data, TileDataError};
use custody_standards::tiles::{
    EntryBundle, Tile, TilePath, CHECKPOINT_CONTENT_TYPE, CHECKPOINT_PATH, ENTRY_BUNDLE_CONTENT_TYPE,
    TILE_CONTENT_TYPE, TILE_HEIGHT, TILE_WIDTH,
};
use tokio::task::JoinSet;

use crate::bucket::{Bucket, BucketError, Caching, READ_PATH};
use crate::store::{decode_u64, Store, StoreError};

/// Meta key of the largest checkpoint size whose read path is complete in
/// the bucket.
pub const META_BUCKET_SIZE: &[u8] = b"bucket_size";
/// Objects built in one blocking read of the store.
const CHUNK: usize = 256;
/// Uploads in flight at once.
const IN_FLIGHT: usize = 16;
/// How often write-ahead segments are pruned. Pruning lists the bucket's
/// segment prefix, a metadata query a distributed store answers by quorum;
/// at one round per batch that was a listing per round for segments that
/// only exist in recovery-point-zero mode (or after switching out of it).
/// A segment kept a little longer only costs a restore a comparison.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Why mirroring a checkpoint failed (the checkpointer retries next round).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The bucket refused a write.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tile could not be built from the stored hashes.
    #[error("building a tile: {0}")]
    Tile(#[from] TileDataError),
    /// An entry bundle could not be encoded.
    #[error("building an entry bundle: {0}")]
    Bundle(#[from] EntryError),
    /// A background task died.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The store lacks entries below its own tree size.
    #[error("the store returned {got} entries for [{start}, {end})")]
    MissingEntries {
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
        /// Entries returned.
        got: usize,
    },
}

/// The tiles and entry bundles a client of a checkpoint of size `new`
/// needs that a client of size `old` did not: at each level, the tiles
/// from the one `old` left partial (or the next) to the last one of `new`,
/// at their width at `new`. Empty when `new <= old`.
pub fn objects_between(old: u64, new: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    if new <= old {
        return out;
    }
    let width = u64::from(TILE_WIDTH);
    for index in (old / width)..new.div_ceil(width) {
        out.extend(EntryBundle::at_size(index, new).map(TilePath::Entries));
    }
    for level in 0..=custody_standards::tiles::MAX_TILE_LEVEL {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let (count_old, count_new) =
            (old.checked_shr(shift).unwrap_or(0), new.checked_shr(shift).unwrap_or(0));
        if count_new == count_old {
            // No new hash at this height, so none above it either.
            break;
        }
        for index in (count_old / width)..count_new.div_ceil(width) {
            out.extend(Tile::at_size(level, index, new).map(TilePath::Hash));
        }
    }
    out
}

/// Writes published checkpoints' read paths to a bucket.
pub struct TileMirror {
    bucket: Bucket,
    store: Arc<dyn Store>,
    mirrored: u64,
    /// When segments were last pruned; `None` until the first round, which
    /// always prunes (segments a previous run left).
    pruned: Option<std::time::Instant>,
}

impl std::fmt::Debug for TileMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileMirror").field("bucket", &self.bucket).field("mirrored", &self.mirrored).finish()
    }
}

impl TileMirror {
    /// A mirror resuming from what the store records as mirrored.
    pub fn new(bucket: Bucket, store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mirrored = match store.get_meta(META_BUCKET_SIZE)? {
            Some(v) => {
                decode_u64(&v).ok_or_else(|| StoreError::Corrupt("meta bucket_size is not a u64".into()))?
            }
            None => 0,
        };
        Ok(TileMirror { bucket, store, mirrored, pruned: None })
    }

    /// The largest size whose read path is complete in the bucket.
    pub fn mirrored(&self) -> u64 {
        self.mirrored
    }

    /// Writes what a checkpoint of `size` needs, then the checkpoint `note`
    /// itself, then records `size` as mirrored. A size at or below the
    /// mirrored one rewrites only the checkpoint (a republished note with
    /// more cosignatures).
    pub async fn publish(&mut self, size: u64, note: &[u8]) -> Result<(), MirrorError> {
        let objects = objects_between(self.mirrored, size);
        for chunk in objects.chunks(CHUNK) {
            let store = Arc::clone(&self.store);
            let chunk = chunk.to_vec();
            let bodies = tokio::task::spawn_blocking(move || build(&*store, &chunk)).await??;
            self.upload(bodies).await?;
        }
        let rel = format!("{READ_PATH}/{CHECKPOINT_PATH}");
        self.bucket.put(&rel, note.to_vec(), CHECKPOINT_CONTENT_TYPE, Caching::Revalidate).await?;
        if size > self.mirrored {
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || store.put_meta(META_BUCKET_SIZE, &size.to_be_bytes()))
                .await??;
            self.mirrored = size;
        }
        // The bundles now hold what the write-ahead segments below `size`
        // held; a segment left behind only costs a restore a comparison.
        if self.pruned.map_or(true, |at| at.elapsed() >= PRUNE_EVERY) {
            self.pruned = Some(std::time::Instant::now());
            if let Err(e) = crate::wal::prune(&self.bucket, size).await {
                tracing::warn!(error = %e, "removing write-ahead segments below the checkpoint failed");
            }
        }
        Ok(())
    }

    async fn upload(&self, bodies: Vec<(TilePath, Vec<u8>)>) -> Result<(), MirrorError> {
        let mut running = JoinSet::new();
        for (path, body) in bodies {
            if running.len() >= IN_FLIGHT {
                if let Some(done) = running.join_next().await {
                    done??;
                }
            }
            let bucket = self.bucket.clone();
            running.spawn(async move {
                let (content_type, full) = match path {
                    TilePath::Hash(t) => (TILE_CONTENT_TYPE, t.is_full()),
                    TilePath::Entries(b) => (ENTRY_BUNDLE_CONTENT_TYPE, b.is_full()),
                };
                let caching = if full { Caching::Immutable } else { Caching::Revalidate };
                bucket.put(&format!("{READ_PATH}/{}", path.path()), body, content_type, caching).await
            });
        }
        while let Some(done) = running.join_next().await {
            done??;
        }
        Ok(())
    }
}

/// The bodies of `objects`, read from the store.
fn build(store: &dyn Store, objects: &[TilePath]) -> Result<Vec<(TilePath, Vec<u8>)>, MirrorError> {
    let mut out = Vec::with_capacity(objects.len());
    for &path in objects {
        let body = match path {
            TilePath::Hash(t) => read_tile_data(&t, &store)?,
            TilePath::Entries(b) => {
                let start = b.index() * u64::from(TILE_WIDTH);
                let end = start + u64::from(b.width());
                let entries = store.entries(start, end)?;
                if entries.len() as u64 != end - start {
                    return Err(MirrorError::MissingEntries { start, end, got: entries.len() });
                }
                let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                encode_bundle(&refs)?
            }
        };
        out.push((path, body));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "tile_mirror_tests.rs"]
mod tests;
