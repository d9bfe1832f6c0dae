//! Shared pieces of Custody's benchmark tools: exact percentiles, median
//! and spread of repeated measurements, and starting the real binaries.
//! The tools print figures; nothing here asserts a speed.

pub mod procs;
pub mod stats;
