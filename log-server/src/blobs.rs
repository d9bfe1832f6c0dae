//! Content-addressed, write-once artifact storage.
//!
//! Artifacts are named by `sha256:<hex>` of their bytes. Two backends sit
//! behind [`BlobStore`]: files under the data directory ([`local`], the
//! default) and objects in the `--store` bucket ([`bucket`], at
//! `artifacts/sha256/<hex>`). Both keep the same promises:
//!
//! - an upload is hashed while it streams, and its bytes become visible
//!   under the digest only if digest and declared size both match
//!   (identical bytes are stored once);
//! - reads are verified against the digest: a small blob is read and hashed
//!   whole before it is served, a large one is hashed while it is served
//!   and its last bytes are released only if the whole blob matches. A
//!   mismatch means the storage no longer holds what was published: that is
//!   [`BlobError::Integrity`] (counted and raised as an alarm), never a
//!   silent substitution.
//!
//! The one exception to write-once is [`BlobStore::remove`], for bytes that
//! no publish names (a refused upload, `custody-log gc`).

pub mod bucket;
mod bucket_read;
#[cfg(test)]
mod bucket_tests;
mod bucket_write;
pub mod local;

use std::io::Read;
use std::path::{Path, PathBuf};

use custody_standards::Hash;
use sha2::{Digest as _, Sha256};

use crate::blob_cache::FileStamp;

pub use bucket::{BucketBlobs, BucketRead};

/// What both backends check before keeping an upload: exactly the declared
/// number of bytes arrived, and they hash to the declared digest.
fn check_upload(written: u64, declared_size: u64, hasher: Sha256, declared: Hash) -> Result<(), BlobError> {
    if written != declared_size {
        return Err(BlobError::SizeMismatch { declared: declared_size, actual: written });
    }
    let actual = Hash(hasher.finalize().into());
    if actual != declared {
        return Err(BlobError::DigestMismatch { declared: declared.to_hex(), actual: actual.to_hex() });
    }
    Ok(())
}
pub use local::{LocalBlobs, LocalWriter, VerifiedBlob};

/// Directory of the blob store inside the data directory.
pub const BLOBS_DIR: &str = "blobs";
/// Read size when hashing and serving a blob.
pub const CHUNK: usize = 256 * 1024;

/// Why a blob operation failed. [`BlobError::Integrity`] is the one that
/// means the stored bytes were altered.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The uploaded bytes hash to another digest.
    #[error("uploaded bytes hash to sha256:{actual}, not the declared sha256:{declared}")]
    DigestMismatch {
        /// Digest named in the request.
        declared: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// The upload's length differs from the declared size.
    #[error("upload is {actual} bytes, the declared size is {declared}")]
    SizeMismatch {
        /// Declared size.
        declared: u64,
        /// Bytes received (so far, if the upload overran).
        actual: u64,
    },
    /// The blob is not stored.
    #[error("blob sha256:{0} is not stored")]
    NotFound(String),
    /// The stored bytes no longer hash to their name: tampering or disk
    /// corruption. The bytes must not be served.
    #[error("integrity violation: stored blob sha256:{expected} now hashes to sha256:{actual}")]
    Integrity {
        /// The blob's name.
        expected: String,
        /// What its bytes hash to now.
        actual: String,
    },
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The bucket refused or failed a request.
    #[error(transparent)]
    Bucket(#[from] crate::bucket::BucketError),
}

/// Outcome of a completed upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Size in bytes.
    pub size: u64,
    /// False when identical bytes were already stored (the upload was
    /// verified, then discarded).
    pub created: bool,
}

/// A stored blob as a listing sees it, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub digest: Hash,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written (Unix milliseconds).
    pub modified_ms: u64,
}

/// The artifact store of a log: local files or a bucket.
#[derive(Debug)]
pub enum BlobStore {
    /// Files under the data directory.
    Local(LocalBlobs),
    /// Objects in the `--store` bucket.
    Bucket(BucketBlobs),
}

impl BlobStore {
    /// Opens (creating) the local store under `data_dir` and removes
    /// leftovers of uploads interrupted by a crash.
    pub fn open(data_dir: &Path) -> Result<Self, BlobError> {
        LocalBlobs::open(data_dir).map(BlobStore::Local)
    }

    /// The local store under `data_dir` without creating or cleaning
    /// anything, for checks of a stopped server (`fsck`, `gc`).
    pub fn at(data_dir: &Path) -> Self {
        BlobStore::Local(LocalBlobs::at(data_dir))
    }

    /// The store a server started with `--store store` uses: the bucket's
    /// artifacts tree, or the local files when there is no `--store`.
    /// Downloads answer with presigned URLs valid `presign_secs` when set.
    pub fn open_with(
        data_dir: &Path,
        store: Option<&str>,
        presign_secs: Option<u64>,
    ) -> Result<Self, BlobError> {
        match store {
            None => Self::open(data_dir),
            Some(url) => {
                // The uploader records stay local (see `crate::uploads`).
                std::fs::create_dir_all(data_dir.join(BLOBS_DIR).join("tmp"))
                    .map_err(|source| BlobError::Io { path: data_dir.join(BLOBS_DIR), source })?;
                let b = BucketBlobs::open(url)?;
                Ok(BlobStore::Bucket(match presign_secs {
                    Some(secs) => b.with_presign(secs)?,
                    None => b,
                }))
            }
        }
    }

    /// [`BlobStore::at`] or the bucket of `store`, for `fsck` and `gc`.
    pub fn at_with(data_dir: &Path, store: Option<&str>) -> Result<Self, BlobError> {
        match store {
            None => Ok(Self::at(data_dir)),
            Some(url) => Ok(BlobStore::Bucket(BucketBlobs::open(url)?)),
        }
    }

    /// The local backend, if that is what this is.
    pub fn local(&self) -> Option<&LocalBlobs> {
        match self {
            BlobStore::Local(l) => Some(l),
            BlobStore::Bucket(_) => None,
        }
    }

    /// Size of the stored blob, or `None` if absent. Does not verify it.
    /// Blocks on a bucket: call it from blocking code (see
    /// [`BlobStore::size_now`] for async code).
    pub fn size_of(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        match self {
            BlobStore::Local(l) => l.size_of(digest),
            BlobStore::Bucket(b) => b.wait_size_of(digest),
        }
    }

    /// [`BlobStore::size_of`] from async code: one `stat` locally (cheap
    /// enough to run in place), a HEAD request on a bucket.
    pub async fn size_now(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        match self {
            BlobStore::Local(l) => l.size_of(digest),
            BlobStore::Bucket(b) => b.size_of(digest).await,
        }
    }

    /// The stored blob's stamp from async code: one `stat` locally, a
    /// HEAD request on a bucket. `None` if absent.
    pub async fn stamp_now(&self, digest: &Hash) -> Result<Option<FileStamp>, BlobError> {
        match self {
            BlobStore::Local(l) => l.stamp(digest),
            BlobStore::Bucket(b) => b.stamp(digest).await,
        }
    }

    /// Starts an upload (blocking code only).
    pub fn begin(&self, declared: Hash, declared_size: u64) -> Result<BlobWriter<'_>, BlobError> {
        Ok(match self {
            BlobStore::Local(l) => BlobWriter::Local(l.begin(declared, declared_size)?),
            BlobStore::Bucket(b) => BlobWriter::Bucket(b.begin(declared, declared_size)?),
        })
    }

    /// Removes a stored blob. Only for bytes no publish names: a refused
    /// upload's, or an orphan past its grace period (`custody-log gc`).
    /// Removing one that is absent is not an error.
    pub fn remove(&self, digest: &Hash) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(l) => l.remove(digest),
            BlobStore::Bucket(b) => b.remove(digest),
        }
    }

    /// The whole blob, verified, if it is at most `max` bytes (`Ok(None)`
    /// if larger).
    pub fn read_small_verified(&self, digest: &Hash, max: u64) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            BlobStore::Local(l) => l.read_small_verified(digest, max),
            BlobStore::Bucket(b) => b.wait_read_small_verified(digest, max),
        }
    }

    /// Hashes a stored blob without serving it (fsck and tests); its size.
    pub fn verify(&self, digest: &Hash) -> Result<u64, BlobError> {
        match self {
            BlobStore::Local(l) => l.verify(digest),
            BlobStore::Bucket(b) => b.verify(digest),
        }
    }

    /// Every stored digest, sorted. Names that are not well-formed blob
    /// names are reported as integrity errors rather than skipped.
    pub fn list(&self) -> Result<Vec<Hash>, BlobError> {
        match self {
            BlobStore::Local(l) => l.list(),
            BlobStore::Bucket(_) => Ok(self.list_stored()?.into_iter().map(|l| l.digest).collect()),
        }
    }

    /// [`BlobStore::list`] with each blob's size and modification time.
    pub fn list_stored(&self) -> Result<Vec<Listed>, BlobError> {
        let mut out = match self {
            BlobStore::Local(l) => l.list_stored()?,
            BlobStore::Bucket(b) => b.list_stored()?,
        };
        out.sort_unstable_by_key(|l| l.digest.0);
        Ok(out)
    }
}

/// An upload in progress. Dropping it without [`BlobWriter::finish`]
/// leaves nothing under the digest.
#[derive(Debug)]
pub enum BlobWriter<'a> {
    /// Into a temporary file.
    Local(LocalWriter<'a>),
    /// Into the bucket.
    Bucket(bucket_write::BucketWriter<'a>),
}

impl BlobWriter<'_> {
    /// Appends a chunk. Fails as soon as the upload exceeds its declared
    /// size, so an overlong body is cut off rather than stored.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        match self {
            BlobWriter::Local(w) => w.write(chunk),
            BlobWriter::Bucket(w) => w.write(chunk),
        }
    }

    /// Checks size and digest, then makes the bytes visible under the
    /// digest unless identical bytes are already stored.
    pub fn finish(self) -> Result<Stored, BlobError> {
        match self {
            BlobWriter::Local(w) => w.finish(),
            BlobWriter::Bucket(w) => w.finish(),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        match self {
            BlobWriter::Local(w) => w.written(),
            BlobWriter::Bucket(w) => w.written(),
        }
    }
}

/// The integrity error of bytes named `expected` that hash to `actual`.
pub(crate) fn integrity(expected: &Hash, actual: &Hash) -> BlobError {
    BlobError::Integrity { expected: expected.to_hex(), actual: actual.to_hex() }
}

/// SHA-256 and length of everything `r` yields; `expected_len` only sizes
/// the read buffer (small artifacts do not pay for a full chunk).
pub fn hash_reader(r: &mut impl Read, expected_len: u64) -> std::io::Result<(Hash, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; chunk_for(expected_len)];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Hash(hasher.finalize().into()), total))
}

/// Read-buffer size for a file of `len` bytes: at most [`CHUNK`], at
/// least one byte (so a read can observe end of file).
pub fn chunk_for(len: u64) -> usize {
    usize::try_from(len).unwrap_or(CHUNK).clamp(1, CHUNK)
}
