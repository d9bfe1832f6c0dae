//! # custody-standards
//!
//! The transparency-log standards Custody interoperates with, byte for byte,
//! and nothing of Custody's own: an independent implementation can check
//! every output of this crate against the specs alone.
//!
//! - [RFC 6962](https://www.rfc-editor.org/rfc/rfc6962#section-2.1) /
//!   [RFC 9162 section 2.1](https://www.rfc-editor.org/rfc/rfc9162#section-2.1):
//!   Merkle tree hashing and proofs ([`hash`], [`proof`], [`verify`],
//!   [`appender`]).
//! - [C2SP tlog-tiles](https://c2sp.org/tlog-tiles) ([`tiles`], [`entries`],
//!   [`tile_data`], [`tile_reader`]).
//! - [C2SP signed-note](https://c2sp.org/signed-note) ([`note`], [`keys`]).
//! - [C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint) ([`checkpoint`]).
//! - [C2SP tlog-cosignature](https://c2sp.org/tlog-cosignature)
//!   ([`cosignature`]).
//! - [C2SP tlog-witness](https://c2sp.org/tlog-witness) request and response
//!   bodies ([`witness`]).
//! - [C2SP tlog-proof](https://c2sp.org/tlog-proof) ([`bundle`]).
//! - [C2SP tlog-policy](https://c2sp.org/tlog-policy) ([`policy`]).
//!
//! It performs no I/O: no files, no network, no clocks, no randomness.
//! Storage reaches it through [`stored::HashReader`]; time and key material
//! are passed in by the caller. Malformed input is always an error value; a
//! panic in this crate means its own math is broken, and says so.
//!
//! Every public parser's documentation links the spec section it enforces,
//! quotes the rule, and carries a compiled example that parses real bytes
//! and shows an input it refuses.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod appender;
pub mod checkpoint;
pub mod cosignature;
pub mod entries;
pub mod hash;
pub mod keys;
pub mod memory;
pub mod note;
pub mod policy;
pub mod proof;
pub mod sha256_once;
pub mod stored;
pub mod tile_data;
pub mod tile_reader;
pub mod tiles;
pub mod verify;

pub mod bundle;
pub mod encoding;
pub mod witness;

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
