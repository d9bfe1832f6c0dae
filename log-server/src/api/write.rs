//! `POST /entries`: raw append of one entry's bytes.
//!
//! Off unless the server runs with `--allow-raw-append`: the registry puts
//! authenticated statements in front of the sequencer, and a public raw
//! append endpoint would let anyone fill the log. The body size is checked
//! before it is read (announced `Content-Length`, then a capped read), so an
//! oversize upload costs at most `max + 1` buffered bytes and changes nothing.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use custody_standards::proof::inclusion_proof;
use serde::Deserialize;

use super::statements::read_capped;
use super::{hashes_b64, ApiError, AppState};
use crate::sequencer::Ack;

/// How long `?wait=checkpoint` waits for a published checkpoint covering
/// the entry before answering 503 (the entry stays durable and sequenced).
pub const WAIT_FOR_CHECKPOINT: Duration = Duration::from_secs(30);

/// Query of `POST /entries`.
#[derive(Deserialize)]
pub struct AppendQuery {
    wait: Option<String>,
}

/// `POST /entries[?wait=checkpoint]`.
pub async fn append(
    req: HttpRequest,
    query: web::Query<AppendQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A registry never takes raw leaves (the server refuses to start with
    // both); checked here as well so no configuration can let a client
    // choose a leaf's receive time.
    if !state.allow_raw_append || state.registry.is_some() {
        state.metrics.inc_rejected("raw_append_disabled");
        return Err(ApiError::Forbidden(
            "raw append is disabled on this server (start it with --allow-raw-append)".into(),
        ));
    }
    let wait = parse_wait(query.wait.as_deref())?;
    let max = state.max_entry_size;
    let body = read_capped(&req, payload, max).await.inspect_err(|e| {
        if matches!(e, ApiError::TooLarge { .. }) {
            state.metrics.inc_rejected("too_large");
        }
    })?;
    if body.is_empty() {
        state.metrics.inc_rejected("empty");
        return Err(ApiError::Unprocessable("empty entries are not accepted".into()));
    }
    let ack = state.seq.submit(body).await?;
    ack_response(&state, &ack, wait).await
}

/// Parses `?wait=`: absent, or `checkpoint`.
pub(crate) fn parse_wait(wait: Option<&str>) -> Result<bool, ApiError> {
    match wait {
        None => Ok(false),
        Some("checkpoint") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!("wait must be \"checkpoint\", got {other:?}"))),
    }
}

/// The JSON answer to an acknowledged entry: index, leaf hash and whether
/// it was already logged; with `wait`, also the first published checkpoint
/// covering it and the inclusion proof against that checkpoint.
pub(crate) async fn ack_response(state: &AppState, ack: &Ack, wait: bool) -> Result<HttpResponse, ApiError> {
    let mut out = serde_json::json!({
        "index": ack.index,
        "leaf_hash": ack.leaf_hash.to_base64(),
        "duplicate": ack.duplicate,
    });
    if !wait {
        return Ok(HttpResponse::Ok().json(out));
    }
    let published = state.publisher.wait_for(ack.index + 1, WAIT_FOR_CHECKPOINT).await.ok_or_else(|| {
        ApiError::Unavailable(format!(
            "entry {} is durable, but no checkpoint covering it was published within {} s",
            ack.index,
            WAIT_FOR_CHECKPOINT.as_secs()
        ))
    })?;
    let (index, size) = (ack.index, published.size);
    let proof = state.blocking(move |store| Ok(inclusion_proof(index, size, &store)?)).await?;
    out["size"] = size.into();
    out["checkpoint"] = String::from_utf8_lossy(&published.note).into_owned().into();
    out["proof"] = hashes_b64(&proof).into();
    Ok(HttpResponse::Ok().json(out))
}
