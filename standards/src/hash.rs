//! RFC 6962 / RFC 9162 section 2.1.1 hashing: the only three hash shapes a
//! Merkle log ever computes
//! ([RFC 9162 section 2.1.1](https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1),
//! "Definition of the Merkle Tree").
//!
//! Domain separation (`0x00` for leaves, `0x01` for interior nodes) is what
//! stops a leaf from being passed off as an interior node, so every hash in the
//! crate goes through these functions rather than calling SHA-256 directly.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Size in bytes of every hash in the log (SHA-256).
pub const HASH_SIZE: usize = 32;

/// A SHA-256 value: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// Why bytes or text could not be read as a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Raw bytes of the wrong length.
    #[error("a hash is {HASH_SIZE} bytes, got {0}")]
    Length(usize),
    /// Text that is not canonical standard base64 of exactly 32 bytes.
    #[error("not canonical base64 of a 32-byte hash")]
    Base64,
    /// Text that is not 64 lowercase hex digits.
    #[error("not 64 lowercase hex digits")]
    Hex,
}

impl Hash {
    /// Copies a hash out of a 32-byte slice: the form hashes take in tile
    /// bodies ([tlog-tiles, Merkle Tree](https://c2sp.org/tlog-tiles#merkle-tree):
    /// "Full tiles MUST be exactly 256 hashes wide, or 8,192 bytes").
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::hash::{empty_root, Hash, HashError};
    ///
    /// let bytes = empty_root().0;
    /// assert_eq!(Hash::from_slice(&bytes)?, empty_root());
    ///
    /// // A truncated hash is refused, with the length it had.
    /// assert_eq!(Hash::from_slice(&bytes[..31]), Err(HashError::Length(31)));
    /// # Ok::<(), HashError>(())
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashError> {
        let arr: [u8; HASH_SIZE] = bytes.try_into().map_err(|_| HashError::Length(bytes.len()))?;
        Ok(Hash(arr))
    }

    /// Standard base64 with padding (RFC 4648 section 4), as used by
    /// checkpoints, proofs and tlog-proof bundles.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Strict inverse of [`Hash::to_base64`]: padding is required and
    /// non-zero trailing bits are rejected, so every hash has exactly one
    /// accepted text form (a signed text must not have look-alike variants).
    ///
    /// This is the root hash line of a checkpoint ([tlog-checkpoint, Note
    /// text](https://c2sp.org/tlog-checkpoint#note-text): "the base64
    /// encoding of the root of the RFC 6962 Merkle hash tree") and each proof
    /// line of [tlog-witness](https://c2sp.org/tlog-witness#add-checkpoint)
    /// and [tlog-proof](https://c2sp.org/tlog-proof#format) bodies.
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::hash::{empty_root, Hash, HashError};
    ///
    /// // Known answer: SHA-256 of nothing, the root of the empty tree.
    /// let h = Hash::from_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")?;
    /// assert_eq!(h, empty_root());
    ///
    /// // The last character differs only in two unused bits: the same 32
    /// // bytes spelled another way, refused.
    /// assert_eq!(
    ///     Hash::from_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV="),
    ///     Err(HashError::Base64)
    /// );
    /// // So is the unpadded spelling.
    /// assert!(Hash::from_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU").is_err());
    /// # Ok::<(), HashError>(())
    /// ```
    pub fn from_base64(text: &str) -> Result<Self, HashError> {
        // 32 bytes always encode to 44 characters; checking first bounds the
        // work done on hostile input.
        if text.len() != 44 {
            return Err(HashError::Base64);
        }
        let bytes = STANDARD.decode(text).map_err(|_| HashError::Base64)?;
        Hash::from_slice(&bytes).map_err(|_| HashError::Base64)
    }

    /// Lowercase hex, the form used in URLs and digests.
    pub fn to_hex(&self) -> String {
        crate::encoding::encode_hex(&self.0)
    }

    /// Strict inverse of [`Hash::to_hex`]: exactly 64 lowercase hex digits
    /// ([RFC 4648 section 8](https://www.rfc-editor.org/rfc/rfc4648#section-8)
    /// alphabet, lowercase only, so a digest has one spelling).
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::hash::{empty_root, Hash, HashError};
    ///
    /// // Known answer: SHA-256("") = e3b0c442...b855.
    /// let h = Hash::from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")?;
    /// assert_eq!(h, empty_root());
    ///
    /// // The uppercase spelling of the same digest is refused.
    /// assert_eq!(
    ///     Hash::from_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
    ///     Err(HashError::Hex)
    /// );
    /// # Ok::<(), HashError>(())
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, HashError> {
        let t = text.as_bytes();
        if t.len() != 2 * HASH_SIZE {
            return Err(HashError::Hex);
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(HashError::Hex),
        };
        let mut out = [0u8; HASH_SIZE];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (nibble(t[2 * i])? << 4) | nibble(t[2 * i + 1])?;
        }
        Ok(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `MTH({d}) = SHA-256(0x00 || d)` (RFC 9162 section 2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 || left || right)` (RFC 9162 section 2.1.1).
///
/// The hottest function of the log (one per appended leaf, about 30 per
/// proof checked), so it runs the SHA-256 compression function on the two
/// blocks the 65-byte message pads to directly
/// ([`crate::sha256_once::hash65`]), without the streaming buffer of the
/// `Digest` interface; `node_hash_is_sha256_of_the_node` checks it against
/// that interface.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    crate::sha256_once::hash65(0x01, left, right)
}

/// `MTH({}) = SHA-256()`, the root of the empty tree (RFC 9162 section 2.1.1).
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// Plain SHA-256, for digests of artifacts and key IDs (not tree hashing).
///
/// Short messages (key IDs, the registry's small domain-separated hashes)
/// skip the streaming interface ([`crate::sha256_once`]).
pub fn sha256(data: &[u8]) -> Hash {
    crate::sha256_once::sha256_concat(&[data])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_hash_is_sha256_of_the_node() {
        let mut left = Hash([0; 32]);
        let mut right = Hash([0xff; 32]);
        for i in 0..512u32 {
            let mut buf = vec![0x01];
            buf.extend_from_slice(&left.0);
            buf.extend_from_slice(&right.0);
            let expected = Hash(Sha256::digest(&buf).into());
            assert_eq!(node_hash(&left, &right), expected, "round {i}");
            left = sha256(&i.to_be_bytes());
            right = expected;
        }
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(empty_root().to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        // RFC 6962 reference vector: leaf hash of the empty string.
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let l = leaf_hash(b"a");
        assert_ne!(node_hash(&l, &l), leaf_hash(&[[0x01].as_slice(), &l.0, &l.0].concat()));
        let mut manual = vec![0x01];
        manual.extend_from_slice(&l.0);
        manual.extend_from_slice(&l.0);
        assert_eq!(node_hash(&l, &l), sha256(&manual));
    }

    #[test]
    fn base64_is_strict() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()).unwrap(), h);
        // Non-canonical trailing bits: change the last data character so the
        // two unused low bits become non-zero.
        let mut s = h.to_base64().into_bytes();
        let last = s.len() - 2; // before the single '='
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pos = alphabet.iter().position(|&c| c == s[last]).unwrap();
        s[last] = alphabet[(pos & !3) | ((pos + 1) & 3).max(1)];
        assert_eq!(Hash::from_base64(std::str::from_utf8(&s).unwrap()), Err(HashError::Base64));
        // Missing padding, wrong length, URL alphabet.
        assert!(Hash::from_base64(h.to_base64().trim_end_matches('=')).is_err());
        assert!(Hash::from_base64("AAAA").is_err());
        let url = h.to_base64().replace('+', "-").replace('/', "_");
        if url != h.to_base64() {
            assert!(Hash::from_base64(&url).is_err());
        }
    }

    #[test]
    fn hex_is_strict() {
        let h = leaf_hash(b"y");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(
            Hash::from_hex(&h.to_hex().to_uppercase()).is_err() || h.to_hex() == h.to_hex().to_uppercase()
        );
        assert!(Hash::from_hex(&h.to_hex()[1..]).is_err());
        assert!(Hash::from_hex(&format!("{}0", h.to_hex())).is_err());
        assert!(Hash::from_hex(&"g".repeat(64)).is_err());
    }
}
