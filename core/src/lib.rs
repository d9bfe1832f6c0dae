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
//! - DSSE v1 (Ed25519) for the registry's signed statements; the statement
//!   schema, leaf bytes and registry rules are in docs/protocol.md.
//!
//! Malformed input is always an error value; a panic in this crate means its
//! own math is broken, and says so.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod appender;
pub mod checkpoint;
pub mod cosignature;
pub mod entries;
pub mod evidence;
pub mod hash;
pub mod keys;
pub mod memory;
pub mod note;
pub mod policy;
pub mod proof;
pub mod stored;
pub mod tile_data;
pub mod tile_reader;
pub mod tiles;
pub mod verify;

pub mod bundle;
pub mod encoding;
pub mod witness;

// Registry (issue 4): statements, envelopes, leaves and the state machine.
pub mod actor_key;
pub mod dsse;
pub mod leaf;
pub mod names;
pub mod registry;
pub mod statement;
pub mod timestamp;

pub use appender::Appender;
pub use checkpoint::Checkpoint;
pub use hash::{empty_root, leaf_hash, node_hash, Hash, HASH_SIZE};
pub use keys::{SignerKey, VerifierKey};
pub use memory::MemoryHashStore;
pub use note::{open_note, sign_note, Note, NoteSigner, NoteVerifier};
pub use policy::Policy;
pub use proof::{consistency_proof, inclusion_proof, tree_hash, ProofError};
pub use stored::{HashReader, NodeId, ReadError};
pub use tile_reader::{TileFetcher, TileHashReader};
pub use tiles::{EntryBundle, Tile, TilePath};
pub use verify::{root_from_inclusion_proof, verify_consistency, verify_inclusion, VerifyError};
