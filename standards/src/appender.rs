//! The right edge ("frontier", "compact range") of a growing Merkle tree.
//!
//! A tree of `n` leaves is the concatenation of one complete subtree per set
//! bit of `n`, largest first. Keeping just those at most 64 roots is enough to
//! append a leaf (merging equal-sized subtrees like a binary counter carries)
//! and to compute the RFC 9162 tree hash, which is why the log server needs no
//! reads on its write path.

use crate::hash::{empty_root, node_hash, Hash};
use crate::proof::{tree_hash_nodes, ProofError};
use crate::stored::{read_checked, HashReader, NodeId};

/// Frontier of a tree: the roots of its maximal complete subtrees.
///
/// Fixed-size storage keeps appends allocation-free on the hot path.
#[derive(Clone)]
pub struct Appender {
    size: u64,
    /// `stack[..size.count_ones()]`: subtree roots left to right, i.e. from
    /// the highest set bit of `size` down to the lowest.
    stack: [Hash; 64],
}

impl Default for Appender {
    fn default() -> Self {
        Appender::new()
    }
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").field("size", &self.size).field("frontier", &self.frontier()).finish()
    }
}

impl Appender {
    /// The frontier of the empty tree.
    pub const fn new() -> Self {
        Appender { size: 0, stack: [Hash([0; 32]); 64] }
    }

    /// Resumes a log of `size` leaves from its stored hashes, with one batched
    /// read of the `popcount(size)` complete-subtree roots.
    pub fn from_reader(size: u64, reader: &(impl HashReader + ?Sized)) -> Result<Appender, ProofError> {
        let ids = tree_hash_nodes(size);
        let hashes = read_checked(reader, &ids)?;
        let mut out = Appender { size, stack: [Hash::default(); 64] };
        out.stack[..hashes.len()].copy_from_slice(&hashes);
        Ok(out)
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the maximal complete subtrees, left to right (what
    /// [`crate::proof::tree_hash_nodes`] names), e.g. for persisting them.
    pub fn frontier(&self) -> &[Hash] {
        &self.stack[..self.size.count_ones() as usize]
    }

    /// Appends the leaf hash `leaf` as entry number `size()`.
    ///
    /// Pushes onto `out` every stored hash this append creates: the leaf
    /// itself at `(0, n)`, then each newly completed interior node, bottom up.
    /// That is one node hash per leaf on average, and nothing is allocated
    /// except by `out` growing.
    ///
    /// # Panics
    /// When the tree already holds `u64::MAX` leaves: no stored node could
    /// address another one.
    pub fn append(&mut self, leaf: Hash, out: &mut Vec<(NodeId, Hash)>) {
        let n = self.size;
        let next = n.checked_add(1).expect("Appender::append: tree size would exceed u64::MAX");
        out.push((NodeId::leaf(n), leaf));
        let mut top = n.count_ones() as usize;
        let mut hash = leaf;
        // Each trailing one bit of `n` is a complete subtree of the same size
        // as the one being carried; merge them, like a binary increment.
        let merges = n.trailing_ones();
        for level in 1..=merges {
            top -= 1;
            hash = node_hash(&self.stack[top], &hash);
            out.push((NodeId::new(level as u8, (next >> level) - 1), hash));
        }
        self.stack[top] = hash;
        self.size = next;
    }

    /// `MTH(D[0:size])` (RFC 9162 2.1.1): the right fold of the frontier.
    pub fn root(&self) -> Hash {
        match self.frontier().split_last() {
            None => empty_root(),
            Some((last, rest)) => rest.iter().rev().fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn appends_emit_leaf_then_completed_nodes() {
        let mut a = Appender::new();
        assert_eq!(a.root(), empty_root());
        let l: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();
        let mut out = Vec::new();
        a.append(l[0], &mut out);
        assert_eq!(out, vec![(NodeId::leaf(0), l[0])]);
        assert_eq!(a.root(), l[0]);
        out.clear();
        a.append(l[1], &mut out);
        let n01 = node_hash(&l[0], &l[1]);
        assert_eq!(out, vec![(NodeId::leaf(1), l[1]), (NodeId::new(1, 0), n01)]);
        out.clear();
        a.append(l[2], &mut out);
        assert_eq!(out, vec![(NodeId::leaf(2), l[2])]);
        assert_eq!(a.root(), node_hash(&n01, &l[2]));
        out.clear();
        a.append(l[3], &mut out);
        let n23 = node_hash(&l[2], &l[3]);
        let n = node_hash(&n01, &n23);
        assert_eq!(out, vec![(NodeId::leaf(3), l[3]), (NodeId::new(1, 1), n23), (NodeId::new(2, 0), n)]);
        assert_eq!(a.frontier(), &[n]);
        assert_eq!(a.root(), n);
        assert_eq!(a.size(), 4);
    }

    #[test]
    #[should_panic(expected = "exceed u64::MAX")]
    fn append_past_u64_max_panics_clearly() {
        struct Zero;
        impl HashReader for Zero {
            fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, crate::ReadError> {
                Ok(vec![Hash::default(); ids.len()])
            }
        }
        let mut a = Appender::from_reader(u64::MAX, &Zero).unwrap();
        assert_eq!(a.frontier().len(), 64);
        a.append(Hash::default(), &mut Vec::new());
    }
}
