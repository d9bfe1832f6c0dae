//! The data directory: creating it (`custody-log init`) and loading its key.
//!
//! Layout: `log.key` (signer key, mode 0600, never world-readable even
//! briefly, because it is created with that mode), `log.vkey` (verifier key
//! line) and `db/` (RocksDB). `init` refuses a directory that already holds
//! a key or a database: overwriting either would fork or orphan a log.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use custody_core::keys::{KeyError, SIG_TYPE_ED25519};
use custody_core::{SignerKey, VerifierKey};

use crate::store::{RocksStore, Store, StoreError};

/// Signer key file name inside the data directory.
pub const KEY_FILE: &str = "log.key";
/// Verifier key file name inside the data directory.
pub const VKEY_FILE: &str = "log.vkey";
/// RocksDB directory inside the data directory.
pub const DB_DIR: &str = "db";
/// Meta key holding the origin, checked on every start.
pub const META_ORIGIN: &[u8] = b"origin";
/// Longest key file read (a signer key string is far shorter).
const MAX_KEY_FILE: u64 = 4096;

/// Why a data directory could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory already holds a log.
    #[error("{0} already exists; refusing to overwrite an existing log")]
    Exists(PathBuf),
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad origin or unreadable key.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// The system random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key and the database disagree about the origin.
    #[error("key name {key:?} does not match the stored origin {stored:?}")]
    OriginMismatch {
        /// Name in log.key.
        key: String,
        /// Origin in the database.
        stored: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io { path: path.to_owned(), source }
}

/// Path of the RocksDB directory of `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_DIR)
}

/// Creates `data_dir` with a fresh Ed25519 log key named `origin` and an
/// empty database recording the origin. Returns the verifier key.
pub fn init_data_dir(data_dir: &Path, origin: &str) -> Result<VerifierKey, InitError> {
    let key_path = data_dir.join(KEY_FILE);
    let vkey_path = data_dir.join(VKEY_FILE);
    let db = db_path(data_dir);
    for p in [&key_path, &db] {
        if p.exists() {
            return Err(InitError::Exists(p.clone()));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| InitError::Random(e.to_string()))?;
    let key = SignerKey::from_seed(origin, SIG_TYPE_ED25519, &seed)?;
    seed.fill(0);
    let vkey = key.verifier();
    fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    // create_new: never overwrite a key, even one created concurrently.
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key_path).map_err(|e| {
        match e.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Exists(key_path.clone()),
            _ => InitError::Io { path: key_path.clone(), source: e },
        }
    })?;
    f.write_all(format!("{}\n", key.to_private_string()).as_bytes()).map_err(io(&key_path))?;
    f.sync_all().map_err(io(&key_path))?;
    fs::write(&vkey_path, format!("{vkey}\n")).map_err(io(&vkey_path))?;
    let store = RocksStore::open(&db)?;
    store.put_meta(META_ORIGIN, origin.as_bytes())?;
    tracing::info!(dir = %data_dir.display(), origin, "initialised log data directory");
    Ok(vkey)
}

/// Reads the signer key of `data_dir`.
pub fn load_key(data_dir: &Path) -> Result<SignerKey, InitError> {
    use std::io::Read as _;
    let path = data_dir.join(KEY_FILE);
    let f = fs::File::open(&path).map_err(io(&path))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(io(&path))?;
    Ok(SignerKey::parse(text.trim_end())?)
}

/// Checks that the database belongs to the log of `key` (guards against
/// pointing a key at another log's data).
pub fn check_origin(store: &dyn Store, key: &SignerKey) -> Result<(), InitError> {
    match store.get_meta(META_ORIGIN)? {
        Some(stored) if stored == key.name().as_bytes() => Ok(()),
        Some(stored) => Err(InitError::OriginMismatch {
            key: key.name().to_owned(),
            stored: String::from_utf8_lossy(&stored).into_owned(),
        }),
        None => Err(InitError::Store(StoreError::Corrupt(
            "database has no origin; was it created by init?".into(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn init_creates_key_and_refuses_to_run_twice() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("log");
        let vkey = init_data_dir(&data, "example.com/log").unwrap();
        let mode = fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = load_key(&data).unwrap();
        assert_eq!(key.verifier(), vkey);
        let vtext = fs::read_to_string(data.join(VKEY_FILE)).unwrap();
        assert_eq!(VerifierKey::parse(vtext.trim_end()).unwrap(), vkey);
        let store = RocksStore::open(&db_path(&data)).unwrap();
        check_origin(&store, &key).unwrap();
        drop(store);
        assert!(matches!(init_data_dir(&data, "example.com/log"), Err(InitError::Exists(_))));
        assert!(matches!(init_data_dir(&dir.path().join("x"), "bad name"), Err(InitError::Key(_))));
    }
}
