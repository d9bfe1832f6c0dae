//! An in-memory store of every stored hash of a tree.
//!
//! Tests, benchmarks and verifier caches need a [`HashReader`] with no
//! backend; this one is filled by the same [`Appender`] the log server uses,
//! so it exercises the production write path rather than a second one.

use crate::appender::Appender;
use crate::hash::Hash;
use crate::stored::{HashReader, NodeId, ReadError};

/// Every stored hash of a tree, by level then index.
#[derive(Clone, Debug, Default)]
pub struct MemoryHashStore {
    appender: Appender,
    /// `levels[l][i]` is the stored hash at `(l, i)`.
    levels: Vec<Vec<Hash>>,
    /// Reused output buffer of [`Appender::append`].
    scratch: Vec<(NodeId, Hash)>,
}

impl MemoryHashStore {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the leaf hash `leaf` as entry number `size()`, storing every
    /// hash this completes.
    pub fn append(&mut self, leaf: Hash) {
        self.scratch.clear();
        self.appender.append(leaf, &mut self.scratch);
        for &(id, hash) in &self.scratch {
            let level = id.level as usize;
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            let row = &mut self.levels[level];
            assert_eq!(
                row.len() as u64,
                id.index,
                "Appender emitted node {id} out of order: Merkle math is broken"
            );
            row.push(hash);
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.appender.size()
    }

    /// Tree hash at the current size.
    pub fn root(&self) -> Hash {
        self.appender.root()
    }

    /// The stored hash at `id`, if the tree is large enough to have it.
    pub fn get(&self, id: NodeId) -> Option<Hash> {
        let index = usize::try_from(id.index).ok()?;
        self.levels.get(id.level as usize)?.get(index).copied()
    }
}

impl HashReader for MemoryHashStore {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        ids.iter().map(|&id| self.get(id).ok_or(ReadError::Missing(id))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{leaf_hash, node_hash};

    #[test]
    fn stores_every_complete_subtree() {
        let mut s = MemoryHashStore::new();
        let l: Vec<Hash> = (0u8..3).map(|i| leaf_hash(&[i])).collect();
        for h in &l {
            s.append(*h);
        }
        assert_eq!(s.size(), 3);
        assert_eq!(s.get(NodeId::leaf(2)), Some(l[2]));
        assert_eq!(s.get(NodeId::new(1, 0)), Some(node_hash(&l[0], &l[1])));
        assert_eq!(s.get(NodeId::new(1, 1)), None);
        assert_eq!(s.get(NodeId::new(200, u64::MAX)), None);
        assert_eq!(s.root(), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        match s.read_hashes(&[NodeId::leaf(0), NodeId::leaf(3)]) {
            Err(ReadError::Missing(id)) => assert_eq!(id, NodeId::leaf(3)),
            other => panic!("expected Missing, got {other:?}"),
        }
        assert_eq!(s.read_hashes(&[NodeId::leaf(1), NodeId::leaf(0)]).unwrap(), vec![l[1], l[0]]);
    }
}
