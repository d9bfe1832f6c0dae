//! Known-answer tests: the RFC 6962 / Certificate Transparency reference
//! vectors (as published in transparency-dev/merkle `testonly/constants.go`
//! and `proof/verify_test.go`), byte for byte, plus an independent oracle: the
//! `rs_merkle` crate configured with RFC 6962 domain separation.

use custody_standards::appender::Appender;
use custody_standards::hash::{empty_root, leaf_hash, node_hash, Hash};
use custody_standards::memory::MemoryHashStore;
use custody_standards::proof::{consistency_proof, inclusion_proof, tree_hash};
use custody_standards::stored::NodeId;
use custody_standards::verify::{root_from_inclusion_proof, verify_consistency, verify_inclusion};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).expect("vector is 64 lowercase hex digits")
}

/// Leaf inputs of the reference tree.
const LEAF_INPUTS: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

/// Stored hashes of every complete subtree of the 8-leaf tree, by level.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Tree hashes for sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Compact ranges (frontiers) for sizes 0..=8, as (level, index) of
/// `NODE_HASHES`.
const FRONTIERS: [&[(usize, usize)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

/// (leaf index, tree size, inclusion proof). The reference file numbers
/// leaves from 1; these are converted to 0-based indexes.
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn hashes(v: &[&str]) -> Vec<Hash> {
    v.iter().map(|s| h(s)).collect()
}

fn reference_store() -> MemoryHashStore {
    let mut s = MemoryHashStore::new();
    for input in LEAF_INPUTS {
        s.append(leaf_hash(&hex::decode(input).unwrap()));
    }
    s
}

#[test]
fn reference_leaves_nodes_and_roots() {
    let store = reference_store();
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (index, want) in row.iter().enumerate() {
            assert_eq!(
                store.get(NodeId::new(level as u8, index as u64)),
                Some(h(want)),
                "node ({level}, {index})"
            );
        }
        assert_eq!(store.get(NodeId::new(level as u8, row.len() as u64)), None);
    }
    assert_eq!(empty_root(), h(ROOTS[0]));
    let mut appender = Appender::new();
    let mut out = Vec::new();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(tree_hash(size as u64, &store).unwrap(), h(want), "root of size {size}");
        assert_eq!(appender.root(), h(want), "appender root of size {size}");
        let frontier: Vec<Hash> = FRONTIERS[size].iter().map(|&(l, i)| h(NODE_HASHES[l][i])).collect();
        assert_eq!(appender.frontier(), frontier.as_slice(), "frontier of size {size}");
        assert_eq!(Appender::from_reader(size as u64, &store).unwrap().frontier(), frontier.as_slice());
        if size < LEAF_INPUTS.len() {
            appender.append(leaf_hash(&hex::decode(LEAF_INPUTS[size]).unwrap()), &mut out);
        }
    }
    assert_eq!(store.root(), h(ROOTS[8]));
}

#[test]
fn reference_inclusion_proofs() {
    let store = reference_store();
    for (index, size, proof) in INCLUSION {
        let want = hashes(proof);
        assert_eq!(inclusion_proof(index, size, &store).unwrap(), want, "leaf {index} of {size}");
        let leaf = h(NODE_HASHES[0][index as usize]);
        let root = h(ROOTS[size as usize]);
        assert_eq!(verify_inclusion(&leaf, index, size, &want, &root), Ok(()));
        assert_eq!(root_from_inclusion_proof(&leaf, index, size, &want), Ok(root));
        // The reference file's own negative probes: index +-1, ^2, size *2 and /2.
        for (i, n) in [
            (index.wrapping_sub(1), size),
            (index + 1, size),
            (index ^ 2, size),
            (index, size * 2),
            (index, size / 2),
        ] {
            if (i, n) != (index, size) {
                assert!(verify_inclusion(&leaf, i, n, &want, &root).is_err(), "{index}/{size} as {i}/{n}");
            }
        }
    }
}

#[test]
fn reference_consistency_proofs() {
    let store = reference_store();
    for (old, new, proof) in CONSISTENCY {
        let want = hashes(proof);
        assert_eq!(consistency_proof(old, new, &store).unwrap(), want, "{old} -> {new}");
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        assert_eq!(verify_consistency(old, new, &want, &r1, &r2), Ok(()));
        if old != new {
            for (o, n) in [(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2), (old, new / 2)] {
                assert!(verify_consistency(o, n, &want, &r1, &r2).is_err(), "{old}->{new} as {o}->{n}");
            }
            assert!(verify_consistency(old, new, &want, &r2, &r1).is_err());
            assert!(verify_consistency(old, new, &[], &r1, &r2).is_err());
        }
    }
}

/// RFC 6962 hashing for `rs_merkle`: leaves are given already hashed, and an
/// unpaired node is promoted unchanged, which yields the RFC 6962 tree shape.
#[derive(Clone)]
struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        custody_standards::hash::sha256(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(&Hash(*left), &Hash(*r)).0,
            None => *left,
        }
    }

    fn hash_size() -> usize {
        32
    }
}

#[test]
fn rs_merkle_oracle_agrees() {
    const MAX: u64 = 10_000;
    let leaves: Vec<Hash> = (0..MAX).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut store = MemoryHashStore::new();
    for l in &leaves {
        store.append(*l);
    }
    let mut rng = StdRng::seed_from_u64(6962);
    let mut sizes: Vec<u64> = (0..30).map(|_| rng.gen_range(1..=MAX)).collect();
    sizes.extend([1, 2, 3, 1023, 1024, 1025, 4097, MAX]);
    for size in sizes {
        let raw: Vec<[u8; 32]> = leaves[..size as usize].iter().map(|h| h.0).collect();
        let tree = rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&raw);
        let root = tree_hash(size, &store).unwrap();
        assert_eq!(tree.root(), Some(root.0), "root of size {size}");
        for _ in 0..4 {
            let i = rng.gen_range(0..size);
            let theirs = tree.proof(&[i as usize]);
            let ours = inclusion_proof(i, size, &store).unwrap();
            let theirs_hashes: Vec<Hash> = theirs.proof_hashes().iter().map(|b| Hash(*b)).collect();
            assert_eq!(ours, theirs_hashes, "proof for leaf {i} of {size}");
            assert!(theirs.verify(root.0, &[i as usize], &[raw[i as usize]], size as usize));
            assert_eq!(verify_inclusion(&leaves[i as usize], i, size, &theirs_hashes, &root), Ok(()));
            // A corrupted proof is rejected by both.
            let mut bad = ours.clone();
            if let Some(first) = bad.first_mut() {
                first.0[0] ^= 1;
                let bad_raw: Vec<[u8; 32]> = bad.iter().map(|h| h.0).collect();
                let theirs_bad = rs_merkle::MerkleProof::<Rfc6962>::new(bad_raw);
                assert!(!theirs_bad.verify(root.0, &[i as usize], &[raw[i as usize]], size as usize));
                assert!(verify_inclusion(&leaves[i as usize], i, size, &bad, &root).is_err());
            }
        }
    }
}
