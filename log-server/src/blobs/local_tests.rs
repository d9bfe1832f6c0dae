//! The local backend, plaintext and sealed.

use super::*;

fn digest(bytes: &[u8]) -> Hash {
    custody_standards::hash::sha256(bytes)
}

fn put(store: &LocalBlobs, bytes: &[u8], chunks: usize) -> Result<Stored, BlobError> {
    let mut w = store.begin(digest(bytes), bytes.len() as u64)?;
    for c in bytes.chunks(bytes.len().div_ceil(chunks).max(1)) {
        w.write(c)?;
    }
    w.finish()
}

fn tmp_is_empty(dir: &Path) -> bool {
    fs::read_dir(dir.join(BLOBS_DIR).join("tmp")).unwrap().next().is_none()
}

#[test]
fn stores_once_read_only_and_verifies_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::open(dir.path()).unwrap();
    let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(put(&store, &bytes, 7).unwrap(), Stored { size: bytes.len() as u64, created: true });
    assert_eq!(put(&store, &bytes, 3).unwrap(), Stored { size: bytes.len() as u64, created: false });
    let path = store.path_of(&digest(&bytes));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o444);
    assert_eq!(store.read_small_verified(&digest(&bytes), 1 << 20).unwrap().as_deref(), Some(&bytes[..]));
    assert_eq!(store.read_small_verified(&digest(&bytes), 1000).unwrap(), None, "too large to read whole");
    let mut b = store.open_verified(&digest(&bytes)).unwrap();
    let mut back = Vec::new();
    b.file.read_to_end(&mut back).unwrap();
    assert_eq!(back, bytes);
    assert_eq!(store.list().unwrap(), vec![digest(&bytes)]);
    assert!(tmp_is_empty(dir.path()));
}

#[test]
fn rejects_wrong_digest_and_wrong_size_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::open(dir.path()).unwrap();
    let mut w = store.begin(digest(b"other"), 5).unwrap();
    w.write(b"hello").unwrap();
    assert!(matches!(w.finish(), Err(BlobError::DigestMismatch { .. })));
    let mut w = store.begin(digest(b"hello"), 4).unwrap();
    assert!(matches!(w.write(b"hello"), Err(BlobError::SizeMismatch { declared: 4, actual: 5 })));
    drop(w);
    let mut w = store.begin(digest(b"hello"), 6).unwrap();
    w.write(b"hello").unwrap();
    assert!(matches!(w.finish(), Err(BlobError::SizeMismatch { declared: 6, actual: 5 })));
    assert!(store.list().unwrap().is_empty());
    assert!(tmp_is_empty(dir.path()));
    assert!(matches!(store.open_verified(&digest(b"hello")), Err(BlobError::NotFound(_))));
}

#[test]
fn tampered_bytes_are_an_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::open(dir.path()).unwrap();
    put(&store, b"model weights", 1).unwrap();
    let path = store.path_of(&digest(b"model weights"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"model weightz").unwrap();
    let err = store.open_verified(&digest(b"model weights")).unwrap_err();
    assert!(matches!(err, BlobError::Integrity { .. }), "{err}");
    let err = store.read_small_verified(&digest(b"model weights"), 1 << 20).unwrap_err();
    assert!(matches!(err, BlobError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("integrity violation"));
}

#[test]
fn empty_blob_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::open(dir.path()).unwrap();
    assert_eq!(put(&store, b"", 1).unwrap().size, 0);
    assert_eq!(store.verify(&digest(b"")).unwrap(), 0);
}

#[test]
fn reopening_clears_interrupted_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobs::open(dir.path()).unwrap();
    let mut w = store.begin(digest(b"abc"), 3).unwrap();
    w.write(b"ab").unwrap();
    std::mem::forget(w); // as if the process died mid-upload
    assert!(!tmp_is_empty(dir.path()));
    drop(store);
    LocalBlobs::open(dir.path()).unwrap();
    assert!(tmp_is_empty(dir.path()));
}
