//! State-map proofs: decoding never panics, a decoded proof re-encodes to
//! the same bytes, and verifying it against a fixed map never panics and
//! succeeds only for the one proof the tree itself gives.
#![no_main]
use std::sync::OnceLock;

use custody_registry::state_map::{verify, Hash, Proof, Tree};
use libfuzzer_sys::fuzz_target;

/// A fixed map whose keys share prefixes, so fuzzed proofs of moderate
/// depth can reach real roots.
fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        Tree::from_entries((0u8..16).map(|i| {
            let mut k = [0u8; 32];
            k[0] = i.wrapping_mul(17);
            k[31] = i;
            (Hash(k), Hash([i + 1; 32]))
        }))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = Proof::decode(data) else { return };
    assert_eq!(proof.encode(), data, "proof does not round-trip");
    let tree = tree();
    let root = tree.root();
    // Try the proof for the key its terminal names and for a fixed probe.
    let mut keys = vec![Hash([0; 32])];
    if let custody_registry::state_map::Terminal::Leaf { key_hash, .. } = &proof.terminal {
        keys.push(*key_hash);
    }
    for key in keys {
        let value = tree.get(&key);
        if verify(&root, &key, value.as_ref(), &proof).is_ok() {
            assert_eq!(proof, tree.prove(&key), "a second proof verifies for one (root, key)");
        }
        let _ = verify(&root, &key, None, &proof);
        let _ = verify(&root, &key, Some(&Hash([1; 32])), &proof);
    }
});
