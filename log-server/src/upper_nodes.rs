//! The upper part of the tree, kept in memory for every read of hashes
//! (proofs, tiles, receipts): [`crate::store::RocksStore`] reads through it.
//!
//! Every inclusion proof of a tree of `n` leaves needs one node per level,
//! `log2(n)` in all, and the store keeps only every fourth level: each
//! node between is recomputed from up to eight hashes of one row. At 10^7
//! leaves that is six rows read and about 66 node hashes per proof, most
//! of them for levels that thousands of other proofs share. A node is the
//! root of a complete subtree, so once it exists its hash never changes:
//! the nodes from [`FIRST_LEVEL`] up are kept here the first time any
//! read computes them, and later proofs need only the two bottom rows
//! (22 node hashes).
//!
//! Memory: `n / 2^FIRST_LEVEL` nodes at the first cached level, as many
//! again above it, 32 bytes each (about 2.5 MB at 10^7 leaves). Each level
//! keeps the nodes over the first [`COVERED_LEAVES`] leaves and at least
//! [`MIN_PER_LEVEL`] (see [`per_level`]), so the cache stays under 70 MiB
//! at any size; reads beyond go to the store as before.

use std::sync::RwLock;

use custody_standards::{Hash, HashReader, NodeId, ReadError};

/// The lowest level kept: one node per 256 leaves.
pub const FIRST_LEVEL: u8 = 8;
/// Leaves whose upper nodes are all kept (2^20 nodes, 32 MiB, at the first
/// level).
pub const COVERED_LEAVES: u64 = 1 << 28;
/// Nodes kept at every level, however high: the top of any tree.
pub const MIN_PER_LEVEL: u64 = 1 << 12;

/// How many nodes of `level` (from the left) are kept: the bound is
/// `Σ per_level(l)` over the cached levels, about 2.3 million nodes.
pub fn per_level(level: u8) -> u64 {
    COVERED_LEAVES.checked_shr(u32::from(level)).unwrap_or(0).max(MIN_PER_LEVEL)
}

/// Hashes of upper nodes by level and index; all-zero marks a node not
/// read yet (SHA-256 does not produce it).
#[derive(Default)]
pub struct UpperNodes {
    levels: RwLock<Vec<Vec<Hash>>>,
}

impl UpperNodes {
    /// An empty cache.
    pub fn new() -> Self {
        UpperNodes::default()
    }

    /// `inner`, with the upper nodes answered from (and added to) this
    /// cache.
    pub fn over<'a>(&'a self, inner: &'a dyn HashReader) -> CachedReader<'a> {
        CachedReader { cache: self, inner }
    }

    /// Nodes held, for tests and metrics.
    pub fn len(&self) -> usize {
        let levels = self.levels.read().unwrap_or_else(|p| p.into_inner());
        levels.iter().map(|l| l.iter().filter(|h| **h != Hash::default()).count()).sum()
    }

    /// Whether no node is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(id: NodeId) -> Option<(usize, usize)> {
        let level = id.level.checked_sub(FIRST_LEVEL)?;
        (id.index < per_level(id.level)).then_some((usize::from(level), id.index as usize))
    }

    fn get(levels: &[Vec<Hash>], id: NodeId) -> Option<Hash> {
        let (level, index) = Self::slot(id)?;
        levels.get(level)?.get(index).copied().filter(|h| *h != Hash::default())
    }

    fn insert(&self, nodes: impl Iterator<Item = (NodeId, Hash)>) {
        let mut nodes = nodes.filter_map(|(id, h)| Some((Self::slot(id)?, h))).peekable();
        if nodes.peek().is_none() {
            return;
        }
        let mut levels = self.levels.write().unwrap_or_else(|p| p.into_inner());
        for ((level, index), hash) in nodes {
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            let l = &mut levels[level];
            if l.len() <= index {
                l.resize(index + 1, Hash::default());
            }
            l[index] = hash;
        }
    }
}

/// A [`HashReader`] answering upper nodes from an [`UpperNodes`] and the
/// rest from the reader beneath (whose errors it passes on unchanged, so
/// a memory-only reader still reports what is not in memory).
pub struct CachedReader<'a> {
    cache: &'a UpperNodes,
    inner: &'a dyn HashReader,
}

impl HashReader for CachedReader<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let levels = self.cache.levels.read().unwrap_or_else(|p| p.into_inner());
            for (i, id) in ids.iter().enumerate() {
                match UpperNodes::get(&levels, *id) {
                    Some(h) => out.push(h),
                    None => {
                        out.push(Hash::default());
                        missing.push((i, *id));
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<NodeId> = missing.iter().map(|(_, id)| *id).collect();
        let read = self.inner.read_hashes(&wanted)?;
        if read.len() != wanted.len() {
            return Err(ReadError::Backend(
                format!("hash reader returned {} hashes for {} requested", read.len(), wanted.len()).into(),
            ));
        }
        self.cache.insert(wanted.iter().copied().zip(read.iter().copied()));
        for ((i, _), h) in missing.into_iter().zip(read) {
            out[i] = h;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use custody_standards::{inclusion_proof, leaf_hash, MemoryHashStore};

    use super::*;

    /// A reader that records every id it was asked for.
    struct Counting<'a> {
        inner: &'a MemoryHashStore,
        asked: RefCell<Vec<NodeId>>,
    }

    impl HashReader for Counting<'_> {
        fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
            self.asked.borrow_mut().extend_from_slice(ids);
            self.inner.read_hashes(ids)
        }
    }

    fn tree(n: u64) -> MemoryHashStore {
        let mut t = MemoryHashStore::new();
        for i in 0..n {
            t.append(leaf_hash(&i.to_be_bytes()));
        }
        t
    }

    #[test]
    fn proofs_through_the_cache_equal_proofs_without_it_and_reuse_upper_nodes() {
        let t = tree(70_000);
        let cache = UpperNodes::new();
        for size in [1, 255, 256, 257, 65_536, 70_000] {
            for index in [0, size / 3, size - 1] {
                let counting = Counting { inner: &t, asked: RefCell::new(Vec::new()) };
                let cached = inclusion_proof(index, size, &cache.over(&counting)).unwrap();
                assert_eq!(cached, inclusion_proof(index, size, &t).unwrap(), "index {index}, size {size}");
                // Asked again, nothing at or above the first cached level
                // reaches the store.
                let again = Counting { inner: &t, asked: RefCell::new(Vec::new()) };
                assert_eq!(inclusion_proof(index, size, &cache.over(&again)).unwrap(), cached);
                assert!(again.asked.borrow().iter().all(|id| id.level < FIRST_LEVEL), "{:?}", again.asked);
            }
        }
        assert!(!cache.is_empty());
    }

    #[test]
    fn errors_of_the_store_pass_through_and_cache_nothing() {
        struct Failing;
        impl HashReader for Failing {
            fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
                Err(ReadError::Missing(ids[0]))
            }
        }
        let cache = UpperNodes::new();
        let id = NodeId::new(FIRST_LEVEL, 3);
        assert!(matches!(cache.over(&Failing).read_hashes(&[id]), Err(ReadError::Missing(i)) if i == id));
        assert!(cache.is_empty());
    }

    #[test]
    fn lower_levels_and_indexes_beyond_the_bound_are_not_kept() {
        let cache = UpperNodes::new();
        let h = leaf_hash(b"x");
        cache.insert(
            [
                (NodeId::new(FIRST_LEVEL - 1, 0), h),
                (NodeId::new(FIRST_LEVEL, per_level(FIRST_LEVEL)), h),
                (NodeId::new(40, MIN_PER_LEVEL), h),
            ]
            .into_iter(),
        );
        assert!(cache.is_empty());
        cache.insert(
            [(NodeId::new(FIRST_LEVEL + 2, 5), h), (NodeId::new(40, MIN_PER_LEVEL - 1), h)].into_iter(),
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_whole_cache_is_bounded_at_any_size() {
        assert_eq!(per_level(FIRST_LEVEL), 1 << 20);
        assert_eq!(per_level(20), 1 << 12);
        assert_eq!(per_level(63), MIN_PER_LEVEL);
        let nodes: u64 = (FIRST_LEVEL..64).map(per_level).sum();
        assert!(nodes * 32 < 70 << 20, "{nodes} nodes");
    }
}
