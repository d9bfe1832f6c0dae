//! Verified small artifacts kept in memory for `GET /blobs/...`.
//!
//! Every download must serve bytes that hash to the digest the access
//! entry names. Re-reading and re-hashing the file on every request did
//! that at the cost of a hop to the blocking pool, an open, a read and a
//! SHA-256 per access: with thousands of accesses a second to a few hot
//! artifacts it was the largest cost after the signature check (issue 8,
//! docs/performance.md). This cache keeps the bytes that were verified
//! together with the file's [`FileStamp`] at the time, and serves them only
//! while a fresh `stat` of the file still shows that stamp.
//!
//! Any change through the file system (rewrite, truncate, rename over,
//! `touch` to restore the old modification time) changes the inode or the
//! change time, which no user can set, so the next request re-reads and
//! re-hashes the file and a tampered artifact is refused as before. Writes
//! that bypass the file system (to the raw block device) are caught when the
//! entry is evicted or the server restarts; `custody-log fsck` hashes every
//! stored artifact regardless.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use custody_standards::Hash;

/// What identifies one version of a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The stamp of one version of a bucket object: its size, ETag,
    /// version and last-modified time. A bucket object under a digest is
    /// replaced only by a new PUT, which changes its last-modified time
    /// (set by the store, not the writer) and its ETag; so, like a file's
    /// stamp, it names exactly the bytes that were hashed, for a cache that
    /// serves nothing but bytes verified against their digest.
    pub fn of_object(meta: &object_store::ObjectMeta) -> Self {
        let tag = format!("{:?}/{:?}", meta.e_tag, meta.version);
        let tag = custody_standards::hash::sha256(tag.as_bytes());
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&tag.0[..8]);
        FileStamp {
            // No device: never equal to a file's stamp.
            dev: u64::MAX,
            ino: u64::from_le_bytes(ino),
            len: meta.size,
            mtime_ns: i128::from(meta.last_modified.timestamp_nanos_opt().unwrap_or(i64::MIN)),
            ctime_ns: 0,
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }
}

/// A bounded map from digest to verified bytes. Eviction drops an arbitrary
/// entry: the cache is for a hot set far smaller than its budget, and a
/// miss only costs the re-read it replaces.
#[derive(Debug)]
pub struct VerifiedBlobCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bytes: usize,
    /// Digest -> the stamp its bytes were hashed from, the bytes, and
    /// when that stamp was last found current.
    map: HashMap<Hash, (FileStamp, Bytes, Instant)>,
}

impl VerifiedBlobCache {
    /// A cache of at most `max_bytes` of artifact bytes (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        VerifiedBlobCache { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    /// Largest artifact worth caching: a sixteenth of the budget, so one
    /// artifact cannot flush the rest.
    fn max_item(&self) -> usize {
        self.max_bytes / 16
    }

    /// The verified bytes of `digest` if they were hashed from the file
    /// version `now` still describes; a stale entry is dropped.
    pub fn get(&self, digest: &Hash, now: &FileStamp) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get_mut(digest) {
            Some((stamp, bytes, checked)) if stamp == now => {
                *checked = Instant::now();
                Some(bytes.clone())
            }
            Some(_) => {
                if let Some((_, old, _)) = inner.map.remove(digest) {
                    inner.bytes -= old.len();
                }
                None
            }
            None => None,
        }
    }

    /// Remembers `bytes`, which hashed to `digest` when read from the file
    /// version `stamp`. Too-large artifacts are not kept.
    pub fn insert(&self, digest: Hash, stamp: FileStamp, bytes: Bytes) {
        if bytes.len() > self.max_item() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old, _)) = inner.map.remove(&digest) {
            inner.bytes -= old.len();
        }
        while inner.bytes + bytes.len() > self.max_bytes {
            let Some(victim) = inner.map.keys().next().copied() else { break };
            if let Some((_, old, _)) = inner.map.remove(&victim) {
                inner.bytes -= old.len();
            }
        }
        inner.bytes += bytes.len();
        inner.map.insert(digest, (stamp, bytes, Instant::now()));
    }

    /// The stamp of the cached bytes of `digest` if it was found current
    /// (inserted, or matched by [`VerifiedBlobCache::get`]) within
    /// `within`: lets a caller whose stamps cost a network round trip (a
    /// bucket's HEAD) skip it for a hot artifact. What is served is still
    /// only bytes that hashed to their digest; an object rewritten in the
    /// meantime is found at the first check after `within`.
    pub fn fresh_stamp(&self, digest: &Hash, within: Duration) -> Option<FileStamp> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(digest).filter(|(_, _, checked)| checked.elapsed() <= within).map(|(s, _, _)| *s)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn stamp(path: &std::path::Path) -> FileStamp {
        FileStamp::of(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn serves_only_the_verified_version_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"weights").unwrap();
        let digest = custody_standards::hash::sha256(b"weights");
        let cache = VerifiedBlobCache::new(1 << 20);
        let s1 = stamp(&path);
        assert_eq!(cache.get(&digest, &s1), None);
        cache.insert(digest, s1, Bytes::from_static(b"weights"));
        assert_eq!(cache.get(&digest, &stamp(&path)).as_deref(), Some(&b"weights"[..]));
        assert_eq!(cache.bytes(), 7);

        // Same length, content rewritten in place, old mtime restored: the
        // change time still moves, so the entry is stale.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(b"WEIGHTS").unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let s2 = stamp(&path);
        assert_ne!(s1, s2);
        assert_eq!(cache.get(&digest, &s2), None);
        assert_eq!(cache.bytes(), 0, "a stale entry is dropped");

        // Replaced by another file (new inode).
        cache.insert(digest, s2, Bytes::from_static(b"weights"));
        let other = dir.path().join("other");
        std::fs::write(&other, b"weights").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(cache.get(&digest, &stamp(&path)), None);
    }

    #[test]
    fn a_stamp_is_fresh_only_for_a_while_after_it_was_found_current() {
        let cache = VerifiedBlobCache::new(1 << 20);
        let (d, s) = (Hash([1; 32]), FileStamp { dev: u64::MAX, ino: 7, len: 3, mtime_ns: 1, ctime_ns: 0 });
        assert_eq!(cache.fresh_stamp(&d, Duration::from_secs(60)), None);
        cache.insert(d, s, Bytes::from_static(b"abc"));
        assert_eq!(cache.fresh_stamp(&d, Duration::from_secs(60)), Some(s));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.fresh_stamp(&d, Duration::from_millis(10)), None, "too old");
        assert!(cache.get(&d, &s).is_some(), "a match makes it current again");
        assert_eq!(cache.fresh_stamp(&d, Duration::from_millis(10)), Some(s));
        let other = FileStamp { ino: 8, ..s };
        assert_eq!(cache.get(&d, &other), None);
        assert_eq!(cache.fresh_stamp(&d, Duration::from_secs(60)), None, "a stale entry is gone");
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = VerifiedBlobCache::new(16 * 100);
        let s = FileStamp { dev: 1, ino: 1, len: 100, mtime_ns: 0, ctime_ns: 0 };
        for i in 0..100u8 {
            cache.insert(Hash([i; 32]), s, Bytes::from(vec![i; 100]));
            assert!(cache.bytes() <= 1600);
        }
        assert_eq!(cache.bytes(), 1600);
        cache.insert(Hash([200; 32]), s, Bytes::from(vec![0; 101]));
        assert_eq!(cache.get(&Hash([200; 32]), &s), None, "larger than a sixteenth is not kept");
        let off = VerifiedBlobCache::new(0);
        off.insert(Hash([1; 32]), s, Bytes::from_static(b"x"));
        assert_eq!(off.bytes(), 0);
    }
}
