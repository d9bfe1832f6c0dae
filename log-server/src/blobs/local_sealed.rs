//! Sealed files of the local backend: the writer half that seals an upload
//! as it streams, and [`BlobFile`], which opens a stored file one chunk at
//! a time for the download body and `fsck`.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use custody_standards::Hash;
use sha2::{Digest as _, Sha256};

use super::local::LocalBlobs;
use super::{integrity, sealed_err, BlobError};
use crate::seal::format::{open_all, plain_len, sealed_len, BLOB_ID_LEN, CHUNK, HEADER_LEN, TAG};
use crate::seal::{ChunkCipher, Encoder, Header, Seal};

fn io(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io { path: path.to_owned(), source }
}

/// A stored file opened for reading, plaintext or sealed.
#[derive(Debug)]
pub enum BlobFile {
    /// The artifact's bytes as they are.
    Plain(File),
    /// A sealed copy whose header and key were checked.
    Sealed {
        /// The stored file.
        file: File,
        /// Its chunk cipher (boxed: it holds the expanded AES key).
        cipher: Box<ChunkCipher>,
    },
}

/// Reads up to `want` bytes at `offset` (fewer only at end of file).
fn read_full_at(file: &File, offset: u64, want: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl BlobFile {
    /// Up to `want` plaintext bytes at plaintext `offset`; fewer only when
    /// the file ends early. For a sealed file `offset` is a chunk boundary
    /// and `want` that chunk's length, and a chunk that fails
    /// authentication is an [`io::ErrorKind::InvalidData`] error: none of
    /// its bytes are returned.
    pub fn read_at(&self, offset: u64, want: usize) -> io::Result<Vec<u8>> {
        match self {
            BlobFile::Plain(file) => read_full_at(file, offset, want),
            BlobFile::Sealed { file, cipher } => {
                let index = offset / CHUNK as u64;
                if offset % CHUNK as u64 != 0 || want != cipher.header().chunk_len(index) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "unaligned read of a sealed file",
                    ));
                }
                let mut buf = read_full_at(file, ChunkCipher::offset_of(index), want + TAG)?;
                if buf.len() < want + TAG {
                    buf.clear();
                    return Ok(buf);
                }
                cipher.open(index, &mut buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok(buf)
            }
        }
    }

    /// Reads every byte (opening every chunk) and checks the whole against
    /// `digest` and `size`.
    pub fn verify_all(&self, digest: &Hash, size: u64) -> Result<(), BlobError> {
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        while offset < size {
            let want = usize::try_from(size - offset).unwrap_or(CHUNK).min(CHUNK);
            let bytes = self.read_at(offset, want).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => integrity_text(digest, &e.to_string()),
                _ => BlobError::Io { path: digest.to_hex().into(), source: e },
            })?;
            if bytes.len() < want {
                return Err(integrity_text(digest, "a file shorter than its header says"));
            }
            hasher.update(&bytes);
            offset += want as u64;
        }
        let actual = Hash(hasher.finalize().into());
        if actual != *digest {
            return Err(integrity(digest, &actual));
        }
        Ok(())
    }
}

fn integrity_text(digest: &Hash, what: &str) -> BlobError {
    BlobError::Integrity { expected: digest.to_hex(), actual: what.to_owned() }
}

/// The sealing half of a local upload.
pub(super) struct SealingWriter {
    enc: Encoder,
    record: Vec<u8>,
    out: Vec<u8>,
}

impl SealingWriter {
    /// A fresh data key and header for `size` bytes of `digest`.
    pub(super) fn start(seal: &Seal, digest: &Hash, size: u64) -> Result<Self, BlobError> {
        let (enc, record) = seal.start(digest, size).map_err(BlobError::Key)?;
        Ok(SealingWriter { enc, record: record.to_bytes(), out: Vec::with_capacity(CHUNK + TAG) })
    }

    /// The header to write first.
    pub(super) fn header_bytes(&self) -> [u8; HEADER_LEN] {
        self.enc.header_bytes()
    }

    /// Seals `plain` and writes the chunks it completes.
    pub(super) fn write(&mut self, plain: &[u8], file: &mut File, path: &Path) -> Result<(), BlobError> {
        self.out.clear();
        self.enc.update(plain, &mut self.out).map_err(BlobError::Key)?;
        file.write_all(&self.out).map_err(io(path))
    }

    /// Writes the last chunk; the copy's blob id and key record.
    pub(super) fn finish(
        mut self,
        file: &mut File,
        path: &Path,
    ) -> Result<([u8; BLOB_ID_LEN], Vec<u8>), BlobError> {
        let blob_id = self.enc.header().blob_id;
        self.out.clear();
        self.enc.finish(&mut self.out).map_err(BlobError::Key)?;
        file.write_all(&self.out).map_err(io(path))?;
        Ok((blob_id, self.record))
    }
}

impl std::fmt::Debug for SealingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingWriter").field("header", self.enc.header()).finish_non_exhaustive()
    }
}

impl LocalBlobs {
    /// The header of the stored file of `digest` (`len` bytes), checked
    /// against the file's length.
    fn sealed_header(digest: &Hash, path: &Path, file: &File, len: u64) -> Result<Header, BlobError> {
        let bytes = read_full_at(file, 0, HEADER_LEN).map_err(io(path))?;
        let header = Header::parse(&bytes).map_err(|e| sealed_err(digest, e))?;
        if header.sealed_len() != len {
            return Err(integrity_text(digest, "a sealed file of the wrong length"));
        }
        Ok(header)
    }

    /// Opens the sealed `file` of `digest`: header, key record, cipher.
    pub(super) fn open_sealed(
        &self,
        seal: &Seal,
        digest: &Hash,
        path: &Path,
        file: File,
        len: u64,
    ) -> Result<(BlobFile, u64), BlobError> {
        let header = Self::sealed_header(digest, path, &file, len)?;
        let record = self.get_record(digest, &header.blob_id)?;
        let cipher = seal.cipher(digest, header, record).map_err(|e| sealed_err(digest, e))?;
        Ok((BlobFile::Sealed { file, cipher: Box::new(cipher) }, header.plain_len))
    }

    /// The whole plaintext of the sealed `file` of `digest`, verified, if
    /// it is at most `max` bytes.
    pub(super) fn read_small_sealed(
        &self,
        seal: &Seal,
        digest: &Hash,
        path: &Path,
        file: File,
        len: u64,
        max: u64,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let plain =
            plain_len(len).ok_or_else(|| integrity_text(digest, "a sealed file of impossible length"))?;
        if plain > max {
            return Ok(None);
        }
        let header = Self::sealed_header(digest, path, &file, len)?;
        let record = self.get_record(digest, &header.blob_id)?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // `take` keeps a file that grew since `metadata` from growing the buffer.
        file.take(sealed_len(max) + 1).read_to_end(&mut bytes).map_err(io(path))?;
        let plain = open_all(&bytes, digest, |h| seal.data_key(digest, h, record))
            .map_err(|e| sealed_err(digest, e))?;
        let actual = custody_standards::hash::sha256(&plain);
        if actual != *digest {
            return Err(integrity(digest, &actual));
        }
        Ok(Some(plain))
    }

    /// `len` bytes of the stored file of `digest` from `offset`, as stored.
    pub fn read_stored(&self, digest: &Hash, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        let path = self.path_of(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.to_hex()))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        read_full_at(&file, offset, usize::try_from(len).unwrap_or(usize::MAX)).map_err(io(&path))
    }

    /// The blob id in the header of the stored file of `digest`, if it is
    /// there and parses.
    pub(super) fn stored_blob_id(&self, digest: &Hash) -> Result<Option<[u8; BLOB_ID_LEN]>, BlobError> {
        let path = self.path_of(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let bytes = read_full_at(&file, 0, HEADER_LEN).map_err(io(&path))?;
        Ok(Header::parse(&bytes).ok().map(|h| h.blob_id))
    }
}
