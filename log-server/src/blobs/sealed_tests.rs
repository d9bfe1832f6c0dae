//! The sealed local store: what lands on disk, reads of every kind, the
//! start-up check, tampering on disk, and KEK rotation.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use custody_standards::Hash;

use super::*;
use crate::seal::format::{sealed_len, CHUNK, HEADER_LEN, SEALED_CHUNK};
use crate::seal::{FileKek, Kek, Keyring};

fn digest(bytes: &[u8]) -> Hash {
    custody_standards::hash::sha256(bytes)
}

fn kek(b: u8) -> Arc<dyn Kek> {
    Arc::new(FileKek::from_bytes(&[b; 32]))
}

fn seal(current: u8, previous: Option<u8>) -> Option<Arc<Seal>> {
    Some(Arc::new(Seal::new(Keyring::new(kek(current), previous.map(kek)))))
}

fn store(dir: &Path, s: Option<Arc<Seal>>) -> BlobStore {
    BlobStore::open_with(dir, None, None, s).unwrap()
}

fn put(store: &BlobStore, bytes: &[u8]) -> Stored {
    let mut w = store.begin(digest(bytes), bytes.len() as u64).unwrap();
    for c in bytes.chunks(7_777) {
        w.write(c).unwrap();
    }
    w.finish().unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads the whole artifact the way a large download does.
fn stream_read(store: &BlobStore, d: &Hash) -> std::io::Result<Vec<u8>> {
    let (file, size) = store.local().unwrap().open_unverified(d).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        let want = usize::try_from(size - out.len() as u64).unwrap().min(CHUNK);
        let got = file.read_at(out.len() as u64, want)?;
        if got.len() < want {
            return Err(std::io::Error::other("short"));
        }
        out.extend_from_slice(&got);
    }
    Ok(out)
}

fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn stores_sealed_and_reads_back_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), seal(1, None));
    s.check_seal(true).unwrap();
    for len in [0, 10, CHUNK, 3 * CHUNK + 5] {
        let bytes = noise(len, len as u64);
        let d = digest(&bytes);
        assert_eq!(put(&s, &bytes), Stored { size: len as u64, created: true });
        assert!(!put(&s, &bytes).created, "stored once");
        let path = s.local().unwrap().path_of(&d);
        assert_eq!(fs::metadata(&path).unwrap().len(), sealed_len(len as u64));
        assert_eq!(s.size_of(&d).unwrap(), Some(len as u64), "sizes are the plaintext's");
        assert_eq!(s.read_small_verified(&d, 1 << 20).unwrap().as_deref(), Some(&bytes[..]));
        assert_eq!(stream_read(&s, &d).unwrap(), bytes);
        assert_eq!(s.verify(&d).unwrap(), len as u64);
        if len >= 64 {
            let stored = fs::read(&path).unwrap();
            assert!(!stored.windows(32).any(|w| w == &bytes[20..52]), "no plaintext on disk");
        }
    }
    assert_eq!(s.list_records().unwrap().len(), 4, "one key record per stored copy");
}

#[test]
fn altered_sealed_files_are_integrity_violations() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), seal(1, None));
    let bytes = noise(3 * CHUNK + 100, 9);
    let d = digest(&bytes);
    put(&s, &bytes);
    let path = s.local().unwrap().path_of(&d);
    writable(&path);
    let honest = fs::read(&path).unwrap();
    let swapped = {
        let mut v = honest.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + SEALED_CHUNK);
        let first = v[a..b].to_vec();
        v.copy_within(b..b + SEALED_CHUNK, a);
        v[b..b + SEALED_CHUNK].copy_from_slice(&first);
        v
    };
    let flipped = {
        let mut v = honest.clone();
        v[HEADER_LEN + 5] ^= 1;
        v
    };
    let header = {
        let mut v = honest.clone();
        v[30] ^= 1; // the blob id: names another (absent) key record
        v
    };
    let truncated = honest[..HEADER_LEN + 2 * SEALED_CHUNK].to_vec();
    let extended = [honest.as_slice(), &[0u8; 16]].concat();
    for (what, evil) in
        [("swapped", swapped), ("flipped", flipped), ("truncated", truncated), ("extended", extended)]
    {
        fs::write(&path, &evil).unwrap();
        let err = s.verify(&d).unwrap_err();
        assert!(matches!(err, BlobError::Integrity { .. }), "{what}: {err}");
        let err = s.read_small_verified(&d, 1 << 30).unwrap_err();
        assert!(matches!(err, BlobError::Integrity { .. }), "{what}: {err}");
        assert!(stream_read(&s, &d).is_err(), "{what}");
    }
    fs::write(&path, &header).unwrap();
    assert!(matches!(s.verify(&d), Err(BlobError::Key(SealError::KeyMissing { .. }))));
    // The plaintext itself in place of the sealed copy.
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(s.verify(&d), Err(BlobError::Integrity { .. })));
    fs::write(&path, &honest).unwrap();
    assert_eq!(s.verify(&d).unwrap(), bytes.len() as u64, "the honest copy still opens");
}

#[test]
fn a_missing_or_foreign_key_record_is_a_key_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), seal(1, None));
    let (a, b) = (noise(1000, 1), noise(1000, 2));
    put(&s, &a);
    put(&s, &b);
    let names = s.list_records().unwrap();
    let rec = |d: &Hash| names.iter().find(|n| n.digest == *d).unwrap().blob_id;
    let (ra, rb) = (rec(&digest(&a)), rec(&digest(&b)));
    // b's record copied over a's: bound to its own copy, it does not open.
    let foreign = s.get_record(&digest(&b), &rb).unwrap().unwrap();
    s.put_record(&digest(&a), &ra, &foreign).unwrap();
    assert!(matches!(s.verify(&digest(&a)), Err(BlobError::Key(SealError::Unwrap(_)))));
    s.remove_record(&digest(&a), &ra).unwrap();
    let err = s.read_small_verified(&digest(&a), 1 << 20).unwrap_err();
    assert!(matches!(err, BlobError::Key(SealError::KeyMissing { .. })), "{err}");
    // Another KEK: the record names a KEK that is not configured.
    let other = store(dir.path(), seal(2, None));
    assert!(matches!(other.verify(&digest(&b)), Err(BlobError::Key(SealError::UnknownKek { .. }))));
}

#[test]
fn start_up_check_refuses_a_wrong_kek_and_mixed_modes() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), seal(1, None)).check_seal(true).unwrap();
    let err = store(dir.path(), seal(2, None)).check_seal(true).unwrap_err();
    assert!(matches!(err, BlobError::Key(SealError::WrongKek { .. })), "{err}");
    assert!(err.to_string().contains("wrong KEK"), "{err}");
    let err = store(dir.path(), None).check_seal(true).unwrap_err();
    assert!(matches!(err, BlobError::Key(SealError::Sealed(_))), "{err}");
    // During a rotation the old KEK as previous still opens it.
    store(dir.path(), seal(2, Some(1))).check_seal(true).unwrap();

    // A plaintext store with artifacts is not silently mixed with sealed ones.
    let plain = tempfile::tempdir().unwrap();
    let p = store(plain.path(), None);
    p.check_seal(true).unwrap();
    put(&p, b"plaintext artifact");
    let err = store(plain.path(), seal(1, None)).check_seal(true).unwrap_err();
    assert!(matches!(err, BlobError::Key(SealError::Unsealed(_))), "{err}");
    assert!(!plain.path().join(BLOBS_DIR).join(CHECK_FILE).exists(), "nothing written");
}

#[test]
fn removing_a_sealed_blob_removes_its_key_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), seal(1, None));
    put(&s, b"orphan bytes");
    assert_eq!(s.list_records().unwrap().len(), 1);
    s.remove(&digest(b"orphan bytes")).unwrap();
    assert!(s.list_records().unwrap().is_empty());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn concurrent_uploads_of_one_digest_keep_one_copy_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), seal(1, None));
    let bytes = noise(2 * CHUNK, 4);
    let d = digest(&bytes);
    let mut w1 = s.begin(d, bytes.len() as u64).unwrap();
    let mut w2 = s.begin(d, bytes.len() as u64).unwrap();
    w1.write(&bytes).unwrap();
    w2.write(&bytes).unwrap();
    assert!(w1.finish().unwrap().created);
    assert!(!w2.finish().unwrap().created);
    assert_eq!(s.read_small_verified(&d, 1 << 20).unwrap(), Some(bytes));
    assert_eq!(s.list_records().unwrap().len(), 1);
}

#[test]
fn rekey_rewraps_every_key_and_an_interrupted_rotation_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let old = store(dir.path(), seal(1, None));
    old.check_seal(true).unwrap();
    let arts: Vec<Vec<u8>> = (0..6).map(|i| noise(1000 + i * 40_000, i as u64)).collect();
    for a in &arts {
        put(&old, a);
    }
    let data_before: Vec<Vec<u8>> =
        arts.iter().map(|a| fs::read(old.local().unwrap().path_of(&digest(a))).unwrap()).collect();

    // "Interrupted": half the records rewrapped, the check record not yet.
    let both = store(dir.path(), seal(2, Some(1)));
    for name in both.list_records().unwrap().iter().take(3) {
        let r =
            crate::seal::KeyRecord::parse(&both.get_record(&name.digest, &name.blob_id).unwrap().unwrap())
                .unwrap();
        let new = r.rewrapped(both.seal().unwrap().keys(), &name.digest, &name.blob_id).unwrap().unwrap();
        both.put_record(&name.digest, &name.blob_id, &new.to_bytes()).unwrap();
    }
    both.check_seal(false).unwrap();
    for a in &arts {
        assert_eq!(both.verify(&digest(a)).unwrap(), a.len() as u64, "readable mid-rotation");
    }
    let report = rekey::rekey(&both).unwrap();
    assert_eq!((report.rewrapped, report.current), (3, 3), "{report}");
    let again = rekey::rekey(&both).unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 6), "idempotent: {again}");

    // The data was not re-encrypted; the new KEK alone opens everything.
    let new = store(dir.path(), seal(2, None));
    new.check_seal(false).unwrap();
    for (a, before) in arts.iter().zip(&data_before) {
        assert_eq!(&fs::read(new.local().unwrap().path_of(&digest(a))).unwrap(), before);
        assert_eq!(new.read_small_verified(&digest(a), 1 << 20).unwrap().as_deref(), Some(&a[..]));
    }
    // The old KEK alone no longer does, and says so at start-up.
    let err = store(dir.path(), seal(1, None)).check_seal(false).unwrap_err();
    assert!(matches!(err, BlobError::Key(SealError::WrongKek { .. })), "{err}");
}

#[test]
fn a_plaintext_store_is_sealed_in_place_and_resumes_after_an_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let plain = store(dir.path(), None);
    let arts: Vec<Vec<u8>> = vec![noise(10, 1), noise(3 * CHUNK + 7, 2), Vec::new(), noise(5000, 3)];
    for a in &arts {
        put(&plain, a);
    }
    let sealed = store(dir.path(), seal(1, None));
    assert!(matches!(sealed.check_seal(false), Err(BlobError::Key(SealError::Unsealed(_)))));
    // "Interrupted": one copy sealed by hand, no check record yet.
    let mut w = sealed.begin_replace(digest(&arts[1]), arts[1].len() as u64).unwrap();
    w.write(&arts[1]).unwrap();
    w.finish().unwrap();
    let report = seal_artifacts(&sealed, &plain).unwrap();
    assert_eq!((report.sealed, report.already, report.complete), (3, 1, true), "{report}");
    sealed.check_seal(false).unwrap();
    for a in &arts {
        assert_eq!(sealed.read_small_verified(&digest(a), 1 << 20).unwrap().as_deref(), Some(&a[..]));
        let stored = fs::read(sealed.local().unwrap().path_of(&digest(a))).unwrap();
        assert_eq!(&stored[..8], b"CSTDSEAL");
    }
    let again = seal_artifacts(&sealed, &plain).unwrap();
    assert_eq!((again.sealed, again.complete), (0, true), "{again}");

    // A plaintext copy that no longer matches its digest is left and
    // reported; the store is then not marked sealed.
    let other = tempfile::tempdir().unwrap();
    let p = store(other.path(), None);
    put(&p, b"honest");
    put(&p, b"weights");
    let path = p.local().unwrap().path_of(&digest(b"weights"));
    writable(&path);
    fs::write(&path, b"weightz").unwrap();
    let s = store(other.path(), seal(1, None));
    let report = seal_artifacts(&s, &p).unwrap();
    assert_eq!((report.sealed, report.failed.len(), report.complete), (1, 1, false), "{report}");
    assert_eq!(fs::read(&path).unwrap(), b"weightz", "left as it was");
    assert!(s.read_check().unwrap().is_none());
}
