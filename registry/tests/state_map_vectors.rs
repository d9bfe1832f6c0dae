//! Known-answer vectors of the state map, and hostile proof shapes.
//!
//! The vectors are also printed in docs/protocol.md, section "Registry state
//! map: tree and proofs"; `docs_vectors_match_the_code` reads that file and
//! fails if the two ever differ, so a third party implementing a verifier
//! from the document checks against the same bytes the code produces.

use std::collections::BTreeMap;
use std::path::Path;

use custody_registry::state_map::{
    internal_hash, leaf_hash, verify, Hash, Proof, Terminal, Tree, VerifyError, EMPTY,
};

fn key(first: u8) -> Hash {
    let mut k = [0u8; 32];
    k[0] = first;
    Hash(k)
}

/// A = 0x10.., B = 0x18.. share their first four bits (0001) and split at
/// bit 4; C = 0x80.. splits from both at bit 0. D = 0x14.. is absent and
/// ends on A's leaf; E = 0x40.. is absent and ends on an empty subtree.
/// A named key or value of the fixture.
type Named = (&'static str, Hash);

fn fixture() -> (Tree, [Named; 5], [Named; 3]) {
    let keys = [("A", key(0x10)), ("B", key(0x18)), ("C", key(0x80)), ("D", key(0x14)), ("E", key(0x40))];
    let values = [("A", Hash([0xaa; 32])), ("B", Hash([0xbb; 32])), ("C", Hash([0xcc; 32]))];
    let tree = Tree::from_entries(keys[..3].iter().zip(values).map(|((_, k), (_, v))| (*k, v)));
    (tree, keys, values)
}

/// Every vector, by the label it has in docs/protocol.md.
fn vectors() -> BTreeMap<String, String> {
    let (tree, keys, values) = fixture();
    let mut out = BTreeMap::new();
    for (name, k) in keys {
        out.insert(format!("key {name}"), k.to_hex());
    }
    for ((name, k), (_, v)) in keys.iter().zip(values) {
        out.insert(format!("value {name}"), v.to_hex());
        out.insert(format!("leaf {name}"), leaf_hash(k, &v).to_hex());
    }
    out.insert("root".to_owned(), tree.root().to_hex());
    for (name, k) in [keys[1], keys[3], keys[4]] {
        out.insert(format!("proof {name}"), hex::encode(tree.prove(&k).encode()));
    }
    out
}

/// The root rebuilt by hand from the definition: C alone on the right of
/// the root; on the left, A and B below three single-child levels (bits 1,
/// 2 = 0, bit 3 = 1), split at bit 4.
#[test]
fn fixture_root_by_hand() {
    let (tree, keys, values) = fixture();
    let leaf = |i: usize| leaf_hash(&keys[i].1, &values[i].1);
    let split = internal_hash(&leaf(0), &leaf(1)); // depth 4
    let d3 = internal_hash(&EMPTY, &split); // bit 3 = 1
    let d2 = internal_hash(&d3, &EMPTY);
    let d1 = internal_hash(&d2, &EMPTY);
    assert_eq!(tree.root(), internal_hash(&d1, &leaf(2)));

    let b = tree.prove(&keys[1].1);
    assert_eq!(b.siblings, vec![leaf(2), EMPTY, EMPTY, EMPTY, leaf(0)]);
    assert_eq!(verify(&tree.root(), &keys[1].1, Some(&values[1].1), &b), Ok(()));
    let d = tree.prove(&keys[3].1);
    assert_eq!(d.terminal, Terminal::Leaf { key_hash: keys[0].1, value_hash: values[0].1 });
    assert_eq!(verify(&tree.root(), &keys[3].1, None, &d), Ok(()));
    let e = tree.prove(&keys[4].1);
    assert_eq!((e.terminal.clone(), e.siblings.clone()), (Terminal::Empty, vec![leaf(2), d2]));
    assert_eq!(verify(&tree.root(), &keys[4].1, None, &e), Ok(()));
}

/// The `name = hex` lines of the test-vector blocks in the state-map
/// section of docs/protocol.md.
fn documented_vectors() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&path).expect("docs/protocol.md");
    let start =
        doc.find("## 9. Registry state map: tree and proofs").expect("state-map section in docs/protocol.md");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |n| n + 3)];
    let vectors = &section[section.find("### Test vectors").expect("test vectors heading")..];
    let mut out = BTreeMap::new();
    let mut in_block = false;
    for line in vectors.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if let (true, Some((name, hex))) = (in_block, line.split_once(" = ")) {
            let prev = out.insert(name.trim().to_owned(), hex.trim().to_owned());
            assert!(prev.is_none(), "{name} given twice");
        }
    }
    out
}

#[test]
fn docs_vectors_match_the_code() {
    let want = vectors();
    let got = documented_vectors();
    let listing: String = want.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    assert_eq!(got, want, "docs/protocol.md vectors differ from the code; the code gives:\n{listing}");
}

/// The documented proofs decode to what the tree proves.
#[test]
fn documented_proofs_decode() {
    let (tree, keys, _) = fixture();
    let docs = documented_vectors();
    for (name, k) in [keys[1], keys[3], keys[4]] {
        let bytes = hex::decode(&docs[&format!("proof {name}")]).unwrap();
        assert_eq!(Proof::decode(&bytes), Ok(tree.prove(&k)));
    }
}

/// A hostile root holding a leaf off its own path: key 0x80.. sits on the
/// left (bit 0 = 0) side. Its hashes chain up to the root, but the leaf does
/// not share key 0x00..'s first bit, so it cannot show that key absent.
#[test]
fn misplaced_leaf_is_refused() {
    let (misplaced, v) = (key(0x80), Hash([1; 32]));
    let right = leaf_hash(&key(0xc0), &Hash([2; 32]));
    let root = internal_hash(&leaf_hash(&misplaced, &v), &right);
    let proof =
        Proof { terminal: Terminal::Leaf { key_hash: misplaced, value_hash: v }, siblings: vec![right] };
    assert_eq!(verify(&root, &key(0x00), None, &proof), Err(VerifyError::PrefixMismatch(1)));
    assert_eq!(verify(&root, &key(0x00), Some(&v), &proof), Err(VerifyError::PrefixMismatch(1)));
}

/// A hostile root that wraps a lone leaf in single-child nodes (or puts an
/// empty pair where EMPTY belongs) commits to the same entries as the
/// canonical root but is another hash; proofs against it are refused, so
/// one map has one root.
#[test]
fn non_canonical_roots_are_refused() {
    let (k, v) = (key(0x00), Hash([1; 32]));
    let mut root = leaf_hash(&k, &v);
    let mut siblings = Vec::new();
    for _ in 0..3 {
        root = internal_hash(&root, &EMPTY);
        siblings.insert(0, EMPTY);
        let p = Proof { terminal: Terminal::Leaf { key_hash: k, value_hash: v }, siblings: siblings.clone() };
        assert_eq!(verify(&root, &k, Some(&v), &p), Err(VerifyError::NonCanonical(siblings.len())));
    }
    // An absent key under internal(EMPTY, leaf): the walk ends on EMPTY with
    // a lone leaf as sibling. The verifier cannot tell a leaf's hash from an
    // internal one, so this shape is only caught on the present key's side.
    let other = key(0x80);
    let root = internal_hash(&EMPTY, &leaf_hash(&other, &v));
    let p = Proof { terminal: Terminal::Leaf { key_hash: other, value_hash: v }, siblings: vec![EMPTY] };
    assert_eq!(verify(&root, &other, Some(&v), &p), Err(VerifyError::NonCanonical(1)));
    let empty = Proof { terminal: Terminal::Empty, siblings: vec![EMPTY] };
    let root = internal_hash(&EMPTY, &EMPTY);
    assert_eq!(verify(&root, &k, None, &empty), Err(VerifyError::NonCanonical(1)));
}
