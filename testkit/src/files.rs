//! Files behind a server's back: walking a data directory, finding the
//! stored copy of an artifact and rotting it, as the scenarios that check
//! what a log does with storage it cannot trust need them.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Every file (not directory) under `dir`, at any depth; none when `dir`
/// does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The stored copy of the artifact whose bytes are `bytes` in the local
/// blob store of the log whose data directory is `log_data`.
pub fn stored_artifact(log_data: &Path, bytes: &[u8]) -> PathBuf {
    let hex = custody_standards::hash::sha256(bytes).to_hex();
    let dir = log_data.join("blobs").join("sha256");
    files_under(&dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == hex))
        .unwrap_or_else(|| panic!("no stored file for {hex} under {}", dir.display()))
}

/// Flips `mask` into the byte at `at(len)` of the file at `path` (made
/// writable first): storage that rots behind the server's back.
pub fn rot(path: &Path, at: impl FnOnce(usize) -> usize, mask: u8) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= mask;
    std::fs::write(path, &bytes).unwrap();
}
