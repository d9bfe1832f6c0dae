//! The bucket backend on a real `object_store` (its local file system
//! implementation in a temporary directory): the same promises as the local
//! files, including against an altered object and a lying upload. The
//! blocking calls run on the test's thread: the bucket has its own runtime.

use std::path::{Path, PathBuf};

use custody_standards::Hash;

use super::bucket_write::PART_SIZE;
use super::*;

fn digest(bytes: &[u8]) -> Hash {
    custody_standards::hash::sha256(bytes)
}

fn open(dir: &Path) -> BucketBlobs {
    BucketBlobs::open(&format!("file://{}", dir.join("bucket").display())).unwrap()
}

fn put(store: &BucketBlobs, bytes: &[u8], chunk: usize) -> Result<Stored, BlobError> {
    let mut w = store.begin(digest(bytes), bytes.len() as u64)?;
    for c in bytes.chunks(chunk.max(1)) {
        w.write(c)?;
    }
    w.finish()
}

/// Every file under the bucket directory: objects, and any staging file
/// a multipart upload would leave.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("bucket"), &mut out);
    out
}

fn object_file(dir: &Path, d: &Hash) -> PathBuf {
    dir.join("bucket").join(crate::bucket::ARTIFACTS).join("sha256").join(d.to_hex())
}

fn large() -> Vec<u8> {
    (0..(2 * PART_SIZE + 12_345) as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

async fn drain(read: BucketRead) -> (Vec<u8>, Option<BlobError>) {
    let BucketRead::Stream { mut chunks, .. } = read else { panic!("expected a stream") };
    let mut got = Vec::new();
    while let Some(piece) = chunks.recv().await {
        match piece {
            Ok(p) => got.extend_from_slice(&p),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

#[test]
fn a_small_blob_is_stored_once_at_its_digest_and_read_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = b"model weights".to_vec();
    let d = digest(&bytes);
    assert_eq!(store.wait_size_of(&d).unwrap(), None);
    assert_eq!(put(&store, &bytes, 4).unwrap(), Stored { size: 13, created: true });
    assert_eq!(put(&store, &bytes, 5).unwrap(), Stored { size: 13, created: false });
    assert_eq!(std::fs::read(object_file(dir.path(), &d)).unwrap(), bytes);
    assert_eq!(store.wait_size_of(&d).unwrap(), Some(13));
    assert_eq!(store.wait_read_small_verified(&d, 100).unwrap(), Some(bytes.clone()));
    assert_eq!(store.wait_read_small_verified(&d, 12).unwrap(), None, "larger than the cap");
    assert_eq!(store.verify(&d).unwrap(), 13);
    let listed = BlobStore::Bucket(store);
    assert_eq!(listed.list().unwrap(), vec![d]);
    listed.remove(&d).unwrap();
    listed.remove(&d).unwrap();
    assert!(listed.list().unwrap().is_empty());
    assert!(matches!(listed.verify(&d), Err(BlobError::NotFound(_))));
}

#[tokio::test]
async fn a_large_blob_goes_up_in_parts_and_streams_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = large();
    let d = digest(&bytes);
    let s = put(&store, &bytes, 100_000);
    assert_eq!(s.unwrap(), Stored { size: bytes.len() as u64, created: true });
    assert_eq!(files(dir.path()), vec![object_file(dir.path(), &d)], "one object, no staging left");
    let (got, err) = drain(store.open_read(&d, 1 << 20).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == bytes);
    let BucketRead::Whole(small) = store.open_read(&d, bytes.len() as u64).await.unwrap() else {
        panic!("at most the cap: read whole")
    };
    assert!(small == bytes);
}

#[test]
fn an_upload_that_lies_leaves_no_object_under_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let blobs = BlobStore::Bucket(open(dir.path()));
    // Small (single PUT) and large (multipart), each with the wrong bytes
    // for the digest it declares, then too few and too many bytes.
    for bytes in [b"poisoned".to_vec(), large()] {
        let claimed = digest(b"the real model");
        let mut w = store.begin(claimed, bytes.len() as u64).unwrap();
        for c in bytes.chunks(1 << 20) {
            w.write(c).unwrap();
        }
        assert!(matches!(w.finish(), Err(BlobError::DigestMismatch { .. })));
        let mut w = store.begin(digest(&bytes), bytes.len() as u64 + 1).unwrap();
        w.write(&bytes).unwrap();
        assert!(matches!(w.finish(), Err(BlobError::SizeMismatch { .. })));
        let mut w = store.begin(digest(&bytes), bytes.len() as u64 - 1).unwrap();
        assert!(matches!(w.write(&bytes), Err(BlobError::SizeMismatch { .. })));
        drop(w);
        // A writer dropped mid-upload (the client went away).
        let mut w = store.begin(digest(&bytes), bytes.len() as u64).unwrap();
        w.write(&bytes[..bytes.len() - 1]).unwrap();
        drop(w);
        assert_eq!(store.wait_size_of(&claimed).unwrap(), None);
        assert_eq!(store.wait_size_of(&digest(&bytes)).unwrap(), None);
    }
    assert!(blobs.list().unwrap().is_empty());
    // Aborts run in the background: give them a moment, then nothing at
    // all is left in the bucket, not even a staged part.
    for _ in 0..50 {
        if files(dir.path()).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_object_altered_in_the_bucket_is_an_integrity_violation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let small = b"model weights".to_vec();
    let big = large();
    put(&store, &small, 1 << 20).unwrap();
    put(&store, &big, 1 << 20).unwrap();
    // Someone with write access to the bucket swaps the bytes, same size.
    std::fs::write(object_file(dir.path(), &digest(&small)), b"model weightz").unwrap();
    let mut altered = big.clone();
    altered[PART_SIZE + 7] ^= 1;
    std::fs::write(object_file(dir.path(), &digest(&big)), &altered).unwrap();

    let d = digest(&small);
    let err = store.wait_read_small_verified(&d, 1 << 20).unwrap_err();
    assert!(matches!(err, BlobError::Integrity { .. }), "{err}");
    let err = store.open_read(&d, 1 << 20).await.unwrap_err();
    assert!(matches!(err, BlobError::Integrity { .. }), "{err}");
    assert!(matches!(store.verify(&d), Err(BlobError::Integrity { .. })));

    // Streamed: everything but the last piece may go out, never the end.
    let d = digest(&big);
    let (got, err) = drain(store.open_read(&d, 1 << 20).await.unwrap()).await;
    assert!(matches!(err, Some(BlobError::Integrity { .. })), "{err:?}");
    assert!(got.len() < big.len(), "the last piece was withheld");
    assert!(matches!(store.verify(&d), Err(BlobError::Integrity { .. })));

    // Truncated: refused the same way.
    std::fs::write(object_file(dir.path(), &d), &big[..big.len() - 1]).unwrap();
    let read = store.open_read(&d, 1 << 20).await.unwrap();
    let (_, err) = drain(read).await;
    assert!(matches!(err, Some(BlobError::Integrity { .. })), "{err:?}");
}

#[test]
fn only_an_s3_store_presigns() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path()).with_presign(60).unwrap_err();
    assert!(err.to_string().contains("presigned downloads need an s3:// store"), "{err}");
}

fn sealed(dir: &Path, current: u8, previous: Option<u8>) -> BucketBlobs {
    use crate::seal::{FileKek, Keyring};
    let kek = |b: u8| -> std::sync::Arc<dyn crate::seal::Kek> {
        std::sync::Arc::new(FileKek::from_bytes(&[b; 32]))
    };
    let keys = Keyring::new(kek(current), previous.map(kek));
    open(dir).with_seal(Some(std::sync::Arc::new(crate::seal::Seal::new(keys))))
}

#[tokio::test]
async fn a_sealed_bucket_stores_no_plaintext_and_reads_back_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = sealed(dir.path(), 1, None);
    let small = b"small model weights ".repeat(100);
    let big = large();
    assert!(put(&store, &small, 1000).unwrap().created);
    assert!(put(&store, &big, 1 << 20).unwrap().created);
    assert!(!put(&store, &big, 1 << 20).unwrap().created, "stored once");
    for f in files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for a in [&small, &big] {
            let window = &a[a.len() / 2..a.len() / 2 + 32];
            assert!(!bytes.windows(32).any(|w| w == window), "plaintext in {}", f.display());
        }
    }
    let (ds, db) = (digest(&small), digest(&big));
    assert_eq!(store.wait_size_of(&db).unwrap(), Some(big.len() as u64), "plaintext sizes");
    assert_eq!(store.wait_read_small_verified(&ds, 1 << 20).unwrap(), Some(small.clone()));
    let BucketRead::Whole(got) = store.open_read(&ds, 1 << 20).await.unwrap() else { panic!("whole") };
    assert_eq!(got, small);
    let (got, err) = drain(store.open_read(&db, 1 << 20).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == big);
    assert_eq!(store.verify(&db).unwrap(), big.len() as u64);
    assert_eq!(store.list_records().unwrap().len(), 2);
    assert!(store.presigned_url(&ds).await.unwrap().is_none(), "a sealed store never presigns");

    // A chunk altered in the middle: only authentic plaintext goes out.
    let path = object_file(dir.path(), &db);
    let honest = std::fs::read(&path).unwrap();
    let mut evil = honest.clone();
    evil[honest.len() / 2] ^= 1;
    std::fs::write(&path, &evil).unwrap();
    let (got, err) = drain(store.open_read(&db, 1 << 20).await.unwrap()).await;
    assert!(matches!(err, Some(BlobError::Integrity { .. })), "{err:?}");
    assert!(got.len() < big.len() / 2 && got[..] == big[..got.len()], "authentic prefix only");
    assert!(matches!(store.verify(&db), Err(BlobError::Integrity { .. })));
    // Truncated by one chunk: refused before anything is served.
    std::fs::write(&path, &honest[..honest.len() - crate::seal::format::SEALED_CHUNK]).unwrap();
    assert!(matches!(store.open_read(&db, 1 << 20).await, Err(BlobError::Integrity { .. })));
    std::fs::write(&path, &honest).unwrap();

    // Rotation in the bucket; then the old KEK alone no longer opens it.
    store
        .write_check(&crate::seal::CheckRecord::new(store.seal().unwrap().keys()).unwrap().to_bytes())
        .unwrap();
    let both = BlobStore::Bucket(sealed(dir.path(), 2, Some(1)));
    let report = rekey::rekey(&both).unwrap();
    assert_eq!((report.rewrapped, report.current), (2, 0), "{report}");
    let new = BlobStore::Bucket(sealed(dir.path(), 2, None));
    new.check_seal(false).unwrap();
    assert_eq!(new.verify(&db).unwrap(), big.len() as u64);
    let old = BlobStore::Bucket(sealed(dir.path(), 1, None));
    assert!(matches!(old.check_seal(false), Err(BlobError::Key(SealError::WrongKek { .. }))));
    // Removing a sealed object removes its key record.
    new.remove(&ds).unwrap();
    assert_eq!(new.list_records().unwrap().len(), 1);

    // An object of a length no sealed copy has is replaced by a new
    // upload of the artifact rather than blocking it.
    let fresh = sealed(dir.path(), 2, None);
    put(&fresh, &small, 1000).unwrap();
    std::fs::write(object_file(dir.path(), &ds), b"garbage").unwrap();
    assert!(matches!(fresh.wait_size_of(&ds), Err(BlobError::Integrity { .. })));
    assert!(put(&fresh, &small, 1000).unwrap().created);
    assert_eq!(fresh.wait_read_small_verified(&ds, 1 << 20).unwrap(), Some(small));
}
