//! The registry's current state as a verifiable map, committed in the log.
//!
//! After every batch it sequences, the log appends a *commitment leaf*
//! ([`crate::leaf::CommitmentLeaf`]) holding the root of a sparse Merkle
//! tree ([`crate::state_map`]) over the state after every leaf before it:
//! tags, versions with status and approvals, actor keys, grants, tag
//! protections, holds, and complete entry lists per name, digest and actor. A
//! client holding a cosigned checkpoint whose last leaf is a commitment
//! proves what is *current* with one inclusion proof for that leaf and one
//! state proof per key, without replaying the log; an auditor recomputes
//! every root while replaying and names the first wrong one.
//!
//! Why a leaf rather than a checkpoint extension line: see docs/protocol.md
//! ("Registry state").

mod codec;
pub mod committer;
pub mod key;
pub mod value;

pub use codec::CodecError;
pub use committer::{Change, Sealed, StateCommitter};
pub use key::StateKey;
pub use value::{EntriesValue, KeyValue, ProtectionValue, StateValue, TagValue, VersionValue};
