//! `custody audit --directories`: the auditor's share of the model
//! directory rules. The replay proves who published what; the manifests
//! themselves are artifacts, so the auditor reads each published one (one
//! access statement each, signed with its own key and logged like any
//! read) and checks it as the log should have: the bytes are the published
//! digest, every path rule of docs/protocol.md section 10 holds, and an
//! OpenSSF model signature it names verifies with its key and signs
//! exactly its files. Manifests are immutable, so each digest is checked
//! once; the digests checked are remembered beside the audit cache.

use std::collections::BTreeSet;
use std::path::Path;

use custody_registry::names::{Digest, ModelName, Version};
use custody_registry::registry::Registry;
use serde::Serialize;

use super::Violation;
use crate::directory::pull::{fetch_manifest, fetch_signature};
use crate::error::{Error, Result};
use crate::home::{read_capped, write_atomic};
use crate::statements::Why;
use crate::trust::Trust;
use custody_registry::actor_key::ActorSigner;

/// File under the audit directory listing the manifests already checked.
const CHECKED_FILE: &str = "directories";

/// A version published as a directory, as the replay knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDirectory {
    /// Name.
    pub name: ModelName,
    /// Version.
    pub version: Version,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
    /// Leaf of the publish.
    pub published_at: u64,
}

/// Every directory version of `registry`, in publish order.
pub fn published_directories(registry: &Registry) -> Vec<PublishedDirectory> {
    let mut out: Vec<PublishedDirectory> = registry
        .directory_versions()
        .map(|(name, version, v)| PublishedDirectory {
            name: name.clone(),
            version: version.clone(),
            digest: v.digest,
            size: v.size,
            published_at: v.published_at,
        })
        .collect();
    out.sort_by_key(|d| d.published_at);
    out
}

/// What `--directories` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirectoryAudit {
    /// Manifests read and checked by this run.
    pub checked: usize,
    /// Manifests skipped: checked by an earlier audit.
    pub checked_before: usize,
    /// The first manifest that fails a check, named by its publish.
    pub violation: Option<Violation>,
}

/// Reads and checks every manifest of `dirs` not checked before (see the
/// module docs); `audit_dir` is the audit's cache directory.
pub fn check_directories(
    trust: &Trust,
    signer: &ActorSigner,
    why: &Why,
    audit_dir: &Path,
    dirs: &[PublishedDirectory],
) -> Result<DirectoryAudit> {
    let file = audit_dir.join(CHECKED_FILE);
    let mut done: BTreeSet<String> = match read_capped(&file, 64 << 20) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect(),
        Err(_) => BTreeSet::new(),
    };
    let mut report = DirectoryAudit::default();
    for d in dirs {
        let key = d.digest.to_string();
        if done.contains(&key) {
            report.checked_before += 1;
            continue;
        }
        let problem = match check_one(trust, signer, why, d) {
            Ok(()) => None,
            Err(Error::Verification(p)) => Some(p),
            Err(e) => return Err(e),
        };
        if let Some(problem) = problem {
            let what = format!("{}@{}", d.name.as_str(), d.version.as_str());
            report.violation =
                Some(Violation { index: d.published_at, problem: format!("{what}: {problem}") });
            break;
        }
        report.checked += 1;
        done.insert(key);
    }
    let text: String = done.iter().map(|d| format!("{d}\n")).collect();
    write_atomic(&file, text.as_bytes(), 0o644)?;
    Ok(report)
}

/// One manifest: fetched under a logged access, digest, rules and
/// signature checked. A failed check is [`Error::Verification`].
fn check_one(trust: &Trust, signer: &ActorSigner, why: &Why, d: &PublishedDirectory) -> Result<()> {
    let (m, envelope, index) = fetch_manifest(trust, signer, why, &d.name, &d.version, d.digest, d.size)?;
    if let Some(bytes) = fetch_signature(trust, &m, &envelope, index)? {
        m.check_signature(&bytes).map_err(|e| Error::verify(e.to_string()))?;
    }
    Ok(())
}
