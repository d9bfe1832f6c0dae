//! OpenSSF model signing (OMS): verifying the detached signature that
//! `model_signing sign key` (sigstore/model-transparency, 1.1.1) writes for
//! a model directory, so a directory published to Custody can carry the
//! signature its producer already makes, checked here with the producer's
//! ECDSA P-256 public key.
//!
//! A signature file (`model.sig`) is three nested layers, each checked
//! strictly by its own module:
//!
//! ```text
//! Sigstore bundle v0.3 (JSON)           bundle.rs
//!   mediaType: application/vnd.dev.sigstore.bundle.v0.3+json
//!   verificationMaterial.publicKey.hint: hex SHA-256 of the signer's PEM
//!   dsseEnvelope                        (DSSE envelope.md)
//!     payloadType: application/vnd.in-toto+json
//!     payload: base64(statement)
//!     signatures: [{sig: base64(DER ECDSA P-256 over PAE), keyid: ""}]
//! in-toto Statement v1 (JSON)           statement.rs
//!   _type: https://in-toto.io/Statement/v1
//!   subject: [{name: <dir name>, digest: {sha256: <hex>}}]
//!   predicateType: https://model_signing/signature/v1.0
//!   predicate.resources: [{name: <rel path>, algorithm: sha256, digest: <hex>}]
//!   predicate.serialization: {method: files, hash_type: sha256,
//!                             allow_symlinks, ignore_paths}
//! ```
//!
//! DSSE protocol.md defines what the signature covers:
//! `SIGNATURE = Sign(PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY))` with
//! `PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP +
//! LEN(body) + SP + body` ([`crate::dsse::pae`]). model_signing signs
//! with the hash matched to the curve (SHA-256 for P-256) and
//! `cryptography`'s DER signature encoding.
//!
//! Verification ([`OmsBundle::verify`]) trusts nothing but the key passed
//! in: the hint must name that key, the signature must verify, and the
//! subject digest must be recomputed from the resources. The result,
//! [`OmsFiles`], is the signed file list; [`OmsFiles::compare`] matches it
//! against the files actually present (a directory manifest).
//!
//! Where this is stricter than the tool, it only refuses bundles the tool
//! never writes: exactly one signature, a key hint present, no certificate,
//! transparency-log entry or timestamp (not checked here, so not accepted),
//! canonical standard base64 (DSSE allows URL-safe too; the proto3 JSON
//! mapping model_signing writes through uses standard), lowercase hex,
//! `files` serialization with SHA-256 only, and resource names in the one
//! canonical spelling of [`crate::manifest::path`]. Pre-1.0 signatures (predicate type
//! `https://model_signing/Digests/v0.1`, and the tool's `pae_compat`
//! signatures over a mis-encoded PAE) are refused.
//!
//! Pure: no I/O. Every size is capped before the bytes are parsed.

mod bundle;
mod files;
mod key;
mod statement;

pub use bundle::{OmsBundle, OmsEnvelope};
pub use files::{OmsFiles, OmsMismatch};
pub use key::{OmsKeyError, OmsPublicKey, MAX_PUBLIC_KEY_PEM_BYTES};
pub use statement::{OmsResource, OmsSerialization, OmsStatement};

/// Media type of a Sigstore bundle v0.3 (sigstore_bundle.proto: "The
/// current version as specified by this file is:
/// application/vnd.dev.sigstore.bundle.v0.3+json").
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE payload type of an in-toto statement in JSON.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const IN_TOTO_STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a model_signing v1.0 signature.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// Most files one signature may list: the cap of Custody's directory
/// manifests, so every signature that parses fits a manifest.
pub const MAX_FILES: usize = 100_000;
/// Largest bundle accepted, checked before parsing. A resource costs about
/// 190 bytes of bundle (pretty-printed JSON, then base64), so
/// [`MAX_FILES`] files of long paths fit in 32 MiB.
pub const MAX_BUNDLE_BYTES: usize = 32 << 20;

/// Why a bundle was refused or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OmsError {
    /// More than [`MAX_BUNDLE_BYTES`].
    #[error("bundle is {size} bytes, the limit is {MAX_BUNDLE_BYTES}")]
    TooLarge {
        /// Size found.
        size: usize,
    },
    /// Not the JSON shape of its layer: bad JSON, a missing, duplicate or
    /// (outside the in-toto statement) unknown field, a wrong type.
    #[error("malformed {layer}: {reason}")]
    Malformed {
        /// `bundle`, `envelope` or `statement`.
        layer: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// `mediaType` is not [`BUNDLE_MEDIA_TYPE`].
    #[error("bundle mediaType {0:?} is not {BUNDLE_MEDIA_TYPE}")]
    MediaType(String),
    /// Verification material other than a bare public key hint.
    #[error("bundle carries {0}")]
    UnsupportedMaterial(&'static str),
    /// `publicKey.hint` is not 64 lowercase hex digits.
    #[error("publicKey hint {0:?} is not 64 lowercase hex digits")]
    KeyHint(String),
    /// `payloadType` is not [`IN_TOTO_PAYLOAD_TYPE`].
    #[error("payloadType {0:?} is not {IN_TOTO_PAYLOAD_TYPE}")]
    PayloadType(String),
    /// `payload` or `sig` is not canonical standard base64.
    #[error("{0} is not canonical standard base64")]
    Base64(&'static str),
    /// Not exactly one signature.
    #[error("the envelope carries {0} signatures, model_signing writes exactly one")]
    SignatureCount(usize),
    /// The signature is not a DER ECDSA signature.
    #[error("signature is not an ASN.1 DER ECDSA P-256 signature: {0}")]
    SignatureEncoding(String),
    /// `_type` is not [`IN_TOTO_STATEMENT_TYPE`].
    #[error("statement _type {0:?} is not {IN_TOTO_STATEMENT_TYPE}")]
    StatementType(String),
    /// `predicateType` is not [`PREDICATE_TYPE`].
    #[error("predicateType {0:?} is not {PREDICATE_TYPE}")]
    PredicateType(String),
    /// Not exactly one subject.
    #[error("the statement has {0} subjects, model_signing writes exactly one")]
    SubjectCount(usize),
    /// A digest that is not 64 lowercase hex digits.
    #[error("digest of {field} is not 64 lowercase hex digits: {value:?}")]
    Digest {
        /// `subject` or the resource's name.
        field: String,
        /// The value found.
        value: String,
    },
    /// `serialization.method` other than `files`.
    #[error("serialization method {0:?} is not supported (only \"files\")")]
    UnsupportedSerialization(String),
    /// `serialization.hash_type` other than `sha256`.
    #[error("serialization hash_type {0:?} is not supported (only \"sha256\")")]
    UnsupportedHashType(String),
    /// More than [`MAX_FILES`] resources.
    #[error("the signature lists {0} files, the limit is {MAX_FILES}")]
    TooManyFiles(usize),
    /// A resource name that breaks a path rule of a model directory
    /// ([`crate::manifest::path`]: the same rules as a manifest's paths,
    /// since the signed list must equal a manifest's).
    #[error("resource name {name:?}: {rule}")]
    Path {
        /// The name.
        name: String,
        /// The rule it breaks.
        rule: crate::manifest::PathError,
    },
    /// A resource named twice.
    #[error("resource {0:?} is listed twice")]
    DuplicatePath(String),
    /// A resource hashed with something other than SHA-256.
    #[error("resource {name:?} uses algorithm {algorithm:?}, only sha256 can be checked")]
    UnsupportedAlgorithm {
        /// The resource's name.
        name: String,
        /// Its `algorithm`.
        algorithm: String,
    },
    /// The bundle names another key than the one given.
    #[error("bundle was signed by key {hint}, not by the given key {key}")]
    KeyMismatch {
        /// The bundle's `publicKey.hint`.
        hint: String,
        /// [`OmsPublicKey::id`] of the given key.
        key: String,
    },
    /// The signature does not verify with the given key.
    #[error("signature does not verify with the given key")]
    BadSignature,
    /// The subject digest is not the digest of the resources.
    #[error("subject digest {signed} is not the digest of the resources ({computed})")]
    SubjectDigest {
        /// The signed subject digest, hex.
        signed: String,
        /// The digest recomputed from the resources, hex.
        computed: String,
    },
}

/// Decodes exactly 64 lowercase hex digits; the tool writes lowercase and
/// one spelling per digest keeps comparisons byte-exact.
pub(crate) fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}
