//! Cross-process scenario tests for Custody live in `tests/` of this crate:
//! each starts the real `custody-log`, `custody-witness` and `custody`
//! binaries on loopback ports with temporary directories, as a user would.
//! The library itself is empty; the binaries are found next to the test
//! executables (`cargo test --workspace` builds them first).
