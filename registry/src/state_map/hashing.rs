//! The three hash shapes of the state map and the key-path bit order.
//!
//! Leaves and internal nodes are domain separated (`0x00` / `0x01`, as in
//! RFC 9162 section 2.1.1), so a leaf can never be passed off as an internal
//! node. The empty subtree is the all-zero value rather than a hash of
//! something: no SHA-256 output is known to be zero, so a proof can never
//! open [`EMPTY`] into children.

use custody_standards::hash::{Hash, HASH_SIZE};
// The 65-byte message on the compression function directly: the
// proof-verification and seal hot paths hash nothing else.
use custody_standards::sha256_once::hash65;

/// Hash of an empty subtree, and root of the empty map: 32 zero bytes.
pub const EMPTY: Hash = Hash([0; HASH_SIZE]);

/// Depth of the tree: one level per bit of a key hash.
pub const KEY_BITS: usize = 8 * HASH_SIZE;

/// `SHA-256(0x00 || key_hash || value_hash)`: the hash of a subtree that
/// holds exactly one entry, wherever that entry sits below it.
pub fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    hash65(0x00, key, value)
}

/// `SHA-256(0x01 || left || right)`: the hash of a subtree holding two or
/// more entries.
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    hash65(0x01, left, right)
}

/// Bit `i` (0..256) of a key's path: most significant bit of byte 0 first;
/// `false` goes left, `true` goes right.
pub(crate) fn bit(key: &Hash, i: usize) -> bool {
    (key.0[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// Whether `a` and `b` agree on their first `n` bits (`n <= 256`).
pub(crate) fn shares_prefix(a: &Hash, b: &Hash, n: usize) -> bool {
    let full = n / 8;
    if a.0[..full] != b.0[..full] {
        return false;
    }
    let rest = n % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a.0[full] ^ b.0[full]) & mask == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_msb_first() {
        let mut k = [0u8; 32];
        k[0] = 0b1000_0000;
        k[1] = 0b0000_0001;
        let k = Hash(k);
        assert!(bit(&k, 0));
        assert!(!bit(&k, 1));
        assert!(!bit(&k, 8));
        assert!(bit(&k, 15));
    }

    #[test]
    fn prefix_counts_bits() {
        let a = Hash([0; 32]);
        let mut b = [0u8; 32];
        b[1] = 0b0010_0000; // differs at bit 10
        let b = Hash(b);
        for n in 0..=10 {
            assert!(shares_prefix(&a, &b, n), "{n}");
        }
        for n in 11..=256 {
            assert!(!shares_prefix(&a, &b, n), "{n}");
        }
        assert!(shares_prefix(&a, &a, 256));
    }

    #[test]
    fn leaf_and_internal_are_domain_separated() {
        use sha2::{Digest, Sha256};
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        assert_ne!(leaf_hash(&a, &b), internal_hash(&a, &b));
        let mut manual = vec![0x00];
        manual.extend_from_slice(&a.0);
        manual.extend_from_slice(&b.0);
        assert_eq!(leaf_hash(&a, &b), Hash(Sha256::digest(&manual).into()));
        manual[0] = 0x01;
        assert_eq!(internal_hash(&a, &b), Hash(Sha256::digest(&manual).into()));
    }
}
