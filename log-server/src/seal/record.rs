//! The small records kept beside sealed artifacts: one key record per
//! stored copy (its wrapped data key) and one check record per store (proof
//! at start-up that the configured KEK is the store's).
//!
//! Both are JSON objects, so a record wrapped by another [`super::kms::Kek`]
//! implementation (a cloud KMS) has the same shape:
//!
//! ```text
//! key record   {"v":1,"kek":"<KEK id>","dek":"<base64 of the wrapped DEK>"}
//! check record {"v":1,"kek":"<KEK id>","check":"<base64 of a wrapped random key>"}
//! ```
//!
//! The wrap context (AAD) of a data key is `"custody-dek-v1\0" || digest
//! (32) || blob_id (16)`, so a key record copied to another artifact or
//! copy does not open; that of the check record is `"custody-kek-check-v1\0"`.

use custody_standards::encoding::{decode_base64_strict, encode_base64};
use custody_standards::Hash;
use serde::{Deserialize, Serialize};

use super::format::BLOB_ID_LEN;
use super::kms::{DataKey, Keyring};
use super::SealError;

/// Largest record read (a wrapped key is far smaller; a cloud KMS's
/// ciphertext blob is a few hundred bytes).
pub const MAX_RECORD: usize = 4096;
/// Record version.
const VERSION: u8 = 1;

/// The wrap context of the data key of one stored copy.
pub fn dek_context(digest: &Hash, blob_id: &[u8; BLOB_ID_LEN]) -> Vec<u8> {
    [b"custody-dek-v1\0".as_slice(), &digest.0, blob_id].concat()
}

const CHECK_CONTEXT: &[u8] = b"custody-kek-check-v1\0";

/// A wrapped data key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Format version.
    pub v: u8,
    /// Id of the KEK that wrapped it.
    pub kek: String,
    /// The wrapped key (base64).
    pub dek: String,
}

impl KeyRecord {
    /// Wraps `dek` of the copy `blob_id` of `digest` with the current KEK.
    pub fn wrap(
        keys: &Keyring,
        dek: &DataKey,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Self, SealError> {
        let kek = keys.current();
        let wrapped = kek.wrap(dek, &dek_context(digest, blob_id))?;
        Ok(KeyRecord { v: VERSION, kek: kek.id().to_owned(), dek: encode_base64(&wrapped) })
    }

    /// Unwraps the data key with the configured KEK the record names.
    pub fn unwrap(
        &self,
        keys: &Keyring,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<DataKey, SealError> {
        let wrapped =
            decode_base64_strict(&self.dek).ok_or(SealError::Record("wrapped key is not base64"))?;
        keys.get(&self.kek)?.unwrap(&wrapped, &dek_context(digest, blob_id))
    }

    /// The same data key wrapped by the current KEK (rotation); `None` if
    /// it already is.
    pub fn rewrapped(
        &self,
        keys: &Keyring,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Option<Self>, SealError> {
        if self.kek == keys.current().id() {
            return Ok(None);
        }
        let dek = self.unwrap(keys, digest, blob_id)?;
        Self::wrap(keys, &dek, digest, blob_id).map(Some)
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serializes")
    }

    /// Parses stored bytes (at most [`MAX_RECORD`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, SealError> {
        parse(bytes)
    }
}

/// Proof that a KEK is the one a store is sealed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    /// Format version.
    pub v: u8,
    /// Id of the KEK it is sealed under.
    pub kek: String,
    /// A random key wrapped by that KEK (base64).
    pub check: String,
}

impl CheckRecord {
    /// A check record for the current KEK.
    pub fn new(keys: &Keyring) -> Result<Self, SealError> {
        let kek = keys.current();
        let wrapped = kek.wrap(&DataKey::generate()?, CHECK_CONTEXT)?;
        Ok(CheckRecord { v: VERSION, kek: kek.id().to_owned(), check: encode_base64(&wrapped) })
    }

    /// Succeeds if a configured KEK opens the record: the start-up check
    /// that turns a wrong KEK into a clear error before anything is served.
    pub fn verify(&self, keys: &Keyring) -> Result<(), SealError> {
        let wrong = || SealError::WrongKek { store: self.kek.clone(), configured: keys.ids() };
        let kek = keys.get(&self.kek).map_err(|_| wrong())?;
        let wrapped = decode_base64_strict(&self.check).ok_or(SealError::Record("check is not base64"))?;
        kek.unwrap(&wrapped, CHECK_CONTEXT).map(drop).map_err(|_| wrong())
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serializes")
    }

    /// Parses stored bytes (at most [`MAX_RECORD`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, SealError> {
        parse(bytes)
    }
}

fn parse<T: serde::de::DeserializeOwned + Versioned>(bytes: &[u8]) -> Result<T, SealError> {
    if bytes.len() > MAX_RECORD {
        return Err(SealError::Record("record too large"));
    }
    let r: T = serde_json::from_slice(bytes).map_err(|_| SealError::Record("record is not valid JSON"))?;
    if r.version() != VERSION {
        return Err(SealError::Record("unknown record version"));
    }
    Ok(r)
}

trait Versioned {
    fn version(&self) -> u8;
}

impl Versioned for KeyRecord {
    fn version(&self) -> u8 {
        self.v
    }
}

impl Versioned for CheckRecord {
    fn version(&self) -> u8 {
        self.v
    }
}
