//! Property tests over larger trees than the exhaustive test reaches: any
//! generated proof verifies, lengths are as the sizes dictate and bounded by
//! the tree depth, and the incremental frontier always equals the one resumed
//! from storage.

use std::sync::OnceLock;

use custody_standards::appender::Appender;
use custody_standards::hash::{leaf_hash, Hash};
use custody_standards::memory::MemoryHashStore;
use custody_standards::proof::{consistency_proof, inclusion_proof, tree_hash};
use custody_standards::verify::{
    consistency_proof_len, inclusion_proof_len, verify_consistency, verify_inclusion, VerifyError,
};
use proptest::prelude::*;

const MAX: u64 = 4096;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_le_bytes())
}

/// One shared tree; the hashes stored for size `MAX` include every stored
/// hash of every smaller size, so any size up to `MAX` can be served.
fn store() -> &'static MemoryHashStore {
    static STORE: OnceLock<MemoryHashStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut s = MemoryHashStore::new();
        for i in 0..MAX {
            s.append(leaf(i));
        }
        s
    })
}

/// `ceil(log2(n))`, the depth of a tree of `n` leaves.
fn depth(n: u64) -> usize {
    (64 - (n - 1).leading_zeros()) as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_proofs_verify((size, index) in (1..=MAX).prop_flat_map(|n| (Just(n), 0..n))) {
        let s = store();
        let root = tree_hash(size, s).unwrap();
        let proof = inclusion_proof(index, size, s).unwrap();
        prop_assert_eq!(inclusion_proof_len(index, size), Ok(proof.len()));
        prop_assert!(proof.len() <= depth(size));
        prop_assert_eq!(verify_inclusion(&leaf(index), index, size, &proof, &root), Ok(()));
        prop_assert_eq!(
            verify_inclusion(&leaf(index ^ 1), index, size, &proof, &root),
            Err(VerifyError::RootMismatch)
        );
    }

    #[test]
    fn consistency_proofs_verify((new, old) in (1..=MAX).prop_flat_map(|n| (Just(n), 0..=n))) {
        let s = store();
        let (old_root, new_root) = (tree_hash(old, s).unwrap(), tree_hash(new, s).unwrap());
        let proof = consistency_proof(old, new, s).unwrap();
        prop_assert_eq!(consistency_proof_len(old, new), Ok(proof.len()));
        prop_assert!(proof.len() <= 2 * depth(new));
        prop_assert_eq!(verify_consistency(old, new, &proof, &old_root, &new_root), Ok(()));
        if proof.len() >= 2 {
            let mut bad = proof.clone();
            bad.rotate_left(1);
            prop_assert_ne!(&bad, &proof);
            prop_assert!(verify_consistency(old, new, &bad, &old_root, &new_root).is_err());
        }
    }

    #[test]
    fn consistency_chains_compose((a, b, c) in (0..=MAX, 0..=MAX, 0..=MAX)) {
        // Any three sizes in order: each pair is provably consistent, and a
        // proof for one pair never verifies another pair's roots.
        let mut v = [a, b, c];
        v.sort_unstable();
        let s = store();
        let roots: Vec<Hash> = v.iter().map(|&n| tree_hash(n, s).unwrap()).collect();
        for (x, y) in [(0, 1), (1, 2), (0, 2)] {
            let p = consistency_proof(v[x], v[y], s).unwrap();
            prop_assert_eq!(verify_consistency(v[x], v[y], &p, &roots[x], &roots[y]), Ok(()));
        }
        // From size 0 the proof is empty and every tree is consistent with
        // the empty one, so only a non-empty old tree can be caught.
        if 0 < v[0] && v[0] < v[1] && v[1] < v[2] {
            let p = consistency_proof(v[0], v[1], s).unwrap();
            prop_assert!(verify_consistency(v[0], v[1], &p, &roots[0], &roots[2]).is_err());
        }
    }

    #[test]
    fn appender_matches_resumed_frontier(size in 0..=1500u64, chunk in 1..64u64) {
        // Build incrementally, resuming from storage every `chunk` leaves.
        let s = store();
        let mut a = Appender::new();
        let mut out = Vec::new();
        for i in 0..size {
            if i % chunk == 0 {
                let resumed = Appender::from_reader(i, s).unwrap();
                prop_assert_eq!(resumed.frontier(), a.frontier());
                prop_assert_eq!(resumed.root(), a.root());
                a = resumed;
            }
            out.clear();
            a.append(leaf(i), &mut out);
            // Every emitted stored hash is the one the full store holds.
            for (id, h) in &out {
                prop_assert_eq!(s.get(*id), Some(*h));
            }
            prop_assert!(out.len() as u32 == 1 + i.trailing_ones());
        }
        prop_assert_eq!(a.size(), size);
        prop_assert_eq!(a.root(), tree_hash(size, s).unwrap());
        let resumed = Appender::from_reader(size, s).unwrap();
        prop_assert_eq!(resumed.frontier(), a.frontier());
    }
}
