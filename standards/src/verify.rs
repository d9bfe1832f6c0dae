//! Pure verification of RFC 9162 inclusion and consistency proofs.
//!
//! Follows the numbered algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2
//! step by step (quoted below), with two additions that make failures precise
//! and bound the work on hostile input: a proof longer than any tree can need
//! is refused before anything else, and the exact length the sizes imply is
//! checked before any hashing. The RFC loop's own length checks remain, so an
//! unexpected length can never verify.

use crate::hash::{empty_root, node_hash, Hash};

/// Longest possible inclusion proof: one hash per level of a tree with at
/// most `2^64 - 1` leaves.
pub const MAX_INCLUSION_PROOF_LEN: usize = 64;

/// Longest possible consistency proof: the 64 hashes of the RFC loop plus the
/// seed hash (reached e.g. by `old = 3`, `new = u64::MAX`).
pub const MAX_CONSISTENCY_PROOF_LEN: usize = 65;

/// Why a proof was rejected; distinct variants so callers can say why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// The "old" tree is larger than the "new" one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// Claimed earlier size.
        old: u64,
        /// Claimed later size.
        new: u64,
    },
    /// More hashes than any proof between any `u64` sizes can have; refused
    /// before any other work.
    #[error("proof has {len} hashes, more than the maximum {max}")]
    ProofTooLong {
        /// Hashes supplied.
        len: usize,
        /// Largest length any valid proof of this kind has.
        max: usize,
    },
    /// The sizes (and index) determine the proof length exactly; this one
    /// differs.
    #[error("proof has {got} hashes, the sizes require {expected}")]
    WrongProofLength {
        /// Length required by the sizes.
        expected: usize,
        /// Length supplied.
        got: usize,
    },
    /// Inclusion: the proof does not lead from the leaf to the given root.
    #[error("inclusion proof does not lead to the tree root")]
    RootMismatch,
    /// Consistency: the proof does not reproduce the old tree's root (for
    /// old size 0, the old root is not the empty-tree hash).
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// Consistency: the proof does not reproduce the new tree's root (for
    /// equal sizes, the two roots differ).
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// Iterations of the RFC 9162 verification loop for initial values `fn`,
/// `sn` (with `fn <= sn`): one per level below the point where the two
/// paths to `fn` and `sn` meet, plus one per left sibling above it.
fn loop_len(fn_: u64, sn: u64) -> usize {
    let inner = 64 - (fn_ ^ sn).leading_zeros();
    let border = fn_.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Exact number of hashes in the inclusion proof of `index` in a tree of
/// `size` leaves.
pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    Ok(loop_len(index, size - 1))
}

/// Exact number of hashes in the consistency proof from `old` to `new`
/// leaves (0 when `old` is 0 or equals `new`).
pub fn consistency_proof_len(old: u64, new: u64) -> Result<usize, VerifyError> {
    if old > new {
        return Err(VerifyError::SizeOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(0);
    }
    // Steps 2-4 below: the seed is supplied unless `old` is a power of two,
    // then the loop runs as for inclusion from the shifted `fn`, `sn`.
    let shift = old.trailing_zeros();
    let seed = usize::from(!old.is_power_of_two());
    Ok(seed + loop_len((old - 1) >> shift, (new - 1) >> shift))
}

/// The root an inclusion proof leads to (RFC 9162 2.1.3.2 steps 1-5,
/// without the final comparison), for callers that compare it themselves.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    if proof.len() > MAX_INCLUSION_PROOF_LEN {
        return Err(VerifyError::ProofTooLong { len: proof.len(), max: MAX_INCLUSION_PROOF_LEN });
    }
    // "1. Compare leaf_index from the inclusion_proof_v2 structure against
    //  tree_size. If leaf_index is greater than or equal to tree_size, then
    //  fail the proof verification."
    let expected = inclusion_proof_len(index, size)?;
    let wrong_len = VerifyError::WrongProofLength { expected, got: proof.len() };
    if proof.len() != expected {
        return Err(wrong_len);
    }
    // "2. Set fn to leaf_index and sn to tree_size - 1."
    let (mut fn_, mut sn) = (index, size - 1);
    // "3. Set r to hash."
    let mut r = *leaf_hash;
    // "4. For each value p in the inclusion_path array:"
    for p in proof {
        // "a. If sn is 0, then stop the iteration and fail the proof
        //  verification."
        if sn == 0 {
            return Err(wrong_len);
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set r to HASH(0x01 || p || r)."
            r = node_hash(p, &r);
            // "ii. If LSB(fn) is not set, then right-shift both fn and sn
            //  equally until either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set r to HASH(0x01 || r || p)."
            r = node_hash(&r, p);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Compare sn to 0. [...]"
    if sn != 0 {
        return Err(wrong_len);
    }
    Ok(r)
}

/// Checks that `leaf_hash` is entry `index` of the tree of `size` leaves
/// whose root is `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    // "5. [...] If sn is equal to 0 and r and the root_hash are equal, then
    //  the log has proven the inclusion of hash. Otherwise, fail the proof
    //  verification."
    if computed != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root` (RFC 9162 2.1.4.2).
///
/// Equal sizes need equal roots and an empty proof; old size 0 needs an empty
/// proof and `old_root` equal to the empty-tree hash.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if proof.len() > MAX_CONSISTENCY_PROOF_LEN {
        return Err(VerifyError::ProofTooLong { len: proof.len(), max: MAX_CONSISTENCY_PROOF_LEN });
    }
    let expected = consistency_proof_len(old_size, new_size)?;
    let wrong_len = VerifyError::WrongProofLength { expected, got: proof.len() };
    // "1. If consistency_path is an empty array, stop and fail the proof
    //  verification." -- except for the trivial cases the RFC leaves to the
    //  caller, which need no proof at all.
    if proof.len() != expected {
        return Err(wrong_len);
    }
    if old_size == 0 {
        // Every tree extends the empty one, whose hash is MTH({}).
        return if *old_root == empty_root() { Ok(()) } else { Err(VerifyError::OldRootMismatch) };
    }
    if old_size == new_size {
        return if old_root == new_root { Ok(()) } else { Err(VerifyError::NewRootMismatch) };
    }
    // "2. If first is an exact power of 2, then prepend first_hash to the
    //  consistency_path array."
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        let (seed, rest) = proof.split_first().ok_or_else(|| wrong_len.clone())?;
        (*seed, rest)
    };
    // "3. Set fn to first - 1 and sn to second - 1."
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // "4. If LSB(fn) is set, then right-shift both fn and sn equally until
    //  LSB(fn) is not set."
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Set both fr and sr to the first value in the consistency_path
    //  array."
    let (mut fr, mut sr) = (seed, seed);
    // "6. For each subsequent value c in the consistency_path array:"
    for c in rest {
        // "a. If sn is 0, then stop the iteration and fail the proof
        //  verification."
        if sn == 0 {
            return Err(wrong_len);
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set fr to HASH(0x01 || c || fr). Set sr to
            //  HASH(0x01 || c || sr)."
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // "ii. If LSB(fn) is not set, then right-shift both fn and sn
            //  equally until either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set sr to HASH(0x01 || sr || c)."
            sr = node_hash(&sr, c);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "7. After completing iterating through the consistency_path array as
    //  described above, verify that the fr calculated is equal to the
    //  first_hash supplied, that the sr calculated is equal to the
    //  second_hash supplied, and that sn is 0."
    if sn != 0 {
        return Err(wrong_len);
    }
    if fr != *old_root {
        return Err(VerifyError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(VerifyError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn lengths_at_the_extremes() {
        assert_eq!(inclusion_proof_len(0, 1), Ok(0));
        assert_eq!(inclusion_proof_len(0, u64::MAX), Ok(64));
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), Ok(63));
        assert_eq!(inclusion_proof_len(1 << 62, u64::MAX), Ok(64));
        assert_eq!(inclusion_proof_len(5, 5), Err(VerifyError::IndexOutOfRange { index: 5, size: 5 }));
        assert_eq!(consistency_proof_len(3, u64::MAX), Ok(MAX_CONSISTENCY_PROOF_LEN));
        assert_eq!(consistency_proof_len(1 << 63, u64::MAX), Ok(1));
        assert_eq!(consistency_proof_len(1, u64::MAX), Ok(64));
        assert_eq!(consistency_proof_len(0, u64::MAX), Ok(0));
        assert_eq!(consistency_proof_len(2, 1), Err(VerifyError::SizeOrder { old: 2, new: 1 }));
    }

    #[test]
    fn oversized_proofs_are_refused_first() {
        let h = leaf_hash(b"x");
        let long = vec![h; 66];
        assert_eq!(
            verify_inclusion(&h, 5, 1, &long[..65], &h),
            Err(VerifyError::ProofTooLong { len: 65, max: 64 })
        );
        assert_eq!(
            verify_consistency(9, 1, &long, &h, &h),
            Err(VerifyError::ProofTooLong { len: 66, max: 65 })
        );
        // At the maximum the sizes decide.
        assert_eq!(
            verify_consistency(4, 8, &long[..65], &h, &h),
            Err(VerifyError::WrongProofLength { expected: 1, got: 65 })
        );
    }

    #[test]
    fn trivial_consistency() {
        let e = empty_root();
        let h = leaf_hash(b"x");
        assert_eq!(verify_consistency(0, 0, &[], &e, &e), Ok(()));
        assert_eq!(verify_consistency(0, 7, &[], &e, &h), Ok(()));
        assert_eq!(verify_consistency(0, 7, &[], &h, &h), Err(VerifyError::OldRootMismatch));
        assert_eq!(
            verify_consistency(0, 7, &[e], &e, &h),
            Err(VerifyError::WrongProofLength { expected: 0, got: 1 })
        );
        assert_eq!(verify_consistency(7, 7, &[], &h, &h), Ok(()));
        assert_eq!(verify_consistency(7, 7, &[], &h, &e), Err(VerifyError::NewRootMismatch));
        assert_eq!(
            verify_consistency(7, 7, &[h], &h, &h),
            Err(VerifyError::WrongProofLength { expected: 0, got: 1 })
        );
        assert_eq!(verify_consistency(8, 7, &[], &h, &h), Err(VerifyError::SizeOrder { old: 8, new: 7 }));
        assert_eq!(
            verify_consistency(1, 2, &[], &h, &h),
            Err(VerifyError::WrongProofLength { expected: 1, got: 0 })
        );
    }

    #[test]
    fn single_leaf_inclusion() {
        let h = leaf_hash(b"data");
        assert_eq!(verify_inclusion(&h, 0, 1, &[], &h), Ok(()));
        assert_eq!(verify_inclusion(&h, 0, 1, &[], &empty_root()), Err(VerifyError::RootMismatch));
        assert_eq!(
            verify_inclusion(&h, 1, 1, &[], &h),
            Err(VerifyError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(
            verify_inclusion(&h, 0, 0, &[], &h),
            Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
        );
    }
}
