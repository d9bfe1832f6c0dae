//! The authenticated tile reader: proofs computed from served tiles equal
//! the store's, and any lie by the tile server is caught.

use std::cell::RefCell;

use custody_standards::memory::MemoryHashStore;
use custody_standards::proof::{
    consistency_proof, consistency_proof_nodes, inclusion_proof, inclusion_proof_nodes, tree_hash,
    tree_hash_nodes,
};
use custody_standards::tile_data::read_tile_data;
use custody_standards::tile_reader::fetch_plan;
use custody_standards::verify::{verify_consistency, verify_inclusion};
use custody_standards::{leaf_hash, Hash, HashReader, NodeId, ReadError, Tile, TileFetcher, TileHashReader};

type Tamper<'a> = Box<dyn Fn(&Tile, &mut Vec<u8>) + 'a>;

/// A tile server backed by a store, optionally lying about some tiles.
struct Server<'a> {
    store: &'a MemoryHashStore,
    tamper: Option<Tamper<'a>>,
    saved: RefCell<Vec<Tile>>,
}

impl<'a> Server<'a> {
    fn honest(store: &'a MemoryHashStore) -> Self {
        Server { store, tamper: None, saved: RefCell::new(Vec::new()) }
    }
    fn lying(store: &'a MemoryHashStore, tamper: impl Fn(&Tile, &mut Vec<u8>) + 'a) -> Self {
        Server { store, tamper: Some(Box::new(tamper)), saved: RefCell::new(Vec::new()) }
    }
}

impl TileFetcher for Server<'_> {
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
        tiles
            .iter()
            .map(|t| {
                let mut data = read_tile_data(t, self.store).map_err(|e| ReadError::Backend(Box::new(e)))?;
                if let Some(f) = &self.tamper {
                    f(t, &mut data);
                }
                Ok(data)
            })
            .collect()
    }
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        assert_eq!(tiles.len(), data.len());
        self.saved.borrow_mut().extend_from_slice(tiles);
    }
}

fn entry(i: u64, salt: &str) -> Hash {
    leaf_hash(format!("{salt} entry {i}").as_bytes())
}

fn grow(store: &mut MemoryHashStore, to: u64, salt: &str) {
    while store.size() < to {
        let i = store.size();
        store.append(entry(i, salt));
    }
}

/// Tree hash, inclusion and consistency through the tile reader at the
/// store's current size, compared with the store and verified.
fn check_size(store: &MemoryHashStore, indexes: &[u64], olds: &[u64]) {
    let s = store.size();
    let root = store.root();
    let server = Server::honest(store);
    let reader = TileHashReader::new(s, root, &server);
    assert_eq!(tree_hash(s, &reader).unwrap(), root, "size {s}");
    for &i in indexes.iter().filter(|&&i| i < s) {
        let proof = inclusion_proof(i, s, &reader).unwrap();
        assert_eq!(proof, inclusion_proof(i, s, store).unwrap(), "size {s} index {i}");
        verify_inclusion(&entry(i, "a"), i, s, &proof, &root).unwrap();
    }
    for &old in olds.iter().filter(|&&o| o >= 1 && o <= s) {
        let proof = consistency_proof(old, s, &reader).unwrap();
        assert_eq!(proof, consistency_proof(old, s, store).unwrap(), "{old} -> {s}");
        let old_root = tree_hash(old, store).unwrap();
        verify_consistency(old, s, &proof, &old_root, &root).unwrap();
    }
}

#[test]
fn reader_matches_store_for_every_size_to_1100() {
    let mut store = MemoryHashStore::new();
    for s in 1..=1100u64 {
        grow(&mut store, s, "a");
        check_size(
            &store,
            &[0, 1, s / 2, s.saturating_sub(257), s - 1, 255, 256, 511],
            &[1, s / 3, s - 1, 256, 257, 512],
        );
    }
}

#[test]
fn reader_serves_every_stored_hash() {
    let mut store = MemoryHashStore::new();
    for s in [1u64, 2, 3, 255, 256, 257, 511, 512, 513, 766, 1024, 1100] {
        grow(&mut store, s, "a");
        let all: Vec<NodeId> = (0..64u8).flat_map(|l| (0..s >> l).map(move |i| NodeId::new(l, i))).collect();
        let server = Server::honest(&store);
        let reader = TileHashReader::new(s, store.root(), &server);
        let got = reader.read_hashes(&all).unwrap();
        let want: Vec<Hash> = all.iter().map(|&n| store.get(n).unwrap()).collect();
        assert_eq!(got, want, "size {s}");
        // The hook saw exactly the planned (authenticated) tiles.
        assert_eq!(*server.saved.borrow(), fetch_plan(s, &all).unwrap());
    }
}

#[test]
fn reader_matches_store_beyond_65536() {
    let mut store = MemoryHashStore::new();
    for s in [65_535u64, 65_536, 65_537, 65_536 + 256, 70_000] {
        grow(&mut store, s, "a");
        check_size(&store, &[0, 255, 256, 65_535, s / 2, s - 1], &[1, 256, 65_535, 65_536, s - 1]);
    }
}

#[test]
fn fetch_plan_is_parents_first() {
    // Spec example tree of 70,000 leaves: the partial tiles (authenticated by
    // the root) come first, then full tiles from the top down.
    let t = |l, n, w| Tile::new(l, n, w).unwrap();
    let plan = fetch_plan(70_000, &[NodeId::leaf(0)]).unwrap();
    assert_eq!(plan, [t(2, 0, 1), t(1, 1, 17), t(0, 273, 112), t(1, 0, 256), t(0, 0, 256)]);
    let paths: Vec<String> = plan.iter().map(Tile::path).collect();
    assert_eq!(paths, ["tile/2/000.p/1", "tile/1/001.p/17", "tile/0/273.p/112", "tile/1/000", "tile/0/000"]);
    // The tree hash alone needs only the partial tiles.
    assert_eq!(fetch_plan(70_000, &tree_hash_nodes(70_000)).unwrap(), &plan[..3]);
    assert_eq!(fetch_plan(256, &[NodeId::leaf(3)]).unwrap(), [t(1, 0, 1), t(0, 0, 256)]);
}

#[test]
fn nodes_outside_the_tree_are_refused() {
    let mut store = MemoryHashStore::new();
    grow(&mut store, 300, "a");
    let server = Server::honest(&store);
    let reader = TileHashReader::new(300, store.root(), &server);
    for n in [NodeId::leaf(300), NodeId::new(8, 1), NodeId::new(2, 75), NodeId::new(64, 0), NodeId::new(9, 0)]
    {
        assert!(
            matches!(reader.read_hashes(&[NodeId::leaf(0), n]), Err(ReadError::Missing(m)) if m == n),
            "{n}"
        );
    }
    assert!(reader.read_hashes(&[]).unwrap().is_empty());
    let empty = TileHashReader::new(0, custody_standards::empty_root(), &server);
    assert!(matches!(empty.read_hashes(&[NodeId::leaf(0)]), Err(ReadError::Missing(_))));
    assert_eq!(tree_hash(0, &empty).unwrap(), custody_standards::empty_root());
    assert!(server.saved.borrow().is_empty());
}

/// Requests exercising every tile of the plan at `store.size()`.
fn requests(s: u64) -> Vec<NodeId> {
    let mut ids = tree_hash_nodes(s);
    ids.extend(inclusion_proof_nodes(0, s).unwrap());
    ids.extend(inclusion_proof_nodes(s - 1, s).unwrap());
    ids.extend(consistency_proof_nodes(1.max(s / 3), s).unwrap());
    ids
}

/// Reads `ids` through a server applying `tamper` only to `target`, and
/// demands an Unauthenticated error naming it, with nothing saved.
fn assert_rejected(store: &MemoryHashStore, ids: &[NodeId], target: Tile, tamper: impl Fn(&mut Vec<u8>)) {
    let s = store.size();
    let server = Server::lying(store, |t, d| {
        if *t == target {
            tamper(d)
        }
    });
    let reader = TileHashReader::new(s, store.root(), &server);
    match reader.read_hashes(ids) {
        Err(ReadError::Unauthenticated(msg)) => {
            assert!(msg.contains(&target.path()), "{msg} / {target}")
        }
        other => panic!("size {s}: tampered {target} gave {other:?}"),
    }
    assert!(server.saved.borrow().is_empty(), "unauthenticated tiles must not be saved");
}

#[test]
fn any_flipped_byte_is_caught() {
    // Exhaustive over every byte of every tile at one size.
    let mut store = MemoryHashStore::new();
    grow(&mut store, 300, "a");
    let ids = requests(300);
    let plan = fetch_plan(300, &ids).unwrap();
    assert_eq!(plan.len(), 3, "{plan:?}");
    for &target in &plan {
        for b in 0..target.data_len() {
            assert_rejected(&store, &ids, target, |d| d[b] ^= 1 << (b % 8));
        }
    }
}

#[test]
fn tampered_tiles_are_caught_at_many_sizes() {
    let mut store = MemoryHashStore::new();
    let mut other = MemoryHashStore::new();
    for s in [1u64, 2, 100, 255, 256, 257, 600, 1100, 65_537, 70_000] {
        grow(&mut store, s, "a");
        grow(&mut other, s, "b");
        let mut future = store.clone();
        grow(&mut future, s + 256, "a");
        let ids = requests(s);
        for target in fetch_plan(s, &ids).unwrap() {
            // One flipped bit in each hash of the tile.
            for h in 0..usize::from(target.width()) {
                assert_rejected(&store, &ids, target, |d| d[h * 32 + h % 32] ^= 0x80);
            }
            assert_rejected(&store, &ids, target, |d| d.truncate(d.len() - 1));
            assert_rejected(&store, &ids, target, |d| d.truncate(d.len() - 32));
            assert_rejected(&store, &ids, target, |d| d.extend_from_slice(&[0; 32]));
            assert_rejected(&store, &ids, target, Vec::clear);
            // The same coordinates from a different tree (same width).
            let foreign = read_tile_data(&target, &other).unwrap();
            assert_rejected(&store, &ids, target, |d| d.clone_from(&foreign));
            // The tile as it was (or will be) at other sizes.
            for other_size in [s - 1, s + 1, s + 256] {
                let at = Tile::at_size(target.level(), target.index(), other_size);
                if let Some(at) = at.filter(|a| a.width() != target.width()) {
                    let body = read_tile_data(&at, &future).unwrap();
                    assert_rejected(&store, &ids, target, |d| d.clone_from(&body));
                }
            }
            // Another tile's body of the same width, when there is one.
            if target.index() > 0 && target.is_full() {
                let left = Tile::new(target.level(), target.index() - 1, 256).unwrap();
                let body = read_tile_data(&left, &store).unwrap();
                assert_rejected(&store, &ids, target, |d| d.clone_from(&body));
            }
        }
    }
}

#[test]
fn wrong_root_or_fetcher_misbehaviour_is_an_error() {
    let mut store = MemoryHashStore::new();
    grow(&mut store, 1000, "a");
    let server = Server::honest(&store);
    // Honest tiles, but a root from another tree: nothing authenticates.
    let mut other = MemoryHashStore::new();
    grow(&mut other, 1000, "b");
    let reader = TileHashReader::new(1000, other.root(), &server);
    assert!(matches!(reader.read_hashes(&[NodeId::leaf(5)]), Err(ReadError::Unauthenticated(_))));
    assert!(tree_hash(1000, &reader).is_err());
    // A fetcher returning the wrong number of tiles is a backend bug.
    struct Short;
    impl TileFetcher for Short {
        fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
            Ok(vec![Vec::new(); tiles.len() - 1])
        }
    }
    let reader = TileHashReader::new(1000, store.root(), Short);
    assert!(matches!(reader.read_hashes(&[NodeId::leaf(5)]), Err(ReadError::Backend(_))));
    // Fetch errors pass through.
    let reader = TileHashReader::new(2000, store.root(), &server);
    assert!(matches!(reader.read_hashes(&[NodeId::leaf(5)]), Err(ReadError::Backend(_))));
}
