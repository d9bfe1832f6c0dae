//! The bucket backend of [`super::BlobStore`]: artifacts as objects at
//! `artifacts/sha256/<hex>` under the `--store` prefix ([`crate::bucket`]).
//!
//! Every request to the bucket runs on a small runtime of its own, so the
//! same store serves the server's async handlers, its blocking pool (the
//! upload writer, directory checks) and the synchronous `fsck` and `gc`
//! commands alike, and the HTTP connections to the bucket always live on
//! one runtime whatever thread asked. Blocking callers wait on a channel,
//! which is safe from any thread.
//!
//! Uploads: `bucket_write`. Downloads: `bucket_read`. The HTTP layer keeps
//! small verified objects in its cache under the object's stamp
//! ([`crate::blob_cache::FileStamp::of_object`]): an ETag alone could be
//! kept by a rewrite (it can be an MD5), but the last-modified time is set
//! by the store on every write, so a rewritten object is read and hashed
//! again.
//!
//! A sealed bucket ([`crate::seal`]) stores sealed copies under the same
//! names, their key records beside them (`bucket_keys`); sizes
//! reported here are those of the plaintext.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use custody_standards::Hash;
use futures_util::StreamExt as _;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer as _;
use object_store::ObjectStore;
use sha2::{Digest as _, Sha256};
use tokio::runtime::Handle;

use super::bucket_keys::open_whole;
use super::{integrity, sealed_err, sealed_size, BlobError, Listed};
use crate::blob_cache::FileStamp;
use crate::bucket::{Bucket, BucketError, ARTIFACTS};
use crate::seal::format::{sealed_len, CHUNK as SEAL_CHUNK};
use crate::seal::Seal;

pub use super::bucket_read::BucketRead;
pub use super::bucket_write::BucketWriter;

/// Worker threads of the bucket runtime: requests mostly wait on the
/// network, and hashing happens in the callers or the download pumps.
const IO_THREADS: usize = 2;

/// The runtime the bucket's requests run on; shut down without waiting
/// (dropping a runtime from async code would otherwise panic).
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Artifacts in a bucket.
pub struct BucketBlobs {
    bucket: Bucket,
    handle: Handle,
    _rt: Arc<IoRuntime>,
    presign: Option<Presign>,
    seal: Option<Arc<Seal>>,
}

/// Downloads answered with a presigned URL of the object.
struct Presign {
    s3: Arc<AmazonS3>,
    expires: Duration,
}

impl std::fmt::Debug for BucketBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketBlobs")
            .field("bucket", &self.bucket)
            .field("presign", &self.presign.as_ref().map(|p| p.expires))
            .finish()
    }
}

/// The error of a bucket request that did not complete because the
/// bucket runtime stopped (shutdown) or the request task panicked.
fn stopped(detail: impl std::fmt::Display) -> BlobError {
    BlobError::Io {
        path: "artifact bucket".into(),
        source: std::io::Error::other(format!("bucket request did not complete: {detail}")),
    }
}

impl BucketBlobs {
    /// Opens the artifacts tree of the store at `url` (see
    /// [`Bucket::open`]); nothing is requested yet.
    pub fn open(url: &str) -> Result<Self, BlobError> {
        let bucket = Bucket::open(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("custody-blob-io")
            .enable_all()
            .build()
            .map_err(|source| BlobError::Io { path: "artifact bucket runtime".into(), source })?;
        let handle = rt.handle().clone();
        Ok(BucketBlobs { bucket, handle, _rt: Arc::new(IoRuntime(Some(rt))), presign: None, seal: None })
    }

    /// The same store, sealing what it stores and opening what it reads
    /// with `seal` (`None`: plaintext).
    pub fn with_seal(mut self, seal: Option<Arc<Seal>>) -> Self {
        self.seal = seal;
        self
    }

    /// What the store seals with, if it is sealed.
    pub fn seal(&self) -> Option<&Arc<Seal>> {
        self.seal.as_ref()
    }

    /// Downloads will answer with a URL of the object presigned for
    /// `secs` seconds. Only an `s3://` store can presign.
    pub fn with_presign(mut self, secs: u64) -> Result<Self, BlobError> {
        let s3 = self.bucket.s3()?.ok_or_else(|| BucketError::Url {
            url: self.bucket.url().to_owned(),
            reason: "presigned downloads need an s3:// store".to_owned(),
        })?;
        self.presign = Some(Presign { s3: Arc::new(s3), expires: Duration::from_secs(secs) });
        Ok(self)
    }

    /// The bucket.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The object path of `digest`.
    pub fn path_of(&self, digest: &Hash) -> ObjectPath {
        self.bucket.path(&format!("{ARTIFACTS}/sha256/{}", digest.to_hex()))
    }

    pub(super) fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(self.bucket.object_store())
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(super) fn err(&self, source: object_store::Error) -> BlobError {
        BucketError::Store { url: self.bucket.url().to_owned(), source }.into()
    }

    /// Runs `fut` on the bucket runtime and awaits it from any runtime.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BlobError> {
        self.handle.spawn(fut).await.map_err(stopped)
    }

    /// Runs `fut` on the bucket runtime and blocks this thread until it is
    /// done (blocking code only: it holds the thread).
    pub(super) fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BlobError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(stopped)
    }

    fn head_fut(
        &self,
        digest: &Hash,
    ) -> impl Future<Output = object_store::Result<Option<FileStamp>>> + Send {
        let (store, path) = (self.store(), self.path_of(digest));
        async move {
            match store.head(&path).await {
                Ok(meta) => Ok(Some(FileStamp::of_object(&meta))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    /// The stored object's stamp (one HEAD), `None` if absent.
    pub async fn stamp(&self, digest: &Hash) -> Result<Option<FileStamp>, BlobError> {
        self.run(self.head_fut(digest)).await?.map_err(|e| self.err(e))
    }

    /// Size of the stored artifact (its plaintext, if sealed; one HEAD),
    /// `None` if absent.
    pub async fn size_of(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        let stored = self.stamp(digest).await?.map(|s| s.size());
        stored.map(|n| sealed_size(self.seal.is_some(), digest, n)).transpose()
    }

    /// [`BucketBlobs::size_of`] for blocking code.
    pub fn wait_size_of(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        let stored = self.wait_size_of_stored(digest)?;
        stored.map(|n| sealed_size(self.seal.is_some(), digest, n)).transpose()
    }

    /// The stored object's own size (sealed bytes, if sealed).
    pub(super) fn wait_size_of_stored(&self, digest: &Hash) -> Result<Option<u64>, BlobError> {
        Ok(self.wait(self.head_fut(digest))?.map_err(|e| self.err(e))?.map(|s| s.size()))
    }

    /// Starts an upload (blocking code only; see [`BucketWriter`]).
    pub fn begin(&self, declared: Hash, declared_size: u64) -> Result<BucketWriter<'_>, BlobError> {
        BucketWriter::new(self, declared, declared_size, false)
    }

    /// [`BucketBlobs::begin`] of an upload that replaces the stored object
    /// of its digest once it checks out (sealing a plaintext store).
    pub fn begin_replace(&self, declared: Hash, declared_size: u64) -> Result<BucketWriter<'_>, BlobError> {
        BucketWriter::new(self, declared, declared_size, true)
    }

    /// `len` stored bytes of the object of `digest` from `offset` (fewer
    /// at its end), as stored.
    pub fn wait_read_stored(&self, digest: &Hash, offset: u64, len: u64) -> Result<Bytes, BlobError> {
        let (store, path) = (self.store(), self.path_of(digest));
        let got = self.wait(async move { store.get_range(&path, offset..offset + len).await })?;
        got.map_err(|e| self.not_found_or(e, digest))
    }

    /// Deletes the object (and, if sealed, its copy's key record); absent
    /// is not an error.
    pub fn remove(&self, digest: &Hash) -> Result<(), BlobError> {
        let blob_id = match &self.seal {
            Some(_) => self.stored_blob_id(digest)?,
            None => None,
        };
        self.remove_object(digest)?;
        match blob_id {
            Some(id) => self.remove_record(digest, &id),
            None => Ok(()),
        }
    }

    fn remove_object(&self, digest: &Hash) -> Result<(), BlobError> {
        let (store, path) = (self.store(), self.path_of(digest));
        let done = self.wait(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        done.map_err(|e| self.err(e))
    }

    /// The whole object, verified, if it is at most `max` bytes.
    pub fn wait_read_small_verified(&self, digest: &Hash, max: u64) -> Result<Option<Vec<u8>>, BlobError> {
        let (store, path) = (self.store(), self.path_of(digest));
        if let Some(seal) = &self.seal {
            let (ctx, keys, seal, want) = (self.ctx(), self.keys_dir(digest), Arc::clone(seal), *digest);
            return self.wait(async move {
                let got = read_capped(store, path, sealed_len(max)).await;
                match got.map_err(|e| ctx.not_found_or(e, &want))? {
                    None => Ok(None),
                    Some(bytes) => open_whole(&ctx, &keys, &seal, &want, &bytes).await.map(Some),
                }
            })?;
        }
        let got = self.wait(async move { read_capped(store, path, max).await })?;
        let Some(bytes) = got.map_err(|e| self.not_found_or(e, digest))? else { return Ok(None) };
        let actual = custody_standards::hash::sha256(&bytes);
        if actual != *digest {
            return Err(integrity(digest, &actual));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Hashes the whole object (streamed; every chunk opened, if sealed)
    /// and returns its size.
    pub fn verify(&self, digest: &Hash) -> Result<u64, BlobError> {
        let (store, path) = (self.store(), self.path_of(digest));
        if let Some(seal) = &self.seal {
            let (ctx, keys, seal, want) = (self.ctx(), self.keys_dir(digest), Arc::clone(seal), *digest);
            return self.wait(async move {
                let got = store.get(&path).await.map_err(|e| ctx.not_found_or(e, &want))?;
                let stored = got.meta.size;
                let mut stream = got.into_stream();
                let (mut dec, first) =
                    super::bucket_keys::start_decoding(&ctx, &keys, &seal, &want, stored, &mut stream)
                        .await?;
                let (mut hasher, mut size, mut out) = (Sha256::new(), 0u64, Vec::with_capacity(SEAL_CHUNK));
                let mut feed = |bytes: &[u8], out: &mut Vec<u8>| -> Result<(), BlobError> {
                    out.clear();
                    dec.update(bytes, out).map_err(|e| sealed_err(&want, e))?;
                    hasher.update(&out[..]);
                    size += out.len() as u64;
                    Ok(())
                };
                feed(&first, &mut out)?;
                while let Some(piece) = stream.next().await {
                    feed(&piece.map_err(|e| ctx.err(e))?, &mut out)?;
                }
                dec.finish().map_err(|e| sealed_err(&want, e))?;
                let actual = Hash(hasher.finalize().into());
                if actual != want {
                    return Err(integrity(&want, &actual));
                }
                Ok(size)
            })?;
        }
        let got = self.wait(async move {
            let mut stream = store.get(&path).await?.into_stream();
            let (mut hasher, mut size) = (Sha256::new(), 0u64);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Ok((Hash(hasher.finalize().into()), size))
        })?;
        let (actual, size) = got.map_err(|e| self.not_found_or(e, digest))?;
        if actual != *digest {
            return Err(integrity(digest, &actual));
        }
        Ok(size)
    }

    /// Every object under the artifacts tree. A name that is not a digest
    /// is an integrity error (nothing else belongs there).
    pub fn list_stored(&self) -> Result<Vec<Listed>, BlobError> {
        let mut out = Vec::new();
        for meta in self.list_all(&format!("{ARTIFACTS}/sha256"))? {
            let name = meta.location.filename().unwrap_or_default();
            let digest = Hash::from_hex(name).map_err(|_| BlobError::Integrity {
                expected: meta.location.to_string(),
                actual: "an object whose name is not a digest".into(),
            })?;
            let modified_ms = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            let size = sealed_size(self.seal.is_some(), &digest, meta.size).unwrap_or(meta.size);
            out.push(Listed { digest, size, modified_ms });
        }
        Ok(out)
    }

    /// Every object under `prefix` (relative to the bucket's prefix),
    /// waiting for the whole listing.
    pub(super) fn list_all(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, BlobError> {
        let (store, base) = (self.store(), self.bucket.path(prefix));
        let metas = self.wait(async move {
            let mut out = Vec::new();
            let mut stream = store.list(Some(&base));
            while let Some(meta) = stream.next().await {
                out.push(meta?);
            }
            Ok::<_, object_store::Error>(out)
        })?;
        metas.map_err(|e| self.err(e))
    }

    /// A URL of the object presigned for a GET, if downloads are
    /// presigned. Signing is local (no request), but may refresh
    /// credentials.
    pub async fn presigned_url(&self, digest: &Hash) -> Result<Option<String>, BlobError> {
        // A sealed store never presigns: the URL would serve sealed bytes.
        let Some(p) = self.presign.as_ref().filter(|_| self.seal.is_none()) else { return Ok(None) };
        let (s3, path, expires) = (Arc::clone(&p.s3), self.path_of(digest), p.expires);
        let url = self
            .run(async move { s3.signed_url(custody_client::Method::GET, &path, expires).await })
            .await?
            .map_err(|e| self.err(e))?;
        Ok(Some(url.to_string()))
    }

    /// A missing object is [`BlobError::NotFound`], anything else a store
    /// error.
    pub(super) fn not_found_or(&self, e: object_store::Error, digest: &Hash) -> BlobError {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound(digest.to_hex()),
            e => self.err(e),
        }
    }
}

/// The object at `path` if it is at most `max` bytes, reading no more than
/// `max + 1` bytes whatever the bucket claims.
pub(super) async fn read_capped(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    max: u64,
) -> object_store::Result<Option<Bytes>> {
    read_capped_from(store.get(&path).await?, max).await
}

/// [`read_capped`] of an object already requested.
pub(super) async fn read_capped_from(
    got: object_store::GetResult,
    max: u64,
) -> object_store::Result<Option<Bytes>> {
    if got.meta.size > max {
        return Ok(None);
    }
    let mut stream = got.into_stream();
    let mut out = Vec::with_capacity(usize::try_from(max.min(1 << 20)).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() as u64 > max {
            // Grew past its listed size: hashed as is, it fails the check.
            break;
        }
    }
    Ok(Some(Bytes::from(out)))
}
