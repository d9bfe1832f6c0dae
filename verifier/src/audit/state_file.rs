//! The replay state `custody audit` saves after a clean audit, so that the
//! next audit replays only the entries after it.
//!
//! One binary file, `state`, in the log's audit cache directory:
//!
//! | bytes | field |
//! |---|---|
//! | 20 | magic `custody audit state\n` |
//! | 4 | format version, u32 BE ([`STATE_FORMAT`]) |
//! | 2 + n | origin, u16 BE length then UTF-8 |
//! | 8 | tree size N of the audited checkpoint, u64 BE |
//! | 32 | tree root at N |
//! | 32 | state root of the commitment leaf at N - 1 |
//! | 8 | the replay window (`--statement-window`) in ms, u64 BE |
//! | 1 | 1 if every signature was verified on its own (`--exact`), else 0 |
//! | 4 + n | the registry position, JSON ([`Position`]) |
//! | 8, then 4 + n each | registry records ([`Record::encode`]) |
//! | 8, then 24 each | nonce pairs: fingerprint (16), expiry ms (u64 BE) |
//! | 8, then 4 + n + 4 + m each | state map: key encoding, value encoding |
//!
//! and `state.sha256`, the hex SHA-256 of `state`, written after it and
//! before the audited checkpoint, so that a state file is only used with
//! the audited checkpoint it was saved with (a crash between the writes,
//! a torn or swapped file: full replay).
//!
//! A file that does not decode, is of another version, or names another
//! origin, size, root or window is not used: the audit replays from entry
//! 0 and says why. A file that decodes is still not trusted: see
//! [`custody_registry::registry::resume`] for what is checked against the
//! log before it is used.

use std::path::Path;

use custody_registry::commitment::{StateKey, StateValue};
use custody_registry::registry::nonces::NonceId;
use custody_registry::registry::{Position, Record, ResumeState};
use custody_standards::Hash;
use sha2::{Digest as _, Sha256};

use crate::error::Result;
use crate::home::{read_capped, write_atomic};

/// The version of the layout above; a file of another one is not read.
pub const STATE_FORMAT: u32 = 1;

const MAGIC: &[u8; 20] = b"custody audit state\n";

/// Largest state file read (the replay window dominates: 24 bytes a nonce).
pub const MAX_STATE_FILE: u64 = 1 << 31;

/// What a state file is bound to: the audit that saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The log's origin.
    pub origin: String,
    /// Size of the audited checkpoint.
    pub size: u64,
    /// Its root.
    pub tree_root: Hash,
    /// The root of the commitment leaf at `size - 1`.
    pub state_root: Hash,
    /// The replay window the state was built with.
    pub window_ms: u64,
    /// Whether every signature before `size` was verified on its own
    /// (`--exact`): an exact audit resumes only from an exact one.
    pub exact: bool,
}

/// Why a saved state is not used.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// No file, or it cannot be read.
    #[error("no saved state ({0})")]
    Missing(String),
    /// The file's SHA-256 is not the one saved with the audited checkpoint.
    #[error("the saved state is not the one saved with the audited checkpoint")]
    Digest,
    /// The file ends early.
    #[error("the saved state is truncated")]
    Truncated,
    /// Not a state file.
    #[error("not an audit state file")]
    Magic,
    /// Another format version.
    #[error("the saved state has format {0}, this build reads {STATE_FORMAT}")]
    Version(u32),
    /// Saved by the audit of another checkpoint or with another window.
    #[error("the saved state is of {found}, expected {expected}")]
    Header {
        /// What the file says.
        found: String,
        /// What the audited checkpoint says.
        expected: String,
    },
    /// A field does not decode.
    #[error("the saved state does not decode: {0}")]
    Field(String),
    /// Bytes after the last field.
    #[error("the saved state has trailing bytes")]
    Trailing,
}

/// The file's bytes.
pub fn encode(h: &Header, s: &ResumeState) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + s.nonces.len() * 24 + s.map.len() * 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STATE_FORMAT.to_be_bytes());
    let origin = h.origin.as_bytes();
    out.extend_from_slice(&(origin.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&origin[..origin.len().min(usize::from(u16::MAX))]);
    out.extend_from_slice(&h.size.to_be_bytes());
    out.extend_from_slice(&h.tree_root.0);
    out.extend_from_slice(&h.state_root.0);
    out.extend_from_slice(&h.window_ms.to_be_bytes());
    out.push(u8::from(h.exact));
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    bytes(&mut out, &serde_json::to_vec(&s.position).expect("a position serializes"));
    out.extend_from_slice(&(s.records.len() as u64).to_be_bytes());
    for r in &s.records {
        bytes(&mut out, &r.encode());
    }
    out.extend_from_slice(&(s.nonces.len() as u64).to_be_bytes());
    for (id, expiry) in &s.nonces {
        out.extend_from_slice(&id.to_bytes());
        out.extend_from_slice(&expiry.to_be_bytes());
    }
    out.extend_from_slice(&(s.map.len() as u64).to_be_bytes());
    for (k, v) in &s.map {
        bytes(&mut out, &k.encode());
        bytes(&mut out, &v.encode());
    }
    out
}

/// Reads fields off the front of a byte slice; every read is bounds
/// checked, so a truncated or hostile file is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], StateFileError> {
        if self.0.len() < n {
            return Err(StateFileError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], StateFileError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }
    fn u64(&mut self) -> std::result::Result<u64, StateFileError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn bytes(&mut self) -> std::result::Result<&'a [u8], StateFileError> {
        let n = u32::from_be_bytes(self.array()?) as usize;
        self.take(n)
    }
    /// A count of items of at least `min` bytes each: checked against the
    /// bytes left before anything is allocated for them.
    fn count(&mut self, min: usize) -> std::result::Result<usize, StateFileError> {
        let n = self.u64()?;
        if n > (self.0.len() / min) as u64 {
            return Err(StateFileError::Truncated);
        }
        Ok(n as usize)
    }
}

fn field(what: &str, e: impl std::fmt::Display) -> StateFileError {
    StateFileError::Field(format!("{what}: {e}"))
}

/// The header alone (what [`decode`] checks before the rest).
pub fn decode_header(r: &mut &[u8]) -> std::result::Result<Header, StateFileError> {
    let mut rd = Reader(r);
    if rd.take(MAGIC.len()).map_err(|_| StateFileError::Magic)? != MAGIC {
        return Err(StateFileError::Magic);
    }
    let version = u32::from_be_bytes(rd.array()?);
    if version != STATE_FORMAT {
        return Err(StateFileError::Version(version));
    }
    let n = u16::from_be_bytes(rd.array()?) as usize;
    let origin = std::str::from_utf8(rd.take(n)?).map_err(|e| field("origin", e))?.to_owned();
    let size = rd.u64()?;
    let tree_root = Hash(rd.array()?);
    let state_root = Hash(rd.array()?);
    let window_ms = rd.u64()?;
    let exact = match rd.array::<1>()? {
        [0] => false,
        [1] => true,
        [b] => return Err(field("exact", format!("byte {b}"))),
    };
    *r = rd.0;
    Ok(Header { origin, size, tree_root, state_root, window_ms, exact })
}

/// Decodes a state file saved for `expected`: the same fields, except
/// that a state saved by an exact audit also serves one that is not, and
/// that the state root is returned rather than compared (the caller may
/// load the file before it has authenticated the commitment leaf).
pub fn decode(bytes: &[u8], expected: &Header) -> std::result::Result<(Hash, ResumeState), StateFileError> {
    let mut rest = bytes;
    let h = decode_header(&mut rest)?;
    let like = Header { exact: h.exact, state_root: h.state_root, ..expected.clone() };
    if h != like || (expected.exact && !h.exact) {
        let show = |h: &Header| {
            format!(
                "{} size {} root {} state {} window {} ms{}",
                h.origin,
                h.size,
                h.tree_root.to_base64(),
                h.state_root.to_base64(),
                h.window_ms,
                if h.exact { " exact" } else { "" }
            )
        };
        return Err(StateFileError::Header { found: show(&h), expected: show(expected) });
    }
    let mut r = Reader(rest);
    let position: Position = serde_json::from_slice(r.bytes()?).map_err(|e| field("position", e))?;
    let n = r.count(4)?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        records.push(Record::decode(r.bytes()?).map_err(|e| field("record", e))?);
    }
    let n = r.count(24)?;
    let mut nonces = Vec::with_capacity(n);
    for _ in 0..n {
        let id = NonceId::from_bytes(r.array()?);
        nonces.push((id, r.u64()?));
    }
    let n = r.count(8)?;
    let mut map = Vec::with_capacity(n);
    for _ in 0..n {
        let k = StateKey::decode(r.bytes()?).map_err(|e| field("state key", e))?;
        let v = StateValue::decode(r.bytes()?).map_err(|e| field("state value", e))?;
        map.push((k, v));
    }
    if !r.0.is_empty() {
        return Err(StateFileError::Trailing);
    }
    Ok((h.state_root, ResumeState { records, nonces, position, map }))
}

fn digest_file(dir: &Path) -> std::path::PathBuf {
    dir.join("state.sha256")
}

/// Reads the state saved in `dir` for `expected` (see [`decode`]), if its
/// digest is the one saved with it.
pub fn load(dir: &Path, expected: &Header) -> std::result::Result<(Hash, ResumeState), StateFileError> {
    let missing = |e: crate::error::Error| StateFileError::Missing(e.to_string());
    let bytes = read_capped(&dir.join("state"), MAX_STATE_FILE).map_err(missing)?;
    let saved = read_capped(&digest_file(dir), 128).map_err(missing)?;
    if String::from_utf8_lossy(&saved).trim() != hex::encode(Sha256::digest(&bytes)) {
        return Err(StateFileError::Digest);
    }
    decode(&bytes, expected)
}

/// Saves `state` in `dir` (the state file, then its digest): call before
/// writing the audited checkpoint it goes with.
pub fn save(dir: &Path, h: &Header, state: &ResumeState) -> Result<()> {
    let bytes = encode(h, state);
    write_atomic(&dir.join("state"), &bytes, 0o600)?;
    write_atomic(&digest_file(dir), format!("{}\n", hex::encode(Sha256::digest(&bytes))).as_bytes(), 0o600)
}

#[cfg(test)]
#[path = "state_file_tests.rs"]
mod tests;
