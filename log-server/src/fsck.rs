//! Offline consistency check of a stopped log's database (`custody-log fsck`).
//!
//! The entries are the ground truth: every stored hash, every leaf index row,
//! the tree size and every published checkpoint must follow from them. The
//! check recomputes all of it with the same [`Appender`] the sequencer uses,
//! streaming the entries in chunks so memory stays bounded whatever the log
//! size, and stops at the first inconsistency, naming where it is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use custody_standards::checkpoint::{open_checkpoint, Checkpoint};
use custody_standards::encoding::encode_hex;
use custody_standards::note::Note;
use custody_standards::proof::tree_hash;
use custody_standards::{leaf_hash, Appender, Hash, NodeId, VerifierKey};
use rocksdb::IteratorMode;

use crate::store::layout;
use crate::store::{
    decode_u64, RocksStore, StoreError, CF_CHECKPOINTS, CF_ENTRIES, CF_HASHES, CF_LEAF_INDEX, CF_META,
    CF_REGISTRY_INDEX, META_TREE_SIZE,
};

/// Entries recomputed per batched read of their stored hashes.
const CHUNK: usize = 4096;
/// Meta key of the newest signed (not necessarily published) checkpoint.
const META_LATEST_SIGNED: &[u8] = b"latest_signed";

/// What kind of inconsistency was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsckProblemKind {
    /// A gap in the entries column family.
    MissingEntry,
    /// An entry that could never have been accepted (empty or oversize), or
    /// whose bytes do not hash to the stored leaf hash.
    BadEntry,
    /// A stored hash the tree needs is absent.
    MissingHash,
    /// A stored hash differs from the one recomputed from the entries.
    HashMismatch,
    /// A stored hash for a subtree the tree does not have.
    HashBeyondTree,
    /// A leaf_index posting is missing, wrong, or points outside the tree.
    LeafIndex,
    /// `meta tree_size` is malformed or differs from the entry count.
    TreeSize,
    /// A checkpoint does not parse, verify, or match the tree at its size.
    Checkpoint,
    /// A key or value of the wrong shape.
    Malformed,
    /// A registry entry that an honest log would not have appended (bad
    /// signature, forbidden or malformed statement).
    Registry,
    /// The registry state persisted for start-up (the `state` column
    /// family) is not the replay of the log: a start would serve it.
    RegistryState,
    /// The registry index rows (name, digest, actor listings) do not list
    /// exactly the entries of the committed entries chains.
    RegistryIndex,
    /// A stored artifact that does not hash to its name, or a published
    /// artifact that is not stored.
    Blob,
}

impl fmt::Display for FsckProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsckProblemKind::MissingEntry => "missing entry",
            FsckProblemKind::BadEntry => "bad entry",
            FsckProblemKind::MissingHash => "missing stored hash",
            FsckProblemKind::HashMismatch => "stored hash mismatch",
            FsckProblemKind::HashBeyondTree => "stored hash beyond the tree",
            FsckProblemKind::LeafIndex => "leaf index inconsistent",
            FsckProblemKind::TreeSize => "tree size inconsistent",
            FsckProblemKind::Checkpoint => "checkpoint inconsistent",
            FsckProblemKind::Malformed => "malformed record",
            FsckProblemKind::Registry => "registry violation",
            FsckProblemKind::RegistryState => "registry state differs from the replay",
            FsckProblemKind::RegistryIndex => "registry index rows differ from the committed chains",
            FsckProblemKind::Blob => "artifact integrity violation",
        })
    }
}

/// The first inconsistency found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckProblem {
    /// Category, for programs.
    pub kind: FsckProblemKind,
    /// Where, for operators: "entry 17", "stored hash level 3 index 2",
    /// "checkpoint at size 40", "meta tree_size", ...
    pub location: String,
    /// What was expected and what was found.
    pub detail: String,
}

/// Outcome of [`fsck`]. Healthy exactly when `first_problem` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsckReport {
    /// Tree size recorded in `meta` (0 when absent or unreadable).
    pub tree_size: u64,
    /// Entries recomputed before the check finished or stopped.
    pub checked_entries: u64,
    /// Checkpoints (published ones and the latest signed one) verified.
    pub checkpoints_checked: u64,
    /// Whether the registry was replayed and every artifact re-hashed.
    pub registry_checked: bool,
    /// The first inconsistency, if any.
    pub first_problem: Option<FsckProblem>,
    /// Stored artifacts no publish names, one description each (listed, not
    /// an inconsistency; `custody-log gc` removes old ones).
    pub orphan_blobs: Vec<String>,
}

impl FsckReport {
    /// True when nothing inconsistent was found.
    pub fn is_healthy(&self) -> bool {
        self.first_problem.is_none()
    }
}

impl fmt::Display for FsckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_problem {
            None => write!(
                f,
                "ok: tree size {}, {} entries and every stored hash recomputed, {} checkpoints verified{}",
                self.tree_size,
                self.checked_entries,
                self.checkpoints_checked,
                if self.registry_checked { ", registry replayed and every artifact re-hashed" } else { "" }
            ),
            Some(p) => write!(
                f,
                "INCONSISTENT: {} at {}: {} (tree size {}, {} entries checked, {} checkpoints checked)",
                p.kind, p.location, p.detail, self.tree_size, self.checked_entries, self.checkpoints_checked
            ),
        }?;
        for o in &self.orphan_blobs {
            write!(f, "\norphan blob {o}: stored, named by no publish (`custody-log gc` removes it)")?;
        }
        Ok(())
    }
}

/// Checks the database at `db_path` of a STOPPED server. `Err` only when the
/// database cannot be opened or read; inconsistencies are in the report.
/// With `log_vkey`, checkpoint signatures are verified too.
pub fn fsck(db_path: &Path, log_vkey: Option<&VerifierKey>) -> Result<FsckReport, StoreError> {
    let store = RocksStore::open_read_only_unchecked(db_path)?;
    let mut report = FsckReport::default();
    let problem = run(&store, log_vkey, &mut report)?;
    report.first_problem = problem;
    match &report.first_problem {
        None => tracing::info!(%report, "fsck finished"),
        Some(_) => tracing::warn!(%report, "fsck finished"),
    }
    Ok(report)
}

type Found = Result<Option<FsckProblem>, StoreError>;

fn problem(kind: FsckProblemKind, location: impl Into<String>, detail: impl Into<String>) -> Found {
    Ok(Some(FsckProblem { kind, location: location.into(), detail: detail.into() }))
}

/// Runs each pass in order; returns the first problem.
fn run(store: &RocksStore, vkey: Option<&VerifierKey>, report: &mut FsckReport) -> Found {
    let meta_size = match store.db().get_cf(store.cf(CF_META), META_TREE_SIZE)? {
        None => None,
        Some(v) => match decode_u64(&v) {
            Some(n) => Some(n),
            None => {
                return problem(
                    FsckProblemKind::TreeSize,
                    "meta tree_size",
                    format!("{} bytes, not 8", v.len()),
                )
            }
        },
    };
    report.tree_size = meta_size.unwrap_or(0);
    if let Some(p) = check_entries(store, report)? {
        return Ok(Some(p));
    }
    let count = report.checked_entries;
    if meta_size.unwrap_or(0) != count {
        let said = meta_size.map_or("absent".to_owned(), |n| n.to_string());
        return problem(
            FsckProblemKind::TreeSize,
            "meta tree_size",
            format!("meta says {said} but the entries column family holds {count} entries"),
        );
    }
    if let Some(p) = check_no_hash_beyond(store, count)? {
        return Ok(Some(p));
    }
    if let Some(p) = check_leaf_index_rows(store, count)? {
        return Ok(Some(p));
    }
    if let Some(p) = check_registry_rows(store, count)? {
        return Ok(Some(p));
    }
    check_checkpoints(store, vkey, count, report)
}

/// Pass 1: entries in order; recompute leaf hashes and every stored hash.
fn check_entries(store: &RocksStore, report: &mut FsckReport) -> Found {
    let mut appender = Appender::new();
    let mut chunk = Chunk::default();
    let mut iter = store.db().raw_iterator_cf(store.cf(CF_ENTRIES));
    iter.seek_to_first();
    let mut expected: u64 = 0;
    while iter.valid() {
        let (Some(k), Some(v)) = (iter.key(), iter.value()) else { break };
        let Some(row) = decode_u64(k).filter(|r| *r <= u64::MAX >> layout::ROW_SHIFT) else {
            return problem(
                FsckProblemKind::Malformed,
                "entries column family",
                format!("key of {} bytes", k.len()),
            );
        };
        let first = row << layout::ROW_SHIFT;
        if first != expected {
            // Either rows are missing, or the previous row was short.
            return problem(
                FsckProblemKind::MissingEntry,
                format!("entry {expected}"),
                format!("absent; the next stored entry is {first}"),
            );
        }
        let entries = match layout::split_entries(v) {
            Ok(e) => e,
            Err(e) => {
                return problem(FsckProblemKind::BadEntry, format!("entries row at {first}"), e.to_string())
            }
        };
        for entry in entries {
            let leaf = leaf_hash(entry);
            chunk.leaves.push((expected, leaf));
            appender.append(leaf, &mut chunk.nodes);
            expected += 1;
        }
        if chunk.leaves.len() >= CHUNK {
            if let Some(p) = chunk.verify(store)? {
                return Ok(Some(p));
            }
            report.checked_entries = expected;
        }
        iter.next();
    }
    iter.status()?;
    if let Some(p) = chunk.verify(store)? {
        return Ok(Some(p));
    }
    report.checked_entries = expected;
    Ok(None)
}

/// Recomputed hashes of a run of entries, awaiting comparison with storage.
#[derive(Default)]
struct Chunk {
    leaves: Vec<(u64, Hash)>,
    nodes: Vec<(NodeId, Hash)>,
}

impl Chunk {
    /// Compares with the stored hashes (on the kept levels) and the
    /// leaf_index postings in two batched reads, reporting the earliest
    /// problem in tree order, then clears.
    fn verify(&mut self, store: &RocksStore) -> Found {
        self.nodes.retain(|(id, _)| layout::is_stored_level(id.level));
        let keys: Vec<[u8; 9]> =
            self.nodes.iter().map(|(id, _)| layout::hash_row_key(id.level, id.index)).collect();
        let rows = hash_rows(store, &keys)?;
        let buckets: Vec<_> = self.leaves.iter().map(|(_, l)| layout::leaf_bucket(l)).collect();
        let bucket_rows = read_rows(store, CF_LEAF_INDEX, &buckets)?;
        let mut leaves = self.leaves.iter();
        for ((id, want), key) in self.nodes.iter().zip(&keys) {
            let at = format!("stored hash level {} index {}", id.level, id.index);
            let row = match &rows[key] {
                Ok(row) => row,
                Err(e) => return problem(FsckProblemKind::Malformed, at, e.clone()),
            };
            let Some(got) = row.get((id.index % layout::ROW_WIDTH) as usize) else {
                return problem(
                    FsckProblemKind::MissingHash,
                    at,
                    format!("absent; recomputed {}", want.to_hex()),
                );
            };
            if got != want {
                if id.level == 0 {
                    return leaf_mismatch(store, id.index, want, got);
                }
                return problem(
                    FsckProblemKind::HashMismatch,
                    at,
                    format!("stored {} but the entries give {}", got.to_hex(), want.to_hex()),
                );
            }
            if id.level == 0 {
                // Leaves come in order, one per entry.
                let Some((index, leaf)) = leaves.next() else { break };
                let found = match bucket_rows[&layout::leaf_bucket(leaf)]
                    .as_deref()
                    .map(|b| layout::candidates(b, leaf))
                {
                    None => Vec::new(),
                    Some(Ok(found)) => found,
                    Some(Err(e)) => {
                        return problem(
                            FsckProblemKind::Malformed,
                            format!("leaf_index bucket of entry {index}"),
                            e.to_string(),
                        )
                    }
                };
                if !found.contains(index) {
                    return problem(
                        FsckProblemKind::LeafIndex,
                        format!("entry {index}"),
                        format!("leaf_index has no posting of its leaf hash {} at this index", leaf.to_hex()),
                    );
                }
            }
        }
        self.leaves.clear();
        self.nodes.clear();
        Ok(None)
    }
}

/// The distinct rows under `keys` in family `cf`, raw (`None`: absent).
fn read_rows<K: AsRef<[u8]> + Ord + Clone>(
    store: &RocksStore,
    cf: &str,
    keys: &[K],
) -> Result<BTreeMap<K, Option<Vec<u8>>>, StoreError> {
    let mut distinct = keys.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let handle = store.cf(cf);
    let values = store.db().multi_get_cf(distinct.iter().map(|k| (handle, k.as_ref())));
    distinct.into_iter().zip(values).map(|(k, v)| Ok((k, v?))).collect()
}

/// Decoded `hashes` rows by key; a malformed row says why.
type HashRows = BTreeMap<[u8; 9], Result<Vec<Hash>, String>>;

/// The distinct `hashes` rows under `keys`, decoded (absent rows are empty;
/// malformed ones say why).
fn hash_rows(store: &RocksStore, keys: &[[u8; 9]]) -> Result<HashRows, StoreError> {
    Ok(read_rows(store, CF_HASHES, keys)?
        .into_iter()
        .map(|(k, v)| {
            let row = match v {
                None => Ok(Vec::new()),
                Some(v) => layout::split_hashes(&v).map_err(|e| e.to_string()),
            };
            (k, row)
        })
        .collect())
}

/// A leaf hash differs: blame the entry bytes when the stored leaf hash is
/// still indexed at this position (the entry changed), else the stored hash.
fn leaf_mismatch(store: &RocksStore, index: u64, recomputed: &Hash, stored: &Hash) -> Found {
    let bucket = store.db().get_cf(store.cf(CF_LEAF_INDEX), layout::leaf_bucket(stored))?;
    let indexed = bucket.is_some_and(|b| layout::candidates(&b, stored).is_ok_and(|c| c.contains(&index)));
    let detail = format!(
        "entry bytes hash to {} but the stored leaf hash is {}",
        recomputed.to_hex(),
        stored.to_hex()
    );
    if indexed {
        problem(FsckProblemKind::BadEntry, format!("entry {index}"), detail)
    } else {
        problem(FsckProblemKind::HashMismatch, format!("stored hash level 0 index {index}"), detail)
    }
}

/// Pass 2: no stored hash for a subtree beyond the tree (pass 1 already
/// checked every position inside it).
fn check_no_hash_beyond(store: &RocksStore, count: u64) -> Found {
    let mut iter = store.db().raw_iterator_cf(store.cf(CF_HASHES));
    iter.seek_to_first();
    while iter.valid() {
        let (Some(k), Some(v)) = (iter.key(), iter.value()) else { break };
        let Some((level, first)) = layout::parse_hash_row_key(k) else {
            return problem(
                FsckProblemKind::Malformed,
                "hashes column family",
                format!("key of {} bytes", k.len()),
            );
        };
        let n = match layout::split_hashes(v) {
            Ok(h) => h.len() as u64,
            Err(e) => {
                return problem(
                    FsckProblemKind::Malformed,
                    format!("hashes row level {level} index {first}"),
                    e.to_string(),
                )
            }
        };
        let last = NodeId::new(level, first + n - 1);
        if !matches!(last.leaf_range(), Some((_, end)) if end <= count) {
            return problem(
                FsckProblemKind::HashBeyondTree,
                format!("stored hash level {} index {}", last.level, last.index),
                format!("the tree has only {count} entries"),
            );
        }
        iter.next();
    }
    iter.status()?;
    Ok(None)
}

/// Pass 3: every leaf_index posting names an entry whose leaf hash has the
/// posting's bucket and tag (no stale postings: dedup and lookup by hash
/// confirm candidates, but a stale posting is still damage).
fn check_leaf_index_rows(store: &RocksStore, count: u64) -> Found {
    let mut iter = store.db().raw_iterator_cf(store.cf(CF_LEAF_INDEX));
    iter.seek_to_first();
    let mut pending: Vec<([u8; layout::BUCKET_BYTES], [u8; layout::TAG_BYTES], u64)> =
        Vec::with_capacity(CHUNK);
    loop {
        let done = !iter.valid();
        if !done {
            let (Some(k), Some(v)) = (iter.key(), iter.value()) else { break };
            let at = || format!("leaf_index bucket {}", encode_hex(k));
            let (bucket, postings) =
                match (<[u8; layout::BUCKET_BYTES]>::try_from(k), layout::split_postings(v)) {
                    (Ok(bucket), Ok(p)) => (bucket, p),
                    (Err(_), _) => {
                        return problem(FsckProblemKind::Malformed, at(), format!("key of {} bytes", k.len()))
                    }
                    (_, Err(e)) => return problem(FsckProblemKind::Malformed, at(), e.to_string()),
                };
            for (tag, index) in postings {
                if index >= count {
                    return problem(
                        FsckProblemKind::LeafIndex,
                        at(),
                        format!("points to {index}, beyond the tree"),
                    );
                }
                pending.push((bucket, tag, index));
            }
            iter.next();
        }
        if pending.len() >= CHUNK || (done && !pending.is_empty()) {
            let ids: Vec<NodeId> = pending.iter().map(|(_, _, i)| NodeId::leaf(*i)).collect();
            let leaves = custody_standards::HashReader::read_hashes(store, &ids)
                .map_err(|e| StoreError::Corrupt(format!("leaf hashes: {e}")))?;
            for ((bucket, tag, index), leaf) in pending.iter().zip(leaves) {
                if !layout::posting_matches(bucket, tag, &leaf) {
                    return problem(
                        FsckProblemKind::LeafIndex,
                        format!("leaf_index bucket {}", encode_hex(bucket)),
                        format!(
                            "posting {} points to entry {index}, which has leaf hash {}",
                            encode_hex(tag),
                            leaf.to_hex()
                        ),
                    );
                }
            }
            pending.clear();
        }
        if done {
            break;
        }
    }
    iter.status()?;
    Ok(None)
}

/// Pass 3b: every registry index row decodes and names an entry of the
/// tree (what each row says is checked by the registry replay).
fn check_registry_rows(store: &RocksStore, count: u64) -> Found {
    for item in store.db().iterator_cf(store.cf(CF_REGISTRY_INDEX), IteratorMode::Start) {
        let (k, v) = item?;
        let at = || format!("registry_index row {}", encode_hex(&k));
        let rows = match layout::expand_postings(&k, &v) {
            Ok(rows) => rows,
            Err(e) => return problem(FsckProblemKind::Malformed, at(), e.to_string()),
        };
        if let Some(i) = rows.last().and_then(|r| crate::registry::row_index(r)).filter(|i| *i >= count) {
            return problem(FsckProblemKind::Registry, at(), format!("indexes entry {i}, beyond the tree"));
        }
    }
    Ok(None)
}

/// Pass 4: every published checkpoint (and the latest signed one) names a
/// size inside the tree and the root the entries give at that size.
fn check_checkpoints(
    store: &RocksStore,
    vkey: Option<&VerifierKey>,
    count: u64,
    report: &mut FsckReport,
) -> Found {
    for item in store.db().iterator_cf(store.cf(CF_CHECKPOINTS), IteratorMode::Start) {
        let (k, note) = item?;
        let Some(size) = decode_u64(&k) else {
            return problem(
                FsckProblemKind::Malformed,
                "checkpoints column family",
                format!("key of {} bytes", k.len()),
            );
        };
        let at = format!("checkpoint at size {size}");
        if let Some(p) = check_one_checkpoint(store, vkey, count, Some(size), &note, at)? {
            return Ok(Some(p));
        }
        report.checkpoints_checked += 1;
    }
    if let Some(note) = store.db().get_cf(store.cf(CF_META), META_LATEST_SIGNED)? {
        if let Some(p) = check_one_checkpoint(store, vkey, count, None, &note, "meta latest_signed".into())? {
            return Ok(Some(p));
        }
        report.checkpoints_checked += 1;
    }
    Ok(None)
}

fn check_one_checkpoint(
    store: &RocksStore,
    vkey: Option<&VerifierKey>,
    count: u64,
    key_size: Option<u64>,
    note: &[u8],
    at: String,
) -> Found {
    let parsed = match vkey {
        Some(vk) => open_checkpoint(note, vk).map(|o| o.checkpoint).map_err(|e| e.to_string()),
        None => Note::parse(note)
            .map_err(|e| e.to_string())
            .and_then(|n| Checkpoint::parse(&n.text).map_err(|e| e.to_string())),
    };
    let cp = match parsed {
        Ok(cp) => cp,
        Err(e) => return problem(FsckProblemKind::Checkpoint, at, format!("does not open: {e}")),
    };
    if let Some(s) = key_size {
        if cp.size != s {
            return problem(FsckProblemKind::Checkpoint, at, format!("note says size {}", cp.size));
        }
    }
    if cp.size > count {
        return problem(
            FsckProblemKind::Checkpoint,
            at,
            format!("size {} is beyond the tree ({count})", cp.size),
        );
    }
    let root = tree_hash(cp.size, store).map_err(|e| StoreError::Corrupt(format!("tree hash: {e}")))?;
    if root != cp.root {
        return problem(
            FsckProblemKind::Checkpoint,
            at,
            format!("root {} but the entries give {}", cp.root.to_hex(), root.to_hex()),
        );
    }
    Ok(None)
}

#[cfg(test)]
#[path = "fsck_tests.rs"]
mod tests;
