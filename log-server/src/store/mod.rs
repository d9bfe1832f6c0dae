//! Durable state of the log: one narrow [`Store`] trait shaped by what the
//! sequencer, the checkpointer and `custody-standards` need, and [`RocksStore`],
//! its one implementation on RocksDB.
//!
//! Column families (integer keys are u64 big-endian, so RocksDB's byte
//! order is index order and range scans stream in sequence); the packed
//! encodings of the first four are in [`layout`]:
//! - `entries`: entries, 16 to a row
//! - `hashes`: stored hashes of levels 0, 4, 8, ..., 16 to a row (see
//!   [`custody_standards::stored`]: one hash per complete subtree, write-once);
//!   the levels between are recomputed on read
//! - `leaf_index`: leaf hash -> index, bucketed by the hash's first bytes
//!   (deduplication and lookup by hash)
//! - `registry_index`: secondary indexes of the registry (access history
//!   per digest, entries per actor), written in the same batch as the
//!   entries they index (see [`crate::registry`])
//! - `checkpoints`: size -> published checkpoint note (the history of every
//!   published checkpoint, so consistency between any two can be served)
//! - `meta`: `tree_size` -> u64, `format` -> u64, plus keys owned by other
//!   modules
//! - `state`: state derived from the entries, owned by the admission (the
//!   registry's persisted state, see [`crate::registry`]), written in the
//!   same batch as the entries it covers; and the open integrity episodes
//!   ([`crate::integrity_episodes`]), each put with the entry that opens it
//!
//! A batch of entries, its leaf index rows, its stored hashes and the new
//! tree size go into ONE synced `WriteBatch`: after a crash the database holds
//! either the whole batch or none of it, so the tree is always complete.

mod batch_check;
pub mod layout;
mod rocks;
mod state_rows;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use rocks::{RocksStore, StoreTuning, MIN_CACHE_BYTES};

use custody_standards::{Hash, HashReader, NodeId, ReadError};

/// Column family: entries, 16 to a row.
pub const CF_ENTRIES: &str = "entries";
/// Column family: stored hashes of every fourth level, 16 to a row.
pub const CF_HASHES: &str = "hashes";
/// Column family: leaf hash -> index, in buckets.
pub const CF_LEAF_INDEX: &str = "leaf_index";
/// Column family: size -> published checkpoint note.
pub const CF_CHECKPOINTS: &str = "checkpoints";
/// Column family: small metadata values.
pub const CF_META: &str = "meta";
/// Column family: registry secondary index keys.
pub const CF_REGISTRY_INDEX: &str = "registry_index";
/// Column family: state derived from the entries, written in their batch
/// (see [`Batch::state_rows`]). A database created before it existed gets
/// it, empty, on its first writable open; read-only opens do without it.
pub const CF_STATE: &str = "state";
/// All column families, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 7] =
    [CF_ENTRIES, CF_HASHES, CF_LEAF_INDEX, CF_CHECKPOINTS, CF_META, CF_REGISTRY_INDEX, CF_STATE];

/// A secondary index row: a prefix naming what is indexed, then the u64 BE
/// index of the entry (so a prefix scan answers a query in log order).
/// Stored packed, 256 indexes to a row ([`layout::posting_row`]); reads
/// see the logical rows.
pub type IndexRow = Vec<u8>;
/// Meta key of the durable tree size; written only by [`Store::append_batch`].
pub const META_TREE_SIZE: &[u8] = b"tree_size";
/// Meta key of the storage format (u64 BE), written when a database is
/// created; a database of another format is refused at open.
pub const META_FORMAT: &[u8] = b"format";
/// The storage format this build reads and writes: 2 is the packed layout
/// of [`layout`]. Format 1 (one row per record, before issue 8's disk
/// work) had no `format` key.
pub const FORMAT: u64 = 2;

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// RocksDB itself failed (I/O, lock held by another process, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored data violates the layout (wrong value length, missing row), or
    /// a caller handed in a malformed batch.
    #[error("store is inconsistent: {0}")]
    Corrupt(String),
    /// The database was written in another storage format.
    #[error("the database is in storage format {found}, but this build reads format {FORMAT}; see docs/operations.md (storage format)")]
    Format {
        /// The format recorded in the database (1 when none is).
        found: u64,
    },
    /// The bucket did not take the batch's write-ahead segment
    /// (`--recovery-point-zero`). Nothing was written locally either.
    #[error("the bucket refused the batch's write-ahead segment: {0}")]
    Bucket(String),
    /// A batch did not start at the current tree size (a second writer, or a
    /// sequencer whose view is stale). Nothing was written.
    #[error("batch starts at {got} but the tree size is {expected}")]
    Conflict {
        /// The durable tree size.
        expected: u64,
        /// The batch's start.
        got: u64,
    },
}

/// One sequenced batch, ready to be made durable in a single write.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Index of the first entry (must equal the current tree size).
    pub start: u64,
    /// Entry bytes, in index order.
    pub entries: Vec<Vec<u8>>,
    /// `leaf_hashes[i]` is the leaf hash of `entries[i]`.
    pub leaf_hashes: Vec<Hash>,
    /// Every stored hash the batch creates (from [`custody_standards::Appender::append`]).
    pub nodes: Vec<(NodeId, Hash)>,
    /// Registry index rows of the batch's entries, made durable with them.
    pub index_rows: Vec<IndexRow>,
    /// Rows of the `state` family to put (`Some`) or delete (`None`), in
    /// the same write: state derived from the entries (the registry's), so
    /// that it is durable exactly when they are. A batch of state rows
    /// only (no entries) is written too.
    pub state_rows: Vec<StateRow>,
}

/// A row of the `state` family: key, and the value to put or `None` to
/// delete the key.
pub type StateRow = (Vec<u8>, Option<Vec<u8>>);

/// A stored row of the `state` family: key and value.
pub type StoredStateRow = (Vec<u8>, Vec<u8>);

/// What the log needs from durable storage. Object safe, so the server holds
/// an `Arc<dyn Store>` and tests can substitute failing stores.
pub trait Store: HashReader + Send + Sync + 'static {
    /// Number of durable entries.
    fn tree_size(&self) -> Result<u64, StoreError>;
    /// ONE synced (WriteOptions::set_sync(true)) WriteBatch: entries, leaf_index, stored hashes, tree_size.
    /// Err(Conflict) if batch.start != tree_size. Nothing is acknowledged before this returns Ok.
    fn append_batch(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Entry `index`, or `None` beyond the tree.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries `[start, end)`, clamped to the tree size; the caller caps the
    /// range length (this reads all of it into memory).
    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Index of the entry with this leaf hash, if the tree has one (the
    /// lowest, should two entries share it).
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError>;
    /// Records a published checkpoint (synced), keyed by its size.
    fn put_published_checkpoint(&self, size: u64, note: &[u8]) -> Result<(), StoreError>;
    /// The published checkpoint of exactly this size, if any.
    fn published_checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The published checkpoint with the largest size.
    fn latest_published_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// A metadata value.
    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a metadata value (synced). `tree_size` is refused: only
    /// [`Store::append_batch`] may move it.
    fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Up to `limit` registry index keys starting with `prefix`, in key
    /// order, strictly after `after` when given (pagination). `prefix` is
    /// a whole row prefix or shorter, never part of the index.
    fn scan_index(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Every `state` row whose key starts with `prefix`, in key order. The
    /// default (a store that keeps no state rows) has none, which only
    /// costs its users a rebuild from the entries.
    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<StoredStateRow>, StoreError> {
        let _ = prefix;
        Ok(Vec::new())
    }
    /// What the store's own caches and buffers hold, for `/metrics`; `None`
    /// for stores without any (tests' in-memory stores).
    fn memory_usage(&self) -> Option<MemoryUsage> {
        None
    }
    /// [`HashReader::read_hashes`] answered from memory only (memtables and
    /// block cache), failing with [`NotInMemory`] if any hash would need a
    /// disk read. Lets request handlers answer from memory on their own
    /// thread and go to the blocking pool only when they must. The default
    /// never answers.
    fn read_hashes_in_memory(&self, _ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        Err(ReadError::Backend(Box::new(NotInMemory)))
    }
}

/// A memory-only read needed the disk; retry it with a normal read.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("some hashes are not in memory")]
pub struct NotInMemory;

impl NotInMemory {
    /// Whether `e` is this marker (rather than a real read failure).
    pub fn is(e: &ReadError) -> bool {
        matches!(e, ReadError::Backend(b) if b.downcast_ref::<NotInMemory>().is_some())
    }
}

/// A [`HashReader`] over [`Store::read_hashes_in_memory`].
pub struct InMemory<'a>(pub &'a dyn Store);

impl HashReader for InMemory<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.0.read_hashes_in_memory(ids)
    }
}

/// RocksDB's memory and files, as reported in `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes of SST files per column family (what each kind of row costs
    /// on disk once flushed; the write-ahead log is not included).
    pub sst_bytes: Vec<(&'static str, u64)>,
    /// Bytes in the block cache, memtables charged to it included.
    pub cache: u64,
    /// Bytes of memtables.
    pub memtables: u64,
    /// Bytes of table readers held outside the cache.
    pub table_readers: u64,
}

/// Decodes an 8-byte big-endian integer; `None` on any other length.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
pub(crate) mod tests;
