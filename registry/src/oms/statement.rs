//! The in-toto Statement v1 a model-signing envelope carries, with the
//! `https://model_signing/signature/v1.0` predicate, parsed strictly.
//!
//! in-toto attestation spec v1, statement.md: `_type` is "Always
//! `https://in-toto.io/Statement/v1` for this version of the spec";
//! `subject` is a "Set of software artifacts that the attestation applies
//! to. Each element [...] MUST have `digest` set." Its parsing rules
//! (spec/v1/README.md): "Consumers MUST ignore unrecognized fields", which
//! this module does for the statement, the subject, the predicate and its
//! resources; a *recognized* field with a value we cannot check (another
//! type, another hash algorithm) is refused instead of skipped. Duplicate
//! keys of a recognized field are refused, so one statement has one
//! meaning.
//!
//! model_signing 1.1.1 (`src/model_signing/_signing/signing.py`, class
//! `Payload`) writes exactly one subject, named after the model directory,
//! whose `sha256` is "SHA256 computed over all the digests, in the order
//! they show up in the predicate", and a predicate holding `resources`
//! (one `{name, algorithm, digest}` per file) and `serialization` (how the
//! directory was turned into resources).

use std::collections::HashSet;

use serde::Deserialize;

use super::bundle::{shown, subject_digest};
use super::{hex32, OmsError, IN_TOTO_STATEMENT_TYPE, MAX_FILES, PREDICATE_TYPE};
use crate::manifest::ManifestPath;

/// The `serialization` block of the predicate: how model_signing walked the
/// directory. Only `method: "files"` with `hash_type: "sha256"` is
/// accepted, the one whose resources are whole files hashed with SHA-256
/// (`shards` names byte ranges, not files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsSerialization {
    /// `method`: always `"files"` once parsed.
    pub method: String,
    /// `hash_type`: always `"sha256"` once parsed.
    pub hash_type: String,
    /// `allow_symlinks`: whether the signer followed symbolic links.
    pub allow_symlinks: bool,
    /// `ignore_paths`: paths the signer left out (`.git` and the like).
    pub ignore_paths: Vec<String>,
}

/// One resource of the predicate: a file and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsResource {
    /// `name`: the path relative to the model directory, checked by
    /// [`crate::manifest::ManifestPath::new`].
    pub path: String,
    /// `digest`, decoded.
    pub sha256: [u8; 32],
}

/// The statement, parsed and checked for shape; *unverified* until
/// [`super::OmsBundle::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsStatement {
    /// The subject's `name`: the model directory's name when signed.
    pub model_name: String,
    /// The subject's `digest.sha256`.
    pub subject_sha256: [u8; 32],
    /// The resources in the order the predicate lists them (the order the
    /// subject digest is computed in).
    pub resources: Vec<OmsResource>,
    /// The predicate's `serialization`.
    pub serialization: OmsSerialization,
}

impl OmsStatement {
    /// SHA-256 over the raw resource digests in predicate order, what the
    /// subject digest must be.
    pub fn recompute_subject_digest(&self) -> [u8; 32] {
        subject_digest(self.resources.iter().map(|r| &r.sha256))
    }
}

// First pass: the types only, so an unknown statement or predicate type is
// named as such rather than reported as a shape error of a predicate we do
// not know.
#[derive(Deserialize)]
struct WireHeader {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

#[derive(Deserialize)]
struct WireStatement {
    subject: Vec<WireSubject>,
    predicate: WirePredicate,
}

#[derive(Deserialize)]
struct WireSubject {
    name: String,
    digest: WireSubjectDigest,
}

#[derive(Deserialize)]
struct WireSubjectDigest {
    sha256: String,
}

#[derive(Deserialize)]
struct WirePredicate {
    resources: Vec<WireResource>,
    serialization: WireSerialization,
}

#[derive(Deserialize)]
struct WireResource {
    name: String,
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct WireSerialization {
    method: String,
    hash_type: String,
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

fn malformed(e: serde_json::Error) -> OmsError {
    OmsError::Malformed { layer: "statement", reason: e.to_string() }
}

/// Parses the DSSE payload as a model-signing statement (see the module
/// doc). The payload size is bounded by the bundle cap checked before.
pub(super) fn parse_statement(payload: &[u8]) -> Result<OmsStatement, OmsError> {
    let header: WireHeader = serde_json::from_slice(payload).map_err(malformed)?;
    if header.type_ != IN_TOTO_STATEMENT_TYPE {
        return Err(OmsError::StatementType(shown(&header.type_)));
    }
    if header.predicate_type != PREDICATE_TYPE {
        return Err(OmsError::PredicateType(shown(&header.predicate_type)));
    }
    let wire: WireStatement = serde_json::from_slice(payload).map_err(malformed)?;
    let [subject] = <[WireSubject; 1]>::try_from(wire.subject)
        .map_err(|s: Vec<WireSubject>| OmsError::SubjectCount(s.len()))?;
    let subject_sha256 = hex32(&subject.digest.sha256)
        .ok_or_else(|| OmsError::Digest { field: "subject".into(), value: shown(&subject.digest.sha256) })?;

    let ser = wire.predicate.serialization;
    if ser.method != "files" {
        return Err(OmsError::UnsupportedSerialization(shown(&ser.method)));
    }
    if ser.hash_type != "sha256" {
        return Err(OmsError::UnsupportedHashType(shown(&ser.hash_type)));
    }

    let resources = wire.predicate.resources;
    if resources.len() > MAX_FILES {
        return Err(OmsError::TooManyFiles(resources.len()));
    }
    let mut seen = HashSet::with_capacity(resources.len());
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
        ManifestPath::new(&r.name).map_err(|rule| OmsError::Path { name: shown(&r.name), rule })?;
        if r.algorithm != "sha256" {
            return Err(OmsError::UnsupportedAlgorithm {
                name: shown(&r.name),
                algorithm: shown(&r.algorithm),
            });
        }
        let sha256 = hex32(&r.digest)
            .ok_or_else(|| OmsError::Digest { field: shown(&r.name), value: shown(&r.digest) })?;
        if !seen.insert(r.name.clone()) {
            return Err(OmsError::DuplicatePath(shown(&r.name)));
        }
        out.push(OmsResource { path: r.name, sha256 });
    }
    Ok(OmsStatement {
        model_name: subject.name,
        subject_sha256,
        resources: out,
        serialization: OmsSerialization {
            method: ser.method,
            hash_type: ser.hash_type,
            allow_symlinks: ser.allow_symlinks,
            ignore_paths: ser.ignore_paths,
        },
    })
}
