//! A download from the bucket, verified as it is served.
//!
//! A small object is read whole (capped) and hashed before anything is
//! served, like a small local file. A larger one is streamed: a pump task
//! on the bucket runtime hashes each piece as it arrives from the bucket and
//! hands it on through a bounded channel (memory stays bounded, and a slow
//! client slows the read from the bucket), always holding back the last
//! piece it received. At the end of the object the pump releases that
//! last piece only if the whole object had exactly the size it was listed
//! with and hashes to its digest; otherwise it sends
//! [`BlobError::Integrity`] instead, so the client sees a response cut
//! short of its `Content-Length`, never a clean end.
//!
//! A sealed object is opened on the way: its header is read and its key
//! record fetched before the response starts, and the pump passes the
//! pieces through the chunk decoder, so what it hashes and hands on is
//! authenticated plaintext only, one whole chunk at a time; a chunk that
//! fails authentication, or a stream cut short of its last chunk, ends the
//! download with an integrity error in the same way.

use bytes::Bytes;
use custody_standards::Hash;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::bucket::{read_capped_from, BucketBlobs};
use super::bucket_keys::{open_whole, start_decoding};
use super::{integrity, sealed_err, sealed_size, BlobError};
use crate::seal::format::sealed_len;
use crate::seal::Decoder;

/// Pieces buffered between the bucket and the client.
const PIPE_DEPTH: usize = 4;

/// What a download from the bucket serves.
#[derive(Debug)]
pub enum BucketRead {
    /// A small object, read whole and verified.
    Whole(Bytes),
    /// A large object of `size` bytes, verified as it is received: the
    /// last piece comes only if the whole object matched.
    Stream {
        /// The pieces, or the error that ends the download.
        chunks: mpsc::Receiver<Result<Bytes, BlobError>>,
        /// The object's size when the read began.
        size: u64,
    },
}

impl BucketBlobs {
    /// Opens `digest` for serving: whole and verified up to `small_max`
    /// bytes, streamed and verified as served beyond.
    pub async fn open_read(&self, digest: &Hash, small_max: u64) -> Result<BucketRead, BlobError> {
        let (store, path, want) = (self.store(), self.path_of(digest), *digest);
        if let Some(seal) = self.seal() {
            let (ctx, keys, seal) = (self.ctx(), self.keys_dir(digest), std::sync::Arc::clone(seal));
            return self
                .run(async move {
                    let got = store.get(&path).await.map_err(|e| ctx.not_found_or(e, &want))?;
                    let stored = got.meta.size;
                    let size = sealed_size(true, &want, stored)?;
                    if size <= small_max {
                        let bytes =
                            read_capped_from(got, sealed_len(small_max)).await.map_err(|e| ctx.err(e))?;
                        let bytes = bytes.ok_or_else(|| BlobError::NotFound(want.to_hex()))?;
                        return Ok(BucketRead::Whole(
                            open_whole(&ctx, &keys, &seal, &want, &bytes).await?.into(),
                        ));
                    }
                    let mut stream = got.into_stream();
                    let (dec, first) = start_decoding(&ctx, &keys, &seal, &want, stored, &mut stream).await?;
                    let first = futures_util::stream::once(async move {
                        Ok::<_, object_store::Error>(Bytes::from(first))
                    });
                    let (tx, rx) = mpsc::channel(PIPE_DEPTH);
                    tokio::spawn(pump(first.chain(stream).boxed(), size, want, tx, Some(dec)));
                    Ok(BucketRead::Stream { chunks: rx, size })
                })
                .await?;
        }
        let opened = self
            .run(async move {
                let got = store.get(&path).await?;
                let size = got.meta.size;
                if size <= small_max {
                    return Ok(Opened::Small(read_capped_from(got, small_max).await?));
                }
                let (tx, rx) = mpsc::channel(PIPE_DEPTH);
                tokio::spawn(pump(got.into_stream(), size, want, tx, None));
                Ok(Opened::Stream(rx, size))
            })
            .await?
            .map_err(|e| self.not_found_or(e, digest))?;
        match opened {
            Opened::Small(None) => Err(BlobError::NotFound(digest.to_hex())),
            Opened::Small(Some(bytes)) => {
                let actual = custody_standards::hash::sha256(&bytes);
                if actual != *digest {
                    return Err(integrity(digest, &actual));
                }
                Ok(BucketRead::Whole(bytes))
            }
            Opened::Stream(chunks, size) => Ok(BucketRead::Stream { chunks, size }),
        }
    }
}

enum Opened {
    /// Never `None` (its size was checked).
    Small(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, BlobError>>, u64),
}

/// Hashes `stream` into `tx`, holding back the last piece until the whole
/// object checks out; stops as soon as nobody listens. With `sealed`, the
/// pieces are sealed bytes after the header, opened one chunk at a time
/// (`size` is the plaintext's).
async fn pump(
    mut stream: BoxStream<'static, object_store::Result<Bytes>>,
    size: u64,
    digest: Hash,
    tx: mpsc::Sender<Result<Bytes, BlobError>>,
    mut sealed: Option<Decoder>,
) {
    let (mut hasher, mut total, mut held) = (Sha256::new(), 0u64, None::<Bytes>);
    let changed = |what: String| BlobError::Integrity { expected: digest.to_hex(), actual: what };
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                let e = BlobError::Io { path: "artifact bucket".into(), source: std::io::Error::other(e) };
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let piece = match &mut sealed {
            None => piece,
            Some(dec) => {
                let mut plain = Vec::new();
                if let Err(e) = dec.update(&piece, &mut plain) {
                    let _ = tx.send(Err(sealed_err(&digest, e))).await;
                    return;
                }
                if plain.is_empty() {
                    continue;
                }
                Bytes::from(plain)
            }
        };
        total += piece.len() as u64;
        if total > size {
            let _ = tx.send(Err(changed(format!("an object longer than its {size} bytes")))).await;
            return;
        }
        hasher.update(&piece);
        if let Some(prev) = held.replace(piece) {
            if tx.send(Ok(prev)).await.is_err() {
                return;
            }
        }
    }
    if let Some(Err(e)) = sealed.map(Decoder::finish) {
        let _ = tx.send(Err(sealed_err(&digest, e))).await;
        return;
    }
    if total < size {
        let _ = tx.send(Err(changed(format!("an object shorter than its {size} bytes")))).await;
        return;
    }
    let actual = Hash(hasher.finalize().into());
    let last = if actual == digest { held.map(Ok) } else { Some(Err(integrity(&digest, &actual))) };
    if let Some(last) = last {
        let _ = tx.send(last).await;
    }
}
