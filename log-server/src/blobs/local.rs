//! The local backend of [`super::BlobStore`]: write-once files under the
//! data directory.
//!
//! An upload is streamed into a temporary file while being hashed, so a
//! multi-gigabyte model never sits in memory. Only when the digest and the
//! declared size both match is the file fsynced, made read-only and
//! hard-linked into place; the directory is fsynced so the link itself
//! survives a crash. If the name already exists the new temporary file is
//! discarded (identical bytes are stored once).
//!
//! Layout under the data directory: `blobs/sha256/<first two hex>/<hex>`,
//! `blobs/tmp/` for uploads in progress (emptied at start-up: a crash
//! mid-upload leaves nothing that was acknowledged) and `blobs/uploaders/`
//! ([`crate::uploads`]).
//!
//! A sealed store ([`crate::seal`]) keeps the same layout with sealed bytes
//! under `sha256/`, plus the key records and check record of
//! `local_keys`. An upload is sealed as it streams; its key
//! record is made durable before the data is linked into place, so every
//! visible copy has its key. Reads parse the header, unwrap the copy's key
//! and open one chunk at a time (`local_sealed`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::local_sealed::{BlobFile, SealingWriter};
use super::{check_upload, hash_reader, sealed_size, BlobError, Stored, BLOBS_DIR};
use crate::blob_cache::FileStamp;
use crate::seal::Seal;
use custody_standards::Hash;
use sha2::{Digest as _, Sha256};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io { path: path.to_owned(), source }
}

/// The write-once blob store.
#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
    tmp_counter: AtomicU64,
    seal: Option<Arc<Seal>>,
}

/// Modification time of `meta` in Unix milliseconds (0 if unknown).
pub(super) fn modified_ms(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl LocalBlobs {
    /// Opens (creating) the store under `data_dir` and removes leftovers of
    /// uploads interrupted by a crash.
    pub fn open(data_dir: &Path) -> Result<Self, BlobError> {
        let root = data_dir.join(BLOBS_DIR);
        let tmp = root.join("tmp");
        fs::create_dir_all(root.join("sha256")).map_err(io(&root))?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        Ok(LocalBlobs { root, tmp_counter: AtomicU64::new(0), seal: None })
    }

    /// The same store, sealing what it stores and opening what it reads
    /// with `seal` (`None`: plaintext).
    pub fn with_seal(mut self, seal: Option<Arc<Seal>>) -> Self {
        self.seal = seal;
        self
    }

    /// What the store seals with, if it is sealed.
    pub fn seal(&self) -> Option<&Arc<Seal>> {
        self.seal.as_ref()
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn tmp_counter(&self) -> &AtomicU64 {
        &self.tmp_counter
    }

    /// The store under `data_dir` without creating or cleaning anything,
    /// for checks of a stopped server (`fsck`).
    pub fn at(data_dir: &Path) -> Self {
        LocalBlobs { root: data_dir.join(BLOBS_DIR), tmp_counter: AtomicU64::new(0), seal: None }
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path_of(&self, digest: &Hash) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Size of the stored blob (of its plaintext, if sealed), or `None`
    /// if absent. Does not verify it.
    pub fn size_of(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        self.stamp(digest)?.map(|s| sealed_size(self.seal.is_some(), digest, s.size())).transpose()
    }

    /// The stored blob's [`FileStamp`] (one `stat`), or `None` if absent.
    /// Does not verify it.
    pub fn stamp(&self, digest: &Hash) -> Result<Option<FileStamp>, BlobError> {
        let path = self.path_of(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(FileStamp::of(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Starts an upload into a fresh temporary file.
    pub fn begin(&self, declared: Hash, declared_size: u64) -> Result<LocalWriter<'_>, BlobError> {
        self.begin_with(declared, declared_size, false)
    }

    /// [`LocalBlobs::begin`] of an upload that replaces the stored file of
    /// its digest once it checks out (sealing a plaintext store).
    pub fn begin_replace(&self, declared: Hash, declared_size: u64) -> Result<LocalWriter<'_>, BlobError> {
        self.begin_with(declared, declared_size, true)
    }

    fn begin_with(
        &self,
        declared: Hash,
        declared_size: u64,
        replace: bool,
    ) -> Result<LocalWriter<'_>, BlobError> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join("tmp").join(format!("{}-{n}", std::process::id()));
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io(&path))?;
        let sealing = match &self.seal {
            Some(seal) => {
                let w = SealingWriter::start(seal, &declared, declared_size)?;
                file.write_all(&w.header_bytes()).map_err(io(&path))?;
                Some(w)
            }
            None => None,
        };
        Ok(LocalWriter {
            store: self,
            file,
            path,
            hasher: Sha256::new(),
            written: 0,
            declared,
            declared_size,
            sealing,
            replace,
        })
    }

    /// Opens the stored file of `digest` (NotFound if absent).
    fn open_file(&self, digest: &Hash) -> Result<(PathBuf, File), BlobError> {
        let path = self.path_of(digest);
        match File::open(&path) {
            Ok(f) => Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(digest.to_hex())),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Opens a stored blob without hashing it, with its current size (of
    /// its plaintext): for a download that hashes the bytes as it serves
    /// them. A sealed blob's header and key are checked here; its chunks
    /// are authenticated as they are read.
    pub fn open_unverified(&self, digest: &Hash) -> Result<(BlobFile, u64), BlobError> {
        let (path, file) = self.open_file(digest)?;
        let len = file.metadata().map_err(io(&path))?.len();
        match &self.seal {
            None => Ok((BlobFile::Plain(file), len)),
            Some(seal) => self.open_sealed(seal, digest, &path, file, len),
        }
    }

    /// Removes a stored blob (and, if sealed, its copy's key record). Only
    /// for bytes no publish names: a refused upload's, or an orphan past
    /// its grace period (`custody-log gc`). Removing one that is absent is
    /// not an error.
    pub fn remove(&self, digest: &Hash) -> Result<(), BlobError> {
        let path = self.path_of(digest);
        let blob_id = match &self.seal {
            Some(_) => self.stored_blob_id(digest)?,
            None => None,
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        match blob_id {
            Some(id) => self.remove_record(digest, &id),
            None => Ok(()),
        }
    }

    /// Opens a plaintext blob for serving after hashing every byte of it.
    /// The returned handle is positioned at the start and is the same file
    /// that was hashed.
    pub fn open_verified(&self, digest: &Hash) -> Result<VerifiedBlob, BlobError> {
        let (path, mut file) = self.open_file(digest)?;
        let len = file.metadata().map_err(io(&path))?.len();
        let (actual, size) = hash_reader(&mut file, len).map_err(io(&path))?;
        if actual != *digest {
            return Err(BlobError::Integrity { expected: digest.to_hex(), actual: actual.to_hex() });
        }
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        Ok(VerifiedBlob { file, size })
    }

    /// The whole blob, verified, if it is at most `max` bytes (`Ok(None)`
    /// if larger: stream it with [`LocalBlobs::open_verified`] instead). One
    /// read serves both the check and the response, so small artifacts cost
    /// one system call and no extra thread.
    pub fn read_small_verified(&self, digest: &Hash, max: u64) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.read_small_verified_stamped(digest, max)?.map(|(_, bytes)| bytes))
    }

    /// [`LocalBlobs::read_small_verified`] with the stamp of the file version
    /// that was read (taken from the open handle before reading, so it
    /// names exactly the bytes that were hashed).
    pub fn read_small_verified_stamped(
        &self,
        digest: &Hash,
        max: u64,
    ) -> Result<Option<(FileStamp, Vec<u8>)>, BlobError> {
        let (path, mut file) = self.open_file(digest)?;
        let meta = file.metadata().map_err(io(&path))?;
        let (stamp, len) = (FileStamp::of(&meta), meta.len());
        if let Some(seal) = &self.seal {
            let got = self.read_small_sealed(seal, digest, &path, file, len, max)?;
            return Ok(got.map(|bytes| (stamp, bytes)));
        }
        if len > max {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // `take` keeps a file that grew since `metadata` from growing the buffer.
        (&mut file).take(max + 1).read_to_end(&mut bytes).map_err(io(&path))?;
        let actual = custody_standards::hash::sha256(&bytes);
        if actual != *digest {
            return Err(BlobError::Integrity { expected: digest.to_hex(), actual: actual.to_hex() });
        }
        Ok(Some((stamp, bytes)))
    }

    /// Hashes a stored blob (opening every chunk, if sealed) without
    /// serving it (fsck and tests); its size.
    pub fn verify(&self, digest: &Hash) -> Result<u64, BlobError> {
        match &self.seal {
            None => self.open_verified(digest).map(|b| b.size),
            Some(_) => {
                let (file, size) = self.open_unverified(digest)?;
                file.verify_all(digest, size)?;
                Ok(size)
            }
        }
    }

    /// Every stored blob with its size and modification time (`gc`).
    pub fn list_stored(&self) -> Result<Vec<super::Listed>, BlobError> {
        let mut out = Vec::new();
        for digest in self.list()? {
            let path = self.path_of(&digest);
            let meta = fs::metadata(&path).map_err(io(&path))?;
            // A sealed blob of a length no encoder writes is listed with its
            // stored length; reading it fails.
            let size = sealed_size(self.seal.is_some(), &digest, meta.len()).unwrap_or(meta.len());
            out.push(super::Listed { digest, size, modified_ms: modified_ms(&meta) });
        }
        Ok(out)
    }

    /// Every stored digest, for `fsck`. Names that are not well-formed blob
    /// paths are reported as integrity errors rather than skipped.
    pub fn list(&self) -> Result<Vec<Hash>, BlobError> {
        let base = self.root.join("sha256");
        let mut out = Vec::new();
        if !base.exists() {
            return Ok(out);
        }
        for shard in fs::read_dir(&base).map_err(io(&base))? {
            let shard = shard.map_err(io(&base))?.path();
            for f in fs::read_dir(&shard).map_err(io(&shard))? {
                let f = f.map_err(io(&shard))?;
                let name = f.file_name().to_string_lossy().into_owned();
                let digest = Hash::from_hex(&name).map_err(|_| BlobError::Integrity {
                    expected: name.clone(),
                    actual: "a file whose name is not a digest".into(),
                })?;
                out.push(digest);
            }
        }
        out.sort_unstable_by_key(|h| h.0);
        Ok(out)
    }
}

/// An upload in progress. Dropping it without [`LocalWriter::finish`]
/// removes the temporary file.
pub struct LocalWriter<'a> {
    store: &'a LocalBlobs,
    file: File,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
    declared: Hash,
    declared_size: u64,
    /// Seals the bytes before they are written (sealed store).
    sealing: Option<SealingWriter>,
    /// Renamed over a stored file of the same digest.
    replace: bool,
}

impl std::fmt::Debug for LocalWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWriter").field("path", &self.path).field("written", &self.written).finish()
    }
}

impl LocalWriter<'_> {
    /// Appends a chunk. Fails as soon as the upload exceeds its declared
    /// size, so an overlong body is cut off rather than stored.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let total = self.written.saturating_add(chunk.len() as u64);
        if total > self.declared_size {
            return Err(BlobError::SizeMismatch { declared: self.declared_size, actual: total });
        }
        match &mut self.sealing {
            Some(s) => s.write(chunk, &mut self.file, &self.path)?,
            None => self.file.write_all(chunk).map_err(io(&self.path))?,
        }
        self.hasher.update(chunk);
        self.written = total;
        Ok(())
    }

    /// Checks size and digest, makes the file durable and read-only, and
    /// moves it into place unless identical bytes are already stored.
    pub fn finish(mut self) -> Result<Stored, BlobError> {
        check_upload(self.written, self.declared_size, std::mem::take(&mut self.hasher), self.declared)?;
        let size = self.written;
        let target = self.store.path_of(&self.declared);
        if target.exists() && !self.replace {
            return Ok(Stored { size, created: false });
        }
        let blob_id = match self.sealing.take() {
            Some(s) => {
                // The key record first: a copy is never visible without its key.
                let (blob_id, record) = s.finish(&mut self.file, &self.path)?;
                self.store.put_record(&self.declared, &blob_id, &record)?;
                Some(blob_id)
            }
            None => None,
        };
        self.file.sync_all().map_err(io(&self.path))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o444)).map_err(io(&self.path))?;
        let dir = target.parent().expect("blob paths have a shard directory");
        fs::create_dir_all(dir).map_err(io(dir))?;
        if self.replace {
            // Atomic: a reader (or a crash) sees the old file or the new one.
            fs::rename(&self.path, &target).map_err(io(&target))?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
            return Ok(Stored { size, created: true });
        }
        // hard_link fails if the target exists, so a concurrent upload of the
        // same bytes can never replace a blob that is already in place.
        match fs::hard_link(&self.path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(id) = blob_id {
                    // Another copy won the race; this one's key is not needed.
                    self.store.remove_record(&self.declared, &id)?;
                }
                return Ok(Stored { size, created: false });
            }
            Err(e) => return Err(io(&target)(e)),
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(Stored { size, created: true })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl Drop for LocalWriter<'_> {
    fn drop(&mut self) {
        // The blob, if finished, is a separate hard link; the temporary name
        // always goes.
        let _ = fs::remove_file(&self.path);
    }
}

/// A blob whose bytes were just checked against its digest.
#[derive(Debug)]
pub struct VerifiedBlob {
    /// Open handle, positioned at the start.
    pub file: File,
    /// Size in bytes.
    pub size: u64,
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
