//! The committed registry state, servable at recent checkpoint sizes.
//!
//! Every batch the sequencer writes ends with a commitment leaf: the root of
//! the state map after the batch (see `custody_registry::commitment`). A
//! client proves keys against the commitment that ends the checkpoint it
//! verified, and that checkpoint trails the newest batch by a witness
//! round or more, so the last few versions of the map must stay provable.
//! The map is a persistent tree (an old version is an O(1) clone sharing
//! every unchanged node), so keeping a version costs only the nodes its
//! batch replaced; values are kept once, with each version's changes, and
//! read back by walking from the asked version towards the newest.
//!
//! Versions older than the retained window answer 410: a client asks for
//! the state at a checkpoint it holds, and checkpoints are published every
//! round, so only a client holding an old checkpoint is ever turned away;
//! it fetches a fresh one.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

use custody_registry::commitment::{Change, StateCommitter, StateKey, StateValue};
use custody_registry::state_map::{Proof, Tree};
use custody_standards::hash::Hash;

/// Versions kept provable by default.
pub const DEFAULT_RETAINED_VERSIONS: usize = 1024;

/// Why a state proof cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The log has no commitment ending at this size (not a batch end, or
    /// beyond the durable size).
    #[error("no state commitment ends at tree size {0}")]
    NoCommitment(u64),
    /// The version was dropped from the retained window.
    #[error("the state at tree size {size} is no longer served; the oldest served is {oldest}")]
    Expired {
        /// Asked size.
        size: u64,
        /// Oldest retained size.
        oldest: u64,
    },
}

/// A value with its proof against a committed root.
#[derive(Debug, Clone)]
pub struct StateProof {
    /// The tree size of the checkpoint whose last leaf is the commitment.
    pub size: u64,
    /// The committed root.
    pub root: Hash,
    /// The value (`None`: the key is absent).
    pub value: Option<StateValue>,
    /// The proof.
    pub proof: Proof,
}

struct Version {
    /// Tree size ending with this version's commitment leaf.
    size: u64,
    tree: Tree,
    /// Key hash to its value *before* this version (only changed keys).
    before: HashMap<Hash, Option<StateValue>>,
}

struct Inner {
    /// Values as of the newest version.
    current: HashMap<Hash, StateValue>,
    /// Oldest first.
    versions: VecDeque<Version>,
}

/// The retained versions of the state map.
pub struct StateSnapshots {
    inner: RwLock<Inner>,
    retain: usize,
}

impl std::fmt::Debug for StateSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("StateSnapshots")
            .field("versions", &inner.versions.len())
            .field("keys", &inner.current.len())
            .finish()
    }
}

impl StateSnapshots {
    /// Starts from the sealed state of `committer`, which the commitment
    /// ending tree size `size` committed to (`None`: the log does not end
    /// with a commitment yet, nothing is servable until the next batch).
    pub fn new(committer: &StateCommitter, size: Option<u64>, retain: usize) -> Self {
        let mut versions = VecDeque::new();
        if let Some(size) = size {
            versions.push_back(Version { size, tree: committer.tree().clone(), before: HashMap::new() });
        }
        let current = committer.values().map(|(h, v)| (*h, v.clone())).collect();
        StateSnapshots { inner: RwLock::new(Inner { current, versions }), retain: retain.max(1) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the version a durable batch committed: `size` ends with its
    /// commitment leaf, `tree` is the sealed tree, `changes` what the seal
    /// changed.
    pub fn push(&self, size: u64, tree: Tree, changes: &[Change]) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut before = HashMap::with_capacity(changes.len());
        for c in changes {
            let h = c.key.hash();
            match &c.after {
                Some(v) => inner.current.insert(h, v.clone()),
                None => inner.current.remove(&h),
            };
            before.insert(h, c.before.clone());
        }
        inner.versions.push_back(Version { size, tree, before });
        while inner.versions.len() > self.retain {
            inner.versions.pop_front();
        }
    }

    /// Replaces everything (after a failed write was undone by reloading).
    pub fn reset(&self, committer: &StateCommitter, size: Option<u64>) {
        let fresh = StateSnapshots::new(committer, size, self.retain);
        let inner = fresh.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = inner;
    }

    /// The newest servable size.
    pub fn latest_size(&self) -> Option<u64> {
        self.read().versions.back().map(|v| v.size)
    }

    /// Proves `keys` at the version ending tree size `size`.
    pub fn prove(&self, size: u64, keys: &[StateKey]) -> Result<Vec<StateProof>, SnapshotError> {
        let inner = self.read();
        let pos = match inner.versions.binary_search_by_key(&size, |v| v.size) {
            Ok(p) => p,
            Err(0) if inner.versions.front().is_some_and(|v| size < v.size) => {
                return Err(SnapshotError::Expired { size, oldest: inner.versions[0].size })
            }
            Err(_) => return Err(SnapshotError::NoCommitment(size)),
        };
        let version = &inner.versions[pos];
        Ok(keys
            .iter()
            .map(|key| {
                let h = key.hash();
                // The first change after this version knows the value it
                // replaced; unchanged since, the current value holds.
                let value = inner
                    .versions
                    .range(pos + 1..)
                    .find_map(|v| v.before.get(&h))
                    .cloned()
                    .unwrap_or_else(|| inner.current.get(&h).cloned());
                StateProof { size, root: version.tree.root(), value, proof: version.tree.prove(&h) }
            })
            .collect())
    }
}
