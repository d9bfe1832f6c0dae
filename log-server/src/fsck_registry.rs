//! The registry half of `custody-log fsck`, run after the tree checks in
//! [`crate::fsck`] pass.
//!
//! - Every leaf is replayed as an auditor would (`custody_registry::registry::
//!   Auditor`): decoded, signature verified, and checked against the
//!   registry rules at its point in the log. An entry altered offline whose
//!   hashes were recomputed to match still fails here, because its
//!   signature or its place in the custody history no longer holds.
//! - Every stored artifact is re-hashed, and every artifact the log says was
//!   published must be stored: a tampered or deleted blob is named by its
//!   digest.
//! - The registry state persisted for start-up must be the replay: the
//!   same records, nonces and position (a server would otherwise start
//!   with a state the log does not justify).
//! - The index rows clients list entries from (per name, digest and
//!   actor) must list exactly the entries of the committed entries chains
//!   ([`crate::index_check`]): a client would otherwise refuse the listing.
//! - Every published directory's manifest obeys the manifest rules and
//!   every file it lists is stored.
//! - Stored artifacts that no publish names (orphans, see [`crate::gc`])
//!   are listed. They are not an inconsistency: an upload that outlasted
//!   the statement window leaves one until its uploader publishes it.

use std::path::Path;

use custody_registry::registry::{Auditor, Config, Registry};

use custody_standards::VerifierKey;

use crate::blobs::{BlobError, BlobStore};
use crate::directory::{check_signature, published_directories, Manifests};
use crate::fsck::{fsck, FsckProblem, FsckProblemKind, FsckReport};
use crate::gc::{orphans, Orphan};
use crate::init::{db_path, is_registry};
use crate::registry_state::{self, StateError};
use crate::store::{RocksStore, Store, StoreError};

/// The whole `custody-log fsck` of a stopped server's data directory: the
/// tree checks, then (for a registry, if the tree is sound) the registry
/// replay and the artifacts.
pub fn fsck_data_dir(
    data_dir: &Path,
    log_vkey: Option<&VerifierKey>,
    config: Config,
) -> Result<FsckReport, StoreError> {
    fsck_data_dir_with(data_dir, &BlobStore::at(data_dir), log_vkey, config)
}

/// [`fsck_data_dir`] with the artifacts in `blobs` (a server run with
/// `--store` keeps them in its bucket).
pub fn fsck_data_dir_with(
    data_dir: &Path,
    blobs: &BlobStore,
    log_vkey: Option<&VerifierKey>,
    config: Config,
) -> Result<FsckReport, StoreError> {
    let mut report = fsck(&db_path(data_dir), log_vkey)?;
    if report.is_healthy() {
        let store = RocksStore::open_read_only(&db_path(data_dir))?;
        if is_registry(&store).map_err(|e| StoreError::Corrupt(e.to_string()))? {
            let check = check_registry(&store, data_dir, blobs, config)?;
            report.first_problem = check.problem;
            report.orphan_blobs = check.orphans.iter().map(ToString::to_string).collect();
            report.registry_checked = true;
        }
    }
    Ok(report)
}

/// Leaves fed to the auditor per batch (one batched signature check each).
const AUDIT_CHUNK: u64 = 512;

/// What [`check_registry`] found.
#[derive(Debug, Default)]
pub struct RegistryCheck {
    /// The first inconsistency; `None` means healthy.
    pub problem: Option<FsckProblem>,
    /// Stored artifacts no publish names (only listed when healthy).
    pub orphans: Vec<Orphan>,
}

/// Checks the registry of a stopped server's data directory.
pub fn check_registry(
    store: &dyn Store,
    data_dir: &Path,
    blobs: &BlobStore,
    config: Config,
) -> Result<RegistryCheck, StoreError> {
    let problem = |p: Option<FsckProblem>| Ok(RegistryCheck { problem: p, orphans: Vec::new() });
    let size = store.tree_size()?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut auditor = Auditor::new(config).threads(threads);
    // Log events are signed with the log's own key, in the same directory.
    if let Ok(key) = crate::init::load_key(data_dir) {
        auditor = auditor.log_key(key.verifier());
    }
    let mut start = 0;
    while start < size {
        let end = (start + AUDIT_CHUNK).min(size);
        let entries = store.entries(start, end)?;
        let leaves: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        if let Err(finding) = auditor.feed(&leaves) {
            return problem(Some(FsckProblem {
                kind: FsckProblemKind::Registry,
                location: format!("entry {}", finding.index),
                detail: finding.problem.to_string(),
            }));
        }
        start = end;
    }
    if let Some(p) = state_problem(store, auditor.registry(), size, config)? {
        return problem(Some(p));
    }
    if let Some(p) = crate::index_check::check_index_rows(store, auditor.state())? {
        return problem(Some(p));
    }
    let blob_problem = |digest: String, detail: String| {
        problem(Some(FsckProblem {
            kind: FsckProblemKind::Blob,
            location: format!("blob sha256:{digest}"),
            detail,
        }))
    };
    let stored = match blobs.list() {
        Ok(list) => list,
        Err(e) => return blob_problem("?".into(), e.to_string()),
    };
    for digest in &stored {
        match blobs.verify(digest) {
            Ok(_) => {}
            // Altered bytes, or (sealed) a key record missing or not
            // opening under the configured KEKs.
            Err(e @ (BlobError::Integrity { .. } | BlobError::Key(_))) => {
                return blob_problem(digest.to_hex(), e.to_string())
            }
            Err(e) => return Err(StoreError::Corrupt(e.to_string())),
        }
    }
    let registry = auditor.registry();
    for (name, model) in registry.models() {
        for (version, v) in &model.versions {
            if stored.binary_search_by_key(&v.digest.0 .0, |h| h.0).is_err() {
                return blob_problem(
                    v.digest.0.to_hex(),
                    format!(
                        "published as {}@{} at entry {} but not stored",
                        name.as_str(),
                        version.as_str(),
                        v.published_at
                    ),
                );
            }
        }
    }
    let manifests = Manifests::new();
    for (label, at, manifest) in published_directories(registry) {
        let m = match manifests.load(blobs, &manifest) {
            Ok(m) => m,
            Err(e) => {
                return blob_problem(manifest.0.to_hex(), format!("manifest of {label} (entry {at}): {e}"))
            }
        };
        let paths =
            m.files().iter().map(|f| (&f.path, f.digest)).chain(m.signature().map(|s| (&s.path, s.digest)));
        for (path, digest) in paths {
            if stored.binary_search_by_key(&digest.0 .0, |h| h.0).is_err() {
                return blob_problem(
                    digest.0.to_hex(),
                    format!("file {:?} of {label} (published at entry {at}) is not stored", path.as_str()),
                );
            }
        }
        if let Err(e) = check_signature(blobs, manifest, &m) {
            return blob_problem(manifest.0.to_hex(), format!("{label} (entry {at}): {e}"));
        }
    }
    let orphans = orphans(registry, blobs, data_dir, crate::registry::now_ms())
        .map_err(|e| StoreError::Corrupt(format!("listing orphan artifacts: {e}")))?;
    Ok(RegistryCheck { problem: None, orphans })
}

/// Compares the registry state persisted for start-up with `replayed`,
/// the replay of the log's `size` entries. A database without one (from
/// before it was persisted, or with another format) is fine: the server
/// builds it by replay at its next start.
fn state_problem(
    store: &dyn Store,
    replayed: &Registry,
    size: u64,
    config: Config,
) -> Result<Option<FsckProblem>, StoreError> {
    let found = |detail: String| {
        Ok(Some(FsckProblem {
            kind: FsckProblemKind::RegistryState,
            location: "registry state".to_owned(),
            detail,
        }))
    };
    let persisted = match registry_state::read(store, config) {
        Ok(None) => return Ok(None),
        Ok(Some(p)) => p,
        Err(StateError::Store(e)) => return Err(e),
        Err(e) => return found(e.to_string()),
    };
    if persisted.covered != size {
        return found(format!("it covers {} entries but the log has {size}", persisted.covered));
    }
    match persisted.registry.first_difference(replayed) {
        None => Ok(None),
        Some(d) => found(format!("persisted against replayed: {d}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{init_data_dir, init_registry};
    use crate::store::Batch;
    use custody_registry::actor_key::ActorSigner;
    use custody_registry::leaf::Leaf;
    use custody_registry::names::{ActorName, Pattern};
    use custody_registry::registry::Role;
    use custody_registry::statement::events::GrantRole;
    use custody_registry::statement::{Context, Event, Nonce, Statement, Text};
    use custody_registry::timestamp::Timestamp;
    use custody_standards::{leaf_hash, Appender};

    /// Appends `leaf` behind the admission's back, keeping the tree sound.
    fn smuggle(store: &RocksStore, leaf: Vec<u8>) {
        let size = store.tree_size().unwrap();
        let mut appender = Appender::from_reader(size, store).unwrap();
        let mut batch = Batch { start: size, ..Batch::default() };
        appender.append(leaf_hash(&leaf), &mut batch.nodes);
        batch.leaf_hashes.push(leaf_hash(&leaf));
        batch.entries.push(leaf);
        store.append_batch(&batch).unwrap();
    }

    #[test]
    fn a_forged_entry_with_sound_hashes_is_named() {
        let dir = tempfile::tempdir().unwrap();
        init_data_dir(dir.path(), "example.com/log").unwrap();
        init_registry(dir.path(), "root", &dir.path().join("admin.key")).unwrap();
        let cfg = Config::default();
        let report = fsck_data_dir(dir.path(), None, cfg).unwrap();
        assert!(report.is_healthy() && report.registry_checked, "{report}");

        // Mallory, unknown to the registry, grants herself admin.
        let mallory = ActorSigner::from_seed(&ActorName::new("mallory").unwrap(), &[7; 32]);
        let event = Event::Grant(GrantRole {
            actor: mallory.actor().clone(),
            key: mallory.public().clone(),
            role: Role::Admin,
            pattern: Pattern::new("*").unwrap(),
        });
        let now = crate::registry::now_ms();
        let stmt = Statement::new(
            &mallory,
            Timestamp::from_unix_secs(now / 1000).unwrap(),
            Nonce([1; 16]),
            Context::reason(Text::new("take over").unwrap()),
            event,
        );
        let leaf = Leaf::new(now, &stmt.sign(&mallory).unwrap()).unwrap().encode();
        let store = RocksStore::open(&db_path(dir.path())).unwrap();
        smuggle(&store, leaf);
        drop(store);
        let report = fsck_data_dir(dir.path(), None, cfg).unwrap();
        let p = report.first_problem.expect("the forged grant must be found");
        assert_eq!((p.kind, p.location.as_str()), (FsckProblemKind::Registry, "entry 2"), "{}", p.detail);
    }

    /// Rewrites the `state` row `key` of the stopped server at `dir`
    /// (`None`: deletes it), as an operator with disk access could.
    fn edit_state(dir: &Path, key: &[u8], value: Option<Vec<u8>>) {
        let store = RocksStore::open(&db_path(dir)).unwrap();
        let cf = store.cf(crate::store::CF_STATE);
        match value {
            Some(v) => store.db().put_cf(cf, key, v).unwrap(),
            None => store.db().delete_cf(cf, key).unwrap(),
        }
    }

    #[test]
    fn index_rows_that_are_not_the_committed_chains_are_named() {
        let dir = tempfile::tempdir().unwrap();
        init_data_dir(dir.path(), "example.com/log").unwrap();
        init_registry(dir.path(), "root", &dir.path().join("admin.key")).unwrap();
        let cfg = Config::default();
        assert!(fsck_data_dir(dir.path(), None, cfg).unwrap().is_healthy());
        let store = RocksStore::open(&db_path(dir.path())).unwrap();
        let cf = store.cf(crate::store::CF_REGISTRY_INDEX);
        let (key, value) = store
            .db()
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap())
            .find(|(k, _)| k.first() == Some(&b'u'))
            .expect("the genesis actor row");
        // root's genesis entry dropped from its listing.
        store.db().delete_cf(cf, &key).unwrap();
        drop(store);
        let p = fsck_data_dir(dir.path(), None, cfg).unwrap().first_problem.expect("a finding");
        assert_eq!(
            (p.kind, p.location.as_str()),
            (FsckProblemKind::RegistryIndex, "index rows of actor root"),
            "{}",
            p.detail
        );
        assert!(p.detail.contains("no rows, but the committed chain counts 1 entries"), "{}", p.detail);
        // Put back, the listing is the chain again.
        let store = RocksStore::open(&db_path(dir.path())).unwrap();
        store.db().put_cf(store.cf(crate::store::CF_REGISTRY_INDEX), &key, &value).unwrap();
        drop(store);
        assert!(fsck_data_dir(dir.path(), None, cfg).unwrap().is_healthy());
    }

    #[test]
    fn a_persisted_state_that_is_not_the_replay_is_named() {
        let dir = tempfile::tempdir().unwrap();
        init_data_dir(dir.path(), "example.com/log").unwrap();
        init_registry(dir.path(), "root", &dir.path().join("admin.key")).unwrap();
        let cfg = Config::default();
        let rows = RocksStore::open_read_only(&db_path(dir.path())).unwrap().scan_state(b"").unwrap();
        let find = |prefix: &[u8]| rows.iter().find(|(k, _)| k.starts_with(prefix)).cloned().unwrap();
        let report = fsck_data_dir(dir.path(), None, cfg).unwrap();
        assert!(report.is_healthy(), "{report}");
        let state_problem = || {
            let p = fsck_data_dir(dir.path(), None, cfg).unwrap().first_problem.expect("a finding");
            assert_eq!((p.kind, p.location.as_str()), (FsckProblemKind::RegistryState, "registry state"));
            p.detail
        };

        // root's grant moved to another entry in its record.
        let (key, actor) = find(b"ra");
        let forged = String::from_utf8(actor.clone()).unwrap().replace("\"index\":0", "\"index\":5");
        assert_ne!(forged.as_bytes(), actor.as_slice());
        edit_state(dir.path(), &key, Some(forged.into_bytes()));
        let detail = state_problem();
        assert!(detail.contains("record aroot differs"), "{detail}");
        edit_state(dir.path(), &key, Some(actor));
        assert!(fsck_data_dir(dir.path(), None, cfg).unwrap().is_healthy());

        // The genesis nonce forgotten: its statement would be accepted again.
        let (key, _) = find(b"n");
        edit_state(dir.path(), &key, None);
        let detail = state_problem();
        assert!(
            detail.contains("replay window: 0 nonces only in the first, 1 only in the second"),
            "{detail}"
        );

        // A cursor that does not decode.
        edit_state(dir.path(), b"c", Some(b"{".to_vec()));
        assert!(state_problem().contains("state row c"));
    }
}
