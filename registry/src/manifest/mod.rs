//! Model directories: the manifest artifact that lists every file of a
//! model (relative path, size, SHA-256), and the rules it obeys.
//!
//! A directory is published as one artifact, its manifest, with media type
//! [`MEDIA_TYPE`]; the publish statement names the manifest's digest, and
//! each file is a content-addressed artifact of its own. A file two
//! versions share is stored once.
//!
//! # Encoding
//! One JSON object, exactly as `serde_json` writes it compactly (no
//! whitespace, keys in this order, strings escaped the way `serde_json`
//! escapes them, non-ASCII as raw UTF-8):
//!
//! ```json
//! {"schema":1,"files":[{"path":"config.json","size":2,"digest":"sha256:44136fa3…"}]}
//! ```
//!
//! `files` is sorted by path (byte order of the UTF-8), each path once. An
//! optional last key, `"signature"`, names a detached signature of the
//! directory stored beside it (the OpenSSF model-signing bundle): its
//! format, the path it is written to, its size and digest, and the public
//! key it verifies with. Parsing re-encodes and refuses anything that is
//! not byte for byte the canonical form, so one directory has exactly one
//! manifest and one digest.
//!
//! # Rules
//! Every path obeys [`path`]'s rules; no two paths (the signature's
//! included) are equal after canonical case folding; no path is also the
//! directory of another; a digest listed twice has one size; at most
//! [`MAX_FILES`] files, and the encoding at most [`MAX_MANIFEST_BYTES`].
//!
//! ```
//! use custody_registry::manifest::{FileEntry, Manifest, ManifestPath};
//! use custody_registry::names::Digest;
//! use custody_standards::hash::Hash;
//!
//! let file = |p: &str, b: u8| FileEntry {
//!     path: ManifestPath::new(p).unwrap(),
//!     size: 1,
//!     digest: Digest(Hash([b; 32])),
//! };
//! let m = Manifest::new(vec![file("weights.bin", 1), file("config.json", 2)], None).unwrap();
//! assert_eq!(m.files()[0].path.as_str(), "config.json"); // sorted
//! assert_eq!(Manifest::parse(&m.encode()).unwrap(), m);
//! assert!(Manifest::new(vec![file("A.bin", 1), file("a.bin", 2)], None).is_err());
//! ```

pub mod path;
mod signature;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::names::Digest;
use custody_standards::hash::Hash;
pub use path::{ManifestPath, PathError};
pub use signature::SignatureError;

/// Media type of a manifest artifact: a publish with this media type is a
/// directory.
pub const MEDIA_TYPE: &str = "application/vnd.custody.manifest.v1+json";
/// Most files one manifest lists.
pub const MAX_FILES: usize = 100_000;
/// Largest manifest encoding, in bytes (checked before parsing).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Longest public key a signature entry carries (a PEM).
pub const MAX_PUBLIC_KEY_BYTES: usize = 4096;

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("a manifest is at most {MAX_MANIFEST_BYTES} bytes, this one is {0}")]
    TooLarge(u64),
    /// Not a manifest: bad JSON, unknown or duplicate field, bad digest.
    #[error("not a manifest: {0}")]
    Invalid(String),
    /// `schema` is not 1.
    #[error("manifest schema {0} is not supported (only 1)")]
    Schema(u64),
    /// Valid, but not byte for byte the canonical encoding.
    #[error("the manifest is not in its canonical encoding (compact JSON, keys in order, files sorted)")]
    NotCanonical,
    /// A path breaks a rule.
    #[error(transparent)]
    Path(#[from] PathError),
    /// No file at all.
    #[error("a manifest lists at least one file")]
    NoFiles,
    /// More than [`MAX_FILES`].
    #[error("a manifest lists at most {MAX_FILES} files, this one {0}")]
    TooManyFiles(usize),
    /// One path listed twice.
    #[error("path {0:?} is listed twice")]
    Duplicate(String),
    /// Two paths that case-insensitive file systems take for one.
    #[error("paths {0:?} and {1:?} are the same file on a case-insensitive file system")]
    CaseCollision(String, String),
    /// A path that is also another path's directory.
    #[error("path {0:?} is both a file and the directory of another file")]
    FileIsDirectory(String),
    /// One digest listed with two sizes.
    #[error("{0} is listed with two different sizes")]
    InconsistentSize(String),
    /// The sizes add up past 2^64.
    #[error("the files' sizes add up past 2^64 bytes")]
    TotalOverflow,
    /// The signature entry's public key is longer than allowed.
    #[error("the signature's public key is longer than {MAX_PUBLIC_KEY_BYTES} bytes")]
    PublicKeyTooLong,
}

/// One file of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Where it is, relative to the directory.
    pub path: ManifestPath,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub digest: Digest,
}

/// Formats of a detached directory signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureFormat {
    /// An OpenSSF model-signing bundle (Sigstore bundle around a DSSE
    /// envelope of an in-toto statement listing every file).
    Oms,
}

/// A detached signature of the directory, stored as an artifact of its
/// own and written to `path` on pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Its format.
    pub format: SignatureFormat,
    /// Where it is written, relative to the directory (`model.sig`).
    pub path: ManifestPath,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub digest: Digest,
    /// The public key it verifies with (PEM, SubjectPublicKeyInfo).
    pub public_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    schema: u64,
    files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<SignatureFile>,
}

/// A manifest that obeys every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    files: Vec<FileEntry>,
    signature: Option<SignatureFile>,
}

impl Manifest {
    /// A manifest of `files` (in any order) and an optional signature.
    pub fn new(mut files: Vec<FileEntry>, signature: Option<SignatureFile>) -> Result<Self, ManifestError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let m = Manifest { files, signature };
        m.check()?;
        Ok(m)
    }

    /// Parses and checks a manifest: size cap first, then JSON, then the
    /// rules, then canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let len = bytes.len() as u64;
        if len > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(len));
        }
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if wire.schema != 1 {
            return Err(ManifestError::Schema(wire.schema));
        }
        let m = Manifest { files: wire.files, signature: wire.signature };
        m.check()?;
        if m.encode() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(m)
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct WireRef<'a> {
            schema: u64,
            files: &'a [FileEntry],
            #[serde(skip_serializing_if = "Option::is_none")]
            signature: Option<&'a SignatureFile>,
        }
        let wire = WireRef { schema: 1, files: &self.files, signature: self.signature.as_ref() };
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// SHA-256 of the canonical encoding: what a publish names.
    pub fn digest(&self) -> Digest {
        Digest(Hash(Sha256::digest(self.encode()).into()))
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The detached signature, if any.
    pub fn signature(&self) -> Option<&SignatureFile> {
        self.signature.as_ref()
    }

    /// The size of the artifact `digest` if this manifest lists it (a file
    /// or the signature).
    pub fn member_size(&self, digest: &Digest) -> Option<u64> {
        self.members().find(|(d, _)| d == digest).map(|(_, s)| s)
    }

    /// Every artifact the manifest names: each file, then the signature;
    /// a digest listed twice appears twice.
    pub fn members(&self) -> impl Iterator<Item = (Digest, u64)> + '_ {
        self.files.iter().map(|f| (f.digest, f.size)).chain(self.signature.iter().map(|s| (s.digest, s.size)))
    }

    /// Distinct artifacts with their sizes, in digest order.
    pub fn distinct_members(&self) -> BTreeMap<Digest, u64> {
        self.members().collect()
    }

    /// Sum of the files' sizes (the signature excluded).
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.files.is_empty() {
            return Err(ManifestError::NoFiles);
        }
        if self.files.len() > MAX_FILES {
            return Err(ManifestError::TooManyFiles(self.files.len()));
        }
        // Sorted by path is part of the canonical form (`new` sorts; a
        // parsed list must arrive sorted).
        for w in self.files.windows(2) {
            match w[0].path.cmp(&w[1].path) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(ManifestError::Duplicate(w[0].path.to_string())),
                std::cmp::Ordering::Greater => return Err(ManifestError::NotCanonical),
            }
        }
        let mut folded: HashMap<String, &ManifestPath> = HashMap::with_capacity(self.files.len() + 1);
        let mut dirs: HashSet<String> = HashSet::new();
        let paths = self.files.iter().map(|f| &f.path).chain(self.signature.iter().map(|s| &s.path));
        for p in paths {
            if let Some(other) = folded.insert(p.fold_key(), p) {
                return Err(if other == p {
                    ManifestError::Duplicate(p.to_string())
                } else {
                    ManifestError::CaseCollision(other.to_string(), p.to_string())
                });
            }
            dirs.extend(p.parent_keys());
        }
        let mut paths = self.files.iter().map(|f| &f.path).chain(self.signature.iter().map(|s| &s.path));
        if let Some(p) = paths.find(|p| dirs.contains(&p.fold_key())) {
            return Err(ManifestError::FileIsDirectory(p.to_string()));
        }
        let mut sizes: HashMap<Digest, u64> = HashMap::with_capacity(self.files.len() + 1);
        let mut total = 0u64;
        for (d, s) in self.members() {
            if *sizes.entry(d).or_insert(s) != s {
                return Err(ManifestError::InconsistentSize(d.to_string()));
            }
            total = total.checked_add(s).ok_or(ManifestError::TotalOverflow)?;
        }
        if self.signature.as_ref().is_some_and(|s| s.public_key.len() > MAX_PUBLIC_KEY_BYTES) {
            return Err(ManifestError::PublicKeyTooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
