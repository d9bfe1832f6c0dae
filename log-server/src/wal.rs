//! Recovery point zero (`--recovery-point-zero`): every batch of entries is
//! written to the bucket as a write-ahead segment *before* it is made
//! durable locally, and so before any of its entries is acknowledged.
//! Losing the log's disk then loses nothing acknowledged: `custody-log
//! restore` replays the segments past the last checkpoint in the bucket.
//!
//! A segment is `wal/<start>` (20 decimal digits, so names sort in index
//! order) holding the batch's entries, each as a big-endian u16 length and
//! its bytes (the entry-bundle encoding of tlog-tiles, without its 256-entry
//! limit: a batch may be larger). Naming by start alone makes a retry
//! safe: if the local write fails after the segment was written, nothing
//! was acknowledged, and the next batch, which starts at the same index,
//! replaces the segment. Segments below the bucket's checkpoint are removed
//! once its entry bundles are written ([`prune`]). The tree lives under
//! [`crate::bucket::WAL`], which stays private: it holds entries no
//! checkpoint covers yet.

use std::sync::Arc;

use custody_standards::entries::{decode_sequence, EntryError};
use custody_standards::{Hash, HashReader, NodeId, ReadError};

use crate::bucket::{Bucket, BucketError, Caching, WAL};
use crate::store::{Batch, IndexRow, MemoryUsage, Store, StoreError, StoredStateRow};

/// Longest entry a segment can carry (its length prefix is a u16).
const MAX_ENTRY: usize = u16::MAX as usize;

/// Why a segment could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The segment's bytes do not decode.
    #[error("write-ahead segment {name} is malformed: {source}")]
    Malformed {
        /// Object name.
        name: String,
        /// What is wrong.
        #[source]
        source: EntryError,
    },
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
}

/// The object name of the segment starting at entry `start`.
pub fn segment_name(start: u64) -> String {
    format!("{WAL}/{start:020}")
}

/// The start index named by a segment's object name, if it is one.
pub fn segment_start(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(WAL)?.strip_prefix('/')?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// Encodes a batch's entries. Entries longer than a u16 never reach the
/// sequencer (the entry cap is 65535), so this cannot fail on its input.
pub fn encode_segment(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for e in entries {
        let len = e.len().min(MAX_ENTRY);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&e[..len]);
    }
    out
}

/// Decodes a segment into its entries.
pub fn decode_segment(name: &str, data: &[u8]) -> Result<Vec<Vec<u8>>, SegmentError> {
    let entries =
        decode_sequence(data).map_err(|source| SegmentError::Malformed { name: name.to_owned(), source })?;
    Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
}

/// Removes the segments wholly below `size` (those followed by a segment
/// starting at or below it). Best effort: a segment left behind is only
/// replayed and found already present by a restore.
pub async fn prune(bucket: &Bucket, size: u64) -> Result<(), BucketError> {
    let starts: Vec<u64> = bucket.list(WAL).await?.iter().filter_map(|n| segment_start(n)).collect();
    for pair in starts.windows(2) {
        if pair[1] <= size {
            bucket.delete(&segment_name(pair[0])).await?;
        }
    }
    Ok(())
}

/// A [`Store`] that writes each batch's entries to the bucket before the
/// inner store makes them durable.
pub struct WalStore {
    inner: Arc<dyn Store>,
    bucket: Bucket,
    runtime: tokio::runtime::Handle,
}

impl WalStore {
    /// Wraps `inner`. `runtime` runs the bucket writes; `append_batch` is
    /// called from blocking threads (the sequencer commits on the blocking
    /// pool), never from the runtime's own workers.
    pub fn new(inner: Arc<dyn Store>, bucket: Bucket, runtime: tokio::runtime::Handle) -> Self {
        WalStore { inner, bucket, runtime }
    }
}

impl HashReader for WalStore {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.inner.read_hashes(ids)
    }
}

impl Store for WalStore {
    fn tree_size(&self) -> Result<u64, StoreError> {
        self.inner.tree_size()
    }

    fn append_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if !batch.entries.is_empty() {
            // A batch that does not start at the tree size would be refused
            // below; do not let it replace the segment of a durable batch.
            let size = self.inner.tree_size()?;
            if batch.start != size {
                return Err(StoreError::Conflict { expected: size, got: batch.start });
            }
            let body = encode_segment(&batch.entries);
            let name = segment_name(batch.start);
            let put = self.bucket.put(&name, body, "application/octet-stream", Caching::Private);
            self.runtime.block_on(put).map_err(|e| StoreError::Bucket(e.to_string()))?;
        }
        self.inner.append_batch(batch)
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.entry(index)
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.entries(start, end)
    }

    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.inner.index_of(leaf_hash)
    }

    fn put_published_checkpoint(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        self.inner.put_published_checkpoint(size, note)
    }

    fn published_checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.published_checkpoint(size)
    }

    fn latest_published_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.inner.latest_published_checkpoint()
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_meta(key)
    }

    fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_meta(key, value)
    }

    fn scan_index(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<IndexRow>, StoreError> {
        self.inner.scan_index(prefix, after, limit)
    }

    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<StoredStateRow>, StoreError> {
        self.inner.scan_state(prefix)
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        self.inner.memory_usage()
    }

    fn read_hashes_in_memory(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.inner.read_hashes_in_memory(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_refuse_malformed_bytes() {
        let entries = vec![b"a".to_vec(), Vec::new(), vec![7; 65_535], b"last".to_vec()];
        let body = encode_segment(&entries);
        assert_eq!(decode_segment("s", &body).unwrap(), entries);
        for bad in [&body[..body.len() - 1], &body[..1], &[][..], &[0, 5, 1][..]] {
            assert!(matches!(decode_segment("s", bad), Err(SegmentError::Malformed { .. })));
        }
    }

    #[test]
    fn names_sort_in_index_order_and_parse_back() {
        assert_eq!(segment_name(42), "wal/00000000000000000042");
        assert!(segment_name(9) < segment_name(10) && segment_name(u64::MAX).len() == 24);
        for n in [0, 9, 10, u64::MAX] {
            assert_eq!(segment_start(&segment_name(n)), Some(n));
        }
        for bad in
            ["wal/42", "log/00000000000000000042", "wal/0000000000000000004x", "wal/000000000000000000042"]
        {
            assert_eq!(segment_start(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn prune_keeps_the_segment_that_reaches_past_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::open(&format!("file://{}", dir.path().display())).unwrap();
        for start in [0u64, 5, 9, 20] {
            let body = encode_segment(&[b"x".to_vec()]);
            bucket
                .put(&segment_name(start), body, "application/octet-stream", Caching::Private)
                .await
                .unwrap();
        }
        prune(&bucket, 9).await.unwrap();
        let left: Vec<_> = bucket.list(WAL).await.unwrap().iter().filter_map(|n| segment_start(n)).collect();
        assert_eq!(left, vec![9, 20]);
    }
}
