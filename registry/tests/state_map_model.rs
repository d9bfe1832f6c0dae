//! The state map against a naive model: a `BTreeMap` whose root is computed
//! straight from the recursive definition in docs/protocol.md ("Registry
//! state map: tree and proofs"), over every subset of a pool of keys chosen
//! to share long prefixes, over many insertion orders, and over random
//! batches. Every proof the tree produces must verify, every wrong claim and
//! every single-bit corruption of a proof's bytes must be refused.

use std::collections::BTreeMap;

use custody_registry::state_map::{
    internal_hash, leaf_hash, verified_value, verify, Hash, Proof, Terminal, Tree, VerifyError, EMPTY,
};
use proptest::prelude::*;

/// Bit `i` of a key, written out again here rather than borrowed from the
/// crate, so the model shares no code with what it checks.
fn model_bit(k: &Hash, i: usize) -> bool {
    k.0[i / 8] & (1 << (7 - (i % 8))) != 0
}

/// The root by definition: 0 entries EMPTY, 1 entry its leaf hash, else
/// internal(left half, right half) split on bit `depth`.
fn model_root(entries: &[(Hash, Hash)], depth: usize) -> Hash {
    match entries {
        [] => EMPTY,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let left: Vec<_> = entries.iter().copied().filter(|(k, _)| !model_bit(k, depth)).collect();
            let right: Vec<_> = entries.iter().copied().filter(|(k, _)| model_bit(k, depth)).collect();
            internal_hash(&model_root(&left, depth + 1), &model_root(&right, depth + 1))
        }
    }
}

fn root_of(map: &BTreeMap<Hash, Hash>) -> Hash {
    model_root(&map.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), 0)
}

fn key(bytes: &[(usize, u8)]) -> Hash {
    let mut k = [0u8; 32];
    for (i, b) in bytes {
        k[*i] = *b;
    }
    Hash(k)
}

/// Ten keys with long shared prefixes: two differing only in the last bit
/// (a proof of depth 256), pairs splitting at bits 1, 7, 15 and 248, and
/// the all-ones key.
fn pool() -> Vec<Hash> {
    vec![
        key(&[]),
        key(&[(31, 0x01)]),
        key(&[(0, 0x80)]),
        key(&[(0, 0x80), (31, 0x80)]),
        key(&[(0, 0x40)]),
        key(&[(0, 0x41)]),
        Hash([0xff; 32]),
        key(&[(0, 0xff), (1, 0xfe)]),
        key(&[(0, 0x7f)]),
        key(&[(1, 0x01)]),
    ]
}

/// Keys outside the pool that land next to pool keys: on empty subtrees, on
/// lone leaves they share a prefix with, deep inside chains.
fn probes() -> Vec<Hash> {
    vec![
        key(&[(31, 0x02)]),
        key(&[(0, 0x80), (31, 0x01)]),
        key(&[(0, 0x42)]),
        key(&[(0, 0xc0)]),
        key(&[(0, 0x01)]),
        key(&[(0, 0xff), (1, 0xff)]),
        key(&[(1, 0x02)]),
        key(&[(0, 0x80), (30, 0x01)]),
    ]
}

fn value(i: usize, generation: u8) -> Hash {
    let mut v = [generation; 32];
    v[0] = i as u8;
    Hash(v)
}

fn subset(pool: &[Hash], mask: u32, generation: u8) -> BTreeMap<Hash, Hash> {
    pool.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(i, k)| (*k, value(i, generation)))
        .collect()
}

/// Checks tree == model: root, len, get, iter order, and that the proof of
/// every pool and probe key verifies for the true claim and fails for false
/// ones.
fn check_against(tree: &Tree, map: &BTreeMap<Hash, Hash>) {
    let root = root_of(map);
    assert_eq!(tree.root(), root, "root differs from the model");
    assert_eq!(tree.len(), map.len());
    assert_eq!(tree.is_empty(), map.is_empty());
    assert_eq!(tree.iter().collect::<Vec<_>>(), map.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
    for k in pool().iter().chain(probes().iter()) {
        check_proof(tree, &root, k, map.get(k));
    }
}

fn check_proof(tree: &Tree, root: &Hash, k: &Hash, want: Option<&Hash>) {
    assert_eq!(tree.get(k).as_ref(), want);
    let proof = tree.prove(k);
    let bytes = proof.encode();
    assert_eq!(Proof::decode(&bytes).as_ref(), Ok(&proof));
    assert_eq!(verify(root, k, want, &proof), Ok(()), "key {k}");
    assert_eq!(verified_value(root, k, &proof), Ok(want.copied()));
    let other = Hash([0x5a; 32]);
    match want {
        Some(v) => {
            assert_eq!(verify(root, k, None, &proof), Err(VerifyError::ExpectedAbsent));
            assert_eq!(verify(root, k, Some(&other), &proof), Err(VerifyError::ValueMismatch));
            assert_ne!(v, &other);
        }
        None => assert_eq!(verify(root, k, Some(&other), &proof), Err(VerifyError::ExpectedPresent)),
    }
    // The same proof for a different root is refused.
    let mut bad_root = *root;
    bad_root.0[31] ^= 1;
    assert!(verify(&bad_root, k, want, &proof).is_err());
}

/// Every single-bit flip of the proof's bytes either fails to decode or
/// fails to verify the original claim.
fn check_corruptions(root: &Hash, k: &Hash, want: Option<&Hash>, proof: &Proof) {
    let bytes = proof.encode();
    let mut flipped = bytes.clone();
    for i in 0..bytes.len() * 8 {
        flipped[i / 8] ^= 0x80 >> (i % 8);
        if let Ok(p) = Proof::decode(&flipped) {
            assert!(
                verify(root, k, want, &p).is_err(),
                "flip of bit {i} of {} still verifies",
                hex::encode(&bytes)
            );
        }
        flipped[i / 8] ^= 0x80 >> (i % 8);
    }
}

#[test]
fn every_subset_matches_the_model() {
    let pool = pool();
    let full: BTreeMap<Hash, Hash> = subset(&pool, u32::MAX, 1);
    let full_tree = Tree::from_entries(full.clone());
    let mut previous = Tree::new();
    for mask in 0..1u32 << pool.len() {
        let map = subset(&pool, mask, 1);
        // One batch into the empty tree.
        let mut batch = Tree::new();
        batch.apply(map.iter().map(|(k, v)| (*k, Some(*v))));
        check_against(&batch, &map);
        // From scratch.
        let built = Tree::from_entries(map.clone());
        assert_eq!(built.root(), batch.root());
        // Down from the full pool by removals.
        let mut down = full_tree.clone();
        down.apply(full.keys().filter(|k| !map.contains_key(k)).map(|k| (*k, None)));
        assert_eq!(down.root(), batch.root());
        assert_eq!(down.len(), map.len());
        // From the previous subset (inserts, removals and replacements in
        // one batch), leaving that snapshot intact.
        let prev_map = subset(&pool, mask.wrapping_sub(1), 1);
        let prev_root = previous.root();
        let mut next = previous.clone();
        let mut updates: Vec<(Hash, Option<Hash>)> = pool.iter().map(|k| (*k, None)).collect();
        updates.extend(map.iter().map(|(k, v)| (*k, Some(*v))));
        next.apply(updates);
        assert_eq!(next.root(), batch.root());
        if mask > 0 {
            assert_eq!(previous.root(), prev_root);
            check_against(&previous, &prev_map);
        }
        previous = next;
    }
    assert_eq!(full_tree.root(), root_of(&full));
}

#[test]
fn replacing_values_matches_the_model() {
    let pool = pool();
    for mask in (0..1u32 << pool.len()).step_by(7) {
        let old = subset(&pool, mask, 1);
        let mut tree = Tree::from_entries(old.clone());
        // Replace every other entry's value and remove a few.
        let mut map = old.clone();
        let mut updates = Vec::new();
        for (n, (k, _)) in old.iter().enumerate() {
            if n % 3 == 2 {
                map.remove(k);
                updates.push((*k, None));
            } else if n % 2 == 0 {
                map.insert(*k, value(n, 2));
                updates.push((*k, Some(value(n, 2))));
            }
        }
        tree.apply(updates);
        check_against(&tree, &map);
    }
}

/// All orders of one-at-a-time insertion of up to 5 pool keys, and all 8!
/// orders of one 8-key set, give the model's root.
#[test]
fn insertion_order_does_not_change_the_root() {
    fn permutations(items: &mut Vec<usize>, k: usize, out: &mut dyn FnMut(&[usize])) {
        if k == items.len() {
            out(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutations(items, k + 1, out);
            items.swap(k, i);
        }
    }
    let pool = pool();
    let mut trees = 0usize;
    for mask in 0..1u32 << pool.len() {
        if mask.count_ones() > 5 && mask != 0b11_1111_1100 {
            continue;
        }
        let map = subset(&pool, mask, 1);
        let want = root_of(&map);
        let entries: Vec<(Hash, Hash)> = map.iter().map(|(k, v)| (*k, *v)).collect();
        let mut idx: Vec<usize> = (0..entries.len()).collect();
        permutations(&mut idx, 0, &mut |order| {
            let mut t = Tree::new();
            for &i in order {
                t.apply([(entries[i].0, Some(entries[i].1))]);
            }
            assert_eq!(t.root(), want, "order {order:?}");
            trees += 1;
        });
    }
    assert!(trees > 40_000);
}

/// Every single-bit corruption of every proof (pool and probe keys) fails,
/// over a spread of subsets including the full pool and the empty map.
#[test]
fn every_bit_flip_of_a_proof_is_refused() {
    let pool = pool();
    for mask in (0..1u32 << pool.len()).step_by(31).chain([(1 << pool.len()) - 1, 0b11]) {
        let map = subset(&pool, mask, 1);
        let tree = Tree::from_entries(map.clone());
        let root = tree.root();
        for k in pool.iter().chain(probes().iter()) {
            check_corruptions(&root, k, map.get(k), &tree.prove(k));
        }
    }
}

/// The two keys differing only in their last bit need a proof of depth
/// 256, the deepest there is; a probe differing from both in bit 254 stops
/// one level up on an empty subtree.
#[test]
fn deepest_proofs() {
    let (a, b) = (key(&[]), key(&[(31, 0x01)]));
    let tree = Tree::from_entries([(a, value(0, 1)), (b, value(1, 1))]);
    let p = tree.prove(&b);
    assert_eq!(p.siblings.len(), 256);
    assert_eq!(p.siblings[255], leaf_hash(&a, &value(0, 1)));
    assert!(p.siblings[..255].iter().all(|s| *s == EMPTY));
    assert_eq!(p.encode().len(), 1 + 1 + 64 + 2 + 32 + 32);
    assert_eq!(verify(&tree.root(), &b, Some(&value(1, 1)), &p), Ok(()));
    let probe = key(&[(31, 0x02)]);
    let q = tree.prove(&probe);
    assert_eq!((q.siblings.len(), &q.terminal), (255, &Terminal::Empty));
    assert_eq!(verify(&tree.root(), &probe, None, &q), Ok(()));
}

/// A proof that stops early (at a node with two entries, claiming it empty
/// or a lone leaf) or goes on past the real terminal does not verify: for a
/// given root and key only the tree's own proof does.
#[test]
fn proofs_of_other_depths_are_refused() {
    let pool = pool();
    let map = subset(&pool, (1 << pool.len()) - 1, 1);
    let tree = Tree::from_entries(map.clone());
    let root = tree.root();
    for k in pool.iter().chain(probes().iter()) {
        let real = tree.prove(k);
        for d in 0..real.siblings.len() {
            for terminal in [Terminal::Empty, real.terminal.clone()] {
                let short = Proof { terminal, siblings: real.siblings[..d].to_vec() };
                assert!(
                    verify(&root, k, map.get(k), &short).is_err(),
                    "depth {d} of {}",
                    real.siblings.len()
                );
                assert!(verify(&root, k, None, &short).is_err());
            }
        }
        let mut long = real.clone();
        long.siblings.push(Hash([7; 32]));
        assert!(verify(&root, k, map.get(k), &long).is_err());
    }
}

fn arb_key() -> impl Strategy<Value = Hash> {
    // Few distinct first bytes and a narrow tail, so keys collide on long
    // prefixes and batches hit existing keys.
    (prop::sample::select(vec![0x00u8, 0x01, 0x80, 0x81, 0xff]), 0u8..4, any::<bool>()).prop_map(
        |(a, b, c)| {
            let mut k = [0u8; 32];
            k[0] = a;
            k[31] = b;
            if c {
                k[15] = 0x10;
            }
            Hash(k)
        },
    )
}

fn arb_batch() -> impl Strategy<Value = Vec<(Hash, Option<Hash>)>> {
    prop::collection::vec((arb_key(), prop::option::of(0u8..4).prop_map(|v| v.map(|b| Hash([b; 32])))), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random batches of inserts, replaces and removes agree with the
    /// model, and snapshots taken along the way keep their root and proofs.
    #[test]
    fn random_batches_match_the_model(batches in prop::collection::vec(arb_batch(), 1..8)) {
        let mut tree = Tree::new();
        let mut map = BTreeMap::new();
        let mut snapshots: Vec<(Tree, BTreeMap<Hash, Hash>)> = Vec::new();
        for batch in batches {
            tree.apply(batch.clone());
            for (k, v) in batch {
                match v {
                    Some(v) => map.insert(k, v),
                    None => map.remove(&k),
                };
            }
            prop_assert_eq!(tree.root(), root_of(&map));
            prop_assert_eq!(tree.len(), map.len());
            prop_assert_eq!(Tree::from_entries(map.clone()).root(), tree.root());
            snapshots.push((tree.clone(), map.clone()));
        }
        for (snap, snap_map) in &snapshots {
            prop_assert_eq!(snap.root(), root_of(snap_map));
            prop_assert_eq!(snap.iter().collect::<BTreeMap<_, _>>(), snap_map.clone());
            let root = snap.root();
            for (k, v) in snap_map {
                let p = snap.prove(k);
                prop_assert_eq!(verify(&root, k, Some(v), &p), Ok(()));
            }
            let absent = Hash([0x42; 32]);
            prop_assert_eq!(verify(&root, &absent, None, &snap.prove(&absent)), Ok(()));
        }
    }

    /// `from_entries` with repeated keys equals inserting one by one.
    #[test]
    fn from_entries_is_sequential_insertion(entries in prop::collection::vec((arb_key(), any::<[u8; 32]>().prop_map(Hash)), 0..20)) {
        let mut one_by_one = Tree::new();
        for (k, v) in &entries {
            one_by_one.apply([(*k, Some(*v))]);
        }
        let built = Tree::from_entries(entries);
        prop_assert_eq!(built.root(), one_by_one.root());
        prop_assert_eq!(built.len(), one_by_one.len());
        prop_assert_eq!(built.iter().collect::<Vec<_>>(), one_by_one.iter().collect::<Vec<_>>());
    }
}
