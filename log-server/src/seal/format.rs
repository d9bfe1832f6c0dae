//! The byte layout of a sealed artifact, and its streaming encoder and
//! decoder.
//!
//! ```text
//! header (48 bytes)
//!   0  magic          "CSTDSEAL"
//!   8  version        1
//!   9  suite          1 = AES-256-GCM, STREAM (BE32 counter)
//!  10  chunk_log2     16 (64 KiB of plaintext per chunk)
//!  11  reserved       0
//!  12  plain_len      u64 big-endian: plaintext length in bytes
//!  20  blob_id        16 random bytes: names this copy's wrapped data key
//!  36  nonce_prefix   7 random bytes
//!  43  reserved       5 zero bytes
//! chunks (n = max(1, ceil(plain_len / 65536)))
//!   chunk i = AES-256-GCM(DEK, nonce_prefix || u32 BE i || last, AAD, plaintext_i)
//!             (64 KiB of ciphertext, the last one shorter, each + 16-byte tag)
//!   last    = 1 for chunk n-1, else 0
//!   AAD     = the 48 header bytes || the artifact's SHA-256 digest (32 bytes)
//! ```
//!
//! The nonce is the STREAM construction of Hoang, Reyhanitabar, Rogaway and
//! Vizár ("Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance", `aead::stream::StreamBE32`): the counter makes a
//! reordered or swapped chunk fail its tag, the last flag makes a stream cut
//! at a chunk boundary fail (its new final chunk was sealed as not last),
//! and a chunk appended after the last one has no place to go. Every chunk's
//! AAD carries the whole header, so a changed length, suite or nonce fails
//! too, and the artifact's digest, so a sealed file moved under another
//! name does not open. Only authenticated plaintext ever leaves the decoder.
//!
//! The DEK is fresh and random per stored copy, so the random nonce prefix
//! is not needed for uniqueness; it costs nothing and keeps the format safe
//! should a DEK ever be reused.

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::stream::{NewStream as _, StreamBE32, StreamPrimitive as _};
use aes_gcm::{Aes256Gcm, KeyInit as _};
use custody_standards::Hash;

use super::kms::DataKey;
use super::SealError;

/// First bytes of every sealed artifact.
pub const MAGIC: [u8; 8] = *b"CSTDSEAL";
/// Format version.
pub const VERSION: u8 = 1;
/// AES-256-GCM in STREAM with a 32-bit big-endian counter.
pub const SUITE_AES256GCM_STREAM_BE32: u8 = 1;
/// log2 of [`CHUNK`].
pub const CHUNK_LOG2: u8 = 16;
/// Plaintext bytes per chunk (all but the last are full).
pub const CHUNK: usize = 1 << CHUNK_LOG2;
/// Authentication tag per chunk.
pub const TAG: usize = 16;
/// Stored bytes of a full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;
/// Header length.
pub const HEADER_LEN: usize = 48;
/// Length of a blob id.
pub const BLOB_ID_LEN: usize = 16;
/// Length of the random nonce prefix (12-byte GCM nonce minus STREAM's 5).
pub const NONCE_PREFIX_LEN: usize = 7;
/// Longest plaintext: 2^32 chunks (the STREAM counter), far above any
/// `--max-blob-size`.
pub const MAX_PLAIN_LEN: u64 = (CHUNK as u64) << 32;

/// A sealed artifact's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Plaintext length.
    pub plain_len: u64,
    /// Names the wrapped data key of this stored copy.
    pub blob_id: [u8; BLOB_ID_LEN],
    /// Random part of every chunk's nonce.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|e| SealError::Random(e.to_string()))?;
    Ok(out)
}

impl Header {
    /// A header with a fresh blob id and nonce prefix.
    pub fn fresh(plain_len: u64) -> Result<Self, SealError> {
        if plain_len > MAX_PLAIN_LEN {
            return Err(SealError::TooLarge(plain_len));
        }
        Ok(Header { plain_len, blob_id: random()?, nonce_prefix: random()? })
    }

    /// The 48 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8] = VERSION;
        out[9] = SUITE_AES256GCM_STREAM_BE32;
        out[10] = CHUNK_LOG2;
        out[12..20].copy_from_slice(&self.plain_len.to_be_bytes());
        out[20..36].copy_from_slice(&self.blob_id);
        out[36..43].copy_from_slice(&self.nonce_prefix);
        out
    }

    /// Parses the first [`HEADER_LEN`] bytes of `bytes`. Anything but this
    /// exact layout is refused (nothing is authenticated yet: the chunks'
    /// tags check the header once the key is known).
    pub fn parse(bytes: &[u8]) -> Result<Self, SealError> {
        let h = bytes.get(..HEADER_LEN).ok_or(SealError::Format("shorter than a sealed header"))?;
        if h[..8] != MAGIC {
            return Err(SealError::Format("not a sealed artifact (bad magic)"));
        }
        if h[8] != VERSION || h[9] != SUITE_AES256GCM_STREAM_BE32 || h[10] != CHUNK_LOG2 {
            return Err(SealError::Format("unknown version, suite or chunk size"));
        }
        if h[11] != 0 || h[43..].iter().any(|b| *b != 0) {
            return Err(SealError::Format("reserved header bytes are not zero"));
        }
        let plain_len = u64::from_be_bytes(h[12..20].try_into().expect("8 bytes"));
        if plain_len > MAX_PLAIN_LEN {
            return Err(SealError::Format("plaintext length out of range"));
        }
        let mut blob_id = [0u8; BLOB_ID_LEN];
        blob_id.copy_from_slice(&h[20..36]);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&h[36..43]);
        Ok(Header { plain_len, blob_id, nonce_prefix })
    }

    /// Number of chunks (at least one: an empty artifact is one empty,
    /// authenticated last chunk).
    pub fn chunks(&self) -> u64 {
        chunks_of(self.plain_len)
    }

    /// Stored length of the whole sealed artifact.
    pub fn sealed_len(&self) -> u64 {
        sealed_len(self.plain_len)
    }

    /// Plaintext bytes in chunk `index`.
    pub fn chunk_len(&self, index: u64) -> usize {
        let start = index.saturating_mul(CHUNK as u64);
        usize::try_from(self.plain_len.saturating_sub(start).min(CHUNK as u64)).unwrap_or(CHUNK)
    }

    /// Hex of the blob id (the name of its key record).
    pub fn blob_id_hex(&self) -> String {
        hex::encode(self.blob_id)
    }
}

fn chunks_of(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK as u64).max(1)
}

/// Stored length of a sealed artifact of `plain_len` bytes.
pub fn sealed_len(plain_len: u64) -> u64 {
    HEADER_LEN as u64 + plain_len + chunks_of(plain_len) * TAG as u64
}

/// The plaintext length of a sealed artifact stored in `sealed` bytes, if
/// that is a length the encoder produces (lets a `stat` or HEAD give an
/// artifact's size without reading it; reads check the header's length).
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER_LEN as u64)?;
    let (full, rest) = (body / SEALED_CHUNK as u64, body % SEALED_CHUNK as u64);
    let plain = match (full, rest) {
        (0, r) if r >= TAG as u64 => r - TAG as u64,
        (f, 0) if f > 0 => f * CHUNK as u64,
        (f, r) if r > TAG as u64 => f * CHUNK as u64 + r - TAG as u64,
        _ => return None,
    };
    (sealed_len(plain) == sealed).then_some(plain)
}

/// The keyed cipher of one sealed artifact: seals or opens any chunk by
/// its index (stateless, so chunks can be read at any offset).
pub struct ChunkCipher {
    stream: StreamBE32<Aes256Gcm>,
    aad: [u8; HEADER_LEN + 32],
    header: Header,
}

impl std::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCipher").field("header", &self.header).finish_non_exhaustive()
    }
}

impl ChunkCipher {
    /// The cipher of the artifact named `digest` with this header and key.
    pub fn new(dek: &DataKey, header: Header, digest: &Hash) -> Self {
        let aead = Aes256Gcm::new(dek.as_key());
        let stream = StreamBE32::from_aead(aead, GenericArray::from_slice(&header.nonce_prefix));
        let mut aad = [0u8; HEADER_LEN + 32];
        aad[..HEADER_LEN].copy_from_slice(&header.encode());
        aad[HEADER_LEN..].copy_from_slice(&digest.0);
        ChunkCipher { stream, aad, header }
    }

    /// The header this cipher seals under.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Where chunk `index` starts in the stored artifact.
    pub fn offset_of(index: u64) -> u64 {
        HEADER_LEN as u64 + index * SEALED_CHUNK as u64
    }

    fn position(&self, index: u64) -> Result<(u32, bool), SealError> {
        let n = self.header.chunks();
        let pos = u32::try_from(index).map_err(|_| SealError::Format("chunk index out of range"))?;
        if index >= n {
            return Err(SealError::Format("chunk index past the last chunk"));
        }
        Ok((pos, index + 1 == n))
    }

    /// Seals chunk `index` in place (its plaintext must have exactly the
    /// chunk's length); appends the tag.
    pub fn seal(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        let (pos, last) = self.position(index)?;
        if buf.len() != self.header.chunk_len(index) {
            return Err(SealError::Format("chunk plaintext has the wrong length"));
        }
        self.stream.encrypt_in_place(pos, last, &self.aad, buf).map_err(|_| SealError::Format("seal failed"))
    }

    /// Opens chunk `index` in place: `buf` holds its stored bytes and ends
    /// up with its plaintext, or the call fails and `buf` is cleared.
    pub fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        let (pos, last) = self.position(index)?;
        if buf.len() != self.header.chunk_len(index) + TAG {
            buf.clear();
            return Err(SealError::Tampered { chunk: index, what: "a chunk of the wrong length" });
        }
        self.stream.decrypt_in_place(pos, last, &self.aad, buf).map_err(|_| {
            buf.clear();
            SealError::Tampered { chunk: index, what: "a chunk that fails authentication" }
        })
    }
}

/// Seals a plaintext that arrives in pieces of any size, one chunk at a
/// time (memory: one chunk).
#[derive(Debug)]
pub struct Encoder {
    cipher: ChunkCipher,
    buf: Vec<u8>,
    next: u64,
    fed: u64,
}

impl Encoder {
    /// An encoder for `cipher`'s artifact; the header bytes come first in
    /// the output of [`Encoder::header_bytes`].
    pub fn new(cipher: ChunkCipher) -> Self {
        Encoder { cipher, buf: Vec::with_capacity(SEALED_CHUNK), next: 0, fed: 0 }
    }

    /// The header to store before the chunks.
    pub fn header_bytes(&self) -> [u8; HEADER_LEN] {
        self.cipher.header.encode()
    }

    /// The header this encoder seals under.
    pub fn header(&self) -> &Header {
        &self.cipher.header
    }

    /// Takes `plain`; appends every chunk it completes to `out`. More
    /// plaintext than the header's length is an error.
    pub fn update(&mut self, mut plain: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        self.fed = self.fed.saturating_add(plain.len() as u64);
        if self.fed > self.cipher.header.plain_len {
            return Err(SealError::Format("more plaintext than the header's length"));
        }
        while !plain.is_empty() {
            let room = CHUNK - self.buf.len();
            let (now, rest) = plain.split_at(room.min(plain.len()));
            self.buf.extend_from_slice(now);
            plain = rest;
            // A full chunk is sealed at once unless it is the last one,
            // which `finish` seals (it carries the last flag).
            if self.buf.len() == CHUNK && self.next + 1 < self.cipher.header.chunks() {
                self.emit(out)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, out: &mut Vec<u8>) -> Result<(), SealError> {
        self.cipher.seal(self.next, &mut self.buf)?;
        out.extend_from_slice(&self.buf);
        self.buf.clear();
        self.next += 1;
        Ok(())
    }

    /// Seals the last chunk into `out`; the plaintext must have had the
    /// header's exact length.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), SealError> {
        if self.fed != self.cipher.header.plain_len || self.next + 1 != self.cipher.header.chunks() {
            return Err(SealError::Format("plaintext shorter than the header's length"));
        }
        self.emit(out)
    }
}

/// Opens a sealed artifact that arrives in pieces of any size, after its
/// header (whose key the caller looked up): appends only authenticated
/// plaintext to its output, one whole chunk at a time.
#[derive(Debug)]
pub struct Decoder {
    cipher: ChunkCipher,
    buf: Vec<u8>,
    next: u64,
}

impl Decoder {
    /// A decoder of the chunks that follow the header.
    pub fn new(cipher: ChunkCipher) -> Self {
        Decoder { cipher, buf: Vec::with_capacity(SEALED_CHUNK), next: 0 }
    }

    /// Takes stored bytes after the header; appends the plaintext of every
    /// chunk they complete to `out`. Bytes past the last chunk are an error.
    pub fn update(&mut self, mut sealed: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        let n = self.cipher.header.chunks();
        while !sealed.is_empty() {
            if self.next >= n {
                return Err(SealError::Tampered { chunk: self.next, what: "bytes after the last chunk" });
            }
            let want = self.cipher.header.chunk_len(self.next) + TAG;
            let take = (want - self.buf.len()).min(sealed.len());
            self.buf.extend_from_slice(&sealed[..take]);
            sealed = &sealed[take..];
            if self.buf.len() == want {
                self.cipher.open(self.next, &mut self.buf)?;
                out.extend_from_slice(&self.buf);
                self.buf.clear();
                self.next += 1;
            }
        }
        Ok(())
    }

    /// Succeeds only if every chunk, the last one included, was opened.
    pub fn finish(self) -> Result<(), SealError> {
        if self.next != self.cipher.header.chunks() {
            return Err(SealError::Tampered { chunk: self.next, what: "a sealed artifact cut short" });
        }
        Ok(())
    }
}

/// Seals `plain` whole (tests, small records).
pub fn seal_all(dek: &DataKey, header: Header, digest: &Hash, plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut enc = Encoder::new(ChunkCipher::new(dek, header, digest));
    let mut out = enc.header_bytes().to_vec();
    enc.update(plain, &mut out)?;
    enc.finish(&mut out)?;
    Ok(out)
}

/// Opens a whole sealed artifact held in memory whose key `key_for`
/// returns for its header.
pub fn open_all(
    sealed: &[u8],
    digest: &Hash,
    key_for: impl FnOnce(&Header) -> Result<DataKey, SealError>,
) -> Result<Vec<u8>, SealError> {
    let header = Header::parse(sealed)?;
    if sealed.len() as u64 != header.sealed_len() {
        return Err(SealError::Tampered { chunk: 0, what: "a sealed artifact of the wrong length" });
    }
    let dek = key_for(&header)?;
    let mut dec = Decoder::new(ChunkCipher::new(&dek, header, digest));
    let mut out = Vec::with_capacity(usize::try_from(header.plain_len).unwrap_or(0));
    dec.update(&sealed[HEADER_LEN..], &mut out)?;
    dec.finish()?;
    Ok(out)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
