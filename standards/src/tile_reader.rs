//! Client side of tlog-tiles: a [`HashReader`] that serves stored hashes
//! from fetched tiles, but only after authenticating every tile against a
//! trusted checkpoint root.
//!
//! Authentication order (the approach of Go's `tlog.TileHashReader`):
//! 1. The partial tiles of the tree at `size` are exactly the tiles holding
//!    the complete-subtree hashes the tree hash is built from, and together
//!    they cover every hash of those tiles. Recomputing the root from them
//!    and comparing it with the checkpoint root authenticates them all.
//! 2. Every other tile is full, and a full tile's contents hash to the hash
//!    its parent tile holds for it (spec: "each hash in a tile is the Merkle
//!    Tree Hash of a *full* tile at the level below"). Tiles are fetched
//!    parents first, so each is checked against an already-trusted parent.
//!
//! No hash is returned unless every fetched tile passed; a lying server
//! produces [`ReadError::Unauthenticated`], never a wrong hash.

use std::collections::HashMap;

use crate::hash::{node_hash, Hash};
use crate::stored::{HashReader, NodeId, ReadError};
use crate::tiles::{hash_from_tile, tile_for_node, tile_root, Tile};

/// Source of tile bodies, typically an HTTP client with a cache.
pub trait TileFetcher {
    /// Returns the body of each tile in `tiles`, in order, in one batched
    /// call so an implementation can fetch them concurrently. Bodies are
    /// untrusted: they are authenticated by the caller.
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError>;

    /// Called with the tiles of a successful read once every one of them has
    /// been authenticated; only now is it safe to put them in a persistent
    /// cache (mirrors Go's `TileReader.SaveTiles`). Default: do nothing.
    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

impl<T: TileFetcher + ?Sized> TileFetcher for &T {
    fn fetch_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadError> {
        (**self).fetch_tiles(tiles)
    }
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        (**self).save_tiles(tiles, data)
    }
}

/// Stored hashes of the tree of `size` leaves, served from authenticated
/// tiles. `root` must come from a verified checkpoint for `size`.
#[derive(Debug, Clone)]
pub struct TileHashReader<F> {
    size: u64,
    root: Hash,
    fetcher: F,
}

/// The complete subtrees, largest (leftmost) first, whose hashes make up the
/// root of a tree of `size` leaves (RFC 9162 section 2.1.1, split at the
/// largest power of two recursively).
fn subtree_roots(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let span = 1u64 << level;
        if size & span != 0 {
            out.push(NodeId::new(level, start >> level));
            start += span;
        }
    }
    out
}

/// What one read needs: tiles in authentication order and where each hash is.
struct Plan {
    tiles: Vec<Tile>,
    /// Tiles `0..root_tiles` are authenticated by the tree hash.
    root_tiles: usize,
    /// Per tree-hash subtree: its node and the tile holding it.
    roots: Vec<(NodeId, usize)>,
    /// Per requested node: the tile holding it.
    wanted: Vec<usize>,
    order: HashMap<Tile, usize>,
}

fn plan(size: u64, nodes: &[NodeId]) -> Result<Plan, ReadError> {
    let mut tiles = Vec::new();
    let mut order = HashMap::new();
    let mut roots = Vec::new();
    for node in subtree_roots(size) {
        let (tile, _) = tile_for_node(node, size)
            .unwrap_or_else(|e| panic!("tile math is broken: subtree root {node} of size {size}: {e}"));
        let j = *order.entry(tile).or_insert_with(|| {
            tiles.push(tile);
            tiles.len() - 1
        });
        roots.push((node, j));
    }
    let root_tiles = tiles.len();
    let mut wanted = Vec::with_capacity(nodes.len());
    for &node in nodes {
        let (tile, _) = tile_for_node(node, size).map_err(|_| ReadError::Missing(node))?;
        // Walk up to the first tile already planned (at worst a partial
        // tile, authenticated by the root), then plan the chain top-down.
        let mut chain = Vec::new();
        let mut t = tile;
        while !order.contains_key(&t) {
            chain.push(t);
            t = t.parent(size).unwrap_or_else(|| {
                panic!("tile math is broken: {t} at size {size} is unplanned but has no parent")
            });
        }
        for t in chain.into_iter().rev() {
            order.insert(t, tiles.len());
            tiles.push(t);
        }
        wanted.push(order[&tile]);
    }
    Ok(Plan { tiles, root_tiles, roots, wanted, order })
}

/// The tiles [`TileHashReader`] fetches to read `nodes` from the tree of
/// `size` leaves, parents before children. Why public: a client can
/// prefetch or warm a cache with exactly these.
pub fn fetch_plan(size: u64, nodes: &[NodeId]) -> Result<Vec<Tile>, ReadError> {
    Ok(plan(size, nodes)?.tiles)
}

impl<F: TileFetcher> TileHashReader<F> {
    /// A reader for the tree of `size` leaves with the trusted `root`.
    pub fn new(size: u64, root: Hash, fetcher: F) -> Self {
        TileHashReader { size, root, fetcher }
    }

    /// Tree size this reader serves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The trusted root every tile is checked against.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The underlying fetcher (for example to inspect its cache).
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }
}

fn broken(e: impl std::fmt::Display) -> ! {
    panic!("tile math is broken: {e}")
}

fn authenticate(size: u64, root: &Hash, p: &Plan, data: &[Vec<u8>]) -> Result<(), ReadError> {
    for (tile, body) in p.tiles.iter().zip(data) {
        if body.len() != tile.data_len() {
            return Err(ReadError::Unauthenticated(format!(
                "tile {tile} is {} bytes, want {}",
                body.len(),
                tile.data_len()
            )));
        }
    }
    // Step 1: the tree hash from the partial tiles, right to left.
    if let Some((&(last, lj), rest)) = p.roots.split_last() {
        let mut th = hash_from_tile(&p.tiles[lj], &data[lj], last).unwrap_or_else(|e| broken(e));
        for &(node, j) in rest.iter().rev() {
            let h = hash_from_tile(&p.tiles[j], &data[j], node).unwrap_or_else(|e| broken(e));
            th = node_hash(&h, &th);
        }
        if th != *root {
            let names: Vec<String> = p.tiles[..p.root_tiles].iter().map(Tile::path).collect();
            return Err(ReadError::Unauthenticated(format!(
                "tiles {} do not hash to the root of tree size {size}",
                names.join(", ")
            )));
        }
    }
    // Step 2: every full tile against its (earlier, authenticated) parent.
    for (i, tile) in p.tiles.iter().enumerate().skip(p.root_tiles) {
        let parent = tile.parent(size).unwrap_or_else(|| broken(format!("{tile} has no parent")));
        let j = *p.order.get(&parent).unwrap_or_else(|| broken(format!("parent of {tile} unplanned")));
        assert!(j < i, "tile math is broken: parent {parent} planned after {tile}");
        let slot = tile.root_node().unwrap_or_else(|| broken(format!("{tile} is not full")));
        let want = hash_from_tile(&parent, &data[j], slot).unwrap_or_else(|e| broken(e));
        let got = tile_root(tile, &data[i]).unwrap_or_else(|e| broken(e));
        if got != want {
            return Err(ReadError::Unauthenticated(format!(
                "tile {tile} does not hash to its entry in authenticated tile {parent}"
            )));
        }
    }
    Ok(())
}

impl<F: TileFetcher> HashReader for TileHashReader<F> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ReadError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let p = plan(self.size, ids)?;
        let data = self.fetcher.fetch_tiles(&p.tiles)?;
        if data.len() != p.tiles.len() {
            return Err(ReadError::Backend(
                format!("tile fetcher returned {} tiles for {} requested", data.len(), p.tiles.len()).into(),
            ));
        }
        authenticate(self.size, &self.root, &p, &data)?;
        self.fetcher.save_tiles(&p.tiles, &data);
        ids.iter()
            .zip(&p.wanted)
            .map(|(&id, &j)| Ok(hash_from_tile(&p.tiles[j], &data[j], id).unwrap_or_else(|e| broken(e))))
            .collect()
    }
}
