//! `POST /statements`: an actor's signed registry statement (a DSSE
//! envelope) becomes a leaf of the log, or is refused with nothing
//! appended.
//!
//! Every registry write (this endpoint, artifact uploads and downloads)
//! goes through `sequence_statement`: parse strictly, authenticate (key
//! known and live, signature valid), rate-limit the actor, then hand the
//! leaf to the sequencer, whose admission applies the registry rules in log
//! order. Each refusal is counted in `/metrics` and written to the
//! structured log with its reason, under the `custody::audit` target.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use custody_registry::dsse::MAX_ENVELOPE_SIZE;
use custody_registry::leaf::Leaf;
use custody_registry::statement::{Event, SignedStatement};
use serde::Deserialize;

use super::connections::{read_small_body, ConnectionLimits};
use super::write::{ack_response, parse_wait};
use super::{ApiError, AppState};
use crate::registry::now_ms;
use crate::sequencer::{Ack, Refusal, SequenceError};

/// Query of `POST /statements`.
#[derive(Deserialize)]
pub struct SubmitQuery {
    wait: Option<String>,
}

/// Reads a request body of at most `max` bytes: 413 from the announced
/// `Content-Length` before reading, or as soon as the body overruns; 408
/// if the whole body has not arrived within `--body-timeout`.
pub(crate) async fn read_capped(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(len) if len > max as u64 => {
                return Err(ApiError::TooLarge { size: usize::try_from(len).unwrap_or(usize::MAX), max })
            }
            Some(_) => {}
            None => return Err(ApiError::BadRequest("malformed Content-Length".into())),
        }
    }
    let deadline = req
        .app_data::<web::Data<AppState>>()
        .map_or_else(|| ConnectionLimits::default().body_timeout, |s| s.connections.limits().body_timeout);
    Ok(read_small_body(payload, max, deadline).await?.to_vec())
}

fn reason_of(err: &ApiError) -> &'static str {
    match err {
        ApiError::Rejected(r) | ApiError::Sequence(SequenceError::Refused(Refusal::Registry(r))) => r.code(),
        ApiError::Statement(_) => "malformed_statement",
        ApiError::RateLimited(_) => "rate_limited",
        ApiError::TooLarge { .. } => "too_large",
        ApiError::Unauthorized(_) => "no_statement",
        ApiError::RequestTimeout(_) => "body_timeout",
        ApiError::Upload(crate::uploads::UploadError::UploadRequired { .. }) => "upload_required",
        _ => "other",
    }
}

/// Counts and logs a refused statement of an authenticated actor (one info
/// line each: the actor is known and rate-limited), then passes the error on.
fn refused(state: &AppState, signed: &SignedStatement, err: ApiError) -> ApiError {
    let reason = reason_of(&err);
    state.metrics.inc_rejected(reason);
    tracing::info!(
        target: "custody::audit",
        reason,
        actor = signed.statement.actor.as_str(),
        action = signed.statement.event.action(),
        detail = %err,
        "statement refused"
    );
    err
}

/// Counts a refusal of a request nobody is accountable for (no usable
/// statement, or one not yet authenticated): a debug line each, an info
/// summary per interval (see `refusals`).
fn refused_unauthenticated(state: &AppState, claimed: Option<&SignedStatement>, err: ApiError) -> ApiError {
    let reason = reason_of(&err);
    state.metrics.inc_rejected(reason);
    state.refusals.add(reason);
    match claimed {
        Some(s) => tracing::debug!(
            target: "custody::audit",
            reason,
            claimed_actor = s.statement.actor.as_str(),
            action = s.statement.event.action(),
            detail = %err,
            "unauthenticated statement refused"
        ),
        None => {
            tracing::debug!(target: "custody::audit", reason, detail = %err, "unauthenticated statement refused")
        }
    }
    err
}

/// Parses envelope bytes into a statement (400, or 413 for an oversized
/// envelope), counting failures.
pub(crate) fn parse_statement(state: &AppState, bytes: &[u8]) -> Result<SignedStatement, ApiError> {
    SignedStatement::parse(bytes).map_err(|e| refused_unauthenticated(state, None, e.into()))
}

/// Proof that [`check_signature`] accepted a statement, so that
/// [`sequence_checked`] does not verify it again: the Ed25519 verification
/// is the most expensive step of a statement on the request path, and a
/// download that checked it early to take its slot would otherwise pay it
/// twice.
pub(crate) struct SignatureChecked(());

/// Checks that `signed` is signed by a live key of its actor (see
/// [`RegistryService::authenticate`](crate::registry::RegistryService::authenticate)),
/// counting nothing: a caller whose check failed sequences the statement
/// with [`sequence_statement`], which checks it again and counts the
/// refusal.
pub(crate) fn check_signature(
    reg: &crate::registry::RegistryService,
    signed: &SignedStatement,
) -> Result<SignatureChecked, custody_registry::registry::Rejection> {
    reg.authenticate(signed).map(|()| SignatureChecked(()))
}

/// Authenticates, rate-limits and sequences one statement whose envelope
/// bytes are `envelope`. Returns once the leaf is durable (or the registry
/// refused it, appending nothing).
pub(crate) async fn sequence_statement(
    state: &web::Data<AppState>,
    envelope: Vec<u8>,
    signed: SignedStatement,
) -> Result<(Ack, SignedStatement), ApiError> {
    let reg = state.registry()?;
    // Inline: the key cache never waits for a commit, and one Ed25519
    // verification (~40 us) is cheaper than a hop to the blocking pool.
    let checked = check_signature(&reg.registry, &signed)
        .map_err(|r| refused_unauthenticated(state, Some(&signed), r.into()))?;
    sequence_checked(state, envelope, signed, checked).await
}

/// [`sequence_statement`] for a statement whose signature was already
/// checked.
pub(crate) async fn sequence_checked(
    state: &web::Data<AppState>,
    envelope: Vec<u8>,
    signed: SignedStatement,
    _checked: SignatureChecked,
) -> Result<(Ack, SignedStatement), ApiError> {
    let reg = state.registry()?;
    if let Err(wait) = reg.limiter.take(signed.statement.actor.as_str()) {
        return Err(refused(state, &signed, ApiError::RateLimited(wait)));
    }
    let leaf = Leaf::new(now_ms(), &envelope)
        .map_err(|e| refused(state, &signed, ApiError::BadRequest(e.to_string())))?
        .encode();
    match state.seq.submit_authenticated(leaf, signed.clone()).await {
        Ok(ack) => {
            // Accepted statements are in the log itself; this line is for
            // debugging only (at info level it would cost more than the
            // statement's own processing under load).
            tracing::debug!(
                target: "custody::audit",
                index = ack.index,
                actor = signed.statement.actor.as_str(),
                action = signed.statement.event.action(),
                duplicate = ack.duplicate,
                "statement logged"
            );
            Ok((ack, signed))
        }
        Err(e) => Err(refused(state, &signed, e.into())),
    }
}

/// `POST /statements[?wait=checkpoint]`: body is the DSSE envelope JSON.
pub async fn submit(
    req: HttpRequest,
    query: web::Query<SubmitQuery>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.registry()?;
    let wait = parse_wait(query.wait.as_deref())?;
    let body = read_capped(&req, payload, MAX_ENVELOPE_SIZE)
        .await
        .map_err(|e| refused_unauthenticated(&state, None, e))?;
    let signed = parse_statement(&state, &body)?;
    let stored_size = match &signed.statement.event {
        Event::Publish(p) => reg.blobs.size_now(&p.digest.0).await?,
        _ => None,
    };
    match &signed.statement.event {
        // A publish must name bytes the registry holds; uploads go through
        // `PUT /blobs/...`, which sequences the publish itself.
        Event::Publish(p) if stored_size != Some(p.size) => {
            return Err(refused_unauthenticated(
                &state,
                Some(&signed),
                ApiError::Unprocessable(format!(
                    "artifact {} of {} bytes is not stored: upload it with PUT /blobs/{}",
                    p.digest, p.size, p.digest
                )),
            ));
        }
        // Reads are logged by `GET /blobs/...`, which serves the bytes only
        // after the access entry is durable.
        Event::Access(_) => {
            return Err(refused_unauthenticated(
                &state,
                Some(&signed),
                ApiError::Unprocessable("access statements are submitted with GET /blobs/<digest>".into()),
            ))
        }
        _ => {}
    }
    super::blob_upload::check_claim(&state, &signed).await.map_err(|e| refused(&state, &signed, e))?;
    let (ack, _) = sequence_statement(&state, body, signed).await?;
    ack_response(&state, &ack, wait).await
}
