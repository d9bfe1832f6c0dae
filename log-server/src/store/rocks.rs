//! [`RocksStore`]: the [`Store`] on RocksDB, with the packed rows of
//! [`super::layout`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use custody_standards::encoding::encode_hex;
use custody_standards::{Hash, HashReader, NodeId, ReadError};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, ReadTier, WriteBatch, WriteBufferManager, WriteOptions, DB,
};

use super::layout::{self, HashSource, LayoutError};
use super::{
    decode_u64, Batch, MemoryUsage, NotInMemory, Store, StoreError, CF_CHECKPOINTS, CF_ENTRIES, CF_HASHES,
    CF_LEAF_INDEX, CF_META, CF_REGISTRY_INDEX, COLUMN_FAMILIES, FORMAT, META_FORMAT, META_TREE_SIZE,
};
use crate::upper_nodes::UpperNodes;

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
    /// The tree's upper nodes, kept once read (they never change), so that
    /// every reader of hashes (proofs, tiles, receipts) skips their rows.
    upper: UpperNodes,
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
    /// 320 MiB: the upper strata of a 10^7-entry tree, most of its level-0
    /// rows and the hot right edge fit, and the server stays under 1 GiB
    /// (926 MiB at 10^7 in docs/performance.md). 256 MiB left a random
    /// leaf's level-0 row on disk for most proofs (19k/s against 25k/s).
    fn default() -> Self {
        StoreTuning { cache_bytes: 320 << 20 }
    }
}

/// The shared cache and write buffer manager of one open database.
struct Memory {
    cache: Cache,
    buffers: WriteBufferManager,
    /// Per-family memtable size: small enough that all six families' active
    /// memtables fit in the write budget at once.
    write_buffer: usize,
    /// Write-ahead log kept before the families holding its oldest file
    /// are flushed (see [`options`]): what recovery after `kill -9` reads.
    max_wal: u64,
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
        Memory { cache, buffers, write_buffer, max_wal: (budget / 2) as u64 }
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
    // Small families (the registry state, the tree size) fill their
    // memtables slowly, and each keeps every write-ahead log file since its
    // last flush alive: by default up to four times all memtables, which
    // a restart after a crash must read back. Past this bound RocksDB
    // flushes the families holding the oldest file, so recovery reads at
    // most about this much: half the memtable budget (40 MiB by default),
    // which still lets the busy families fill their memtables before a
    // flush.
    o.set_max_total_wal_size(mem.max_wal);
    o.set_block_based_table_factory(&mem.table(false));
    o
}

/// The families whose rows grow by merge operands ([`layout::append_merge`]).
const PACKED: [&str; 4] = [CF_ENTRIES, CF_HASHES, CF_LEAF_INDEX, CF_REGISTRY_INDEX];

fn descriptors(mem: &Memory) -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|n| {
            let mut o = options(false, mem);
            // Every submitted raw entry is looked up in `leaf_index` for
            // dedup, and in a small log most buckets are absent: a bloom
            // filter answers "absent" without disk reads.
            o.set_block_based_table_factory(&mem.table(*n == CF_LEAF_INDEX));
            if PACKED.contains(n) {
                o.set_merge_operator_associative(layout::APPEND_OPERATOR, layout::append_merge);
            }
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

/// Read-only open of the families the database has: one written before
/// the `state` family existed lacks it (a writable open creates it), and
/// RocksDB refuses to open a family that is not there.
fn open_existing_read_only(path: &Path, memory: &Memory) -> Result<DB, StoreError> {
    let opts = options(false, memory);
    let present = DB::list_cf(&opts, path)?;
    let wanted = descriptors(memory).into_iter().filter(|d| present.iter().any(|p| p == d.name()));
    Ok(DB::open_cf_descriptors_read_only(&opts, path, wanted, false)?)
}

pub(super) fn synced() -> WriteOptions {
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
        Self::from_db(db, memory, true)
    }

    /// Opens an existing database without taking its lock or writing, for
    /// `fsck` on a stopped server. Fails if there is no database at `path`.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        require_existing(path)?;
        let memory = Memory::new(StoreTuning::default());
        let db = open_existing_read_only(path, &memory)?;
        Self::from_db(db, memory, false)
    }

    /// Read-only open that does not interpret `meta tree_size`, so `fsck`
    /// can report a malformed value as a finding instead of failing.
    pub(crate) fn open_read_only_unchecked(path: &Path) -> Result<Self, StoreError> {
        require_existing(path)?;
        let memory = Memory::new(StoreTuning::default());
        let db = open_existing_read_only(path, &memory)?;
        let store = Self::unopened(db, memory);
        store.format()?;
        Ok(store)
    }

    /// The store over an open database, before its format and size are
    /// read.
    fn unopened(db: DB, memory: Memory) -> Self {
        RocksStore {
            db,
            memory,
            size: AtomicU64::new(0),
            write_lock: Mutex::new(()),
            upper: UpperNodes::new(),
        }
    }

    /// Checks the storage format and loads the tree size; with `stamp`
    /// (a writable open), records the format in a database that has none
    /// yet (new, or nothing appended).
    fn from_db(db: DB, memory: Memory, stamp: bool) -> Result<Self, StoreError> {
        let store = Self::unopened(db, memory);
        if store.format()?.is_none() && stamp {
            store.db.put_cf_opt(store.cf(CF_META), META_FORMAT, FORMAT.to_be_bytes(), &synced())?;
        }
        let size = store.read_size_meta()?;
        store.size.store(size, Ordering::SeqCst);
        tracing::debug!(path = %store.db.path().display(), size, "opened store");
        Ok(store)
    }

    /// The storage format recorded in `meta`: `Some(FORMAT)`, or `None`
    /// for a database with nothing in it yet. Any other format, or entries
    /// without a format (format 1), is [`StoreError::Format`]: reading
    /// one-row-per-record data as packed rows would serve garbage.
    fn format(&self) -> Result<Option<u64>, StoreError> {
        let meta = self.cf(CF_META);
        match self.db.get_cf(meta, META_FORMAT)? {
            Some(v) => match decode_u64(&v) {
                Some(FORMAT) => Ok(Some(FORMAT)),
                Some(found) => Err(StoreError::Format { found }),
                None => Err(StoreError::Corrupt(format!("meta format has {} bytes, not 8", v.len()))),
            },
            None if self.db.get_cf(meta, META_TREE_SIZE)?.is_some() => Err(StoreError::Format { found: 1 }),
            None => Ok(None),
        }
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
        // a missing handle is a bug in this file, not bad input. The one
        // exception, `state` in a read-only open of an older database, is
        // reached only through `state_cf`.
        self.db.cf_handle(name).expect("column family opened by RocksStore::open")
    }

    /// One merge operand per row: `rows` maps a row key to the fragments
    /// the batch appends to it.
    fn merge_rows<K: AsRef<[u8]>>(&self, wb: &mut WriteBatch, cf: &str, rows: &BTreeMap<K, Vec<u8>>) {
        let cf = self.cf(cf);
        for (key, fragments) in rows {
            wb.merge_cf(cf, key, fragments);
        }
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
        super::batch_check::check_batch(batch, size, end)?;
        if batch.entries.is_empty() && batch.state_rows.is_empty() {
            return Ok(());
        }
        // Fragments grouped by row, each row's in record order: one merge
        // operand per touched row.
        let mut entry_rows: BTreeMap<[u8; 8], Vec<u8>> = BTreeMap::new();
        let mut buckets: BTreeMap<[u8; layout::BUCKET_BYTES], Vec<u8>> = BTreeMap::new();
        for (i, (entry, leaf)) in batch.entries.iter().zip(&batch.leaf_hashes).enumerate() {
            let index = size + i as u64;
            layout::push_entry(entry_rows.entry(layout::entry_row_key(index)).or_default(), entry);
            layout::push_posting(buckets.entry(layout::leaf_bucket(leaf)).or_default(), leaf, index);
        }
        let mut hash_rows: BTreeMap<[u8; 9], Vec<u8>> = BTreeMap::new();
        for (id, hash) in batch.nodes.iter().filter(|(id, _)| layout::is_stored_level(id.level)) {
            hash_rows.entry(layout::hash_row_key(id.level, id.index)).or_default().extend_from_slice(&hash.0);
        }
        let mut postings: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for row in &batch.index_rows {
            let (key, low) = layout::posting_row(row).expect("check_batch parsed every row");
            postings.entry(key).or_default().push(low);
        }
        for v in postings.values_mut() {
            // Rows arrive in entry order; an entry indexed twice under one
            // prefix (it cannot be, but) is one row.
            v.sort_unstable();
            v.dedup();
        }
        let mut wb = WriteBatch::default();
        self.merge_rows(&mut wb, CF_ENTRIES, &entry_rows);
        self.merge_rows(&mut wb, CF_LEAF_INDEX, &buckets);
        self.merge_rows(&mut wb, CF_HASHES, &hash_rows);
        self.merge_rows(&mut wb, CF_REGISTRY_INDEX, &postings);
        self.put_state_rows(&mut wb, &batch.state_rows);
        let meta = self.cf(CF_META);
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
        let size = self.size.load(Ordering::SeqCst);
        if index >= size {
            return Ok(None);
        }
        let row = self.db.get_pinned_cf(self.cf(CF_ENTRIES), layout::entry_row_key(index))?;
        let entries = split_entry_row(index & !(layout::ROW_WIDTH - 1), row.as_deref(), size)?;
        Ok(Some(entries[(index % layout::ROW_WIDTH) as usize].to_vec()))
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let size = self.size.load(Ordering::SeqCst);
        let end = end.min(size);
        if start >= end {
            return Ok(Vec::new());
        }
        let from = layout::entry_row_key(start);
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_ENTRIES));
        iter.seek(from);
        let mut out = Vec::with_capacity((end - start).min(4096) as usize);
        let mut first = start & !(layout::ROW_WIDTH - 1);
        while first < end {
            // The row must be the next one: a gap is a missing entry.
            let row = iter.key().filter(|k| *k == layout::entry_row_key(first)).and(iter.value());
            let entries = split_entry_row(first, row, size)?;
            let skip = start.saturating_sub(first) as usize;
            let take = ((end - first) as usize).min(entries.len());
            out.extend(entries[skip..take].iter().map(|e| e.to_vec()));
            first += layout::ROW_WIDTH;
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let size = self.size.load(Ordering::SeqCst);
        let Some(bucket) = self.db.get_pinned_cf(self.cf(CF_LEAF_INDEX), layout::leaf_bucket(leaf_hash))?
        else {
            return Ok(None);
        };
        let found = layout::candidates(&bucket, leaf_hash).map_err(|e| corrupt("leaf_index bucket", e))?;
        let found: Vec<u64> = found.into_iter().filter(|i| *i < size).collect();
        if found.is_empty() {
            return Ok(None);
        }
        // Confirm against the stored leaf hashes: postings carry only 48
        // bits of the hash.
        let ids: Vec<NodeId> = found.iter().map(|i| NodeId::leaf(*i)).collect();
        let stored =
            self.read_hashes(&ids).map_err(|e| StoreError::Corrupt(format!("leaf_index candidate: {e}")))?;
        Ok(found.into_iter().zip(stored).filter(|(_, h)| h == leaf_hash).map(|(i, _)| i).min())
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
        // Seek to the packed row holding `after` (or the prefix), then
        // expand rows into logical rows until `limit` are past `after`.
        let from = match after.and_then(layout::posting_row) {
            Some((key, _)) => key,
            None => after.unwrap_or(prefix).to_vec(),
        };
        let mut out = Vec::new();
        for item in
            self.db.iterator_cf(self.cf(CF_REGISTRY_INDEX), IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            let rows = layout::expand_postings(&key, &value).map_err(|e| corrupt("registry_index row", e))?;
            let newer = rows.into_iter().filter(|r| after.map_or(true, |a| r.as_slice() > a));
            out.extend(newer.take(limit - out.len()));
        }
        Ok(out)
    }

    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<super::StoredStateRow>, StoreError> {
        self.scan_state_rows(prefix)
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        Some(self.usage())
    }

    fn read_hashes_in_memory(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.upper.over(&Rows { store: self, memory_only: true }).read_hashes(ids)
    }
}

impl RocksStore {
    fn usage(&self) -> MemoryUsage {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        let sst = |cf: &str| {
            self.db
                .cf_handle(cf)
                .and_then(|h| self.db.property_int_value_cf(h, "rocksdb.total-sst-files-size").ok())
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
        let sources = ids
            .iter()
            .map(|id| HashSource::of(*id).ok_or(ReadError::Missing(*id)))
            .collect::<Result<Vec<_>, _>>()?;
        // One read per row: a proof's siblings within a stratum share one.
        let mut keys: Vec<[u8; 9]> = sources.iter().map(HashSource::row_key).collect();
        keys.sort_unstable();
        keys.dedup();
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
        let mut rows = Vec::with_capacity(keys.len());
        for (key, v) in keys.iter().zip(values) {
            let row = match v.map_err(|e| ReadError::Backend(Box::new(e)))? {
                None => None,
                Some(bytes) => Some(layout::split_hashes(&bytes).map_err(|e| {
                    ReadError::Backend(format!("hashes row {}: {e}", encode_hex(key)).into())
                })?),
            };
            rows.push(row);
        }
        ids.iter()
            .zip(&sources)
            .map(|(id, src)| {
                let at = keys.binary_search(&src.row_key()).expect("every source's row was read");
                rows[at].as_deref().and_then(|row| src.compute(row)).ok_or(ReadError::Missing(*id))
            })
            .collect()
    }
}

/// The entries of the row starting at entry `first` that lie inside a tree
/// of `size` entries: `min(16, size - first)` of them. The row may hold
/// more, appended after the caller read `size` (rows grow while readers
/// read), never fewer.
fn split_entry_row(first: u64, row: Option<&[u8]>, size: u64) -> Result<Vec<&[u8]>, StoreError> {
    let missing = || StoreError::Corrupt(format!("entry {first} is missing inside the tree"));
    let mut entries = layout::split_entries(row.ok_or_else(missing)?)
        .map_err(|e| corrupt(&format!("entries row at {first}"), e))?;
    let want = (size - first).min(layout::ROW_WIDTH) as usize;
    if entries.len() < want {
        return Err(StoreError::Corrupt(format!(
            "entry {} is missing inside the tree (its row holds {} entries)",
            first + entries.len() as u64,
            entries.len()
        )));
    }
    entries.truncate(want);
    Ok(entries)
}

fn corrupt(what: &str, e: LayoutError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl HashReader for RocksStore {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.upper.over(&Rows { store: self, memory_only: false }).read_hashes(ids)
    }
}

/// The `hashes` rows themselves, beneath the upper-node cache.
struct Rows<'a> {
    store: &'a RocksStore,
    memory_only: bool,
}

impl HashReader for Rows<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.store.multi_read_hashes(ids, self.memory_only)
    }
}
