//! Note keys: key IDs, verifier keys (`vkey`) and signer keys, in the text
//! formats of golang.org/x/mod/sumdb/note that C2SP signed-note adopts.
//!
//! - verifier key ([signed-note, Verifier keys](https://c2sp.org/signed-note#verifier-keys)):
//!   `<name>+<hex8 key ID>+<base64(type || public key)>`
//! - signer key (not in the C2SP specs; the format of Go's
//!   [`note.NewSigner`](https://pkg.go.dev/golang.org/x/mod/sumdb/note#hdr-Signing_Notes),
//!   "a plain text string of the form `PRIVATE+KEY+<name>+<hash>+<keydata>`"):
//!   `PRIVATE+KEY+<name>+<hex8 key ID>+<base64(type || seed)>`
//!
//! Key IDs follow [signed-note, Signatures](https://c2sp.org/signed-note#signatures)
//! and, for type `0x04`, [tlog-cosignature, Format](https://c2sp.org/tlog-cosignature#format).
//! Only the two Ed25519 signature types Custody needs are supported
//! ([signed-note, Signature types](https://c2sp.org/signed-note#signature-types):
//! "implementations SHOULD select only the one(s) required"):
//! `0x01` (plain Ed25519, used by logs) and `0x04` (cosignature/v1, used by
//! witnesses). Any other type is rejected by name, not silently ignored.
//!
//! Verification compatibility: Go's `ed25519.Verify` is the reference
//! implementation for these formats, and it is *cofactorless* but not
//! "strict" (it accepts small-order `R`). We therefore verify with
//! ed25519-dalek's `verify` (same equation, canonical `S` required), not
//! `verify_strict`, so we never reject a signature Go accepts. Instead we
//! refuse *weak* (small-order) public keys when a key is parsed: such keys
//! make forgeries trivial and no honest key is ever weak.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of plain Ed25519 note signatures (signed-note).
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (tlog-cosignature, cosignature/v1).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// Size of an Ed25519 public key and of an Ed25519 seed.
pub const ED25519_KEY_SIZE: usize = 32;
/// Size of an Ed25519 signature.
pub const ED25519_SIGNATURE_SIZE: usize = 64;
/// Longest key string accepted, checked before any decoding so hostile
/// configuration cannot make us allocate or hash unbounded input.
pub const MAX_KEY_STRING_LEN: usize = 1024;

const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key string or key material was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The string does not have the `name+hex8+base64` shape.
    #[error("malformed key: {0}")]
    Malformed(&'static str),
    /// Key name empty, or containing a space, `+` or a control character.
    #[error("invalid key name {0:?}")]
    InvalidName(String),
    /// The embedded key ID is not the one computed from name, type and key.
    #[error("key ID {embedded:08x} does not match computed {computed:08x}")]
    KeyIdMismatch {
        /// Key ID written in the key string.
        embedded: u32,
        /// Key ID derived per signed-note.
        computed: u32,
    },
    /// A signature type this implementation does not support.
    #[error("unsupported signature type 0x{0:02x} (supported: 0x01 Ed25519, 0x04 cosignature/v1)")]
    UnsupportedType(u8),
    /// Key material of the wrong length for its type.
    #[error("key material for type 0x{sig_type:02x} must be 32 bytes, got {len}")]
    KeyLength {
        /// Signature type byte.
        sig_type: u8,
        /// Length found.
        len: usize,
    },
    /// Not a valid Ed25519 point, or a small-order (weak) one.
    #[error("invalid or weak Ed25519 public key")]
    InvalidPublicKey,
    /// A key of one type was used where another is required.
    #[error("wrong key type: expected 0x{expected:02x}, got 0x{got:02x}")]
    WrongType {
        /// Type required by the caller.
        expected: u8,
        /// Type of the key given.
        got: u8,
    },
}

/// `SHA-256(name || 0x0A || type || public key)[:4]` read big-endian
/// (signed-note, "It is RECOMMENDED that key IDs be ..."; tlog-cosignature
/// makes it a MUST for `0x04`).
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode
/// spaces or plus (U+002B) characters." We also refuse ASCII control
/// characters, since a name containing one could never appear in a valid
/// note. `char::is_whitespace` is the Unicode White_Space property, the same
/// set as Go's `unicode.IsSpace`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || (c as u32) < 0x20)
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(KeyError::InvalidName(name.to_owned()))
    }
}

fn check_type(sig_type: u8) -> Result<(), KeyError> {
    match sig_type {
        SIG_TYPE_ED25519 | SIG_TYPE_COSIGNATURE_V1 => Ok(()),
        other => Err(KeyError::UnsupportedType(other)),
    }
}

/// Splits `name+hex8+base64` and decodes the last two parts. The name is
/// everything before the first `+` (names cannot contain `+`); base64 may
/// contain `+`, so only the first two separators count.
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), KeyError> {
    let (name, rest) = s.split_once('+').ok_or(KeyError::Malformed("missing '+' separators"))?;
    let (hex8, b64) = rest.split_once('+').ok_or(KeyError::Malformed("missing '+' separators"))?;
    check_name(name)?;
    // Exactly 8 lowercase hex digits: the form every implementation emits
    // (`%08x`), so a key string has one spelling.
    if hex8.len() != 8 || !hex8.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(KeyError::Malformed("key ID is not 8 lowercase hex digits"));
    }
    let id = u32::from_str_radix(hex8, 16).map_err(|_| KeyError::Malformed("key ID is not hex"))?;
    let raw =
        STANDARD.decode(b64).map_err(|_| KeyError::Malformed("key material is not canonical base64"))?;
    if raw.is_empty() {
        return Err(KeyError::Malformed("empty key material"));
    }
    Ok((name, id, raw))
}

fn split_material(raw: &[u8]) -> Result<(u8, [u8; ED25519_KEY_SIZE]), KeyError> {
    let (&sig_type, key) = raw.split_first().ok_or(KeyError::Malformed("empty key material"))?;
    check_type(sig_type)?;
    let key: [u8; ED25519_KEY_SIZE] =
        key.try_into().map_err(|_| KeyError::KeyLength { sig_type, len: key.len() })?;
    Ok((sig_type, key))
}

/// A trusted public key: what a client is configured with to recognise and
/// check one signer's note signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    sig_type: u8,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Builds a verifier key from its parts, computing the key ID.
    pub fn new(name: &str, sig_type: u8, public_key: [u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        check_name(name)?;
        check_type(sig_type)?;
        let key = VerifyingKey::from_bytes(&public_key).map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(VerifierKey { name: name.to_owned(), key_id: key_id(name, sig_type, &public_key), sig_type, key })
    }

    /// Parses `<name>+<hex8>+<base64(type || key)>`, rejecting a key ID that
    /// does not match the derivation (a mismatch means a corrupted or
    /// tampered configuration, never something to trust).
    ///
    /// Format: [signed-note, Verifier keys](https://c2sp.org/signed-note#verifier-keys);
    /// key ID: `SHA-256(key name || 0x0A || signature type || public key)[:4]`
    /// ([signed-note, Signatures](https://c2sp.org/signed-note#signatures)).
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::keys::{KeyError, VerifierKey, SIG_TYPE_ED25519};
    ///
    /// // The verifier key from the golang.org/x/mod/sumdb/note documentation.
    /// let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    /// let key = VerifierKey::parse(vkey)?;
    /// assert_eq!(key.name(), "PeterNeumann");
    /// assert_eq!(key.key_id(), 0xc74f20a3);
    /// assert_eq!(key.sig_type(), SIG_TYPE_ED25519);
    /// assert_eq!(key.to_string(), vkey);
    ///
    /// // The same key with a key ID that does not match its derivation.
    /// assert_eq!(
    ///     VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ///     Err(KeyError::KeyIdMismatch { embedded: 0xc74f20a4, computed: 0xc74f20a3 })
    /// );
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.len() > MAX_KEY_STRING_LEN {
            return Err(KeyError::Malformed("key string too long"));
        }
        let (name, embedded, raw) = split_key(s)?;
        let computed = key_id(name, raw[0], &raw[1..]);
        if embedded != computed {
            return Err(KeyError::KeyIdMismatch { embedded, computed });
        }
        let (sig_type, key) = split_material(&raw)?;
        VerifierKey::new(name, sig_type, key)
    }

    /// Key name (for a log, its origin; for a witness, its identity).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID as derived by [`key_id`].
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signature type byte ([`SIG_TYPE_ED25519`] or [`SIG_TYPE_COSIGNATURE_V1`]).
    pub fn sig_type(&self) -> u8 {
        self.sig_type
    }

    /// The 32-byte Ed25519 public key; two vkeys are the same key (policy
    /// duplicate rule) exactly when these bytes are equal.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.key.to_bytes()
    }

    /// Raw Ed25519 check of `sig` over `msg` (Go-compatible, see module doc).
    /// Wrong-length signatures are simply invalid.
    pub fn verify_ed25519(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; ED25519_SIGNATURE_SIZE]>::try_from(sig) else {
            return false;
        };
        // Deliberately `verify`, not `verify_strict`: matches Go's
        // ed25519.Verify (cofactorless, canonical S, small-order R allowed).
        self.key.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
    }

    /// Checks the key has the type the caller's role requires (logs `0x01`,
    /// witnesses `0x04`).
    pub fn require_type(&self, expected: u8) -> Result<(), KeyError> {
        if self.sig_type == expected {
            Ok(())
        } else {
            Err(KeyError::WrongType { expected, got: self.sig_type })
        }
    }
}

impl fmt::Display for VerifierKey {
    /// The canonical vkey string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = Vec::with_capacity(1 + ED25519_KEY_SIZE);
        material.push(self.sig_type);
        material.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(material))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// A private signing key with its name. The Ed25519 secret lives in an
/// ed25519-dalek `SigningKey`, which zeroizes itself on drop; `Debug` never
/// prints it, and the only way to get the secret text out is the explicitly
/// named [`SignerKey::to_private_string`].
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_id: u32,
    sig_type: u8,
    key: SigningKey,
}

impl SignerKey {
    /// Derives a signer from a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, sig_type: u8, seed: &[u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        check_name(name)?;
        check_type(sig_type)?;
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, sig_type, key.verifying_key().as_bytes());
        Ok(SignerKey { name: name.to_owned(), key_id, sig_type, key })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex8>+<base64(type || seed)>`. The key ID
    /// is that of the *public* key, so it is checked after deriving it.
    ///
    /// The format is Go's ([`note.NewSigner`](https://pkg.go.dev/golang.org/x/mod/sumdb/note#hdr-Signing_Notes):
    /// "The encoding begins with the literal text `PRIVATE+KEY` to avoid
    /// confusion with the public server key"); the seed is the RFC 8032
    /// private key ([RFC 8032 section 5.1.5](https://www.rfc-editor.org/rfc/rfc8032#section-5.1.5)).
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::keys::{KeyError, SignerKey, VerifierKey};
    ///
    /// // The signer key from the golang.org/x/mod/sumdb/note documentation.
    /// let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    /// let signer = SignerKey::parse(skey)?;
    /// let vkey = VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")?;
    /// assert_eq!(signer.verifier(), vkey);
    /// assert_eq!(signer.to_private_string(), skey);
    ///
    /// // A public key is not a signer key, whatever it is called.
    /// assert_eq!(
    ///     SignerKey::parse(&vkey.to_string()).unwrap_err(),
    ///     KeyError::Malformed("missing PRIVATE+KEY+ prefix")
    /// );
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.len() > MAX_KEY_STRING_LEN {
            return Err(KeyError::Malformed("key string too long"));
        }
        let rest =
            s.strip_prefix(PRIVATE_PREFIX).ok_or(KeyError::Malformed("missing PRIVATE+KEY+ prefix"))?;
        let (name, embedded, raw) = split_key(rest)?;
        let (sig_type, seed) = split_material(&raw)?;
        let signer = SignerKey::from_seed(name, sig_type, &seed)?;
        if signer.key_id != embedded {
            return Err(KeyError::KeyIdMismatch { embedded, computed: signer.key_id });
        }
        Ok(signer)
    }

    /// The secret key string. Named loudly because whoever holds it can sign.
    pub fn to_private_string(&self) -> String {
        let mut material = Vec::with_capacity(1 + ED25519_KEY_SIZE);
        material.push(self.sig_type);
        material.extend_from_slice(self.key.as_bytes());
        let s = format!("{PRIVATE_PREFIX}{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(&material));
        material.iter_mut().for_each(|b| *b = 0);
        s
    }

    /// The matching public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            sig_type: self.sig_type,
            key: self.key.verifying_key(),
        }
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID of the public key.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signature type byte.
    pub fn sig_type(&self) -> u8 {
        self.sig_type
    }

    /// Raw, deterministic Ed25519 signature of `msg` (RFC 8032). Callers
    /// choose *what* to sign (note text, or cosignature/v1 message).
    pub fn sign_ed25519(&self, msg: &[u8]) -> [u8; ED25519_SIGNATURE_SIZE] {
        self.key.sign(msg).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("sig_type", &self.sig_type)
            .field("seed", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

    #[test]
    fn go_vectors_round_trip() {
        let v = VerifierKey::parse(PETER_VKEY).unwrap();
        assert_eq!(v.key_id(), 0xc74f20a3);
        assert_eq!(v.to_string(), PETER_VKEY);
        let s = SignerKey::parse(PETER_SKEY).unwrap();
        assert_eq!(s.to_private_string(), PETER_SKEY);
        assert_eq!(s.verifier(), v);
        assert!(!format!("{s:?}").contains("AYEKFALV"));
    }

    #[test]
    fn go_manglings_rejected() {
        // golang.org/x/mod note_test.go TestNewVerifier: every proper
        // substring and every single-byte increment must fail.
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let s = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(VerifierKey::parse(s).is_err(), "{s}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(VerifierKey::parse(s).is_err(), "{s}");
            }
        }
        // Wrong length and unknown type, each with a matching key ID.
        assert!(VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        assert_eq!(
            VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(KeyError::UnsupportedType(0x65))
        );
        let b = PETER_SKEY.as_bytes();
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(SignerKey::parse(s).is_err(), "{s}");
            }
        }
    }

    #[test]
    fn names_and_weak_keys() {
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{2003}b", "a\tb", "a\u{1}b"] {
            assert!(!is_valid_key_name(bad), "{bad:?}");
        }
        assert!(is_valid_key_name("example.com/log—1"));
        // The identity point (y = 1) is small-order: refused.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert_eq!(VerifierKey::new("x", SIG_TYPE_ED25519, id), Err(KeyError::InvalidPublicKey));
        assert_eq!(SignerKey::from_seed("x", 0x02, &[7; 32]).unwrap_err(), KeyError::UnsupportedType(0x02));
    }
}
