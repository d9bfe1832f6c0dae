//! Proof endpoints: inclusion, consistency, and C2SP tlog-proof bundles.
//!
//! Inclusion and consistency proofs may be asked for any size up to the
//! durable tree size (the stored hashes exist), but the size a client can
//! verify against is one it holds a signed checkpoint for, so the default
//! is the latest published size. Bundles are always against the latest
//! published checkpoint, because a bundle carries that checkpoint.

use actix_web::{web, HttpResponse};
use custody_standards::bundle::ProofBundle;
use custody_standards::proof::{consistency_proof, inclusion_proof, ProofError};
use custody_standards::{Hash, NodeId};
use serde::Deserialize;

use super::read::missing;
use super::{hashes_b64, parse_u64, ApiError, AppState};

/// Query of `GET /proof/inclusion` and `GET /proof/bundle`.
#[derive(Deserialize)]
pub struct InclusionQuery {
    index: Option<String>,
    leaf_hash: Option<String>,
    size: Option<String>,
}

/// A leaf hash as base64 (standard, padded; percent-encoded in the URL) or
/// 64 lowercase hex digits.
fn parse_leaf_hash(text: &str) -> Result<Hash, ApiError> {
    if text.len() == 64 {
        if let Ok(h) = Hash::from_hex(text) {
            return Ok(h);
        }
    }
    Hash::from_base64(text)
        .map_err(|_| ApiError::BadRequest("leaf_hash must be base64 or hex of 32 bytes".into()))
}

/// Resolves `index` or `leaf_hash` (exactly one) to a leaf index.
async fn resolve_index(q: &InclusionQuery, state: &AppState) -> Result<u64, ApiError> {
    match (&q.index, &q.leaf_hash) {
        (Some(i), None) => parse_u64("index", i),
        (None, Some(h)) => {
            let hash = parse_leaf_hash(h)?;
            let found = state.blocking(move |store| Ok(store.index_of(&hash)?)).await?;
            found.ok_or_else(|| ApiError::NotFound(format!("no entry with leaf hash {}", hash.to_base64())))
        }
        _ => Err(ApiError::BadRequest("give exactly one of index and leaf_hash".into())),
    }
}

/// Checks `size` against the durable tree: sizes the log does not have yet
/// are 404 (like any resource the log lacks).
fn check_durable(state: &AppState, size: u64) -> Result<(), ApiError> {
    let durable = state.seq.tree_size();
    if size > durable {
        return Err(ApiError::NotFound(format!("tree size {size} is beyond the durable size {durable}")));
    }
    Ok(())
}

/// `GET /proof/inclusion?index=I&size=S` or `?leaf_hash=H&size=S`.
pub async fn inclusion(
    query: web::Query<InclusionQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let size = match &query.size {
        Some(s) => parse_u64("size", s)?,
        None => state.published()?.size,
    };
    check_durable(&state, size)?;
    let index = resolve_index(&query, &state).await?;
    if index >= size {
        return Err(ApiError::BadRequest(format!("index {index} is not below size {size}")));
    }
    let (leaf, proof) = state
        .with_hashes(move |hashes| {
            // The stored level-0 hash is the leaf hash (fsck checks it
            // against the entry), so the entry itself need not be read: at
            // 10^7 entries that read was a random disk block per proof.
            let leaf = hashes.read_hashes(&[NodeId::leaf(index)]).map_err(ProofError::Read)?.pop();
            let leaf = leaf.ok_or_else(|| ApiError::Internal(format!("leaf hash {index} is missing")))?;
            Ok((leaf, inclusion_proof(index, size, &hashes)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "index": index,
        "size": size,
        "leaf_hash": leaf.to_base64(),
        "proof": hashes_b64(&proof),
    })))
}

/// Query of `GET /proof/consistency`.
#[derive(Deserialize)]
pub struct ConsistencyQuery {
    old: Option<String>,
    new: Option<String>,
}

/// `GET /proof/consistency?old=A&new=B`.
pub async fn consistency(
    query: web::Query<ConsistencyQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let old = parse_u64("old", query.old.as_deref().ok_or_else(|| missing("old"))?)?;
    let new = match &query.new {
        Some(n) => parse_u64("new", n)?,
        None => state.published()?.size,
    };
    if old > new {
        return Err(ApiError::BadRequest(format!("old size {old} is larger than new size {new}")));
    }
    check_durable(&state, new)?;
    let proof = state.blocking(move |store| Ok(consistency_proof(old, new, &store)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "old": old, "new": new, "proof": hashes_b64(&proof) })))
}

/// `GET /proof/bundle?index=I` (or `?leaf_hash=H`): a `c2sp.org/tlog-proof@v1`
/// bundle proving the entry against the latest published checkpoint.
pub async fn bundle(
    query: web::Query<InclusionQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if query.size.is_some() {
        return Err(ApiError::BadRequest(
            "bundles are always against the latest published checkpoint".into(),
        ));
    }
    let published = state.published()?;
    let index = resolve_index(&query, &state).await?;
    if index >= published.size {
        return Err(ApiError::NotFound(format!(
            "entry {index} is not yet covered by a published checkpoint (size {})",
            published.size
        )));
    }
    let size = published.size;
    let proof = state.blocking(move |store| Ok(inclusion_proof(index, size, &store)?)).await?;
    let bundle = ProofBundle { extra: None, index, proof, checkpoint: published.note.clone() };
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(bundle.to_bytes()))
}
