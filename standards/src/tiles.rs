//! [C2SP tlog-tiles](https://c2sp.org/tlog-tiles) coordinates: which tile
//! holds which stored hash ([Merkle Tree](https://c2sp.org/tlog-tiles#merkle-tree)),
//! how a tile looks at a given tree size ([Partial Tiles](https://c2sp.org/tlog-tiles#partial-tiles)),
//! and the exact `tile/...` resource paths of tiles and entry bundles
//! ([Log entries](https://c2sp.org/tlog-tiles#log-entries)).
//!
//! Two types, on purpose: [`Tile`] is a *hash* tile (`tile/<L>/<N>[.p/<W>]`)
//! and [`EntryBundle`] is an entry bundle (`tile/entries/<N>[.p/<W>]`). They
//! share the `<N>[.p/<W>]` grammar but never their contents, so keeping them
//! apart makes it a type error to hash an entry bundle as if it were a tile.
//! [`parse_path`] reads either and says which one it was ([`TilePath`]).
//!
//! Spec (tlog-tiles, "Merkle Tree"): "the *n*-th tile at level *l* ... is the
//! sequence of the following Merkle Tree Hashes, with *i* from 0 to 255:
//! `MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l])`". In
//! [`NodeId`] terms that is the stored hash `(8l, 256n + i)`; the stored
//! hashes at tree levels `8l+1 ..= 8l+7` are not served but recomputed from a
//! power-of-two run of the tile's hashes ([`hash_from_tile`]).

use std::fmt;
use std::ops::Range;

use crate::hash::{node_hash, Hash, HASH_SIZE};
use crate::stored::NodeId;

/// Tree levels per tile (spec: "a tile represents the entire subtree of
/// height 8").
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile (spec: "Full tiles MUST be exactly 256 hashes wide").
pub const TILE_WIDTH: u16 = 256;
/// Bytes in a full tile (spec: "or 8,192 bytes").
pub const FULL_TILE_BYTES: usize = TILE_WIDTH as usize * HASH_SIZE;
/// Highest tile level the path grammar admits (spec: "`<L>` ... MUST be a
/// decimal ASCII integer between 0 and 63"). Note that with `u64` tree sizes
/// only levels `0..=7` can ever hold a hash; higher levels parse but are
/// never "in the tree" ([`Tile::at_size`] returns `None`).
pub const MAX_TILE_LEVEL: u8 = 63;
/// Longest path [`parse_path`] will look at. The longest valid path,
/// `tile/entries/x018/x446/x744/x073/x709/x551/615.p/255`, is 52 bytes; the
/// cap bounds work on hostile input before any parsing happens.
pub const MAX_PATH_LEN: usize = 64;
/// `Content-Type` of hash tiles (spec: "with `Content-Type:
/// application/octet-stream`").
pub const TILE_CONTENT_TYPE: &str = "application/octet-stream";
/// `Content-Type` of entry bundles (same spec wording as for tiles).
pub const ENTRY_BUNDLE_CONTENT_TYPE: &str = "application/octet-stream";
/// `Content-Type` of `<prefix>/checkpoint` (spec: "with `Content-Type:
/// text/plain; charset=utf-8`").
pub const CHECKPOINT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// Path of the checkpoint below the log prefix.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// Why a tile coordinate, path or tile body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// The path does not follow the spec grammar (or is not its canonical
    /// spelling); carries the offending path, truncated to the length cap.
    #[error("malformed tile path {0:?}")]
    BadPath(String),
    /// Tile level above [`MAX_TILE_LEVEL`].
    #[error("tile level {0} is above the maximum 63")]
    Level(u8),
    /// Width outside `1..=256`.
    #[error("tile width {0} is not in 1..=256")]
    Width(u16),
    /// Tile data whose length is not exactly `width * 32` bytes.
    #[error("tile {tile} must be {want} bytes, got {got}")]
    DataLength {
        /// Path of the tile.
        tile: String,
        /// Expected length.
        want: usize,
        /// Actual length.
        got: usize,
    },
    /// The stored hash is not part of the tree (or tile) it was looked up in.
    #[error("stored hash {node} is not in {within}")]
    NotInTile {
        /// The node asked for.
        node: NodeId,
        /// The tile path or tree size it was looked for in.
        within: String,
    },
    /// A partial tile was used where only a full tile makes sense (only full
    /// tiles are hashed into their parent).
    #[error("tile {0} is partial")]
    Partial(String),
    /// The tile can never exist in a log with `u64` entry indexes.
    #[error("tile {0} lies beyond any possible tree")]
    OutOfRange(String),
}

/// A hash tile: `width` consecutive stored hashes at tree level `8 * level`,
/// starting at stored index `256 * index`.
///
/// Fields are private so every `Tile` satisfies the spec bounds
/// (`level <= 63`, `1 <= width <= 256`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

/// An entry bundle: `width` consecutive log entries starting at entry
/// `256 * index`, the data counterpart of level-0 tile `index`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EntryBundle {
    index: u64,
    width: u16,
}

/// What a `tile/...` path names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Hash(Tile),
    /// `tile/entries/<N>[.p/<W>]`.
    Entries(EntryBundle),
}

fn check_width(width: u16) -> Result<(), TileError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TileError::Width(width));
    }
    Ok(())
}

/// Number of stored hashes at tree level `8 * level` in a tree of `size`
/// leaves (`floor(size / 256**level)`), zero when that level cannot exist.
fn hashes_at_tile_level(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    size.checked_shr(shift).unwrap_or(0)
}

/// The tile (or bundle) at `index` in a row of `count` items, as it exists
/// with that many items: full, partial, or absent (`None`).
fn width_in_row(index: u64, count: u64) -> Option<u16> {
    let start = index.checked_mul(u64::from(TILE_WIDTH))?;
    if start >= count {
        return None;
    }
    Some((count - start).min(u64::from(TILE_WIDTH)) as u16)
}

/// Width of the rightmost (partial) tile at `level` for a tree of `size`;
/// zero means that level has no partial tile. Spec: "The partial tile at
/// level *l* for a tree of size *s* has `floor(s / 256**l) mod 256` entries."
pub fn partial_width(level: u8, size: u64) -> u16 {
    (hashes_at_tile_level(level, size) % u64::from(TILE_WIDTH)) as u16
}

impl Tile {
    /// A hash tile with explicit coordinates, checked against the spec bounds.
    pub fn new(level: u8, index: u64, width: u16) -> Result<Tile, TileError> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::Level(level));
        }
        check_width(width)?;
        Ok(Tile { level, index, width })
    }

    /// Tile `(level, index)` as it exists in a tree of `size` leaves (full or
    /// partial), or `None` if the tree has no hash in it yet ("Empty tiles
    /// MUST NOT be served").
    pub fn at_size(level: u8, index: u64, size: u64) -> Option<Tile> {
        if level > MAX_TILE_LEVEL {
            return None;
        }
        let width = width_in_row(index, hashes_at_tile_level(level, size))?;
        Some(Tile { level, index, width })
    }

    /// Tile level `L` (its hashes are at tree level `8L`).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Tile index `N` within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes in the tile (`256` when full).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile holds all 256 hashes and therefore never changes.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Exact body length: `width * 32` bytes.
    pub fn data_len(&self) -> usize {
        usize::from(self.width) * HASH_SIZE
    }

    /// The resource path, e.g. `tile/0/x001/x234/067.p/8`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, encode_index_width(self.index, self.width))
    }

    /// Strictly parses a hash-tile path (entry bundle paths are rejected).
    /// The grammar is [`parse_path`]'s: `tile/<L>/<N>[.p/<W>]`
    /// ([tlog-tiles, Merkle Tree](https://c2sp.org/tlog-tiles#merkle-tree)).
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::tiles::{Tile, TileError};
    ///
    /// // The spec's example index 1234067, as a partial level-0 tile of 8 hashes.
    /// let tile = Tile::parse_path("tile/0/x001/x234/067.p/8")?;
    /// assert_eq!((tile.level(), tile.index(), tile.width()), (0, 1234067, 8));
    /// assert_eq!(tile.data_len(), 8 * 32);
    ///
    /// // An entry bundle path names data, not hashes: refused here.
    /// assert!(matches!(Tile::parse_path("tile/entries/x001/x234/067"), Err(TileError::BadPath(_))));
    /// # Ok::<(), TileError>(())
    /// ```
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        match parse_path(path)? {
            TilePath::Hash(t) => Ok(t),
            TilePath::Entries(_) => Err(bad_path(path)),
        }
    }

    /// The `i`-th hash of the tile as a stored-hash address, if that address
    /// is representable (tile levels above 31 are not).
    pub fn node(&self, i: u16) -> Option<NodeId> {
        let tree_level = self.level.checked_mul(TILE_HEIGHT)?;
        let idx = self.index.checked_mul(u64::from(TILE_WIDTH))?.checked_add(u64::from(i))?;
        let node = NodeId::new(tree_level, idx);
        node.leaf_range()?;
        Some(node)
    }

    /// The stored hashes this tile serves, in order; an error for a tile no
    /// `u64` tree can contain. Why: servers build tile bodies from exactly
    /// these, and clients check a tile's place in the tree with them.
    pub fn nodes(&self) -> Result<Vec<NodeId>, TileError> {
        (0..self.width).map(|i| self.node(i).ok_or_else(|| TileError::OutOfRange(self.path()))).collect()
    }

    /// The stored hash a *full* tile's contents hash to: `(8(L+1), N)`, the
    /// hash the parent tile holds for it (spec: "each hash in a tile is the
    /// Merkle Tree Hash of a *full* tile at the level below"). `None` for a
    /// partial tile, which "MUST NOT be hashed into a tile at the level above".
    pub fn root_node(&self) -> Option<NodeId> {
        if !self.is_full() {
            return None;
        }
        let level = (self.level.checked_add(1)?).checked_mul(TILE_HEIGHT)?;
        let node = NodeId::new(level, self.index);
        node.leaf_range()?;
        Some(node)
    }

    /// The parent tile, as it exists in a tree of `size`, holding the hash of
    /// this tile's contents at offset `index % 256`. `None` for a partial tile
    /// or one not in the tree at `size`.
    pub fn parent(&self, size: u64) -> Option<Tile> {
        let root = self.root_node()?;
        if root.leaf_range()?.1 > size {
            return None;
        }
        Tile::at_size(self.level + 1, self.index >> TILE_HEIGHT, size)
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl EntryBundle {
    /// A bundle with explicit coordinates, checked against the spec bounds.
    pub fn new(index: u64, width: u16) -> Result<EntryBundle, TileError> {
        check_width(width)?;
        Ok(EntryBundle { index, width })
    }

    /// Bundle `index` as it exists in a log of `size` entries, or `None` if
    /// it holds no entry yet.
    pub fn at_size(index: u64, size: u64) -> Option<EntryBundle> {
        let width = width_in_row(index, size)?;
        Some(EntryBundle { index, width })
    }

    /// The bundle holding entry `entry` in a log of `size` entries, and the
    /// entry's position inside it.
    pub fn for_entry(entry: u64, size: u64) -> Option<(EntryBundle, u16)> {
        if entry >= size {
            return None;
        }
        let bundle = EntryBundle::at_size(entry / u64::from(TILE_WIDTH), size)?;
        Some((bundle, (entry % u64::from(TILE_WIDTH)) as u16))
    }

    /// Bundle index `N`.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of entries in the bundle (`256` when full).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the bundle holds all 256 entries and never changes.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The level-0 hash tile whose hashes are the leaf hashes of this
    /// bundle's entries (spec: "Each entry in a bundle hashes to the
    /// corresponding entry in the corresponding level 0 Merkle Tree tile").
    pub fn hash_tile(&self) -> Tile {
        Tile { level: 0, index: self.index, width: self.width }
    }

    /// The resource path, e.g. `tile/entries/x001/x234/067.p/8`.
    pub fn path(&self) -> String {
        format!("tile/entries/{}", encode_index_width(self.index, self.width))
    }

    /// Strictly parses an entry bundle path (hash-tile paths are rejected).
    ///
    /// Spec ([tlog-tiles, Log entries](https://c2sp.org/tlog-tiles#log-entries)):
    /// bundles are served at `<prefix>/tile/entries/<N>[.p/<W>]`, where
    /// "`<N>` and `.p/<W>` have the same meaning as in Merkle Tree tile paths".
    ///
    /// # Examples
    ///
    /// ```rust
    /// use custody_standards::tiles::{EntryBundle, TileError};
    ///
    /// let bundle = EntryBundle::parse_path("tile/entries/x001/x234/067")?;
    /// assert_eq!((bundle.index(), bundle.width()), (1234067, 256));
    /// assert!(bundle.is_full());
    ///
    /// // "All but the last path element MUST begin with an `x`".
    /// assert!(matches!(
    ///     EntryBundle::parse_path("tile/entries/001/x234/067"),
    ///     Err(TileError::BadPath(_))
    /// ));
    /// # Ok::<(), TileError>(())
    /// ```
    pub fn parse_path(path: &str) -> Result<EntryBundle, TileError> {
        match parse_path(path)? {
            TilePath::Entries(b) => Ok(b),
            TilePath::Hash(_) => Err(bad_path(path)),
        }
    }
}

impl fmt::Display for EntryBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl TilePath {
    /// The canonical path string.
    pub fn path(&self) -> String {
        match self {
            TilePath::Hash(t) => t.path(),
            TilePath::Entries(b) => b.path(),
        }
    }
}

/// `<N>[.p/<W>]`. Spec: "`<N>` ... encoded into zero-padded 3-digit path
/// elements. All but the last path element MUST begin with an `x`", and the
/// `.p/<W>` suffix "is only present for partial tiles".
fn encode_index_width(index: u64, width: u16) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut out = String::with_capacity(40);
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{g:03}/"));
        } else {
            out.push_str(&format!("{g:03}"));
        }
    }
    if width != TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

fn bad_path(path: &str) -> TileError {
    // Never echo more than the cap: the path may be attacker-sized.
    let mut end = path.len().min(MAX_PATH_LEN);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    TileError::BadPath(path[..end].to_owned())
}

/// A decimal with no leading zeros ("with no additional leading zeroes"),
/// at most `max_digits` long.
fn parse_plain_decimal(s: &str, max_digits: usize) -> Option<u64> {
    if s.len() > max_digits {
        return None;
    }
    crate::encoding::parse_decimal_u64(s)
}

fn parse_group(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse().ok()
}

/// Strictly parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`
/// (without the log prefix). Only the canonical spelling is accepted, so
/// each tile has exactly one path and caches cannot be split or poisoned by
/// look-alike names.
///
/// Spec ([tlog-tiles, Merkle Tree](https://c2sp.org/tlog-tiles#merkle-tree)):
/// "`<L>` is the “level” of the tile, and MUST be a decimal ASCII integer
/// between 0 and 63, with no additional leading zeroes"; "`<N>` ... MUST be
/// a non-negative integer encoded into zero-padded 3-digit path elements.
/// All but the last path element MUST begin with an `x`"; "`<W>` is the
/// width of the tile, a decimal ASCII integer between 1 and 255, with no
/// additional leading zeroes". Entry bundles: [Log
/// entries](https://c2sp.org/tlog-tiles#log-entries).
///
/// # Examples
///
/// ```rust
/// use custody_standards::tiles::{parse_path, TileError, TilePath};
///
/// match parse_path("tile/1/x001/234.p/17")? {
///     TilePath::Hash(t) => assert_eq!((t.level(), t.index(), t.width()), (1, 1234, 17)),
///     TilePath::Entries(_) => unreachable!("a level number names a hash tile"),
/// }
/// assert!(matches!(parse_path("tile/entries/000")?, TilePath::Entries(b) if b.index() == 0));
///
/// // Look-alike spellings of real tiles are refused: a leading zero on the
/// // level or the width, a full tile spelled `.p/256`, an unpadded index.
/// for bad in ["tile/01/000", "tile/0/000.p/08", "tile/0/000.p/256", "tile/0/1234"] {
///     assert!(matches!(parse_path(bad), Err(TileError::BadPath(_))), "{bad}");
/// }
/// # Ok::<(), TileError>(())
/// ```
pub fn parse_path(path: &str) -> Result<TilePath, TileError> {
    let bad = || bad_path(path);
    if path.len() > MAX_PATH_LEN || !path.is_ascii() {
        return Err(bad());
    }
    let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
    let (level_str, rest) = rest.split_once('/').ok_or_else(bad)?;
    let level = if level_str == "entries" {
        None
    } else {
        let l = parse_plain_decimal(level_str, 2).ok_or_else(bad)?;
        if l > u64::from(MAX_TILE_LEVEL) {
            return Err(bad());
        }
        Some(l as u8)
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    let mut width = TILE_WIDTH;
    if segs.len() >= 2 {
        if let Some(last_n) = segs[segs.len() - 2].strip_suffix(".p") {
            // Spec: "`<W>` is the width of the tile, a decimal ASCII integer
            // between 1 and 255, with no additional leading zeroes."
            let w = parse_plain_decimal(segs[segs.len() - 1], 3).ok_or_else(bad)?;
            if !(1..u64::from(TILE_WIDTH)).contains(&w) {
                return Err(bad());
            }
            width = w as u16;
            segs.pop();
            let n = segs.len();
            segs[n - 1] = last_n;
        }
    }
    // u64::MAX has 20 digits: at most 7 groups.
    if segs.is_empty() || segs.len() > 7 {
        return Err(bad());
    }
    let mut index: u64 = 0;
    for (i, seg) in segs.iter().enumerate() {
        let digits = if i + 1 < segs.len() { seg.strip_prefix('x').ok_or_else(bad)? } else { seg };
        let g = parse_group(digits).ok_or_else(bad)?;
        if i == 0 && g == 0 && segs.len() > 1 {
            // `x000/...`: a zero leading group is not the canonical form.
            return Err(bad());
        }
        index = index.checked_mul(1000).and_then(|n| n.checked_add(g)).ok_or_else(bad)?;
    }
    let parsed = match level {
        Some(level) => TilePath::Hash(Tile { level, index, width }),
        None => TilePath::Entries(EntryBundle { index, width }),
    };
    // Belt and braces: the only accepted spelling is the one we emit.
    if parsed.path() != path {
        return Err(bad());
    }
    Ok(parsed)
}

/// Where `node` lives in the tiles of a tree of `size` leaves: the tile as
/// it exists at that size, and the run of its hashes (in hash positions, not
/// bytes) that hash to `node` (a single hash when `node.level` is a multiple
/// of 8, otherwise `2^(node.level % 8)` of them).
pub fn tile_for_node(node: NodeId, size: u64) -> Result<(Tile, Range<usize>), TileError> {
    let not_in_tree = || TileError::NotInTile { node, within: format!("tree of size {size}") };
    match node.leaf_range() {
        Some((_, end)) if end <= size => {}
        _ => return Err(not_in_tree()),
    }
    let level = node.level / TILE_HEIGHT;
    let k = u32::from(node.level % TILE_HEIGHT);
    // The node spans base hashes [index << k, (index + 1) << k) at tree level
    // 8 * level; it is in the tree, so these shifts cannot overflow.
    let base = node.index << k;
    let tile_index = base >> TILE_HEIGHT;
    let start = (base % u64::from(TILE_WIDTH)) as usize;
    let tile = Tile::at_size(level, tile_index, size).ok_or_else(not_in_tree)?;
    let end = start + (1usize << k);
    assert!(end <= usize::from(tile.width), "tile math is broken: {node} beyond {tile}");
    Ok((tile, start..end))
}

/// The distinct tiles (as they exist at `size`) directly holding `nodes`, in
/// order of first use. Why: a client fetches exactly these to answer a proof
/// or tree-hash request; see also [`crate::tile_reader::fetch_plan`] for the
/// full list including the parents needed to authenticate them.
pub fn tiles_for_nodes(nodes: &[NodeId], size: u64) -> Result<Vec<Tile>, TileError> {
    let mut out: Vec<Tile> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &n in nodes {
        let (t, _) = tile_for_node(n, size)?;
        if seen.insert(t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Checks a tile body's length ("Full tiles MUST be exactly 256 hashes
/// wide"; a partial tile is exactly `W` hashes).
pub fn check_tile_data(tile: &Tile, data: &[u8]) -> Result<(), TileError> {
    if data.len() != tile.data_len() {
        return Err(TileError::DataLength { tile: tile.path(), want: tile.data_len(), got: data.len() });
    }
    Ok(())
}

/// Merkle hash of a power-of-two run of hashes, bottom-up.
fn subtree_hash(data: &[u8]) -> Hash {
    let n = data.len() / HASH_SIZE;
    assert!(n.is_power_of_two() && n * HASH_SIZE == data.len(), "tile math is broken: run of {n} hashes");
    let mut row: Vec<Hash> =
        data.chunks_exact(HASH_SIZE).map(|c| Hash(c.try_into().expect("chunk is 32 bytes"))).collect();
    while row.len() > 1 {
        row = row.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    row[0]
}

/// The stored hash `node` computed from `tile`'s body `data`. Spec: "The
/// Merkle Tree levels between those expressed by the tile hashes are
/// reconstructed by hashing the leaves." `data` must be exactly the tile's
/// length, and `node` must lie inside the tile's width.
pub fn hash_from_tile(tile: &Tile, data: &[u8], node: NodeId) -> Result<Hash, TileError> {
    check_tile_data(tile, data)?;
    let outside = || TileError::NotInTile { node, within: tile.path() };
    if node.level / TILE_HEIGHT != tile.level {
        return Err(outside());
    }
    let k = u32::from(node.level % TILE_HEIGHT);
    let base_start = u128::from(node.index) << k;
    let tile_start = u128::from(tile.index) << TILE_HEIGHT;
    let base_end = base_start + (1u128 << k);
    if base_start < tile_start || base_end > tile_start + u128::from(tile.width) {
        return Err(outside());
    }
    let start = (base_start - tile_start) as usize;
    let end = (base_end - tile_start) as usize;
    Ok(subtree_hash(&data[start * HASH_SIZE..end * HASH_SIZE]))
}

/// The hash a *full* tile's contents hash to, which must equal the hash its
/// parent tile holds at [`Tile::root_node`]. Partial tiles have no such
/// hash and are rejected.
pub fn tile_root(tile: &Tile, data: &[u8]) -> Result<Hash, TileError> {
    check_tile_data(tile, data)?;
    if !tile.is_full() {
        return Err(TileError::Partial(tile.path()));
    }
    Ok(subtree_hash(data))
}
