//! Key records, the check record and the opening of sealed objects in the
//! bucket backend ([`crate::seal`]).
//!
//! Layout under the `--store` prefix: `artifacts/sha256/<hex>` holds the
//! sealed copy, `artifacts/keys/<hex>/<blob id>` its key record and
//! `artifacts/seal.json` the check record. Records live in the bucket with
//! the data, so a log restored from its bucket finds them there. A PUT
//! replaces an object atomically, so a reader (or a rotation killed
//! mid-way) sees a record wrapped by the old KEK or the new one, never a
//! mix.

use std::sync::Arc;

use bytes::Bytes;
use custody_standards::Hash;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use super::bucket::{read_capped, BucketBlobs};
use super::local_keys::CHECK_FILE;
use super::{integrity, sealed_err, BlobError, KeyName};
use crate::bucket::{BucketError, ARTIFACTS};
use crate::seal::format::{open_all, BLOB_ID_LEN, HEADER_LEN};
use crate::seal::record::MAX_RECORD;
use crate::seal::{Decoder, Header, Seal};

/// What a request running on the bucket runtime needs to name its errors.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) url: String,
}

impl Ctx {
    pub(super) fn err(&self, source: object_store::Error) -> BlobError {
        BucketError::Store { url: self.url.clone(), source }.into()
    }

    pub(super) fn not_found_or(&self, e: object_store::Error, digest: &Hash) -> BlobError {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound(digest.to_hex()),
            e => self.err(e),
        }
    }

    /// The object at `path` (at most [`MAX_RECORD`] bytes), `None` if absent.
    pub(super) async fn record(&self, path: &ObjectPath) -> Result<Option<Vec<u8>>, BlobError> {
        match read_capped(Arc::clone(&self.store), path.clone(), MAX_RECORD as u64).await {
            Ok(Some(b)) => Ok(Some(b.to_vec())),
            // Larger than any record: parsed as is, it is refused.
            Ok(None) => Ok(Some(vec![0u8; MAX_RECORD + 1])),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }
}

impl BucketBlobs {
    pub(super) fn ctx(&self) -> Ctx {
        Ctx { store: self.store(), url: self.bucket().url().to_owned() }
    }

    /// The directory of the key records of `digest`.
    pub(super) fn keys_dir(&self, digest: &Hash) -> ObjectPath {
        self.bucket().path(&format!("{ARTIFACTS}/keys/{}", digest.to_hex()))
    }

    fn check_path(&self) -> ObjectPath {
        self.bucket().path(&format!("{ARTIFACTS}/{CHECK_FILE}"))
    }

    fn put_object(&self, path: ObjectPath, bytes: &[u8]) -> Result<(), BlobError> {
        let (ctx, body) = (self.ctx(), PutPayload::from(bytes.to_vec()));
        let opts = PutOptions { mode: PutMode::Overwrite, ..PutOptions::default() };
        let store = Arc::clone(&ctx.store);
        self.wait(async move { store.put_opts(&path, body, opts).await })?.map(drop).map_err(|e| ctx.err(e))
    }

    /// Writes the key record of copy `blob_id` of `digest` (replacing it).
    pub fn put_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        self.put_object(self.keys_dir(digest).child(hex::encode(blob_id)), bytes)
    }

    /// [`BucketBlobs::wait_get_record`] from async code.
    pub async fn get_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let (ctx, path) = (self.ctx(), self.keys_dir(digest).child(hex::encode(blob_id)));
        self.run(async move { ctx.record(&path).await }).await?
    }

    /// The key record of copy `blob_id` of `digest`, if stored.
    pub fn wait_get_record(
        &self,
        digest: &Hash,
        blob_id: &[u8; BLOB_ID_LEN],
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let (ctx, path) = (self.ctx(), self.keys_dir(digest).child(hex::encode(blob_id)));
        self.wait(async move { ctx.record(&path).await })?
    }

    /// Deletes a key record; absent is not an error.
    pub fn remove_record(&self, digest: &Hash, blob_id: &[u8; BLOB_ID_LEN]) -> Result<(), BlobError> {
        let (ctx, path) = (self.ctx(), self.keys_dir(digest).child(hex::encode(blob_id)));
        let store = Arc::clone(&ctx.store);
        let done = self.wait(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        done.map_err(|e| ctx.err(e))
    }

    /// Every key record in the bucket.
    pub fn list_records(&self) -> Result<Vec<KeyName>, BlobError> {
        let mut out = Vec::new();
        for meta in self.list_all(&format!("{ARTIFACTS}/keys"))? {
            let parts: Vec<_> = meta.location.parts().collect();
            let [.., dir, name] = parts.as_slice() else { continue };
            let Ok(digest) = Hash::from_hex(dir.as_ref()) else { continue };
            let mut blob_id = [0u8; BLOB_ID_LEN];
            if hex::decode_to_slice(name.as_ref(), &mut blob_id).is_err() {
                continue;
            }
            let modified_ms = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            out.push(KeyName { digest, blob_id, modified_ms });
        }
        out.sort_unstable_by_key(|n| (n.digest.0, n.blob_id));
        Ok(out)
    }

    /// The store's check record, if any.
    pub fn read_check(&self) -> Result<Option<Vec<u8>>, BlobError> {
        let (ctx, path) = (self.ctx(), self.check_path());
        self.wait(async move { ctx.record(&path).await })?
    }

    /// Writes the store's check record (replacing it).
    pub fn write_check(&self, bytes: &[u8]) -> Result<(), BlobError> {
        self.put_object(self.check_path(), bytes)
    }

    /// Some stored artifact (one listing request), if there is any.
    pub fn any_stored(&self) -> Result<Option<Hash>, BlobError> {
        let (ctx, base) = (self.ctx(), self.bucket().path(&format!("{ARTIFACTS}/sha256")));
        let store = Arc::clone(&ctx.store);
        let first = self.wait(async move { store.list(Some(&base)).next().await.transpose() })?;
        let first = first.map_err(|e| ctx.err(e))?;
        Ok(first.and_then(|m| m.location.filename().and_then(|n| Hash::from_hex(n).ok())))
    }

    /// The blob id in the header of the stored copy of `digest`, if it is
    /// there and parses (one ranged GET).
    pub fn stored_blob_id(&self, digest: &Hash) -> Result<Option<[u8; BLOB_ID_LEN]>, BlobError> {
        let (ctx, path) = (self.ctx(), self.path_of(digest));
        let store = Arc::clone(&ctx.store);
        let got = self.wait(async move { store.get_range(&path, 0..HEADER_LEN as u64).await })?;
        match got {
            Ok(bytes) => Ok(Header::parse(&bytes).ok().map(|h| h.blob_id)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            // An object shorter than a header fails the ranged read: it is
            // not a sealed copy.
            Err(e) => match self.wait_size_of_stored(digest)? {
                Some(len) if len < HEADER_LEN as u64 => Ok(None),
                None => Ok(None),
                Some(_) => Err(ctx.err(e)),
            },
        }
    }
}

/// Reads the header off the front of `stream` (an object of `stored`
/// bytes), fetches that copy's key record and returns its decoder and the
/// bytes after the header already received.
pub(super) async fn start_decoding(
    ctx: &Ctx,
    keys_dir: &ObjectPath,
    seal: &Seal,
    digest: &Hash,
    stored: u64,
    stream: &mut BoxStream<'static, object_store::Result<Bytes>>,
) -> Result<(Decoder, Vec<u8>), BlobError> {
    let mut head = Vec::with_capacity(HEADER_LEN);
    while head.len() < HEADER_LEN {
        match stream.next().await {
            Some(piece) => head.extend_from_slice(&piece.map_err(|e| ctx.err(e))?),
            None => break,
        }
    }
    let header = Header::parse(&head).map_err(|e| sealed_err(digest, e))?;
    if header.sealed_len() != stored {
        return Err(BlobError::Integrity {
            expected: digest.to_hex(),
            actual: "a sealed object of the wrong length".into(),
        });
    }
    let record = ctx.record(&keys_dir.child(header.blob_id_hex())).await?;
    let cipher = seal.cipher(digest, header, record).map_err(|e| sealed_err(digest, e))?;
    Ok((Decoder::new(cipher), head.split_off(HEADER_LEN)))
}

/// Opens a whole sealed object held in memory and checks its digest.
pub(super) async fn open_whole(
    ctx: &Ctx,
    keys_dir: &ObjectPath,
    seal: &Seal,
    digest: &Hash,
    sealed: &[u8],
) -> Result<Vec<u8>, BlobError> {
    let header = Header::parse(sealed).map_err(|e| sealed_err(digest, e))?;
    let record = ctx.record(&keys_dir.child(header.blob_id_hex())).await?;
    let plain =
        open_all(sealed, digest, |h| seal.data_key(digest, h, record)).map_err(|e| sealed_err(digest, e))?;
    let actual = custody_standards::hash::sha256(&plain);
    if actual != *digest {
        return Err(integrity(digest, &actual));
    }
    Ok(plain)
}
