//! Server side of tlog-tiles: building a hash tile's body from stored hashes.

use crate::hash::HASH_SIZE;
use crate::stored::{read_checked, HashReader, ReadError};
use crate::tiles::{Tile, TileError};

/// Why a tile body could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileDataError {
    /// The tile's coordinates are outside any `u64` tree.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// The hash store failed or lacks a hash the tile needs (for example a
    /// tile wider than the tree).
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// The body of `tile`: its `width` stored hashes at tree level `8 * level`,
/// concatenated (spec: "concatenated sequences of consecutive Merkle Tree
/// Hashes at a certain tree height"), `width * 32` bytes.
///
/// All hashes are requested in one `read_hashes` call so a backend can serve
/// the tile with one batched read.
pub fn read_tile_data(tile: &Tile, reader: &impl HashReader) -> Result<Vec<u8>, TileDataError> {
    let ids = tile.nodes()?;
    let hashes = read_checked(reader, &ids)?;
    let mut out = Vec::with_capacity(ids.len() * HASH_SIZE);
    for h in &hashes {
        out.extend_from_slice(&h.0);
    }
    Ok(out)
}
