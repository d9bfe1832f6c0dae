//! Key-encryption keys: the [`Kek`] trait that wraps and unwraps data keys,
//! its file (or environment) implementation, and the [`Keyring`] a server
//! reads with (the current KEK, plus the previous one during a rotation).
//!
//! A cloud KMS fits behind [`Kek`]: `wrap` is its Encrypt call with the
//! context as encryption context (AAD), `unwrap` its Decrypt, `id` the key's
//! name or ARN. Calls are synchronous and made from blocking code or per
//! artifact open, never per chunk.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit as _, Nonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::format::random;
use super::SealError;

/// Bytes of a data key (AES-256).
pub const KEY_LEN: usize = 32;
/// Largest KEK file read (64 hex digits and a newline, with room to spare).
const MAX_KEK_FILE: u64 = 1024;

/// A per-artifact data key; wiped from memory when dropped.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, SealError> {
        Ok(DataKey(Zeroizing::new(random()?)))
    }

    /// The key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(Zeroizing::new(bytes))
    }

    pub(crate) fn as_key(&self) -> &Key<Aes256Gcm> {
        Key::<Aes256Gcm>::from_slice(&self.0[..])
    }

    fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// A key-encryption key: wraps data keys under a context (the AAD binding
/// a wrapped key to the artifact it opens) and unwraps them.
pub trait Kek: Send + Sync + fmt::Debug {
    /// Stable identifier, recorded with every key it wraps.
    fn id(&self) -> &str;
    /// `dek` wrapped under `context`; opaque bytes.
    fn wrap(&self, dek: &DataKey, context: &[u8]) -> Result<Vec<u8>, SealError>;
    /// The key `wrap` wrapped under the same `context`; fails on any other
    /// bytes, context or KEK.
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, SealError>;
}

/// A KEK held locally: from a 0600 file of 64 hex digits, or from an
/// environment variable with the same text. Wrapping is AES-256-GCM with
/// a random 96-bit nonce: `nonce (12) || ciphertext (32) || tag (16)`.
pub struct FileKek {
    id: String,
    cipher: Aes256Gcm,
}

impl fmt::Debug for FileKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKek").field("id", &self.id).finish_non_exhaustive()
    }
}

impl FileKek {
    /// The KEK in `path`, which must not be readable or writable by group
    /// or others (the check `ssh` makes of private keys).
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::KekFile { path: path.to_owned(), source };
        let file = fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SealError::KekPermissions { path: path.to_owned(), mode: mode & 0o777 });
        }
        let mut text = Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_KEK_FILE), &mut text).map_err(io)?;
        Self::from_hex(&text, &path.display().to_string())
    }

    /// The KEK from its hex text (surrounding white space ignored);
    /// `source` names where it came from in errors.
    pub fn from_hex(text: &str, source: &str) -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut key[..])
            .map_err(|_| SealError::KekFormat(source.to_owned()))?;
        Ok(Self::from_bytes(&key))
    }

    /// The KEK of these bytes.
    pub fn from_bytes(key: &[u8; KEY_LEN]) -> Self {
        let mut h = Sha256::new();
        h.update(b"custody-kek-id-v1\0");
        h.update(key);
        let id = format!("file:{}", hex::encode(&h.finalize()[..8]));
        FileKek { id, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// Writes a fresh random KEK to `path` (mode 0600; the file must not
    /// exist) and returns it.
    pub fn generate(path: &Path) -> Result<Self, SealError> {
        let key = Zeroizing::new(random::<KEY_LEN>()?);
        let text = Zeroizing::new(format!("{}\n", hex::encode(&key[..])));
        let io = |source| SealError::KekFile { path: path.to_owned(), source };
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io)?;
        Ok(Self::from_bytes(&key))
    }
}

impl Kek for FileKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, dek: &DataKey, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; 12] = random()?;
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &dek.bytes()[..], aad: context })
            .map_err(|_| SealError::Wrap(self.id.clone()))?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, SealError> {
        let bad = || SealError::Unwrap(self.id.clone());
        if wrapped.len() != 12 + KEY_LEN + 16 {
            return Err(bad());
        }
        let (nonce, ct) = wrapped.split_at(12);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context })
                .map_err(|_| bad())?,
        );
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&plain);
        Ok(DataKey::from_bytes(key))
    }
}

/// Where a KEK comes from: a key file or the text of an environment
/// variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// A 0600 file of 64 hex digits.
    File(PathBuf),
    /// An environment variable (by name) holding the same text.
    Env(String),
}

impl KekSource {
    /// Loads the KEK.
    pub fn load(&self) -> Result<Arc<dyn Kek>, SealError> {
        match self {
            KekSource::File(p) => Ok(Arc::new(FileKek::from_file(p)?)),
            KekSource::Env(name) => {
                let text = Zeroizing::new(std::env::var(name).map_err(|_| SealError::KekEnv(name.clone()))?);
                Ok(Arc::new(FileKek::from_hex(&text, &format!("${name}"))?))
            }
        }
    }
}

/// The KEKs a store reads with: new keys are wrapped by `current`; a key
/// wrapped by `previous` (during a rotation) still opens.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: Arc<dyn Kek>,
    previous: Option<Arc<dyn Kek>>,
}

impl Keyring {
    /// A keyring of `current` and, during a rotation, `previous`.
    pub fn new(current: Arc<dyn Kek>, previous: Option<Arc<dyn Kek>>) -> Self {
        Keyring { current, previous }
    }

    /// The KEK new data keys are wrapped by.
    pub fn current(&self) -> &Arc<dyn Kek> {
        &self.current
    }

    /// The KEK being rotated away from, if any.
    pub fn previous(&self) -> Option<&Arc<dyn Kek>> {
        self.previous.as_ref()
    }

    /// The configured KEK of `id`.
    pub fn get(&self, id: &str) -> Result<&Arc<dyn Kek>, SealError> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id() == id)
            .ok_or_else(|| SealError::UnknownKek { id: id.to_owned(), configured: self.ids() })
    }

    /// The configured KEK ids, current first.
    pub fn ids(&self) -> String {
        match &self.previous {
            Some(p) => format!("{} (previous: {})", self.current.id(), p.id()),
            None => self.current.id().to_owned(),
        }
    }
}
