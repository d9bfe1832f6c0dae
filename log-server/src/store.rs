//! Durable state of the log: one narrow [`Store`] trait shaped by what the
//! sequencer, the checkpointer and `custody-core` need, and [`RocksStore`],
//! its one implementation on RocksDB.
//!
//! Layout (column families; every integer key is u64 big-endian so that
//! RocksDB's byte order is index order and range scans stream in sequence):
//! - `entries`: index -> entry bytes
//! - `hashes`: level (u8) || index -> 32-byte stored hash (see
//!   [`custody_core::stored`]: one hash per complete subtree, write-once)
//! - `leaf_index`: leaf hash -> index (deduplication and lookup by hash)
//! - `checkpoints`: size -> published checkpoint note (the history of every
//!   published checkpoint, so consistency between any two can be served)
//! - `meta`: `tree_size` -> u64, plus keys owned by other modules
//! - `registry_index`: secondary indexes of the registry (access history
//!   per digest, entries per actor); keys only, written in the same batch as
//!   the entries they index (see [`crate::registry`])
//!
//! A batch of entries, its leaf index rows, its stored hashes and the new
//! tree size go into ONE synced `WriteBatch`: after a crash the database holds
//! either the whole batch or none of it, so the tree is always complete.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use custody_core::{Hash, HashReader, NodeId, ReadError, HASH_SIZE};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, ReadTier, WriteBatch, WriteBufferManager, WriteOptions, DB,
};

/// Column family: index -> entry bytes.
pub const CF_ENTRIES: &str = "entries";
/// Column family: level || index -> stored hash.
pub const CF_HASHES: &str = "hashes";
/// Column family: leaf hash -> index.
pub const CF_LEAF_INDEX: &str = "leaf_index";
/// Column family: size -> published checkpoint note.
pub const CF_CHECKPOINTS: &str = "checkpoints";
/// Column family: small metadata values.
pub const CF_META: &str = "meta";
/// Column family: registry secondary index keys.
pub const CF_REGISTRY_INDEX: &str = "registry_index";
/// All column families, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 6] =
    [CF_ENTRIES, CF_HASHES, CF_LEAF_INDEX, CF_CHECKPOINTS, CF_META, CF_REGISTRY_INDEX];

/// A secondary index row: a key in `registry_index` (the value is empty;
/// everything is in the key so a prefix scan answers a query).
pub type IndexRow = Vec<u8>;
/// Meta key of the durable tree size; written only by [`Store::append_batch`].
pub const META_TREE_SIZE: &[u8] = b"tree_size";

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
    /// Every stored hash the batch creates (from [`custody_core::Appender::append`]).
    pub nodes: Vec<(NodeId, Hash)>,
    /// Registry index rows of the batch's entries, made durable with them.
    pub index_rows: Vec<IndexRow>,
}

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
    /// Index of the entry with this leaf hash, if the tree has one.
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
    /// order, strictly after `after` when given (pagination).
    fn scan_index(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
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

/// Key of stored hash `id` in the `hashes` column family.
pub fn hash_key(id: NodeId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = id.level;
    k[1..].copy_from_slice(&id.index.to_be_bytes());
    k
}

/// Inverse of [`hash_key`]; `None` for a key of the wrong length.
pub fn parse_hash_key(key: &[u8]) -> Option<NodeId> {
    if key.len() != 9 {
        return None;
    }
    Some(NodeId::new(key[0], decode_u64(&key[1..])?))
}

/// Decodes an 8-byte big-endian integer; `None` on any other length.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The RocksDB store. Writes are serialised by an internal lock, so the
/// size check in [`Store::append_batch`] cannot race even if two writers
/// existed (the sequencer is the single writer by design).
pub struct RocksStore {
    db: DB,
    /// Kept so [`RocksStore::memory_usage`] can report it; RocksDB holds
    /// its own references.
    memory: Memory,
    /// Durable tree size, loaded at open and moved only after a successful
    /// batch write; reads of it are free.
    size: AtomicU64,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).field("size", &self.size).finish()
    }
}

/// RocksDB's memory, bounded by one number.
///
/// By default RocksDB gives every column family its own 64 MiB memtables
/// (two each, six families: up to 768 MiB) and keeps index and filter
/// blocks outside its 8 MiB block cache, where they grow with the data. So
/// the server's memory grew with the log (1.1 GiB at 10^7 entries). Here
/// one LRU cache holds data, index and filter blocks, and the memtables are
/// charged to that same cache through a write buffer manager: RocksDB's
/// memory is `cache_bytes` whatever the log's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTuning {
    /// Block cache plus memtables, in bytes.
    pub cache_bytes: usize,
}

/// Smallest cache accepted: below this the memtables alone would not fit.
pub const MIN_CACHE_BYTES: usize = 32 << 20;

impl Default for StoreTuning {
    /// 256 MiB: the upper levels of a 10^7-entry tree and the hot right
    /// edge fit, and the server stays well under 1 GiB.
    fn default() -> Self {
        StoreTuning { cache_bytes: 256 << 20 }
    }
}

/// The shared cache and write buffer manager of one open database.
struct Memory {
    cache: Cache,
    buffers: WriteBufferManager,
    /// Per-family memtable size: small enough that all six families' active
    /// memtables fit in the write budget at once.
    write_buffer: usize,
}

impl Memory {
    fn new(t: StoreTuning) -> Self {
        let total = t.cache_bytes.max(MIN_CACHE_BYTES);
        let cache = Cache::new_lru_cache(total);
        // A quarter for memtables: writes are sequential batches that are
        // flushed soon; reads (proofs, tiles) need the rest.
        let budget = total / 4;
        let buffers = WriteBufferManager::new_write_buffer_manager_with_cache(budget, false, cache.clone());
        let write_buffer = (budget / (2 * COLUMN_FAMILIES.len())).max(1 << 20);
        Memory { cache, buffers, write_buffer }
    }

    fn table(&self, bloom: bool) -> BlockBasedOptions {
        let mut t = BlockBasedOptions::default();
        t.set_block_cache(&self.cache);
        t.set_cache_index_and_filter_blocks(true);
        // Level-0 files are read on every miss; keep their index and filter
        // pinned so a burst of data blocks cannot evict them.
        t.set_pin_l0_filter_and_index_blocks_in_cache(true);
        if bloom {
            t.set_bloom_filter(10.0, false);
            t.set_optimize_filters_for_memory(true);
        }
        t
    }
}

fn options(create: bool, mem: &Memory) -> Options {
    let mut o = Options::default();
    o.create_if_missing(create);
    o.create_missing_column_families(create);
    // The crate is built without compression libraries; say so explicitly
    // rather than depend on RocksDB's fallback. Hashes do not compress anyway.
    o.set_compression_type(DBCompressionType::None);
    o.set_write_buffer_manager(&mem.buffers);
    o.set_write_buffer_size(mem.write_buffer);
    o.set_max_write_buffer_number(2);
    o.set_block_based_table_factory(&mem.table(false));
    o
}

fn descriptors(mem: &Memory) -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|n| {
            let mut o = options(false, mem);
            // Every submitted raw entry is looked up in `leaf_index` for
            // dedup, and most are new: a bloom filter answers "absent"
            // without disk reads.
            o.set_block_based_table_factory(&mem.table(*n == CF_LEAF_INDEX));
            ColumnFamilyDescriptor::new(*n, o)
        })
        .collect()
}

/// RocksDB's read-only open creates a missing directory (for its info log);
/// checking for its `CURRENT` file first keeps a typo from leaving one behind.
fn require_existing(path: &Path) -> Result<(), StoreError> {
    if path.join("CURRENT").is_file() {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("no database at {}", path.display())))
    }
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl RocksStore {
    /// Opens (creating if missing) the database at `path` for serving,
    /// with the default [`StoreTuning`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_tuned(path, StoreTuning::default())
    }

    /// [`RocksStore::open`] with RocksDB's memory bounded by `tuning`.
    pub fn open_tuned(path: &Path, tuning: StoreTuning) -> Result<Self, StoreError> {
        let memory = Memory::new(tuning);
        let db = DB::open_cf_descriptors(&options(true, &memory), path, descriptors(&memory))?;
        Self::from_db(db, memory)
    }

    /// Opens an existing database without taking its lock or writing, for
    /// `fsck` on a stopped server. Fails if there is no database at `path`.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        require_existing(path)?;
        let memory = Memory::new(StoreTuning::default());
        let db =
            DB::open_cf_descriptors_read_only(&options(false, &memory), path, descriptors(&memory), false)?;
        Self::from_db(db, memory)
    }

    /// Read-only open that does not interpret `meta tree_size`, so `fsck`
    /// can report a malformed value as a finding instead of failing.
    pub(crate) fn open_read_only_unchecked(path: &Path) -> Result<Self, StoreError> {
        require_existing(path)?;
        let memory = Memory::new(StoreTuning::default());
        let db =
            DB::open_cf_descriptors_read_only(&options(false, &memory), path, descriptors(&memory), false)?;
        Ok(RocksStore { db, memory, size: AtomicU64::new(0), write_lock: Mutex::new(()) })
    }

    fn from_db(db: DB, memory: Memory) -> Result<Self, StoreError> {
        let store = RocksStore { db, memory, size: AtomicU64::new(0), write_lock: Mutex::new(()) };
        let size = store.read_size_meta()?;
        store.size.store(size, Ordering::SeqCst);
        tracing::debug!(path = %store.db.path().display(), size, "opened store");
        Ok(store)
    }

    /// The tree size as recorded in `meta` (0 when absent: a fresh store).
    fn read_size_meta(&self) -> Result<u64, StoreError> {
        match self.db.get_cf(self.cf(CF_META), META_TREE_SIZE)? {
            None => Ok(0),
            Some(v) => decode_u64(&v)
                .ok_or_else(|| StoreError::Corrupt(format!("meta tree_size has {} bytes, not 8", v.len()))),
        }
    }

    /// The raw database, for the offline checker.
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// Handle of a column family opened by [`RocksStore::open`].
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every name in COLUMN_FAMILIES is opened (or created) by `open`, so
        // a missing handle is a bug in this file, not bad input.
        self.db.cf_handle(name).expect("column family opened by RocksStore::open")
    }

    fn check_batch(batch: &Batch, end: u64) -> Result<(), StoreError> {
        if batch.entries.len() != batch.leaf_hashes.len() {
            return Err(StoreError::Corrupt(format!(
                "batch has {} entries but {} leaf hashes",
                batch.entries.len(),
                batch.leaf_hashes.len()
            )));
        }
        for (id, _) in &batch.nodes {
            match id.leaf_range() {
                Some((_, e)) if e <= end => {}
                _ => return Err(StoreError::Corrupt(format!("batch node {id} lies beyond tree size {end}"))),
            }
        }
        Ok(())
    }
}

impl Store for RocksStore {
    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.size.load(Ordering::SeqCst))
    }

    fn append_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        // A poisoned lock only means another append panicked; the size atomic
        // is still the truth, so carry on.
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let size = self.size.load(Ordering::SeqCst);
        if batch.start != size {
            return Err(StoreError::Conflict { expected: size, got: batch.start });
        }
        let end = size
            .checked_add(batch.entries.len() as u64)
            .ok_or_else(|| StoreError::Corrupt("batch overflows the tree size".into()))?;
        Self::check_batch(batch, end)?;
        if batch.entries.is_empty() {
            return Ok(());
        }
        let (entries, hashes, leaf_index, meta) =
            (self.cf(CF_ENTRIES), self.cf(CF_HASHES), self.cf(CF_LEAF_INDEX), self.cf(CF_META));
        let mut wb = WriteBatch::default();
        for (i, (entry, leaf)) in batch.entries.iter().zip(&batch.leaf_hashes).enumerate() {
            let index = size + i as u64;
            wb.put_cf(entries, index.to_be_bytes(), entry);
            wb.put_cf(leaf_index, leaf.0, index.to_be_bytes());
        }
        for (id, hash) in &batch.nodes {
            wb.put_cf(hashes, hash_key(*id), hash.0);
        }
        let index_cf = self.cf(CF_REGISTRY_INDEX);
        for row in &batch.index_rows {
            wb.put_cf(index_cf, row, []);
        }
        wb.put_cf(meta, META_TREE_SIZE, end.to_be_bytes());
        if let Err(e) = self.db.write_opt(wb, &synced()) {
            // A failed sync may still have made the batch visible. Re-read
            // the size so our view matches what a restart would see; the
            // caller rebuilds its frontier from it and acknowledges nothing.
            if let Ok(actual) = self.read_size_meta() {
                self.size.store(actual, Ordering::SeqCst);
            }
            return Err(e.into());
        }
        self.size.store(end, Ordering::SeqCst);
        Ok(())
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if index >= self.size.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match self.db.get_cf(self.cf(CF_ENTRIES), index.to_be_bytes())? {
            Some(v) => Ok(Some(v)),
            None => Err(StoreError::Corrupt(format!("entry {index} is missing inside the tree"))),
        }
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = end.min(self.size.load(Ordering::SeqCst));
        if start >= end {
            return Ok(Vec::new());
        }
        let from = start.to_be_bytes();
        let iter = self.db.iterator_cf(self.cf(CF_ENTRIES), IteratorMode::From(&from, Direction::Forward));
        let mut out = Vec::with_capacity((end - start).min(4096) as usize);
        for (expected, item) in (start..end).zip(iter) {
            let (k, v) = item?;
            if decode_u64(&k) != Some(expected) {
                return Err(StoreError::Corrupt(format!("entry {expected} is missing inside the tree")));
            }
            out.push(v.into_vec());
        }
        if out.len() as u64 != end - start {
            return Err(StoreError::Corrupt(format!(
                "entry {} is missing inside the tree",
                start + out.len() as u64
            )));
        }
        Ok(out)
    }

    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        match self.db.get_cf(self.cf(CF_LEAF_INDEX), leaf_hash.0)? {
            None => Ok(None),
            Some(v) => decode_u64(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("leaf_index value has {} bytes, not 8", v.len()))),
        }
    }

    fn put_published_checkpoint(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        self.db.put_cf_opt(self.cf(CF_CHECKPOINTS), size.to_be_bytes(), note, &synced())?;
        Ok(())
    }

    fn published_checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_CHECKPOINTS), size.to_be_bytes())?)
    }

    fn latest_published_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self.db.iterator_cf(self.cf(CF_CHECKPOINTS), IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                let size = decode_u64(&k).ok_or_else(|| {
                    StoreError::Corrupt(format!("checkpoint key has {} bytes, not 8", k.len()))
                })?;
                Ok(Some((size, v.into_vec())))
            }
        }
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META), key)?)
    }

    fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key == META_TREE_SIZE {
            return Err(StoreError::Corrupt("meta tree_size is written only by append_batch".into()));
        }
        self.db.put_cf_opt(self.cf(CF_META), key, value, &synced())?;
        Ok(())
    }

    fn scan_index(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let from = after.unwrap_or(prefix);
        let mut out = Vec::new();
        for item in
            self.db.iterator_cf(self.cf(CF_REGISTRY_INDEX), IteratorMode::From(from, Direction::Forward))
        {
            let (key, _) = item?;
            if !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            if after.is_some_and(|a| *key == *a) {
                continue;
            }
            out.push(key.into_vec());
        }
        Ok(out)
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        Some(self.usage())
    }

    fn read_hashes_in_memory(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.multi_read_hashes(ids, true)
    }
}

impl RocksStore {
    fn usage(&self) -> MemoryUsage {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        let sst = |cf: &str| {
            self.db
                .property_int_value_cf(self.cf(cf), "rocksdb.total-sst-files-size")
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        MemoryUsage {
            sst_bytes: COLUMN_FAMILIES.iter().map(|cf| (*cf, sst(cf))).collect(),
            cache: self.memory.cache.get_usage() as u64,
            memtables: self.memory.buffers.get_usage() as u64,
            table_readers: prop("rocksdb.estimate-table-readers-mem"),
        }
    }

    /// One `multi_get_cf` for all `ids`, as the core's one-read rule
    /// intends; with `memory_only`, one in-memory lookup per id instead,
    /// and a hash that is not in a memtable or the block cache fails the
    /// read with [`NotInMemory`] rather than wait for the disk.
    fn multi_read_hashes(&self, ids: &[NodeId], memory_only: bool) -> Result<Vec<Hash>, ReadError> {
        let cf = self.cf(CF_HASHES);
        let keys: Vec<[u8; 9]> = ids.iter().map(|id| hash_key(*id)).collect();
        let values = if memory_only {
            // Point reads: RocksDB's batched MultiGet does not honour the
            // block-cache-only read tier (it read the disk in
            // `memory_only_reads_never_touch_the_disk`); a single Get does.
            let mut opts = ReadOptions::default();
            opts.set_read_tier(ReadTier::BlockCache);
            let mut got = Vec::with_capacity(keys.len());
            for k in &keys {
                match self.db.get_pinned_cf_opt(cf, k, &opts) {
                    // Stop at the first miss: the caller redoes the whole
                    // read on the blocking pool, so every lookup after it
                    // would be wasted (at 10^7 entries most proofs and
                    // tiles miss somewhere).
                    Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => {
                        return Err(ReadError::Backend(Box::new(NotInMemory)))
                    }
                    v => got.push(v.map(|v| v.map(|v| v.to_vec()))),
                }
            }
            got
        } else {
            self.db.multi_get_cf(keys.iter().map(|k| (cf, k)))
        };
        let mut out = Vec::with_capacity(ids.len());
        for (id, v) in ids.iter().zip(values) {
            match v {
                Err(e) => return Err(ReadError::Backend(Box::new(e))),
                Ok(None) => return Err(ReadError::Missing(*id)),
                Ok(Some(bytes)) if bytes.len() == HASH_SIZE => {
                    out.push(Hash::from_slice(&bytes).map_err(|e| ReadError::Backend(Box::new(e)))?)
                }
                Ok(Some(bytes)) => {
                    return Err(ReadError::Backend(
                        format!("stored hash at {id} has {} bytes", bytes.len()).into(),
                    ))
                }
            }
        }
        Ok(out)
    }
}

impl HashReader for RocksStore {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.multi_read_hashes(ids, false)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use custody_core::{leaf_hash, proof::tree_hash, Appender, MemoryHashStore};

    /// Builds the batch appending `entries` after `appender`'s current size.
    pub(crate) fn make_batch(appender: &mut Appender, entries: &[Vec<u8>]) -> Batch {
        let mut b = Batch { start: appender.size(), ..Batch::default() };
        for e in entries {
            let l = leaf_hash(e);
            appender.append(l, &mut b.nodes);
            b.entries.push(e.clone());
            b.leaf_hashes.push(l);
        }
        b
    }

    fn entries(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("entry {i}").into_bytes()).collect()
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(0..37);
        let mut mem = MemoryHashStore::new();
        for e in &all {
            mem.append(leaf_hash(e));
        }
        {
            let s = RocksStore::open(dir.path()).unwrap();
            assert_eq!(s.tree_size().unwrap(), 0);
            let mut a = Appender::new();
            s.append_batch(&make_batch(&mut a, &all[..20])).unwrap();
            s.append_batch(&make_batch(&mut a, &all[20..])).unwrap();
            assert_eq!(s.tree_size().unwrap(), 37);
            assert_eq!(s.entry(5).unwrap().unwrap(), all[5]);
            assert_eq!(s.entry(37).unwrap(), None);
            assert_eq!(s.entries(10, 100).unwrap(), all[10..].to_vec());
            assert_eq!(s.index_of(&leaf_hash(&all[33])).unwrap(), Some(33));
            assert_eq!(s.index_of(&leaf_hash(b"absent")).unwrap(), None);
            assert_eq!(tree_hash(37, &s).unwrap(), mem.root());
            s.put_published_checkpoint(20, b"cp20").unwrap();
            s.put_published_checkpoint(37, b"cp37").unwrap();
            s.put_meta(b"origin", b"example.com/log").unwrap();
            assert!(s.put_meta(META_TREE_SIZE, &[0; 8]).is_err());
        }
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.tree_size().unwrap(), 37);
        assert_eq!(tree_hash(37, &s).unwrap(), mem.root());
        for size in [1u64, 2, 3, 17, 32, 36] {
            assert_eq!(tree_hash(size, &s).unwrap(), tree_hash(size, &mem).unwrap(), "size {size}");
        }
        let a = Appender::from_reader(37, &s).unwrap();
        assert_eq!(a.root(), mem.root());
        assert_eq!(s.published_checkpoint(20).unwrap().unwrap(), b"cp20");
        assert_eq!(s.latest_published_checkpoint().unwrap().unwrap(), (37, b"cp37".to_vec()));
        assert_eq!(s.get_meta(b"origin").unwrap().unwrap(), b"example.com/log");
        match s.read_hashes(&[NodeId::new(0, 40)]) {
            Err(ReadError::Missing(id)) => assert_eq!(id, NodeId::new(0, 40)),
            other => panic!("expected Missing, got {other:?}"),
        }
        drop(s);
        let ro = RocksStore::open_read_only(dir.path()).unwrap();
        assert_eq!(ro.tree_size().unwrap(), 37);
        assert_eq!(tree_hash(37, &ro).unwrap(), mem.root());
    }

    #[test]
    fn conflict_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksStore::open(dir.path()).unwrap();
        let mut a = Appender::new();
        s.append_batch(&make_batch(&mut a, &entries(0..3))).unwrap();
        // A stale writer retrying from size 1.
        let mut stale = Appender::from_reader(1, &s).unwrap();
        let b = make_batch(&mut stale, &entries(100..102));
        match s.append_batch(&b) {
            Err(StoreError::Conflict { expected: 3, got: 1 }) => {}
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert_eq!(s.tree_size().unwrap(), 3);
        assert_eq!(s.entry(1).unwrap().unwrap(), b"entry 1");
        assert_eq!(s.index_of(&leaf_hash(b"entry 100")).unwrap(), None);
        // A malformed batch (missing leaf hash) is refused too.
        let mut bad = make_batch(&mut a, &entries(3..5));
        bad.leaf_hashes.pop();
        assert!(matches!(s.append_batch(&bad), Err(StoreError::Corrupt(_))));
        assert_eq!(s.tree_size().unwrap(), 3);
        drop(s);
        assert_eq!(RocksStore::open(dir.path()).unwrap().tree_size().unwrap(), 3);
    }

    /// Memory-only reads answer from memtables and the block cache and
    /// say so (rather than wait) when a hash is only on disk.
    #[test]
    fn memory_only_reads_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let all = entries(0..300);
        let ids: Vec<NodeId> = [NodeId::leaf(7), NodeId::new(3, 5), NodeId::leaf(299)].into();
        let expected = {
            let s = RocksStore::open(dir.path()).unwrap();
            s.append_batch(&make_batch(&mut Appender::new(), &all)).unwrap();
            // Still in the memtable.
            let got = s.read_hashes_in_memory(&ids).unwrap();
            assert_eq!(got, s.read_hashes(&ids).unwrap());
            assert!(matches!(s.read_hashes_in_memory(&[NodeId::leaf(300)]), Err(ReadError::Missing(_))));
            s.db().flush_cf(s.cf(CF_HASHES)).unwrap();
            got
        };
        // Reopened: the hashes are in a table file and no data block is
        // cached yet.
        let s = RocksStore::open(dir.path()).unwrap();
        match s.read_hashes_in_memory(&ids) {
            Err(e) => assert!(NotInMemory::is(&e), "{e:?}"),
            Ok(_) => panic!("a cold cache answered from memory"),
        }
        assert!(!NotInMemory::is(&ReadError::Missing(NodeId::leaf(1))));
        assert_eq!(s.read_hashes(&ids).unwrap(), expected);
        assert_eq!(s.read_hashes_in_memory(&ids).unwrap(), expected, "cached by the disk read");
        let usage = s.memory_usage().unwrap();
        assert!(usage.cache > 0);
        assert!(usage.sst_bytes.iter().any(|(cf, b)| *cf == CF_HASHES && *b > 0), "{usage:?}");
    }

    #[test]
    fn read_only_open_of_missing_dir_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(RocksStore::open_read_only(&dir.path().join("nope")).is_err());
        assert!(!dir.path().join("nope").exists());
    }
}
