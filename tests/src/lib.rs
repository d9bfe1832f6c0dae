//! Cross-process scenario tests for Custody live in `tests/` of this crate:
//! each starts the real `custody-log`, `custody-witness` and `custody`
//! binaries on loopback ports with temporary directories, as a user would.
//! The harness is the shared `custody-testkit` crate
//! (`use custody_testkit::scenario::*;`); this library itself is empty.
//! The binaries are found next to the test executables: build them first
//! (`cargo build -p custody-log -p custody-witness -p custody-verifier --bins`).
