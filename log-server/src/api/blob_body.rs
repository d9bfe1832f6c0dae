//! The body of a download: the artifact's bytes in 64 KiB chunks, produced
//! only when the HTTP layer asks for them, so a slow client holds no thread
//! and at most one chunk of ours.
//!
//! - Bytes already in memory (a small artifact, verified when read or
//!   served from the verified cache) are sliced without copying.
//! - A file is read one chunk per poll, each read (and the hashing of what
//!   it read) on the blocking pool; nothing runs between chunks. The bytes
//!   are hashed as they are served, and the last chunk is released only
//!   once the whole file hashes to the digest it is stored under. If it
//!   does not (the file was changed on disk), or it ends early, the stream
//!   fails instead: the client sees a response cut short of its
//!   `Content-Length`, never a clean end, and the violation is counted and
//!   written to the audit log. A sealed file is read one sealed chunk per
//!   poll ([`BlobFile::read_at`]) and only its authenticated plaintext is
//!   hashed and served; a chunk that fails authentication ends the stream
//!   the same way.
//!
//! - A bucket object arrives in pieces already hashed by its pump
//!   ([`crate::blobs::BucketRead`]), which sends its last piece only once
//!   the whole object matched, an integrity error otherwise (counted and
//!   logged here, the response cut short the same way).
//!
//! Every poll refreshes the download's [`Slot`]; once the slot has expired
//! (its client was idle past `--download-idle-timeout`) the stream fails.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use custody_registry::names::Digest;
use custody_standards::Hash;
use futures_core::Stream;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::blobs::{BlobError, BlobFile};
use crate::download_slots::Slot;
use crate::metrics::Metrics;

/// Bytes per chunk served.
pub const CHUNK: usize = 64 * 1024;
// A sealed file is read one sealed chunk per served chunk.
const _: () = assert!(CHUNK == crate::seal::format::CHUNK);

/// Who to tell when served bytes turn out not to match their digest.
pub struct ViolationReport {
    /// Where the violation is counted.
    pub metrics: Arc<Metrics>,
    /// Index of the access entry that asked for the bytes.
    pub access_index: u64,
    /// The actor who asked.
    pub actor: String,
    /// The server, to log the violation as an entry signed by the log
    /// ([`super::integrity`]).
    pub log: actix_web::web::Data<super::AppState>,
}

impl ViolationReport {
    fn report(&self, digest: &Digest, what: &str) {
        super::integrity::report(&self.log, *digest, what, self.access_index);
        self.metrics.inc_integrity_violation();
        tracing::error!(
            target: "custody::audit",
            event = "integrity_violation",
            digest = %digest,
            found = what,
            access_index = self.access_index,
            actor = self.actor.as_str(),
            "stored artifact does not match its digest; download cut short"
        );
    }
}

/// A download's response body.
pub struct BlobBody {
    source: Source,
    slot: Slot,
    finished: bool,
}

enum Source {
    Memory { bytes: Bytes, at: usize },
    File(Box<FileSource>),
    Channel(Box<ChannelSource>),
}

/// Pieces of a bucket object, hashed by the pump that sends them
/// ([`crate::blobs::bucket`]): its last piece comes only after the whole
/// object matched, otherwise an error does.
struct ChannelSource {
    chunks: mpsc::Receiver<Result<Bytes, BlobError>>,
    size: u64,
    received: u64,
    digest: Digest,
    report: ViolationReport,
}

impl ChannelSource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        match self.chunks.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                self.received += bytes.len() as u64;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(BlobError::Integrity { actual, .. }))) => {
                self.report.report(&self.digest, &actual);
                Poll::Ready(Some(Err(cut("stored artifact does not match its digest"))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(cut(&format!("artifact read failed: {e}"))))),
            // The pump ends after the verified last piece, or after an error.
            Poll::Ready(None) if self.received == self.size => Poll::Ready(None),
            Poll::Ready(None) => Poll::Ready(Some(Err(cut("artifact read ended early")))),
        }
    }
}

struct FileSource {
    file: Arc<BlobFile>,
    size: u64,
    offset: u64,
    digest: Digest,
    /// `None` while a read holds it.
    hasher: Option<Sha256>,
    pending: Option<JoinHandle<ChunkRead>>,
    report: ViolationReport,
}

/// A chunk read and hashed on the blocking pool.
struct ChunkRead {
    hasher: Sha256,
    bytes: io::Result<Vec<u8>>,
}

impl BlobBody {
    /// Verified bytes already in memory.
    pub fn memory(bytes: Bytes, slot: Slot) -> Self {
        BlobBody { source: Source::Memory { bytes, at: 0 }, slot, finished: false }
    }

    /// The first `size` bytes of `file` (of its plaintext, if sealed),
    /// hashed as they are served and checked against `digest` before the
    /// last chunk is released.
    pub fn file(file: BlobFile, size: u64, digest: Digest, report: ViolationReport, slot: Slot) -> Self {
        let source = FileSource {
            file: Arc::new(file),
            size,
            offset: 0,
            digest,
            hasher: Some(Sha256::new()),
            pending: None,
            report,
        };
        BlobBody { source: Source::File(Box::new(source)), slot, finished: false }
    }
}

impl BlobBody {
    /// The pieces of a bucket object of `size` bytes (see
    /// [`crate::blobs::BucketRead`]); an integrity error from the pump is
    /// counted and logged.
    pub fn channel(
        chunks: mpsc::Receiver<Result<Bytes, BlobError>>,
        size: u64,
        digest: Digest,
        report: ViolationReport,
        slot: Slot,
    ) -> Self {
        let source = ChannelSource { chunks, size, received: 0, digest, report };
        BlobBody { source: Source::Channel(Box::new(source)), slot, finished: false }
    }
}

fn cut(what: &str) -> io::Error {
    io::Error::other(what.to_owned())
}

impl FileSource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if let Some(pending) = &mut self.pending {
                let read = match Pin::new(pending).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                };
                self.pending = None;
                let read = match read {
                    Ok(r) => r,
                    Err(e) => return Poll::Ready(Some(Err(cut(&format!("artifact read failed: {e}"))))),
                };
                let bytes = match read.bytes {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                        // A sealed chunk that fails authentication.
                        self.report.report(&self.digest, &e.to_string());
                        return Poll::Ready(Some(Err(cut("stored artifact fails authentication"))));
                    }
                    Err(e) => return Poll::Ready(Some(Err(e))),
                };
                let want = self.size - self.offset;
                self.offset += bytes.len() as u64;
                if (bytes.len() as u64) < want.min(CHUNK as u64) {
                    self.report.report(&self.digest, "the file is shorter than when it was opened");
                    return Poll::Ready(Some(Err(cut("stored artifact changed while being served"))));
                }
                if self.offset == self.size {
                    let actual = Hash(read.hasher.finalize().into());
                    if actual != self.digest.0 {
                        self.report.report(&self.digest, &format!("sha256:{}", actual.to_hex()));
                        return Poll::Ready(Some(Err(cut("stored artifact does not match its digest"))));
                    }
                    // The whole file verified: an integrity episode ends.
                    super::integrity::intact(&self.report.log, &self.digest);
                } else {
                    self.hasher = Some(read.hasher);
                }
                return Poll::Ready(Some(Ok(Bytes::from(bytes))));
            }
            let Some(hasher) = self.hasher.take() else {
                // Finished: the last chunk was verified and served.
                return Poll::Ready(None);
            };
            if self.offset >= self.size {
                // Only an empty file gets here without a read.
                let actual = Hash(hasher.finalize().into());
                if actual != self.digest.0 {
                    self.report.report(&self.digest, &format!("sha256:{}", actual.to_hex()));
                    return Poll::Ready(Some(Err(cut("stored artifact does not match its digest"))));
                }
                return Poll::Ready(None);
            }
            let want = usize::try_from(self.size - self.offset).unwrap_or(CHUNK).min(CHUNK);
            let (file, offset) = (Arc::clone(&self.file), self.offset);
            self.pending = Some(tokio::task::spawn_blocking(move || read_chunk(&file, offset, want, hasher)));
        }
    }
}

/// Reads up to `want` bytes at `offset` (fewer only at end of file) and
/// feeds them to `hasher`.
fn read_chunk(file: &BlobFile, offset: u64, want: usize, mut hasher: Sha256) -> ChunkRead {
    let bytes = file.read_at(offset, want);
    if let Ok(buf) = &bytes {
        hasher.update(buf);
    }
    ChunkRead { hasher, bytes }
}

impl Stream for BlobBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        this.slot.touch();
        if this.slot.expired() {
            this.finished = true;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no data within the download idle timeout",
            ))));
        }
        let next = match &mut this.source {
            Source::Memory { bytes, at } => {
                if *at >= bytes.len() {
                    Poll::Ready(None)
                } else {
                    let end = (*at + CHUNK).min(bytes.len());
                    let chunk = bytes.slice(*at..end);
                    *at = end;
                    Poll::Ready(Some(Ok(chunk)))
                }
            }
            Source::File(f) => f.poll_chunk(cx),
            Source::Channel(c) => c.poll_chunk(cx),
        };
        if matches!(next, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.finished = true;
        }
        next
    }
}
