//! Artifact upload and download, each authorized by a signed statement in
//! the `Custody-Statement` request header (standard base64 of the DSSE
//! envelope JSON).
//!
//! - `PUT /blobs/sha256:<hex>` carries a `publish` statement for exactly
//!   that digest and `Content-Length`; see [`super::blob_upload`].
//! - `GET /blobs/sha256:<hex>` carries an `access` statement for that
//!   digest. The download first takes a slot under the concurrency caps
//!   ([`crate::download_slots`]; 429 `too_many_downloads` past them, with
//!   nothing logged), then the access entry is made durable in the log
//!   before the first byte is served, and the response names its leaf
//!   index. An artifact up to 1 MiB is read and hashed whole before it is
//!   served (or served from the [`crate::blob_cache`] when this very version
//!   of the file was hashed before): a mismatch is an integrity violation
//!   (500, counted, written to the audit log) and nothing is served. A larger
//!   one is hashed while it is served ([`super::blob_body`]): its last chunk
//!   is released only if the whole file matches, otherwise the response is
//!   cut short and the violation counted and logged the same way.
//!
//! With artifacts in the `--store` bucket the same holds (see
//! [`crate::blobs::bucket`]; no verified cache), and with
//! `--presign-downloads` the answer, after the access entry is durable, is
//! a 307 to a presigned URL of the object, which the client verifies
//! (plaintext stores only: a sealed store serves the bytes itself).
//!
//! A sealed store ([`crate::seal`]) is opened on the way out: a copy that
//! fails authentication is an integrity violation like a digest mismatch,
//! and a copy whose data key cannot be unwrapped is refused with 500
//! `artifact_key_unavailable`; neither serves a byte of it.

use actix_web::http::{header, Method};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use custody_registry::names::Digest;
use custody_registry::statement::Event;
use custody_standards::encoding::decode_base64_strict;

use super::blob_body::{BlobBody, ViolationReport};
use super::directory::grant_file;
use super::statements::{check_signature, parse_statement, sequence_checked, sequence_statement};
use super::{ApiError, AppState};
use crate::blob_cache::FileStamp;
use crate::blobs::{BlobError, BlobStore, BucketBlobs, BucketRead};
use crate::download_slots::ConnSocket;

/// Request header carrying the signed statement of a blob request.
pub const STATEMENT_HEADER: &str = "Custody-Statement";
/// Response header: leaf index of the statement the request logged.
pub const LEAF_INDEX_HEADER: &str = "Custody-Leaf-Index";

pub(super) fn parse_path_digest(path: &str) -> Result<Digest, ApiError> {
    Digest::new(path).map_err(|e| ApiError::BadRequest(format!("bad digest {path:?}: {e}")))
}

/// The decoded `Custody-Statement` header: 401 when absent (the request is
/// anonymous), 400 when it is not canonical base64.
pub(super) fn statement_header(req: &HttpRequest) -> Result<Vec<u8>, ApiError> {
    let value = req.headers().get(STATEMENT_HEADER).ok_or_else(|| {
        ApiError::Unauthorized(format!("a signed statement is required in the {STATEMENT_HEADER} header"))
    })?;
    value
        .to_str()
        .ok()
        .and_then(decode_base64_strict)
        .ok_or_else(|| ApiError::BadRequest(format!("{STATEMENT_HEADER} is not standard base64")))
}

/// Every request under `/blobs`. Routed here by a fixed prefix rather than
/// a `/blobs/{digest}` pattern, which actix matches with a regex (twice) on
/// every request: a visible cost at thousands of downloads a second. The
/// digest is the rest of the path, taken raw: a percent-encoded digest is
/// not canonical and is refused like any other malformed one.
pub async fn route(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(digest) = req.path().strip_prefix("/blobs/").filter(|d| !d.is_empty() && !d.contains('/'))
    else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    let digest = digest.to_owned();
    match *req.method() {
        Method::GET => download(req, digest, state).await,
        Method::PUT => super::blob_upload::upload(req, digest, payload, state).await,
        _ => Ok(HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "GET, PUT")).finish()),
    }
}

/// `GET /blobs/{digest}`: takes a download slot, logs the access, then
/// serves verified bytes.
async fn download(
    req: HttpRequest,
    path: String,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.registry()?;
    let digest = parse_path_digest(&path)?;
    let envelope = statement_header(&req)?;
    let signed = parse_statement(&state, &envelope)?;
    match &signed.statement.event {
        Event::Access(a) if a.digest == digest => {}
        // A file of a directory, under the logged access of its manifest.
        Event::Access(a) => {
            let manifest = a.digest;
            let actor = signed.statement.actor.as_str().to_owned();
            let (index, slot) = grant_file(&req, &state, digest, envelope, &signed, manifest).await?;
            return serve(&state, digest, index, actor, slot, None).await;
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "GET /blobs needs an access statement for this digest".into(),
            ))
        }
    }
    // A bucket's stamp costs a HEAD: for a small artifact verified and
    // found current within the last BUCKET_RECHECK, that one is used.
    let recent = match &*reg.blobs {
        BlobStore::Bucket(_) => reg.blob_cache.fresh_stamp(&digest.0, BUCKET_RECHECK),
        BlobStore::Local(_) => None,
    };
    let stamp = match recent {
        Some(s) => s,
        None => reg
            .blobs
            .stamp_now(&digest.0)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("artifact {digest} is not stored")))?,
    };
    // The slot is taken before the access is logged (a refused download
    // logs nothing), and only for a statement its actor signed (nobody
    // spends another actor's slots). A statement that fails authentication
    // here fails it again, counted, in `sequence_statement`; one that
    // passes is not verified a second time.
    let socket = req.conn_data::<ConnSocket>().map(|s| s.0);
    let actor = signed.statement.actor.as_str().to_owned();
    // Past the caps, refuse before paying for the signature check: a
    // client retrying a refused download costs the server little.
    reg.downloads.precheck(&actor)?;
    let (ack, slot) = match check_signature(&reg.registry, &signed) {
        Ok(checked) => {
            let slot = reg.downloads.acquire(&actor, socket)?;
            (sequence_checked(&state, envelope, signed, checked).await?.0, slot)
        }
        Err(_) => {
            let (ack, _) = sequence_statement(&state, envelope, signed).await?;
            (ack, reg.downloads.acquire(&actor, socket)?)
        }
    };
    serve(&state, digest, ack.index, actor, slot, Some(stamp)).await
}

/// Serves the verified bytes of `digest` under the access entry `index`.
/// `seen` is the stamp of the stored version found before the access was
/// logged, if the caller looked (a bucket then needs no second HEAD).
async fn serve(
    state: &web::Data<AppState>,
    digest: Digest,
    index: u64,
    actor: String,
    slot: crate::download_slots::Slot,
    seen: Option<FileStamp>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.registry()?;
    let local = match &*reg.blobs {
        BlobStore::Local(local) => local,
        BlobStore::Bucket(bucket) => {
            return serve_bucket(state, bucket, digest, index, actor, slot, seen).await
        }
    };
    // The file as it is now, after the access is durable: cached bytes are
    // served only if they were hashed from this very version of it.
    if let Some(stamp) = local.stamp(&digest.0)? {
        if let Some(bytes) = reg.blob_cache.get(&digest.0, &stamp) {
            return Ok(from_memory(index, digest, bytes, slot));
        }
    }
    let blobs = reg.blobs.clone();
    let served = web::block(move || {
        let local = blobs.local().ok_or_else(|| BlobError::NotFound(digest.0.to_hex()))?;
        match local.read_small_verified_stamped(&digest.0, SMALL_BLOB)? {
            Some((stamp, bytes)) => Ok(Served::Whole(Bytes::from(bytes), stamp)),
            None => local.open_unverified(&digest.0).map(|(file, size)| Served::Stream(file, size)),
        }
    })
    .await?;
    let served = served.map_err(|e| refused(state, digest, e, index, &actor))?;
    let mut resp = download_response(index, digest);
    Ok(match served {
        Served::Whole(bytes, stamp) => {
            super::integrity::intact(state, &digest);
            // The cache keeps it only if it is small enough.
            reg.blob_cache.insert(digest.0, stamp, bytes.clone());
            from_memory(index, digest, bytes, slot)
        }
        Served::Stream(file, size) => {
            let report = ViolationReport {
                metrics: state.metrics.clone(),
                access_index: index,
                actor,
                log: state.clone(),
            };
            resp.no_chunking(size).streaming(BlobBody::file(file, size, digest, report, slot))
        }
    })
}

/// Serves `digest` from the bucket under the access entry `index`: a 307
/// to a presigned URL when downloads are presigned (the client verifies
/// the bytes), else the bytes, verified as on local disk.
async fn serve_bucket(
    state: &web::Data<AppState>,
    bucket: &BucketBlobs,
    digest: Digest,
    index: u64,
    actor: String,
    slot: crate::download_slots::Slot,
    seen: Option<FileStamp>,
) -> Result<HttpResponse, ApiError> {
    if let Some(url) = bucket.presigned_url(&digest.0).await? {
        // The bytes do not pass through the log: the slot is freed now.
        drop(slot);
        return Ok(HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((LEAF_INDEX_HEADER, index.to_string()))
            .insert_header(("Custody-Digest", digest.to_string()))
            .finish());
    }
    // Small artifacts verified before are served from memory while the
    // object is the version they were hashed from (its stamp: one HEAD,
    // usually the one made before the access was logged). The stamp may
    // predate the read below by a moment; the cache still only ever holds
    // bytes that hashed to their digest.
    let reg = state.registry()?;
    let stamp = match seen {
        Some(s) => Some(s),
        None => bucket.stamp(&digest.0).await?,
    };
    if let Some(bytes) = stamp.and_then(|s| reg.blob_cache.get(&digest.0, &s)) {
        return Ok(from_memory(index, digest, bytes, slot));
    }
    let read = bucket.open_read(&digest.0, SMALL_BLOB).await;
    let mut resp = download_response(index, digest);
    Ok(match read.map_err(|e| refused(state, digest, e, index, &actor))? {
        BucketRead::Whole(bytes) => {
            if let Some(stamp) = stamp {
                reg.blob_cache.insert(digest.0, stamp, bytes.clone());
            }
            from_memory(index, digest, bytes, slot)
        }
        BucketRead::Stream { chunks, size } => {
            let report = ViolationReport {
                metrics: state.metrics.clone(),
                access_index: index,
                actor,
                log: state.clone(),
            };
            resp.no_chunking(size).streaming(BlobBody::channel(chunks, size, digest, report, slot))
        }
    })
}

/// A read that failed before anything was served; an integrity violation
/// is counted, written to the audit log, and logged as an entry signed by
/// the log ([`super::integrity`]); a key that cannot be unwrapped is an
/// operator's problem, logged but not an integrity violation.
fn refused(state: &web::Data<AppState>, digest: Digest, e: BlobError, index: u64, actor: &str) -> ApiError {
    if let BlobError::Key(k) = &e {
        tracing::error!(access_index = index, actor, error = %k, "artifact key unavailable; not served");
    }
    if let BlobError::Integrity { expected, actual } = &e {
        state.metrics.inc_integrity_violation();
        tracing::error!(
            target: "custody::audit",
            event = "integrity_violation",
            digest = %expected,
            now_hashes_to = %actual,
            access_index = index,
            actor,
            "stored artifact does not match its digest; not served"
        );
        super::integrity::report(state, digest, actual, index);
    }
    e.into()
}

/// A download of verified bytes held in memory.
fn from_memory(index: u64, digest: Digest, bytes: Bytes, slot: crate::download_slots::Slot) -> HttpResponse {
    let len = bytes.len() as u64;
    download_response(index, digest).no_chunking(len).streaming(BlobBody::memory(bytes, slot))
}

/// The headers of a download: the access entry's index and the digest.
fn download_response(index: u64, digest: Digest) -> actix_web::HttpResponseBuilder {
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/octet-stream")
        .insert_header((LEAF_INDEX_HEADER, index.to_string()))
        .insert_header(("Custody-Digest", digest.to_string()));
    resp
}

/// How long a bucket object's stamp, once found current, stands for it:
/// a hot small artifact then costs the bucket one HEAD a second instead
/// of one per download, and an object rewritten in the bucket is found
/// (and refused) at most this long after the rewrite.
const BUCKET_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Artifacts up to this size are read, verified and sent from memory.
const SMALL_BLOB: u64 = 1 << 20;

/// How an artifact is sent.
enum Served {
    /// Small: already verified in memory, with the stamp of the file
    /// version read.
    Whole(Bytes, crate::blob_cache::FileStamp),
    /// Large: an open file and its size, hashed (and opened, if sealed)
    /// while served.
    Stream(crate::blobs::BlobFile, u64),
}
