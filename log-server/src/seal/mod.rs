//! Encryption of artifacts at rest.
//!
//! Every stored copy of an artifact is sealed under its own random data key
//! (DEK) in the streaming format of [`mod@format`]: AES-256-GCM in 64 KiB chunks
//! with STREAM nonces, so a multi-GiB artifact is sealed and opened one
//! chunk at a time, and a truncated, extended, reordered or altered copy is
//! refused before any of its plaintext is released. Digests (the names in
//! the log) stay those of the plaintext, which the blob store still checks
//! on upload and on every read.
//!
//! The DEK is wrapped by a key-encryption key (KEK) behind the [`kms::Kek`]
//! trait and kept in a small key record beside the data ([`record`]), so
//! rotating the KEK rewraps data keys without touching the data, and a
//! store restored from its bucket carries its key records with it. A check
//! record per store proves at start-up that the configured KEK is the
//! store's: a wrong KEK is an error then, never garbage later.

pub mod format;
pub mod kms;
pub mod record;

use std::path::PathBuf;

use custody_standards::Hash;

pub use format::{ChunkCipher, Decoder, Encoder, Header};
pub use kms::{DataKey, FileKek, Kek, KekSource, Keyring};
pub use record::{CheckRecord, KeyRecord};

/// Exit code of `custody-log serve` (and the other commands that read
/// artifacts) when the configured KEK cannot open the store: wrong, missing
/// or unreadable KEK, or a store whose artifacts are not sealed.
pub const EXIT_KEY: u8 = 3;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The operating system's random source failed.
    #[error("no randomness for a data key: {0}")]
    Random(String),
    /// Longer than the format allows.
    #[error("an artifact of {0} bytes is too large to seal")]
    TooLarge(u64),
    /// The stored bytes are not a sealed artifact of this format.
    #[error("malformed sealed artifact: {0}")]
    Format(&'static str),
    /// The stored bytes fail authentication: altered, truncated, extended
    /// or reordered.
    #[error("sealed artifact refused at chunk {chunk}: {what}")]
    Tampered {
        /// First chunk that failed.
        chunk: u64,
        /// What was found.
        what: &'static str,
    },
    /// The KEK file cannot be read.
    #[error("KEK file {path}: {source}")]
    KekFile {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The KEK file is readable or writable by others.
    #[error("KEK file {path} has mode {mode:o}: it must be readable by its owner only (chmod 600)")]
    KekPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The KEK text is not 64 hex digits.
    #[error("KEK from {0} is not 64 hex digits (32 bytes)")]
    KekFormat(String),
    /// The environment variable holding the KEK is unset.
    #[error("environment variable {0} (the KEK) is not set")]
    KekEnv(String),
    /// No KEK configured for sealed artifacts.
    #[error(
        "no KEK configured: give --kek-file (CUSTODY_KEK_FILE) or CUSTODY_KEK, or store artifacts \
         unencrypted with --plaintext-artifacts"
    )]
    NoKek,
    /// Wrapping a data key failed.
    #[error("KEK {0} failed to wrap a data key")]
    Wrap(String),
    /// A wrapped data key does not open under the KEK it names.
    #[error("a wrapped data key does not open under KEK {0} (wrong key or altered record)")]
    Unwrap(String),
    /// A record names a KEK that is not configured.
    #[error("wrapped by KEK {id}, which is not configured (configured: {configured})")]
    UnknownKek {
        /// The KEK the record names.
        id: String,
        /// The configured ones.
        configured: String,
    },
    /// The store's check record does not open under the configured KEKs.
    #[error("wrong KEK: the artifact store is sealed under KEK {store}, the configured KEK is {configured}")]
    WrongKek {
        /// The KEK the store's check record names.
        store: String,
        /// The configured ones.
        configured: String,
    },
    /// A key or check record is malformed.
    #[error("malformed key record: {0}")]
    Record(&'static str),
    /// A stored copy's key record is missing.
    #[error("no key record for sha256:{digest} (copy {blob_id})")]
    KeyMissing {
        /// The artifact.
        digest: String,
        /// The copy's blob id.
        blob_id: String,
    },
    /// Sealing is configured but the store holds unsealed artifacts.
    #[error(
        "the artifact store holds unencrypted artifacts ({0}) and has no check record: encrypt \
         them with `custody-log seal-artifacts` (same --data-dir, --store and KEK) on the stopped \
         server, or serve them with --plaintext-artifacts"
    )]
    Unsealed(String),
    /// Presigned downloads asked of a sealed store.
    #[error(
        "--presign-downloads would hand out sealed bytes: presigned downloads need \
         --plaintext-artifacts"
    )]
    PresignSealed,
    /// Plaintext artifacts are configured but the store is sealed.
    #[error("the artifact store is sealed (KEK {0}): configure its KEK instead of --plaintext-artifacts")]
    Sealed(String),
}

impl SealError {
    /// True when the stored bytes themselves are wrong (tampering or
    /// corruption), as opposed to a key that is missing or not configured.
    pub fn is_tampering(&self) -> bool {
        matches!(self, SealError::Format(_) | SealError::Tampered { .. })
    }
}

/// What a sealed store seals and opens with.
#[derive(Debug)]
pub struct Seal {
    keys: Keyring,
}

impl Seal {
    /// Sealing with `keys`.
    pub fn new(keys: Keyring) -> Self {
        Seal { keys }
    }

    /// The KEKs.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Starts sealing a new copy of `digest` of `plain_len` bytes: its
    /// encoder (fresh DEK and header) and its key record.
    pub fn start(&self, digest: &Hash, plain_len: u64) -> Result<(Encoder, KeyRecord), SealError> {
        let header = Header::fresh(plain_len)?;
        let dek = DataKey::generate()?;
        let record = KeyRecord::wrap(&self.keys, &dek, digest, &header.blob_id)?;
        Ok((Encoder::new(ChunkCipher::new(&dek, header, digest)), record))
    }

    /// The cipher of the stored copy of `digest` with `header`, from its
    /// key record's bytes (`None`: the record is missing).
    pub fn cipher(
        &self,
        digest: &Hash,
        header: Header,
        record: Option<Vec<u8>>,
    ) -> Result<ChunkCipher, SealError> {
        let dek = self.data_key(digest, &header, record)?;
        Ok(ChunkCipher::new(&dek, header, digest))
    }

    /// The data key of the stored copy of `digest` with `header`, from its
    /// key record's bytes (`None`: the record is missing).
    pub fn data_key(
        &self,
        digest: &Hash,
        header: &Header,
        record: Option<Vec<u8>>,
    ) -> Result<DataKey, SealError> {
        let bytes = record.ok_or_else(|| SealError::KeyMissing {
            digest: digest.to_hex(),
            blob_id: header.blob_id_hex(),
        })?;
        KeyRecord::parse(&bytes)?.unwrap(&self.keys, digest, &header.blob_id)
    }
}
