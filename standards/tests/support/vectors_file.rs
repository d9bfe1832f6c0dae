//! The vector files shared with the browser verifier
//! (log-server/ui/js/verify.js): each is generated from core by a test and
//! must stay equal to what core computes now. A difference fails the test;
//! `CUSTODY_REGEN_VECTORS=1` rewrites the file instead, after a deliberate
//! change, so the browser side is checked against the new bytes too.

use std::path::PathBuf;

/// Compares `generated` with `<crate>/tests/vectors/<file>`, or rewrites the
/// file when `CUSTODY_REGEN_VECTORS` is set.
pub fn check_or_write(manifest_dir: &str, file: &str, generated: &serde_json::Value) {
    let path = PathBuf::from(manifest_dir).join("tests/vectors").join(file);
    let text = serde_json::to_string_pretty(generated).expect("vectors serialize") + "\n";
    if std::env::var_os("CUSTODY_REGEN_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate it with CUSTODY_REGEN_VECTORS=1)", path.display()));
    let stored: serde_json::Value = serde_json::from_str(&on_disk).expect("vector file is JSON");
    assert!(
        stored == *generated,
        "{} no longer matches what core computes; if the change is deliberate, regenerate it with \
         CUSTODY_REGEN_VECTORS=1 and run the browser tests (tests/tests/dashboard_browser.rs)",
        path.display()
    );
}
