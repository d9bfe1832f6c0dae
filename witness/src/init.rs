//! The data directory: creating it (`init`), adding keys (`add-key`), and
//! loading the keys for `serve`.
//!
//! Layout: `witness.key` (one signer key per line, `PRIVATE+KEY+...`, mode
//! 0600 from creation so it is never readable by others even briefly),
//! `witness.vkey` (the matching verifier keys, one per line) and `db/`
//! (RocksDB). Every key in `witness.key` cosigns, which is how keys rotate:
//! `add-key` appends a new key, operators publish its vkey, and later delete
//! the old line from both files and restart.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use custody_standards::cosignature::{CosignatureError, CosignatureSigner};
use custody_standards::keys::KeyError;
use custody_standards::{SignerKey, VerifierKey};

use crate::store::{RocksStore, StoreError};

/// Signer keys file.
pub const KEY_FILE: &str = "witness.key";
/// Verifier keys file.
pub const VKEY_FILE: &str = "witness.vkey";
/// RocksDB directory.
pub const DB_DIR: &str = "db";
/// Longest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a data directory could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory already holds a witness.
    #[error("{0} already exists; refusing to overwrite an existing witness")]
    Exists(PathBuf),
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad name or unreadable key.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// A key that cannot cosign.
    #[error("key: {0}")]
    Cosign(#[from] CosignatureError),
    /// No key in the key file.
    #[error("{0} holds no keys")]
    NoKeys(PathBuf),
    /// The system random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io { path: path.to_owned(), source }
}

/// Path of the RocksDB directory of `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_DIR)
}

fn fresh_signer(name: &str) -> Result<CosignatureSigner, InitError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| InitError::Random(e.to_string()))?;
    let signer = CosignatureSigner::from_seed(name, &seed);
    seed.fill(0);
    Ok(signer?)
}

fn append_line(path: &Path, line: &str, create_new: bool) -> Result<(), InitError> {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    if create_new {
        o.write(true).create_new(true);
    } else {
        o.append(true);
    }
    let mut f = o.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => InitError::Exists(path.to_owned()),
        _ => InitError::Io { path: path.to_owned(), source: e },
    })?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Creates `data_dir` with a fresh cosignature/v1 key named `name` and an
/// empty database. Returns the verifier key.
pub fn init_data_dir(data_dir: &Path, name: &str) -> Result<VerifierKey, InitError> {
    let key_path = data_dir.join(KEY_FILE);
    let db = db_path(data_dir);
    for p in [&key_path, &db] {
        if p.exists() {
            return Err(InitError::Exists(p.clone()));
        }
    }
    let signer = fresh_signer(name)?;
    fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    append_line(&key_path, &signer.key().to_private_string(), true)?;
    let vkey = signer.verifier();
    let vkey_path = data_dir.join(VKEY_FILE);
    fs::write(&vkey_path, format!("{vkey}\n")).map_err(io(&vkey_path))?;
    RocksStore::create(&db)?;
    tracing::info!(dir = %data_dir.display(), name, "initialised witness data directory");
    Ok(vkey)
}

/// Adds a new key (named `name`, default: the first key's name) that
/// cosigns alongside the existing ones. Returns its verifier key.
pub fn add_key(data_dir: &Path, name: Option<&str>) -> Result<VerifierKey, InitError> {
    let existing = load_signers(data_dir)?;
    let name = name.unwrap_or_else(|| existing[0].key().name());
    let signer = fresh_signer(name)?;
    append_line(&data_dir.join(KEY_FILE), &signer.key().to_private_string(), false)?;
    let vkey = signer.verifier();
    let mut f =
        OpenOptions::new().append(true).create(true).open(data_dir.join(VKEY_FILE)).map_err(io(data_dir))?;
    f.write_all(format!("{vkey}\n").as_bytes()).map_err(io(data_dir))?;
    Ok(vkey)
}

/// Reads every cosigning key of `data_dir` (at least one). Blank lines and
/// `#` comments are allowed, so an operator can annotate rotations.
pub fn load_signers(data_dir: &Path) -> Result<Vec<CosignatureSigner>, InitError> {
    let path = data_dir.join(KEY_FILE);
    let f = fs::File::open(&path).map_err(io(&path))?;
    let mode = f.metadata().map_err(io(&path))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "key file is readable by others");
    }
    let mut text = String::new();
    f.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(io(&path))?;
    let signers = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Ok(CosignatureSigner::new(SignerKey::parse(l)?)?))
        .collect::<Result<Vec<_>, InitError>>()?;
    if signers.is_empty() {
        return Err(InitError::NoKeys(path));
    }
    Ok(signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_add_key_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("w");
        let v1 = init_data_dir(&data, "witness.example/w1").unwrap();
        assert_eq!(fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(init_data_dir(&data, "witness.example/w1"), Err(InitError::Exists(_))));
        let v2 = add_key(&data, None).unwrap();
        assert_eq!(v2.name(), "witness.example/w1");
        assert_ne!(v1, v2);
        let signers = load_signers(&data).unwrap();
        assert_eq!(signers.iter().map(|s| s.verifier()).collect::<Vec<_>>(), vec![v1.clone(), v2.clone()]);
        let vkeys = fs::read_to_string(data.join(VKEY_FILE)).unwrap();
        assert_eq!(vkeys, format!("{v1}\n{v2}\n"));
        assert_eq!(fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(init_data_dir(&dir.path().join("x"), "bad name"), Err(InitError::Cosign(_))));
        fs::write(data.join(KEY_FILE), "# nothing\n").unwrap();
        assert!(matches!(load_signers(&data), Err(InitError::NoKeys(_))));
    }
}
