//! The bytes of a registry leaf: what the log appends for each accepted
//! statement.
//!
//! ```text
//! offset  size  field
//!      0     7  magic, ASCII "CUSTODY" (43 55 53 54 4f 44 59)
//!      7     1  leaf version, 0x01
//!      8     8  receive time: ms since the Unix epoch, u64 big-endian
//!     16     4  envelope length N, u32 big-endian, 1 <= N <= 64000
//!     20     N  the DSSE envelope JSON exactly as the client sent it
//! ```
//!
//! Nothing else, and nothing after the envelope: a leaf is exactly
//! `20 + N` bytes. Its Merkle leaf hash is RFC 6962's
//! `SHA-256(0x00 || leaf)`. The longest leaf is 64,020 bytes, inside the
//! log's 65,535-byte entry cap ([`custody_standards::entries::MAX_ENTRY_SIZE`]).
//!
//! The envelope is kept verbatim rather than re-encoded, so the signature
//! can be checked against exactly what the actor signed, by anyone, with
//! any DSSE implementation. Decoding borrows from the input: no copy.

use crate::dsse::MAX_ENVELOPE_SIZE;
use custody_standards::entries::MAX_ENTRY_SIZE;
use custody_standards::hash::{leaf_hash, Hash};

/// The 7-byte magic at the start of every registry leaf.
pub const LEAF_MAGIC: &[u8; 7] = b"CUSTODY";
/// The only leaf version defined.
pub const LEAF_VERSION_1: u8 = 0x01;
/// Bytes before the envelope.
pub const LEAF_HEADER_SIZE: usize = 20;
/// Largest leaf.
pub const MAX_LEAF_SIZE: usize = LEAF_HEADER_SIZE + MAX_ENVELOPE_SIZE;

const _: () = assert!(MAX_LEAF_SIZE <= MAX_ENTRY_SIZE, "a leaf must fit one log entry");

/// The leaf version of a state commitment ([`CommitmentLeaf`]).
pub const LEAF_VERSION_COMMITMENT: u8 = 0x02;
/// Exact size of a commitment leaf.
pub const COMMITMENT_LEAF_SIZE: usize = 48;

/// Why bytes are not a registry leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// Shorter than the header.
    #[error("leaf is {0} bytes, shorter than the 20-byte header")]
    Truncated(usize),
    /// A commitment leaf that is not exactly 48 bytes.
    #[error("commitment leaf is {0} bytes, not 48")]
    CommitmentSize(usize),
    /// A commitment leaf where a signed statement was expected.
    #[error("a state commitment, not a statement")]
    Commitment,
    /// A log-signed event ([`crate::log_event`]) where a signed statement
    /// was expected.
    #[error("a log-signed event, not a statement")]
    LogEvent,
    /// Does not start with `CUSTODY`.
    #[error("not a Custody registry leaf (bad magic)")]
    Magic,
    /// A version other than 1.
    #[error("unknown leaf version {0}")]
    Version(u8),
    /// Envelope length 0 or above [`MAX_ENVELOPE_SIZE`].
    #[error("envelope length {0} outside 1..=64000")]
    EnvelopeLength(u64),
    /// The length field disagrees with the bytes present.
    #[error("envelope length field says {declared}, {present} bytes follow")]
    LengthMismatch {
        /// Length field.
        declared: u64,
        /// Bytes after the header.
        present: usize,
    },
}

/// A state commitment: the root of the registry state map
/// ([`crate::commitment`]) after every leaf before this one.
///
/// ```text
/// offset  size  field
///      0     7  magic, ASCII "CUSTODY"
///      7     1  leaf version, 0x02
///      8     8  this leaf's own index (= the number of leaves the state
///               covers), u64 big-endian
///     16    32  state root
/// ```
///
/// Exactly 48 bytes. The index binds the commitment to its position: the
/// same bytes anywhere else in the log are a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentLeaf {
    /// Index of this leaf; the state covers leaves `0..index`.
    pub index: u64,
    /// Root of the state map.
    pub root: Hash,
}

impl CommitmentLeaf {
    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(COMMITMENT_LEAF_SIZE);
        out.extend_from_slice(LEAF_MAGIC);
        out.push(LEAF_VERSION_COMMITMENT);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.root.0);
        out
    }

    /// Strict decode: magic, version 2, exactly 48 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, LeafError> {
        if bytes.len() < 8 {
            return Err(LeafError::Truncated(bytes.len()));
        }
        if &bytes[..7] != LEAF_MAGIC {
            return Err(LeafError::Magic);
        }
        if bytes[7] != LEAF_VERSION_COMMITMENT {
            return Err(LeafError::Version(bytes[7]));
        }
        if bytes.len() != COMMITMENT_LEAF_SIZE {
            return Err(LeafError::CommitmentSize(bytes.len()));
        }
        let index = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let root = Hash(bytes[16..48].try_into().expect("32 bytes"));
        Ok(CommitmentLeaf { index, root })
    }
}

/// Any leaf of a registry log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLeaf<'a> {
    /// A signed statement.
    Statement(Leaf<'a>),
    /// A state commitment.
    Commitment(CommitmentLeaf),
    /// An event signed by the log itself.
    LogEvent(crate::log_event::LogEventLeaf<'a>),
}

impl<'a> LogLeaf<'a> {
    /// Decodes either kind, by its version byte.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, LeafError> {
        if bytes.len() >= 8 && &bytes[..7] == LEAF_MAGIC && bytes[7] == LEAF_VERSION_COMMITMENT {
            return CommitmentLeaf::decode(bytes).map(LogLeaf::Commitment);
        }
        if bytes.len() >= 8
            && &bytes[..7] == LEAF_MAGIC
            && bytes[7] == crate::log_event::LEAF_VERSION_LOG_EVENT
        {
            return crate::log_event::LogEventLeaf::decode(bytes).map(LogLeaf::LogEvent);
        }
        Leaf::decode(bytes).map(LogLeaf::Statement)
    }
}

/// A decoded leaf, borrowing the envelope bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf<'a> {
    /// When the log received the statement, ms since the Unix epoch.
    pub receive_time_ms: u64,
    /// The verbatim envelope JSON.
    pub envelope: &'a [u8],
}

impl<'a> Leaf<'a> {
    /// A leaf for `envelope` received at `receive_time_ms`.
    pub fn new(receive_time_ms: u64, envelope: &'a [u8]) -> Result<Self, LeafError> {
        if envelope.is_empty() || envelope.len() > MAX_ENVELOPE_SIZE {
            return Err(LeafError::EnvelopeLength(envelope.len() as u64));
        }
        Ok(Leaf { receive_time_ms, envelope })
    }

    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEAF_HEADER_SIZE + self.envelope.len());
        out.extend_from_slice(LEAF_MAGIC);
        out.push(LEAF_VERSION_1);
        out.extend_from_slice(&self.receive_time_ms.to_be_bytes());
        // `new` and `decode` cap the length at 64000, so it fits a u32.
        out.extend_from_slice(&(self.envelope.len() as u32).to_be_bytes());
        out.extend_from_slice(self.envelope);
        out
    }

    /// Strict decode: magic, version 1, a length in range that matches the
    /// bytes exactly.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, LeafError> {
        let (receive_time_ms, envelope) = decode_envelope_leaf(bytes, LEAF_VERSION_1)?;
        Ok(Leaf { receive_time_ms, envelope })
    }

    /// RFC 6962 leaf hash of the encoded leaf.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }
}

/// The strict decoding shared by the two envelope-carrying leaf versions
/// (1 and 3): a whole header with the magic and `version` (a leaf of
/// another known version is named as such), then the envelope length.
/// Returns the header's receive time and the envelope.
pub(crate) fn decode_envelope_leaf(bytes: &[u8], version: u8) -> Result<(u64, &[u8]), LeafError> {
    if bytes.len() < LEAF_HEADER_SIZE {
        return Err(LeafError::Truncated(bytes.len()));
    }
    let (header, envelope) = bytes.split_at(LEAF_HEADER_SIZE);
    if &header[..7] != LEAF_MAGIC {
        return Err(LeafError::Magic);
    }
    if header[7] != version {
        return Err(match header[7] {
            LEAF_VERSION_COMMITMENT => LeafError::Commitment,
            crate::log_event::LEAF_VERSION_LOG_EVENT => LeafError::LogEvent,
            v => LeafError::Version(v),
        });
    }
    Ok((envelope_length_checked(header, envelope)?, envelope))
}

/// A declared envelope length in `1..=MAX_ENVELOPE_SIZE` that matches the
/// bytes present exactly. Returns the header's receive time.
fn envelope_length_checked(header: &[u8], envelope: &[u8]) -> Result<u64, LeafError> {
    let receive_time_ms = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
    let declared = u64::from(u32::from_be_bytes(header[16..20].try_into().expect("4 bytes")));
    if declared == 0 || declared > MAX_ENVELOPE_SIZE as u64 {
        return Err(LeafError::EnvelopeLength(declared));
    }
    if declared != envelope.len() as u64 {
        return Err(LeafError::LengthMismatch { declared, present: envelope.len() });
    }
    Ok(receive_time_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let leaf = Leaf::new(0x0102_0304_0506_0708, b"{}").unwrap();
        let bytes = leaf.encode();
        assert_eq!(&bytes[..8], b"CUSTODY\x01");
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 2]);
        assert_eq!(&bytes[20..], b"{}");
        assert_eq!(Leaf::decode(&bytes).unwrap(), leaf);
        let mut prefixed = vec![0];
        prefixed.extend_from_slice(&bytes);
        assert_eq!(leaf.leaf_hash(), custody_standards::hash::sha256(&prefixed));
    }

    #[test]
    fn every_malformation_is_rejected() {
        let good = Leaf::new(5, b"{\"a\":1}").unwrap().encode();
        for n in 0..LEAF_HEADER_SIZE {
            assert_eq!(Leaf::decode(&good[..n]), Err(LeafError::Truncated(n)));
        }
        let mut m = good.clone();
        m[0] = b'c';
        assert_eq!(Leaf::decode(&m), Err(LeafError::Magic));
        let mut m = good.clone();
        m[7] = 2;
        assert_eq!(Leaf::decode(&m), Err(LeafError::Commitment));
        let mut m = good.clone();
        m[7] = 0;
        assert_eq!(Leaf::decode(&m), Err(LeafError::Version(0)));
        // Length field too small, too large, zero, beyond the cap.
        let mut m = good.clone();
        m[19] -= 1;
        assert_eq!(Leaf::decode(&m), Err(LeafError::LengthMismatch { declared: 6, present: 7 }));
        let mut m = good.clone();
        m.push(b' ');
        assert_eq!(Leaf::decode(&m), Err(LeafError::LengthMismatch { declared: 7, present: 8 }));
        let mut m = good[..LEAF_HEADER_SIZE].to_vec();
        m[19] = 0;
        assert_eq!(Leaf::decode(&m), Err(LeafError::EnvelopeLength(0)));
        let mut m = good.clone();
        m[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Leaf::decode(&m), Err(LeafError::EnvelopeLength(u64::from(u32::MAX))));
        assert_eq!(Leaf::new(0, b""), Err(LeafError::EnvelopeLength(0)));
        let big = vec![b' '; MAX_ENVELOPE_SIZE + 1];
        assert_eq!(Leaf::new(0, &big), Err(LeafError::EnvelopeLength(64_001)));
        let max = vec![b' '; MAX_ENVELOPE_SIZE];
        let enc = Leaf::new(u64::MAX, &max).unwrap().encode();
        assert_eq!(enc.len(), MAX_LEAF_SIZE);
        assert_eq!(Leaf::decode(&enc).unwrap().receive_time_ms, u64::MAX);
    }
}
