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
//!
//! Unless the server runs with `--plaintext-artifacts`, both backends store
//! every artifact sealed ([`crate::seal`]): the bytes above are then those
//! of the plaintext, sealed on the way in and opened (and authenticated,
//! chunk by chunk) on the way out; each stored copy has a key record
//! beside it, and the store a check record ([`BlobStore::check_seal`]).

pub mod bucket;
mod bucket_keys;
mod bucket_read;
#[cfg(test)]
mod bucket_tests;
mod bucket_write;
pub mod local;
mod local_keys;
mod local_sealed;
mod migrate;
pub mod rekey;

pub use migrate::{seal_artifacts, SealReport};
#[cfg(test)]
mod sealed_tests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use custody_standards::Hash;
use sha2::{Digest as _, Sha256};

use crate::blob_cache::FileStamp;
use crate::seal::format::BLOB_ID_LEN;
use crate::seal::{CheckRecord, Seal, SealError};

pub use bucket::{BucketBlobs, BucketRead};
pub use local_keys::{CHECK_FILE, KEYS_DIR};
pub use local_sealed::BlobFile;

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

/// A stored artifact of `stored` bytes has `Ok(size)` bytes of plaintext:
/// the same when the store is not `sealed`, else from the sealed layout
/// (an impossible length is an integrity error).
fn sealed_size(sealed: bool, digest: &Hash, stored: u64) -> Result<u64, BlobError> {
    if !sealed {
        return Ok(stored);
    }
    crate::seal::format::plain_len(stored).ok_or_else(|| BlobError::Integrity {
        expected: digest.to_hex(),
        actual: format!("a sealed copy of impossible length {stored}"),
    })
}

/// The blob error of a sealed read of `digest` that failed: altered bytes
/// are an integrity violation, a missing or unopenable key a key error.
pub(crate) fn sealed_err(digest: &Hash, e: SealError) -> BlobError {
    if e.is_tampering() {
        BlobError::Integrity { expected: digest.to_hex(), actual: e.to_string() }
    } else {
        BlobError::Key(e)
    }
}

/// One key record of a sealed store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyName {
    /// The artifact.
    pub digest: Hash,
    /// The stored copy it opens.
    pub blob_id: [u8; BLOB_ID_LEN],
    /// When it was last written (Unix milliseconds).
    pub modified_ms: u64,
}

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
    /// A sealed artifact's key cannot be had: record missing, KEK not
    /// configured or wrong, or the store's encryption state does not match
    /// the configuration.
    #[error(transparent)]
    Key(SealError),
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
    /// artifacts tree, or the local files when there is no `--store`,
    /// sealed with `seal` (`None`: plaintext). Downloads answer with
    /// presigned URLs valid `presign_secs` when set, which only a plaintext
    /// store can do (a presigned URL would hand out sealed bytes).
    pub fn open_with(
        data_dir: &Path,
        store: Option<&str>,
        presign_secs: Option<u64>,
        seal: Option<Arc<Seal>>,
    ) -> Result<Self, BlobError> {
        match store {
            None => Ok(BlobStore::Local(LocalBlobs::open(data_dir)?.with_seal(seal))),
            Some(url) => {
                // The uploader records stay local (see `crate::uploads`).
                std::fs::create_dir_all(data_dir.join(BLOBS_DIR).join("tmp"))
                    .map_err(|source| BlobError::Io { path: data_dir.join(BLOBS_DIR), source })?;
                let b = BucketBlobs::open(url)?;
                let b = match presign_secs {
                    Some(_) if seal.is_some() => return Err(BlobError::Key(SealError::PresignSealed)),
                    Some(secs) => b.with_presign(secs)?,
                    None => b,
                };
                Ok(BlobStore::Bucket(b.with_seal(seal)))
            }
        }
    }

    /// [`BlobStore::at`] or the bucket of `store`, opened with `seal`, for
    /// `fsck`, `gc` and `rekey`.
    pub fn at_with(data_dir: &Path, store: Option<&str>, seal: Option<Arc<Seal>>) -> Result<Self, BlobError> {
        match store {
            None => Ok(BlobStore::Local(LocalBlobs::at(data_dir).with_seal(seal))),
            Some(url) => Ok(BlobStore::Bucket(BucketBlobs::open(url)?.with_seal(seal))),
        }
    }

    /// What the store seals with, if it is sealed.
    pub fn seal(&self) -> Option<&Arc<Seal>> {
        match self {
            BlobStore::Local(l) => l.seal(),
            BlobStore::Bucket(b) => b.seal(),
        }
    }

    /// Checks, before anything is served, that the store's encryption
    /// matches the configuration: a sealed store's check record opens under
    /// a configured KEK (else [`SealError::WrongKek`]); a sealing server
    /// does not start on unsealed artifacts ([`SealError::Unsealed`]), nor
    /// a plaintext one on a sealed store ([`SealError::Sealed`]). A new,
    /// empty store gets its check record here if `create` (the server;
    /// the offline commands change nothing).
    pub fn check_seal(&self, create: bool) -> Result<(), BlobError> {
        let check = self.read_check()?.map(|b| CheckRecord::parse(&b)).transpose().map_err(BlobError::Key)?;
        match (self.seal(), check) {
            (Some(seal), Some(check)) => check.verify(seal.keys()).map_err(BlobError::Key),
            (Some(seal), None) => {
                if let Some(first) = self.any_stored()? {
                    let what = format!("sha256:{} and maybe more", first.to_hex());
                    return Err(BlobError::Key(SealError::Unsealed(what)));
                }
                if !create {
                    return Ok(());
                }
                let record = CheckRecord::new(seal.keys()).map_err(BlobError::Key)?;
                self.write_check(&record.to_bytes())
            }
            (None, Some(check)) => Err(BlobError::Key(SealError::Sealed(check.kek))),
            (None, None) => Ok(()),
        }
    }

    /// Some stored artifact, if there is any.
    pub fn any_stored(&self) -> Result<Option<Hash>, BlobError> {
        match self {
            BlobStore::Local(l) => Ok(l.list()?.first().copied()),
            BlobStore::Bucket(b) => b.any_stored(),
        }
    }

    /// The store's check record, if any.
    pub fn read_check(&self) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            BlobStore::Local(l) => l.read_check(),
            BlobStore::Bucket(b) => b.read_check(),
        }
    }

    /// Writes the store's check record (atomically replacing it).
    pub fn write_check(&self, bytes: &[u8]) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(l) => l.write_check(bytes),
            BlobStore::Bucket(b) => b.write_check(bytes),
        }
    }

    /// Every key record (sealed stores).
    pub fn list_records(&self) -> Result<Vec<KeyName>, BlobError> {
        match self {
            BlobStore::Local(l) => l.list_records(),
            BlobStore::Bucket(b) => b.list_records(),
        }
    }

    /// The key record of copy `blob_id` of `digest`, if stored.
    pub fn get_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            BlobStore::Local(l) => l.get_record(digest, blob_id),
            BlobStore::Bucket(b) => b.wait_get_record(digest, blob_id),
        }
    }

    /// Writes the key record of copy `blob_id` of `digest` atomically.
    pub fn put_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(l) => l.put_record(digest, blob_id, bytes),
            BlobStore::Bucket(b) => b.put_record(digest, blob_id, bytes),
        }
    }

    /// Removes a key record (absent is not an error).
    pub fn remove_record(&self, digest: &Hash, blob_id: &[u8; BLOB_ID_LEN]) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(l) => l.remove_record(digest, blob_id),
            BlobStore::Bucket(b) => b.remove_record(digest, blob_id),
        }
    }

    /// The blob id of the stored copy of `digest`, if it is there and
    /// has a sealed header.
    pub fn stored_blob_id(&self, digest: &Hash) -> Result<Option<[u8; BLOB_ID_LEN]>, BlobError> {
        match self {
            BlobStore::Local(l) => l.stored_blob_id(digest),
            BlobStore::Bucket(b) => b.stored_blob_id(digest),
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

    /// [`BlobStore::begin`] of an upload that replaces the stored copy of
    /// its digest once its digest and size check out (`seal-artifacts`).
    pub fn begin_replace(&self, declared: Hash, declared_size: u64) -> Result<BlobWriter<'_>, BlobError> {
        Ok(match self {
            BlobStore::Local(l) => BlobWriter::Local(l.begin_replace(declared, declared_size)?),
            BlobStore::Bucket(b) => BlobWriter::Bucket(b.begin_replace(declared, declared_size)?),
        })
    }

    /// `len` bytes of the stored copy of `digest` from `offset` exactly as
    /// stored (fewer at its end): no decryption, no check.
    pub fn read_stored(&self, digest: &Hash, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        match self {
            BlobStore::Local(l) => l.read_stored(digest, offset, len),
            BlobStore::Bucket(b) => Ok(b.wait_read_stored(digest, offset, len)?.to_vec()),
        }
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
