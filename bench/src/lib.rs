//! Shared pieces of Custody's benchmark tools: exact percentiles, median
//! and spread of repeated measurements, starting the real binaries, and
//! signing the statements the generators send.
//! The tools print figures; nothing here asserts a speed.

pub mod dashboard_seed;
pub mod procs;
pub mod statements;
pub mod stats;
