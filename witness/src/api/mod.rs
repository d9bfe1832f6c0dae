//! The HTTP API (actix-web). docs/witness.md is the user-facing reference.
//!
//! - `POST /add-checkpoint`: C2SP tlog-witness (submission prefix `/`).
//! - `GET /<hex(SHA-256(origin))>/checkpoint`: latest cosigned checkpoint
//!   (monitoring prefix `/`), for clients and peers.
//! - `POST /gossip/checkpoint`: a peer pushes its cosigned checkpoint.
//! - `GET /evidence`, `GET /evidence/<id>`: split-view evidence.
//! - `GET /health` (detailed JSON), `GET /healthz` (liveness), `GET
//!   /readyz` (readiness), `GET /metrics`.
//!
//! Bodies are capped while they are read, before any parsing.

pub mod error;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError as _};
use custody_registry::evidence::{EVIDENCE_CONTENT_TYPE, MAX_EVIDENCE_SIZE};
use custody_service::guard::AddressGuard;
use custody_service::health::Check;
use custody_service::rate_limit::RouteClass;
use custody_standards::tiles::CHECKPOINT_CONTENT_TYPE;
use custody_standards::witness::{MAX_CHECKPOINT_SIZE, MAX_REQUEST_SIZE};

pub use error::ApiError;

use crate::evidence::Comparison;
use crate::gossip::{EvidenceList, EvidenceListItem, Gossip};
use crate::state::Witness;

/// Most background tile checks started by rejected add-checkpoint requests
/// at once (each fetches a few tiles from the log).
const MAX_BACKGROUND_CHECKS: usize = 4;

/// Shared by all workers.
pub struct AppState {
    /// The witness.
    pub witness: Arc<Witness>,
    /// Gossip (push endpoint, background checks).
    pub gossip: Arc<Gossip>,
    /// Background checks running now.
    pub background: Arc<AtomicUsize>,
    /// Deadline of a whole request body (`--body-timeout`).
    pub body_timeout: std::time::Duration,
}

/// The per-address budget class of a request: checkpoint submissions are
/// `witness`, everything else `read` (see `custody_service::rate_limit`).
pub fn route_class(method: &Method, path: &str) -> RouteClass {
    if *method == Method::POST && (path == "/add-checkpoint" || path == "/gossip/checkpoint") {
        RouteClass::Witness
    } else {
        RouteClass::Read
    }
}

/// A 403 to a submission is a failed authentication (no valid signature
/// from a trusted key, or a push not from a peer), charged to the
/// address's failed-authentication budget.
pub fn is_auth_failure(class: RouteClass, status: StatusCode) -> bool {
    class == RouteClass::Witness && status == StatusCode::FORBIDDEN
}

/// Registers every route; unknown routes get a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/add-checkpoint").route(web::post().to(add_checkpoint)))
        .service(web::resource("/gossip/checkpoint").route(web::post().to(gossip_push)))
        .service(web::resource("/evidence").route(web::get().to(evidence_list)))
        .service(web::resource("/evidence/{id}").route(web::get().to(evidence_get)))
        .service(web::resource("/health").route(web::get().to(health)))
        // Registered by custody-service:
        // route: GET /healthz
        .configure(custody_service::health::configure_healthz)
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/{origin_hex}/checkpoint").route(web::get().to(checkpoint)))
        .default_service(web::to(|| async { ApiError::NotFound("no such route".into()).error_response() }));
}

/// Reads a body of at most `max` bytes that must arrive whole within
/// `deadline` (a trickling client would otherwise hold its connection).
async fn read_body(
    payload: web::Payload,
    max: usize,
    deadline: std::time::Duration,
) -> Result<web::Bytes, ApiError> {
    match tokio::time::timeout(deadline, payload.to_bytes_limited(max)).await {
        Err(_) => Err(ApiError::RequestTimeout(deadline.as_millis() as u64)),
        Ok(Ok(Ok(b))) => Ok(b),
        Ok(Ok(Err(e))) => Err(ApiError::BadRequest(format!("reading body: {e}"))),
        Ok(Err(_)) => Err(ApiError::TooLarge(max)),
    }
}

/// `POST /add-checkpoint`.
async fn add_checkpoint(state: web::Data<AppState>, payload: web::Payload) -> HttpResponse {
    let result = match read_body(payload, MAX_REQUEST_SIZE, state.body_timeout).await {
        Ok(body) => {
            let r = state.witness.add_checkpoint(&body).await.map_err(ApiError::from);
            if let Err(ApiError::Add(e)) = &r {
                if e.is_inconsistency() {
                    spawn_check(&state, &body);
                }
            }
            r
        }
        Err(e) => Err(e),
    };
    let resp = match result {
        Ok(c) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(c.lines),
        Err(e) => e.error_response(),
    };
    state.witness.metrics().count_status(resp.status().as_u16());
    resp
}

/// tlog-witness: "If the origin is known, and the signature is valid, the
/// witness MAY log the request even if the consistency proof doesn't verify
/// ... as it might be proof of log misbehavior." We go further: if the log's
/// own tiles prove the checkpoint inconsistent with ours, that is evidence.
fn spawn_check(state: &AppState, body: &[u8]) {
    let Ok(req) = custody_standards::witness::AddCheckpointRequest::parse(body) else { return };
    let running = Arc::clone(&state.background);
    if running.fetch_add(1, Ordering::SeqCst) >= MAX_BACKGROUND_CHECKS {
        running.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let gossip = Arc::clone(&state.gossip);
    actix_web::rt::spawn(async move {
        let c = gossip.witness().compare(gossip.client(), &req.checkpoint, "add-checkpoint request").await;
        match c {
            Ok(Comparison::SplitView(id)) => {
                tracing::error!(evidence = %id, "rejected request proved a split view")
            }
            Ok(c) => tracing::info!(?c, "checked rejected add-checkpoint request against the log's tiles"),
            Err(e) => tracing::info!(error = %e, "could not check rejected add-checkpoint request"),
        }
        running.fetch_sub(1, Ordering::SeqCst);
    });
}

/// `POST /gossip/checkpoint`.
async fn gossip_push(state: web::Data<AppState>, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, MAX_CHECKPOINT_SIZE, state.body_timeout).await?;
    let c = state.gossip.accept_push(&body).await?;
    let json = match c {
        Comparison::NothingToCompare => serde_json::json!({ "result": "nothing_to_compare" }),
        Comparison::Consistent => serde_json::json!({ "result": "consistent" }),
        Comparison::Unresolved(why) => serde_json::json!({ "result": "unresolved", "detail": why }),
        Comparison::SplitView(id) => serde_json::json!({ "result": "split_view", "evidence": id }),
    };
    Ok(HttpResponse::Ok().json(json))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `GET /<hex>/checkpoint`: the latest durable cosigned checkpoint.
async fn checkpoint(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hex = path.into_inner();
    if !is_hex64(&hex) {
        return Err(ApiError::NotFound("expected /<lowercase hex SHA-256 of the origin>/checkpoint".into()));
    }
    let latest = state
        .witness
        .latest_by_hex(&hex)
        .ok_or_else(|| ApiError::NotFound("no checkpoint for this log".into()))?;
    Ok(HttpResponse::Ok()
        .content_type(CHECKPOINT_CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(latest.note.to_vec()))
}

/// `GET /evidence`.
async fn evidence_list(state: web::Data<AppState>) -> HttpResponse {
    let frozen = state.witness.frozen_origins();
    let evidence = state
        .witness
        .evidence_list()
        .into_iter()
        .map(|info| {
            let active = frozen.iter().any(|(o, id)| *o == info.origin && *id == info.id);
            EvidenceListItem::new(info, active)
        })
        .collect();
    HttpResponse::Ok().json(EvidenceList { evidence })
}

/// `GET /evidence/<id>`: the evidence text, verifiable offline.
async fn evidence_get(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if !is_hex64(&id) || !state.witness.has_evidence(&id) {
        return Err(ApiError::NotFound("no such evidence".into()));
    }
    let store = Arc::clone(state.witness.store());
    let bytes = web::block(move || store.evidence(&id)).await??;
    let bytes = bytes.ok_or_else(|| ApiError::NotFound("no such evidence".into()))?;
    if bytes.len() > MAX_EVIDENCE_SIZE {
        return Err(ApiError::Store(crate::store::StoreError::Corrupt("oversized evidence".into())));
    }
    Ok(HttpResponse::Ok().content_type(EVIDENCE_CONTENT_TYPE).body(bytes))
}

/// `GET /health`: 200 while the witness can cosign (status `ok`, or
/// `split_view` when some origin is frozen: the alarm is in the body, the
/// metrics and the log, and other logs are still served); 503 after a
/// storage failure.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let w = &state.witness;
    let g = w.gauges();
    let frozen: Vec<_> = w
        .frozen_origins()
        .into_iter()
        .map(|(origin, id)| serde_json::json!({ "origin": origin, "evidence": id }))
        .collect();
    let status = if g.store_failed {
        "store_failed"
    } else if !frozen.is_empty() {
        "split_view"
    } else {
        "ok"
    };
    let body = serde_json::json!({
        "status": status,
        "name": w.name(),
        "keys": w.signers().iter().map(|s| s.verifier().to_string()).collect::<Vec<_>>(),
        "logs": g.logs,
        "peers": g.peers,
        "evidence": g.evidence,
        "frozen": frozen,
    });
    if g.store_failed {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// `GET /readyz`: 200 while the witness can cosign (storage has not
/// failed, the committer takes writes), 503 with the reason otherwise. A
/// frozen origin does not make the witness unready: it still serves every
/// other log.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let committer = state.witness.committer();
    let storage = if committer.is_failed() {
        Check::failed("storage", "a synced write failed; restart the witness")
    } else {
        Check::ok("storage")
    };
    let commit = if committer.is_running() {
        Check::ok("committer")
    } else {
        Check::failed("committer", "the committer has stopped")
    };
    custody_service::health::readyz(&[storage, commit])
}

/// `GET /metrics`: the registry in the format the scraper asks for.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let metrics = state.witness.metrics();
    metrics.set_gauges(state.witness.gauges());
    if let Some(guard) = req.app_data::<web::Data<AddressGuard>>() {
        metrics.limits.set_from(&guard.limits);
    }
    custody_service::metrics::respond(&req, metrics.registry())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_are_the_witness_class_and_their_403s_failed_authentications() {
        assert_eq!(route_class(&Method::POST, "/add-checkpoint"), RouteClass::Witness);
        assert_eq!(route_class(&Method::POST, "/gossip/checkpoint"), RouteClass::Witness);
        for (m, p) in [(Method::GET, "/evidence"), (Method::GET, "/metrics"), (Method::GET, "/ab/checkpoint")]
        {
            assert_eq!(route_class(&m, p), RouteClass::Read, "{m} {p}");
        }
        assert!(is_auth_failure(RouteClass::Witness, StatusCode::FORBIDDEN));
        assert!(!is_auth_failure(RouteClass::Witness, StatusCode::CONFLICT));
        assert!(!is_auth_failure(RouteClass::Read, StatusCode::FORBIDDEN));
    }
}
