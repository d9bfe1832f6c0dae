//! Model directories on the server: reading stored manifests, deciding
//! which of their files are still to be uploaded, and the access grant
//! that lets one logged access statement cover every file of a manifest.
//!
//! A directory is published as its manifest
//! ([`custody_registry::manifest`]); its files are artifacts of their own,
//! uploaded under the publish statement of the manifest and published by
//! it. The order of a directory publish:
//! 1. `PUT /blobs/<manifest>` with the publish statement: the manifest is
//!    stored and checked (every path rule; 422 `bad_manifest` removes it
//!    again). If every file is stored, the publish is sequenced as for any
//!    artifact; otherwise the answer is 202 with `"reason":"files_missing"`
//!    and the digests still missing.
//! 2. `PUT /blobs/<file>` with the same publish statement, for each missing
//!    file: accepted only if the manifest is stored, was uploaded by this
//!    actor within `--upload-grace`, and lists that digest with exactly
//!    that size (422 `not_in_manifest` otherwise). Nothing is sequenced.
//! 3. `POST /statements` with the publish (signed again if the first one
//!    left the statement window): sequenced only if every file is stored
//!    (409 `files_missing` otherwise).
//!
//! Reading: `GET /blobs/<manifest>` with an access statement logs the
//! access as for any artifact and answers its leaf index. Each file is then
//! fetched with `GET /blobs/<file>` carrying *the same* access statement and
//! that index in `Custody-Access-Index`: the file is served only if the
//! entry at that index is exactly this statement, its key is still valid,
//! the manifest it names lists the file, and the log received it at most
//! `--directory-access-grant` seconds ago. So no byte is served without a
//! durable access entry that names, through the manifest's digest, the file
//! served, and a grant cannot be stretched to other files or other times.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_registry::leaf::Leaf;
use custody_registry::manifest::{Manifest, ManifestError, SignatureError, MAX_MANIFEST_BYTES};
use custody_registry::names::Digest;
use custody_registry::oms::MAX_BUNDLE_BYTES;
use custody_registry::registry::Registry;
use custody_standards::Hash;

use crate::blobs::{BlobError, BlobStore};
use crate::store::{Store, StoreError};

/// Response and request header: the leaf index of the access statement a
/// directory file download relies on.
pub const ACCESS_INDEX_HEADER: &str = "Custody-Access-Index";
/// Default of `--directory-access-grant`, in seconds.
pub const DEFAULT_ACCESS_GRANT_SECS: u64 = 900;
/// Parsed manifests kept in memory (they are immutable by digest).
const CACHED_MANIFESTS: usize = 64;

/// Why a directory request is refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The stored manifest breaks a rule (422 `bad_manifest`).
    #[error("manifest {digest}: {source}")]
    BadManifest {
        /// The manifest's digest.
        digest: Digest,
        /// The rule it breaks.
        source: ManifestError,
    },
    /// A file was sent before its manifest (409 `manifest_required`).
    #[error("manifest {0} is not stored: upload it with PUT /blobs/{0} first")]
    ManifestRequired(Digest),
    /// An upload of bytes the manifest does not list with that size (422
    /// `not_in_manifest`).
    #[error("{file} of {size} bytes is not a file of manifest {manifest}")]
    NotListed {
        /// The digest uploaded.
        file: Digest,
        /// Its size.
        size: u64,
        /// The manifest named by the publish.
        manifest: Digest,
    },
    /// A download of a file the access statement's manifest does not list
    /// (403 `not_in_manifest`).
    #[error("the access statement covers the files of manifest {manifest}, and {file} is not one of them")]
    NotCovered {
        /// The digest asked for.
        file: Digest,
        /// The manifest the access names.
        manifest: Digest,
    },
    /// A publish of a directory whose files are not all stored (409
    /// `files_missing`).
    #[error(
        "{missing} of the {total} files of manifest {manifest} are not stored (first: {first}): upload \
         them with PUT /blobs/<digest> and the publish statement"
    )]
    FilesMissing {
        /// The manifest.
        manifest: Digest,
        /// Distinct files missing.
        missing: usize,
        /// Distinct files listed.
        total: usize,
        /// One of them.
        first: Digest,
    },
    /// The entry at `Custody-Access-Index` is not this statement (403
    /// `access_not_logged`).
    #[error("entry {0} of the log is not this access statement: GET /blobs/<manifest> with it first")]
    NotLogged(u64),
    /// The access grant is over (403 `access_expired`).
    #[error(
        "the access logged at entry {index} is {age_secs} s old; it covers a directory's files for \
         {grant_secs} s: sign a new access statement"
    )]
    Expired {
        /// The access entry.
        index: u64,
        /// Its age.
        age_secs: u64,
        /// `--directory-access-grant`.
        grant_secs: u64,
    },
    /// The directory's OpenSSF model signature does not hold (422
    /// `bad_model_signature`).
    #[error("manifest {manifest}: {source}")]
    Signature {
        /// The manifest.
        manifest: Digest,
        /// What is wrong with it.
        source: SignatureError,
    },
    /// Reading a blob failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parsed manifests by digest: a directory of a thousand files consults its
/// manifest a thousand times on upload and again on download.
#[derive(Debug, Default)]
pub struct Manifests {
    cache: Mutex<HashMap<Digest, Arc<Manifest>>>,
}

impl Manifests {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The manifest stored under `digest`, verified against its digest and
    /// checked against every rule.
    pub fn load(&self, blobs: &BlobStore, digest: &Digest) -> Result<Arc<Manifest>, DirectoryError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cache.get(digest) {
            return Ok(m.clone());
        }
        drop(cache);
        let bytes = match blobs.read_small_verified(&digest.0, MAX_MANIFEST_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let size = blobs.size_of(&digest.0)?.unwrap_or(MAX_MANIFEST_BYTES + 1);
                return Err(DirectoryError::BadManifest {
                    digest: *digest,
                    source: ManifestError::TooLarge(size),
                });
            }
            Err(BlobError::NotFound(_)) => return Err(DirectoryError::ManifestRequired(*digest)),
            Err(e) => return Err(e.into()),
        };
        let m = Arc::new(
            Manifest::parse(&bytes)
                .map_err(|source| DirectoryError::BadManifest { digest: *digest, source })?,
        );
        cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHED_MANIFESTS {
            cache.clear();
        }
        cache.insert(*digest, m.clone());
        Ok(m)
    }
}

/// The distinct files of `m` not stored with their listed size.
pub fn missing_files(blobs: &BlobStore, m: &Manifest) -> Result<Vec<Digest>, DirectoryError> {
    let mut missing = Vec::new();
    for (digest, size) in m.distinct_members() {
        if blobs.size_of(&digest.0)? != Some(size) {
            missing.push(digest);
        }
    }
    Ok(missing)
}

/// Checks the OpenSSF model signature `m` names, if any, once its bytes
/// are stored: it must verify with the key the manifest names and sign
/// exactly the manifest's files.
pub fn check_signature(blobs: &BlobStore, manifest: Digest, m: &Manifest) -> Result<(), DirectoryError> {
    let Some(sig) = m.signature() else { return Ok(()) };
    let bad = |source| DirectoryError::Signature { manifest, source };
    let bytes = blobs.read_small_verified(&sig.digest.0, MAX_BUNDLE_BYTES as u64)?.ok_or_else(|| {
        bad(SignatureError::Bundle(custody_registry::oms::OmsError::TooLarge { size: MAX_BUNDLE_BYTES + 1 }))
    })?;
    m.check_signature(&bytes).map(|_| ()).map_err(bad)
}

/// Refuses the publish of `manifest` while any of its files is missing.
pub fn require_files(blobs: &BlobStore, manifest: Digest, m: &Manifest) -> Result<(), DirectoryError> {
    let missing = missing_files(blobs, m)?;
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(DirectoryError::FilesMissing {
            manifest,
            missing: missing.len(),
            total: m.distinct_members().len(),
            first: *first,
        }),
    }
}

/// Checks that `envelope` is the statement logged at `index`, received at
/// most `grant` before `now_ms`.
pub fn check_grant(
    store: &dyn Store,
    envelope: &[u8],
    index: u64,
    now_ms: u64,
    grant: Duration,
) -> Result<(), DirectoryError> {
    let entry = store.entry(index)?.ok_or(DirectoryError::NotLogged(index))?;
    let leaf = Leaf::decode(&entry).map_err(|_| DirectoryError::NotLogged(index))?;
    if leaf.envelope != envelope {
        return Err(DirectoryError::NotLogged(index));
    }
    let age_ms = now_ms.saturating_sub(leaf.receive_time_ms);
    if u128::from(age_ms) > grant.as_millis() {
        return Err(DirectoryError::Expired { index, age_secs: age_ms / 1000, grant_secs: grant.as_secs() });
    }
    Ok(())
}

/// Every version published as a directory: its label (`name@version`),
/// the leaf of its publish and its manifest's digest.
pub fn published_directories(registry: &Registry) -> Vec<(String, u64, Digest)> {
    registry
        .directory_versions()
        .map(|(name, version, v)| {
            (format!("{}@{}", name.as_str(), version.as_str()), v.published_at, v.digest)
        })
        .collect()
}

/// Every file a published directory lists: these are published too, and
/// never orphans. A published manifest that cannot be read is an error,
/// since its files could not be told apart from orphans.
pub fn published_files(registry: &Registry, blobs: &BlobStore) -> Result<HashSet<Hash>, DirectoryError> {
    let manifests = Manifests::new();
    let mut files = HashSet::new();
    for (_, _, digest) in published_directories(registry) {
        let m = manifests.load(blobs, &digest)?;
        files.extend(m.members().map(|(d, _)| d.0));
    }
    Ok(files)
}
