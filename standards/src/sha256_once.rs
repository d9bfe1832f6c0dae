//! One-shot SHA-256 of short messages, straight on the compression function.
//!
//! A registry's replay hashes several short messages per statement (state
//! keys, chain steps, values, nonce fingerprints, the state map's 65-byte
//! nodes): tens of millions in an audit of a large log. Through the
//! streaming `Digest` interface each pays for its block buffer, its
//! generic finalisation and usually a heap buffer to concatenate domain and
//! message first. Here a message of up to [`MAX_SHORT`] bytes, given in
//! parts, is laid out once in two stack blocks with the padding of
//! [FIPS 180-4 section 5.1.1](https://nvlpubs.nist.gov/nistpubs/FIPS/NIST.FIPS.180-4.pdf)
//! ("append the bit 1, then zeros, then the message length in bits as a
//! 64-bit big-endian integer") and compressed directly; longer messages go
//! through the streaming interface. The result is SHA-256, byte for byte:
//! the tests compare every length across the block boundaries with `sha2`'s
//! own `Sha256::digest`.

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest as _, Sha256};

use crate::hash::{Hash, HASH_SIZE};

/// Longest message hashed on the stack: two blocks less the padding's
/// mandatory 0x80 byte and 8-byte length.
pub const MAX_SHORT: usize = 2 * BLOCK - 9;

const BLOCK: usize = 64;

/// FIPS 180-4 section 5.3.3.
const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// SHA-256 of the concatenation of `parts`, without concatenating them.
pub fn sha256_concat(parts: &[&[u8]]) -> Hash {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_SHORT {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        return Hash(h.finalize().into());
    }
    let mut buf = [0u8; 2 * BLOCK];
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    compress_padded(buf, len)
}

/// `SHA-256(tag || a || b)`: the 65-byte node of RFC 6962 trees (`tag`
/// 0x01) and of the registry's state map (leaf 0x00, node 0x01).
pub fn hash65(tag: u8, a: &Hash, b: &Hash) -> Hash {
    let mut buf = [0u8; 2 * BLOCK];
    buf[0] = tag;
    buf[1..1 + HASH_SIZE].copy_from_slice(&a.0);
    buf[1 + HASH_SIZE..1 + 2 * HASH_SIZE].copy_from_slice(&b.0);
    compress_padded(buf, 1 + 2 * HASH_SIZE)
}

/// Pads a message of `len` bytes (at most [`MAX_SHORT`]) already written at
/// the start of `buf` (zeros after it) and compresses the one or two
/// blocks it fills.
fn compress_padded(mut buf: [u8; 2 * BLOCK], len: usize) -> Hash {
    debug_assert!(len <= MAX_SHORT);
    buf[len] = 0x80;
    let used = if len + 9 <= BLOCK { 1 } else { 2 };
    buf[used * BLOCK - 8..used * BLOCK].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let blocks = [*GenericArray::from_slice(&buf[..BLOCK]), *GenericArray::from_slice(&buf[BLOCK..])];
    let mut state = INITIAL;
    sha2::compress256(&mut state, &blocks[..used]);
    let mut out = [0u8; HASH_SIZE];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    Hash(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    /// Every length from 0 to three blocks, each split into parts at every
    /// position (and into three parts around the block boundary), against
    /// the streaming interface: covers one and two padded blocks, the
    /// 55/56-byte and 119/120-byte edges, and the long path.
    #[test]
    fn every_length_and_split_is_sha256() {
        for len in 0..=3 * BLOCK {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let expected = reference(&data);
            assert_eq!(sha256_concat(&[&data]), expected, "len {len}");
            for cut in 0..=len {
                assert_eq!(sha256_concat(&[&data[..cut], &data[cut..]]), expected, "len {len} cut {cut}");
            }
            let (a, b) = (len.min(BLOCK - 1), len.min(BLOCK + 1));
            assert_eq!(sha256_concat(&[&data[..a], &[], &data[a..b], &data[b..]]), expected, "len {len}");
        }
    }

    /// FIPS 180-2 appendix B vectors ("abc" and the 56-byte message, which
    /// needs the second block for its length).
    #[test]
    fn known_answers() {
        assert_eq!(
            sha256_concat(&[b"a", b"bc"]).to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_concat(&[b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"]).to_hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256_concat(&[]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hash65_is_sha256_of_the_node() {
        let (mut a, mut b) = (Hash([0; 32]), Hash([0xff; 32]));
        for tag in [0u8, 1, 0xff] {
            for i in 0..64u8 {
                let node = [&[tag][..], &a.0, &b.0].concat();
                let expected = reference(&node);
                assert_eq!(hash65(tag, &a, &b), expected, "tag {tag} round {i}");
                a = expected;
                b = reference(&[i]);
            }
        }
    }
}
