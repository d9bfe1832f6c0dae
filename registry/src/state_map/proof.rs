//! State-map proofs: what they hold, their canonical bytes, and the checks a
//! verifier runs (docs/protocol.md, "Registry state map: tree and proofs").
//!
//! A proof for key `K` is the list of sibling hashes from the root down to
//! the depth `d` where `K`'s path reaches a subtree of at most one entry,
//! plus that subtree (the terminal): empty, or the lone entry there. The
//! verifier rebuilds the root from them; by collision resistance a root
//! opens one way only, so a proof that verifies is the only one that can.

use custody_standards::hash::{Hash, HASH_SIZE};

use super::hashing::{bit, internal_hash, leaf_hash, shares_prefix, EMPTY, KEY_BITS};

/// First byte of every encoded proof.
pub const PROOF_VERSION: u8 = 0x01;

const TERMINAL_EMPTY: u8 = 0x00;
const TERMINAL_LEAF: u8 = 0x01;

/// Longest possible encoding: version, terminal, a leaf's two hashes, the
/// depth, a full 256-bit bitmap and 256 siblings. Decoding refuses anything
/// longer before reading a byte of it.
pub const MAX_ENCODED_LEN: usize = 1 + 1 + 2 * HASH_SIZE + 2 + KEY_BITS / 8 + KEY_BITS * HASH_SIZE;

/// Where a proof's walk along the key's path stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// The subtree on the key's path is empty: the key is absent.
    Empty,
    /// The subtree on the key's path holds exactly this entry. The proven
    /// key is present iff `key_hash` is that key; otherwise it is absent
    /// (it would have to sit below this lone leaf).
    Leaf {
        /// Key hash of the lone entry.
        key_hash: Hash,
        /// Its value hash.
        value_hash: Hash,
    },
}

/// A proof of one key's value, or of its absence, against a state-map root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The subtree where the walk stops.
    pub terminal: Terminal,
    /// Sibling hashes from the root (depth 0) down to depth `d - 1`;
    /// [`EMPTY`] where the sibling subtree is empty.
    pub siblings: Vec<Hash>,
}

/// Why bytes are not a canonically encoded proof.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// Longer than any proof can be.
    #[error("a state-map proof is at most {MAX_ENCODED_LEN} bytes, got {0}")]
    TooLong(usize),
    /// The input ends before the proof does.
    #[error("state-map proof truncated")]
    Truncated,
    /// Unknown format version.
    #[error("unknown state-map proof version {0:#04x}")]
    Version(u8),
    /// Unknown terminal tag.
    #[error("unknown state-map proof terminal {0:#04x}")]
    Terminal(u8),
    /// A depth beyond the tree's 256 levels.
    #[error("state-map proof depth {0} exceeds 256")]
    Depth(u16),
    /// Bits past the depth set in the last bitmap byte.
    #[error("state-map proof bitmap has nonzero padding bits")]
    BitmapPadding,
    /// A sibling spelled as 32 zero bytes instead of a clear bitmap bit.
    #[error("state-map proof sibling {0} is EMPTY but marked present in the bitmap")]
    EmptySibling(usize),
    /// Bytes after the last sibling.
    #[error("state-map proof has {0} trailing bytes")]
    Trailing(usize),
}

/// Why a proof does not show the claimed value (or absence) under a root.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// More siblings than the tree has levels.
    #[error("state-map proof depth {0} exceeds 256")]
    Depth(usize),
    /// A shape no canonical tree has: the deepest sibling is EMPTY (the
    /// parent would have collapsed), or an empty terminal at depth 256.
    #[error("state-map proof of depth {0} has a shape no canonical tree produces")]
    NonCanonical(usize),
    /// The terminal leaf does not lie on the key's path.
    #[error("state-map proof leaf does not share the key's first {0} bits")]
    PrefixMismatch(usize),
    /// The proof rebuilds a different root.
    #[error("state-map proof does not rebuild the root")]
    RootMismatch,
    /// The key is present, but with another value than claimed.
    #[error("state-map key is present with another value")]
    ValueMismatch,
    /// Absence was claimed, but the proof shows the key present.
    #[error("state-map key is present, absence was expected")]
    ExpectedAbsent,
    /// A value was claimed, but the proof shows the key absent.
    #[error("state-map key is absent, a value was expected")]
    ExpectedPresent,
}

/// Checks that `proof` shows `key` holding `value` under `root` (or, with
/// `value = None`, that `key` is absent). The steps of docs/protocol.md,
/// "Registry state map: tree and proofs", "Verifying a proof" (decoding,
/// the first half of step 1, is [`Proof::decode`]):
///
/// 1. `d` = number of siblings; `d > 256` is refused.
/// 2. Canonical shape: if `d > 0` the last sibling (depth `d - 1`) must not
///    be [`EMPTY`], for either terminal (the parent would hold at most one
///    entry and would have collapsed), and an empty terminal cannot be at
///    depth 256.
/// 3. A leaf terminal's key hash must share the first `d` bits with `key`.
/// 4. Start from [`EMPTY`] or the terminal's [`leaf_hash`]; for `i` from
///    `d - 1` down to 0, combine with sibling `i`, on the left if bit `i` of
///    `key` is 1, on the right if 0.
/// 5. The result must equal `root`.
/// 6. The key is present iff the terminal is a leaf with `key_hash == key`;
///    compare with the claim (and the value hash if present).
pub fn verify(root: &Hash, key: &Hash, value: Option<&Hash>, proof: &Proof) -> Result<(), VerifyError> {
    match (value, verified_value(root, key, proof)?) {
        (None, None) => Ok(()),
        (Some(want), Some(got)) if *want == got => Ok(()),
        (Some(_), Some(_)) => Err(VerifyError::ValueMismatch),
        (None, Some(_)) => Err(VerifyError::ExpectedAbsent),
        (Some(_), None) => Err(VerifyError::ExpectedPresent),
    }
}

/// Runs steps 1 to 5 of [`verify`] and returns what the proof shows:
/// `Some(value_hash)` if `key` is present under `root`, `None` if it is
/// absent. For a client that asks for a key's current value rather than
/// checking one it already expects.
pub fn verified_value(root: &Hash, key: &Hash, proof: &Proof) -> Result<Option<Hash>, VerifyError> {
    let d = proof.siblings.len();
    if d > KEY_BITS {
        return Err(VerifyError::Depth(d));
    }
    if proof.siblings.last() == Some(&EMPTY) || (d == KEY_BITS && proof.terminal == Terminal::Empty) {
        return Err(VerifyError::NonCanonical(d));
    }
    let mut h = match &proof.terminal {
        Terminal::Empty => EMPTY,
        Terminal::Leaf { key_hash, value_hash } => {
            if !shares_prefix(key_hash, key, d) {
                return Err(VerifyError::PrefixMismatch(d));
            }
            leaf_hash(key_hash, value_hash)
        }
    };
    for (i, s) in proof.siblings.iter().enumerate().rev() {
        h = if bit(key, i) { internal_hash(s, &h) } else { internal_hash(&h, s) };
    }
    if h != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(match &proof.terminal {
        Terminal::Leaf { key_hash, value_hash } if key_hash == key => Some(*value_hash),
        _ => None,
    })
}

impl Proof {
    /// Number of siblings: the depth where the walk stops.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The canonical bytes (docs/protocol.md):
    ///
    /// ```text
    /// u8   version 0x01
    /// u8   terminal: 0x00 empty, 0x01 leaf
    /// [32] key_hash, [32] value_hash    (leaf terminal only)
    /// u16  depth d, big-endian, 0..=256
    /// ceil(d/8) bytes: bit i (MSB first) set iff sibling i is not EMPTY
    /// [32] each non-EMPTY sibling, root to leaf
    /// ```
    ///
    /// A proof deeper than 256 (which [`verify`] refuses anyway) is encoded
    /// with its first 256 siblings only, so the output always decodes.
    pub fn encode(&self) -> Vec<u8> {
        let siblings = &self.siblings[..self.siblings.len().min(KEY_BITS)];
        let d = siblings.len();
        let present = siblings.iter().filter(|s| **s != EMPTY).count();
        let mut out = Vec::with_capacity(2 + 2 * HASH_SIZE + 2 + d.div_ceil(8) + present * HASH_SIZE);
        out.push(PROOF_VERSION);
        match &self.terminal {
            Terminal::Empty => out.push(TERMINAL_EMPTY),
            Terminal::Leaf { key_hash, value_hash } => {
                out.push(TERMINAL_LEAF);
                out.extend_from_slice(&key_hash.0);
                out.extend_from_slice(&value_hash.0);
            }
        }
        // d <= 256 fits in a u16.
        out.extend_from_slice(&(d as u16).to_be_bytes());
        let mut bitmap = vec![0u8; d.div_ceil(8)];
        for (i, s) in siblings.iter().enumerate() {
            if *s != EMPTY {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in siblings.iter().filter(|s| **s != EMPTY) {
            out.extend_from_slice(&s.0);
        }
        out
    }

    /// Strict inverse of [`Proof::encode`]: exactly one byte string is
    /// accepted per proof, so `decode(b)` succeeding implies
    /// `decode(b)?.encode() == b`.
    pub fn decode(bytes: &[u8]) -> Result<Proof, ProofError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ProofError::TooLong(bytes.len()));
        }
        let mut r = Reader(bytes);
        let version = r.byte()?;
        if version != PROOF_VERSION {
            return Err(ProofError::Version(version));
        }
        let terminal = match r.byte()? {
            TERMINAL_EMPTY => Terminal::Empty,
            TERMINAL_LEAF => Terminal::Leaf { key_hash: r.hash()?, value_hash: r.hash()? },
            t => return Err(ProofError::Terminal(t)),
        };
        let depth = u16::from_be_bytes([r.byte()?, r.byte()?]);
        if usize::from(depth) > KEY_BITS {
            return Err(ProofError::Depth(depth));
        }
        let d = usize::from(depth);
        let bitmap = r.take(d.div_ceil(8))?;
        if d % 8 != 0 && bitmap[d / 8] & (0xff >> (d % 8)) != 0 {
            return Err(ProofError::BitmapPadding);
        }
        let mut siblings = Vec::with_capacity(d);
        for i in 0..d {
            if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
                siblings.push(EMPTY);
                continue;
            }
            let s = r.hash()?;
            if s == EMPTY {
                return Err(ProofError::EmptySibling(i));
            }
            siblings.push(s);
        }
        if !r.0.is_empty() {
            return Err(ProofError::Trailing(r.0.len()));
        }
        Ok(Proof { terminal, siblings })
    }
}

/// A cursor over the input that never reads past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProofError> {
        if self.0.len() < n {
            return Err(ProofError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, ProofError> {
        Ok(self.take(1)?[0])
    }

    fn hash(&mut self) -> Result<Hash, ProofError> {
        let mut h = [0u8; HASH_SIZE];
        h.copy_from_slice(self.take(HASH_SIZE)?);
        Ok(Hash(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_proof(d: usize) -> Proof {
        Proof {
            terminal: Terminal::Leaf { key_hash: Hash([3; 32]), value_hash: Hash([4; 32]) },
            siblings: (0..d)
                .map(|i| if i % 3 == 1 { EMPTY } else { Hash([(i % 250) as u8 + 1; 32]) })
                .collect(),
        }
    }

    #[test]
    fn round_trips_at_every_depth() {
        for d in 0..=KEY_BITS {
            for p in [leaf_proof(d), Proof { terminal: Terminal::Empty, ..leaf_proof(d) }] {
                let b = p.encode();
                assert!(b.len() <= MAX_ENCODED_LEN);
                assert_eq!(Proof::decode(&b), Ok(p), "depth {d}");
            }
        }
    }

    #[test]
    fn max_len_is_reachable() {
        let p = Proof {
            terminal: Terminal::Leaf { key_hash: Hash([1; 32]), value_hash: Hash([1; 32]) },
            siblings: vec![Hash([9; 32]); KEY_BITS],
        };
        let b = p.encode();
        // The figure docs/protocol.md gives.
        assert_eq!(MAX_ENCODED_LEN, 8292);
        assert_eq!(b.len(), MAX_ENCODED_LEN);
        assert_eq!(Proof::decode(&b), Ok(p));
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(Proof::decode(&longer), Err(ProofError::TooLong(MAX_ENCODED_LEN + 1)));
    }

    #[test]
    fn decode_refuses_malformed_bytes() {
        let good = leaf_proof(10).encode();
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(Proof::decode(&v), Err(ProofError::Version(2)));
        let mut t = good.clone();
        t[1] = 2;
        assert_eq!(Proof::decode(&t), Err(ProofError::Terminal(2)));
        for n in 0..good.len() {
            assert_eq!(Proof::decode(&good[..n]), Err(ProofError::Truncated), "prefix {n}");
        }
        let mut tr = good.clone();
        tr.push(0);
        assert_eq!(Proof::decode(&tr), Err(ProofError::Trailing(1)));
        // Depth 257.
        let deep = [vec![PROOF_VERSION, TERMINAL_EMPTY], 257u16.to_be_bytes().to_vec()].concat();
        assert_eq!(Proof::decode(&deep), Err(ProofError::Depth(257)));
        // Depth 10: bitmap of two bytes, bits 10..15 must be clear.
        let bitmap_at = 2 + 64 + 2;
        let mut pad = good.clone();
        pad[bitmap_at + 1] |= 0x01;
        assert_eq!(Proof::decode(&pad), Err(ProofError::BitmapPadding));
        // A sibling of 32 zero bytes marked present.
        let zero_sib =
            [vec![PROOF_VERSION, TERMINAL_EMPTY], 1u16.to_be_bytes().to_vec(), vec![0x80], vec![0; 32]]
                .concat();
        assert_eq!(Proof::decode(&zero_sib), Err(ProofError::EmptySibling(0)));
    }

    #[test]
    fn verify_refuses_noncanonical_and_deep_shapes() {
        let key = Hash([0; 32]);
        let deep = Proof { terminal: Terminal::Empty, siblings: vec![Hash([1; 32]); KEY_BITS + 1] };
        assert_eq!(verify(&EMPTY, &key, None, &deep), Err(VerifyError::Depth(KEY_BITS + 1)));
        let full = Proof { terminal: Terminal::Empty, siblings: vec![Hash([1; 32]); KEY_BITS] };
        assert_eq!(verify(&EMPTY, &key, None, &full), Err(VerifyError::NonCanonical(KEY_BITS)));
        // A lone leaf wrapped in a single-child node: hashes fine, refused.
        let lone = Proof {
            terminal: Terminal::Leaf { key_hash: key, value_hash: Hash([5; 32]) },
            siblings: vec![EMPTY],
        };
        let root = internal_hash(&leaf_hash(&key, &Hash([5; 32])), &EMPTY);
        assert_eq!(verify(&root, &key, Some(&Hash([5; 32])), &lone), Err(VerifyError::NonCanonical(1)));
        // internal(EMPTY, EMPTY) for an empty terminal.
        let root = internal_hash(&EMPTY, &EMPTY);
        let empty = Proof { terminal: Terminal::Empty, siblings: vec![EMPTY] };
        assert_eq!(verify(&root, &key, None, &empty), Err(VerifyError::NonCanonical(1)));
    }
}
