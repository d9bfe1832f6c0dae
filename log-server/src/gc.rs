//! Orphan artifacts: stored bytes that no publish names. They come from
//! uploads that outlasted the statement window (stored, answered 202, the
//! fresh publish not yet sent), from uploads whose connection dropped
//! before the publish was sequenced, and from data directories written
//! before refused uploads cleaned up after themselves.
//!
//! `custody-log fsck` lists them; `custody-log gc` removes those whose last
//! upload is older than `--upload-grace` (after which no claim on them is
//! honoured anyway, see [`crate::uploads`]), with their uploader records
//! and the records of blobs that are published or gone. `gc` opens the
//! database for writing, so it refuses to run beside a live server.

use std::fmt;
use std::path::{Path, PathBuf};

use custody_registry::names::Digest;
use custody_registry::registry::{Config, Registry};
use custody_standards::Hash;

use crate::blobs::{BlobError, BlobStore, BLOBS_DIR};
use crate::init::db_path;
use crate::registry::RegistryError;
use crate::store::{RocksStore, StoreError};
use crate::uploads::{read_records, record_path, UploadError, UPLOADERS_DIR};

/// A stored artifact no publish names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its digest.
    pub digest: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// Milliseconds since it was last stored or uploaded.
    pub age_ms: u64,
}

impl fmt::Display for Orphan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sha256:{} ({} bytes, last uploaded {} s ago)",
            self.digest.to_hex(),
            self.size,
            self.age_ms / 1000
        )
    }
}

/// Why `gc` could not run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The database could not be opened (a running server holds it) or read.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The registry could not be rebuilt from the log.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The blob store could not be listed or changed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// An uploader record could not be read or removed.
    #[error(transparent)]
    Record(#[from] UploadError),
    /// A published directory's manifest could not be read: its files
    /// cannot be told apart from orphans.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    /// This is not a registry's data directory.
    #[error("{0} holds a generic log: it has no artifacts")]
    NotRegistry(PathBuf),
}

/// What `gc` did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Orphans removed.
    pub removed: Vec<Orphan>,
    /// Orphans kept because they are younger than the grace period.
    pub kept: Vec<Orphan>,
    /// Uploader records removed.
    pub records_removed: usize,
    /// Key records of sealed copies that are not stored (left by an upload
    /// that lost a race or a crash mid-upload), past the grace period.
    pub keys_removed: usize,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.removed {
            writeln!(f, "removed orphan blob {o}")?;
        }
        for o in &self.kept {
            writeln!(f, "kept orphan blob {o}: within the upload grace period")?;
        }
        if self.keys_removed > 0 {
            writeln!(f, "removed {} key records of copies that are not stored", self.keys_removed)?;
        }
        write!(
            f,
            "gc: {} orphan blobs removed, {} kept, {} uploader records removed",
            self.removed.len(),
            self.kept.len(),
            self.records_removed
        )
    }
}

/// Every blob stored in `blobs` that no publish in `registry` names
/// (directly, or as a file of a published directory), with its age at
/// `now_ms`: since the later of its modification time and its newest
/// uploader record (under `data_dir`).
pub fn orphans(
    registry: &Registry,
    blobs: &BlobStore,
    data_dir: &Path,
    now_ms: u64,
) -> Result<Vec<Orphan>, GcError> {
    let records = data_dir.join(BLOBS_DIR).join(UPLOADERS_DIR);
    let files = crate::directory::published_files(registry, blobs)?;
    let mut out = Vec::new();
    for stored in blobs.list_stored()? {
        let digest = stored.digest;
        if !registry.publishes_of(&Digest(digest)).is_empty() || files.contains(&digest) {
            continue;
        }
        let uploaded = read_records(&record_path(&records, &digest))?.iter().map(|u| u.at_ms).max();
        let last = uploaded.unwrap_or(0).max(stored.modified_ms);
        out.push(Orphan { digest, size: stored.size, age_ms: now_ms.saturating_sub(last) });
    }
    Ok(out)
}

/// Removes the orphans of a stopped server's `data_dir` older than
/// `grace_secs`, and uploader records nothing needs any more. The
/// artifacts are in `blobs` (the data directory's, or the bucket of the
/// server's `--store`).
pub fn gc(
    data_dir: &Path,
    blobs: &BlobStore,
    config: Config,
    grace_secs: u64,
    now_ms: u64,
) -> Result<GcReport, GcError> {
    // Read-write: RocksDB's lock makes this fail while a server runs.
    let store = RocksStore::open(&db_path(data_dir))?;
    if !crate::init::is_registry(&store).map_err(|e| StoreError::Corrupt(e.to_string()))? {
        return Err(GcError::NotRegistry(data_dir.to_owned()));
    }
    // The persisted state, plus the replay of what it does not cover;
    // nothing is written (the next start persists a replayed tail).
    let registry = crate::registry_state::load(&store, config)?.registry;
    let mut report = GcReport::default();
    let grace_ms = grace_secs.saturating_mul(1000);
    for orphan in orphans(&registry, blobs, data_dir, now_ms)? {
        if orphan.age_ms >= grace_ms {
            blobs.remove(&orphan.digest)?;
            report.removed.push(orphan);
        } else {
            report.kept.push(orphan);
        }
    }
    if blobs.seal().is_some() {
        for name in blobs.list_records()? {
            let old = now_ms.saturating_sub(name.modified_ms) >= grace_ms;
            if old && blobs.stored_blob_id(&name.digest)? != Some(name.blob_id) {
                blobs.remove_record(&name.digest, &name.blob_id)?;
                report.keys_removed += 1;
            }
        }
    }
    let records = data_dir.join(BLOBS_DIR).join(UPLOADERS_DIR);
    let entries = match std::fs::read_dir(&records) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(source) => return Err(UploadError::Record { path: records, source }.into()),
    };
    for entry in entries {
        let entry = entry.map_err(|source| UploadError::Record { path: records.clone(), source })?;
        let Ok(digest) = Hash::from_hex(&entry.file_name().to_string_lossy()) else { continue };
        let orphan_kept = report.kept.iter().any(|o| o.digest == digest);
        if !orphan_kept {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|source| UploadError::Record { path, source })?;
            report.records_removed += 1;
        }
    }
    Ok(report)
}
