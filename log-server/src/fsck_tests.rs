//! fsck tests: a healthy store passes; each kind of raw corruption, written
//! directly with RocksDB, is found at the right location.

use std::path::Path;

use custody_standards::checkpoint::sign_checkpoint;
use custody_standards::keys::SIG_TYPE_ED25519;
use custody_standards::{Appender, SignerKey};

use super::*;
use crate::store::tests::make_batch;
use crate::store::Store;

const ORIGIN: &str = "example.com/fsck-test";

fn key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[7; 32]).unwrap()
}

/// 100 entries in uneven batches, published checkpoints at 10, 64 and 100
/// and a latest_signed at 100.
fn build(path: &Path) {
    let s = RocksStore::open(path).unwrap();
    let mut a = Appender::new();
    let all: Vec<Vec<u8>> = (0..100u32).map(|i| format!("entry {i}").into_bytes()).collect();
    for range in [0..10, 10..64, 64..99, 99..100] {
        s.append_batch(&make_batch(&mut a, &all[range])).unwrap();
        let size = s.tree_size().unwrap();
        let root = tree_hash(size, &s).unwrap();
        if size != 99 {
            let cp = Checkpoint { origin: ORIGIN.into(), size, root, extensions: vec![] };
            s.put_published_checkpoint(size, &sign_checkpoint(&cp, &key()).unwrap()).unwrap();
        }
    }
    let cp = Checkpoint { origin: ORIGIN.into(), size: 100, root: a.root(), extensions: vec![] };
    s.put_meta(b"latest_signed", &sign_checkpoint(&cp, &key()).unwrap()).unwrap();
}

/// Builds a fresh store, applies `corrupt` through raw RocksDB, runs fsck.
fn corrupted(corrupt: impl FnOnce(&RocksStore)) -> FsckReport {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    {
        let s = RocksStore::open(dir.path()).unwrap();
        corrupt(&s);
    }
    fsck(dir.path(), Some(&key().verifier())).unwrap()
}

fn assert_problem(report: &FsckReport, kind: FsckProblemKind, location: &str) {
    let p = report.first_problem.as_ref().unwrap_or_else(|| panic!("no problem found: {report}"));
    assert_eq!((p.kind, p.location.as_str()), (kind, location), "{report}");
    assert!(report.to_string().starts_with("INCONSISTENT") && report.to_string().contains(location));
}

fn put(s: &RocksStore, cf: &str, k: &[u8], v: &[u8]) {
    s.db().put_cf(s.cf(cf), k, v).unwrap();
}

#[test]
fn healthy_store_passes() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for vkey in [None, Some(key().verifier())] {
        let r = fsck(dir.path(), vkey.as_ref()).unwrap();
        assert!(r.is_healthy(), "{r}");
        assert_eq!((r.tree_size, r.checked_entries, r.checkpoints_checked), (100, 100, 4));
        assert!(r.to_string().starts_with("ok: tree size 100"));
    }
    // An empty, freshly created store is healthy too.
    let empty = tempfile::tempdir().unwrap();
    drop(RocksStore::open(empty.path()).unwrap());
    assert!(fsck(empty.path(), None).unwrap().is_healthy());
    // A missing database is an error, not a report.
    assert!(fsck(&dir.path().join("absent"), None).is_err());
}

/// Rewrites packed row `key` of `cf` (its merged value) through `edit`.
fn edit_row(s: &RocksStore, cf: &str, key: &[u8], edit: impl FnOnce(&mut Vec<u8>)) {
    let mut row = s.db().get_cf(s.cf(cf), key).unwrap().unwrap_or_default();
    edit(&mut row);
    put(s, cf, key, &row);
}

/// Replaces stored hash `(level, index)` inside its packed row.
fn replace_hash(s: &RocksStore, level: u8, index: u64, hash: [u8; 32]) {
    edit_row(s, CF_HASHES, &layout::hash_row_key(level, index), |row| {
        let at = (index % layout::ROW_WIDTH) as usize * 32;
        row[at..at + 32].copy_from_slice(&hash);
    });
}

#[test]
fn corrupted_entry_is_found() {
    let r = corrupted(|s| crate::store::testing::edit_entry(s, 17, |_| b"tampered".to_vec()).unwrap());
    assert_problem(&r, FsckProblemKind::BadEntry, "entry 17");
    assert_eq!(r.checked_entries, 0, "stops in the first chunk");
    // A row that does not decode.
    let r =
        corrupted(|s| edit_row(s, CF_ENTRIES, &layout::entry_row_key(40), |row| row.truncate(row.len() - 1)));
    assert_problem(&r, FsckProblemKind::BadEntry, "entries row at 32");
}

#[test]
fn deleted_entry_is_found() {
    // A whole row (entries 32..48) ...
    let r = corrupted(|s| s.db().delete_cf(s.cf(CF_ENTRIES), layout::entry_row_key(40)).unwrap());
    assert_problem(&r, FsckProblemKind::MissingEntry, "entry 32");
    // ... or the last entry of a row.
    let r = corrupted(|s| {
        edit_row(s, CF_ENTRIES, &layout::entry_row_key(47), |row| {
            let keep: Vec<Vec<u8>> =
                layout::split_entries(row).unwrap()[..15].iter().map(|e| e.to_vec()).collect();
            row.clear();
            keep.iter().for_each(|e| layout::push_entry(row, e));
        })
    });
    assert_problem(&r, FsckProblemKind::MissingEntry, "entry 47");
}

#[test]
fn deleted_stored_hash_is_found() {
    let r = corrupted(|s| s.db().delete_cf(s.cf(CF_HASHES), layout::hash_row_key(4, 3)).unwrap());
    assert_problem(&r, FsckProblemKind::MissingHash, "stored hash level 4 index 0");
    let r = corrupted(|s| edit_row(s, CF_HASHES, &layout::hash_row_key(0, 16), |row| row.truncate(3 * 32)));
    assert_problem(&r, FsckProblemKind::MissingHash, "stored hash level 0 index 19");
    let r =
        corrupted(|s| edit_row(s, CF_HASHES, &layout::hash_row_key(0, 16), |row| row.truncate(3 * 32 + 1)));
    assert_problem(&r, FsckProblemKind::Malformed, "stored hash level 0 index 16");
}

#[test]
fn altered_stored_hash_is_found() {
    let r = corrupted(|s| replace_hash(s, 4, 2, [0xab; 32]));
    assert_problem(&r, FsckProblemKind::HashMismatch, "stored hash level 4 index 2");
    let r = corrupted(|s| replace_hash(s, 0, 5, [0xab; 32]));
    assert_problem(&r, FsckProblemKind::HashMismatch, "stored hash level 0 index 5");
}

#[test]
fn changed_tree_size_is_found() {
    for bad in [99u64, 101, 0] {
        let r = corrupted(|s| put(s, CF_META, META_TREE_SIZE, &bad.to_be_bytes()));
        assert_problem(&r, FsckProblemKind::TreeSize, "meta tree_size");
        assert_eq!(r.tree_size, bad);
    }
    let r = corrupted(|s| put(s, CF_META, META_TREE_SIZE, b"x"));
    assert_problem(&r, FsckProblemKind::TreeSize, "meta tree_size");
}

#[test]
fn stored_hash_beyond_tree_is_found() {
    // 100 leaves: level 0 ends at index 99, level 4 at index 5.
    let r = corrupted(|s| edit_row(s, CF_HASHES, &layout::hash_row_key(0, 99), |row| row.extend([1; 32])));
    assert_problem(&r, FsckProblemKind::HashBeyondTree, "stored hash level 0 index 100");
    let r = corrupted(|s| edit_row(s, CF_HASHES, &layout::hash_row_key(4, 5), |row| row.extend([1; 32])));
    assert_problem(&r, FsckProblemKind::HashBeyondTree, "stored hash level 4 index 6");
}

#[test]
fn stale_or_missing_leaf_index_posting_is_found() {
    let stale = leaf_hash(b"never appended");
    let bucket = layout::leaf_bucket(&stale);
    let r = corrupted(|s| edit_row(s, CF_LEAF_INDEX, &bucket, |row| layout::push_posting(row, &stale, 3)));
    let at = format!("leaf_index bucket {}", encode_hex(&bucket));
    assert_problem(&r, FsckProblemKind::LeafIndex, &at);
    let r = corrupted(|s| edit_row(s, CF_LEAF_INDEX, &bucket, |row| layout::push_posting(row, &stale, 100)));
    assert_problem(&r, FsckProblemKind::LeafIndex, &at);
    // Entry 8's posting removed from its bucket.
    let eight = leaf_hash(b"entry 8");
    let r = corrupted(|s| {
        let key = layout::leaf_bucket(&eight);
        let mut row = s.db().get_cf(s.cf(CF_LEAF_INDEX), key).unwrap().unwrap();
        let mut own = Vec::new();
        layout::push_posting(&mut own, &eight, 8);
        let at = row.chunks(layout::POSTING_BYTES).position(|p| p == own).unwrap();
        row.drain(at * layout::POSTING_BYTES..(at + 1) * layout::POSTING_BYTES);
        match row.is_empty() {
            true => s.db().delete_cf(s.cf(CF_LEAF_INDEX), key).unwrap(),
            false => put(s, CF_LEAF_INDEX, &key, &row),
        }
    });
    assert_problem(&r, FsckProblemKind::LeafIndex, "entry 8");
}

#[test]
fn bad_registry_rows_are_found() {
    let row = crate::registry::access_row(&custody_registry::names::Digest(Hash([5; 32])), 100);
    let (key, low) = layout::posting_row(&row).unwrap();
    let r = corrupted(|s| edit_row(s, CF_REGISTRY_INDEX, &key, |v| v.push(low)));
    assert_problem(&r, FsckProblemKind::Registry, &format!("registry_index row {}", encode_hex(&key)));
    let r = corrupted(|s| edit_row(s, CF_REGISTRY_INDEX, &key, |v| v.extend([7, 7])));
    assert_problem(&r, FsckProblemKind::Malformed, &format!("registry_index row {}", encode_hex(&key)));
}

#[test]
fn bad_checkpoints_are_found() {
    // Right signature, wrong root.
    let r = corrupted(|s| {
        let cp = Checkpoint { origin: ORIGIN.into(), size: 64, root: Hash([9; 32]), extensions: vec![] };
        put(s, CF_CHECKPOINTS, &64u64.to_be_bytes(), &sign_checkpoint(&cp, &key()).unwrap());
    });
    assert_problem(&r, FsckProblemKind::Checkpoint, "checkpoint at size 64");
    // Stored under the wrong size.
    let r = corrupted(|s| {
        let note = s.published_checkpoint(10).unwrap().unwrap();
        put(s, CF_CHECKPOINTS, &40u64.to_be_bytes(), &note);
    });
    assert_problem(&r, FsckProblemKind::Checkpoint, "checkpoint at size 40");
    // Signed by another key: caught only when a vkey is given.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    {
        let s = RocksStore::open(dir.path()).unwrap();
        let other = SignerKey::from_seed(ORIGIN, SIG_TYPE_ED25519, &[8; 32]).unwrap();
        let root = tree_hash(100, &s).unwrap();
        let cp = Checkpoint { origin: ORIGIN.into(), size: 100, root, extensions: vec![] };
        put(&s, CF_META, b"latest_signed", &sign_checkpoint(&cp, &other).unwrap());
    }
    assert!(fsck(dir.path(), None).unwrap().is_healthy());
    let r = fsck(dir.path(), Some(&key().verifier())).unwrap();
    assert_problem(&r, FsckProblemKind::Checkpoint, "meta latest_signed");
}
