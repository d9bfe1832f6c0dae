//! The HTTP side of model directories ([`crate::directory`] has the
//! rules): uploading a file under its manifest's publish statement, and
//! serving a file under a logged access statement of its manifest.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use custody_registry::manifest::MEDIA_TYPE;
use custody_registry::names::Digest;
use custody_registry::statement::events::Publish;
use custody_registry::statement::SignedStatement;
use custody_standards::encoding::parse_decimal_u64;

use super::blob_upload::store_stream;
use super::{ApiError, AppState};
use crate::directory::{check_grant, check_signature, missing_files, DirectoryError, ACCESS_INDEX_HEADER};
use crate::download_slots::Slot;
use crate::registry::now_ms;
use crate::uploads::UploadError;

/// Whether a publish is of a directory (its artifact is a manifest).
pub(super) fn is_directory(p: &Publish) -> bool {
    p.media_type.as_str() == MEDIA_TYPE
}

/// `PUT /blobs/<file>` under the publish statement of `manifest`: stores
/// the file if the manifest lists it with this size and this actor
/// uploaded the manifest within the grace period. Sequences nothing.
pub(super) async fn upload_file(
    state: &web::Data<AppState>,
    digest: Digest,
    size: u64,
    payload: &mut web::Payload,
    signed: &SignedStatement,
    manifest: Digest,
) -> Result<HttpResponse, ApiError> {
    let reg = state.registry()?;
    reg.registry.authenticate(signed)?;
    let actor = signed.statement.actor.as_str().to_owned();
    let (blobs, manifests, uploads) = (reg.blobs.clone(), reg.manifests.clone(), reg.uploads.clone());
    let who = actor.clone();
    web::block(move || -> Result<(), ApiError> {
        let m = manifests.load(&blobs, &manifest)?;
        if m.member_size(&digest) != Some(size) {
            return Err(DirectoryError::NotListed { file: digest, size, manifest }.into());
        }
        if !uploads.uploaded_by(&manifest.0, &who, now_ms())? {
            return Err(UploadError::UploadRequired {
                digest: manifest.0.to_hex(),
                actor: who,
                grace_secs: uploads.grace_secs(),
            }
            .into());
        }
        Ok(())
    })
    .await??;
    let created = store_stream(state, digest, size, payload).await?;
    let uploads = reg.uploads.clone();
    web::block(move || uploads.record(&digest.0, &actor, now_ms())).await??;
    let body = serde_json::json!({
        "digest": digest.to_string(),
        "size": size,
        "stored": created,
        "published": false,
        "manifest": manifest.to_string(),
    });
    let mut resp = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(resp.json(body))
}

/// The answer to a manifest upload whose files are not all stored yet:
/// 202, with the digests still to upload.
pub(super) fn files_missing(digest: Digest, size: u64, created: bool, missing: &[Digest]) -> HttpResponse {
    HttpResponse::Accepted().json(serde_json::json!({
        "digest": digest.to_string(),
        "size": size,
        "stored": created,
        "published": false,
        "reason": "files_missing",
        "missing": missing.iter().map(Digest::to_string).collect::<Vec<_>>(),
        "detail": "upload each missing file with PUT /blobs/<digest> and this publish statement, \
                   then submit the publish with POST /statements",
    }))
}

/// The distinct files of stored manifest `manifest` still missing; a
/// manifest that breaks a rule, or whose files are all stored but whose
/// signature does not hold, is refused (the caller removes it).
pub(super) async fn check_manifest(
    state: &web::Data<AppState>,
    manifest: Digest,
) -> Result<Vec<Digest>, ApiError> {
    let reg = state.registry()?;
    let (blobs, manifests) = (reg.blobs.clone(), reg.manifests.clone());
    let missing = web::block(move || -> Result<Vec<Digest>, DirectoryError> {
        let m = manifests.load(&blobs, &manifest)?;
        let missing = missing_files(&blobs, &m)?;
        // Complete: the signature it names (if any) must hold.
        if missing.is_empty() {
            check_signature(&blobs, manifest, &m)?;
        }
        Ok(missing)
    })
    .await??;
    Ok(missing)
}

/// `GET /blobs/<file>` under the access statement of `manifest` logged at
/// the index in `Custody-Access-Index`: checks the grant and takes a
/// download slot. Returns the access entry's index and the slot.
pub(super) async fn grant_file(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    digest: Digest,
    envelope: Vec<u8>,
    signed: &SignedStatement,
    manifest: Digest,
) -> Result<(u64, Slot), ApiError> {
    let reg = state.registry()?;
    let index = req
        .headers()
        .get(ACCESS_INDEX_HEADER)
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "GET /blobs needs an access statement for this digest, or for a manifest listing it \
                 with the access entry's index in {ACCESS_INDEX_HEADER}"
            ))
        })?
        .to_str()
        .ok()
        .and_then(parse_decimal_u64)
        .ok_or_else(|| ApiError::BadRequest(format!("{ACCESS_INDEX_HEADER} is not a decimal index")))?;
    // The key must still be valid now, not only when the access was logged.
    reg.registry.authenticate(signed)?;
    let actor = signed.statement.actor.as_str().to_owned();
    reg.downloads.precheck(&actor)?;
    let (store, blobs, manifests, grant) =
        (state.store.clone(), reg.blobs.clone(), reg.manifests.clone(), reg.access_grant);
    web::block(move || -> Result<(), DirectoryError> {
        check_grant(store.as_ref(), &envelope, index, now_ms(), grant)?;
        let m = manifests.load(&blobs, &manifest)?;
        if m.member_size(&digest).is_none() {
            return Err(DirectoryError::NotCovered { file: digest, manifest });
        }
        Ok(())
    })
    .await??;
    let socket = req.conn_data::<crate::download_slots::ConnSocket>().map(|s| s.0);
    Ok((index, reg.downloads.acquire(&actor, socket)?))
}
