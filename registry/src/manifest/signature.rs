//! The detached OpenSSF model-signing signature a manifest may name
//! ([`super::SignatureFile`]): the one check the client (before
//! publishing and after pulling), the log (before publishing) and
//! `custody-log fsck` run on it.

use custody_standards::hash::sha256;

use super::{Manifest, SignatureFormat};
use crate::oms::{OmsBundle, OmsError, OmsFiles, OmsKeyError, OmsMismatch, OmsPublicKey};

/// Why a manifest's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The manifest names no signature.
    #[error("the manifest names no signature")]
    Absent,
    /// The signature bytes are not the ones the manifest names.
    #[error("the signature file is not the one the manifest names (digest or size differ)")]
    Digest,
    /// The manifest's public key is not a P-256 SubjectPublicKeyInfo PEM.
    #[error("the manifest's signature key: {0}")]
    Key(#[from] OmsKeyError),
    /// The manifest's public key is not written as `to_pem` writes it (one
    /// key, one spelling, so one manifest digest).
    #[error("the manifest's signature key is not in its canonical PEM form")]
    KeyNotCanonical,
    /// The bundle does not parse or does not verify with that key.
    #[error("the OpenSSF model signature: {0}")]
    Bundle(#[from] OmsError),
    /// It verifies, but signs other files than the manifest lists.
    #[error("the OpenSSF model signature does not sign the manifest's files: {0}")]
    Mismatch(#[from] OmsMismatch),
}

impl Manifest {
    /// Checks `bundle` as the manifest's signature: the bytes it names, a
    /// canonical P-256 key, a bundle that verifies with that key, and a
    /// signed file list equal to the manifest's (paths and digests).
    pub fn check_signature(&self, bundle: &[u8]) -> Result<OmsFiles, SignatureError> {
        let sig = self.signature.as_ref().ok_or(SignatureError::Absent)?;
        match sig.format {
            SignatureFormat::Oms => {}
        }
        if sha256(bundle) != sig.digest.0 || bundle.len() as u64 != sig.size {
            return Err(SignatureError::Digest);
        }
        let key = OmsPublicKey::from_pem(&sig.public_key)?;
        if key.to_pem() != sig.public_key {
            return Err(SignatureError::KeyNotCanonical);
        }
        let signed = OmsBundle::parse(bundle)?.verify(&key)?;
        let listed: Vec<(String, [u8; 32])> =
            self.files.iter().map(|f| (f.path.as_str().to_owned(), f.digest.0 .0)).collect();
        signed.compare(&listed)?;
        Ok(signed)
    }
}
