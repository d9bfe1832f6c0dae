//! The registry's verifiable state map: a sparse Merkle tree from 32-byte
//! key hashes to 32-byte value hashes, with proofs of inclusion and of
//! absence, their canonical binary encoding, and their verification.
//!
//! The log commits to the map's root at every batch, so a client holding a
//! root can check one key's current value (or its absence) with a proof of
//! at most a few hundred bytes, without trusting the server that sent it.
//! The normative description (hashing, shape, proof bytes, verification
//! steps, test vectors) is docs/protocol.md, section "Registry state map:
//! tree and proofs"; this module implements exactly that text.
//!
//! Shape, in brief: a binary tree of depth 256 where a key's path is the
//! bits of its hash (most significant bit of byte 0 first, 0 = left), and
//! every subtree is hashed canonically: no entries is [`EMPTY`], exactly one
//! entry is that entry's [`leaf_hash`] wherever it sits below, two or more
//! is [`internal_hash`] of the two halves. Because the shape depends only on
//! the set of entries, every insertion order gives the same root, and each
//! (root, key) has exactly one proof that verifies.
//!
//! Pure: no I/O, no clocks, no randomness.
//!
//! # Examples
//!
//! ```rust
//! use custody_registry::state_map::{verify, Hash, Proof, Tree};
//!
//! let (k1, v1) = (Hash([1; 32]), Hash([0xaa; 32]));
//! let k2 = Hash([2; 32]);
//! let mut tree = Tree::new();
//! tree.apply([(k1, Some(v1))]);
//!
//! // Inclusion of k1 with its value, checked against the root alone.
//! let proof = Proof::decode(&tree.prove(&k1).encode())?;
//! verify(&tree.root(), &k1, Some(&v1), &proof)?;
//!
//! // Absence of k2.
//! verify(&tree.root(), &k2, None, &tree.prove(&k2))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod hashing;
mod proof;
mod tree;

pub use custody_standards::hash::Hash;
pub use hashing::{internal_hash, leaf_hash, EMPTY, KEY_BITS};
pub use proof::{
    verified_value, verify, Proof, ProofError, Terminal, VerifyError, MAX_ENCODED_LEN, PROOF_VERSION,
};
pub use tree::{Iter, Tree};
