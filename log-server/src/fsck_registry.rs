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
//! - Stored artifacts that no publish names (orphans, see [`crate::gc`])
//!   are listed. They are not an inconsistency: an upload that outlasted
//!   the statement window leaves one until its uploader publishes it.

use std::path::Path;

use custody_registry::registry::{Auditor, Config};

use custody_standards::VerifierKey;

use crate::blobs::{BlobError, BlobStore};
use crate::fsck::{fsck, FsckProblem, FsckProblemKind, FsckReport};
use crate::gc::{orphans, Orphan};
use crate::init::{db_path, is_registry};
use crate::store::{RocksStore, Store, StoreError};

/// The whole `custody-log fsck` of a stopped server's data directory: the
/// tree checks, then (for a registry, if the tree is sound) the registry
/// replay and the artifacts.
pub fn fsck_data_dir(
    data_dir: &Path,
    log_vkey: Option<&VerifierKey>,
    config: Config,
) -> Result<FsckReport, StoreError> {
    let mut report = fsck(&db_path(data_dir), log_vkey)?;
    if report.is_healthy() {
        let store = RocksStore::open_read_only(&db_path(data_dir))?;
        if is_registry(&store).map_err(|e| StoreError::Corrupt(e.to_string()))? {
            let check = check_registry(&store, data_dir, config)?;
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
    config: Config,
) -> Result<RegistryCheck, StoreError> {
    let problem = |p: Option<FsckProblem>| Ok(RegistryCheck { problem: p, orphans: Vec::new() });
    let size = store.tree_size()?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut auditor = Auditor::new(config).threads(threads);
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
    let blobs = BlobStore::at(data_dir);
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
            Err(e @ BlobError::Integrity { .. }) => return blob_problem(digest.to_hex(), e.to_string()),
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
    let orphans = orphans(registry, data_dir, crate::registry::now_ms())
        .map_err(|e| StoreError::Corrupt(format!("listing orphan artifacts: {e}")))?;
    Ok(RegistryCheck { problem: None, orphans })
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
        assert_eq!((p.kind, p.location.as_str()), (FsckProblemKind::Registry, "entry 1"), "{}", p.detail);
    }
}
