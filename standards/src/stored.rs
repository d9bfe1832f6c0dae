//! Addressing of stored hashes, and the one seam through which storage reaches
//! the Merkle math.
//!
//! A log persists exactly one hash per *complete* subtree: the node at
//! `(level, index)` is the Merkle tree hash of leaves
//! `[index << level, (index + 1) << level)`, and exists once the tree has at
//! least `(index + 1) << level` leaves. Appending a leaf therefore only ever
//! adds new stored hashes (never changes one), which is what lets a log keep
//! them write-once in a key-value store, and lets tiles be immutable.

use std::fmt;

use crate::hash::Hash;

/// Position of a stored hash: a complete subtree of `2^level` leaves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = leaf hash).
    pub level: u8,
    /// Position among the nodes of that level, counting from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` whose subtree starts at leaf `index << level`.
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// The leaf hash of entry `index`.
    pub const fn leaf(index: u64) -> Self {
        NodeId { level: 0, index }
    }

    /// Half-open range of leaf indexes this node covers, or `None` if the
    /// range does not fit in `u64` (such a node can never exist).
    pub fn leaf_range(&self) -> Option<(u64, u64)> {
        let start = self.index.checked_shl(self.level as u32)?;
        if start >> self.level != self.index {
            return None;
        }
        let end = (self.index + 1).checked_shl(self.level as u32)?;
        if end >> self.level != self.index + 1 {
            return None;
        }
        Some((start, end))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.level, self.index)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {} index {}", self.level, self.index)
    }
}

/// Why stored hashes could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The backend has no hash at that position (not yet written, or lost).
    #[error("stored hash at {0} is not available")]
    Missing(NodeId),
    /// Data came back but does not authenticate against the trusted tree root
    /// (for example a tile that does not hash up to the checkpoint).
    #[error("stored hashes do not authenticate against the tree root: {0}")]
    Unauthenticated(String),
    /// The backend itself failed (disk, network, decoding).
    #[error("hash storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Source of stored hashes for the Merkle computations.
///
/// Contract: `read_hashes(ids)` returns exactly `ids.len()` hashes, the i-th
/// being the stored hash at `ids[i]`, or an error. Every computation in this
/// crate asks for all the hashes it needs in **one** call, so a backend can
/// turn it into one batched disk read or one round of tile fetches. A reader
/// returning the wrong number of hashes is a bug in the reader and is
/// reported as [`ReadError::Backend`], never trusted.
pub trait HashReader {
    /// Reads the stored hashes at `ids`, in order.
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError>;
}

impl<T: HashReader + ?Sized> HashReader for &T {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        (**self).read_hashes(ids)
    }
}

/// Calls `reader` and enforces the length half of the [`HashReader`] contract.
pub(crate) fn read_checked<R: HashReader + ?Sized>(
    reader: &R,
    ids: &[NodeId],
) -> Result<Vec<Hash>, ReadError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(ids)?;
    if hashes.len() != ids.len() {
        return Err(ReadError::Backend(
            format!("hash reader returned {} hashes for {} requested", hashes.len(), ids.len()).into(),
        ));
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_range_covers_subtree() {
        assert_eq!(NodeId::new(0, 5).leaf_range(), Some((5, 6)));
        assert_eq!(NodeId::new(3, 2).leaf_range(), Some((16, 24)));
        assert_eq!(NodeId::new(63, 1).leaf_range(), None);
        assert_eq!(NodeId::new(64, 0).leaf_range(), None);
        assert_eq!(NodeId::new(1, u64::MAX).leaf_range(), None);
    }
}
