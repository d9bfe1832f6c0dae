//! State proofs: `GET /state/proof` and `POST /state/proofs`.
//!
//! Keys are named by the hex of their canonical encoding (docs/protocol.md
//! section 8), so what a client asks about is exactly what it hashes and
//! verifies. The size is the tree size of a checkpoint whose last leaf is a
//! commitment (every checkpoint a registry log publishes); without one, the
//! newest published checkpoint's. The answer carries the value's encoding
//! (hex, `null` when absent) and the proof (base64, section 9): nothing in
//! it is trusted by a client until the proof verifies against the root in
//! the commitment leaf the client fetched and proved itself.

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use custody_registry::commitment::key::MAX_KEY_SIZE;
use custody_registry::commitment::StateKey;
use serde::{Deserialize, Serialize};

use super::{parse_u64, ApiError, AppState};
use crate::state_snapshots::StateProof;

/// Most keys in one `POST /state/proofs`.
pub const MAX_KEYS_PER_REQUEST: usize = 64;

/// Query of `GET /state/proof`.
#[derive(Deserialize)]
pub struct ProofQuery {
    key: String,
    size: Option<String>,
}

/// Body of `POST /state/proofs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofsRequest {
    size: Option<u64>,
    keys: Vec<String>,
}

#[derive(Serialize)]
struct KeyProof {
    key: String,
    value: Option<String>,
    proof: String,
}

#[derive(Serialize)]
struct ProofsAnswer {
    size: u64,
    root: String,
    proofs: Vec<KeyProof>,
}

fn parse_key(hex_key: &str) -> Result<StateKey, ApiError> {
    if hex_key.len() > 2 * MAX_KEY_SIZE {
        return Err(ApiError::BadRequest(format!("key longer than {MAX_KEY_SIZE} bytes")));
    }
    let bytes = hex::decode(hex_key).map_err(|_| ApiError::BadRequest("key must be lowercase hex".into()))?;
    if hex::encode(&bytes) != hex_key {
        return Err(ApiError::BadRequest("key must be lowercase hex".into()));
    }
    StateKey::decode(&bytes).map_err(|e| ApiError::BadRequest(format!("not a state key: {e}")))
}

fn size_or_published(state: &AppState, size: Option<u64>) -> Result<u64, ApiError> {
    match size {
        Some(s) => Ok(s),
        None => Ok(state.published()?.size),
    }
}

fn answer(size: u64, keys: &[StateKey], proofs: Vec<StateProof>) -> ProofsAnswer {
    let root = proofs.first().map(|p| p.root.to_base64()).unwrap_or_default();
    ProofsAnswer {
        size,
        root,
        proofs: keys
            .iter()
            .zip(proofs)
            .map(|(k, p)| KeyProof {
                key: hex::encode(k.encode()),
                value: p.value.map(|v| hex::encode(v.encode())),
                proof: base64::engine::general_purpose::STANDARD.encode(p.proof.encode()),
            })
            .collect(),
    }
}

/// `GET /state/proof?key=<hex>&size=<n>`.
pub async fn proof(q: web::Query<ProofQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let registry = state.registry()?;
    let key = parse_key(&q.key)?;
    let size = size_or_published(&state, q.size.as_deref().map(|s| parse_u64("size", s)).transpose()?)?;
    let keys = [key];
    let proofs = registry.registry.snapshots().prove(size, &keys)?;
    let mut a = answer(size, &keys, proofs);
    let one = a.proofs.pop().expect("one key, one proof");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "size": a.size,
        "root": a.root,
        "key": one.key,
        "value": one.value,
        "proof": one.proof,
    })))
}

/// `POST /state/proofs` with `{"size": n, "keys": ["<hex>", ...]}`.
pub async fn proofs(
    body: web::Json<ProofsRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let registry = state.registry()?;
    let req = body.into_inner();
    if req.keys.is_empty() || req.keys.len() > MAX_KEYS_PER_REQUEST {
        return Err(ApiError::BadRequest(format!("give 1 to {MAX_KEYS_PER_REQUEST} keys")));
    }
    let keys = req.keys.iter().map(|k| parse_key(k)).collect::<Result<Vec<_>, _>>()?;
    let size = size_or_published(&state, req.size)?;
    let proofs = registry.registry.snapshots().prove(size, &keys)?;
    Ok(HttpResponse::Ok().json(answer(size, &keys, proofs)))
}
