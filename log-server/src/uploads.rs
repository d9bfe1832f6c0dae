//! Uploads in flight and who uploaded what.
//!
//! - One upload per `name@version` at a time: a second `PUT /blobs` for a
//!   version whose upload is still running is refused (409
//!   `upload_in_progress`) before its body is read, so racing uploads of
//!   one version cannot both fill the disk.
//! - Each upload of a digest is recorded with its actor and time under
//!   `blobs/uploaders/<hex>` (one `<unix ms> <actor>` line per actor). A
//!   stored artifact that no publish names (an orphan: its publish was
//!   refused, or its upload outlasted the statement window) may then be
//!   claimed by a `publish` on `POST /statements` only by an actor who
//!   uploaded those bytes within `--upload-grace`; anyone else gets 403
//!   `upload_required`. Knowing a digest and size is not possessing the
//!   bytes.
//! - An upload whose publish is refused removes the bytes it stored, unless
//!   another upload of the same digest is running or a publish names them.
//!
//! Records are plain files written by rename; losing one in a crash only
//! means its uploader must upload again. `custody-log gc` removes orphans
//! older than the grace period and the records of removed or published
//! blobs.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use custody_standards::Hash;

use crate::blobs::{BlobStore, BLOBS_DIR};

/// Directory of the uploader records inside the blob store.
pub const UPLOADERS_DIR: &str = "uploaders";
/// Default `--upload-grace`: one day.
pub const DEFAULT_UPLOAD_GRACE_SECS: u64 = 86_400;

/// Why an upload or a claim was refused, or its record failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Another upload of this version is running (409).
    #[error("an upload of {name}@{version} is already in progress")]
    InProgress {
        /// Model name.
        name: String,
        /// Version.
        version: String,
    },
    /// A publish of stored bytes no publish names, by an actor who did not
    /// upload them within the grace period (403).
    #[error(
        "artifact sha256:{digest} is stored but published by no one, and {actor} did not upload it \
         within the last {grace_secs} s: upload it with PUT /blobs/sha256:{digest}"
    )]
    UploadRequired {
        /// The digest (hex).
        digest: String,
        /// The claiming actor.
        actor: String,
        /// The grace period.
        grace_secs: u64,
    },
    /// An uploader record could not be read or written.
    #[error("uploader record {path}: {source}")]
    Record {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

#[derive(Debug, Default)]
struct InFlight {
    versions: HashSet<(String, String)>,
    digests: HashMap<Hash, usize>,
}

/// The upload tracker of a running server.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    tmp: PathBuf,
    grace_ms: u64,
    in_flight: Mutex<InFlight>,
    tmp_counter: AtomicU64,
}

/// A running upload of `name@version`; dropping it ends it.
#[derive(Debug)]
pub struct UploadTicket {
    uploads: Arc<Uploads>,
    version: (String, String),
    digest: Hash,
}

/// One uploader of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploader {
    /// When (unix ms).
    pub at_ms: u64,
    /// Who.
    pub actor: String,
}

impl Uploads {
    /// The tracker for the blob store under `data_dir`, with claims honoured
    /// for `grace_secs` after an upload.
    pub fn new(data_dir: &Path, grace_secs: u64) -> Result<Arc<Self>, UploadError> {
        let root = data_dir.join(BLOBS_DIR);
        let dir = root.join(UPLOADERS_DIR);
        fs::create_dir_all(&dir).map_err(|source| UploadError::Record { path: dir.clone(), source })?;
        Ok(Arc::new(Uploads {
            dir,
            tmp: root.join("tmp"),
            grace_ms: grace_secs.saturating_mul(1000),
            in_flight: Mutex::new(InFlight::default()),
            tmp_counter: AtomicU64::new(0),
        }))
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The grace period in seconds.
    pub fn grace_secs(&self) -> u64 {
        self.grace_ms / 1000
    }

    /// Starts the upload of `digest` as `name@version`, or refuses if one
    /// of that version is running.
    pub fn begin(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        digest: Hash,
    ) -> Result<UploadTicket, UploadError> {
        let key = (name.to_owned(), version.to_owned());
        let mut f = self.in_flight();
        if !f.versions.insert(key.clone()) {
            return Err(UploadError::InProgress { name: key.0, version: key.1 });
        }
        *f.digests.entry(digest).or_insert(0) += 1;
        Ok(UploadTicket { uploads: Arc::clone(self), version: key, digest })
    }

    /// Records that `actor` uploaded `digest` at `now_ms`.
    pub fn record(&self, digest: &Hash, actor: &str, now_ms: u64) -> Result<(), UploadError> {
        let _serial = self.in_flight();
        let path = record_path(&self.dir, digest);
        let mut uploaders = read_records(&path)?;
        uploaders.retain(|u| u.actor != actor);
        uploaders.push(Uploader { at_ms: now_ms, actor: actor.to_owned() });
        let text: String = uploaders.iter().map(|u| format!("{} {}\n", u.at_ms, u.actor)).collect();
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("uploader-{}-{n}", std::process::id()));
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| UploadError::Record { path, source }
        };
        let mut f = fs::File::create(&tmp).map_err(err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(err(&path))
    }

    /// Whether `actor` uploaded `digest` within the grace period before
    /// `now_ms`.
    pub fn uploaded_by(&self, digest: &Hash, actor: &str, now_ms: u64) -> Result<bool, UploadError> {
        let _serial = self.in_flight();
        let since = now_ms.saturating_sub(self.grace_ms);
        Ok(read_records(&record_path(&self.dir, digest))?
            .iter()
            .any(|u| u.actor == actor && u.at_ms >= since))
    }

    /// After `ticket`'s publish was refused: removes the blob it stored
    /// (`created`) unless another upload of the digest is running or
    /// `published` says a publish names it. Returns whether it was removed.
    pub fn discard(&self, ticket: UploadTicket, created: bool, blobs: &BlobStore, published: bool) -> bool {
        let f = self.in_flight();
        let others = f.digests.get(&ticket.digest).copied().unwrap_or(0) > 1;
        if !created || others || published {
            return false;
        }
        let removed = match blobs.remove(&ticket.digest) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove the bytes of a refused upload");
                false
            }
        };
        let _ = fs::remove_file(record_path(&self.dir, &ticket.digest));
        drop(f);
        removed
    }
}

impl Drop for UploadTicket {
    fn drop(&mut self) {
        let mut f = self.uploads.in_flight();
        f.versions.remove(&self.version);
        if let Some(n) = f.digests.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                f.digests.remove(&self.digest);
            }
        }
    }
}

/// Where the uploaders of `digest` are recorded.
pub fn record_path(dir: &Path, digest: &Hash) -> PathBuf {
    dir.join(digest.to_hex())
}

/// The uploaders recorded at `path` (none if there is no record). Lines
/// that do not parse are skipped: a record only ever grants a claim.
pub fn read_records(path: &Path) -> Result<Vec<Uploader>, UploadError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(UploadError::Record { path: path.to_owned(), source }),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let (at, actor) = l.split_once(' ')?;
            Some(Uploader { at_ms: at.parse().ok()?, actor: actor.to_owned() })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_upload_per_version_and_records_expire_with_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let _store = BlobStore::open(dir.path()).unwrap();
        let u = Uploads::new(dir.path(), 10).unwrap();
        let d = Hash([7; 32]);
        let t = u.begin("acme/m", "1", d).unwrap();
        assert!(matches!(u.begin("acme/m", "1", Hash([8; 32])), Err(UploadError::InProgress { .. })));
        let t2 = u.begin("acme/m", "2", d).unwrap();
        drop(t);
        u.begin("acme/m", "1", d).unwrap();
        drop(t2);

        u.record(&d, "alice", 1_000_000).unwrap();
        u.record(&d, "bob", 1_000_500).unwrap();
        u.record(&d, "alice", 1_001_000).unwrap();
        assert!(u.uploaded_by(&d, "alice", 1_011_000).unwrap());
        assert!(!u.uploaded_by(&d, "alice", 1_011_001).unwrap(), "past the grace period");
        assert!(u.uploaded_by(&d, "bob", 1_010_500).unwrap());
        assert!(!u.uploaded_by(&d, "carol", 1_001_000).unwrap());
        assert!(!u.uploaded_by(&Hash([9; 32]), "alice", 1_001_000).unwrap());
    }

    #[test]
    fn a_refused_upload_removes_only_bytes_nobody_else_needs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let u = Uploads::new(dir.path(), 10).unwrap();
        let bytes = b"weights";
        let d = custody_standards::hash::sha256(bytes);
        let mut w = store.begin(d, bytes.len() as u64).unwrap();
        w.write(bytes).unwrap();
        w.finish().unwrap();
        let t1 = u.begin("acme/m", "1", d).unwrap();
        let t2 = u.begin("acme/m", "2", d).unwrap();
        assert!(!u.discard(t1, true, &store, false), "another upload of the digest is running");
        assert!(store.size_of(&d).unwrap().is_some());
        drop(t2);
        let t = u.begin("acme/m", "3", d).unwrap();
        assert!(!u.discard(t, true, &store, true), "a publish names it");
        let t = u.begin("acme/m", "3", d).unwrap();
        assert!(!u.discard(t, false, &store, false), "it was stored before this upload");
        u.record(&d, "alice", 1).unwrap();
        let t = u.begin("acme/m", "3", d).unwrap();
        assert!(u.discard(t, true, &store, false));
        assert!(store.size_of(&d).unwrap().is_none());
        assert!(!u.uploaded_by(&d, "alice", 2).unwrap(), "its record went with it");
        assert!(u.begin("acme/m", "3", d).is_ok(), "the discarded upload is no longer in flight");
    }
}
