//! Every inclusion and consistency proof of every tree of 1..=128 leaves,
//! checked against a naive transcription of RFC 6962 section 2.1 (MTH, PATH,
//! SUBPROOF), and every proof checked to fail under each corruption.
//!
//! One note on "wrong size": the RFC 9162 verification depends on the sizes
//! only through the left/right shape of the path they imply, so a proof does
//! verify against another (index, size) pair whose path has the same shape
//! (e.g. leaf 0 of 3 and leaf 0 of 4). The tests therefore assert that a
//! wrong size is accepted *exactly* when the naive recursion gives the same
//! shape, and that every other change fails.

use std::cell::RefCell;

use custody_standards::appender::Appender;
use custody_standards::hash::{empty_root, leaf_hash, node_hash, Hash};
use custody_standards::memory::MemoryHashStore;
use custody_standards::proof::{
    consistency_proof, consistency_proof_nodes, inclusion_proof, inclusion_proof_nodes, tree_hash,
    tree_hash_nodes,
};
use custody_standards::stored::{HashReader, NodeId, ReadError};
use custody_standards::verify::{
    consistency_proof_len, inclusion_proof_len, root_from_inclusion_proof, verify_consistency,
    verify_inclusion, VerifyError,
};

const MAX_SIZE: u64 = 128;
/// Up to this size every bit of every proof hash is flipped.
const ALL_BITS_UP_TO: u64 = 32;

// ---- Naive RFC 6962 section 2.1, straight from the definitions. ----

/// "The largest power of two smaller than n", by counting.
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// `MTH(D[n])` over leaf hashes.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// `PATH(m, D[n])`.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() == 1 {
        return Vec::new();
    }
    let k = k_of(d.len());
    let (mut p, sibling) =
        if m < k { (path(m, &d[..k]), mth(&d[k..])) } else { (path(m - k, &d[k..]), mth(&d[..k])) };
    p.push(sibling);
    p
}

/// `SUBPROOF(m, D[n], b)`.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k_of(d.len());
    let (mut p, sibling) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    p.push(sibling);
    p
}

/// `PROOF(m, D[n])`, empty for the trivial cases.
fn naive_consistency(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == d.len() {
        Vec::new()
    } else {
        subproof(m, d, true)
    }
}

/// Shape of `PATH(m, D[n])`: per level, bottom up, whether the sibling is
/// on the right.
fn path_shape(m: u64, n: u64) -> Vec<bool> {
    if n == 1 {
        return Vec::new();
    }
    let k = k_of(n as usize) as u64;
    let mut s = if m < k { path_shape(m, k) } else { path_shape(m - k, n - k) };
    s.push(m < k);
    s
}

/// Shape of `PROOF(m, D[n])`: the recursion's choices and how it ended.
fn proof_shape(m: u64, n: u64) -> Vec<char> {
    fn sub(m: u64, n: u64, b: bool) -> Vec<char> {
        if m == n {
            return vec![if b { 'T' } else { 'F' }];
        }
        let k = k_of(n as usize) as u64;
        let mut s = if m <= k { sub(m, k, b) } else { sub(m - k, n - k, false) };
        s.push(if m <= k { 'R' } else { 'L' });
        s
    }
    if m == 0 || m == n {
        vec!['0']
    } else {
        sub(m, n, true)
    }
}

// ---- Helpers ----

/// Records every read so tests can check "one read, of exactly the planned
/// nodes, none beyond the tree size".
struct Recording<'a> {
    inner: &'a MemoryHashStore,
    reads: RefCell<Vec<Vec<NodeId>>>,
}

impl HashReader for Recording<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.reads.borrow_mut().push(ids.to_vec());
        self.inner.read_hashes(ids)
    }
}

impl Recording<'_> {
    fn check(&self, planned: &[NodeId], size: u64, what: &str) {
        let reads = self.reads.take();
        if planned.is_empty() {
            assert!(reads.is_empty(), "{what}: empty plan must not read");
        } else {
            assert_eq!(reads, vec![planned.to_vec()], "{what}: exactly one read of the plan");
        }
        for id in planned {
            let (_, end) = id.leaf_range().expect("valid node");
            assert!(end <= size, "{what}: node {id} is beyond tree size {size}");
        }
    }
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out.0[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Bit positions to flip in hash `j` of a proof for tree size `n`, case `c`.
fn bits_to_flip(n: u64, c: u64, j: usize) -> Vec<usize> {
    if n <= ALL_BITS_UP_TO {
        (0..256).collect()
    } else {
        let j = j as u64;
        vec![((n * 31 + j * 7 + c * 3) % 256) as usize, ((n + j * 97 + c * 13 + 128) % 256) as usize]
    }
}

/// Structural corruptions: truncated, extended and swapped variants.
fn structural_variants(proof: &[Hash], junk: Hash) -> Vec<(&'static str, Vec<Hash>)> {
    let mut v = Vec::new();
    if !proof.is_empty() {
        v.push(("drop last", proof[..proof.len() - 1].to_vec()));
        v.push(("drop first", proof[1..].to_vec()));
    }
    v.push(("append", [proof, &[junk]].concat()));
    v.push(("prepend", [&[junk], proof].concat()));
    if let Some(first) = proof.first() {
        v.push(("repeat first", [&[*first], proof].concat()));
    }
    v
}

fn leaves() -> Vec<Hash> {
    (0..MAX_SIZE).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
}

fn full_store(leaves: &[Hash]) -> MemoryHashStore {
    let mut s = MemoryHashStore::new();
    for l in leaves {
        s.append(*l);
    }
    s
}

// ---- Tests ----

#[test]
fn tree_hashes_match_naive_mth_at_every_size() {
    let leaves = leaves();
    let mut growing = MemoryHashStore::new();
    let full = full_store(&leaves);
    let rec = Recording { inner: &full, reads: RefCell::new(Vec::new()) };
    assert_eq!(tree_hash(0, &rec).unwrap(), empty_root());
    rec.check(&tree_hash_nodes(0), 0, "tree_hash(0)");
    for n in 1..=MAX_SIZE {
        growing.append(leaves[n as usize - 1]);
        let want = mth(&leaves[..n as usize]);
        assert_eq!(growing.root(), want, "incremental root at {n}");
        assert_eq!(tree_hash(n, &growing).unwrap(), want, "tree_hash over exact store at {n}");
        assert_eq!(tree_hash(n, &rec).unwrap(), want, "tree_hash over larger store at {n}");
        rec.check(&tree_hash_nodes(n), n, "tree_hash");
        assert_eq!(tree_hash_nodes(n).len() as u32, n.count_ones());
        let resumed = Appender::from_reader(n, &rec).unwrap();
        rec.check(&tree_hash_nodes(n), n, "Appender::from_reader");
        assert_eq!(resumed.root(), want);
        // A store that is too small reports the missing node.
        assert!(tree_hash(n + 1, &growing).is_err());
    }
}

#[test]
fn every_inclusion_proof_verifies_and_every_corruption_fails() {
    let leaves = leaves();
    let store = full_store(&leaves);
    let rec = Recording { inner: &store, reads: RefCell::new(Vec::new()) };
    let junk = leaf_hash(b"junk");
    let mut checked = 0u64;
    for n in 1..=MAX_SIZE {
        let d = &leaves[..n as usize];
        let root = mth(d);
        for i in 0..n {
            let leaf = &leaves[i as usize];
            let proof = inclusion_proof(i, n, &rec).unwrap();
            rec.check(&inclusion_proof_nodes(i, n).unwrap(), n, "inclusion_proof");
            assert_eq!(proof, path(i as usize, d), "PATH({i}, D[{n}]) byte for byte");
            assert_eq!(inclusion_proof_len(i, n), Ok(proof.len()));
            assert!(proof.len() <= 64 - (n - 1).leading_zeros() as usize);
            assert_eq!(verify_inclusion(leaf, i, n, &proof, &root), Ok(()), "leaf {i} of {n}");
            assert_eq!(root_from_inclusion_proof(leaf, i, n, &proof), Ok(root));

            // Bit flips in the proof.
            for (j, h) in proof.iter().enumerate() {
                for bit in bits_to_flip(n, i, j) {
                    let mut bad = proof.clone();
                    bad[j] = flip(h, bit);
                    assert_eq!(
                        verify_inclusion(leaf, i, n, &bad, &root),
                        Err(VerifyError::RootMismatch),
                        "leaf {i} of {n}: proof[{j}] bit {bit}"
                    );
                    checked += 1;
                }
            }
            // Every other index.
            for other in (0..n).filter(|&o| o != i) {
                assert!(verify_inclusion(leaf, other, n, &proof, &root).is_err(), "{i}->{other} of {n}");
            }
            // Out-of-range index.
            assert_eq!(
                verify_inclusion(leaf, n, n, &proof, &root),
                Err(VerifyError::IndexOutOfRange { index: n, size: n })
            );
            // Size +-1: accepted exactly when the path shape is unchanged.
            for m in [n - 1, n + 1] {
                if i >= m {
                    assert!(matches!(
                        verify_inclusion(leaf, i, m, &proof, &root),
                        Err(VerifyError::IndexOutOfRange { .. })
                    ));
                    continue;
                }
                let same = path_shape(i, m) == path_shape(i, n);
                assert_eq!(
                    verify_inclusion(leaf, i, m, &proof, &root).is_ok(),
                    same,
                    "leaf {i}: proof for size {n} checked at size {m}"
                );
            }
            // Structural changes.
            for (what, bad) in structural_variants(&proof, junk) {
                assert!(
                    matches!(
                        verify_inclusion(leaf, i, n, &bad, &root),
                        Err(VerifyError::WrongProofLength { .. })
                    ),
                    "leaf {i} of {n}: {what}"
                );
            }
            for j in 1..proof.len() {
                let mut bad = proof.clone();
                bad.swap(j - 1, j);
                assert_ne!(bad, proof);
                assert_eq!(verify_inclusion(leaf, i, n, &bad, &root), Err(VerifyError::RootMismatch));
            }
            // Wrong leaf, wrong root.
            let other_leaf = leaves[((i + 1) % MAX_SIZE) as usize];
            assert_eq!(verify_inclusion(&other_leaf, i, n, &proof, &root), Err(VerifyError::RootMismatch));
            assert_eq!(verify_inclusion(leaf, i, n, &proof, &junk), Err(VerifyError::RootMismatch));
            if n > 1 {
                let older = mth(&d[..n as usize - 1]);
                assert_eq!(verify_inclusion(leaf, i, n, &proof, &older), Err(VerifyError::RootMismatch));
            }
        }
    }
    assert!(checked > 500_000, "bit flips checked: {checked}");
}

#[test]
fn every_consistency_proof_verifies_and_every_corruption_fails() {
    let leaves = leaves();
    let store = full_store(&leaves);
    let rec = Recording { inner: &store, reads: RefCell::new(Vec::new()) };
    let roots: Vec<Hash> = (0..=MAX_SIZE as usize).map(|n| mth(&leaves[..n])).collect();
    let junk = leaf_hash(b"junk");
    let mut checked = 0u64;
    for new in 1..=MAX_SIZE {
        let d = &leaves[..new as usize];
        let new_root = roots[new as usize];
        for old in 0..=new {
            let old_root = roots[old as usize];
            let proof = consistency_proof(old, new, &rec).unwrap();
            rec.check(&consistency_proof_nodes(old, new).unwrap(), new, "consistency_proof");
            assert_eq!(proof, naive_consistency(old as usize, d), "PROOF({old}, D[{new}]) byte for byte");
            assert_eq!(consistency_proof_len(old, new), Ok(proof.len()));
            assert!(proof.len() <= 2 * (64 - (new - 1).leading_zeros() as usize) + 1);
            assert_eq!(verify_consistency(old, new, &proof, &old_root, &new_root), Ok(()), "{old} -> {new}");

            // Wrong roots.
            if old_root != new_root {
                assert!(verify_consistency(old, new, &proof, &new_root, &old_root).is_err());
            }
            // A wrong old root shows up as whichever recomputed root it
            // feeds (for a power-of-two old size the RFC seeds both from it).
            let got = verify_consistency(old, new, &proof, &junk, &new_root);
            if old == 0 {
                assert_eq!(got, Err(VerifyError::OldRootMismatch));
            } else {
                assert!(
                    matches!(got, Err(VerifyError::OldRootMismatch | VerifyError::NewRootMismatch)),
                    "{old} -> {new}: wrong old root: {got:?}"
                );
            }
            let want_new_err = if old == 0 { Ok(()) } else { Err(VerifyError::NewRootMismatch) };
            assert_eq!(verify_consistency(old, new, &proof, &old_root, &junk), want_new_err);
            // Appending or prepending anything to any proof fails.
            for (what, bad) in structural_variants(&proof, junk) {
                assert!(
                    matches!(
                        verify_consistency(old, new, &bad, &old_root, &new_root),
                        Err(VerifyError::WrongProofLength { .. })
                    ),
                    "{old} -> {new}: {what}"
                );
            }
            if proof.is_empty() {
                continue;
            }

            // Bit flips.
            for (j, h) in proof.iter().enumerate() {
                for bit in bits_to_flip(new, old, j) {
                    let mut bad = proof.clone();
                    bad[j] = flip(h, bit);
                    let got = verify_consistency(old, new, &bad, &old_root, &new_root);
                    assert!(
                        matches!(got, Err(VerifyError::OldRootMismatch | VerifyError::NewRootMismatch)),
                        "{old} -> {new}: proof[{j}] bit {bit}: {got:?}"
                    );
                    checked += 1;
                }
            }
            for j in 1..proof.len() {
                let mut bad = proof.clone();
                bad.swap(j - 1, j);
                assert_ne!(bad, proof);
                assert!(verify_consistency(old, new, &bad, &old_root, &new_root).is_err());
            }
            assert!(verify_consistency(old, new, &[], &old_root, &new_root).is_err());
            // Sizes +-1 (roots unchanged): accepted exactly when the
            // SUBPROOF shape is unchanged.
            for (o, n) in [(old - 1, new), (old + 1, new), (old, new - 1), (old, new + 1)] {
                if o > n {
                    assert!(matches!(
                        verify_consistency(o, n, &proof, &old_root, &new_root),
                        Err(VerifyError::SizeOrder { .. })
                    ));
                    continue;
                }
                let same = proof_shape(o, n) == proof_shape(old, new);
                assert_eq!(
                    verify_consistency(o, n, &proof, &old_root, &new_root).is_ok(),
                    same,
                    "proof {old} -> {new} checked as {o} -> {n}"
                );
            }
        }
    }
    assert!(checked > 500_000, "bit flips checked: {checked}");
}
