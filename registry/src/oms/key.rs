//! The ECDSA P-256 public key an OpenSSF model-signing bundle verifies
//! with, read from the SubjectPublicKeyInfo PEM that `openssl ec -pubout`
//! and Python's `cryptography` write.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::der::Document;
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding, ObjectIdentifier};
use sha2::{Digest as _, Sha256};

use custody_standards::encoding::encode_hex;

/// Longest PEM accepted, checked before decoding. A P-256 key's PEM is 178
/// bytes; 4 KiB leaves room for CRLF line ends and surrounding whitespace
/// while refusing anything that is plainly not one key.
pub const MAX_PUBLIC_KEY_PEM_BYTES: usize = 4096;

/// `id-ecPublicKey` (RFC 5480 section 2.1.1): the algorithm of every EC key.
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / `prime256v1` (RFC 5480 section 2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1`, which model_signing also signs with: named in the error.
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `secp521r1`, likewise.
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OmsKeyError {
    /// More than [`MAX_PUBLIC_KEY_PEM_BYTES`].
    #[error("public key PEM is {0} bytes, the limit is {MAX_PUBLIC_KEY_PEM_BYTES}")]
    TooLarge(usize),
    /// Not one RFC 7468 PEM block.
    #[error("not a PEM public key: {0}")]
    Pem(String),
    /// A PEM block other than `PUBLIC KEY` (e.g. a private key).
    #[error("PEM label is {0:?}, expected \"PUBLIC KEY\" (SubjectPublicKeyInfo)")]
    Label(String),
    /// Not a DER SubjectPublicKeyInfo.
    #[error("not a SubjectPublicKeyInfo: {0}")]
    Spki(String),
    /// A key of another algorithm (RSA, Ed25519, ...).
    #[error("public key algorithm {0} is not ECDSA (id-ecPublicKey)")]
    NotEcdsa(String),
    /// An EC key on a curve other than P-256.
    #[error("ECDSA key on curve {0}; only P-256 (prime256v1) is supported")]
    UnsupportedCurve(String),
    /// The point is not on P-256 or is not a valid encoding.
    #[error("invalid P-256 public key: {0}")]
    InvalidPoint(String),
}

/// An ECDSA P-256 public key, as model_signing's `sign key` / `verify key`
/// use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsPublicKey {
    key: VerifyingKey,
}

impl OmsPublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// The algorithm and curve are checked before the point, so a P-384
    /// key says "curve secp384r1" rather than a generic decoding error.
    pub fn from_pem(pem: &str) -> Result<Self, OmsKeyError> {
        if pem.len() > MAX_PUBLIC_KEY_PEM_BYTES {
            return Err(OmsKeyError::TooLarge(pem.len()));
        }
        let (label, doc) = Document::from_pem(pem.trim()).map_err(|e| OmsKeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(OmsKeyError::Label(label.to_owned()));
        }
        Self::from_spki_der(doc.as_bytes())
    }

    /// Reads a DER SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, OmsKeyError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| OmsKeyError::Spki(e.to_string()))?;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(OmsKeyError::NotEcdsa(spki.algorithm.oid.to_string()));
        }
        let curve = spki.algorithm.parameters_oid().map_err(|e| OmsKeyError::Spki(e.to_string()))?;
        if curve != SECP256R1 {
            let name = match curve {
                c if c == SECP384R1 => "secp384r1 (P-384)".to_owned(),
                c if c == SECP521R1 => "secp521r1 (P-521)".to_owned(),
                c => c.to_string(),
            };
            return Err(OmsKeyError::UnsupportedCurve(name));
        }
        let key =
            VerifyingKey::from_public_key_der(der).map_err(|e| OmsKeyError::InvalidPoint(e.to_string()))?;
        Ok(OmsPublicKey { key })
    }

    /// The canonical PEM: the SubjectPublicKeyInfo with an uncompressed
    /// point, base64 in 64-column lines, LF line ends, a final LF. This is
    /// byte for byte what Python's `cryptography` writes
    /// (`public_bytes(PEM, SubjectPublicKeyInfo)`), so [`Self::id`] matches
    /// the hint model_signing puts in its bundles.
    pub fn to_pem(&self) -> String {
        // Encoding a valid P-256 point cannot fail: the document is a fixed
        // 91-byte structure.
        self.key.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes as PEM")
    }

    /// The key's stable identifier: lowercase hex SHA-256 of
    /// [`Self::to_pem`]. model_signing 1.1.1 writes exactly this value as
    /// the bundle's `verificationMaterial.publicKey.hint`
    /// (`sign_ec_key.py`, `_get_verification_material`), so the same key
    /// has the same identifier here and in the tool.
    pub fn id(&self) -> String {
        encode_hex(&Sha256::digest(self.to_pem().as_bytes()))
    }

    /// Checks an ECDSA P-256 signature (ASN.1 DER, as model_signing's
    /// `cryptography` backend emits it) over `message` hashed with SHA-256,
    /// the hash model_signing pairs with a 256-bit key (`get_ec_key_hash`).
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify(message, signature).is_ok()
    }
}
