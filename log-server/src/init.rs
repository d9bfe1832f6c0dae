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

use custody_standards::keys::{KeyError, SIG_TYPE_ED25519};
use custody_standards::{SignerKey, VerifierKey};

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
/// The first admin's signer key, written by `init` (mode 0600). It belongs
/// to a person, not the server: move it off the server after `init`.
pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Meta key saying whether the log is a registry (`registry`, the default)
/// or a generic log of raw entries (`generic`).
pub const META_MODE: &[u8] = b"mode";

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
    /// The genesis statement could not be built or logged.
    #[error("genesis: {0}")]
    Genesis(String),
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

/// Writes a signer key line to a new file with mode 0600 (never readable by
/// others, even briefly, since it is created with that mode) and syncs it.
/// `create_new`: an existing key, even one created concurrently, is never
/// overwritten.
pub(crate) fn write_secret(path: &Path, line: &str) -> Result<(), InitError> {
    let mut f =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::Exists(path.to_owned()),
                _ => InitError::Io { path: path.to_owned(), source: e },
            }
        })?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
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
    write_secret(&key_path, &key.to_private_string())?;
    fs::write(&vkey_path, format!("{vkey}\n")).map_err(io(&vkey_path))?;
    let store = RocksStore::open(&db)?;
    store.put_meta(META_ORIGIN, origin.as_bytes())?;
    store.put_meta(META_MODE, b"generic")?;
    tracing::info!(dir = %data_dir.display(), origin, "initialised log data directory");
    Ok(vkey)
}

/// Turns a freshly initialised (empty) data directory into a registry: a
/// new Ed25519 key for the first admin `admin` is written to `key_out`
/// (mode 0600, never overwritten) and the genesis statement, `admin`
/// granting itself `admin` on `*`, is logged as entry 0. Authorization
/// history thus starts inside the log. Returns the admin's public key line.
pub fn init_registry(data_dir: &Path, admin: &str, key_out: &Path) -> Result<String, InitError> {
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::leaf::Leaf;
    use custody_registry::names::{ActorName, Pattern};
    use custody_registry::registry::Role;
    use custody_registry::statement::events::GrantRole;
    use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
    use custody_registry::timestamp::Timestamp;

    let genesis = |e: String| InitError::Genesis(e);
    let actor = ActorName::new(admin).map_err(|e| genesis(format!("admin name {admin:?}: {e}")))?;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| InitError::Random(e.to_string()))?;
    let signer = ActorSigner::from_seed(&actor, &seed);
    seed.fill(0);
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).map_err(|e| InitError::Random(e.to_string()))?;
    let now = crate::registry::now_ms();
    let time = Timestamp::from_unix_secs(now / 1000).ok_or_else(|| genesis("clock out of range".into()))?;
    let pattern = Pattern::new("*").map_err(|e| genesis(e.to_string()))?;
    let reason = Text::new("genesis: first admin of this registry").map_err(|e| genesis(e.to_string()))?;
    let event = Event::Grant(GrantRole { actor, key: signer.public().clone(), role: Role::Admin, pattern });
    let statement = Statement::new(&signer, time, Nonce(nonce), Context::reason(reason), event);
    let envelope = statement.sign(&signer).map_err(|e| genesis(e.to_string()))?;
    let leaf = Leaf::new(now, &envelope).map_err(|e| genesis(e.to_string()))?.encode();

    let store = RocksStore::open(&db_path(data_dir))?;
    if store.tree_size()? != 0 {
        return Err(InitError::Genesis("the log is not empty".into()));
    }
    write_secret(key_out, &signer.to_private_string())?;
    let mut appender = custody_standards::Appender::default();
    let mut batch = crate::store::Batch { start: 0, ..Default::default() };
    appender.append(custody_standards::leaf_hash(&leaf), &mut batch.nodes);
    batch.leaf_hashes.push(custody_standards::leaf_hash(&leaf));
    batch.index_rows.push(crate::registry::actor_row(signer.actor(), 0));
    // The registry's persisted state after the genesis, in the same write,
    // so the first start has nothing to replay (with the default window; a
    // server started with another one rebuilds it by replay).
    let mut registry = custody_registry::registry::Registry::new(Default::default());
    let applied = match registry.process(&statement, 0, now).map_err(|e| genesis(e.to_string()))? {
        custody_registry::registry::Outcome::Applied(a) => a,
        other => return Err(InitError::Genesis(format!("the genesis did not apply: {other:?}"))),
    };
    // Like every batch, the genesis ends with the commitment to the state
    // after it (leaf 1), so the first checkpoint already proves what is
    // current.
    let mut committer = custody_registry::commitment::StateCommitter::new();
    committer.record(&registry, &statement, &applied);
    let root = committer.seal().root;
    let commitment = custody_registry::leaf::CommitmentLeaf { index: 1, root }.encode();
    appender.append(custody_standards::leaf_hash(&commitment), &mut batch.nodes);
    batch.leaf_hashes.push(custody_standards::leaf_hash(&commitment));
    batch.state_rows = crate::registry_state::full_rows(&store, &registry, &committer, 2)?.0;
    batch.entries.push(leaf);
    batch.entries.push(commitment);
    store.append_batch(&batch)?;
    store.put_meta(META_MODE, b"registry")?;
    tracing::info!(admin, key_file = %key_out.display(), "logged the genesis grant as entry 0, its state commitment as 1");
    Ok(signer.public().to_string())
}

/// Whether the data directory is a registry (rather than a generic log).
pub fn is_registry(store: &dyn Store) -> Result<bool, InitError> {
    Ok(store.get_meta(META_MODE)?.as_deref() == Some(b"registry"))
}

/// Reads the signer key of `data_dir`.
pub fn load_key(data_dir: &Path) -> Result<SignerKey, InitError> {
    read_key_file(&data_dir.join(KEY_FILE))
}

/// Reads a signer key file (a data directory's, or its backup's).
pub fn read_key_file(path: &Path) -> Result<SignerKey, InitError> {
    use std::io::Read as _;
    let f = fs::File::open(path).map_err(io(path))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(io(path))?;
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
