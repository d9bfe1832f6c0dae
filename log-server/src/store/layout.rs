//! How [`super::RocksStore`] packs the log's records into RocksDB rows.
//!
//! Why packed: RocksDB spends about 14 bytes on every row whatever its size
//! (an 8-byte internal key suffix, three varints, restart points, index
//! entries). With one row per entry, per stored hash, per leaf-index record
//! and per registry index record, a log of 10^7 entries paid 193 bytes per
//! entry beyond the entry itself, three times the 64-byte target of issue 8.
//! Here many records share one row, and only every fourth level of stored
//! hashes is kept, so the per-row cost is paid once per 16 or 256 records.
//!
//! Rows grow by RocksDB merge operands: [`append_merge`] concatenates them,
//! so a batch appends to a half-full row without reading it first (the
//! sequencer's write path stays free of reads).
//!
//! | family | key | value |
//! |---|---|---|
//! | `entries` | `index >> 4` (u64 BE) | up to 16 consecutive entries, each `len (u16 BE) ‖ bytes`: a tlog-tiles entry bundle of width ≤ 16 |
//! | `hashes` | `level ‖ (index >> 4)` (u8, u64 BE), level ∈ {0, 4, 8, …} | up to 16 consecutive stored hashes of that level |
//! | `leaf_index` | `leaf[0..2]` | 9-byte postings `leaf[2..6] ‖ index (40-bit BE)` |
//! | `registry_index` | `P ‖ (index >> 8)` (u64 BE) | one byte `index & 0xff` per logical row `P ‖ index` |
//!
//! Everything here is pure (no I/O; RocksDB only names the merge
//! operator's operands), so the encodings are tested
//! without a disk.

use custody_standards::entries::MAX_ENTRY_SIZE;
use custody_standards::{node_hash, Hash, NodeId, HASH_SIZE};

/// Records per packed row of `entries` and `hashes` (as a shift).
pub const ROW_SHIFT: u32 = 4;
/// Records per packed row of `entries` and `hashes`.
pub const ROW_WIDTH: u64 = 1 << ROW_SHIFT;
/// Stored hash levels are the multiples of this. A node in between is
/// recomputed from at most `2^(STRATUM-1)` = 8 hashes of one row (7 node
/// hashes, about 2 µs), which keeps proofs cheap while storing about 34
/// bytes of hashes per entry instead of about 64 (plus row costs).
pub const STRATUM: u8 = 4;
/// Bytes of a leaf_index bucket key (the leaf hash's first bytes).
pub const BUCKET_BYTES: usize = 2;
/// Bytes of the leaf-hash tag in a leaf_index posting, after the bucket.
pub const TAG_BYTES: usize = 4;
/// Bytes of one leaf_index posting: tag and 40-bit index.
pub const POSTING_BYTES: usize = TAG_BYTES + 5;
/// Indexes must fit the 40-bit leaf_index posting (10^12 entries).
pub const MAX_INDEX: u64 = 1 << 40;
/// Logical registry rows per packed row (as a shift).
pub const POSTING_SHIFT: u32 = 8;
/// The name RocksDB records for [`append_merge`]; a database written with
/// merge operands can only be read by an operator of this name.
pub const APPEND_OPERATOR: &str = "custody.append.v1";

/// Stored data does not follow this layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

fn bad(msg: impl Into<String>) -> LayoutError {
    LayoutError(msg.into())
}

/// The merge operator of every packed family: the value is the existing
/// value followed by every operand, in write order. Associative, so RocksDB
/// may also combine operands among themselves during flushes and
/// compactions.
pub fn append_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    Some(concat(existing, operands))
}

fn concat<'a>(existing: Option<&'a [u8]>, operands: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
    for op in operands {
        out.extend_from_slice(op);
    }
    out
}

// ---- entries ----------------------------------------------------------

/// Key of the `entries` row holding entry `index`.
pub fn entry_row_key(index: u64) -> [u8; 8] {
    (index >> ROW_SHIFT).to_be_bytes()
}

/// Appends `entry`'s record (`len ‖ bytes`) to a row fragment. The caller
/// has checked `entry.len() <= MAX_ENTRY_SIZE` (see [`check_entry`]).
pub fn push_entry(fragment: &mut Vec<u8>, entry: &[u8]) {
    fragment.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    fragment.extend_from_slice(entry);
}

/// Entries the log could never have accepted have no encoding.
pub fn check_entry(entry: &[u8]) -> Result<(), LayoutError> {
    if entry.is_empty() || entry.len() > MAX_ENTRY_SIZE {
        return Err(bad(format!("an entry of {} bytes, outside 1..={MAX_ENTRY_SIZE}", entry.len())));
    }
    Ok(())
}

/// Splits an `entries` row into its entries (1..=16, each 1..=65535 bytes).
pub fn split_entries(row: &[u8]) -> Result<Vec<&[u8]>, LayoutError> {
    let mut out = Vec::with_capacity(ROW_WIDTH as usize);
    let mut rest = row;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err(bad(format!("entries row truncated in the length of record {}", out.len())));
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if len == 0 || tail.len() < len {
            return Err(bad(format!(
                "entries row record {} of length {len} is empty or truncated",
                out.len()
            )));
        }
        let (entry, tail) = tail.split_at(len);
        out.push(entry);
        rest = tail;
    }
    if out.is_empty() || out.len() as u64 > ROW_WIDTH {
        return Err(bad(format!("entries row holds {} records, not 1..={ROW_WIDTH}", out.len())));
    }
    Ok(out)
}

// ---- hashes -----------------------------------------------------------

/// Whether hashes of `level` are stored (the others are recomputed).
pub fn is_stored_level(level: u8) -> bool {
    level % STRATUM == 0
}

/// Key of the `hashes` row holding stored hash `(level, index)`; `level`
/// must be a stored level.
pub fn hash_row_key(level: u8, index: u64) -> [u8; 9] {
    debug_assert!(is_stored_level(level));
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&(index >> ROW_SHIFT).to_be_bytes());
    k
}

/// Inverse of [`hash_row_key`]: the row's level and the index of its first
/// hash; `None` for a key of the wrong shape or an unstored level.
pub fn parse_hash_row_key(key: &[u8]) -> Option<(u8, u64)> {
    let (&level, row) = key.split_first()?;
    let row = u64::from_be_bytes(row.try_into().ok()?);
    (is_stored_level(level) && row <= u64::MAX >> ROW_SHIFT).then_some((level, row << ROW_SHIFT))
}

/// The hashes of a `hashes` row (1..=16 of them).
pub fn split_hashes(row: &[u8]) -> Result<Vec<Hash>, LayoutError> {
    let n = row.len() / HASH_SIZE;
    if row.len() % HASH_SIZE != 0 || n == 0 || n as u64 > ROW_WIDTH {
        return Err(bad(format!("hashes row of {} bytes, not 1..={ROW_WIDTH} hashes", row.len())));
    }
    Ok(row.chunks_exact(HASH_SIZE).map(|c| Hash::from_slice(c).expect("chunk of HASH_SIZE")).collect())
}

/// Where node `id` comes from: `span` consecutive stored hashes starting at
/// `first` on stored level `base`, all in one row, hashed pairwise
/// `id.level - base` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSource {
    /// The stored level below (or at) the node.
    pub base: u8,
    /// Index on `base` of the node's leftmost descendant.
    pub first: u64,
    /// How many descendants on `base` (a power of two, at most 8).
    pub span: u64,
}

impl HashSource {
    /// The source of node `id`, or `None` when its descendants' indexes
    /// overflow (no such node can be in a tree).
    pub fn of(id: NodeId) -> Option<HashSource> {
        let base = id.level - id.level % STRATUM;
        let up = u32::from(id.level - base);
        let first = id.index.checked_mul(1 << up)?;
        Some(HashSource { base, first, span: 1 << up })
    }

    /// The row key holding the source hashes.
    pub fn row_key(&self) -> [u8; 9] {
        hash_row_key(self.base, self.first)
    }

    /// The node's hash from the decoded row, or `None` when the row does
    /// not (yet) hold every needed hash.
    pub fn compute(&self, row: &[Hash]) -> Option<Hash> {
        let at = (self.first % ROW_WIDTH) as usize;
        let mut layer: Vec<Hash> = row.get(at..at + self.span as usize)?.to_vec();
        while layer.len() > 1 {
            layer = layer.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        layer.pop()
    }
}

// ---- leaf_index -------------------------------------------------------

/// Key of the `leaf_index` bucket of `leaf`.
pub fn leaf_bucket(leaf: &Hash) -> [u8; BUCKET_BYTES] {
    [leaf.0[0], leaf.0[1]]
}

/// Appends the posting `leaf ↦ index` to a bucket fragment. The caller has
/// checked `index < MAX_INDEX`.
pub fn push_posting(fragment: &mut Vec<u8>, leaf: &Hash, index: u64) {
    fragment.extend_from_slice(&leaf.0[BUCKET_BYTES..BUCKET_BYTES + TAG_BYTES]);
    fragment.extend_from_slice(&index.to_be_bytes()[3..]);
}

/// The postings of a bucket: `(tag, index)` pairs.
pub fn split_postings(bucket: &[u8]) -> Result<Vec<([u8; TAG_BYTES], u64)>, LayoutError> {
    if bucket.is_empty() || bucket.len() % POSTING_BYTES != 0 {
        return Err(bad(format!(
            "leaf_index bucket of {} bytes, not a multiple of {POSTING_BYTES}",
            bucket.len()
        )));
    }
    Ok(bucket
        .chunks_exact(POSTING_BYTES)
        .map(|p| {
            let mut tag = [0u8; TAG_BYTES];
            tag.copy_from_slice(&p[..TAG_BYTES]);
            let mut index = [0u8; 8];
            index[3..].copy_from_slice(&p[TAG_BYTES..]);
            (tag, u64::from_be_bytes(index))
        })
        .collect())
}

/// Indexes in `bucket` whose posting matches `leaf`'s tag: candidates only,
/// to be confirmed against the stored leaf hash (a 48-bit prefix can be
/// shared by accident or on purpose).
pub fn candidates(bucket: &[u8], leaf: &Hash) -> Result<Vec<u64>, LayoutError> {
    let tag = &leaf.0[BUCKET_BYTES..BUCKET_BYTES + TAG_BYTES];
    Ok(split_postings(bucket)?.into_iter().filter(|(t, _)| t == tag).map(|(_, i)| i).collect())
}

/// Whether `leaf` could be the leaf hash behind posting `tag` in `bucket`.
pub fn posting_matches(bucket: &[u8], tag: &[u8; TAG_BYTES], leaf: &Hash) -> bool {
    leaf.0[..BUCKET_BYTES] == *bucket && leaf.0[BUCKET_BYTES..BUCKET_BYTES + TAG_BYTES] == tag[..]
}

// ---- registry_index ---------------------------------------------------

/// The packed row key and fragment byte of logical registry row `row`
/// (`P ‖ index`, index u64 BE); `None` when `row` is shorter than 8 bytes.
pub fn posting_row(row: &[u8]) -> Option<(Vec<u8>, u8)> {
    let split = row.len().checked_sub(8)?;
    let index = u64::from_be_bytes(row[split..].try_into().ok()?);
    let mut key = row[..split].to_vec();
    key.extend_from_slice(&(index >> POSTING_SHIFT).to_be_bytes());
    Some((key, (index & 0xff) as u8))
}

/// The logical rows of packed registry row `key ↦ value`, in order.
pub fn expand_postings(key: &[u8], value: &[u8]) -> Result<Vec<Vec<u8>>, LayoutError> {
    let Some(split) = key.len().checked_sub(8) else {
        return Err(bad(format!("registry_index key of {} bytes", key.len())));
    };
    let bucket = u64::from_be_bytes(key[split..].try_into().expect("8 bytes"));
    if value.is_empty() || value.windows(2).any(|w| w[0] >= w[1]) || bucket > u64::MAX >> POSTING_SHIFT {
        return Err(bad("registry_index row is empty, out of order or out of range".to_owned()));
    }
    Ok(value
        .iter()
        .map(|&low| {
            let mut row = key[..split].to_vec();
            row.extend_from_slice(&((bucket << POSTING_SHIFT) | u64::from(low)).to_be_bytes());
            row
        })
        .collect())
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
