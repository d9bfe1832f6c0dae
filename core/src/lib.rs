//! # custody-core
//!
//! The pure heart of Custody: everything that must be *exactly* right and is
//! shared by the log server, the witness and the verifier. It holds the math
//! and the wire formats and performs no I/O: no files, no network, no clocks,
//! no randomness. Storage reaches it through [`stored::HashReader`]; time and
//! key material are passed in by the caller.
//!
//! Standards implemented byte for byte:
//! - RFC 6962 / RFC 9162 section 2.1: Merkle tree hashing and proofs.
//! - C2SP tlog-tiles, signed-note, tlog-checkpoint, tlog-cosignature
//!   (cosignature/v1), tlog-witness (request bodies), tlog-proof, tlog-policy.
//!
//! Malformed input is always an error value; a panic in this crate means its
//! own math is broken, and says so.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod hash;
pub mod stored;

pub use hash::{empty_root, leaf_hash, node_hash, Hash, HASH_SIZE};
pub use stored::{HashReader, NodeId, ReadError};
