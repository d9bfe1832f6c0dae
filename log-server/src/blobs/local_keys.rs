//! Key records and the check record of a sealed local store
//! ([`crate::seal::record`]).
//!
//! Layout under `blobs/`: `keys/<first two hex>/<hex>/<blob id>` for the
//! wrapped data key of each stored copy, `seal.json` for the check record.
//! A record is written to a hidden temporary name in its own directory,
//! fsynced, renamed into place and the directory fsynced, so a reader (or a
//! crash) only ever sees a whole record: a rotation killed at any point
//! leaves every record wrapped by the old KEK or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use custody_standards::Hash;

use super::local::LocalBlobs;
use super::{BlobError, KeyName};
use crate::seal::format::BLOB_ID_LEN;
use crate::seal::record::MAX_RECORD;

/// Directory of the key records under `blobs/`.
pub const KEYS_DIR: &str = "keys";
/// The check record under `blobs/`.
pub const CHECK_FILE: &str = "seal.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io { path: path.to_owned(), source }
}

impl LocalBlobs {
    fn keys_of(&self, digest: &Hash) -> PathBuf {
        let hex = digest.to_hex();
        self.root().join(KEYS_DIR).join(&hex[..2]).join(hex)
    }

    /// Where the key record of copy `blob_id` of `digest` lives.
    pub fn record_path(&self, digest: &Hash, blob_id: &[u8; BLOB_ID_LEN]) -> PathBuf {
        self.keys_of(digest).join(hex::encode(blob_id))
    }

    /// Writes `bytes` at `target` atomically and durably.
    fn write_atomic(&self, target: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        let dir = target.parent().expect("record paths have a directory");
        fs::create_dir_all(dir).map_err(io(dir))?;
        let n = self.tmp_counter().fetch_add(1, Ordering::Relaxed);
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("record");
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, target)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(target)(e));
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    }

    fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, BlobError> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let mut out = Vec::new();
        f.take(MAX_RECORD as u64 + 1).read_to_end(&mut out).map_err(io(path))?;
        Ok(Some(out))
    }

    /// Stores the key record of copy `blob_id` of `digest` (replacing it).
    pub fn put_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        self.write_atomic(&self.record_path(digest, blob_id), bytes)
    }

    /// The key record of copy `blob_id` of `digest`, if stored.
    pub fn get_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Option<Vec<u8>>, BlobError> {
        Self::read_capped(&self.record_path(digest, blob_id))
    }

    /// Removes a key record (absent is not an error) and its directory
    /// once empty.
    pub fn remove_record(&self, digest: &Hash, blob_id: &[u8; BLOB_ID_LEN]) -> Result<(), BlobError> {
        let path = self.record_path(digest, blob_id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        // Fails while other records remain: that is fine.
        let _ = fs::remove_dir(self.keys_of(digest));
        Ok(())
    }

    /// Every key record, sorted by digest and blob id (rotation, `gc`).
    pub fn list_records(&self) -> Result<Vec<KeyName>, BlobError> {
        let base = self.root().join(KEYS_DIR);
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(&base) else { return Ok(out) };
        for shard in shards {
            let shard = shard.map_err(io(&base))?.path();
            for dir in fs::read_dir(&shard).map_err(io(&shard))? {
                let dir = dir.map_err(io(&shard))?.path();
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Ok(digest) = Hash::from_hex(&name) else { continue };
                for f in fs::read_dir(&dir).map_err(io(&dir))? {
                    let f = f.map_err(io(&dir))?;
                    let mut blob_id = [0u8; BLOB_ID_LEN];
                    let fname = f.file_name().to_string_lossy().into_owned();
                    if hex::decode_to_slice(&fname, &mut blob_id).is_err() {
                        continue; // a temporary file of an interrupted write
                    }
                    let modified_ms = f.metadata().map(|m| super::local::modified_ms(&m)).unwrap_or(0);
                    out.push(KeyName { digest, blob_id, modified_ms });
                }
            }
        }
        out.sort_unstable_by_key(|n| (n.digest.0, n.blob_id));
        Ok(out)
    }

    /// The store's check record, if any.
    pub fn read_check(&self) -> Result<Option<Vec<u8>>, BlobError> {
        Self::read_capped(&self.root().join(CHECK_FILE))
    }

    /// Writes the store's check record (replacing it).
    pub fn write_check(&self, bytes: &[u8]) -> Result<(), BlobError> {
        self.write_atomic(&self.root().join(CHECK_FILE), bytes)
    }
}
