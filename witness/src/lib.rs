//! # custody-witness
//!
//! An independent C2SP tlog-witness for any C2SP log: it cosigns a
//! checkpoint only if it is consistent with the last one it cosigned for that
//! log, persists every cosigned checkpoint (synced, group-committed) before
//! answering, pulls checkpoints from logs that do not push, and gossips with
//! peer witnesses to catch a log showing different parties different trees.
//! A caught split view becomes durable, self-verifying evidence
//! ([`custody_registry::evidence`]) and the witness stops cosigning for that log
//! until an operator clears it.
//!
//! The binary (`main.rs`) only wires these modules together; docs/witness.md
//! is the operator's reference.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod add_checkpoint;
pub mod api;
pub mod committer;
pub mod config;
pub mod evidence;
pub mod gossip;
pub mod init;
pub mod log_client;
pub mod log_list;
pub mod metrics;
pub mod peers;
pub mod pull;
pub mod state;
pub mod store;
