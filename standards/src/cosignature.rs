//! C2SP tlog-cosignature, Ed25519 `cosignature/v1` (signature type `0x04`).
//!
//! Signed message (spec "Ed25519 signed message"):
//!
//! ```text
//! cosignature/v1
//! time <T>
//! <the whole checkpoint note text, extension lines included>
//! ```
//!
//! Signature bytes: `u64 timestamp (big-endian) || 64-byte Ed25519 sig`.
//! The timestamp "MUST NOT exceed 2^63 - 1"; we refuse larger ones both when
//! signing and when verifying. Whether a timestamp is too far in the future
//! is a clock question left to the caller (no clocks in this crate).

use crate::checkpoint::Checkpoint;
use crate::keys::{
    KeyError, SignerKey, VerifierKey, ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE, SIG_TYPE_COSIGNATURE_V1,
};
use crate::note::{NoteError, NoteSignature, NoteSigner, NoteVerifier};

/// Largest timestamp allowed by the spec, `2^63 - 1`.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;
/// Size of the signature bytes: 8-byte timestamp + 64-byte Ed25519 signature.
pub const COSIGNATURE_SIZE: usize = 8 + ED25519_SIGNATURE_SIZE;

/// Why a cosignature could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// Timestamp above `2^63 - 1`.
    #[error("timestamp {0} exceeds 2^63-1")]
    Timestamp(u64),
    /// The text is not a checkpoint (cosignatures only cover checkpoints).
    #[error("cosigned text is not a valid checkpoint")]
    NotACheckpoint,
    /// Wrong key type or bad key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The exact message a cosignature/v1 signs. The text must be a valid
/// checkpoint: the statement is about a tree head, so anything else is a
/// caller bug (azul and torchwood refuse the same).
pub fn signed_message(checkpoint_text: &str, timestamp: u64) -> Result<Vec<u8>, CosignatureError> {
    if timestamp > MAX_TIMESTAMP {
        return Err(CosignatureError::Timestamp(timestamp));
    }
    Checkpoint::parse(checkpoint_text).map_err(|_| CosignatureError::NotACheckpoint)?;
    // "time", one space, decimal with no leading zeroes (`u64` Display).
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(checkpoint_text.as_bytes());
    Ok(msg)
}

/// The timestamp of cosignature bytes, if they are well-formed (right
/// length, timestamp within range). Not a verification.
pub fn cosignature_timestamp(sig: &[u8]) -> Option<u64> {
    if sig.len() != COSIGNATURE_SIZE {
        return None;
    }
    let ts = u64::from_be_bytes(sig[..8].try_into().expect("length checked above"));
    (ts <= MAX_TIMESTAMP).then_some(ts)
}

/// Verifies cosignature bytes by `key` (type `0x04`) over checkpoint `text`.
pub fn verify_cosignature(key: &VerifierKey, text: &[u8], sig: &[u8]) -> bool {
    if key.sig_type() != SIG_TYPE_COSIGNATURE_V1 {
        return false;
    }
    let (Some(ts), Ok(text)) = (cosignature_timestamp(sig), std::str::from_utf8(text)) else {
        return false;
    };
    match signed_message(text, ts) {
        Ok(msg) => key.verify_ed25519(&msg, &sig[8..]),
        Err(_) => false,
    }
}

/// A witness key that cosigns checkpoints.
#[derive(Debug, Clone)]
pub struct CosignatureSigner {
    key: SignerKey,
}

impl CosignatureSigner {
    /// Wraps a signer key, which must be of type `0x04`.
    pub fn new(key: SignerKey) -> Result<Self, CosignatureError> {
        key.verifier().require_type(SIG_TYPE_COSIGNATURE_V1)?;
        Ok(CosignatureSigner { key })
    }

    /// A cosigner from a witness name and 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; ED25519_KEY_SIZE]) -> Result<Self, CosignatureError> {
        Ok(CosignatureSigner { key: SignerKey::from_seed(name, SIG_TYPE_COSIGNATURE_V1, seed)? })
    }

    /// The witness's public key (type `0x04` vkey), as policies list it.
    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    /// The underlying signer key.
    pub fn key(&self) -> &SignerKey {
        &self.key
    }

    /// Cosigns checkpoint note text at `timestamp` (POSIX seconds).
    pub fn sign(&self, checkpoint_text: &str, timestamp: u64) -> Result<NoteSignature, CosignatureError> {
        let msg = signed_message(checkpoint_text, timestamp)?;
        let mut signature = Vec::with_capacity(COSIGNATURE_SIZE);
        signature.extend_from_slice(&timestamp.to_be_bytes());
        signature.extend_from_slice(&self.key.sign_ed25519(&msg));
        Ok(NoteSignature { name: self.key.name().to_owned(), key_id: self.key.key_id(), signature })
    }

    /// A [`NoteSigner`] that cosigns at a fixed time, for use with
    /// [`crate::note::sign_note`] / [`crate::note::add_signatures`].
    pub fn at(&self, timestamp: u64) -> Result<TimestampedCosigner<'_>, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp(timestamp));
        }
        Ok(TimestampedCosigner { signer: self, timestamp })
    }
}

/// A cosigner bound to a timestamp; see [`CosignatureSigner::at`].
#[derive(Debug, Clone, Copy)]
pub struct TimestampedCosigner<'a> {
    signer: &'a CosignatureSigner,
    timestamp: u64,
}

impl NoteSigner for TimestampedCosigner<'_> {
    fn name(&self) -> &str {
        self.signer.key.name()
    }
    fn key_id(&self) -> u32 {
        self.signer.key.key_id()
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        let refuse = |reason| NoteError::Signer { name: self.name().to_owned(), reason };
        let text = std::str::from_utf8(text).map_err(|_| refuse("text is not UTF-8"))?;
        match self.signer.sign(text, self.timestamp) {
            Ok(sig) => Ok(sig.signature),
            Err(CosignatureError::NotACheckpoint) => Err(refuse("cosigned text is not a valid checkpoint")),
            Err(_) => Err(refuse("invalid timestamp")),
        }
    }
}

/// The signature line (with its newline) a witness appends to the log's
/// signed checkpoint note, as returned by tlog-witness add-checkpoint.
pub fn cosign(
    signer: &CosignatureSigner,
    checkpoint: &Checkpoint,
    timestamp: u64,
) -> Result<String, CosignatureError> {
    let text = checkpoint.to_text().map_err(|_| CosignatureError::NotACheckpoint)?;
    Ok(signer.sign(&text, timestamp)?.to_line())
}

/// A type-checked `0x04` verifier: reports the timestamp of the
/// cosignatures it verifies through [`NoteVerifier::timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier(VerifierKey);

impl CosignatureVerifier {
    /// Wraps a witness key, which must be of type `0x04`.
    pub fn new(key: VerifierKey) -> Result<Self, KeyError> {
        key.require_type(SIG_TYPE_COSIGNATURE_V1)?;
        Ok(CosignatureVerifier(key))
    }

    /// The wrapped key.
    pub fn key(&self) -> &VerifierKey {
        &self.0
    }
}

impl NoteVerifier for CosignatureVerifier {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn key_id(&self) -> u32 {
        self.0.key_id()
    }
    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        verify_cosignature(&self.0, text, sig)
    }
    fn timestamp(&self, sig: &[u8]) -> Option<u64> {
        cosignature_timestamp(sig)
    }
}
