//! `PUT /blobs/sha256:<hex>`: a streamed upload with its `publish`
//! statement, and the rule for publishing stored bytes on
//! `POST /statements` (`check_claim`).
//!
//! Order of an upload:
//! 1. the statement is authenticated, the actor's pre-upload budget
//!    (`--upload-rate-limit`) is charged, and the registry checks the
//!    statement *now*, its time window included, all before a byte of the
//!    body is read;
//! 2. a second upload of the same `name@version` while this one runs is
//!    refused (409 `upload_in_progress`);
//! 3. the body streams to a temporary file while hashed; only bytes that
//!    match the digest and size are kept, and the uploader is recorded;
//! 4. the publish is sequenced. If the upload outlasted the statement
//!    window, the statement can no longer be logged: the verified bytes
//!    stay and the answer is 202 `{"published": false, ...}`, after which
//!    the uploader signs a fresh publish of the stored digest and submits it
//!    with `POST /statements` within `--upload-grace`. If the publish is
//!    refused for any other reason, the bytes this upload stored are
//!    removed.

use std::future::poll_fn;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use custody_registry::manifest::MAX_MANIFEST_BYTES;
use custody_registry::names::Digest;
use custody_registry::registry::Rejection;
use custody_registry::statement::{Event, SignedStatement};
use futures_core::Stream;
use tokio::sync::mpsc;

use super::blobs::{parse_path_digest, statement_header, LEAF_INDEX_HEADER};
use super::directory::{check_manifest, files_missing, is_directory, upload_file};
use super::statements::{parse_statement, sequence_statement};
use super::{ApiError, AppState};
use crate::blobs::BlobError;
use crate::directory::DirectoryError;
use crate::registry::now_ms;
use crate::sequencer::{Refusal, SequenceError};
use crate::uploads::UploadError;

/// Chunks buffered between the network and the disk (bounded memory).
const PIPE_DEPTH: usize = 8;

/// `PUT /blobs/{digest}`: streamed upload plus its publish statement.
pub(super) async fn upload(
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
    let (name, version, directory) = match &signed.statement.event {
        Event::Publish(p) if p.digest == digest && p.size == size => {
            (p.name.as_str().to_owned(), p.version.as_str().to_owned(), is_directory(p))
        }
        // A file of a directory, under its manifest's publish.
        Event::Publish(p) if is_directory(p) => {
            let manifest = p.digest;
            return upload_file(&state, digest, size, &mut payload, &signed, manifest).await;
        }
        Event::Publish(_) => {
            return Err(ApiError::Unprocessable(
                "the publish statement names another digest or size than this upload".into(),
            ))
        }
        _ => return Err(ApiError::Unprocessable("PUT /blobs needs a publish statement".into())),
    };
    if directory && size > MAX_MANIFEST_BYTES {
        let max = usize::try_from(MAX_MANIFEST_BYTES).unwrap_or(usize::MAX);
        return Err(ApiError::TooLarge { size: usize::try_from(size).unwrap_or(usize::MAX), max });
    }
    pre_upload_check(&state, &signed).await?;
    let ticket = reg.uploads.begin(&name, &version, digest.0)?;
    let created = store_stream(&state, digest, size, &mut payload).await?;
    if directory {
        let missing = match check_manifest(&state, digest).await {
            Ok(missing) => missing,
            Err(e) => {
                // A manifest that breaks a rule is not kept.
                let (uploads, registry, blobs) =
                    (reg.uploads.clone(), reg.registry.clone(), reg.blobs.clone());
                web::block(move || {
                    let published = !registry.read().publishes_of(&digest).is_empty();
                    uploads.discard(ticket, created, &blobs, published)
                })
                .await?;
                return Err(e);
            }
        };
        if !missing.is_empty() {
            let (uploads, actor) = (reg.uploads.clone(), signed.statement.actor.as_str().to_owned());
            web::block(move || uploads.record(&digest.0, &actor, now_ms())).await??;
            return Ok(files_missing(digest, size, created, &missing));
        }
    }
    let (uploads, registry) = (reg.uploads.clone(), reg.registry.clone());
    let (actor, time_ms) = (signed.statement.actor.as_str().to_owned(), signed.statement.time.unix_millis());
    let expired = web::block(move || -> Result<bool, UploadError> {
        let now = now_ms();
        uploads.record(&digest.0, &actor, now)?;
        Ok(now.abs_diff(time_ms) > registry.read().config().window_ms)
    })
    .await??;
    if expired {
        return Ok(stored_only(&state, digest, size, created));
    }
    match sequence_statement(&state, envelope, signed).await {
        Ok((ack, _)) => {
            let body = serde_json::json!({
                "digest": digest.to_string(),
                "size": size,
                "stored": created,
                "published": true,
                "index": ack.index,
                "leaf_hash": ack.leaf_hash.to_base64(),
                "duplicate": ack.duplicate,
            });
            let mut resp = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
            Ok(resp.insert_header((LEAF_INDEX_HEADER, ack.index.to_string())).json(body))
        }
        // The clock moved past the window between the check above and the
        // sequencer's decision.
        Err(e) if outside_window(&e) => Ok(stored_only(&state, digest, size, created)),
        Err(e) => {
            let (uploads, registry, blobs) = (reg.uploads.clone(), reg.registry.clone(), reg.blobs.clone());
            web::block(move || {
                let published = !registry.read().publishes_of(&digest).is_empty();
                uploads.discard(ticket, created, &blobs, published)
            })
            .await?;
            Err(e)
        }
    }
}

fn outside_window(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Rejected(Rejection::TimestampOutsideWindow { .. })
            | ApiError::Sequence(SequenceError::Refused(Refusal::Registry(
                Rejection::TimestampOutsideWindow { .. }
            )))
    )
}

/// 202: the bytes are stored and verified, the publish is not logged.
fn stored_only(state: &AppState, digest: Digest, size: u64, created: bool) -> HttpResponse {
    let grace = state.registry.as_ref().map_or(0, |r| r.uploads.grace_secs());
    HttpResponse::Accepted().json(serde_json::json!({
        "digest": digest.to_string(),
        "size": size,
        "stored": created,
        "published": false,
        "reason": "timestamp_outside_window",
        "detail": format!(
            "the upload outlasted the statement window; sign a new publish of {digest} and submit it \
             with POST /statements within {grace} s"
        ),
        "upload_grace_secs": grace,
    }))
}

/// Would the registry accept this statement now? Checked, after
/// authentication and the actor's pre-upload rate limit, before an upload
/// is read; the real decision is made again when it is sequenced.
async fn pre_upload_check(state: &web::Data<AppState>, signed: &SignedStatement) -> Result<(), ApiError> {
    let reg = state.registry()?;
    reg.registry.authenticate(signed)?;
    if let Err(wait) = reg.upload_limiter.take(signed.statement.actor.as_str()) {
        return Err(ApiError::RateLimited(wait));
    }
    let (registry, signed, next) = (reg.registry.clone(), signed.clone(), state.seq.tree_size());
    web::block(move || registry.read().check(&signed.statement, next, now_ms()).map(|_| ()))
        .await?
        .map_err(ApiError::from)
}

/// Streams the request body into the blob store. Returns whether the bytes
/// were new (false: identical content was already stored).
pub(super) async fn store_stream(
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
    // No total deadline (a large upload may take hours), but a client that
    // sends nothing for `--body-timeout` loses the connection.
    let idle = state.connections.limits().body_timeout;
    loop {
        let next =
            tokio::time::timeout(idle, poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx))).await.map_err(
                |_| ApiError::RequestTimeout(format!("the upload sent nothing for {} ms", idle.as_millis())),
            )?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading upload: {e}")))?;
        if tx.send(chunk).await.is_err() {
            break; // the writer failed (e.g. too many bytes); its error follows
        }
    }
    drop(tx);
    let created = writer.await.map_err(|e| ApiError::Internal(format!("upload writer failed: {e}")))??;
    Ok(created)
}

/// A `publish` on `POST /statements` names bytes that are already stored.
/// If a publish already names them, the registry rules decide. If none
/// does (an orphan), only an actor who uploaded those bytes within
/// `--upload-grace` may claim them: 403 `upload_required` otherwise.
pub(crate) async fn check_claim(
    state: &web::Data<AppState>,
    signed: &SignedStatement,
) -> Result<(), ApiError> {
    let Event::Publish(p) = &signed.statement.event else { return Ok(()) };
    let reg = state.registry()?;
    // An unsigned or forged claim is refused as such (401), and records
    // are read only for an actor's own statements.
    reg.registry.authenticate(signed)?;
    let (registry, uploads, digest) = (reg.registry.clone(), reg.uploads.clone(), p.digest);
    let actor = signed.statement.actor.as_str().to_owned();
    web::block(move || -> Result<(), ApiError> {
        if !registry.read().publishes_of(&digest).is_empty() {
            return Ok(());
        }
        if uploads.uploaded_by(&digest.0, &actor, now_ms())? {
            return Ok(());
        }
        Err(UploadError::UploadRequired {
            digest: digest.0.to_hex(),
            actor,
            grace_secs: uploads.grace_secs(),
        }
        .into())
    })
    .await??;
    // A directory is published only with every file it lists.
    if is_directory(p) {
        let missing = check_manifest(state, digest).await?;
        if let Some(first) = missing.first() {
            let (blobs, manifests) = (reg.blobs.clone(), reg.manifests.clone());
            let total =
                web::block(move || manifests.load(&blobs, &digest).map(|m| m.distinct_members().len()))
                    .await??;
            return Err(DirectoryError::FilesMissing {
                manifest: digest,
                missing: missing.len(),
                total,
                first: *first,
            }
            .into());
        }
    }
    Ok(())
}
