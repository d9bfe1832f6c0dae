//! C2SP tlog-tiles coordinates, paths, tile bodies and entry bundles.
//! (The authenticated tile reader is tested in `tile_reader.rs`.)

use std::cell::Cell;

use custody_standards::entries::{
    bundle_leaf_hashes, decode_bundle, decode_sequence, encode_bundle, EntryError, MAX_ENTRY_SIZE,
};
use custody_standards::tile_data::{read_tile_data, TileDataError};
use custody_standards::tiles::{
    hash_from_tile, parse_path, partial_width, tile_for_node, tile_root, tiles_for_nodes, TileError,
    MAX_PATH_LEN,
};
use custody_standards::{
    leaf_hash, node_hash, EntryBundle, Hash, HashReader, NodeId, ReadError, Tile, TilePath,
};
use proptest::prelude::*;

fn tile(level: u8, index: u64, width: u16) -> Tile {
    Tile::new(level, index, width).unwrap()
}

#[test]
fn known_paths_encode_and_parse() {
    let cases: &[(TilePath, &str)] = &[
        // The spec's example index, and the Go tile.go examples.
        (TilePath::Hash(tile(0, 1_234_067, 8)), "tile/0/x001/x234/067.p/8"),
        (TilePath::Hash(tile(0, 1_234_067, 256)), "tile/0/x001/x234/067"),
        (TilePath::Hash(tile(4, 1_234_067, 1)), "tile/4/x001/x234/067.p/1"),
        (TilePath::Hash(tile(3, 0, 256)), "tile/3/000"),
        (TilePath::Hash(tile(0, 0, 1)), "tile/0/000.p/1"),
        (TilePath::Hash(tile(0, 999, 255)), "tile/0/999.p/255"),
        (TilePath::Hash(tile(1, 1000, 256)), "tile/1/x001/000"),
        (TilePath::Hash(tile(63, 123_456_789, 17)), "tile/63/x123/x456/789.p/17"),
        (TilePath::Hash(tile(12, 5, 256)), "tile/12/005"),
        (TilePath::Hash(tile(0, u64::MAX, 256)), "tile/0/x018/x446/x744/x073/x709/x551/615"),
        (TilePath::Entries(EntryBundle::new(1_234_067, 256).unwrap()), "tile/entries/x001/x234/067"),
        (TilePath::Entries(EntryBundle::new(1_234_067, 8).unwrap()), "tile/entries/x001/x234/067.p/8"),
        (TilePath::Entries(EntryBundle::new(0, 1).unwrap()), "tile/entries/000.p/1"),
        (
            TilePath::Entries(EntryBundle::new(u64::MAX, 255).unwrap()),
            "tile/entries/x018/x446/x744/x073/x709/x551/615.p/255",
        ),
    ];
    for (want, path) in cases {
        assert_eq!(want.path(), *path);
        assert_eq!(parse_path(path).unwrap(), *want, "{path}");
        assert!(path.len() <= MAX_PATH_LEN);
    }
    assert_eq!(tile(2, 7, 3).to_string(), "tile/2/007.p/3");
    assert_eq!(Tile::parse_path("tile/0/000").unwrap(), tile(0, 0, 256));
    assert!(Tile::parse_path("tile/entries/000").is_err());
    assert!(EntryBundle::parse_path("tile/0/000").is_err());
}

#[test]
fn bad_paths_are_rejected() {
    let long = format!("tile/0/{}000", "x001/".repeat(20));
    let bad = [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tile/0/000/",
        "tiles/0/000",
        "Tile/0/000",
        "tile/00/000",                                   // leading zero in L
        "tile/01/000",                                   // leading zero in L
        "tile/64/000",                                   // L above 63
        "tile/100/000",                                  // L above 63
        "tile/-1/000",                                   // negative L
        "tile/+1/000",                                   // sign
        "tile/data/000",                                 // Go's level name, not the spec's
        "tile/entry/000",                                // misspelt entries
        "tile/0/00",                                     // short group
        "tile/0/0000",                                   // long group
        "tile/0/1",                                      // unpadded
        "tile/0/x000",                                   // x on the last group
        "tile/0/001/234",                                // missing x
        "tile/0/x1/234",                                 // short x group
        "tile/0/x0001/234",                              // long x group
        "tile/0/x000/001",                               // non-canonical zero leading group
        "tile/0/x001/x234",                              // last group with x
        "tile/0/X001/234",                               // uppercase X
        "tile/0/x001/x234/067.p/256",                    // a full tile never has .p/256
        "tile/0/000.p/0",                                // W below 1
        "tile/0/000.p/00",                               // W leading zero
        "tile/0/000.p/010",                              // W leading zero
        "tile/0/000.p/",                                 // missing W
        "tile/0/000.p",                                  // missing /W
        "tile/0/000.p/1/2",                              // extra element
        "tile/0/000.q/1",                                // wrong suffix
        "tile/0/000.p/1 ",                               // trailing space
        "tile/0/000.p/+1",                               // sign in W
        "tile/0/000.p/1000",                             // W far too large
        "tile/0/0a0",                                    // non-digit
        "tile/0/x01a/000",                               // non-digit in x group
        "tile/0/x018/x446/x744/x073/x709/x551/616",      // N = u64::MAX + 1
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615", // 8 groups
        "tile/0/٠٠٠",                                    // Arabic-Indic digits (non-ASCII)
        "tile/０/000",                                   // full-width digit
        "tile/entries/000.p/256",
        "tile/entries/x000",
        "tile/entries",
        "tile/entries/",
        "tile/0//000",
        "tile/0/000\n",
        &long, // overlong, rejected before parsing
    ];
    assert!(bad.len() >= 15);
    for path in bad {
        match parse_path(path) {
            Err(TileError::BadPath(echo)) => assert!(echo.len() <= MAX_PATH_LEN, "{path:?}"),
            other => panic!("{path:?} parsed as {other:?}"),
        }
    }
}

#[test]
fn constructor_bounds() {
    assert_eq!(Tile::new(64, 0, 1), Err(TileError::Level(64)));
    assert_eq!(Tile::new(0, 0, 0), Err(TileError::Width(0)));
    assert_eq!(Tile::new(0, 0, 257), Err(TileError::Width(257)));
    assert_eq!(EntryBundle::new(0, 0), Err(TileError::Width(0)));
    assert!(Tile::new(63, u64::MAX, 256).is_ok());
}

proptest! {
    #[test]
    fn path_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
        let t = Tile::new(level, index, width).unwrap();
        prop_assert_eq!(parse_path(&t.path()).unwrap(), TilePath::Hash(t));
        prop_assert_eq!(t.path().ends_with(".p/256"), false);
        let b = EntryBundle::new(index, width).unwrap();
        prop_assert_eq!(parse_path(&b.path()).unwrap(), TilePath::Entries(b));
    }

    #[test]
    fn parse_never_panics_and_accepts_only_canonical(s in "tile/[0-9a-z]{0,3}/[0-9x./]{0,30}") {
        if let Ok(p) = parse_path(&s) {
            prop_assert_eq!(p.path(), s);
        }
    }
}

#[test]
fn spec_partial_tile_examples() {
    // Spec: "a tree of size 70,000 will be represented by 273 full level 0
    // tiles, one partial level 0 tile of width 112, one full level 1 tile,
    // one partial level 1 tile of width 17, and one partial level 2 tile of
    // width 1."
    let s = 70_000;
    assert!(Tile::at_size(0, 272, s).unwrap().is_full());
    assert_eq!(Tile::at_size(0, 273, s), Some(tile(0, 273, 112)));
    assert_eq!(Tile::at_size(0, 274, s), None);
    assert!(Tile::at_size(1, 0, s).unwrap().is_full());
    assert_eq!(Tile::at_size(1, 1, s), Some(tile(1, 1, 17)));
    assert_eq!(Tile::at_size(2, 0, s), Some(tile(2, 0, 1)));
    assert_eq!(Tile::at_size(3, 0, s), None);
    assert_eq!((0..4).map(|l| partial_width(l, s)).collect::<Vec<_>>(), [112, 17, 1, 0]);
    // "a tree of size 256 will be represented by a full level 0 tile and a
    // partial level 1 tile of width 1."
    assert_eq!(Tile::at_size(0, 0, 256), Some(tile(0, 0, 256)));
    assert_eq!(partial_width(0, 256), 0);
    assert_eq!(Tile::at_size(1, 0, 256), Some(tile(1, 0, 1)));
    // Extremes: the largest tree has a single level-7 tile, nothing above.
    assert_eq!(Tile::at_size(7, 0, u64::MAX), Some(tile(7, 0, 255)));
    assert_eq!(Tile::at_size(8, 0, u64::MAX), None);
    assert_eq!(Tile::at_size(63, 0, u64::MAX), None);
    assert_eq!(Tile::at_size(0, u64::MAX, u64::MAX), None);
    assert_eq!(partial_width(63, u64::MAX), 0);
    // Parents: a full tile's parent holds its hash; partial tiles have none.
    assert_eq!(tile(0, 273, 256).parent(70_000), None, "not in the tree at that size");
    assert_eq!(tile(0, 272, 256).parent(70_000), Some(tile(1, 1, 17)));
    assert_eq!(tile(0, 272, 256).root_node(), Some(NodeId::new(8, 272)));
    assert_eq!(tile(1, 0, 256).parent(70_000), Some(tile(2, 0, 1)));
    assert_eq!(tile(0, 273, 112).parent(70_000), None);
    assert_eq!(EntryBundle::for_entry(69_999, s), Some((EntryBundle::new(273, 112).unwrap(), 111)));
    assert_eq!(EntryBundle::for_entry(70_000, s), None);
    assert_eq!(EntryBundle::at_size(273, s).unwrap().hash_tile(), tile(0, 273, 112));
}

#[test]
fn tile_for_node_positions() {
    let s = 70_000;
    assert_eq!(tile_for_node(NodeId::leaf(0), s).unwrap(), (tile(0, 0, 256), 0..1));
    assert_eq!(tile_for_node(NodeId::leaf(69_999), s).unwrap(), (tile(0, 273, 112), 111..112));
    // Level 3 node 5 covers level-0 hashes 40..48 of tile 0.
    assert_eq!(tile_for_node(NodeId::new(3, 5), s).unwrap(), (tile(0, 0, 256), 40..48));
    // Level 7 node 1 = second half of tile 0; level 8 node 1 lives in tile 1/000.
    assert_eq!(tile_for_node(NodeId::new(7, 1), s).unwrap(), (tile(0, 0, 256), 128..256));
    assert_eq!(tile_for_node(NodeId::new(8, 1), s).unwrap(), (tile(1, 0, 256), 1..2));
    assert_eq!(tile_for_node(NodeId::new(12, 16), s).unwrap(), (tile(1, 1, 17), 0..16));
    assert_eq!(tile_for_node(NodeId::new(16, 0), s).unwrap(), (tile(2, 0, 1), 0..1));
    // Not (yet) in the tree.
    for n in [
        NodeId::leaf(70_000),
        NodeId::new(4, 4375),
        NodeId::new(17, 0),
        NodeId::new(64, 0),
        NodeId::new(200, 0),
    ] {
        assert!(matches!(tile_for_node(n, s), Err(TileError::NotInTile { .. })), "{n}");
    }
    assert_eq!(tile_for_node(NodeId::new(63, 0), u64::MAX).unwrap(), (tile(7, 0, 255), 0..128));
    let tiles =
        tiles_for_nodes(&[NodeId::leaf(1), NodeId::leaf(2), NodeId::new(8, 1), NodeId::leaf(300)], 70_000)
            .unwrap();
    assert_eq!(tiles, [tile(0, 0, 256), tile(1, 0, 256), tile(0, 1, 256)]);
}

/// A flat tree of `n` leaves: leaf hashes, and a reader computing any
/// stored hash from them (independent of the crate's store).
struct Flat {
    leaves: Vec<Hash>,
    calls: Cell<usize>,
}

impl Flat {
    fn new(n: u64) -> Flat {
        Flat {
            leaves: (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect(),
            calls: Cell::new(0),
        }
    }
    fn mth(&self, lo: usize, hi: usize) -> Hash {
        if hi - lo == 1 {
            return self.leaves[lo];
        }
        let k = (hi - lo).next_power_of_two() / 2;
        node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
    }
}

impl HashReader for Flat {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        self.calls.set(self.calls.get() + 1);
        ids.iter()
            .map(|&id| {
                let (a, b) = id.leaf_range().ok_or(ReadError::Missing(id))?;
                if b > self.leaves.len() as u64 {
                    return Err(ReadError::Missing(id));
                }
                Ok(self.mth(a as usize, b as usize))
            })
            .collect()
    }
}

#[test]
fn tile_data_and_hashes_from_tiles() {
    let flat = Flat::new(600);
    let t = tile(0, 1, 256);
    let data = read_tile_data(&t, &flat).unwrap();
    assert_eq!(flat.calls.get(), 1, "one batched read per tile");
    let want: Vec<u8> = flat.leaves[256..512].iter().flat_map(|h| h.0).collect();
    assert_eq!(data, want, "a level-0 tile is the concatenated leaf hashes");
    // Every level-0..7 node inside the tile hashes like the tree.
    for level in 0..8u8 {
        for i in 0..(256u64 >> level) {
            let node = NodeId::new(level, (256 >> level) + i);
            let (a, b) = node.leaf_range().unwrap();
            assert_eq!(hash_from_tile(&t, &data, node).unwrap(), flat.mth(a as usize, b as usize));
        }
    }
    assert_eq!(tile_root(&t, &data).unwrap(), flat.mth(256, 512));
    // Outside the tile, wrong level, wrong length, partial root: errors.
    assert!(matches!(hash_from_tile(&t, &data, NodeId::leaf(255)), Err(TileError::NotInTile { .. })));
    assert!(matches!(hash_from_tile(&t, &data, NodeId::new(8, 1)), Err(TileError::NotInTile { .. })));
    assert!(matches!(hash_from_tile(&t, &data[1..], NodeId::leaf(256)), Err(TileError::DataLength { .. })));
    let p = tile(0, 2, 88);
    let pdata = read_tile_data(&p, &flat).unwrap();
    assert_eq!(pdata.len(), 88 * 32);
    assert!(matches!(tile_root(&p, &pdata), Err(TileError::Partial(_))));
    assert!(matches!(hash_from_tile(&p, &pdata, NodeId::new(4, 37)), Err(TileError::NotInTile { .. })));
    assert_eq!(hash_from_tile(&p, &pdata, NodeId::new(3, 74)).unwrap(), flat.mth(592, 600));
    // Level-1 tile: one hash per full level-0 tile.
    let l1 = tile(1, 0, 2);
    let d1 = read_tile_data(&l1, &flat).unwrap();
    assert_eq!(&d1[..32], &flat.mth(0, 256).0);
    assert_eq!(&d1[32..], &flat.mth(256, 512).0);
    // A tile wider than the tree, or beyond any tree, cannot be built.
    assert!(matches!(
        read_tile_data(&tile(0, 2, 89), &flat),
        Err(TileDataError::Read(ReadError::Missing(_)))
    ));
    assert!(matches!(
        read_tile_data(&tile(40, 0, 1), &flat),
        Err(TileDataError::Tile(TileError::OutOfRange(_)))
    ));
    assert!(matches!(read_tile_data(&tile(0, u64::MAX, 256), &flat), Err(TileDataError::Tile(_))));
}

#[test]
fn entry_bundle_round_trip() {
    let entries: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; i * 7 % 300]).collect();
    let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let data = encode_bundle(&refs).unwrap();
    assert_eq!(decode_bundle(&data, 256).unwrap(), refs);
    // Known answer: big-endian uint16 length prefix, then the bytes.
    assert_eq!(encode_bundle(&[b"ab", b"", &[7u8; 258]]).unwrap()[..7], [0, 2, b'a', b'b', 0, 0, 1]);
    assert_eq!(encode_bundle(&[b"ab", b""]).unwrap(), [0, 2, b'a', b'b', 0, 0]);
    // Leaf hashes of a bundle are the level-0 tile body.
    let flat_like: Vec<Hash> = bundle_leaf_hashes(&refs);
    assert_eq!(flat_like[3], leaf_hash(&entries[3]));
    // The largest entry fits; one byte more does not.
    let big = vec![1u8; MAX_ENTRY_SIZE];
    let d = encode_bundle(&[&big]).unwrap();
    assert_eq!(&d[..2], &[0xff, 0xff]);
    assert_eq!(decode_bundle(&d, 1).unwrap(), [big.as_slice()]);
    let too_big = vec![1u8; MAX_ENTRY_SIZE + 1];
    assert_eq!(
        encode_bundle(&[b"x", &too_big]),
        Err(EntryError::TooLarge { index: 1, len: MAX_ENTRY_SIZE + 1 })
    );
    // Counts.
    assert_eq!(encode_bundle(&[]), Err(EntryError::Count(0)));
    assert_eq!(encode_bundle(&vec![&b"x"[..]; 257]), Err(EntryError::Count(257)));
    assert_eq!(decode_bundle(&data, 0), Err(EntryError::Count(0)));
    assert_eq!(decode_bundle(&data, 257), Err(EntryError::Count(257)));
}

#[test]
fn entry_bundle_decoding_is_strict() {
    let data = encode_bundle(&[b"hello", b"", b"world!"]).unwrap();
    assert_eq!(decode_bundle(&data, 3).unwrap(), [&b"hello"[..], b"", b"world!"]);
    // Every truncation fails (none silently decodes to fewer bytes).
    for cut in 0..data.len() {
        assert!(matches!(decode_bundle(&data[..cut], 3), Err(EntryError::Truncated(_))), "cut {cut}");
    }
    // Fewer entries expected than present: trailing bytes.
    assert_eq!(decode_bundle(&data, 2), Err(EntryError::TrailingBytes(8)));
    let mut extra = data.clone();
    extra.push(0);
    assert_eq!(decode_bundle(&extra, 3), Err(EntryError::TrailingBytes(1)));
    // More expected than present.
    assert_eq!(decode_bundle(&data, 4), Err(EntryError::Truncated(3)));
    // A length prefix pointing past the end.
    assert_eq!(decode_bundle(&[0, 5, 1, 2], 1), Err(EntryError::Truncated(0)));
    assert_eq!(decode_bundle(&[0], 1), Err(EntryError::Truncated(0)));
}

/// A sequence of any length reads back what its bundle encoding holds, and
/// every cut that does not fall on an entry boundary is refused.
#[test]
fn entry_sequences_of_any_length_are_strict() {
    let entries: Vec<Vec<u8>> = (0..300u16).map(|i| vec![i as u8; usize::from(i % 7)]).collect();
    let mut body = Vec::new();
    let mut boundaries = vec![0];
    for e in &entries {
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(e);
        boundaries.push(body.len());
    }
    let got = decode_sequence(&body).unwrap();
    assert_eq!(got.len(), 300, "longer than a bundle's 256");
    assert!(got.iter().zip(&entries).all(|(g, e)| g == e));
    for cut in 0..body.len() {
        match boundaries.iter().position(|&b| b == cut) {
            Some(0) => assert_eq!(decode_sequence(&body[..cut]), Err(EntryError::Empty)),
            Some(n) => assert_eq!(decode_sequence(&body[..cut]).unwrap().len(), n),
            None => {
                assert!(matches!(decode_sequence(&body[..cut]), Err(EntryError::Truncated(_))), "cut {cut}")
            }
        }
    }
    assert_eq!(decode_sequence(&[0, 2, 9]), Err(EntryError::Truncated(0)));
}
