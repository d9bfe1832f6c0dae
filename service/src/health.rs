//! Liveness and readiness.
//!
//! `GET /healthz` answers 200 as long as the process serves HTTP at all:
//! an orchestrator restarts the process only when it stops answering.
//! `GET /readyz` answers 200 only when the server can do its job (each
//! server names its checks: storage open, sequencer running, witness
//! quorum recent, ...) and 503 with the failing checks' reasons otherwise,
//! so a load balancer sends traffic elsewhere without killing the process.
//! `GET /health` stays each server's detailed JSON.

use actix_web::{web, HttpResponse};

/// Registers `GET /healthz`.
pub fn configure_healthz(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)));
}

/// `GET /healthz`: always 200 `{"status":"ok"}`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "status": "ok" }))
}

/// One readiness check: its name and, when failing, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short stable name (`storage`, `sequencer`, `witness_quorum`).
    pub name: &'static str,
    /// `None` when the check passes, else the reason it fails.
    pub failure: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn ok(name: &'static str) -> Self {
        Check { name, failure: None }
    }

    /// A failing check.
    pub fn failed(name: &'static str, reason: impl Into<String>) -> Self {
        Check { name, failure: Some(reason.into()) }
    }
}

/// The `/readyz` answer for `checks`: 200 `{"status":"ready","checks":{..}}`
/// when all pass, else 503 `{"status":"not_ready","reason":"..",
/// "checks":{..}}` where `reason` joins the failing checks' reasons.
pub fn readyz(checks: &[Check]) -> HttpResponse {
    let mut detail = serde_json::Map::new();
    let mut reasons = Vec::new();
    for c in checks {
        match &c.failure {
            None => detail.insert(c.name.to_owned(), serde_json::json!("ok")),
            Some(why) => {
                reasons.push(format!("{}: {why}", c.name));
                detail.insert(c.name.to_owned(), serde_json::json!(why))
            }
        };
    }
    let mut resp = if reasons.is_empty() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    resp.insert_header(("Cache-Control", "no-store"));
    if reasons.is_empty() {
        resp.json(serde_json::json!({ "status": "ready", "checks": detail }))
    } else {
        resp.json(
            serde_json::json!({ "status": "not_ready", "reason": reasons.join("; "), "checks": detail }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_fails_on_any_failing_check() {
        assert_eq!(readyz(&[Check::ok("storage"), Check::ok("sequencer")]).status().as_u16(), 200);
        let resp = readyz(&[Check::ok("storage"), Check::failed("witness_quorum", "no cosignature")]);
        assert_eq!(resp.status().as_u16(), 503);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let body = rt.block_on(actix_web::body::to_bytes(resp.into_body())).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "not_ready");
        assert_eq!(v["reason"], "witness_quorum: no cosignature");
        assert_eq!(v["checks"]["storage"], "ok");
    }
}
