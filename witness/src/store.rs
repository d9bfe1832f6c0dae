//! Durable state of the witness: one narrow [`Store`] trait and
//! [`RocksStore`], its RocksDB implementation.
//!
//! Layout (column families):
//! - `latest`: origin -> `size (u64 BE) || root (32 bytes) || note`, the latest
//!   checkpoint this witness cosigned for the origin, as a signed note with
//!   the log's signatures and ours. tlog-witness: "For each log ... the
//!   witness is only required to keep track of the latest checkpoint".
//! - `evidence`: evidence ID -> split-view evidence text
//!   ([`custody_registry::evidence`]).
//! - `frozen`: origin -> evidence ID; while present, the witness refuses to
//!   cosign for that origin.
//! - `meta`: `kind` -> [`KIND`], written by `init` so `serve` never opens a
//!   database that is not a witness's.
//!
//! Every change goes through [`Store::write`]: one synced `WriteBatch`, so a
//! reply is only sent for state that survives a crash, and a group of
//! changes (evidence plus the freeze it causes) lands whole or not at all.

use std::path::Path;
use std::sync::Arc;

use custody_standards::{Hash, HASH_SIZE};
use rocksdb::{
    ColumnFamilyDescriptor, DBCompressionType, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

/// Column family: origin -> latest cosigned checkpoint.
pub const CF_LATEST: &str = "latest";
/// Column family: evidence ID -> evidence text.
pub const CF_EVIDENCE: &str = "evidence";
/// Column family: origin -> ID of the evidence that froze it.
pub const CF_FROZEN: &str = "frozen";
/// Column family: metadata.
pub const CF_META: &str = "meta";
/// All column families.
pub const COLUMN_FAMILIES: [&str; 4] = [CF_LATEST, CF_EVIDENCE, CF_FROZEN, CF_META];
/// Meta key naming what created the database.
pub const META_KIND: &[u8] = b"kind";
/// Value of [`META_KIND`].
pub const KIND: &[u8] = b"custody-witness/v1";

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// RocksDB itself failed (I/O, lock held by another process, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored data violates the layout.
    #[error("store is inconsistent: {0}")]
    Corrupt(String),
    /// The group committer has stopped (shutdown, or an earlier write failed).
    #[error("the store is not accepting writes: {0}")]
    Closed(String),
}

/// The latest cosigned checkpoint of one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note: the log's verified signatures and our cosignatures.
    pub note: Arc<Vec<u8>>,
}

impl Latest {
    /// The stored value.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + HASH_SIZE + self.note.len());
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.root.0);
        v.extend_from_slice(&self.note);
        v
    }

    /// Inverse of [`Latest::encode`].
    pub fn decode(v: &[u8]) -> Result<Self, StoreError> {
        if v.len() <= 8 + HASH_SIZE {
            return Err(StoreError::Corrupt(format!("latest record of {} bytes", v.len())));
        }
        let size = u64::from_be_bytes(v[..8].try_into().expect("length checked above"));
        let root = Hash::from_slice(&v[8..8 + HASH_SIZE]).expect("length checked above");
        Ok(Latest { size, root, note: Arc::new(v[8 + HASH_SIZE..].to_vec()) })
    }
}

/// One change; a slice of them is written atomically.
#[derive(Debug, Clone)]
pub enum Op {
    /// Set the latest cosigned checkpoint of `origin`.
    Latest {
        /// Checkpoint origin.
        origin: String,
        /// New record.
        latest: Latest,
    },
    /// Store evidence and freeze its origin.
    Evidence {
        /// Evidence ID.
        id: String,
        /// Origin it is about.
        origin: String,
        /// Evidence text.
        bytes: Vec<u8>,
    },
    /// Lift the freeze of `origin` (evidence is kept).
    Unfreeze {
        /// Checkpoint origin.
        origin: String,
    },
}

/// What the witness needs from durable storage.
pub trait Store: Send + Sync + 'static {
    /// Applies `ops` in ONE synced `WriteBatch`; nothing is acknowledged
    /// before this returns `Ok`.
    fn write(&self, ops: &[Op]) -> Result<(), StoreError>;
    /// Every origin's latest cosigned checkpoint.
    fn all_latest(&self) -> Result<Vec<(String, Latest)>, StoreError>;
    /// Frozen origins and the evidence that froze each.
    fn frozen(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// All evidence, by ID.
    fn all_evidence(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// One evidence text.
    fn evidence(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// One key-value pair of a column family scan.
type Row = (Box<[u8]>, Box<[u8]>);

/// The RocksDB store.
pub struct RocksStore {
    db: DB,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).finish()
    }
}

fn options(create: bool) -> Options {
    let mut o = Options::default();
    o.create_if_missing(create);
    o.create_missing_column_families(create);
    // Built without compression libraries; say so rather than rely on a
    // fallback. Records are small notes and hashes anyway.
    o.set_compression_type(DBCompressionType::None);
    o
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn text(key: &[u8], what: &str) -> Result<String, StoreError> {
    String::from_utf8(key.to_vec()).map_err(|_| StoreError::Corrupt(format!("{what} key is not UTF-8")))
}

impl RocksStore {
    /// Creates a new database at `path` (refusing an existing one).
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        if path.join("CURRENT").exists() {
            return Err(StoreError::Corrupt(format!("a database already exists at {}", path.display())));
        }
        let s = Self::open_with(path, true)?;
        let cf = s.cf(CF_META)?;
        s.db.put_cf_opt(cf, META_KIND, KIND, &synced())?;
        Ok(s)
    }

    /// Opens the database `init` created at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.join("CURRENT").is_file() {
            return Err(StoreError::Corrupt(format!("no database at {} (run init first)", path.display())));
        }
        let s = Self::open_with(path, false)?;
        match s.db.get_cf(s.cf(CF_META)?, META_KIND)? {
            Some(k) if k == KIND => Ok(s),
            _ => Err(StoreError::Corrupt(format!("{} is not a custody-witness database", path.display()))),
        }
    }

    fn open_with(path: &Path, create: bool) -> Result<Self, StoreError> {
        let cfs = COLUMN_FAMILIES.iter().map(|n| ColumnFamilyDescriptor::new(*n, options(false)));
        let db = DB::open_cf_descriptors(&options(create), path, cfs)?;
        Ok(RocksStore { db })
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Corrupt(format!("missing column family {name}")))
    }

    fn scan(&self, name: &str) -> Result<Vec<Row>, StoreError> {
        let cf = self.cf(name)?;
        self.db.iterator_cf(cf, IteratorMode::Start).map(|r| r.map_err(StoreError::from)).collect()
    }
}

impl Store for RocksStore {
    fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let (latest, evidence, frozen) = (self.cf(CF_LATEST)?, self.cf(CF_EVIDENCE)?, self.cf(CF_FROZEN)?);
        for op in ops {
            match op {
                Op::Latest { origin, latest: l } => batch.put_cf(latest, origin.as_bytes(), l.encode()),
                Op::Evidence { id, origin, bytes } => {
                    batch.put_cf(evidence, id.as_bytes(), bytes);
                    batch.put_cf(frozen, origin.as_bytes(), id.as_bytes());
                }
                Op::Unfreeze { origin } => batch.delete_cf(frozen, origin.as_bytes()),
            }
        }
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    fn all_latest(&self) -> Result<Vec<(String, Latest)>, StoreError> {
        self.scan(CF_LATEST)?
            .into_iter()
            .map(|(k, v)| Ok((text(&k, "latest")?, Latest::decode(&v)?)))
            .collect()
    }

    fn frozen(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.scan(CF_FROZEN)?
            .into_iter()
            .map(|(k, v)| Ok((text(&k, "frozen")?, text(&v, "frozen")?)))
            .collect()
    }

    fn all_evidence(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(CF_EVIDENCE)?.into_iter().map(|(k, v)| Ok((text(&k, "evidence")?, v.into_vec()))).collect()
    }

    fn evidence(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_EVIDENCE)?, id.as_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(size: u64) -> Latest {
        Latest { size, root: Hash([size as u8; 32]), note: Arc::new(b"note\n".to_vec()) }
    }

    #[test]
    fn writes_survive_reopen_and_batches_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        assert!(RocksStore::open(&path).is_err(), "open needs init");
        let s = RocksStore::create(&path).unwrap();
        s.write(&[
            Op::Latest { origin: "a".into(), latest: latest(3) },
            Op::Latest { origin: "b".into(), latest: latest(4) },
        ])
        .unwrap();
        s.write(&[Op::Evidence { id: "e1".into(), origin: "a".into(), bytes: b"ev".to_vec() }]).unwrap();
        drop(s);
        assert!(RocksStore::create(&path).is_err(), "create refuses an existing database");
        let s = RocksStore::open(&path).unwrap();
        assert_eq!(s.all_latest().unwrap(), vec![("a".into(), latest(3)), ("b".into(), latest(4))]);
        assert_eq!(s.frozen().unwrap(), vec![("a".into(), "e1".into())]);
        assert_eq!(s.evidence("e1").unwrap().as_deref(), Some(&b"ev"[..]));
        s.write(&[Op::Unfreeze { origin: "a".into() }]).unwrap();
        assert!(s.frozen().unwrap().is_empty());
        assert_eq!(s.all_evidence().unwrap().len(), 1, "clearing keeps the evidence");
    }

    #[test]
    fn refuses_foreign_databases_and_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(DB::open_default(&path).unwrap());
        assert!(RocksStore::open(&path).is_err());
        assert!(Latest::decode(&[0; 40]).is_err());
        assert_eq!(Latest::decode(&latest(9).encode()).unwrap(), latest(9));
    }
}
