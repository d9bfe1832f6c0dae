//! # custody-registry
//!
//! Custody's own model registry, built on the transparency-log standards of
//! [`custody_standards`]: signed statements (DSSE v1 envelopes around in-toto
//! style statements), the registry's names and actor keys, the leaf bytes the
//! log appends, the registry state machine every server and auditor replays,
//! and split-view evidence.
//!
//! Like the standards crate it performs no I/O: no files, no network, no
//! clocks, no randomness. Time and key material are passed in by the caller,
//! so the server and an offline auditor reach the same verdict on the same
//! bytes. The dependency runs one way only: this crate uses the standards,
//! the standards never know the registry exists.
//!
//! Malformed input is always an error value; a panic here means the crate's
//! own logic is broken.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod actor_key;
pub mod commitment;
pub mod describe;
pub mod dsse;
pub mod ed25519_batch;
pub mod evidence;
pub mod leaf;
pub mod log_event;
pub mod manifest;
pub mod names;
pub mod oms;
pub mod registry;
pub mod state_map;
pub mod statement;
pub mod timestamp;
