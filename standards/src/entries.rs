//! tlog-tiles entry bundles: the log entries behind a level-0 tile.
//!
//! Spec ([tlog-tiles, Log entries](https://c2sp.org/tlog-tiles#log-entries)):
//! "Entry bundles are sequences of
//! big-endian uint16 length-prefixed log entries." A full bundle holds 256
//! entries, a partial one `W` (1..=255), and empty bundles are never served.

use crate::hash::{leaf_hash, Hash};
use crate::tiles::TILE_WIDTH;

/// Largest entry a bundle can carry: the uint16 length prefix caps it.
pub const MAX_ENTRY_SIZE: usize = 65535;

/// Why an entry bundle could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// An entry longer than [`MAX_ENTRY_SIZE`] bytes cannot be length-prefixed.
    #[error("entry {index} is {len} bytes, more than the 65535 a bundle can carry")]
    TooLarge {
        /// Position of the entry in the bundle.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A bundle must hold between 1 and 256 entries.
    #[error("a bundle holds 1..=256 entries, not {0}")]
    Count(usize),
    /// The data ends inside a length prefix or an entry.
    #[error("bundle truncated in entry {0}")]
    Truncated(usize),
    /// Bytes remain after the expected number of entries.
    #[error("{0} trailing bytes after the last entry")]
    TrailingBytes(usize),
    /// A sequence of entries ([`decode_sequence`]) holds at least one.
    #[error("no entries")]
    Empty,
}

fn check_count(n: usize) -> Result<(), EntryError> {
    if n == 0 || n > usize::from(TILE_WIDTH) {
        return Err(EntryError::Count(n));
    }
    Ok(())
}

/// Serialises `entries` as one bundle: `len as u16 (big-endian) || entry`
/// for each entry, in order.
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, EntryError> {
    check_count(entries.len())?;
    let mut total = 0usize;
    for (index, e) in entries.iter().enumerate() {
        if e.len() > MAX_ENTRY_SIZE {
            return Err(EntryError::TooLarge { index, len: e.len() });
        }
        total += 2 + e.len();
    }
    let mut out = Vec::with_capacity(total);
    for e in entries {
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a bundle into exactly `expected_count` entries (the bundle's
/// width, known from its path), borrowing from `data`. Strict: a short
/// bundle, a truncated entry or trailing bytes are errors, so one body has
/// one meaning.
///
/// Spec ([tlog-tiles, Log entries](https://c2sp.org/tlog-tiles#log-entries)):
/// "Entry bundles are sequences of big-endian uint16 length-prefixed log
/// entries", and `<W>` in the bundle path ([tlog-tiles, Merkle
/// Tree](https://c2sp.org/tlog-tiles#merkle-tree)) gives how many.
///
/// # Examples
///
/// ```rust
/// use custody_standards::entries::{decode_bundle, EntryError};
///
/// // Two entries: 0x0005 "hello", 0x0005 "world" (a `.p/2` bundle).
/// let body = b"\x00\x05hello\x00\x05world";
/// assert_eq!(decode_bundle(body, 2)?, vec![&b"hello"[..], &b"world"[..]]);
///
/// // One byte too many after the second entry: refused, not ignored.
/// let mut padded = body.to_vec();
/// padded.push(0);
/// assert_eq!(decode_bundle(&padded, 2), Err(EntryError::TrailingBytes(1)));
/// // The path promised three entries, the body has two.
/// assert_eq!(decode_bundle(body, 3), Err(EntryError::Truncated(2)));
/// # Ok::<(), EntryError>(())
/// ```
pub fn decode_bundle(data: &[u8], expected_count: usize) -> Result<Vec<&[u8]>, EntryError> {
    check_count(expected_count)?;
    let mut out = Vec::with_capacity(expected_count);
    let mut rest = data;
    for i in 0..expected_count {
        let (entry, tail) = split_entry(rest, i)?;
        out.push(entry);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(EntryError::TrailingBytes(rest.len()));
    }
    Ok(out)
}

/// Splits a sequence of length-prefixed entries that runs to the end of
/// `data`, however many it holds (at least one): the bundle encoding
/// without the bundle's 256-entry width, for batches kept whole (the log
/// server's write-ahead segments). Strict like [`decode_bundle`]: an empty
/// body or one ending inside a length or an entry is an error, so one body
/// has one meaning.
///
/// ```rust
/// use custody_standards::entries::{decode_sequence, EntryError};
///
/// assert_eq!(decode_sequence(b"\x00\x01a\x00\x00")?, vec![&b"a"[..], &b""[..]]);
/// assert_eq!(decode_sequence(b"\x00\x01a\x00"), Err(EntryError::Truncated(1)));
/// assert_eq!(decode_sequence(b""), Err(EntryError::Empty));
/// # Ok::<(), EntryError>(())
/// ```
pub fn decode_sequence(data: &[u8]) -> Result<Vec<&[u8]>, EntryError> {
    if data.is_empty() {
        return Err(EntryError::Empty);
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (entry, tail) = split_entry(rest, out.len())?;
        out.push(entry);
        rest = tail;
    }
    Ok(out)
}

/// The length-prefixed entry at the start of `data` (entry number `i`, for
/// the error) and what follows it.
fn split_entry(data: &[u8], i: usize) -> Result<(&[u8], &[u8]), EntryError> {
    let [a, b, tail @ ..] = data else { return Err(EntryError::Truncated(i)) };
    let len = usize::from(u16::from_be_bytes([*a, *b]));
    if tail.len() < len {
        return Err(EntryError::Truncated(i));
    }
    Ok(tail.split_at(len))
}

/// The RFC 6962 leaf hashes of a decoded bundle, in order: exactly the body
/// of the matching level-0 tile (spec: "Each entry in a bundle hashes to the
/// corresponding entry in the corresponding level 0 Merkle Tree tile").
pub fn bundle_leaf_hashes(entries: &[&[u8]]) -> Vec<Hash> {
    entries.iter().map(|e| leaf_hash(e)).collect()
}
