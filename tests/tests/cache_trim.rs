//! `scripts/cache-trim` deletes build output only when the disk is short,
//! in its documented order: incremental state, then the workspace's own
//! outputs (never a dependency's), then whole profiles.
//!
//! The free space of the machine cannot be set from a test, so the
//! threshold is 0 GB (never short) or an impossible size (always short),
//! and the order is read from a dry run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cache-trim")
}

/// Outputs of workspace crates and tests, as cargo names them.
const OWN: &[&str] = &[
    "debug/deps/libcustody_standards-0123456789abcdef.rlib",
    "debug/.fingerprint/custody-standards-0123456789abcdef/lib-custody_standards",
    "debug/deps/smoke-0123456789abcdef",
    "release/deps/custody_log-0123456789abcdef",
];

/// Outputs of dependencies, which only the last step removes.
const DEPS: &[&str] = &[
    "debug/deps/libserde-0123456789abcdef.rlib",
    "debug/.fingerprint/librocksdb-sys-0123456789abcdef/run-build-script",
    "debug/build/librocksdb-sys-0123456789abcdef/out/librocksdb.a",
    "release/deps/libtokio-0123456789abcdef.rlib",
];

/// A target directory with incremental state and the outputs above.
fn target() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in OWN.iter().chain(DEPS).chain(&["debug/incremental/custody_log-1/s-1/query-cache.bin"]) {
        let path = dir.path().join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f).unwrap();
    }
    dir
}

fn run(target: &Path, min_free_gb: &str, args: &[&str]) -> Output {
    Command::new(script())
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env("CUSTODY_CACHE_MIN_FREE_GB", min_free_gb)
        .output()
        .unwrap()
}

fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn nothing_is_removed_while_the_disk_has_room() {
    let t = target();
    let before = files(t.path());
    let out = run(t.path(), "0", &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files(t.path()), before);
}

#[test]
fn a_short_disk_loses_incremental_state_then_own_outputs_then_profiles() {
    let t = target();
    let before = files(t.path());
    let out = run(t.path(), "1000000000", &["--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(files(t.path()), before, "a dry run removes nothing");

    // Each step's line, then the paths it would remove.
    let said = String::from_utf8(out.stderr).unwrap();
    let root = t.path().display().to_string();
    let mut steps: Vec<(&str, Vec<String>)> = Vec::new();
    for line in said.lines() {
        match line.strip_prefix("  ") {
            Some(path) => steps.last_mut().unwrap().1.push(path.replace(&root, "")),
            None => steps.push((line, Vec::new())),
        }
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(steps.len(), 5, "{said}");
    assert!(steps[0].0.ends_with("removing incremental compilation state"), "{said}");
    assert_eq!(steps[0].1, ["/debug/incremental"]);
    assert!(steps[1].0.ends_with("removing the workspace's own build outputs"), "{said}");
    let own = [
        "/debug/.fingerprint/custody-standards-0123456789abcdef",
        "/debug/deps/libcustody_standards-0123456789abcdef.rlib",
        "/debug/deps/smoke-0123456789abcdef",
        "/release/deps/custody_log-0123456789abcdef",
    ];
    assert_eq!(sorted(steps[1].1.clone()), own, "{said}");
    assert!(steps[2].0.ends_with("removing the whole release profile"), "{said}");
    assert_eq!(steps[2].1, ["/release"]);
    assert!(steps[3].0.ends_with("removing the whole debug profile"), "{said}");
    assert_eq!(steps[3].1, ["/debug"]);
    assert!(steps[4].0.contains("only"), "{said}");

    let out = run(t.path(), "1000000000", &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(files(t.path()).is_empty());
    assert!(t.path().is_dir(), "the cache directory itself stays");
}

#[test]
fn a_threshold_that_is_not_a_number_is_refused() {
    let t = target();
    let before = files(t.path());
    let out = run(t.path(), "30GB", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("whole number of GB"));
    assert_eq!(files(t.path()), before);
}
