//! # custody-log
//!
//! Custody's transparency log server. Entries go into a pool and are
//! sequenced in batches. Each batch is committed in one synced RocksDB write
//! before any submitter is acknowledged. Checkpoints are signed on an
//! interval and cosigned by C2SP tlog-witnesses. Tiles, proofs and cosigned
//! checkpoints are served over HTTP.
//!
//! The binary (`main.rs`) is a thin shell over this library, so the
//! integration tests and the registry (issue 4) use the same pieces.
//!
//! Module ownership follows the data flow: [`store`] (durable state),
//! [`sequencer`] (entries into the tree), [`checkpointer`] (tree heads out to
//! witnesses), `api` (HTTP).

pub mod blob_cache;
pub mod blobs;
pub mod bucket;
pub mod directory;
pub mod download_slots;
pub mod fsck;
pub mod fsck_registry;
pub mod gc;
pub mod index_check;
pub mod sequencer;
pub mod store;
pub mod tile_mirror;
pub mod upper_nodes;
pub mod wal;

mod checkpoint_health;
pub mod checkpointer;
pub mod embedded;
pub mod witness_client;
mod witness_round;

pub mod api;
pub mod config;
pub mod init;
pub mod integrity_episodes;
pub mod metrics;
pub mod ratelimit;
pub mod registry;
pub mod registry_index;
pub mod registry_state;
pub mod restore;
pub mod seal;
pub mod state_snapshots;
pub mod ui;
pub mod uploads;
