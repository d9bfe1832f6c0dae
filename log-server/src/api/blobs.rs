//! Artifact upload and download, each authorized by a signed statement in
//! the `Custody-Statement` request header (standard base64 of the DSSE
//! envelope JSON).
//!
//! - `PUT /blobs/sha256:<hex>` carries a `publish` statement for exactly
//!   that digest and `Content-Length`. The statement is authenticated and
//!   checked against the registry *before* a byte is read, so an actor
//!   without the publisher role cannot fill the disk. The body streams to a
//!   temporary file while being hashed; only bytes matching the digest and
//!   size are kept, and only then is the publish sequenced.
//! - `GET /blobs/sha256:<hex>` carries an `access` statement for that
//!   digest. The access entry is durable in the log before the first byte
//!   is served, and the response names its leaf index. The stored bytes are
//!   re-hashed first, unless the same version of the file (inode, size,
//!   modification and change time) was hashed before and its bytes are in
//!   the [`crate::blob_cache`]: a mismatch is an integrity violation (500,
//!   counted, written to the audit log) and nothing is served.

use std::future::poll_fn;
use std::io::Read as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::{header, Method};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use custody_core::encoding::decode_base64_strict;
use custody_core::names::Digest;
use custody_core::statement::{Event, SignedStatement};
use futures_core::Stream;
use tokio::sync::mpsc;

use super::statements::{parse_statement, sequence_statement};
use super::{ApiError, AppState};
use crate::blobs::{chunk_for, BlobError};
use crate::registry::now_ms;

/// Request header carrying the signed statement of a blob request.
pub const STATEMENT_HEADER: &str = "Custody-Statement";
/// Response header: leaf index of the statement the request logged.
pub const LEAF_INDEX_HEADER: &str = "Custody-Leaf-Index";
/// Chunks buffered between the network and the disk (bounded memory).
const PIPE_DEPTH: usize = 8;

fn parse_path_digest(path: &str) -> Result<Digest, ApiError> {
    Digest::new(path).map_err(|e| ApiError::BadRequest(format!("bad digest {path:?}: {e}")))
}

/// The decoded `Custody-Statement` header: 401 when absent (the request is
/// anonymous), 400 when it is not canonical base64.
fn statement_header(req: &HttpRequest) -> Result<Vec<u8>, ApiError> {
    let value = req.headers().get(STATEMENT_HEADER).ok_or_else(|| {
        ApiError::Unauthorized(format!("a signed statement is required in the {STATEMENT_HEADER} header"))
    })?;
    value
        .to_str()
        .ok()
        .and_then(decode_base64_strict)
        .ok_or_else(|| ApiError::BadRequest(format!("{STATEMENT_HEADER} is not standard base64")))
}

fn wrong_statement(what: &str) -> ApiError {
    ApiError::Unprocessable(what.to_owned())
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
        Method::PUT => upload(req, digest, payload, state).await,
        _ => Ok(HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "GET, PUT")).finish()),
    }
}

/// `PUT /blobs/{digest}`: streamed upload plus its publish statement.
async fn upload(
    req: HttpRequest,
    path: String,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.registry()?;
    let digest = parse_path_digest(&path)?;
    let size = match req.headers().get(header::CONTENT_LENGTH) {
        None => return Err(ApiError::LengthRequired("artifact uploads must send Content-Length".into())),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::BadRequest("malformed Content-Length".into()))?,
    };
    if size > reg.max_blob_size {
        let max = usize::try_from(reg.max_blob_size).unwrap_or(usize::MAX);
        return Err(ApiError::TooLarge { size: usize::try_from(size).unwrap_or(usize::MAX), max });
    }
    let envelope = statement_header(&req)?;
    let signed = parse_statement(&state, &envelope)?;
    match &signed.statement.event {
        Event::Publish(p) if p.digest == digest && p.size == size => {}
        Event::Publish(_) => {
            return Err(wrong_statement(
                "the publish statement names another digest or size than this upload",
            ))
        }
        _ => return Err(wrong_statement("PUT /blobs needs a publish statement")),
    }
    dry_run(&state, &signed).await?;
    let stored = store_stream(&state, digest, size, &mut payload).await?;
    let (ack, _) = sequence_statement(&state, envelope, signed).await?;
    let body = serde_json::json!({
        "digest": digest.to_string(),
        "size": size,
        "stored": stored,
        "index": ack.index,
        "leaf_hash": ack.leaf_hash.to_base64(),
        "duplicate": ack.duplicate,
    });
    let mut resp = if stored { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(resp.insert_header((LEAF_INDEX_HEADER, ack.index.to_string())).json(body))
}

/// Would the registry accept this statement now? Checked before an upload
/// is read; the real decision is made again when it is sequenced.
async fn dry_run(state: &web::Data<AppState>, signed: &SignedStatement) -> Result<(), ApiError> {
    let reg = state.registry()?;
    reg.registry.authenticate(signed)?;
    let (registry, signed, next) = (reg.registry.clone(), signed.clone(), state.seq.tree_size());
    web::block(move || registry.read().check(&signed.statement, next, now_ms()).map(|_| ()))
        .await?
        .map_err(ApiError::from)
}

/// Streams the request body into the blob store. Returns whether the bytes
/// were new (false: identical content was already stored).
async fn store_stream(
    state: &web::Data<AppState>,
    digest: Digest,
    size: u64,
    payload: &mut web::Payload,
) -> Result<bool, ApiError> {
    let blobs = state.registry()?.blobs.clone();
    let (tx, mut rx) = mpsc::channel::<Bytes>(PIPE_DEPTH);
    let writer = tokio::task::spawn_blocking(move || -> Result<bool, BlobError> {
        let mut w = blobs.begin(digest.0, size)?;
        while let Some(chunk) = rx.blocking_recv() {
            w.write(&chunk)?;
        }
        Ok(w.finish()?.created)
    });
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading upload: {e}")))?;
        if tx.send(chunk).await.is_err() {
            break; // the writer failed (e.g. too many bytes); its error follows
        }
    }
    drop(tx);
    let created = writer.await.map_err(|e| ApiError::Internal(format!("upload writer failed: {e}")))??;
    Ok(created)
}

/// `GET /blobs/{digest}`: logs the access, then serves verified bytes.
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
        _ => return Err(wrong_statement("GET /blobs needs an access statement for this digest")),
    }
    if reg.blobs.stamp(&digest.0)?.is_none() {
        return Err(ApiError::NotFound(format!("artifact {digest} is not stored")));
    }
    let (ack, signed) = sequence_statement(&state, envelope, signed).await?;
    // The file as it is now, after the access is durable: cached bytes are
    // served only if they were hashed from this very version of it.
    if let Some(stamp) = reg.blobs.stamp(&digest.0)? {
        if let Some(bytes) = reg.blob_cache.get(&digest.0, &stamp) {
            return Ok(download_response(ack.index, digest).body(bytes));
        }
    }
    let blobs = reg.blobs.clone();
    let served = web::block(move || match blobs.read_small_verified_stamped(&digest.0, SMALL_BLOB)? {
        Some((stamp, bytes)) => Ok(Served::Whole(Bytes::from(bytes), stamp)),
        None => blobs.open_verified(&digest.0).map(Served::Stream),
    })
    .await?;
    let served = match served {
        Ok(s) => s,
        Err(e) => {
            if let BlobError::Integrity { expected, actual } = &e {
                state.metrics.inc_integrity_violation();
                tracing::error!(
                    target: "custody::audit",
                    event = "integrity_violation",
                    digest = %expected,
                    now_hashes_to = %actual,
                    access_index = ack.index,
                    actor = signed.statement.actor.as_str(),
                    "stored artifact does not match its digest; not served"
                );
            }
            return Err(e.into());
        }
    };
    let mut resp = download_response(ack.index, digest);
    Ok(match served {
        Served::Whole(bytes, stamp) => {
            // The cache keeps it only if it is small enough.
            reg.blob_cache.insert(digest.0, stamp, bytes.clone());
            resp.body(bytes)
        }
        Served::Stream(v) => resp.no_chunking(v.size).streaming(FileStream::spawn(v.file, v.size)),
    })
}

/// The headers of a download: the access entry's index and the digest.
fn download_response(index: u64, digest: Digest) -> actix_web::HttpResponseBuilder {
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/octet-stream")
        .insert_header((LEAF_INDEX_HEADER, index.to_string()))
        .insert_header(("Custody-Digest", digest.to_string()));
    resp
}

/// Artifacts up to this size are read, verified and sent in one piece.
const SMALL_BLOB: u64 = 1 << 20;

/// How a verified artifact is sent.
enum Served {
    /// Small: already in memory, with the stamp of the file version read.
    Whole(Bytes, crate::blob_cache::FileStamp),
    /// Large: streamed from the handle that was hashed.
    Stream(crate::blobs::VerifiedBlob),
}

/// The bytes of an open file, read on a blocking thread a chunk at a time.
struct FileStream {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl FileStream {
    fn spawn(mut file: std::fs::File, size: u64) -> Self {
        let (tx, rx) = mpsc::channel(PIPE_DEPTH);
        let chunk = chunk_for(size);
        tokio::task::spawn_blocking(move || loop {
            let mut buf = vec![0u8; chunk];
            let item = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return; // client gone, or the error was passed on
            }
        });
        FileStream { rx }
    }
}

impl Stream for FileStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
