//! Operational endpoints: `/health` (detailed JSON), `/readyz` and
//! `/metrics`; `/healthz` comes from [`custody_service::health`].

use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use custody_service::guard::AddressGuard;
use custody_service::health::{readyz as readyz_response, Check};

use super::{ApiError, AppState};
use crate::metrics::gauge_value;

/// `GET /health`: JSON with the sequencer, storage and checkpoint state;
/// 200 when storage answers and the witness quorum is met, 503 otherwise,
/// so a load balancer or orchestrator can act on the status alone.
pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let durable = state.seq.tree_size();
    let storage = state.blocking(|store| Ok(store.tree_size())).await;
    let storage = match storage {
        Ok(Ok(size)) => serde_json::json!({ "ok": true, "tree_size": size }),
        Ok(Err(e)) => serde_json::json!({ "ok": false, "error": e.to_string() }),
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    let checkpoint = serde_json::to_value(state.publisher.health())
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    let storage_ok = storage["ok"].as_bool() == Some(true);
    let quorum_ok = checkpoint.get("quorum_ok").and_then(|v| v.as_bool()).unwrap_or(true);
    let healthy = storage_ok && quorum_ok;
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "sequencer": { "tree_size": durable },
        "storage": storage,
        "checkpoint": checkpoint,
    });
    let mut resp = if healthy { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    Ok(resp.json(body))
}

/// `GET /readyz`: 200 when the log can take and publish entries, 503
/// with the reasons otherwise. Ready means: storage answers, the sequencer
/// is running, and (with a policy) the witness quorum cosigned the latest
/// checkpoint. A log whose witnesses are unreachable keeps sequencing, but
/// publishes nothing new, so it is taken out of rotation, not restarted.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let storage = match state.blocking(|store| Ok(store.tree_size())).await {
        Ok(Ok(_)) => Check::ok("storage"),
        Ok(Err(e)) => Check::failed("storage", e.to_string()),
        Err(e) => Check::failed("storage", e.to_string()),
    };
    let sequencer = if state.seq.is_running() {
        Check::ok("sequencer")
    } else {
        Check::failed("sequencer", "the sequencer has stopped")
    };
    let quorum = if state.publisher.health().quorum_ok {
        Check::ok("witness_quorum")
    } else {
        Check::failed(
            "witness_quorum",
            "the latest checkpoint did not reach the witness quorum (witnesses unreachable or refusing)",
        )
    };
    readyz_response(&[storage, sequencer, quorum])
}

/// `GET /metrics`: the registry in the format the scraper asks for, with
/// the gauges read at scrape time set first.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let g = &state.metrics.scrape;
    g.tree_size.set(gauge_value(state.seq.tree_size()));
    let (published_size, age) = match state.publisher.latest() {
        Some(p) => {
            let age =
                SystemTime::now().duration_since(p.published_at).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            (p.size, age)
        }
        None => (0, -1.0),
    };
    g.published_tree_size.set(gauge_value(published_size));
    g.checkpoint_age_seconds.set(age);
    g.quorum_ok.set(i64::from(state.publisher.health().quorum_ok));
    if let Some(m) = state.store.memory_usage() {
        g.store_cache_bytes.set(gauge_value(m.cache));
        g.store_memtable_bytes.set(gauge_value(m.memtables));
        g.store_table_reader_bytes.set(gauge_value(m.table_readers));
        for (cf, bytes) in &m.sst_bytes {
            g.set_sst_bytes(cf, *bytes);
        }
    }
    if let Ok(reg) = state.registry() {
        g.registry_nonces.set(gauge_value(reg.registry.read().nonces_remembered() as u64));
    }
    state.connections.export_metrics(g);
    if let Some(guard) = req.app_data::<web::Data<AddressGuard>>() {
        g.limits.set_from(&guard.limits);
    }
    custody_service::metrics::respond(&req, state.metrics.registry())
}
