//! The persistent sparse Merkle tree: nodes shared through `Arc`, hashes
//! computed once when a node is built, path copying on update.
//!
//! Only the canonical shape is ever stored: an empty subtree is
//! [`Link::Empty`], a subtree with one entry is that entry's [`Leaf`]
//! (however deep its key would otherwise sit), and a [`Branch`] always holds
//! two or more entries. So the walk along a key's path ends exactly where
//! the proof's terminal is, and a root can be read in O(1).

use std::sync::Arc;

use custody_standards::hash::Hash;

use super::hashing::{bit, internal_hash, leaf_hash, EMPTY};
use super::proof::{Proof, Terminal};

/// One entry, with its leaf hash kept so that rebuilding a parent over an
/// unchanged leaf costs no hashing.
#[derive(Debug)]
struct Leaf {
    key: Hash,
    value: Hash,
    hash: Hash,
}

/// A subtree of two or more entries.
#[derive(Debug)]
struct Branch {
    hash: Hash,
    left: Link,
    right: Link,
}

/// A child pointer: 16 bytes, with the empty subtree costing no allocation.
#[derive(Clone, Debug, Default)]
enum Link {
    #[default]
    Empty,
    Leaf(Arc<Leaf>),
    Branch(Arc<Branch>),
}

impl Link {
    fn hash(&self) -> Hash {
        match self {
            Link::Empty => EMPTY,
            Link::Leaf(l) => l.hash,
            Link::Branch(b) => b.hash,
        }
    }

    fn leaf(key: Hash, value: Hash) -> Link {
        Link::Leaf(Arc::new(Leaf { key, value, hash: leaf_hash(&key, &value) }))
    }

    /// The canonical node over two children: a subtree with no entries is
    /// empty and one with a single entry is that leaf, so a lone leaf is
    /// lifted rather than wrapped in a single-child node.
    fn join(left: Link, right: Link) -> Link {
        match (&left, &right) {
            (Link::Empty, Link::Empty) => Link::Empty,
            (Link::Empty, Link::Leaf(_)) => right,
            (Link::Leaf(_), Link::Empty) => left,
            _ => Link::Branch(Arc::new(Branch {
                hash: internal_hash(&left.hash(), &right.hash()),
                left,
                right,
            })),
        }
    }

    fn same(&self, other: &Link) -> bool {
        match (self, other) {
            (Link::Empty, Link::Empty) => true,
            (Link::Leaf(a), Link::Leaf(b)) => Arc::ptr_eq(a, b),
            (Link::Branch(a), Link::Branch(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The state map: a persistent (immutable, structurally shared) sparse
/// Merkle tree.
///
/// `clone()` is O(1) and is a snapshot: it stays valid and provable after
/// later [`Tree::apply`] calls on the original, which copy only the paths
/// they change.
#[derive(Clone, Default)]
pub struct Tree {
    root: Link,
    len: usize,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("len", &self.len).field("root", &self.root()).finish()
    }
}

impl Tree {
    /// The empty map; its root is [`EMPTY`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash, computed when the tree was last updated.
    pub fn root(&self) -> Hash {
        self.root.hash()
    }

    /// The value hash stored under `key`, if any.
    pub fn get(&self, key: &Hash) -> Option<Hash> {
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Link::Empty => return None,
                Link::Leaf(l) => return (l.key == *key).then_some(l.value),
                Link::Branch(b) => {
                    node = if bit(key, depth) { &b.right } else { &b.left };
                    depth += 1;
                }
            }
        }
    }

    /// Applies a batch: `Some(v)` inserts or replaces, `None` removes (a
    /// no-op for an absent key). When one key appears several times, the
    /// last update wins.
    ///
    /// The batch is sorted once and the affected subtrees rebuilt bottom-up,
    /// so every changed node is hashed once per batch however many updates
    /// fall beneath it; untouched subtrees are shared with earlier snapshots.
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (Hash, Option<Hash>)>) {
        let updates = last_wins(updates.into_iter().collect());
        if updates.is_empty() {
            return;
        }
        let mut len = self.len;
        self.root = update(&self.root, 0, &updates, &mut len);
        self.len = len;
    }

    /// The proof for `key`: its value if present, its absence otherwise
    /// (see [`super::verify`]).
    pub fn prove(&self, key: &Hash) -> Proof {
        let mut siblings = Vec::new();
        let mut node = &self.root;
        loop {
            match node {
                Link::Empty => return Proof { terminal: Terminal::Empty, siblings },
                Link::Leaf(l) => {
                    return Proof {
                        terminal: Terminal::Leaf { key_hash: l.key, value_hash: l.value },
                        siblings,
                    }
                }
                Link::Branch(b) => {
                    let (next, other) =
                        if bit(key, siblings.len()) { (&b.right, &b.left) } else { (&b.left, &b.right) };
                    siblings.push(other.hash());
                    node = next;
                }
            }
        }
    }

    /// Builds a map from scratch (start-up from persisted records). The
    /// result equals inserting the entries one by one, so a repeated key
    /// keeps its last value.
    pub fn from_entries(entries: impl IntoIterator<Item = (Hash, Hash)>) -> Self {
        let all: Vec<(Hash, Option<Hash>)> = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let all = last_wins(all);
        let entries: Vec<(Hash, Hash)> = all.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        Tree { root: build(&entries, 0), len: entries.len() }
    }

    /// Every entry as `(key hash, value hash)`, in increasing key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { stack: vec![&self.root] }
    }
}

/// Iterator over a [`Tree`]'s entries in key order (see [`Tree::iter`]).
#[derive(Debug)]
pub struct Iter<'a> {
    stack: Vec<&'a Link>,
}

impl Iterator for Iter<'_> {
    type Item = (Hash, Hash);

    fn next(&mut self) -> Option<Self::Item> {
        // Left before right along each key's bits is increasing key order.
        while let Some(node) = self.stack.pop() {
            match node {
                Link::Empty => {}
                Link::Leaf(l) => return Some((l.key, l.value)),
                Link::Branch(b) => {
                    self.stack.push(&b.right);
                    self.stack.push(&b.left);
                }
            }
        }
        None
    }
}

/// Sorts by key and keeps only the last update of each key, in input order.
fn last_wins(mut updates: Vec<(Hash, Option<Hash>)>) -> Vec<(Hash, Option<Hash>)> {
    // Stable: equal keys stay in input order, so the last of a run is the
    // last given.
    updates.sort_by_key(|u| u.0);
    let mut out: Vec<(Hash, Option<Hash>)> = Vec::with_capacity(updates.len());
    for u in updates {
        match out.last_mut() {
            Some(last) if last.0 == u.0 => *last = u,
            _ => out.push(u),
        }
    }
    out
}

/// Index of the first element whose key has bit `depth` set: the slice is
/// sorted and shares its first `depth` bits, so it splits there.
fn split_at_bit<T>(items: &[(Hash, T)], depth: usize) -> usize {
    items.partition_point(|(k, _)| !bit(k, depth))
}

/// The canonical subtree at `depth` holding `entries` (sorted, distinct
/// keys sharing their first `depth` bits).
fn build(entries: &[(Hash, Hash)], depth: usize) -> Link {
    match entries {
        [] => Link::Empty,
        [(k, v)] => Link::leaf(*k, *v),
        _ => {
            // Two distinct keys differ at some bit below 256, so `depth`
            // stays in range.
            let mid = split_at_bit(entries, depth);
            let (l, r) = entries.split_at(mid);
            Link::join(build(l, depth + 1), build(r, depth + 1))
        }
    }
}

/// `node` (at `depth`) with `updates` (sorted, distinct, all under `node`)
/// applied; `len` is adjusted by the entries added and removed. Returns the
/// same `Arc` when nothing under `node` changed.
fn update(node: &Link, depth: usize, updates: &[(Hash, Option<Hash>)], len: &mut usize) -> Link {
    if updates.is_empty() {
        return node.clone();
    }
    match node {
        Link::Branch(b) => {
            let mid = split_at_bit(updates, depth);
            let (ul, ur) = updates.split_at(mid);
            let left = update(&b.left, depth + 1, ul, len);
            let right = update(&b.right, depth + 1, ur, len);
            if left.same(&b.left) && right.same(&b.right) {
                return node.clone();
            }
            Link::join(left, right)
        }
        Link::Empty => {
            let entries: Vec<(Hash, Hash)> = updates.iter().filter_map(|(k, v)| Some((*k, (*v)?))).collect();
            *len += entries.len();
            build(&entries, depth)
        }
        Link::Leaf(leaf) => {
            // Merge the lone existing entry into the sorted updates.
            let mut entries = Vec::with_capacity(updates.len() + 1);
            let mut existing = Some((leaf.key, leaf.value));
            for (k, v) in updates {
                if let Some(e) = existing {
                    if e.0 < *k {
                        entries.push(e);
                        existing = None;
                    } else if e.0 == *k {
                        existing = None;
                    }
                }
                if let Some(v) = v {
                    entries.push((*k, *v));
                }
            }
            entries.extend(existing);
            if let [(k, v)] = entries.as_slice() {
                if *k == leaf.key && *v == leaf.value {
                    return node.clone();
                }
            }
            *len = *len - 1 + entries.len();
            build(&entries, depth)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8) -> Hash {
        let mut k = [0u8; 32];
        k[0] = first;
        Hash(k)
    }

    #[test]
    fn link_is_two_words() {
        assert_eq!(std::mem::size_of::<Link>(), 16);
    }

    #[test]
    fn snapshots_can_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Tree>();
    }

    #[test]
    fn empty_map_root_is_empty() {
        assert_eq!(Tree::new().root(), EMPTY);
        assert!(Tree::new().is_empty());
    }

    #[test]
    fn one_entry_root_is_its_leaf_hash() {
        let mut t = Tree::new();
        t.apply([(key(0x80), Some(key(1)))]);
        assert_eq!(t.root(), leaf_hash(&key(0x80), &key(1)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn shared_prefix_makes_a_chain_then_a_split() {
        // 0x00.. and 0x01.. share 7 bits: 7 chain nodes with one EMPTY side,
        // then the split at depth 7.
        let (a, b) = (key(0x00), key(0x01));
        let v = key(9);
        let mut t = Tree::new();
        t.apply([(a, Some(v)), (b, Some(v))]);
        let mut h = internal_hash(&leaf_hash(&a, &v), &leaf_hash(&b, &v));
        for _ in 0..7 {
            h = internal_hash(&h, &EMPTY);
        }
        assert_eq!(t.root(), h);
        assert_eq!(t.prove(&a).siblings.len(), 8);
        // Removing one collapses back to a lone leaf at the root.
        t.apply([(a, None)]);
        assert_eq!(t.root(), leaf_hash(&b, &v));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn last_update_of_a_key_wins() {
        let mut t = Tree::new();
        t.apply([(key(1), Some(key(2))), (key(1), None), (key(1), Some(key(3)))]);
        assert_eq!(t.get(&key(1)), Some(key(3)));
        t.apply([(key(1), Some(key(4))), (key(1), None)]);
        assert_eq!(t.get(&key(1)), None);
        assert!(t.is_empty());
    }

    #[test]
    fn unchanged_update_shares_the_root() {
        let mut t = Tree::from_entries([(key(1), key(2)), (key(2), key(3))]);
        let before = t.clone();
        t.apply([(key(1), Some(key(2))), (key(7), None)]);
        assert!(t.root.same(&before.root));
    }
}
