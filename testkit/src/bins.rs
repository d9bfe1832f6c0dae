//! Where the workspace binaries are: cargo puts integration-test
//! executables in `target/<profile>/deps` and binaries one level up, so a
//! test finds `custody-log`, `custody-witness` and `custody` without being
//! told where the target directory is.

use std::path::{Path, PathBuf};

/// A workspace binary built next to this test (`target/debug/NAME`).
///
/// Panics with the build command to run when it is missing: a test of
/// another package does not make cargo build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p custody-log -p custody-witness -p custody-verifier --bins)",
        path.display()
    );
    path
}
