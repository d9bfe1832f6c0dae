//! Where the workspace binaries are: cargo puts integration-test
//! executables in `target/<profile>/deps` and binaries one level up, so a
//! test (or a test-kit binary such as `custody-testbed`, itself in
//! `target/<profile>`) finds `custody-log`, `custody-witness` and `custody`
//! without being told where the target directory is.

use std::path::PathBuf;

/// A workspace binary built next to this test (`target/debug/NAME`).
///
/// Panics with the build command to run when it is missing: a test of
/// another package does not make cargo build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("target/debug");
    if dir.file_name().is_some_and(|d| d == "deps") {
        dir = dir.parent().expect("target/debug");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p custody-log -p custody-witness -p custody-verifier --bins)",
        path.display()
    );
    path
}
