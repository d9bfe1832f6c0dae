//! RFC 9162 section 2.1 tree hashes and proofs, computed from stored hashes.
//!
//! The RFC defines `MTH`, `PATH` and `SUBPROOF` recursively over leaf ranges.
//! Every range the recursion touches starts at a multiple of a power of two
//! at least as large as the range, so its hash is the right fold of the
//! maximal complete subtrees that tile it ([`subtree_nodes`]), and those are
//! exactly the hashes a log stores. Each function here therefore first plans
//! the list of stored hashes it needs (the public `*_nodes` functions, which
//! the tiles code uses to decide what to fetch), reads them all in **one**
//! batched call, then folds them.

use crate::hash::{empty_root, node_hash, Hash};
use crate::stored::{read_checked, HashReader, NodeId, ReadError};

/// Why a tree hash or proof could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Inclusion of a leaf the tree does not have (`index >= size`).
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size it was requested in.
        size: u64,
    },
    /// Consistency from a larger tree to a smaller one (`old > new`).
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// Claimed earlier size.
        old: u64,
        /// Claimed later size.
        new: u64,
    },
    /// The storage could not supply the hashes.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Largest power of two strictly below `n` (the RFC's `k`); `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    assert!(n >= 2, "split_point({n}): RFC 9162 only splits ranges of 2 or more leaves");
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The maximal complete subtrees tiling the leaf range `[start, end)`, left to
/// right (empty when `start >= end`).
///
/// For a range the RFC recursion produces (`[0, n)`, or a range starting at a
/// multiple of a power of two not smaller than its length) the sizes are
/// strictly decreasing and `MTH` of the range is
/// `node_hash(h0, node_hash(h1, ... node_hash(h_{k-2}, h_{k-1})))`.
pub fn subtree_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    push_subtree_nodes(start, end, &mut out);
    out
}

fn push_subtree_nodes(mut start: u64, end: u64, out: &mut Vec<NodeId>) {
    while start < end {
        // Largest aligned block at `start` that still fits before `end`.
        let fit = 63 - (end - start).leading_zeros();
        let level = start.trailing_zeros().min(fit);
        out.push(NodeId::new(level as u8, start >> level));
        start += 1u64 << level;
    }
}

/// Folds the hashes of a range's subtrees (left to right) into `MTH` of the
/// range.
fn fold_right(hashes: &[Hash]) -> Hash {
    let (last, rest) =
        hashes.split_last().expect("proof plan produced an empty range: Merkle math is broken");
    rest.iter().rev().fold(*last, |acc, left| node_hash(left, &acc))
}

/// A list of leaf ranges to hash, flattened into stored node ids.
struct Plan {
    ids: Vec<NodeId>,
    /// Number of ids making up each range, in output order.
    groups: Vec<usize>,
}

impl Plan {
    fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Plan {
        let mut plan = Plan { ids: Vec::new(), groups: Vec::new() };
        for (start, end) in ranges {
            let before = plan.ids.len();
            push_subtree_nodes(start, end, &mut plan.ids);
            plan.groups.push(plan.ids.len() - before);
        }
        plan
    }

    /// One batched read, then one hash per range.
    fn execute(&self, reader: &(impl HashReader + ?Sized)) -> Result<Vec<Hash>, ProofError> {
        let hashes = read_checked(reader, &self.ids)?;
        let mut out = Vec::with_capacity(self.groups.len());
        let mut at = 0;
        for &len in &self.groups {
            out.push(fold_right(&hashes[at..at + len]));
            at += len;
        }
        Ok(out)
    }
}

/// The sibling ranges of RFC 9162 2.1.3.1 `PATH(m, D[0:n])`, bottom first.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut a, mut b) = (0u64, size);
    let mut top_down = Vec::new();
    while b - a > 1 {
        let k = split_point(b - a);
        if index - a < k {
            // "for m < k, PATH(m, D_n) = PATH(m, D[0:k]) : MTH(D[k:n])"
            top_down.push((a + k, b));
            b = a + k;
        } else {
            // "for m >= k, PATH(m, D_n) = PATH(m - k, D[k:n]) : MTH(D[0:k])"
            top_down.push((a, a + k));
            a += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// The ranges of RFC 9162 2.1.4.1 `PROOF(m, D_n) = SUBPROOF(m, D_n, true)`,
/// in proof order.
fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    // Consistency with the empty tree and with itself needs no hashes.
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let (mut a, mut b) = (0u64, new);
    let mut complete = true; // the RFC's flag `b`
    let mut top_down = Vec::new();
    let mut last = None;
    loop {
        let m = old - a;
        if m == b - a {
            // "SUBPROOF(m, D[m], true) = {}"; "SUBPROOF(m, D[m], false) = {MTH(D[m])}"
            if !complete {
                last = Some((a, b));
            }
            break;
        }
        let k = split_point(b - a);
        if m <= k {
            // "If m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n])"
            top_down.push((a + k, b));
            b = a + k;
        } else {
            // "If m > k: SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])"
            top_down.push((a, a + k));
            a += k;
            complete = false;
        }
    }
    Ok(last.into_iter().chain(top_down.into_iter().rev()).collect())
}

/// Stored hashes [`tree_hash`] reads, in read order.
pub fn tree_hash_nodes(size: u64) -> Vec<NodeId> {
    subtree_nodes(0, size)
}

/// Stored hashes [`inclusion_proof`] reads, in read order.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeId>, ProofError> {
    Ok(Plan::from_ranges(inclusion_ranges(index, size)?).ids)
}

/// Stored hashes [`consistency_proof`] reads, in read order.
pub fn consistency_proof_nodes(old: u64, new: u64) -> Result<Vec<NodeId>, ProofError> {
    Ok(Plan::from_ranges(consistency_ranges(old, new)?).ids)
}

/// `MTH(D[0:size])` (RFC 9162 2.1.1); the empty-tree hash for size 0.
///
/// Reads only the `popcount(size)` complete-subtree roots, so it costs
/// `popcount(size) - 1` hashes whatever the tree size.
pub fn tree_hash(size: u64, reader: &(impl HashReader + ?Sized)) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    let ids = tree_hash_nodes(size);
    let hashes = read_checked(reader, &ids)?;
    Ok(fold_right(&hashes))
}

/// RFC 9162 2.1.3.1 `PATH(index, D[0:size])`: sibling hashes from the leaf up.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    reader: &(impl HashReader + ?Sized),
) -> Result<Vec<Hash>, ProofError> {
    Plan::from_ranges(inclusion_ranges(index, size)?).execute(reader)
}

/// RFC 9162 2.1.4.1 `PROOF(old, D[0:new])`; empty when `old` is 0 or `new`.
pub fn consistency_proof(
    old: u64,
    new: u64,
    reader: &(impl HashReader + ?Sized),
) -> Result<Vec<Hash>, ProofError> {
    Plan::from_ranges(consistency_ranges(old, new)?).execute(reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;
    use std::cell::Cell;

    /// Synthetic reader: each stored value is a hash of its node id. Not a
    /// consistent tree, but enough to test planning, proof lengths and the
    /// one-read rule at sizes no real store could hold.
    struct Counting {
        calls: Cell<usize>,
    }

    impl HashReader for Counting {
        fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
            self.calls.set(self.calls.get() + 1);
            Ok(ids.iter().map(|id| sha256(&[&[id.level][..], &id.index.to_be_bytes()].concat())).collect())
        }
    }

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
        assert_eq!(split_point(1 << 63), 1 << 62);
    }

    #[test]
    fn subtree_nodes_tile_ranges() {
        assert_eq!(subtree_nodes(0, 0), vec![]);
        assert_eq!(subtree_nodes(0, 7), vec![NodeId::new(2, 0), NodeId::new(1, 2), NodeId::new(0, 6)]);
        assert_eq!(subtree_nodes(4, 7), vec![NodeId::new(1, 2), NodeId::new(0, 6)]);
        assert_eq!(subtree_nodes(3, 8), vec![NodeId::new(0, 3), NodeId::new(2, 1)]);
        let all = subtree_nodes(0, u64::MAX);
        assert_eq!(all.len(), 64);
        assert_eq!(all[0], NodeId::new(63, 0));
        assert_eq!(all[63], NodeId::new(0, u64::MAX - 1));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let r = Counting { calls: Cell::new(0) };
        assert!(matches!(inclusion_proof(0, 0, &r), Err(ProofError::IndexOutOfRange { index: 0, size: 0 })));
        assert!(matches!(inclusion_proof(u64::MAX, u64::MAX, &r), Err(ProofError::IndexOutOfRange { .. })));
        assert!(matches!(consistency_proof(3, 2, &r), Err(ProofError::SizeOrder { old: 3, new: 2 })));
        assert!(matches!(consistency_proof_nodes(u64::MAX, 0), Err(ProofError::SizeOrder { .. })));
        assert_eq!(r.calls.get(), 0);
    }

    #[test]
    fn extreme_sizes_plan_one_read() {
        let r = Counting { calls: Cell::new(0) };
        tree_hash(u64::MAX, &r).unwrap();
        assert_eq!(r.calls.get(), 1);
        // The last leaf of 2^64 - 1 sits at depth 63, the first at depth 64.
        let p = inclusion_proof(u64::MAX - 1, u64::MAX, &r).unwrap();
        assert_eq!(r.calls.get(), 2);
        assert_eq!(p.len(), 63);
        let p = inclusion_proof(0, u64::MAX, &r).unwrap();
        assert_eq!(p.len(), 64);
        // The longest possible consistency proof has 65 hashes (see verify).
        let p = consistency_proof(3, u64::MAX, &r).unwrap();
        assert_eq!(r.calls.get(), 4);
        assert_eq!(p.len(), 65);
        assert!(consistency_proof(0, u64::MAX, &r).unwrap().is_empty());
        assert!(consistency_proof(u64::MAX, u64::MAX, &r).unwrap().is_empty());
        // Empty plans never reach the reader.
        assert_eq!(r.calls.get(), 4);
        assert_eq!(tree_hash(0, &r).unwrap(), empty_root());
        assert_eq!(r.calls.get(), 4);
    }

    #[test]
    fn reader_errors_pass_through() {
        struct Broken;
        impl HashReader for Broken {
            fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
                Err(ReadError::Missing(ids[0]))
            }
        }
        struct Short;
        impl HashReader for Short {
            fn read_hashes(&self, _: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
                Ok(vec![Hash::default()])
            }
        }
        assert!(matches!(tree_hash(3, &Broken), Err(ProofError::Read(ReadError::Missing(_)))));
        assert!(matches!(inclusion_proof(0, 7, &Short), Err(ProofError::Read(ReadError::Backend(_)))));
    }
}
