//! An upload into the bucket, hashed as it streams.
//!
//! A body smaller than one part is kept in memory and written with a single
//! PUT once its digest and size check out. A larger one goes up as an S3
//! multipart upload addressed to its final name, in parts of
//! [`PART_SIZE`] with at most [`PARTS_IN_FLIGHT`] uploading at once (memory
//! stays bounded whatever the artifact's size). S3 makes a multipart
//! object visible only when the upload is completed, and it is completed
//! only after the whole body hashed to the declared digest at the declared
//! size; otherwise, or if the writer is dropped (client gone, server
//! error), the upload is aborted. So nothing half-written or wrong is ever
//! visible under a digest.
//!
//! Identical bytes are stored once: a HEAD before the upload finds an
//! object already there, and the body is then only hashed (the client's
//! bytes must still match what it declared); a second HEAD before the
//! object is made visible covers an identical upload that finished in the
//! meantime. Two identical uploads racing past both HEADs both write the
//! same verified bytes, which is harmless.
//!
//! In a sealed bucket the body is sealed as it streams (the parts carry
//! sealed bytes) and the copy's key record is written before the object is
//! made visible. Each copy names its own record by its blob id, so two
//! racing uploads of the same digest each leave a record that opens the
//! copy it belongs to, whichever copy ends up stored.

use std::collections::VecDeque;

use custody_standards::Hash;
use object_store::{MultipartUpload, PutMode, PutOptions, PutPayload};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use super::bucket::BucketBlobs;
use super::{check_upload, BlobError, Stored};
use crate::seal::format::BLOB_ID_LEN;
use crate::seal::Encoder;

/// Bytes per multipart part: above S3's 5 MiB minimum for every part but
/// the last.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once, per upload.
pub const PARTS_IN_FLIGHT: usize = 2;

/// An upload in progress into the bucket. Dropping it without
/// [`BucketWriter::finish`] aborts its multipart upload.
pub struct BucketWriter<'a> {
    blobs: &'a BucketBlobs,
    declared: Hash,
    declared_size: u64,
    hasher: Sha256,
    written: u64,
    /// An object of this digest and size was there when the upload began:
    /// the body is only hashed.
    exists: bool,
    /// Bytes not yet sent as a part.
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    parts: VecDeque<JoinHandle<object_store::Result<()>>>,
    /// Seals the body on its way into `buf` (sealed bucket), with the key
    /// record to write before the object becomes visible.
    sealing: Option<(Encoder, Vec<u8>)>,
    /// Written even over a stored object of the same digest.
    replace: bool,
}

impl std::fmt::Debug for BucketWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketWriter")
            .field("digest", &self.declared.to_hex())
            .field("written", &self.written)
            .field("multipart", &self.upload.is_some())
            .finish()
    }
}

impl<'a> BucketWriter<'a> {
    /// With `replace`, the object is written even if one is stored under
    /// the digest (sealing a plaintext store in place).
    pub(super) fn new(
        blobs: &'a BucketBlobs,
        declared: Hash,
        declared_size: u64,
        replace: bool,
    ) -> Result<Self, BlobError> {
        let exists = !replace && stored_size(blobs, &declared)? == Some(declared_size);
        let (mut buf, mut sealing) = (Vec::new(), None);
        if let (Some(seal), false) = (blobs.seal(), exists) {
            let (enc, record) = seal.start(&declared, declared_size).map_err(BlobError::Key)?;
            buf.extend_from_slice(&enc.header_bytes());
            sealing = Some((enc, record.to_bytes()));
        }
        Ok(BucketWriter {
            blobs,
            declared,
            declared_size,
            hasher: Sha256::new(),
            written: 0,
            exists,
            buf,
            upload: None,
            parts: VecDeque::new(),
            sealing,
            replace,
        })
    }

    /// Appends a chunk. Fails as soon as the upload exceeds its declared
    /// size, so an overlong body is cut off rather than stored.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let total = self.written.saturating_add(chunk.len() as u64);
        if total > self.declared_size {
            return Err(BlobError::SizeMismatch { declared: self.declared_size, actual: total });
        }
        self.hasher.update(chunk);
        self.written = total;
        if self.exists {
            return Ok(());
        }
        match &mut self.sealing {
            Some((enc, _)) => enc.update(chunk, &mut self.buf).map_err(BlobError::Key)?,
            None => self.buf.extend_from_slice(chunk),
        }
        while self.buf.len() >= PART_SIZE {
            let rest = self.buf.split_off(PART_SIZE);
            let part = std::mem::replace(&mut self.buf, rest);
            self.send_part(part)?;
        }
        Ok(())
    }

    /// Starts uploading `part` (starting the multipart upload first if
    /// needed), after waiting for the oldest part past the in-flight cap.
    fn send_part(&mut self, part: Vec<u8>) -> Result<(), BlobError> {
        let upload = match &mut self.upload {
            Some(u) => u,
            None => {
                let (store, path) = (self.blobs.store(), self.blobs.path_of(&self.declared));
                let started = self.blobs.wait(async move { store.put_multipart(&path).await })?;
                self.upload.insert(started.map_err(|e| self.blobs.err(e))?)
            }
        };
        let fut = upload.put_part(PutPayload::from(part));
        self.parts.push_back(self.blobs.handle().spawn(fut));
        while self.parts.len() > PARTS_IN_FLIGHT {
            self.join_oldest()?;
        }
        Ok(())
    }

    fn join_oldest(&mut self) -> Result<(), BlobError> {
        let Some(part) = self.parts.pop_front() else { return Ok(()) };
        let done = self.blobs.wait(part)?;
        done.map_err(|e| BlobError::Io { path: "artifact bucket".into(), source: std::io::Error::other(e) })?
            .map_err(|e| self.blobs.err(e))
    }

    /// Checks size and digest, then makes the object visible under the
    /// digest (a single PUT, or completing the multipart upload) unless
    /// identical bytes are already stored.
    pub fn finish(mut self) -> Result<Stored, BlobError> {
        check_upload(self.written, self.declared_size, std::mem::take(&mut self.hasher), self.declared)?;
        let size = self.written;
        if self.exists || (!self.replace && stored_size(self.blobs, &self.declared)? == Some(size)) {
            return Ok(Stored { size, created: false });
        }
        if let Some((enc, record)) = self.sealing.take() {
            let blob_id: [u8; BLOB_ID_LEN] = enc.header().blob_id;
            enc.finish(&mut self.buf).map_err(BlobError::Key)?;
            // The key record first: a copy is never visible without its key.
            self.blobs.put_record(&self.declared, &blob_id, &record)?;
        }
        let Some(mut upload) = self.upload.take() else {
            let (store, path) = (self.blobs.store(), self.blobs.path_of(&self.declared));
            let body = PutPayload::from(std::mem::take(&mut self.buf));
            // Content-addressed and verified: replacing an object of this
            // name can only write the same bytes.
            let opts = PutOptions { mode: PutMode::Overwrite, ..PutOptions::default() };
            let put = self.blobs.wait(async move { store.put_opts(&path, body, opts).await })?;
            put.map_err(|e| self.blobs.err(e))?;
            return Ok(Stored { size, created: true });
        };
        if !self.buf.is_empty() {
            self.parts
                .push_back(self.blobs.handle().spawn(upload.put_part(std::mem::take(&mut self.buf).into())));
        }
        while !self.parts.is_empty() {
            if let Err(e) = self.join_oldest() {
                self.upload = Some(upload); // aborted on drop
                return Err(e);
            }
        }
        match self.blobs.wait(async move { upload.complete().await.map_err(|e| (e, upload)) })? {
            Ok(_) => Ok(Stored { size, created: true }),
            Err((e, upload)) => {
                self.upload = Some(upload);
                Err(self.blobs.err(e))
            }
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// The size of the artifact stored under `digest`, `None` if absent or if
/// its object is not even a well-formed sealed copy (the upload then
/// replaces it).
fn stored_size(blobs: &BucketBlobs, digest: &Hash) -> Result<Option<u64>, BlobError> {
    match blobs.wait_size_of(digest) {
        Err(BlobError::Integrity { .. }) => Ok(None),
        other => other,
    }
}

impl Drop for BucketWriter<'_> {
    fn drop(&mut self) {
        for part in self.parts.drain(..) {
            part.abort();
        }
        if let Some(mut upload) = self.upload.take() {
            let digest = self.declared.to_hex();
            self.blobs.handle().spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(digest, error = %e, "cannot abort an artifact's multipart upload");
                }
            });
        }
    }
}
